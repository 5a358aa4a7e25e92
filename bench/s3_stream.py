"""Benchmark: stream a bundle-sized file into each S3 server (moto, Ceph RGW)
with s3_probe (our S3 backend, multipart, parts in parallel) and with
`aws s3 cp`, in the same run; print throughput and peak RSS of each and their
ratios. Prints figures, never fails on time.

    python3 bench/s3_stream.py --probe build/tests/s3_probe [--mib 1024] [--front] [--servers moto,rgw]

--front sends both tools' requests through the strict SigV4 front (Python,
slower); by default they talk to the server directly (moto does not check
signatures, RGW does).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import s3harness  # noqa: E402


def timed(argv, env, stdin=None):
    """Run argv under /usr/bin/time -v; return (seconds, peak RSS in MiB)."""
    started = time.monotonic()
    result = subprocess.run(["/usr/bin/time", "-v"] + argv, env=env, stdin=stdin, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.stderr.write(result.stderr.decode(errors="replace"))
        raise SystemExit("%s failed" % argv[0])
    rss_kib = int(re.search(rb"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return elapsed, rss_kib / 1024.0


def measure(name, endpoint, client, probe, aws, source, mib, env):
    """Stream `source` with s3_probe, then `aws s3 cp` it, into bucket "bench" at `endpoint`."""
    with open(source, "rb") as stdin:
        ours_s, ours_rss = timed([probe, "s3://bench/ours", "-o", "endpoint=" + endpoint, "-o",
                                  "region=" + s3harness.REGION, "stream", "bundle.pack"], env, stdin)
    # Free the server's memory (RGW's memstore keeps objects in RAM) before the second copy.
    client.delete_object(Bucket="bench", Key="ours/bundle.pack")
    theirs_s, theirs_rss = timed([aws, "--endpoint-url", endpoint, "s3", "cp", "--quiet", source,
                                  "s3://bench/aws/bundle.pack"], env)
    client.delete_object(Bucket="bench", Key="aws/bundle.pack")
    print("stream %d MiB to %s" % (mib, name))
    print("  snapshotter s3 backend: %6.2f s  %7.1f MiB/s  peak RSS %6.1f MiB" % (ours_s, mib / ours_s, ours_rss))
    print("  aws s3 cp:              %6.2f s  %7.1f MiB/s  peak RSS %6.1f MiB" % (theirs_s, mib / theirs_s,
                                                                                 theirs_rss))
    print("  ratio ours/aws: time %.2fx, peak RSS %.2fx" % (ours_s / theirs_s, ours_rss / theirs_rss), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--probe", required=True)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--front", action="store_true")
    parser.add_argument("--servers", default="moto,rgw",
                        help="comma-separated: moto, rgw (Ceph RGW from tests/integration/rgw.py)")
    args = parser.parse_args()
    aws = shutil.which("aws")
    if aws is None or not os.path.exists("/usr/bin/time"):
        print("skipped: needs aws and /usr/bin/time")
        return
    with tempfile.TemporaryDirectory(prefix="s3-bench-") as tmp:
        source = os.path.join(tmp, "bundle.pack")
        with open(source, "wb") as f:
            block = os.urandom(1 << 20)
            for i in range(args.mib):
                f.write(block[:-8] + i.to_bytes(8, "little"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(HOME=tmp, AWS_ACCESS_KEY_ID=s3harness.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=s3harness.SECRET_KEY,
                   AWS_DEFAULT_REGION=s3harness.REGION, AWS_EC2_METADATA_DISABLED="true", NO_PROXY="127.0.0.1")
        for server in args.servers.split(","):
            if server == "moto":
                if s3harness.moto_server_path() is None:
                    print("moto skipped: moto_server is not installed")
                    continue
                with s3harness.S3Harness() as h:
                    client = h.boto3_client(direct=True)
                    client.create_bucket(Bucket="bench")
                    endpoint = h.endpoint if args.front else h.moto_endpoint
                    measure("moto" + (" through the strict front" if args.front else ""), endpoint, client,
                            args.probe, aws, source, args.mib, env)
            elif server == "rgw":
                import rgw
                if rgw.missing_tools():
                    print("rgw skipped: %s not installed" % ", ".join(rgw.missing_tools()))
                    continue
                service = rgw.RgwService()
                service.start()
                try:
                    client = service.boto3_client(direct=not args.front)
                    client.create_bucket(Bucket="bench")
                    endpoint = service.endpoint if args.front else service.direct_endpoint
                    measure("Ceph RGW" + (" through the strict front" if args.front else ""), endpoint, client,
                            args.probe, aws, source, args.mib, env)
                finally:
                    service.stop()
            else:
                raise SystemExit("unknown server %r" % server)


if __name__ == "__main__":
    main()
