"""Incremental bytes of the stream engine against the minimal bundle (issue 21).

Generates a libgit2-sized repository with `git fast-import` (default: about
34,000 commits and 135,000 objects, 60 branches, 210 tags and an orphan
`gh-pages` history, 270 refs; --small: a tenth), serves it with `git daemon`
on 127.0.0.1 (repacked with a bitmap, as hosts serve), and measures:

  full:      the stream engine's full snapshot against `git clone --mirror` +
             `git bundle create --all` (wall, peak RSS), interleaved
  ordinary:  11 new commits on 3 branches and one branch reset by 3 commits:
             the stream incremental's stored bytes (bundle + manifest) against
             `git bundle create --all --not <old tips>` in a mirror that has
             every old object (the minimal bundle of the new objects)
  reset+gc:  the same night plus `gh-pages` reset by 3 commits and
             `git gc --prune=now` on the server (its old tip is gone there)

and prints the figures and the ratios. It never fails on size or time.

    python3 bench/incremental_bench.py --bin build/snapshotter [--small]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
import harness  # noqa: E402
from stream_bench import timed  # noqa: E402

COMMITTER = b"committer Bench <bench@example.com> %d +0000\n"


def generate(bare: Path, commits: int, branches: int, tags: int, pages: int, seed: int = 21) -> None:
    """A bare repository: `commits` commits on main editing text files (so blobs delta),
    `branches` branches and `tags` tags on older commits, an orphan gh-pages of `pages` commits."""
    harness.git("init", "-q", "--bare", str(bare))
    rng = random.Random(seed)
    files = {f"src/d{d:02d}/f{f:02d}.c": "".join(f"line {i} {rng.random()}\n" for i in range(40))
             for d in range(40) for f in range(8)}
    names = sorted(files)
    out = []
    for i in range(1, commits + 1):
        path = names[rng.randrange(len(names))]
        lines = files[path].splitlines(keepends=True)
        lines[rng.randrange(len(lines))] = f"edit {i} {rng.random()}\n"
        files[path] = "".join(lines)
        data = files[path].encode()
        msg = b"commit %d\n" % i
        out.append(b"commit refs/heads/main\nmark :%d\n" % i + COMMITTER % (1_600_000_000 + 60 * i)
                   + b"data %d\n%s" % (len(msg), msg))
        if i > 1:
            out.append(b"from :%d\n" % (i - 1))
        out.append(b"M 644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))
    for b in range(branches):
        out.append(b"reset refs/heads/branch-%02d\nfrom :%d\n\n" % (b, commits - 7 * (b + 1)))
    for t in range(tags):
        at = max(1, commits - (commits // (tags + 1)) * (t + 1))
        if t % 2:
            out.append(b"reset refs/tags/v%d\nfrom :%d\n\n" % (t, at))
        else:
            out.append(b"tag v%d\nfrom :%d\ntagger Bench <bench@example.com> 1700000000 +0000\ndata 3\nv%d\n"
                       % (t, at, t % 10))
    for p in range(1, pages + 1):
        data = f"<html>page {p} {rng.random()}</html>\n".encode() * 20
        out.append(b"commit refs/heads/gh-pages\n" + COMMITTER % (1_600_000_000 + 60 * p) + b"data 5\npage\n")
        out.append(b"M 644 inline index-%d.html\ndata %d\n%s\n" % (p % 50, len(data), data))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=bare, env=harness.git_env(), input=b"".join(out),
                   check=True)
    harness.git("symbolic-ref", "HEAD", "refs/heads/main", git_dir=bare)
    harness.git("repack", "-a", "-d", "-q", "--write-bitmap-index", git_dir=bare)


def night(bare: Path, round_: int, reset_pages: bool = False) -> None:
    """11 new commits (8 on main, 3 on branch-01), branch-02 reset by 3; with
    `reset_pages`, gh-pages reset by 3 and a server gc that prunes its old tip."""
    out = []
    for i, branch in enumerate(["main"] * 8 + ["branch-01"] * 3):
        msg = b"night %d commit %d\n" % (round_, i)
        body = b"night %d %d\n" % (round_, i) * 30
        out.append(b"commit refs/heads/%s\n" % branch.encode() + COMMITTER % (1_700_000_000 + 100 * round_ + i)
                   + b"data %d\n%s" % (len(msg), msg))
        if i in (0, 8):
            tip = harness.git("rev-parse", f"refs/heads/{branch}", git_dir=bare).strip()
            out.append(b"from %s\n" % tip.encode())
        out.append(b"M 644 inline night/%s-%d-%d.txt\ndata %d\n%s\n" % (branch.encode(), round_, i, len(body), body))
    subprocess.run(["git", "fast-import", "--quiet", "--force"], cwd=bare, env=harness.git_env(),
                   input=b"".join(out), check=True)
    harness.git("update-ref", "refs/heads/branch-02", f"refs/heads/branch-02~3", git_dir=bare)
    if reset_pages:
        harness.git("update-ref", "refs/heads/gh-pages", "refs/heads/gh-pages~3", git_dir=bare)
        harness.git("reflog", "expire", "--expire=now", "--all", git_dir=bare)
        harness.git("gc", "-q", "--prune=now", git_dir=bare)


def minimal_bundle(mirror: Path, url: str, scratch: Path) -> int:
    """Bytes of `git bundle create --all --not <the mirror's tips before fetching>`."""
    old = harness.git("for-each-ref", "--format=%(objectname)", git_dir=mirror).split()
    harness.git("fetch", "-q", "--prune", url, "+refs/*:refs/*", git_dir=mirror)
    out = scratch / "minimal.bundle"
    proc = subprocess.run(["git", "--git-dir", str(mirror), "bundle", "create", "-q", str(out), "--all", "--not",
                           *old], env=harness.git_env(), capture_output=True)
    return out.stat().st_size if proc.returncode == 0 and out.exists() else 0


def repos_bytes(ws: harness.Workspace) -> int:
    """Bytes under the store's repos/ (manifests, tables, bundles, latest.json; not job reports)."""
    return sum(p.stat().st_size for p in (ws.storage_dir / "repos").rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=os.environ.get("SNAPSHOTTER_BIN", str(harness.SOURCE_ROOT / "build" /
                                                                               "snapshotter")))
    parser.add_argument("--small", action="store_true", help="a tenth of the history, for a quick run")
    args = parser.parse_args()
    os.environ["SNAPSHOTTER_BIN"] = str(Path(args.bin).resolve())
    harness.setup_module()
    try:
        run(args)
    finally:
        harness.teardown_module()


