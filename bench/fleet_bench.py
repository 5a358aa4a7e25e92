"""Benchmark (issue 5): N generated repositories served on 127.0.0.1 by git
daemon and by smart HTTP (lighttpd + git-http-backend); at the same
concurrency, in the same run:

  snapshotter   cold full pass, no-change pass, pass with 10% changed
  baseline      xargs -P loop of `git clone --mirror` + `git bundle create`
  baseline      xargs -P loop of `git ls-remote`

Prints wall times and ratios against the targets (no-change within 1.2x of
the ls-remote loop; cold pass at least 5x faster than clone+bundle, issue 21),
and where the cold pass's time goes: the CPU each side used (the client's own,
and the server's: git daemon's or lighttpd's children, upload-pack and
pack-objects), the ceiling that the server's share sets on the ratio, and our
per-repository phases summed from the manifests' timings_ms and the result's
duration_ms against the workers' wall. Prints figures, never fails on time.
Not part of ctest.

    python3 bench/fleet_bench.py [--repos 1000] [--concurrency 8] [--rounds 3] [--cold-only]
        [--transport daemon|http|both] [--engine auto|stream|cli] [--bin build/snapshotter]
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import harness  # noqa: E402

USER, PASSWORD = "bench", "bench-pass"


def build_template() -> Path:
    """A bare repository with 10 commits on main, a second branch and a tag."""
    up = harness.new_upstream(harness.mkdtemp("tpl-"), "template")
    up.git("checkout", "-q", "-b", "main")
    for i in range(10):
        up.commit_file(f"src/file{i % 4}.txt", f"line {i}\n" * (50 + i), f"commit {i}")
    up.git("tag", "v1")
    up.git("branch", "dev", "HEAD~3")
    up.push("main", "dev", "v1")
    up.set_head("refs/heads/main")
    harness.git("repack", "-adq", git_dir=up.bare)
    harness.git("pack-refs", "--all", git_dir=up.bare)
    shutil.rmtree(up.bare / "hooks")  # fewer files to link per copy
    return up.bare


def make_fleet(root: Path, n: int) -> list[str]:
    tpl = build_template()
    names = [f"org{i % 10}/repo-{i:05d}" for i in range(n)]
    for name in names:
        shutil.copytree(tpl, root / f"{name}.git", copy_function=os.link)
    return names


def change_tenth(root: Path, names: list[str], round_no: int) -> int:
    """A new commit on main in every 10th repository (a push, so hardlinks break safely)."""
    work = harness.mkdtemp("chg-") / "w"
    harness.git("clone", "-q", str(root / f"{names[0]}.git"), str(work))
    (work / "changed.txt").write_text(f"round {round_no}\n")
    harness.git("add", "changed.txt", cwd=work)
    harness.git("commit", "-qm", f"change {round_no}", cwd=work)
    changed = names[::10]
    for name in changed:
        harness.git("push", "-q", "--force", str(root / f"{name}.git"), "HEAD:refs/heads/main", cwd=work)
    return len(changed)


# What a round wrote, deleted only when the run ends. A deletion right before a
# measurement slows the one measured: on ext4 without a journal (this
# machine's root), every new inode skips the inodes freed in the last 60-360
# s (ialloc.c, recently_deleted()), reading their inode-table blocks, so a
# mkdir cost 0.35 ms after the clone loop's ~12,000 files of 300 repositories
# were removed, and that fell on whichever pass ran next (ours).
LATER: list[Path] = []


def discard(path: Path) -> None:
    """Delete `path` when the run ends (see LATER)."""
    LATER.append(path)


# The server whose CPU the measurements count (set per transport).
SERVER: dict[str, object] = {"proc": None}


def _proc_cpu(pid: int) -> float:
    """CPU seconds of `pid` and of the children it has reaped (utime, stime, cutime, cstime)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def server_cpu() -> float:
    """CPU seconds the server has used so far: its process and its direct children
    (`git daemon` runs git-daemon as a child, which reaps each connection's
    processes; lighttpd reaps its CGIs), each with what it reaped."""
    proc = SERVER["proc"]
    if proc is None:
        return 0.0
    pids = [proc.pid]
    try:
        pids += [int(c) for c in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    except OSError:
        pass
    return sum(_proc_cpu(pid) for pid in pids)


def timed(argv: list[str], env: dict[str, str], stdin: bytes | None = None, log: Path | None = None):
    """(seconds, completed process, client CPU seconds, server CPU seconds) of one run."""
    # Each measurement starts with no dirty pages left by the one before (the
    # clone loop writes ~1,000 repositories, whose writeback would otherwise
    # land on whichever run comes next).
    os.sync()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = server_cpu()
    start = time.monotonic()
    with open(log or os.devnull, "wb") as err:
        p = subprocess.run(argv, env=env, input=stdin, stdout=subprocess.PIPE, stderr=err)
    secs = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    time.sleep(0.3)  # the server reaps the last connections' processes
    client = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return secs, p, client, server_cpu() - server_before


def snapshot_pass(ws: harness.Workspace, repos: list[dict], concurrency: int, engine: str, label: str):
    payload = ws.snapshot_payload(repos, {"concurrency": concurrency, "max_per_host": concurrency,
                                          "engine": engine, "allow_http": True, "retries": 1})
    # A file, not SNAPSHOTTER_JOB_JSON: Linux caps one environment string at
    # 128 KiB, which a payload of 1,000 repositories with credentials exceeds.
    job_file = ws.root / f"{label}.job.json"
    job_file.write_text(json.dumps(payload))
    env = ws.env({"BENCH_TOKEN": PASSWORD})
    secs, p, client, server = timed([harness.snapshotter_bin(), "--job-file", str(job_file)], env,
                                    log=ws.root / f"{label}.stderr")
    try:
        out = json.loads(p.stdout)
        summary = (out.get("result") or {}).get("summary", {})
    except ValueError:
        out, summary = {}, {}
    if p.returncode != 0:
        print(f"  ! {label}: exit {p.returncode}: {out.get('error')} {out.get('message', '')[:300]}")
    summary = dict(summary, _cpu=(client, server), _phases=phases(ws, out, secs, concurrency))
    return secs, summary


def phases(ws: harness.Workspace, out: dict, wall: float, concurrency: int) -> dict[str, float]:
    """Worker-seconds of a pass by phase: the manifests' timings_ms (list: the
    ref listing; stream: the fetch streamed into the bundle; the rest of
    `total`: planning and the bundle's commit), the result's duration_ms
    beyond `total` (reading the previous snapshot, publishing the manifest
    and latest.json), and the workers' idle time (start, the per-host cap,
    the tail of the run)."""
    sums: dict[str, float] = {"list": 0.0, "stream": 0.0, "total": 0.0}
    for path in glob.glob(str(ws.storage_dir / "repos" / "*" / "manifests" / "*.json")):
        try:
            data = Path(path).read_bytes()  # a version-4 manifest is gzip (docs/manifest.md)
            timings = json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).get("timings_ms", {})
        except (ValueError, OSError):
            continue
        for key in sums:
            sums[key] += timings.get(key, 0) / 1000
    repos = (out.get("result") or {}).get("repositories", [])
    duration = sum(r.get("duration_ms", 0) for r in repos) / 1000
    return {"workers": concurrency * wall, "list": sums["list"], "stream": sums["stream"],
            "plan+bundle commit": sums["total"] - sums["list"] - sums["stream"],
            "read previous+publish": duration - sums["total"], "idle": concurrency * wall - duration}


