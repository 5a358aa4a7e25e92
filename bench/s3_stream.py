"""Benchmark: stream a bundle-sized file into each S3 server (moto, Ceph RGW)
with s3_probe (our S3 backend, multipart, parts in parallel) and with
`aws s3 cp`, in the same run; print throughput and peak RSS of each and their
ratios. Prints figures, never fails on time.

    python3 bench/s3_stream.py --probe build/tests/s3_probe [--mib 256 --rounds 4 --large-mib 1024 --large-rounds 2]
                               [--base-probe OTHER/s3_probe] [--concurrency 8] [--front] [--servers moto,rgw]
                               [--no-warmup] [--settle 2]

Both servers run at once and the rounds interleave (moto, RGW, moto, ...),
because the machine is shared: each line carries the load average before and
after it. Within a round the order of the tools rotates through every
permutation (two tools: they alternate; three: each goes first, second and
last as often), so even numbers of rounds (multiples of 6 with --base-probe)
give the fairest medians. --base-probe adds a third tool, another build of
s3_probe (main's, say), measured in the same rounds: "before" and "after" in
one run.

What made the order matter, and what the script does about it (bench/README,
"Order effect"): a fresh moto (or the first upload of a larger size) pays for
growing its heap, so one upload per tool, per server and size, goes first
and is not counted (--no-warmup to skip); moto writes every part and every
assembled object to temporary files under /tmp, and the source file is
written just before its rounds, so dirty pages written back by the kernel
during an upload slowed whichever tool came next; before every upload the
script syncs and waits until the dirty pages are written back, then --settle
seconds. Every object is deleted right after its upload (on RGW its space
is then reclaimed at once with `radosgw-admin gc process --include-all`). Each line also gives
the CPU seconds the server's processes (moto; RGW's radosgw and OSD) spent on
each tool's upload, and moto's resident memory before the round.

--front sends both tools' requests through the strict SigV4 front (Python,
slower); by default they talk to the server directly (moto does not check
signatures, RGW does).
"""

import argparse
import contextlib
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import s3harness  # noqa: E402


