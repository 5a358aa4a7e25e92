#!/usr/bin/env python3
"""Discovery of a large fleet (issue 18): one source listing N repositories
through the fake GitHub, GitLab, Gitea and Bitbucket APIs of
tests/integration/forge_fake.py, in a dry run whose filter keeps one
repository, so what is measured is the listing itself: API requests, wall
time, CPU time and peak memory of the snapshotter process.

The baseline measured beside it is the same binary with a payload of one
explicit repository (the fixed cost of a dry run).

    python3 bench/sources_bench.py --bin build/snapshotter --repos 1000,10000 [--keep all]

Peak memory is the child's VmHWM (ru_maxrss of wait4, in KiB); the
difference between the first two fleet sizes, divided by the difference in
repositories, is what each listed repository costs at the peak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from forge_fake import BitbucketFake, GiteaFake, GitHubFake, GitLabFake, Repo  # noqa: E402

TOKEN = "bench-token-0123456789"
TIME = "/usr/bin/time"  # GNU time (Debian package `time`)


def run(binary: str, payload: dict, workdir: Path) -> tuple[dict, float, float, int]:
    """(result, wall s, CPU s, peak RSS KiB) of one dry run.

    The figures come from GNU time, which forks the snapshotter from its own
    small process: the peak RSS (ru_maxrss, the process's VmHWM) that wait4
    reports for a child Python spawned directly also counts the pages of the
    Python process it was forked from (the fakes hold every listed repository),
    which hid the snapshotter's own figure under the bench's."""
    job = workdir / "job.json"
    job.write_text(json.dumps(payload))
    env = {"PATH": os.environ["PATH"], "HOME": str(workdir), "FORGE_TOKEN": TOKEN}
    usage_file = workdir / "usage.txt"
    start = time.monotonic()
    with open(workdir / "stderr.log", "wb") as err:
        p = subprocess.run([TIME, "-o", str(usage_file), "-f", "%U %S %M", binary, "--job-file", str(job),
                            "--dry-run", "--log-level", "warn"], env=env, stdout=subprocess.PIPE, stderr=err)
    stdout = p.stdout
    stderr = (workdir / "stderr.log").read_bytes()
    wall = time.monotonic() - start
    out = json.loads(stdout)
    # The kept repositories' URLs are dead on purpose: their failures are expected.
    if "result" not in out:
        raise SystemExit(f"run failed: {stdout!r} {stderr[-2000:]!r}")
    user, system, maxrss = usage_file.read_text().split()[-3:]
    return out["result"], wall, float(user) + float(system), int(maxrss)


FORGES = (
    ("github", GitHubFake, lambda f: {"type": "github", "api_url": f.base_url, "org": "big"}),
    ("gitlab", GitLabFake, lambda f: {"type": "gitlab", "api_url": f.base_url + "/api/v4", "group": "big"}),
    ("gitea", GiteaFake, lambda f: {"type": "gitea", "api_url": f.base_url + "/api/v1", "org": "big"}),
    ("bitbucket", BitbucketFake, lambda f: {"type": "bitbucket", "api_url": f.base_url + "/2.0",
                                            "workspace": "big"}),
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/snapshotter")
    ap.add_argument("--repos", default="1000,10000",
                    help="comma-separated fleet sizes; the first two also give the peak memory per repository")
    ap.add_argument("--forges", default=",".join(f[0] for f in FORGES))
    ap.add_argument("--keep", choices=("one", "all"), default="one",
                    help="one: the filter keeps one repository (the listing and the filters' report are "
                         "measured); all: every listed repository is kept and checked by the dry run "
                         "(the job's repository list is measured too)")
    args = ap.parse_args()
    if not os.access(TIME, os.X_OK):
        raise SystemExit(f"{TIME} is needed (Debian package `time`): it measures the snapshotter's own peak RSS")
    sizes = [int(n) for n in args.repos.split(",")]
    binary = str(Path(args.bin).resolve())
    work = Path(tempfile.mkdtemp(prefix="sources-bench-"))
    storage = {"url": str(work / "storage")}
    options = {"allow_http": True, "cache_dir": str(work / "cache"), "retries": 0}
    # A clone URL nobody serves: the dry run's check of each kept repository
    # fails fast on a closed port, the same in every row.
    dead = "http://127.0.0.1:9/none.git"

    base = {"version": 1, "storage": storage, "options": options,
            "repositories": [{"url": dead, "name": "baseline/one"}]}
    _, wall0, cpu0, rss0 = run(binary, base, work)
    print(f"baseline (one explicit repository): wall {wall0:.2f} s, CPU {cpu0:.2f} s, peak RSS (VmHWM) {rss0} KiB")
    print(f"{'forge':10} {'repos':>6} {'kept':>6} {'requests':>8} {'wall s':>7} {'CPU s':>6} {'CPU over baseline':>17} "
          f"{'VmHWM KiB':>10}")
    for name, cls, source in FORGES:
        if name not in args.forges.split(","):
            continue
        peaks = []
        for n in sizes:
            fake = cls(token=TOKEN)
            try:
                for i in range(n):
                    fake.add(Repo(f"big/r{i:05}", dead, topics=["t"], has_wiki=True))
                src = source(fake)
                src.update({"credentials": {"token_env": "FORGE_TOKEN"}})
                if args.keep == "one":
                    src["include"] = ["big/r00000"]
                payload = {"version": 1, "storage": storage, "options": options, "sources": [src]}
                result, wall, cpu, rss = run(binary, payload, work)
                s = result["sources"][0]
                assert s["listed"] == n, s
                peaks.append(rss)
                print(f"{name:10} {s['listed']:>6} {s['kept']:>6} {s['api_requests']:>8} {wall:>7.2f} {cpu:>6.2f} "
                      f"{cpu - cpu0:>17.2f} {rss:>10}")
            finally:
                fake.stop()
        if len(sizes) >= 2:
            per = (peaks[1] - peaks[0]) * 1024 / (sizes[1] - sizes[0])
            print(f"{name:10} peak memory per listed repository ({sizes[0]} -> {sizes[1]}): {per:.0f} bytes")


if __name__ == "__main__":
    main()
