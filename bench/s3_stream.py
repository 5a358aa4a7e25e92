"""Benchmark: stream a bundle-sized file into each S3 server (moto, Ceph RGW)
with s3_probe (our S3 backend, multipart, parts in parallel) and with
`aws s3 cp`, in the same run; print throughput and peak RSS of each and their
ratios. Prints figures, never fails on time.

    python3 bench/s3_stream.py --probe build/tests/s3_probe [--mib 256 --rounds 3 --large-mib 1024 --large-rounds 1]
                               [--concurrency 8] [--front] [--servers moto,rgw]

Both servers run at once and the rounds interleave (moto, RGW, moto, ...),
with the order of the two tools alternating, because the machine is shared:
each line carries the load average before and after it. On moto the tool
that went first in a round was the slower one in most rounds measured on
2026-12-04 (not explained; perhaps moto's heap growing during the first
upload), so even numbers of rounds, where each tool goes first as often,
give the fairer medians. Each line also gives the CPU seconds the server's
processes (moto; RGW's radosgw and OSD) spent on each tool's upload.

--front sends both tools' requests through the strict SigV4 front (Python,
slower); by default they talk to the server directly (moto does not check
signatures, RGW does).
"""

import argparse
import contextlib
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


def run_ours(probe, endpoint, source, env, concurrency):
    with open(source, "rb") as stdin:
        return timed([probe, "s3://bench/ours", "-o", "endpoint=" + endpoint, "-o", "region=" + s3harness.REGION,
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


def measure(name, endpoint, client, probe, aws, source, mib, env, concurrency, ours_first, server_pids=()):
    """One round on one server: stream `source` with s3_probe and `aws s3 cp` it
    (in the order given), deleting each copy before the next (RGW's memstore
    keeps objects in RAM). Returns a dict of the figures, with the CPU
    seconds the server's processes `server_pids` spent on each tool's upload."""
    figures = {"server": name, "mib": mib, "load_before": load()}
    for tool in (("ours", "aws") if ours_first else ("aws", "ours")):
        cpu_before = cpu_seconds(server_pids)
        if tool == "ours":
            figures["ours"] = run_ours(probe, endpoint, source, env, concurrency)
        else:
            figures["aws"] = run_aws(aws, endpoint, source, env)
        figures[tool + "_server_cpu"] = cpu_seconds(server_pids) - cpu_before
        client.delete_object(Bucket="bench", Key="ours/bundle.pack" if tool == "ours" else "aws/bundle.pack")
        if figures[tool] is None:
            print("%-5s %5d MiB  round left out: %s failed" % (name, mib, tool), flush=True)
            return None
    figures["load_after"] = load()
    (ours_s, ours_rss), (aws_s, aws_rss) = figures["ours"], figures["aws"]
    print("%-5s %5d MiB  ours %6.2f s %6.1f MiB/s RSS %5.1f MiB | aws %6.2f s %6.1f MiB/s RSS %5.1f MiB | "
          "time %.2fx RSS %.2fx | server CPU ours %.2f s aws %.2f s | load %.1f->%.1f (%s first)"
          % (name, mib, ours_s, mib / ours_s, ours_rss, aws_s, mib / aws_s, aws_rss, ours_s / aws_s,
             ours_rss / aws_rss, figures["ours_server_cpu"], figures["aws_server_cpu"], figures["load_before"],
             figures["load_after"], "ours" if ours_first else "aws"),
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
    parser.add_argument("--mib", type=int, default=256, help="size of the rounds that give the median")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--large-mib", type=int, default=1024, help="more rounds at this size (0: none)")
    parser.add_argument("--large-rounds", type=int, default=1,
                        help="rounds at --large-mib (even: each tool goes first as often)")
    parser.add_argument("--concurrency", type=int, default=8, help="storage.upload_concurrency of ours")
    parser.add_argument("--front", action="store_true")
    parser.add_argument("--servers", default="moto,rgw",
                        help="comma-separated: moto, rgw (Ceph RGW from tests/integration/rgw.py)")
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
                servers.append(("moto", endpoint, client, [h.moto.pid]))
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
                servers.append(("rgw", endpoint, client,
                                [p.pid for n, p in service.cluster.procs.items() if n in ("rgw", "osd")]))
            else:
                raise SystemExit("unknown server %r" % server)
        for _, _, client, _ in servers:
            client.create_bucket(Bucket="bench")
        print("servers: %s, %s; ours: upload_concurrency %d, 8 MiB parts; aws: CLI defaults (10 threads, 8 MiB "
              "parts)" % (", ".join(s[0] for s in servers), "through the strict front" if args.front else "direct",
                          args.concurrency), flush=True)
        sizes = [args.mib] * args.rounds + ([args.large_mib] * args.large_rounds if args.large_mib else [])
        results = []
        for size in sorted(set(sizes)):
            source = os.path.join(tmp, "bundle-%d.pack" % size)
            write_source(source, size)
            for round_number in range(sizes.count(size)):
                for index, (name, endpoint, client, pids) in enumerate(servers):
                    ours_first = (round_number + index) % 2 == 0
                    figures = measure(name, endpoint, client, args.probe, aws, source, size, env,
                                      args.concurrency, ours_first, pids)
                    if figures is not None:
                        results.append(figures)
            os.remove(source)
        print("\nsummary (median of each server and size; time ratio < 1: ours is faster)")
        for name, _, _, _ in servers:
            for size in sorted(set(sizes)):
                rows = [r for r in results if r["server"] == name and r["mib"] == size]
                if not rows:
                    continue
                ours = statistics.median(r["ours"][0] for r in rows)
                theirs = statistics.median(r["aws"][0] for r in rows)
                ratios = ", ".join("%.2fx" % (r["ours"][0] / r["aws"][0]) for r in rows)
                print("%-5s %5d MiB x%d: ours %6.2f s, aws %6.2f s, median ratio %.2fx [rounds %s], peak RSS ours "
                      "%.0f MiB / aws %.0f MiB, median server CPU ours %.2f s / aws %.2f s"
                      % (name, size, len(rows), ours, theirs, ours / theirs, ratios,
                         max(r["ours"][1] for r in rows), max(r["aws"][1] for r in rows),
                         statistics.median(r["ours_server_cpu"] for r in rows),
                         statistics.median(r["aws_server_cpu"] for r in rows)))
    print("uptime:", subprocess.run(["uptime"], stdout=subprocess.PIPE, text=True).stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