def run(args) -> None:
    snapshotter = harness.snapshotter_bin()
    root = harness.mkdtemp("incr-bench-")
    serve = root / "serve"
    serve.mkdir()
    bare = serve / "lib.git"
    scale = 10 if args.small else 1
    started = time.monotonic()
    generate(bare, 34_000 // scale, 60 // scale, 210 // scale, 300 // scale)
    objects = harness.git("count-objects", "-v", git_dir=bare)
    count = int([ln for ln in objects.splitlines() if ln.startswith("in-pack:")][0].split()[1])
    refs = len(harness.git("for-each-ref", git_dir=bare).splitlines())
    pack = sum(p.stat().st_size for p in (bare / "objects" / "pack").glob("*.pack"))
    print(f"repository: {refs} refs, {count} objects, pack {pack / 2**20:.1f} MiB "
          f"(generated in {time.monotonic() - started:.1f} s)")
    daemon = harness.GitDaemon(serve)
    url = daemon.url_for("lib.git")
    repo = {"url": url, "name": "bench/lib"}
    genv = harness.git_env()

    def snap(ws: harness.Workspace) -> tuple[float, float, dict, int]:
        payload = ws.snapshot_payload([repo], {"engine": "stream"})
        wall, rss, stdout = timed([snapshotter, "--log-level", "warn"], ws.env({"SNAPSHOTTER_JOB_JSON":
                                                                                 json.dumps(payload)}))
        out = json.loads(stdout)
        if not out.get("ok"):
            raise SystemExit(f"snapshot: {stdout!r}")
        r = out["result"]["repositories"][0]
        manifest = ws.path_of(harness.manifest_key("bench/lib", r["snapshot_id"])).stat().st_size
        return wall, rss, r, manifest

    print("full snapshot (interleaved, 2 rounds):")
    full_walls, full_rss, clone_walls = [], [], []
    for round_ in range(2):
        scratch = harness.mkdtemp("clone-")
        c_wall, _, _ = timed(["git", "clone", "-q", "--mirror", url, str(scratch / "m.git")], genv)
        b_wall, _, _ = timed(["git", "--git-dir", str(scratch / "m.git"), "bundle", "create", "-q",
                              str(scratch / "all.bundle"), "--all"], genv)
        clone_walls.append(c_wall + b_wall)
        wall, rss, r, _ = snap(harness.Workspace("full-"))
        full_walls.append(wall)
        full_rss.append(rss)
        print(f"  round {round_ + 1}: clone+bundle {c_wall + b_wall:6.2f} s; stream {wall:6.2f} s, {rss:5.1f} MiB "
              f"peak RSS, bundle {r['bundle']['size'] / 2**20:.1f} MiB")
    ratio = min(clone_walls) / min(full_walls)
    print(f"  stream full vs clone+bundle: {ratio:.1f}x faster (target >= 8x: {'met' if ratio >= 8 else 'NOT met'}); "
          f"peak RSS {max(full_rss):.1f} MiB (target <= 32 MiB: {'met' if max(full_rss) <= 32 else 'NOT met'})")

    # A chain and a mirror that keeps every old object, for the minimal bundle.
    ws = harness.Workspace("chain-")
    snap(ws)
    mirror = root / "mirror.git"
    harness.git("clone", "-q", "--mirror", url, str(mirror))
    for label, reset_pages in (("ordinary night", False), ("night with gh-pages reset + server gc", True)):
        night(bare, 1 if not reset_pages else 2, reset_pages)
        minimal = minimal_bundle(mirror, url, root)
        before = repos_bytes(ws)
        wall, _, r, manifest = snap(ws)
        added = repos_bytes(ws) - before
        bundle = (r.get("bundle") or {}).get("size", 0)
        stored = bundle + manifest
        print(f"{label}: stream {wall:.2f} s, kind={r.get('kind')}, bundle {bundle:,} B + manifest {manifest:,} B "
              f"= {stored:,} B; minimal bundle {minimal:,} B; "
              f"stored/minimal {stored / minimal if minimal else float('inf'):.2f}x, "
              f"bundle/minimal {bundle / minimal if minimal else float('inf'):.2f}x; "
              f"refs fast_forward/rewritten {r.get('refs_rewritten')}")
        print(f"  every byte the night added under repos/ (bundle + manifest + new tables + latest.json): "
              f"{added:,} B = {added / minimal if minimal else float('inf'):.2f}x minimal")
    daemon.stop()


if __name__ == "__main__":
    main()
