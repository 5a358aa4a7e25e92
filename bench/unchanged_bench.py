"""What an unchanged night costs in storage (issue 21, "unchanged nights near free").

Generates a bare repository with --refs refs (default 270: branches on a
chain of small commits, plus lightweight and annotated tags), serves it with
`git daemon` on 127.0.0.1, takes one full snapshot into a file:// store, then
--nights unchanged snapshots (default 365), each run as its own job, and
measures the bytes each night adds to the store (the sum of the sizes of
every file in the store after the night minus before: new manifests, tables,
job reports; the rewritten latest.json counts by its change in size). The
candidate binary and the baseline binary (--old, an earlier build, such as
main's) run interleaved night by night, each into its own store, and the
figures and ratios are printed. It never fails on bytes or time.

    python3 bench/unchanged_bench.py --bin build/snapshotter --old /tmp/snapshotter-old [--nights 365]

With --nights below 365 the per-year figures are extrapolated (nights x
mean bytes per night) and say so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
import harness  # noqa: E402


def generate(bare: Path, refs: int) -> None:
    """`refs` refs: about 90% branches, the rest split between lightweight and annotated tags."""
    harness.git("init", "-q", "--bare", str(bare))
    tags = max(2, refs // 10)
    branches = refs - tags
    commits = branches + 10
    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=bare, env=harness.git_env(), stdin=subprocess.PIPE)
    out = proc.stdin
    for i in range(1, commits + 1):
        msg = b"commit %d\n" % i
        data = b"line %d\n" % i
        out.write(b"commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\ndata %d\n%s"
                  % (i, 1_600_000_000 + i * 60, len(msg), msg))
        if i > 1:
            out.write(b"from :%d\n" % (i - 1))
        out.write(b"M 644 inline f%03d.txt\ndata %d\n%s\n" % (i % 100, len(data), data))
    for b in range(branches - 1):
        out.write(b"reset refs/heads/feature/branch-%04d\nfrom :%d\n\n" % (b, 1 + b))
    for t in range(tags):
        if t % 2:
            out.write(b"reset refs/tags/light-%04d\nfrom :%d\n\n" % (t, 1 + t))
        else:
            out.write(b"tag v%04d\nfrom :%d\ntagger Bench <bench@example.com> 1700000000 +0000\ndata 5\nv%04d\n"
                      % (t, 1 + t, t))
    out.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")


def sizes(root: Path) -> dict[str, int]:
    """Size of every file under `root`, by path relative to it."""
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def store_bytes(root: Path) -> tuple[int, int]:
    """(total bytes, files) under `root`."""
    total = files = 0
    for dirpath, _, names in os.walk(root):
        for n in names:
            total += (Path(dirpath) / n).stat().st_size
            files += 1
    return total, files


def snapshot(binary: str, store: Path, url: str, work: Path, job: str) -> dict:
    payload = {"version": 1, "action": "snapshot", "job_id": job, "storage": {"url": f"file://{store}"},
               "repositories": [{"url": url, "name": "bench/unchanged", "refs": ["refs/heads/*", "refs/tags/*"]}],
               "options": {"cache_dir": str(work / "cache"), "timeout_s": 600}}
    env = harness.snapshotter_env(work, work, {"SNAPSHOTTER_JOB_JSON": json.dumps(payload)})
    proc = subprocess.run([binary], env=env, stdin=subprocess.DEVNULL, capture_output=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode(errors="replace")[-3000:])
        raise SystemExit(f"{binary} failed ({proc.returncode})")
    out = json.loads(proc.stdout)
    return out.get("result", out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the candidate snapshotter")
    ap.add_argument("--old", help="the baseline snapshotter (an earlier build)")
    ap.add_argument("--refs", type=int, default=270)
    ap.add_argument("--nights", type=int, default=365)
    ap.add_argument("--show", action="store_true", help="print the JSON objects the last night wrote")
    args = ap.parse_args()

    root = harness.mkdtemp("unchanged-bench-")
    repos = root / "repos"
    repos.mkdir()
    generate(repos / "big.git", args.refs)
    binaries = {"candidate": os.path.abspath(args.bin)}
    if args.old:
        binaries["baseline"] = os.path.abspath(args.old)
    with harness.GitDaemon(repos) as daemon:
        url = daemon.url_for("big.git")
        stores, works, per_night, firsts, last_night = {}, {}, {n: [] for n in binaries}, {}, {}
        for name, binary in binaries.items():
            stores[name] = root / f"store-{name}"
            works[name] = root / f"work-{name}"
            works[name].mkdir()
            snapshot(binary, stores[name], url, works[name], f"{name}-full")
            firsts[name] = store_bytes(stores[name])
        for night in range(1, args.nights + 1):
            for name, binary in binaries.items():  # interleaved, night by night
                before, _ = store_bytes(stores[name])
                files_before = sizes(stores[name]) if night == args.nights else {}
                out = snapshot(binary, stores[name], url, works[name], f"{name}-night-{night:04d}")
                kind = out["repositories"][0].get("kind")
                if kind != "unchanged":
                    raise SystemExit(f"{name} night {night}: kind {kind}, expected unchanged")
                after, _ = store_bytes(stores[name])
                per_night[name].append(after - before)
                if night == args.nights:
                    changed = {k: v for k, v in sizes(stores[name]).items() if files_before.get(k) != v}
                    last_night[name] = changed
                    if args.show:
                        for key in changed:
                            if key.endswith(".json"):
                                print(f"--- {name} {key}\n{(stores[name] / key).read_text()}")
    print(f"repository: {args.refs} refs; {args.nights} unchanged nights after one full snapshot; file:// storage")
    mean = {}
    for name in binaries:
        nights = per_night[name]
        mean[name] = statistics.mean(nights)
        total, files = store_bytes(stores[name])
        year = mean[name] * 365
        how = "measured" if args.nights >= 365 else f"extrapolated from {args.nights} nights"
        print(f"{name:9}: full snapshot {firsts[name][0]:,} bytes; per unchanged night median "
              f"{statistics.median(nights):,.0f} B, mean {mean[name]:,.0f} B (min {min(nights):,}, max {max(nights):,}); "
              f"per year {year / 1e6:.3f} MB ({how}); store now {total:,} bytes in {files} files")
        print(f"           last night wrote: " + ", ".join(f"{k} {v:,} B" for k, v in sorted(last_night[name].items())))
    if "baseline" in mean and mean["candidate"] > 0:
        print(f"ratio baseline/candidate bytes per unchanged night: {mean['baseline'] / mean['candidate']:.1f}x")
    # One night's objects, for the record.
    latest = sorted((stores["candidate"] / "repos").rglob("manifests/*.json"))[-1]
    print(f"candidate's last manifest: {latest.stat().st_size} bytes; tables: "
          f"{[p.stat().st_size for p in (stores['candidate'] / 'repos').rglob('tables/*')]}")


if __name__ == "__main__":
    main()
