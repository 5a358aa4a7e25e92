"""Benchmark of the streaming engine against the git-CLI engine (issue 4).

Generates a repository of --commits commits (default 50,000) whose pack is
about --pack-mib MiB (default 60) of random, incompressible blob content with
`git fast-import`, serves it over smart HTTP with basic auth on 127.0.0.1
(lighttpd + git-http-backend, the integration harness's server), then times,
with the peak RSS of each process tree (/usr/bin/time -f "%e %M"):

  full:        snapshotter engine stream; snapshotter engine cli (cold cache);
               `git clone --mirror` + `git bundle create --all`
  incremental: after 50 new commits, a deleted branch, a force-push and a new
               tag: stream (stateless), cli with its cached mirror (warm), and
               cold (cli, empty cache_dir, no previous chain in storage)
  verify index: the stream engine with "verify": "index" (git index-pack on
               the same stream): full, incremental with its cached objects,
               and incremental with an empty cache (the chain is replayed)

and prints the figures and the ratios. It never fails on time.

    python3 bench/stream_bench.py --bin build/snapshotter [--commits 50000] [--pack-mib 60]
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

USER, TOKEN, TOKEN_ENV = "bench-bot", "tok-bench-51d0", "SNAP_BENCH_TOKEN"
BRANCHES = 8  # besides main


def timed(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, float, bytes]:
    """Run argv under /usr/bin/time; (wall seconds, peak RSS MiB of the process tree, stdout)."""
    proc = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M"] + argv, env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = [ln for ln in proc.stderr.decode(errors="replace").splitlines() if ln.startswith("TIME ")]
    if proc.returncode != 0 or not line:
        sys.stderr.write(proc.stderr.decode(errors="replace")[-4000:])
        raise SystemExit(f"{argv[0]} failed ({proc.returncode})")
    _, wall, rss_kib = line[-1].split()
    return float(wall), int(rss_kib) / 1024.0, proc.stdout


def generate(bare: Path, commits: int, pack_mib: int, seed: int = 4) -> None:
    """A bare repository: `commits` commits on main, each changing one file of
    random bytes (sized so the pack is about `pack_mib` MiB), BRANCHES branches
    at older commits, a lightweight and an annotated tag."""
    harness.git("init", "-q", "--bare", str(bare))
    rng = random.Random(seed)
    blob_size = max(64, pack_mib * 1024 * 1024 // commits - 350)  # minus a commit and two trees, roughly
    proc = subprocess.Popen(["git", "fast-import", "--quiet", "--depth=10"], cwd=bare, env=harness.git_env(),
                            stdin=subprocess.PIPE)
    out = proc.stdin
    for i in range(1, commits + 1):
        data = rng.randbytes(blob_size)
        msg = b"commit %d\n" % i
        out.write(b"commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\ndata %d\n%s"
                  % (i, 1_600_000_000 + i * 60, len(msg), msg))
        if i > 1:
            out.write(b"from :%d\n" % (i - 1))
        out.write(b"M 644 inline d%02d/f%02d.bin\ndata %d\n" % (i % 64, (i // 64) % 16, len(data)))
        out.write(data + b"\n")
    for b in range(BRANCHES):
        out.write(b"reset refs/heads/branch-%d\nfrom :%d\n\n" % (b, commits - (commits // (BRANCHES + 2)) * (b + 1)))
    out.write(b"reset refs/tags/light\nfrom :%d\n\n" % (commits // 2))
    out.write(b"tag v1.0\nfrom :%d\ntagger Bench <bench@example.com> 1700000000 +0000\ndata 4\nv1.0\n"
              % (commits - 10))
    out.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    harness.git("symbolic-ref", "HEAD", "refs/heads/main", git_dir=bare)
    # One pack with a bitmap, as a real server would have.
    harness.git("repack", "-a", "-d", "-q", "--write-bitmap-index", git_dir=bare)


def change_upstream(bare: Path, round_: int = 1) -> None:
    """On the server: 50 new commits on main, a new annotated tag and, in the
    first round, a deleted branch and a force-push."""
    rng = random.Random(7 * round_)
    main_tip = harness.git("rev-parse", "refs/heads/main", git_dir=bare).strip()
    old = harness.git("rev-parse", "refs/heads/main~60", git_dir=bare).strip()
    lines = []
    for i in range(1, 51):
        data = rng.randbytes(1200)
        msg = b"new %d\n" % i
        lines.append(b"commit refs/heads/main\ncommitter Bench <bench@example.com> %d +0000\ndata %d\n%s"
                     % (1_700_000_000 + 100 * round_ + i, len(msg), msg))
        if i == 1:
            lines.append(b"from %s\n" % main_tip.encode())
        lines.append(b"M 644 inline new/n%d-%02d.bin\ndata %d\n%s\n" % (round_, i, len(data), data))
    if round_ == 1:
        # branch-1 is rewritten: a new commit on an old base, not a descendant of its tip.
        lines.append(b"commit refs/heads/branch-1\ncommitter Bench <bench@example.com> 1700001000 +0000\n"
                     b"data 7\nforced\nfrom %s\nM 644 inline forced.txt\ndata 7\nforced\n\n" % old.encode())
    subprocess.run(["git", "fast-import", "--quiet", "--force"], cwd=bare, env=harness.git_env(),
                   input=b"".join(lines), check=True)
    if round_ == 1:
        harness.git("update-ref", "-d", "refs/heads/branch-2", git_dir=bare)
    harness.git("tag", "-a", "-m", f"v{round_ + 1}.0", f"v{round_ + 1}.0", "refs/heads/main", git_dir=bare)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=os.environ.get("SNAPSHOTTER_BIN", str(harness.SOURCE_ROOT / "build" /
                                                                               "snapshotter")))
    parser.add_argument("--commits", type=int, default=50_000)
    parser.add_argument("--pack-mib", type=int, default=60)
    args = parser.parse_args()
    os.environ["SNAPSHOTTER_BIN"] = str(Path(args.bin).resolve())
    harness.setup_module()
    try:
        run(args)
    finally:
        harness.teardown_module()


def run(args) -> None:
    snapshotter = harness.snapshotter_bin()
    root = harness.mkdtemp("bench-")
    serve = root / "serve"
    serve.mkdir()
    bare = serve / "big.git"

    started = time.monotonic()
    generate(bare, args.commits, args.pack_mib)
    packs = list((bare / "objects" / "pack").glob("*.pack"))
    pack_bytes = sum(p.stat().st_size for p in packs)
    objects = harness.git("count-objects", "-v", git_dir=bare)
    count = int([ln for ln in objects.splitlines() if ln.startswith("in-pack:")][0].split()[1])
    print(f"repository: {args.commits} commits, {count} objects, pack {pack_bytes / 2**20:.1f} MiB "
          f"(generated in {time.monotonic() - started:.1f} s)")

    http = harness.SmartHttp(serve, {USER: TOKEN})
    url = http.url_for("big.git")
    authed_url = url.replace("http://", f"http://{USER}:{TOKEN}@")
    repo = {"url": url, "name": "bench/big", "credentials": {"token_env": TOKEN_ENV, "username": USER}}
    figures: dict[str, tuple[float, float]] = {}

    def snap(ws: harness.Workspace, engine: str, label: str, options: dict | None = None) -> dict:
        payload = ws.snapshot_payload([repo], dict({"engine": engine, "allow_http": True}, **(options or {})))
        env = ws.env({TOKEN_ENV: TOKEN, "SNAPSHOTTER_JOB_JSON": json.dumps(payload)})
        wall, rss, stdout = timed([snapshotter, "--log-level", "warn"], env)
        out = json.loads(stdout)
        if not out.get("ok"):
            raise SystemExit(f"{label}: {stdout!r}")
        r = out["result"]["repositories"][0]
        figures[label] = (wall, rss)
        bundle = r.get("bundle") or {}
        print(f"  {label:<44} {wall:7.2f} s  {rss:7.1f} MiB  kind={r.get('kind')} engine={r.get('engine')} "
              f"bundle={bundle.get('size', 0) / 2**20:.2f} MiB")
        return r

    print("full snapshot:")
    ws_stream, ws_cli = harness.Workspace("stream-"), harness.Workspace("cli-")
    ws_index = harness.Workspace("index-")
    snap(ws_stream, "stream", "stream engine")
    snap(ws_index, "stream", "stream engine, verify index", {"verify": "index"})
    snap(ws_cli, "cli", "cli engine, cold cache")
    scratch = harness.mkdtemp("clone-")
    genv = harness.git_env()
    c_wall, c_rss, _ = timed(["git", "clone", "-q", "--mirror", authed_url, str(scratch / "m.git")], genv)
    b_wall, b_rss, _ = timed(["git", "--git-dir", str(scratch / "m.git"), "bundle", "create", "-q",
                              str(scratch / "all.bundle"), "--all"], genv)
    figures["clone+bundle"] = (c_wall + b_wall, max(c_rss, b_rss))
    print(f"  {'git clone --mirror':<44} {c_wall:7.2f} s  {c_rss:7.1f} MiB")
    print(f"  {'git bundle create --all':<44} {b_wall:7.2f} s  {b_rss:7.1f} MiB")
    print(f"  {'clone + bundle':<44} {c_wall + b_wall:7.2f} s  {max(c_rss, b_rss):7.1f} MiB")
    shutil.rmtree(scratch, ignore_errors=True)

    change_upstream(bare)
    print("after 50 new commits, a deleted branch, a force-push and a new tag:")
    snap(ws_stream, "stream", "stateless incremental (stream)")
    snap(ws_index, "stream", "incremental (stream, verify index, cached)", {"verify": "index"})
    shutil.rmtree(ws_index.cache_dir / "verify")
    change_upstream(bare, 2)
    snap(ws_index, "stream", "incremental (stream, verify index, empty cache)", {"verify": "index"})
    snap(ws_cli, "cli", "incremental, cached mirror (cli, warm)")
    snap(harness.Workspace("cold-"), "cli", "cold (cli, empty cache, no chain)")

    def ratio(a: str, b: str) -> float:
        return figures[b][0] / figures[a][0] if figures[a][0] > 0 else float("inf")

    full_ratio = ratio("stream engine", "clone+bundle")
    incr_ratio = ratio("stateless incremental (stream)", "cold (cli, empty cache, no chain)")
    stream_rss = figures["stream engine"][1]
    print("ratios:")
    print(f"  stream full vs clone+bundle:        {full_ratio:6.1f}x faster (target >= 4x: "
          f"{'met' if full_ratio >= 4 else 'NOT met'}); peak RSS {stream_rss:.1f} MiB (target < 64 MiB: "
          f"{'met' if stream_rss < 64 else 'NOT met'})")
    print(f"  stream full vs cli engine full:     {ratio('stream engine', 'cli engine, cold cache'):6.1f}x faster")
    print(f"  verify index full vs clone+bundle:  {ratio('stream engine, verify index', 'clone+bundle'):6.1f}x faster; "
          f"costs {figures['stream engine, verify index'][0] / figures['stream engine'][0]:.1f}x the plain stream")
    print(f"  stateless incremental vs cold:      {incr_ratio:6.1f}x faster (target >= 10x: "
          f"{'met' if incr_ratio >= 10 else 'NOT met'})")
    print(f"  stateless incremental vs warm cli:  "
          f"{ratio('stateless incremental (stream)', 'incremental, cached mirror (cli, warm)'):6.1f}x faster")
    http.stop()


if __name__ == "__main__":
    main()
