"""Incremental bytes of the stream engine against the minimal bundle (issue 21).

Generates a repository with `git fast-import`, serves it with `git daemon` on
127.0.0.1 (repacked with a bitmap, as hosts serve), and measures:

  full:      the stream engine's full snapshot against `git clone --mirror` +
             `git bundle create --all` (wall, peak RSS), interleaved over
             rounds, every --bin in each round
  ordinary:  11 new commits on 2 branches and one branch reset by 3 commits:
             the stream incremental's stored bytes (bundle + manifest) against
             `git bundle create --all --not <old tips>` in a mirror that has
             every old object (the minimal bundle of the new objects)
  reset+gc:  the same night plus `gh-pages` reset by 3 commits and
             `git gc --prune=now` on the server (its old tip is gone there)

and prints the figures and the ratios. It never fails on size or time.

Shapes (--shape): `libgit2` (the default) matches the libgit2 repository issue
21 measured in object count and pack bytes (134,603 objects, a 75.8 MB pack;
here about 134,500 objects and 76 MB): 26,700 commits on main editing C-sized
text files (so blobs delta), every 8th also adding a test fixture of random
bytes (4-34 KiB, as libgit2's tests/resources hold packed and compressed
objects that do not delta), 60 branches, 210 tags and an orphan 300-commit
`gh-pages`, 272 refs. `text` is the shape used before round 28: 34,000 commits
editing 1 KiB text files, 171,005 objects in a 27.1 MiB pack (too few bytes per
object: index-pack, the baseline's main cost, has less to do than on libgit2).
`small-blobs` (4,000 commits adding 100 files of 30-600 bytes each: 412,000 objects, nearly all
of them blobs the LFS scan reports) measures the scanner's memory per object. --small: a tenth.

    python3 bench/incremental_bench.py --bin build/snapshotter [--small] [--shape text]
    python3 bench/incremental_bench.py --bin old=/tmp/a/snapshotter --bin new=build/snapshotter \
        --repo /tmp/incr-repos --rounds 3

--bin may be repeated (`label=path`): every binary runs in each full round, in
order, and then the nights, each binary on a fresh copy of the repository.
--repo DIR keeps the generated repository in DIR and reuses it on later runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
import harness  # noqa: E402
from stream_bench import timed  # noqa: E402

COMMITTER = b"committer Bench <bench@example.com> %d +0000\n"


def generate(bare: Path, commits: int, branches: int, tags: int, pages: int, shape: str, seed: int = 21) -> None:
    """A bare repository: `commits` commits on main editing text files (so blobs delta),
    `branches` branches and `tags` tags on older commits, an orphan gh-pages of `pages` commits.
    Shape `libgit2` (see the top): larger text files, and every 8th commit adds a fixture of
    random bytes; each commit writes 5 objects either way (commit, 3 trees, 1 blob)."""
    harness.git("init", "-q", "--bare", str(bare))
    rng = random.Random(seed)
    if shape == "small-blobs":
        generate_small_blobs(bare, commits, rng)
        return
    # libgit2: unique file names, so that git's delta search (which groups by the name's end) finds
    # each file's previous version, as in a well-packed repository; text: the names used before.
    lines_per_file = 90 if shape == "libgit2" else 40
    name = "src/d{d:02d}/d{d:02d}_f{f:02d}.c" if shape == "libgit2" else "src/d{d:02d}/f{f:02d}.c"
    files = {name.format(d=d, f=f): "".join(f"line {i} {rng.random()}\n" for i in range(lines_per_file))
             for d in range(40) for f in range(8)}
    names = sorted(files)
    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=bare, env=harness.git_env(),
                            stdin=subprocess.PIPE)
    out = proc.stdin
    for i in range(1, commits + 1):
        msg = b"commit %d\n" % i
        out.write(b"commit refs/heads/main\nmark :%d\n" % i + COMMITTER % (1_600_000_000 + 60 * i)
                  + b"data %d\n%s" % (len(msg), msg))
        if i > 1:
            out.write(b"from :%d\n" % (i - 1))
        if shape == "libgit2" and i % 8 == 0:
            path = f"tests/r{rng.randrange(40):02d}/fixture-{i}.bin"
            data = rng.randbytes(rng.randrange(4 << 10, 34 << 10))
        else:
            path = names[rng.randrange(len(names))]
            lines = files[path].splitlines(keepends=True)
            lines[rng.randrange(len(lines))] = f"edit {i} {rng.random()}\n"
            files[path] = "".join(lines)
            data = files[path].encode()
        out.write(b"M 644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))
    for b in range(branches):
        out.write(b"reset refs/heads/branch-%02d\nfrom :%d\n\n" % (b, commits - 7 * (b + 1)))
    for t in range(tags):
        at = max(1, commits - (commits // (tags + 1)) * (t + 1))
        if t % 2:
            out.write(b"reset refs/tags/v%d\nfrom :%d\n\n" % (t, at))
        else:
            out.write(b"tag v%d\nfrom :%d\ntagger Bench <bench@example.com> 1700000000 +0000\ndata 3\nv%d\n"
                      % (t, at, t % 10))
    for p in range(1, pages + 1):
        data = f"<html>page {p} {rng.random()}</html>\n".encode() * 20
        out.write(b"commit refs/heads/gh-pages\n" + COMMITTER % (1_600_000_000 + 60 * p) + b"data 5\npage\n")
        out.write(b"M 644 inline index-%d.html\ndata %d\n%s\n" % (p % 50, len(data), data))
    out.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    harness.git("symbolic-ref", "HEAD", "refs/heads/main", git_dir=bare)
    # fast-import deltas a blob only on the blob written just before it, and `repack -a -d` keeps
    # what it finds whole; libgit2: `-f` searches deltas again, as a host's packed repository has.
    # text: as before round 28 (most of its blobs stay whole).
    repack = ["repack", "-a", "-d", "-q", "--write-bitmap-index"] + (["-f"] if shape == "libgit2" else [])
    harness.git(*repack, git_dir=bare)


def generate_small_blobs(bare: Path, commits: int, rng: random.Random) -> None:
    """`commits` commits on main, each adding 100 new files of 30-600 bytes: about 103 objects a
    commit, nearly all of them small blobs (the LFS scan reports every blob under 1 KiB)."""
    out = []
    n = 0
    for c in range(1, commits + 1):
        out.append(b"commit refs/heads/main\nmark :%d\n" % c + COMMITTER % (1_600_000_000 + 60 * c) + b"data 2\nc\n")
        for _ in range(100):
            n += 1
            data = (b"%d %x\n" % (n, rng.getrandbits(64))) * rng.randrange(3, 30)
            out.append(b"M 644 inline d%03d/f%06d.txt\ndata %d\n%s\n" % (c % 200, n, len(data), data))
    for branch, back in ((b"gh-pages", 0), (b"branch-01", 20), (b"branch-02", 40)):
        out.append(b"reset refs/heads/%s\nfrom :%d\n\n" % (branch, commits - back))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=bare, env=harness.git_env(), input=b"".join(out),
                   check=True)
    harness.git("symbolic-ref", "HEAD", "refs/heads/main", git_dir=bare)
    harness.git("repack", "-a", "-d", "-q", "--write-bitmap-index", git_dir=bare)


def from_source(source: Path, bare: Path) -> None:
    """A bare copy of a real repository's heads and tags (HEAD as there), plus `branch-01` and
    `branch-02` on older commits of its default branch if it lacks them (the nights move them),
    repacked with a bitmap as a host serves it."""
    harness.git("init", "-q", "--bare", str(bare))
    harness.git("fetch", "-q", str(source), "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*",
                git_dir=bare)
    head = harness.git("symbolic-ref", "HEAD", git_dir=source).strip()
    harness.git("symbolic-ref", "HEAD", head, git_dir=bare)
    if head != "refs/heads/main":
        harness.git("update-ref", "refs/heads/main", head, git_dir=bare)
    for name, back in (("branch-01", 20), ("branch-02", 40)):
        if harness.git("for-each-ref", f"refs/heads/{name}", git_dir=bare).strip() == "":
            harness.git("update-ref", f"refs/heads/{name}", f"{head}~{back}", git_dir=bare)
    if harness.git("for-each-ref", "refs/heads/gh-pages", git_dir=bare).strip() == "":
        raise SystemExit(f"{source}: no gh-pages branch (the reset night resets it)")
    # Keep the source's deltas (no -f), as a host's repacked repository keeps its own.
    harness.git("repack", "-a", "-d", "-q", "--write-bitmap-index", git_dir=bare)


def prepare(cache: Path | None, serve: Path, shape: str, small: bool, source: Path | None = None) -> Path:
    """A pristine generated repository (or a copy of `source`): in `cache` (made there once, then
    reused) or under `serve`'s parent."""
    if source is not None:
        pristine = (cache if cache else serve.parent) / ("source-" + "-".join(source.resolve().parts[-2:]) + ".git")
        if not any((pristine / "objects" / "pack").glob("*.bitmap")) if (pristine / "objects").is_dir() else True:
            shutil.rmtree(pristine, ignore_errors=True)
            pristine.parent.mkdir(parents=True, exist_ok=True)
            from_source(source, pristine)
        return pristine
    scale = 10 if small else 1
    name = f"{shape}{'-small' if small else ''}.git"
    pristine = (cache if cache else serve.parent) / name
    if not (pristine / "objects" / "pack").is_dir() or not any((pristine / "objects" / "pack").glob("*.bitmap")):
        shutil.rmtree(pristine, ignore_errors=True)
        pristine.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        commits = {"libgit2": 26_700, "text": 34_000, "small-blobs": 4_000}[shape] // scale
        generate(pristine, commits, 60 // scale, 210 // scale, 300 // scale, shape)
        print(f"generated {pristine} in {time.monotonic() - started:.1f} s")
    return pristine


def fresh_copy(pristine: Path, bare: Path) -> None:
    """`bare` made a copy of `pristine` (the nights change the served repository)."""
    shutil.rmtree(bare, ignore_errors=True)
    shutil.copytree(pristine, bare, symlinks=True)


def load() -> str:
    """`uptime`'s load averages."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average:")[-1].strip()


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


def repos_bytes(ws: harness.Workspace) -> int:
    """Bytes under the store's repos/ (manifests, tables, bundles, latest.json; not job reports)."""
    return sum(p.stat().st_size for p in (ws.storage_dir / "repos").rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", action="append", default=[],
                        help="the snapshotter binary, or label=path; repeat to compare binaries in the same run")
    parser.add_argument("--small", action="store_true", help="a tenth of the history, for a quick run")
    parser.add_argument("--shape", choices=["libgit2", "text", "small-blobs"], default="libgit2",
                        help="libgit2: libgit2's object count and pack bytes (default); text: the shape before "
                             "round 28; small-blobs: 412,000 objects, nearly all blobs under 1 KiB (scanner memory)")
    parser.add_argument("--repo", type=Path, help="keep the generated repository in this directory and reuse it")
    parser.add_argument("--source", type=Path,
                        help="a real bare repository to copy (heads and tags) instead of generating one")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the full snapshot")
    parser.add_argument("--full-only", action="store_true", help="skip the nights")
    args = parser.parse_args()
    if not args.bin:
        args.bin = [os.environ.get("SNAPSHOTTER_BIN", str(harness.SOURCE_ROOT / "build" / "snapshotter"))]
    args.bins = []
    for spec in args.bin:
        label, _, path = spec.rpartition("=") if "=" in spec else (spec, "", spec)
        args.bins.append((label, str(Path(path).resolve())))
    os.environ["SNAPSHOTTER_BIN"] = args.bins[0][1]
    harness.setup_module()
    try:
        run(args)
    finally:
        harness.teardown_module()


def run(args) -> None:
    root = harness.mkdtemp("incr-bench-")
    serve = root / "serve"
    serve.mkdir()
    bare = serve / "lib.git"
    pristine = prepare(args.repo.resolve() if args.repo else None, serve, args.shape, args.small, args.source)
    fresh_copy(pristine, bare)
    objects = harness.git("count-objects", "-v", git_dir=bare)
    count = int([ln for ln in objects.splitlines() if ln.startswith("in-pack:")][0].split()[1])
    refs = len(harness.git("for-each-ref", git_dir=bare).splitlines())
    pack = sum(p.stat().st_size for p in (bare / "objects" / "pack").glob("*.pack"))
    what = f"copy of {args.source}" if args.source else f"{args.shape}{', small' if args.small else ''}"
    print(f"repository ({what}): {refs} refs, {count:,} objects, "
          f"pack {pack:,} B = {pack / 2**20:.1f} MiB; load {load()}")
    daemon = harness.GitDaemon(serve)
    url = daemon.url_for("lib.git")
    repo = {"url": url, "name": "bench/lib"}
    genv = harness.git_env()

    def snap(snapshotter: str, ws: harness.Workspace) -> tuple[float, float, dict, int]:
        payload = ws.snapshot_payload([repo], {"engine": "stream"})
        wall, rss, stdout = timed([snapshotter, "--log-level", "warn"], ws.env({"SNAPSHOTTER_JOB_JSON":
                                                                                 json.dumps(payload)}))
        out = json.loads(stdout)
        if not out.get("ok"):
            raise SystemExit(f"snapshot: {stdout!r}")
        r = out["result"]["repositories"][0]
        manifest = ws.path_of(harness.manifest_key("bench/lib", r["snapshot_id"])).stat().st_size
        return wall, rss, r, manifest

    print(f"full snapshot (interleaved, {args.rounds} rounds; clone+bundle, then each binary):")
    clone_walls: list[float] = []
    full: dict[str, tuple[list[float], list[float]]] = {label: ([], []) for label, _ in args.bins}
    for round_ in range(args.rounds):
        scratch = harness.mkdtemp("clone-")
        c_wall, _, _ = timed(["git", "clone", "-q", "--mirror", url, str(scratch / "m.git")], genv)
        b_wall, _, _ = timed(["git", "--git-dir", str(scratch / "m.git"), "bundle", "create", "-q",
                              str(scratch / "all.bundle"), "--all"], genv)
        shutil.rmtree(scratch, ignore_errors=True)
        clone_walls.append(c_wall + b_wall)
        line = f"  round {round_ + 1} (load {load()}): clone+bundle {c_wall + b_wall:6.2f} s"
        for label, snapshotter in args.bins:
            ws = harness.Workspace("full-")
            wall, rss, r, _ = snap(snapshotter, ws)
            shutil.rmtree(ws.root, ignore_errors=True)
            full[label][0].append(wall)
            full[label][1].append(rss)
            line += f"; {label} {wall:5.2f} s {rss:5.1f} MiB (bundle {r['bundle']['size'] / 2**20:.1f} MiB)"
        print(line, flush=True)
    for label, (walls, rsss) in full.items():
        ratio = min(clone_walls) / min(walls)
        print(f"  {label}: best {min(walls):.2f} s vs clone+bundle best {min(clone_walls):.2f} s = {ratio:.1f}x "
              f"(target >= 8x: {'met' if ratio >= 8 else 'NOT met'}); peak RSS {max(rsss):.1f} MiB "
              f"(target <= 32 MiB: {'met' if max(rsss) <= 32 else 'NOT met'})")
    if args.full_only:
        daemon.stop()
        return

    for label, snapshotter in args.bins:
        # A chain and a mirror that keeps every old object, for the minimal bundle.
        fresh_copy(pristine, bare)
        ws = harness.Workspace("chain-")
        snap(snapshotter, ws)
        mirror = root / "mirror.git"
        shutil.rmtree(mirror, ignore_errors=True)
        harness.git("clone", "-q", "--mirror", url, str(mirror))
        for night_label, reset_pages in (("ordinary night", False), ("night with gh-pages reset + server gc", True)):
            night(bare, 1 if not reset_pages else 2, reset_pages)
            minimal = harness.minimal_bundle(mirror, url, root)
            before = repos_bytes(ws)
            wall, _, r, manifest = snap(snapshotter, ws)
            added = repos_bytes(ws) - before
            bundle = (r.get("bundle") or {}).get("size", 0)
            stored = bundle + manifest
            print(f"{label}: {night_label}: stream {wall:.2f} s, kind={r.get('kind')}, bundle {bundle:,} B + "
                  f"manifest {manifest:,} B = {stored:,} B; minimal bundle {minimal:,} B; "
                  f"stored/minimal {stored / minimal if minimal else float('inf'):.2f}x, "
                  f"bundle/minimal {bundle / minimal if minimal else float('inf'):.2f}x; "
                  f"refs fast_forward/rewritten {r.get('refs_rewritten')}")
            print(f"  every byte the night added under repos/ (bundle + manifest + new tables + latest.json): "
                  f"{added:,} B = {added / minimal if minimal else float('inf'):.2f}x minimal")
    daemon.stop()


if __name__ == "__main__":
    main()
