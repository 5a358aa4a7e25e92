#!/usr/bin/env python3
"""Check that two snapshotter binaries print the same JSON for the same jobs.

    tests/tools/json_contract_diff.py OLD_BINARY NEW_BINARY

Runs a fixed set of payloads (every action, reruns, dry runs, bad payloads
and bad flags) through each binary, each against its own copy of a small
git repository and its own storage, with stdout and stderr not terminals,
and compares exit codes, stdout and stderr after masking what differs from
run to run (snapshot ids, times, durations, the scratch paths). Prints the
differences and exits 1 when there are any. The JSON contract for programs
must not change by one byte when the command line grows features for people.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MASKS = [
    (re.compile(r"\d{8}T\d{6}(\.\d+)?Z-[0-9a-z]+"), "<ID>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"), "<TIME>"),
    (re.compile(r'"(duration_ms|age_s|Timestamp|DurationSeconds)":\s?[0-9.e+-]+'), r'"\1":<N>'),
    (re.compile(r'"(list|fetch|bundle|upload|manifest|total|verify|index)":\d+'), r'"\1":<N>'),
    (re.compile(r"job-<ID>"), "job-<ID>"),
    (re.compile(r"\d+ ms"), "<N> ms"),
    # A pruned manifest's size moves by a byte with the digits of its timings.
    (re.compile(r'"(bytes_freed|bytes_deleted)":\d+'), r'"\1":<N>'),
    (re.compile(r'("deleted":\{[^{}]*"bytes":)\d+'), r"\1<N>"),
    (re.compile(r"\(\d+ bytes\)"), "(<N> bytes)"),
]


def git(*args, cwd=None):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e",
                        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
                        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"})


def make_repo(root: Path) -> Path:
    work = root / "work"
    git("init", "-q", "-b", "main", str(work))
    (work / "a.txt").write_text("one\n")
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "one", cwd=work)
    git("tag", "v1", cwd=work)
    bare = root / "app.git"
    git("clone", "-q", "--bare", str(work), str(bare))
    return bare


def payloads(root: Path, bare: Path):
    store = {"url": str(root / "store")}
    repo = [{"url": str(bare), "name": "org/app"}]
    opts = {"cache_dir": str(root / "cache")}
    yield "snapshot", {"version": 1, "job_id": "fixed", "storage": store, "repositories": repo, "options": opts}, []
    yield "snapshot-rerun", {"version": 1, "job_id": "fixed", "storage": store, "repositories": repo, "options": opts}, []
    yield "snapshot-unchanged", {"version": 1, "job_id": "second", "storage": store, "repositories": repo,
                                 "options": opts}, []
    yield "snapshot-dry", {"version": 1, "storage": store, "repositories": repo, "options": opts}, ["--dry-run"]
    yield "list", {"version": 1, "action": "list", "storage": store}, []
    yield "list-one", {"version": 1, "action": "list", "storage": store, "list": {"repository": "org/app"}}, []
    yield "list-missing", {"version": 1, "action": "list", "storage": store,
                           "list": {"repository": "org/nope"}}, []
    yield "verify", {"version": 1, "action": "verify", "storage": store}, []
    yield "verify-drill", {"version": 1, "action": "verify", "storage": store,
                           "verify": {"snapshot": "all", "drill": True}}, []
    yield "restore", {"version": 1, "action": "restore", "storage": store,
                      "restore": {"repository": "org/app", "target": str(root / "restored.git")}}, []
    yield "restore-exists", {"version": 1, "action": "restore", "storage": store,
                             "restore": {"repository": "org/app", "target": str(root)}}, []
    yield "prune-dry", {"version": 1, "action": "prune", "storage": store, "prune": {"keep_last": 1}}, ["--dry-run"]
    yield "prune", {"version": 1, "action": "prune", "storage": store, "prune": {"keep_last": 1}}, []
    yield "gc-dry", {"version": 1, "action": "gc", "storage": store}, ["--dry-run"]
    yield "merge-missing", {"version": 1, "action": "merge_reports", "storage": store,
                            "merge_reports": {"job_id": "nope"}}, []
    yield "unknown-key", {"version": 1, "storage": store, "repositories": repo, "optons": {}}, []
    yield "no-storage", {"version": 1, "repositories": repo}, []
    yield "version", None, ["--version"]
    yield "no-payload", None, []
    yield "bad-flag", None, ["--bogus-flag"]
    yield "bad-level", None, ["--log-level", "loud"]
    yield "bad-output", {"version": 1, "action": "list", "storage": store}, ["--output", "yaml"]


def run_all(binary: str, root: Path):
    root.mkdir(parents=True)
    bare = make_repo(root)
    out = {}
    for case in payloads(root, bare):
        name, payload, args = case
        env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPSHOTTER_")}
        env["HOME"] = str(root)
        if payload is not None:
            env["SNAPSHOTTER_JOB_JSON"] = json.dumps(payload)
        p = subprocess.run([binary, *args], env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
        out[name] = (p.returncode, mask(p.stdout.decode(), root), mask(p.stderr.decode(), root))
    return out


def mask(text: str, root: Path) -> str:
    text = text.replace(str(root), "<ROOT>")
    for pattern, repl in MASKS:
        text = pattern.sub(repl, text)
    return text


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    tmp = Path(tempfile.mkdtemp(prefix="contract-"))
    try:
        old = run_all(sys.argv[1], tmp / "old" / "r")
        new = run_all(sys.argv[2], tmp / "new" / "r")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    differences = 0
    for name in old:
        for part, a, b in zip(("exit code", "stdout", "stderr"), old[name], new[name]):
            if a != b:
                differences += 1
                print(f"--- {name}: {part} differs\nold: {a!r}\nnew: {b!r}\n")
    print(f"{len(old)} cases, {differences} differences")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
