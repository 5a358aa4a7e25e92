"""Stored bytes per ordinary night over a chain, against the minimal bundle (issue 21).

Generates a 272-ref repository with incremental_bench.generate() (3,400
commits on main, 60 branches, 210 tags, an orphan gh-pages; --commits to
change), serves it with `git daemon` on 127.0.0.1, takes one full snapshot
with the stream engine, then runs --nights ordinary nights in a row (each
incremental_bench.night(): 8 new commits on main, 3 on branch-01, branch-02
reset by 3 commits). Each night, every binary (the candidate --bin and the
baseline --old, interleaved night by night, each into its own file:// store)
snapshots the same server state, and the bench sums every byte the night
added under the store's repos/ (bundle, manifest, new tables, the change in
size of latest.json), split by kind. The minimal bundle of the night is
`git bundle create --all --not <previous tips>` in a mirror that keeps every
old object. full_every is set above --nights so that every night is an
ordinary incremental (a full bundle every 30 nights, the default, is a
full snapshot's cost and not an ordinary night's).

Prints per-night figures and, for each binary, the amortised ratio (the sum
of the nights' bytes over the sum of the minimal bundles). It never fails on
bytes.

    python3 bench/chain_bench.py --bin build/snapshotter --old /tmp/snapshotter-main [--nights 40]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
import harness  # noqa: E402
from incremental_bench import generate, minimal_bundle, night  # noqa: E402

KINDS = ("bundles", "manifests", "tables", "other")


def kind_of(rel: str) -> str:
    for kind in KINDS[:-1]:
        if f"/{kind}/" in rel:
            return kind
    return "other"


def sizes(ws: harness.Workspace) -> dict[str, int]:
    root = ws.storage_dir / "repos"
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def added(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Bytes added by kind: new files whole, rewritten files by their change in size."""
    out = dict.fromkeys(KINDS, 0)
    for rel, size in after.items():
        out[kind_of(rel)] += size - before.get(rel, 0)
    return out


def snapshot(binary: str, ws: harness.Workspace, repo: dict, nights: int) -> dict:
    payload = ws.snapshot_payload([repo], {"engine": "stream", "full_every": nights + 10})
    proc = subprocess.run([binary, "--log-level", "warn"], env=ws.env({"SNAPSHOTTER_JOB_JSON": json.dumps(payload)}),
                          stdin=subprocess.DEVNULL, capture_output=True)
    out = json.loads(proc.stdout or b"{}")
    if proc.returncode != 0 or not out.get("ok"):
        sys.stderr.write(proc.stderr.decode(errors="replace")[-3000:])
        raise SystemExit(f"{binary}: snapshot failed: {proc.stdout[-2000:]!r}")
    return out["result"]["repositories"][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="the candidate snapshotter")
    parser.add_argument("--old", help="the baseline snapshotter (an earlier build, such as main's)")
    parser.add_argument("--nights", type=int, default=40)
    parser.add_argument("--commits", type=int, default=3_400, help="commits on main in the generated history")
    parser.add_argument("--verbose", action="store_true", help="print every night of every binary")
    args = parser.parse_args()
    os.environ["SNAPSHOTTER_BIN"] = str(Path(args.bin).resolve())
    harness.setup_module()
    try:
        run(args)
    finally:
        harness.teardown_module()


def run(args) -> None:
    binaries = {"candidate": str(Path(args.bin).resolve())}
    if args.old:
        binaries["baseline"] = str(Path(args.old).resolve())
    root = harness.mkdtemp("chain-bench-")
    serve = root / "serve"
    serve.mkdir()
    bare = serve / "lib.git"
    generate(bare, args.commits, 60, 210, 30)
    refs = len(harness.git("for-each-ref", git_dir=bare).splitlines())
    daemon = harness.GitDaemon(serve)
    url = daemon.url_for("lib.git")
    repo = {"url": url, "name": "bench/lib"}
    spaces = {name: harness.Workspace(f"chain-{name}-") for name in binaries}
    for name, binary in binaries.items():
        r = snapshot(binary, spaces[name], repo, args.nights)
        print(f"{name}: full snapshot, kind={r.get('kind')}, {sum(sizes(spaces[name]).values()):,} B under repos/")
    mirror = root / "mirror.git"
    harness.git("clone", "-q", "--mirror", url, str(mirror))
    totals = {name: dict.fromkeys(KINDS, 0) for name in binaries}
    minimal_total = 0
    worst = dict.fromkeys(binaries, 0.0)
    print(f"repository: {refs} refs; {args.nights} ordinary nights (8 commits on main, 3 on branch-01, "
          f"branch-02 reset by 3), stream engine, file:// stores")
    for n in range(1, args.nights + 1):
        night(bare, n)
        minimal = minimal_bundle(mirror, url, root)
        minimal_total += minimal
        line = [f"night {n:3}: minimal {minimal:,} B"]
        for name, binary in binaries.items():  # interleaved, night by night
            before = sizes(spaces[name])
            r = snapshot(binary, spaces[name], repo, args.nights)
            if r.get("kind") != "incremental":
                raise SystemExit(f"{name} night {n}: kind {r.get('kind')}, expected incremental")
            got = added(before, sizes(spaces[name]))
            for kind, value in got.items():
                totals[name][kind] += value
            night_total = sum(got.values())
            worst[name] = max(worst[name], night_total / minimal)
            line.append(f"{name} {night_total:,} B = {night_total / minimal:.2f}x "
                        f"(bundle {got['bundles']:,}, manifest {got['manifests']:,}, tables {got['tables']:,}, "
                        f"other {got['other']:+,})")
        print("; ".join(line), flush=True)
    daemon.stop()
    print(f"over {args.nights} nights, minimal bundles {minimal_total:,} B (mean {minimal_total / args.nights:,.0f} B):")
    for name in binaries:
        t = totals[name]
        total = sum(t.values())
        print(f"  {name:9}: {total:,} B (mean {total / args.nights:,.0f} B a night: bundle "
              f"{t['bundles'] / args.nights:,.0f}, manifest {t['manifests'] / args.nights:,.0f}, tables "
              f"{t['tables'] / args.nights:,.0f}, other {t['other'] / args.nights:+,.0f}); amortised "
              f"{total / minimal_total:.3f}x minimal (target <= 1.5x: "
              f"{'met' if total <= 1.5 * minimal_total else 'NOT met'}); worst night {worst[name]:.2f}x")


if __name__ == "__main__":
    main()