def xargs_loop(script: str, urls: list[str], concurrency: int, workdir: Path, label: str) -> tuple[float, int]:
    """xargs -P over `script` (sh -c, $1 the URL, $2 a unique dir name); returns (seconds, failures)."""
    lines = "".join(f"{u}\n{i}\n" for i, u in enumerate(urls)).encode()
    env = harness.git_env({"BENCH_DIR": str(workdir)})
    argv = ["xargs", "-P", str(concurrency), "-n", "2", "sh", "-c", script, "sh"]
    secs, p, client, server = timed(argv, env, stdin=lines, log=workdir.parent / f"{label}.stderr")
    CPU[label.split("-")[0]] = (client, server)
    return secs, p.returncode


# label -> (client CPU s, server CPU s) of the last xargs run of that kind.
CPU: dict[str, tuple[float, float]] = {}


CLONE_BUNDLE = ('git clone -q --mirror "$1" "$BENCH_DIR/$2.git" && '
                'git -C "$BENCH_DIR/$2.git" bundle create -q "$BENCH_DIR/$2.bundle" --all')
LS_REMOTE = 'git ls-remote "$1" >/dev/null'


def one_round(kind: str, names: list[str], root: Path, repos: list[dict], git_urls: list[str], args,
              changes: list[int]) -> dict[str, tuple[float, str]]:
    """Every measurement once, baselines first; returns label -> (seconds, note)."""
    c = args.concurrency
    rows: dict[str, tuple[float, str]] = {}
    # Cold for git too: nothing is cached by git between runs.
    d = harness.mkdtemp(f"clone-{kind}-") / "out"
    d.mkdir()
    secs, rc = xargs_loop(CLONE_BUNDLE, git_urls, c, d, f"clone-{kind}")
    rows["clone"] = (secs, "" if rc == 0 else f"(xargs exit {rc})")
    rows["clone_cpu"] = CPU["clone"]
    discard(d.parent)

    ws = harness.Workspace(f"bench-{kind}-")
    secs, cold = snapshot_pass(ws, repos, c, args.engine, "cold")
    rows["cold"] = (secs, f"ok={cold.get('ok')} failed={cold.get('failed')}")
    rows["cold_cpu"] = cold["_cpu"]
    rows["cold_phases"] = cold["_phases"]
    if args.compare_bin:
        # Another build (main's, say), same round, fresh storage.
        own = os.environ["SNAPSHOTTER_BIN"] if "SNAPSHOTTER_BIN" in os.environ else None
        os.environ["SNAPSHOTTER_BIN"] = args.compare_bin
        ws2 = harness.Workspace(f"bench-{kind}-cmp-")
        try:
            secs, other = snapshot_pass(ws2, repos, c, args.engine, "cold-compare")
        finally:
            if own is None:
                del os.environ["SNAPSHOTTER_BIN"]
            else:
                os.environ["SNAPSHOTTER_BIN"] = own
        rows["cold_compare"] = (secs, f"ok={other.get('ok')} failed={other.get('failed')}")
        rows["cold_compare_cpu"] = other["_cpu"]
        discard(ws2.root)
    if args.cold_only:
        discard(ws.root)
        return rows
    d = harness.mkdtemp(f"ls-{kind}-") / "out"
    d.mkdir()
    secs, rc = xargs_loop(LS_REMOTE, git_urls, c, d, f"ls-{kind}")
    rows["ls"] = (secs, "" if rc == 0 else f"(xargs exit {rc})")
    secs, nochg = snapshot_pass(ws, repos, c, args.engine, "nochange")
    rows["nochange"] = (secs, f"unchanged={nochg.get('unchanged')} failed={nochg.get('failed')}")
    changes[0] += 1
    changed = change_tenth(root, names, changes[0])
    secs, chg = snapshot_pass(ws, repos, c, args.engine, "changed")
    rows["changed"] = (secs, f"{changed} changed: ok={chg.get('ok')} unchanged={chg.get('unchanged')} "
                             f"failed={chg.get('failed')}")
    # ls-remote again after the change, so both sides see the same server state.
    secs, _ = xargs_loop(LS_REMOTE, git_urls, c, d, f"ls2-{kind}")
    rows["ls2"] = (secs, "")
    discard(ws.root)
    discard(d.parent)
    return rows