def timed(argv, env, stdin=None):
    """Run argv under /usr/bin/time -v; return (seconds, peak RSS in MiB), or
    None when it failed (its error printed)."""
    started = time.monotonic()
    result = subprocess.run(["/usr/bin/time", "-v"] + argv, env=env, stdin=stdin, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        text = result.stderr.decode(errors="replace")
        sys.stderr.write(text[:text.find("\tCommand being timed")] if "\tCommand being timed" in text else text)
        print("%s failed after %.2f s" % (os.path.basename(argv[0]), elapsed), flush=True)
        return None
    rss_kib = int(re.search(rb"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return elapsed, rss_kib / 1024.0


def run_probe(probe, endpoint, source, env, concurrency, key):
    with open(source, "rb") as stdin:
        return timed([probe, "s3://bench/" + key, "-o", "endpoint=" + endpoint, "-o", "region=" + s3harness.REGION,
                      "-o", "upload_concurrency=%d" % concurrency, "stream", "bundle.pack"], env, stdin)


def run_aws(aws, endpoint, source, env):
    return timed([aws, "--endpoint-url", endpoint, "s3", "cp", "--only-show-errors", source,
                  "s3://bench/aws/bundle.pack"], env)


def load():
    return os.getloadavg()[0]


def cpu_seconds(pids):
    """User + system CPU seconds the processes `pids` have used so far."""
    ticks = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    """The resident memory of process `pid` in MiB (0 when unknown)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def dirty_mib():
    """Dirty and under-writeback page cache, in MiB (/proc/meminfo)."""
    total = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(("Dirty:", "Writeback:")):
                total += int(line.split()[1])
    return total / 1024.0


def settle(seconds, limit_mib=64.0, timeout_s=60.0):
    """Write back the dirty page cache (moto's temporary files of the last
    upload, the source file just written) and let the machine calm down,
    so that no upload pays for the one before it.
    Returns the dirty MiB found and the seconds the write-back took."""
    if seconds < 0:
        return 0.0, 0.0
    found = dirty_mib()
    started = time.monotonic()
    os.sync()
    while dirty_mib() > limit_mib and time.monotonic() - started < timeout_s:
        time.sleep(0.2)
    took = time.monotonic() - started
    time.sleep(seconds)
    return found, took


class Tool:
    """One uploader: our s3_probe, a baseline build of it, or `aws s3 cp`."""

    def __init__(self, name, key, run):
        self.name, self.key, self.run = name, key, run


def upload(tool, endpoint, client, source, server_pids, settle_s, cleanup=None):
    """Settle, run `tool` once, delete what it wrote; (seconds, peak RSS MiB,
    server CPU seconds, dirty MiB written back first, seconds that took), or
    None when it failed."""
    dirty, flush_s = settle(settle_s)
    cpu_before = cpu_seconds(server_pids)
    figures = tool.run(endpoint, source)
    server_cpu = cpu_seconds(server_pids) - cpu_before
    client.delete_object(Bucket="bench", Key=tool.key)
    if cleanup is not None:
        cleanup()
    return None if figures is None else (figures[0], figures[1], server_cpu, dirty, flush_s)


def measure(name, endpoint, client, tools, source, mib, server_pids, settle_s, rss_pid, cleanup=None):
    """One round on one server: each of `tools` (in that order) uploads
    `source` once, each copy deleted before the next (RGW's memstore keeps
    objects in RAM, moto keeps them in memory and temporary files). Returns a
    dict of the figures, or None when a tool failed."""
    figures = {"server": name, "mib": mib, "load_before": load(), "order": [t.name for t in tools],
               "server_rss": rss_mib(rss_pid) if rss_pid else 0.0}
    for tool in tools:
        result = upload(tool, endpoint, client, source, server_pids, settle_s, cleanup)
        if result is None:
            print("%-5s %5d MiB  round left out: %s failed" % (name, mib, tool.name), flush=True)
            return None
        figures[tool.name] = result
    figures["load_after"] = load()
    aws_s = figures["aws"][0]
    cells = []
    for tool in sorted(figures["order"], key=lambda n: n == "aws"):
        seconds, rss, cpu, dirty, flush_s = figures[tool]
        cells.append("%s %6.2f s %5.1f MiB/s RSS %3.0f MiB CPU %5.2f s flushed %4.0f MiB in %4.1f s%s" % (
            tool, seconds, mib / seconds, rss, cpu, dirty, flush_s,
            "" if tool == "aws" else " (%.2fx)" % (seconds / aws_s)))
    print("%-5s %5d MiB  %s | order %s | load %.1f->%.1f%s"
          % (name, mib, " | ".join(cells), ",".join(figures["order"]), figures["load_before"], figures["load_after"],
             " | server RSS %.0f MiB" % figures["server_rss"] if rss_pid else ""),
          flush=True)
    return figures


def write_source(path, mib):
    with open(path, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(mib):
            f.write(block[:-8] + i.to_bytes(8, "little"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--probe", required=True)
    parser.add_argument("--base-probe", help="another build of s3_probe (main's, say), measured in the same rounds")
    parser.add_argument("--mib", type=int, default=256, help="size of the rounds that give the median")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--large-mib", type=int, default=1024, help="more rounds at this size (0: none)")
    parser.add_argument("--large-rounds", type=int, default=2,
                        help="rounds at --large-mib (even: each tool goes first as often)")
    parser.add_argument("--concurrency", type=int, default=8, help="storage.upload_concurrency of ours")
    parser.add_argument("--front", action="store_true")
    parser.add_argument("--servers", default="moto,rgw",
                        help="comma-separated: moto, rgw (Ceph RGW from tests/integration/rgw.py)")
    parser.add_argument("--no-warmup", action="store_true",
                        help="count every upload (by default one per tool, server and size is not counted)")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds to wait after syncing before each upload (negative: no sync, no wait)")
    args = parser.parse_args()
    aws = shutil.which("aws")
    if aws is None or not os.path.exists("/usr/bin/time"):
        print("skipped: needs aws and /usr/bin/time")
        return
    print("uptime:", subprocess.run(["uptime"], stdout=subprocess.PIPE, text=True).stdout.strip(), flush=True)
    with tempfile.TemporaryDirectory(prefix="s3-bench-") as tmp, contextlib.ExitStack() as stack:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(HOME=tmp, AWS_ACCESS_KEY_ID=s3harness.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=s3harness.SECRET_KEY,
                   AWS_DEFAULT_REGION=s3harness.REGION, AWS_EC2_METADATA_DISABLED="true", NO_PROXY="127.0.0.1")
        tools = [Tool("ours", "ours/bundle.pack",
                      lambda endpoint, source: run_probe(args.probe, endpoint, source, env, args.concurrency, "ours"))]
        if args.base_probe:
            tools.append(Tool("base", "base/bundle.pack",
                              lambda endpoint, source: run_probe(args.base_probe, endpoint, source, env,
                                                                 args.concurrency, "base")))
        tools.append(Tool("aws", "aws/bundle.pack", lambda endpoint, source: run_aws(aws, endpoint, source, env)))
        orders = list(itertools.permutations(tools))
        # Both servers run for the whole benchmark, so that their rounds interleave.
        servers = []
        for server in args.servers.split(","):
            if server == "moto":
                if s3harness.moto_server_path() is None:
                    print("moto skipped: moto_server is not installed")
                    continue
                h = stack.enter_context(s3harness.S3Harness())
                client = h.boto3_client(direct=True)
                endpoint = h.endpoint if args.front else h.moto_endpoint
                servers.append(("moto", endpoint, client, [h.moto.pid], h.moto.pid, None))
            elif server == "rgw":
                import rgw
                if rgw.missing_tools():
                    print("rgw skipped: %s not installed" % ", ".join(rgw.missing_tools()))
                    continue
                service = rgw.RgwService()
                stack.callback(service.stop)
                service.start()
                client = service.boto3_client(direct=not args.front)
                endpoint = service.endpoint if args.front else service.direct_endpoint
                # RGW frees a deleted object's space only when its garbage
                # collector runs (hours later by default): without this, the
                # 6 GiB memstore OSD fills after five 1 GiB uploads and
                # every write then waits.
                servers.append(("rgw", endpoint, client,
                                [p.pid for n, p in service.cluster.procs.items() if n in ("rgw", "osd")], None,
                                lambda cluster=service.cluster: cluster.admin("gc", "process", "--include-all")))
            else:
                raise SystemExit("unknown server %r" % server)
        for server in servers:
            server[2].create_bucket(Bucket="bench")
        print("servers: %s, %s; ours%s: upload_concurrency %d; aws: CLI defaults (10 threads, 8 MiB parts); "
              "warm-up %s, settle %.1f s" % (", ".join(s[0] for s in servers),
                                             "through the strict front" if args.front else "direct",
                                             " and base" if args.base_probe else "", args.concurrency,
                                             "off" if args.no_warmup else "on", args.settle), flush=True)
        sizes = [args.mib] * args.rounds + ([args.large_mib] * args.large_rounds if args.large_mib else [])
        results = []
        for size in sorted(set(sizes)):
            source = os.path.join(tmp, "bundle-%d.pack" % size)
            write_source(source, size)
            if not args.no_warmup:
                for name, endpoint, client, pids, _, cleanup in servers:
                    for tool in tools:
                        warm = upload(tool, endpoint, client, source, pids, args.settle, cleanup)
                        print("%-5s %5d MiB  warm-up %s: %s" % (name, size, tool.name, "failed" if warm is None else
                                                               "%.2f s, server CPU %.2f s" % (warm[0], warm[2])),
                              flush=True)
            for round_number in range(sizes.count(size)):
                for index, (name, endpoint, client, pids, rss_pid, cleanup) in enumerate(servers):
                    order = orders[(round_number + index) % len(orders)]
                    figures = measure(name, endpoint, client, order, source, size, pids, args.settle, rss_pid,
                                      cleanup)
                    if figures is not None:
                        results.append(figures)
            os.remove(source)
        print("\nsummary (median of each server and size; time ratio < 1: faster than aws s3 cp)")
        for name, *_ in servers:
            for size in sorted(set(sizes)):
                rows = [r for r in results if r["server"] == name and r["mib"] == size]
                if not rows:
                    continue
                for tool in (t.name for t in tools if t.name != "aws"):
                    ratios = [r[tool][0] / r["aws"][0] for r in rows]
                    first = [x for x, r in zip(ratios, rows) if r["order"][0] == tool]
                    print("%-5s %5d MiB x%d %s: %6.2f s, aws %6.2f s, median ratio %.2fx [rounds %s; %s first: %s], "
                          "peak RSS %.0f / aws %.0f MiB, median server CPU %.2f / aws %.2f s"
                          % (name, size, len(rows), tool, statistics.median(r[tool][0] for r in rows),
                             statistics.median(r["aws"][0] for r in rows), statistics.median(ratios),
                             " ".join("%.2f" % x for x in ratios), tool, " ".join("%.2f" % x for x in first) or "-",
                             max(r[tool][1] for r in rows), max(r["aws"][1] for r in rows),
                             statistics.median(r[tool][2] for r in rows),
                             statistics.median(r["aws"][2] for r in rows)))
                if args.base_probe:
                    ratios = [r["ours"][0] / r["base"][0] for r in rows]
                    print("%-5s %5d MiB x%d ours / base: median ratio %.2fx [rounds %s]"
                          % (name, size, len(rows), statistics.median(ratios), " ".join("%.2f" % x for x in ratios)))
    print("uptime:", subprocess.run(["uptime"], stdout=subprocess.PIPE, text=True).stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
