"""Benchmark of the cli engine against git's own commands (issue 21).

Generates a libgit2-sized repository (--commits commits, a pack of about
--pack-mib MiB, 270 heads and tags) and a second one with --many-refs refs
(refs/pull/N/head, each its own commit, as a large host's pull requests),
serves both with `git daemon` on 127.0.0.1, and measures, baseline and
candidate interleaved in the same rounds (the one that goes first
alternates), medians of --rounds:

  incremental   an ordinary night (11 new commits on main, a branch reset by
                3 commits, a new tag): the cli engine with its kept cache
                against a hand-written `git fetch --prune` + `git bundle
                create --all --not <old tips>` in a kept `clone --mirror`
  no-change     the cli engine with nothing changed against `git ls-remote`
  many refs     a night on the --many-refs repository: the cli engine's
                incremental against `git fetch --prune` in a packed mirror
                (`git clone --mirror`, refs packed before each round)
  restore       restore of the --many-refs repository's full snapshot
                against `git clone --mirror` of its bundle file

Prints every figure and the ratios against the issue's targets; never fails
on time. Not part of ctest. With --compare-bin, a second snapshotter binary
(main's, say) runs beside --bin in its own workspace, in the same rounds (the
order of the three rotating), so before and after are measured together.

With --repos DIR the generated repositories are kept in DIR (named by their
sizes) and later runs copy them from there instead of generating them again
(the 100,000-ref one takes a quarter of an hour). With --strace-dir DIR, after
the measured rounds, one more night of each part is run by --bin under
`strace -f --seccomp-bpf -ttt -e trace=execve,exit_group` (not counted in
any figure): the trace goes to DIR/<part>.strace and every git child is
printed with its start, its duration and its argv.

    python3 bench/cli_bench.py [--bin build/snapshotter] [--rounds 3] [--small]
        [--commits 33000] [--pack-mib 75] [--many-refs 100000] [--compare-bin OLD]
        [--only incremental|many] [--repos DIR] [--strace-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
import harness  # noqa: E402

BRANCHES, TAGS = 70, 200  # with main: 271 refs, as libgit2's heads and tags
PATTERNS_MANY = ["refs/heads/*", "refs/tags/*", "refs/pull/*"]


def run_timed(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, bytes]:
    """Run argv (stdout captured, stderr kept for a failure); (wall seconds, stdout)."""
    os.sync()
    start = time.monotonic()
    p = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    secs = time.monotonic() - start
    if p.returncode != 0:
        sys.stderr.write(p.stderr.decode(errors="replace")[-4000:])
        raise SystemExit(f"{' '.join(argv[:4])} failed ({p.returncode})")
    return secs, p.stdout


def kept_or_generated(target: Path, keep: Path | None, key: str, make) -> None:
    """Make the repository `target` with make(path): directly, or (with
    `keep`, the --repos directory) by copying keep/key, generated there first
    when no earlier run completed it."""
    if keep is None:
        make(target)
        return
    kept = keep / key
    done = kept / "cli-bench-complete"
    if not done.exists():
        shutil.rmtree(kept, ignore_errors=True)
        started = time.monotonic()
        make(kept)
        done.write_text("")
        print(f"  generated {kept} in {time.monotonic() - started:.1f} s (kept for later runs)")
    shutil.copytree(kept, target, symlinks=True)


def git_children(trace: Path) -> list[tuple[float, float, str]]:
    """The processes an `strace -f -ttt -e trace=execve,exit_group -o` file
    shows: (start, duration, argv) of every successful execve but the
    first (the traced program), start relative to the first line."""
    first = None
    started: dict[str, tuple[float, str]] = {}
    pending: dict[str, str] = {}
    ended: dict[str, float] = {}
    for line in trace.read_text(errors="replace").splitlines():
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        pid, stamp, rest = parts
        try:
            t = float(stamp)
        except ValueError:
            continue
        first = t if first is None else first
        if rest.startswith("execve("):
            argv = rest[rest.find("[") + 1:rest.find("]")] if "[" in rest else rest
            argv = " ".join(a.strip().strip('"') for a in argv.split(", "))
            if rest.endswith("= 0"):
                started[pid] = (t, argv)
            elif "<unfinished" in rest:
                pending[pid] = argv
        elif rest.startswith("<... execve resumed>") and rest.endswith("= 0") and pid in pending:
            started[pid] = (t, pending.pop(pid))
        elif rest.startswith("+++ exited") or rest.startswith("+++ killed"):
            ended[pid] = t
    rows = [(t - first, ended.get(pid, t) - t, argv) for pid, (t, argv) in started.items()]
    rows.sort()
    return rows[1:]


def print_trace(trace: Path) -> None:
    rows = git_children(trace)
    stamps = [float(f[1]) for f in (l.split(None, 2) for l in trace.read_text(errors="replace").splitlines())
              if len(f) == 3 and f[1].replace(".", "", 1).isdigit()]
    print(f"  traced into {trace}: {stamps[-1] - stamps[0]:.3f} s under strace, {len(rows)} children")
    for start, secs, argv in rows:
        print(f"    +{start * 1000:8.1f} ms {secs * 1000:8.1f} ms  {argv[:110]}")


def fast_import(bare: Path, stream: bytes) -> None:
    subprocess.run(["git", "fast-import", "--quiet", "--force", "--depth=10"], cwd=bare, env=harness.git_env(),
                   input=stream, check=True)


def generate(bare: Path, commits: int, pack_mib: int, seed: int = 21) -> None:
    """`commits` commits on main changing one file of random bytes each (the
    pack about `pack_mib` MiB), BRANCHES branches and TAGS tags (every other
    one annotated) at older commits; one pack with a bitmap, refs packed."""
    harness.git("init", "-q", "--bare", str(bare))
    rng = random.Random(seed)
    blob = max(64, pack_mib * 1024 * 1024 // commits - 350)
    out = []
    for i in range(1, commits + 1):
        msg = b"commit %d\n" % i
        out.append(b"commit refs/heads/main\nmark :%d\ncommitter Bench <b@example.com> %d +0000\ndata %d\n%s"
                   % (i, 1_600_000_000 + i * 60, len(msg), msg))
        if i > 1:
            out.append(b"from :%d\n" % (i - 1))
        data = rng.randbytes(blob)
        out.append(b"M 644 inline d%02d/f%02d.bin\ndata %d\n%s\n" % (i % 64, (i // 64) % 16, len(data), data))
    for b in range(BRANCHES):
        out.append(b"reset refs/heads/branch-%03d\nfrom :%d\n\n" % (b, max(1, commits - 7 * (b + 1))))
    for t in range(TAGS):
        at = max(1, commits - 13 * (t + 1))
        if t % 2:
            out.append(b"tag v%03d\nfrom :%d\ntagger Bench <b@example.com> %d +0000\ndata 5\nv%03d\n"
                       % (t, at, 1_650_000_000 + t, t))
        else:
            out.append(b"reset refs/tags/l%03d\nfrom :%d\n\n" % (t, at))
    fast_import(bare, b"".join(out))
    harness.git("symbolic-ref", "HEAD", "refs/heads/main", git_dir=bare)
    harness.git("repack", "-a", "-d", "-q", "--write-bitmap-index", git_dir=bare)
    harness.git("pack-refs", "--all", git_dir=bare)


def add_pull_refs(bare: Path, n: int) -> None:
    """refs/pull/<k>/head for k < n: each a commit of its own on an older commit of main."""
    main = harness.git("rev-list", "--first-parent", "-n", "2000", "refs/heads/main", git_dir=bare).split()
    out = []
    for k in range(n):
        msg = b"pull %d\n" % k
        out.append(b"commit refs/pull/%d/head\ncommitter Bench <b@example.com> %d +0000\ndata %d\n%s"
                   b"from %s\nM 644 inline pr.txt\ndata %d\n%s\n"
                   % (k, 1_690_000_000 + k, len(msg), msg, main[k % len(main)].encode(), len(msg), msg))
    fast_import(bare, b"".join(out))
    harness.git("repack", "-a", "-d", "-q", "--write-bitmap-index", git_dir=bare)
    harness.git("pack-refs", "--all", git_dir=bare)


def night(bare: Path, round_: int, pulls: int = 0) -> None:
    """An ordinary night on the server: 11 new commits on main, branch-001
    reset by 3 commits (in the first round; later rounds move branch-002 on),
    a new annotated tag; with `pulls`, 10 new pull refs and one moved."""
    rng = random.Random(100 + round_)
    tip = harness.git("rev-parse", "refs/heads/main", git_dir=bare).strip()
    out = []
    for i in range(1, 12):
        msg = b"night %d/%d\n" % (round_, i)
        data = rng.randbytes(900)
        out.append(b"commit refs/heads/main\ncommitter Bench <b@example.com> %d +0000\ndata %d\n%s"
                   % (1_700_000_000 + round_ * 100 + i, len(msg), msg))
        if i == 1:
            out.append(b"from %s\n" % tip.encode())
        out.append(b"M 644 inline night/r%d-%02d.bin\ndata %d\n%s\n" % (round_, i, len(data), data))
    if pulls:
        for k in range(pulls + (round_ - 1) * 10, pulls + round_ * 10):
            out.append(b"reset refs/pull/%d/head\nfrom %s\n\n" % (k, tip.encode()))
        out.append(b"reset refs/pull/%d/head\nfrom %s\n\n" % (round_, tip.encode()))
    fast_import(bare, b"".join(out))
    old = harness.git("rev-parse", "refs/heads/branch-001~3", git_dir=bare).strip()
    harness.git("update-ref", "refs/heads/branch-001", old, git_dir=bare)
    harness.git("update-ref", "refs/heads/branch-002", tip, git_dir=bare)
    harness.git("tag", "-a", "-m", f"night {round_}", f"night-{round_}", "refs/heads/main", git_dir=bare)


class Snapshotter:
    """Runs of the snapshotter binary with the cli engine into one workspace (cache kept)."""

    def __init__(self, name: str, url: str, refs: list[str] | None = None, binary: str | None = None) -> None:
        self.ws = harness.Workspace(f"cli-{name.replace('/', '-')}-")
        self.repo = {"url": url, "name": name}
        if refs:
            self.repo["refs"] = refs
        self.bin = binary or harness.snapshotter_bin()

    def snapshot(self, wrap: list[str] | None = None) -> tuple[float, dict]:
        """One snapshot run (under `wrap`, strace say, when given); (wall seconds, its repository's result)."""
        payload = self.ws.snapshot_payload([self.repo], {"engine": "cli"})
        job = self.ws.root / "job.json"
        job.write_text(json.dumps(payload))
        secs, out = run_timed((wrap or []) + [self.bin, "--log-level", "warn", "--metrics", "off", "--job-file",
                                              str(job)], self.ws.env())
        result = json.loads(out)
        if not result.get("ok"):
            raise SystemExit(f"snapshot failed: {out[:2000]!r}")
        return secs, result["result"]["repositories"][0]

    def restore(self, snapshot_id: str, target: Path) -> float:
        payload = self.ws.restore_payload(self.repo["name"], target, snapshot_id)
        job = self.ws.root / "restore.json"
        job.write_text(json.dumps(payload))
        secs, out = run_timed([self.bin, "--log-level", "warn", "--metrics", "off", "--job-file", str(job)],
                              self.ws.env())
        if not json.loads(out).get("ok"):
            raise SystemExit(f"restore failed: {out[:2000]!r}")
        return secs


def tips_of(mirror: Path) -> list[str]:
    return sorted(set(harness.git("for-each-ref", "--format=%(objectname)", git_dir=mirror).split()))


def interleaved(round_: int, candidate, baseline) -> tuple[float, float]:
    """Both measurements of one round, the first alternating between rounds."""
    if round_ % 2:
        c = candidate()
        b = baseline()
    else:
        b = baseline()
        c = candidate()
    return c, b


COMPARE: dict[str, list[float]] = {}  # title -> the --compare-bin figures, one a round


def interleaved3(round_: int, candidate, baseline, other, title: str) -> tuple[float, float]:
    """interleaved(), with `other` (the --compare-bin run, when not None) in
    the rotation: its figure goes to COMPARE[title]."""
    if other is None:
        return interleaved(round_, candidate, baseline)
    runs = [("c", candidate), ("b", baseline), ("o", other)]
    shift = (round_ - 1) % 3
    got = {key: fn() for key, fn in runs[shift:] + runs[:shift]}
    COMPARE.setdefault(title, []).append(got["o"])
    return got["c"], got["b"]


def report(title: str, pairs: list[tuple[float, float]], target: float | None, c_label: str, b_label: str) -> None:
    c_med = statistics.median(c for c, _ in pairs)
    b_med = statistics.median(b for _, b in pairs)
    ratio = c_med / b_med if b_med > 0 else float("inf")
    each = " ".join(f"{c / b:.2f}x" for c, b in pairs)
    print(f"\n== {title} (median of {len(pairs)})")
    print(f"  {c_label:<52} {c_med:8.3f} s  [{' '.join(f'{c:.3f}' for c, _ in pairs)}]")
    print(f"  {b_label:<52} {b_med:8.3f} s  [{' '.join(f'{b:.3f}' for _, b in pairs)}]")
    verdict = "" if target is None else f"  (target <= {target}x: {'MET' if ratio <= target else 'missed'})"
    print(f"  ratio {ratio:.2f}x{verdict}   per round: {each}")
    if title in COMPARE:
        o = COMPARE[title]
        o_med = statistics.median(o)
        per = " ".join(f"{x / b:.2f}x" for x, (_, b) in zip(o, pairs))
        print(f"  {'--compare-bin':<52} {o_med:8.3f} s  [{' '.join(f'{x:.3f}' for x in o)}]")
        print(f"  its ratio {o_med / b_med:.2f}x   per round: {per}; --bin/--compare-bin {c_med / o_med:.2f}x")
    sys.stdout.flush()


def traced_night(snap: Snapshotter, part: str, args) -> None:
    """With --strace-dir: one more snapshot by --bin (the night already made
    on the server) under strace, its children printed; counted nowhere."""
    if not args.strace_dir:
        return
    out = Path(args.strace_dir).resolve() / f"{part}.strace"
    out.parent.mkdir(parents=True, exist_ok=True)
    secs, res = snap.snapshot(["strace", "-f", "--seccomp-bpf", "-ttt", "-e", "trace=execve,exit_group", "-o",
                               str(out)])
    print(f"\n== traced night ({part}, {res['kind']}): {secs:.3f} s, load {os.getloadavg()[0]:.2f}")
    print_trace(out)


def bench_incremental(serve: Path, daemon, args) -> None:
    bare = serve / "lib.git"
    url = daemon.url_for("lib.git")
    genv = harness.git_env()
    snap = Snapshotter("bench/lib", url)
    secs, first = snap.snapshot()
    print(f"  cli engine full snapshot (cold cache): {secs:.2f} s, bundle {first['bundle']['size'] / 2**20:.1f} MiB")
    other = Snapshotter("bench/lib", url, binary=args.compare_bin) if args.compare_bin else None
    if other:
        print(f"  --compare-bin full snapshot (cold cache): {other.snapshot()[0]:.2f} s")
    base = harness.mkdtemp("base-") / "lib.git"
    secs, _ = run_timed(["git", "clone", "-q", "--mirror", url, str(base)], genv)
    print(f"  git clone --mirror: {secs:.2f} s")
    old_tips = tips_of(base)
    incr: list[tuple[float, float]] = []
    nochange: list[tuple[float, float]] = []
    for r in range(1, args.rounds + 1):
        night(bare, r)
        out_bundle = base.parent / f"night-{r}.bundle"

        def candidate(s: Snapshotter = snap) -> float:
            secs, res = s.snapshot()
            if res["kind"] != "incremental":
                raise SystemExit(f"expected an incremental snapshot, got {res['kind']}")
            print(f"    {s.bin}: stored {(res.get('bundle') or {}).get('size', 0)} bundle bytes")
            return secs

        def baseline() -> float:
            f, _ = run_timed(["git", "fetch", "--prune", "--quiet", "origin"], genv, cwd=base)
            b, _ = run_timed(["git", "bundle", "create", "-q", str(out_bundle), "--all", "--not"] + old_tips,
                             genv, cwd=base)
            return f + b

        incr.append(interleaved3(r, candidate, baseline, other and (lambda: candidate(other)), "incr"))
        old_tips = tips_of(base)

        def unchanged(s: Snapshotter = snap) -> float:
            secs, res = s.snapshot()
            if res["kind"] != "unchanged":
                raise SystemExit(f"expected an unchanged snapshot, got {res['kind']}")
            return secs

        nochange.append(interleaved3(r, unchanged, lambda: run_timed(["git", "ls-remote", url], genv)[0],
                                     other and (lambda: unchanged(other)), "no change"))
    if "incr" in COMPARE:
        COMPARE["ordinary night, kept cache"] = COMPARE.pop("incr")
    report("ordinary night, kept cache", incr, 1.1, "cli engine incremental",
           "git fetch --prune + git bundle create --all --not <old>")
    report("no change", nochange, None, "cli engine, unchanged", "git ls-remote")
    night(bare, args.rounds + 1)
    traced_night(snap, "incremental", args)


def bench_many_refs(serve: Path, daemon, args) -> None:
    bare = serve / "many.git"
    url = daemon.url_for("many.git")
    genv = harness.git_env()
    snap = Snapshotter("bench/many", url, PATTERNS_MANY)
    secs, first = snap.snapshot()
    print(f"  cli engine full snapshot (cold cache): {secs:.2f} s, {first['refs']} refs, "
          f"bundle {first['bundle']['size'] / 2**20:.1f} MiB")
    full_id, full_key = first["snapshot_id"], first["bundle"]["key"]
    other = Snapshotter("bench/many", url, PATTERNS_MANY, binary=args.compare_bin) if args.compare_bin else None
    if other:
        secs, other_first = other.snapshot()
        print(f"  --compare-bin full snapshot (cold cache): {secs:.2f} s")
    base = harness.mkdtemp("base-many-") / "many.git"
    secs, _ = run_timed(["git", "clone", "-q", "--mirror", url, str(base)], genv)
    print(f"  git clone --mirror: {secs:.2f} s")
    incr: list[tuple[float, float]] = []
    for r in range(1, args.rounds + 1):
        night(bare, r, args.many_refs)
        harness.git("pack-refs", "--all", git_dir=base)

        def candidate(s: Snapshotter = snap) -> float:
            secs, res = s.snapshot()
            if res["kind"] != "incremental":
                raise SystemExit(f"expected an incremental snapshot, got {res['kind']}")
            print(f"    {s.bin}: stored {(res.get('bundle') or {}).get('size', 0)} bundle bytes")
            return secs

        incr.append(interleaved3(r, candidate,
                                 lambda: run_timed(["git", "fetch", "--prune", "--quiet", "origin"], genv, cwd=base)[0],
                                 other and (lambda: candidate(other)), f"{args.many_refs} refs, a night"))
    report(f"{args.many_refs} refs, a night", incr, 1.5, "cli engine incremental",
           "git fetch --prune in a packed mirror")
    night(bare, args.rounds + 1, args.many_refs)
    traced_night(snap, "many", args)

    bundle = snap.ws.path_of(full_key)
    restores: list[tuple[float, float]] = []
    for r in range(1, args.rounds + 1):
        scratch = harness.mkdtemp("restore-")

        def candidate() -> float:
            return snap.restore(full_id, scratch / "restored.git")

        def baseline() -> float:
            return run_timed(["git", "clone", "-q", "--mirror", str(bundle), str(scratch / "cloned.git")], genv)[0]

        def restore_other() -> float:
            return other.restore(other_first["snapshot_id"], scratch / "restored-other.git")

        restores.append(interleaved3(r, candidate, baseline, other and restore_other,
                                     f"restore of {args.many_refs} refs"))
        shutil.rmtree(scratch, ignore_errors=True)
    report(f"restore of {args.many_refs} refs", restores, 1.2, "snapshotter restore (full snapshot)",
           "git clone --mirror <its bundle>")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=os.environ.get("SNAPSHOTTER_BIN",
                                                        str(harness.SOURCE_ROOT / "build" / "snapshotter")))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="a tenth of every size (a quick check)")
    parser.add_argument("--commits", type=int, default=33_000)
    parser.add_argument("--pack-mib", type=int, default=75)
    parser.add_argument("--many-refs", type=int, default=100_000)
    parser.add_argument("--many-commits", type=int, default=5_000)
    parser.add_argument("--only", choices=("incremental", "many"), help="one part only")
    parser.add_argument("--compare-bin", help="a second snapshotter binary measured in the same rounds")
    parser.add_argument("--repos", help="keep the generated repositories here and reuse them in later runs")
    parser.add_argument("--strace-dir", help="trace one more night of each part with strace, into this directory")
    args = parser.parse_args()
    if args.small:
        args.commits, args.pack_mib = args.commits // 10, max(1, args.pack_mib // 10)
        args.many_refs, args.many_commits = args.many_refs // 10, args.many_commits // 10
    os.environ["SNAPSHOTTER_BIN"] = str(Path(args.bin).resolve())
    if args.compare_bin:
        args.compare_bin = str(Path(args.compare_bin).resolve())
    harness.setup_module()
    try:
        serve = harness.mkdtemp("cli-bench-")
        started = time.monotonic()
        keep = Path(args.repos).resolve() if args.repos else None
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
        if args.only != "many":
            kept_or_generated(serve / "lib.git", keep, f"lib-{args.commits}c-{args.pack_mib}m.git",
                              lambda path: generate(path, args.commits, args.pack_mib))
        if args.only != "incremental":
            many_mib = max(1, args.pack_mib // 10)

            def make_many(path: Path) -> None:
                generate(path, args.many_commits, many_mib, seed=5)
                add_pull_refs(path, args.many_refs)

            kept_or_generated(serve / "many.git", keep,
                              f"many-{args.many_commits}c-{many_mib}m-{args.many_refs}r.git", make_many)
        print(f"{'copied' if keep else 'generated'} in {time.monotonic() - started:.1f} s: lib.git {args.commits} commits, "
              f"many.git {args.many_commits} commits + {args.many_refs} pull refs; {os.cpu_count()} CPUs; "
              f"{harness.git('--version').strip()}; load {os.getloadavg()[0]:.2f}")
        with harness.GitDaemon(serve) as daemon:
            if args.only != "many":
                print("\nlibgit2-sized repository:")
                bench_incremental(serve, daemon, args)
            if args.only != "incremental":
                print(f"\n{args.many_refs}-ref repository:")
                bench_many_refs(serve, daemon, args)
        print(f"\nload at the end {os.getloadavg()[0]:.2f}")
    finally:
        harness.cleanup_all()


if __name__ == "__main__":
    main()