LABELS = {
    "clone": "xargs clone --mirror + bundle",
    "ls": "xargs ls-remote",
    "cold": "snapshotter cold full pass",
    "nochange": "snapshotter no-change pass",
    "changed": "snapshotter 10% changed",
    "ls2": "xargs ls-remote (after the change)",
}


def bench_transport(kind: str, names: list[str], root: Path, url_for, auth_url_for, args, changes: list[int]):
    n, c = len(names), args.concurrency
    creds = {"token_env": "BENCH_TOKEN", "username": USER} if kind == "http" else None
    repos = []
    for name in names:
        r = {"name": name, "url": url_for(f"{name}.git")}
        if creds:
            r["credentials"] = creds
        repos.append(r)
    git_urls = [auth_url_for(f"{name}.git") for name in names]

    # Rounds interleave the tools, so a slow spell of a shared machine hits
    # both sides; the verdicts use the medians.
    rounds = [one_round(kind, names, root, repos, git_urls, args, changes) for _ in range(args.rounds)]
    labels = {k: v for k, v in LABELS.items() if k in rounds[0]}
    med = {k: statistics.median(r[k][0] for r in rounds) for k in labels}

    print(f"\n== {kind}: {n} repositories, concurrency {c}, engine {args.engine}, "
          f"median of {args.rounds} round(s)")
    for key, label in labels.items():
        each = " ".join(f"{r[key][0]:.2f}" for r in rounds)
        print(f"  {label:<36} {med[key]:8.2f} s  {n / med[key]:8.1f} repos/s  [{each}]  {rounds[-1][key][1]}")
    per_round = " ".join(f"{r['clone'][0] / r['cold'][0]:.2f}x" for r in rounds)
    print(f"  clone+bundle / cold       = {med['clone'] / med['cold']:5.2f}x   (target >= 5x)"
          f"  {'MET' if med['clone'] >= 5 * med['cold'] else 'missed'}"
          f"   per round: {per_round}")
    if "cold_compare" in rounds[0]:
        each = " ".join(f"{r['cold_compare'][0] / r['cold'][0]:.2f}x" for r in rounds)
        cmp_med = statistics.median(r["cold_compare"][0] for r in rounds)
        print(f"  cold pass of --compare-bin  {cmp_med:8.2f} s  = {cmp_med / med['cold']:5.2f}x this build's"
              f"   per round: {each}")
    print_where_time_goes(rounds, n, c)
    sys.stdout.flush()
    if "nochange" not in labels:
        return
    ls_best = min(med["ls"], med["ls2"])
    print(f"  no-change / ls-remote     = {med['nochange'] / ls_best:5.2f}x   (target <= 1.2x)"
          f"  {'MET' if med['nochange'] <= 1.2 * ls_best else 'missed'}")
    print(f"  10%-changed / no-change   = {med['changed'] / med['nochange']:5.2f}x")
    sys.stdout.flush()


def print_where_time_goes(rounds: list[dict], n: int, c: int) -> None:
    """The cold pass's time by side and by phase, medians over the rounds."""
    def med(f):
        return statistics.median(f(r) for r in rounds)
    clone_client, clone_server = med(lambda r: r["clone_cpu"][0]), med(lambda r: r["clone_cpu"][1])
    ours_client, ours_server = med(lambda r: r["cold_cpu"][0]), med(lambda r: r["cold_cpu"][1])
    cpus = os.cpu_count() or 1
    print(f"  where the time goes (medians; CPU in s, per repository in ms):")
    print(f"    CPU, clone+bundle loop   client {clone_client:7.2f} ({1000 * clone_client / n:5.1f})  "
          f"server {clone_server:7.2f} ({1000 * clone_server / n:5.1f})")
    print(f"    CPU, snapshotter cold    client {ours_client:7.2f} ({1000 * ours_client / n:5.1f})  "
          f"server {ours_server:7.2f} ({1000 * ours_server / n:5.1f})")
    if "cold_compare_cpu" in rounds[0]:
        cmp_client, cmp_server = med(lambda r: r["cold_compare_cpu"][0]), med(lambda r: r["cold_compare_cpu"][1])
        print(f"    CPU, --compare-bin cold  client {cmp_client:7.2f} ({1000 * cmp_client / n:5.1f})  "
              f"server {cmp_server:7.2f} ({1000 * cmp_server / n:5.1f})")
    if ours_server > 0:
        # On a CPU-bound machine the wall follows the CPU both sides burn;
        # the server's (the same processes for both) is a floor for ours.
        print(f"    CPU ratio (clone loop / cold pass, both sides) = "
              f"{(clone_client + clone_server) / max(ours_client + ours_server, 1e-9):5.2f}x; "
              f"ceiling with our client at zero = {(clone_client + clone_server) / ours_server:5.2f}x; "
              f"the server's CPU alone on {cpus} CPUs needs {ours_server / cpus:6.2f} s of wall")
    names = list(rounds[0]["cold_phases"])
    parts = {k: med(lambda r, k=k: r["cold_phases"][k]) for k in names}
    workers = parts.pop("workers")
    print(f"    worker-seconds of the cold pass ({c} workers x wall) {workers:8.2f}:")
    for k, v in parts.items():
        print(f"      {k:<24} {v:8.2f} s  {100 * v / max(workers, 1e-9):5.1f}%  {1000 * v / n:7.1f} ms/repository")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--transport", choices=("daemon", "http", "both"), default="both")
    parser.add_argument("--engine", choices=("auto", "stream", "cli"), default="auto")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every measurement (medians decide)")
    parser.add_argument("--cold-only", action="store_true",
                        help="measure only the clone+bundle loop and the cold pass (issue 21's target)")
    parser.add_argument("--compare-bin", help="another snapshotter build whose cold pass runs in the same rounds")
    parser.add_argument("--bin", help="snapshotter binary (default $SNAPSHOTTER_BIN or build/snapshotter)")
    args = parser.parse_args()
    if args.bin:
        os.environ["SNAPSHOTTER_BIN"] = os.path.abspath(args.bin)
    harness.setup_module()
    try:
        root = harness.mkdtemp("fleet-")
        start = time.monotonic()
        names = make_fleet(root, args.repos)
        print(f"generated {len(names)} repositories in {time.monotonic() - start:.1f}s under {root}; "
              f"{os.cpu_count()} CPUs; {harness.git('--version').strip()}")
        changes = [0]
        if args.transport in ("daemon", "both"):
            with harness.GitDaemon(root) as daemon:
                SERVER["proc"] = daemon.proc
                bench_transport("daemon", names, root, daemon.url_for, daemon.url_for, args, changes)
        if args.transport in ("http", "both"):
            with harness.SmartHttp(root, {USER: PASSWORD}) as http:
                SERVER["proc"] = http.proc
                auth = lambda name: http.url_for(name).replace("http://", f"http://{USER}:{PASSWORD}@", 1)  # noqa
                bench_transport("http", names, root, http.url_for, auth, args, changes)
    finally:
        for path in LATER:
            shutil.rmtree(path, ignore_errors=True)
        harness.cleanup_all()


if __name__ == "__main__":
    main()
