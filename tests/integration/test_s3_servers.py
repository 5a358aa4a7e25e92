"""What differs between S3 servers, run against each: moto and Ceph RGW.

Both sit behind s3harness's strict SigV4 front (request log, injected
faults, refusal of repeated single-valued headers); RGW also checks every
signature itself. Each server class states the facts measured on it
(FIELD-NOTES: "A real S3 server: Ceph RGW") and the tests hold the client to
them:

- a chain of snapshots advances latest.json on each (RGW 16.2 compares
  If-Match against the unquoted ETag);
- a bundle large enough for a multipart upload is written under Object Lock
  (UploadPart once sent Content-MD5 twice), its retention set again with
  PutObjectRetention where the server ignores the upload's;
- a protection the server did not apply fails the repository, naming it and
  the key, or with require_protection false only warns;
- a latest.json that cannot be advanced is a warning and a metric;
- a restart of the S3 endpoint in the middle of an upload does not fail the
  snapshot (RGW: radosgw is stopped and started again mid-upload);
- parts uploaded in parallel: one failing mid-upload is retried and the object
  is exact; one failing for good aborts the upload, after the other parts
  stopped, leaving no upload behind; a CompleteMultipartUpload answered later
  than stall_timeout_s is waited for, not retried (tests/tools/s3_probe);
- every part carries its CRC32 (x-amz-checksum-crc32, declared with
  CreateMultipartUpload, listed in CompleteMultipartUpload), which the front
  checks as S3 does (RGW 16.2 ignores it); a checksum the server answers
  otherwise is an IntegrityError and the upload is aborted;
- every part goes without `Expect: 100-continue`, with a Content-Length, its
  SHA-256 signed, Content-MD5 and the CRC32 (docs/storage-s3.md, "What a
  multipart upload sends").

SNAPSHOTTER_S3_SERVERS=moto skips the RGW class (its cluster takes ~15 s to
start, once for the module).
"""

import hashlib
import json
import os
import random
import re
import subprocess
import threading
import time
import unittest

import harness
from test_s3_storage import probe_path

UPSTREAMS = {}
# Past the 8 MiB part size: a multipart upload of two parts.
MULTIPART_BYTES = 9 * 1024 * 1024 + 4321
# A bundle of several parts, uploaded while the gateway restarts.
OUTAGE_BYTES = 48 * 1024 * 1024
LOCK = {"object_lock_mode": "GOVERNANCE", "object_lock_retain_days": 1}
# Four 8 MiB parts, the last one short, all in flight at once with upload_concurrency=4.
PARALLEL_BYTES = 30 * 1024 * 1024 + 123


def setUpModule():
    harness.setup_module()
    serve = harness.mkdtemp("servers-")
    UPSTREAMS["rich"] = harness.build_rich(serve, "rich", tag_of_tag=False)
    UPSTREAMS["big"] = harness.build_random_blob(serve, "big", MULTIPART_BYTES)


def tearDownModule():
    harness.teardown_module()


def emf_metrics(run) -> dict:
    """The job metrics line (CloudWatch EMF) the run printed on stderr."""
    for line in run.stderr.decode(errors="replace").splitlines():
        if line.startswith("{") and '"_aws"' in line:
            return json.loads(line)
    return {}


class _Server(harness.Assertions):
    server = ""
    # Whether the server applies an Object Lock retention sent with CreateMultipartUpload.
    applies_multipart_retention = True
    # Whether `sse: AES256` over plain HTTP is applied (RGW accepts it without encrypting).
    applies_aes256_over_http = True

    def setUp(self):
        self.ws = harness.Workspace("servers-", storage="rgw" if self.server == "rgw" else "s3")
        self.store = self.ws.store
        self.front = self.store.service.front

    def snapshot(self, names, storage_extra=None, options=None):
        payload = self.ws.snapshot_payload([{"url": str(UPSTREAMS[n].bare), "name": n} for n in names], options)
        storage = dict(payload["storage"], **(storage_extra or {}))
        payload["storage"] = {k: v for k, v in storage.items() if v is not None}  # None: leave the key out
        return self.ws.run(payload)

    def use_lock_bucket(self):
        self.store.bucket = harness.S3_LOCK_BUCKET

    def test_a_chain_of_snapshots_advances_latest_each_time(self):
        up = UPSTREAMS["rich"]
        sids = []
        for step in range(3):
            if step:
                up.commit_file(f"chain-{self.server}-{step}.txt", f"step {step}\n")
                up.push("--all")
            result = self.assertRunOk(self.snapshot(["rich"]), f"snapshot {step + 1}")
            r = result["repositories"][0]
            self.assertEqual(r.get("status"), "ok", r)
            sids.append(r["snapshot_id"])
            self.assertEqual(self.ws.latest("rich").get("snapshot_id"), r["snapshot_id"], f"after snapshot {step + 1}")
            self.assertNotIn("warnings", r, r)
            self.assertEqual(result["summary"].get("latest_not_advanced", 0), 0, result)
        self.assertEqual([r["kind"] for r in [self.ws.manifest("rich", s) for s in sids]],
                         ["full", "incremental", "incremental"])
        target = self.ws.new_target("chain")
        self.assertRunOk(self.ws.run(self.ws.restore_payload("rich", target)), "restore of the chain")
        self.assertRepoEquals(target, up, "restored from the latest of a chain")

    def test_a_multipart_bundle_under_object_lock(self):
        self.use_lock_bucket()
        before = len(self.front.log)
        result = self.assertRunOk(self.snapshot(["big"], LOCK), "a multipart bundle under Object Lock")
        r = result["repositories"][0]
        self.assertGreater(r["bundle"]["size"], 8 << 20, r)
        log = self.front.log[before:]
        parts = [e for e in log if e[0] == "PUT" and "partNumber=" in e[2]]
        self.assertEqual([e[3] for e in parts], [200, 200], parts)
        for key in (r["bundle"]["key"], harness.manifest_key("big", r["snapshot_id"])):
            head = self.store.head(key)
            self.assertEqual(head.get("ObjectLockMode"), "GOVERNANCE", key)
            self.assertIn("ObjectLockRetainUntilDate", head, key)
        # Where the server ignores the upload's retention, the client set it again (and only for the bundle).
        retention = [e for e in log if e[0] == "PUT" and e[2] == "retention="]
        self.assertEqual(len(retention), 0 if self.applies_multipart_retention else 1, log)

    def test_sse_not_applied_fails_or_warns_as_asked(self):
        if self.applies_aes256_over_http:
            self.skipTest(f"{self.server} applies AES256")
        aes256 = {"sse": "AES256", "kms_key_id": None}
        run = self.snapshot(["rich"], aes256)
        out = self.assertRunFails(run, run.rc, "StorageError", "AES256 accepted but not applied")
        r = out["result"]["repositories"][0]
        self.assertIn("server-side encryption AES256", r["message"], r)
        self.assertIn("the server reports none", r["message"], r)
        self.assertNotIn("latest.json", self.store.keys(), "nothing was published")
        warned = self.snapshot(["rich"], dict(aes256, require_protection=False))
        self.assertRunOk(warned, "require_protection false")
        self.assertIn(b"require_protection is false", warned.stderr)

    def test_requested_protections_are_confirmed(self):
        # The store's own SSE (AES256 on moto, SSE-KMS on RGW) on every object written.
        before = len(self.front.log)
        result = self.assertRunOk(self.snapshot(["rich"]), "snapshot with SSE")
        sid = result["repositories"][0]["snapshot_id"]
        for key in (harness.bundle_key("rich", sid), harness.manifest_key("rich", sid), harness.latest_key("rich")):
            self.assertEqual(self.store.head(key).get("ServerSideEncryption"), self.store.SSE, key)
        # Each write answered with its SSE, or was confirmed by a HEAD.
        log = self.front.log[before:]
        self.assertTrue(any(e[0] == "PUT" for e in log), log)

    def stream(self, key, data, *options):
        """Stream `data` into `key` under the store's prefix with s3_probe (the
        backend alone, no snapshot around it), with the storage `options`."""
        probe = probe_path()
        if probe is None or not os.path.exists(probe):
            self.skipTest("s3_probe is not built (set SNAPSHOTTER_BIN or S3_PROBE_BIN)")
        argv = [probe, self.store.url, "-o", "endpoint=" + self.store.endpoint,
                "-o", "region=" + self.store.s3harness.REGION, "-o", "addressing=path"]
        for option in options:
            argv += ["-o", option]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(self.store.env())
        return subprocess.run(argv + ["stream", key], input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, timeout=300)

    def pending_uploads(self):
        listed = self.store.client.list_multipart_uploads(Bucket=self.store.bucket, Prefix=self.store.prefix + "/")
        return listed.get("Uploads", [])

    def stream_with_failing_part(self, key, part, status, code):
        """Stream PARALLEL_BYTES of random data into `key`, 4 parts in flight,
        the first attempt at part `part` answered `status` `code`; the data,
        the run and the front's log of it."""
        data = random.Random(key).randbytes(PARALLEL_BYTES)
        self.front.inject("PUT", status, code, count=1, query="partNumber=%d" % part)
        before = len(self.front.log)
        run = self.stream(key, data, "upload_concurrency=4")
        return data, run, self.front.log[before:]

    def test_a_part_failing_mid_parallel_upload_is_retried_and_the_object_is_exact(self):
        data, run, log = self.stream_with_failing_part("parallel/retried", 3, 500, "InternalError")
        self.assertEqual(run.returncode, 0, run.stderr)
        parts = sorted((int(e[2].split("partNumber=")[1].split("&")[0]), e[3]) for e in log
                       if e[0] == "PUT" and "partNumber=" in e[2])
        self.assertEqual(parts, [(1, 200), (2, 200), (3, 200), (3, 500), (4, 200)], log)
        self.assertEqual(hashlib.sha256(self.store.read("parallel/retried")).hexdigest(),
                         hashlib.sha256(data).hexdigest())
        self.assertEqual(self.pending_uploads(), [])

    def test_a_part_failing_for_good_aborts_the_upload_after_the_others_stop(self):
        _, run, log = self.stream_with_failing_part("parallel/refused", 2, 403, "AccessDenied")
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertIn(b"AccessDenied", run.stderr)
        self.assertIn(b"part 2", run.stderr)
        self.assertNotIn(b"retrying", run.stderr)
        aborts = [i for i, e in enumerate(log) if e[0] == "DELETE" and "uploadId=" in e[2]]
        parts = [i for i, e in enumerate(log) if e[0] == "PUT" and "partNumber=" in e[2]]
        self.assertEqual(len(aborts), 1, log)
        self.assertLess(max(parts), aborts[0], "no part is answered after the abort")
        self.assertEqual(self.pending_uploads(), [])
        self.assertFalse(self.store.exists("parallel/refused"))

    def test_a_slow_complete_is_waited_for_not_retried(self):
        # The server holds its answer to CompleteMultipartUpload for 3 s, longer
        # than the 1 s stall timeout of every other request.
        data = random.Random(18).randbytes(MULTIPART_BYTES)
        self.front.delay_answer("POST", 3, query="uploadId=")
        run = self.stream("parallel/slow-complete", data, "stall_timeout_s=1")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertNotIn(b"retrying", run.stderr)
        self.assertEqual(self.store.read("parallel/slow-complete"), data)

    def test_parts_carry_their_crc32_which_the_front_checks(self):
        data = random.Random(16).randbytes(MULTIPART_BYTES)
        before = len(self.front.log)
        run = self.stream("checksum/parts", data)
        self.assertEqual(run.returncode, 0, run.stderr)
        log = self.front.log[before:]
        create = [e for e in log if e[0] == "POST" and "uploads" in e[2]]
        parts = [e for e in log if e[0] == "PUT" and "partNumber=" in e[2]]
        complete = [e for e in log if e[0] == "POST" and "uploadId=" in e[2]]
        self.assertEqual((len(create), len(parts), len(complete)), (1, 2, 1), log)
        self.assertIn("x-amz-checksum-algorithm", create[0][4].split(";"), log)
        for entry in parts:
            self.assertIn("x-amz-checksum-crc32", entry[4].split(";"), log)
            self.assertEqual(entry[3], 200, log)
        # The front compared each part's CRC32 with its bytes, and the Complete
        # request's list with the parts stored (it refuses a mismatch or a gap).
        self.assertEqual(complete[0][3], 200, log)
        self.assertEqual(self.store.read("checksum/parts"), data)

    def test_parts_go_without_expect_with_a_signed_payload_md5_and_crc32(self):
        """The request shape of docs/storage-s3.md ("What a multipart upload
        sends"): no `Expect: 100-continue` round trip per part, a body with a
        Content-Length, its SHA-256 signed, Content-MD5 and the CRC32 signed."""
        data = random.Random(27).randbytes(MULTIPART_BYTES)
        seen = []
        handler = self.front.server.RequestHandlerClass

        class Recording(handler):
            def parse_request(self):
                ok = super().parse_request()
                if ok and self.command == "PUT" and "partNumber=" in self.path:
                    seen.append({k.lower(): v for k, v in self.headers.items()})
                return ok

        self.front.server.RequestHandlerClass = Recording
        try:
            run = self.stream("shape/parts", data)
        finally:
            self.front.server.RequestHandlerClass = handler
        self.assertEqual(run.returncode, 0, run.stderr)
        parts = [data[:8 << 20], data[8 << 20:]]
        self.assertEqual(sorted(int(h.get("content-length", -1)) for h in seen), sorted(len(p) for p in parts), seen)
        self.assertEqual(sorted(h.get("x-amz-content-sha256") for h in seen),
                         sorted(hashlib.sha256(p).hexdigest() for p in parts))
        for h in seen:
            self.assertNotIn("expect", h, h)
            self.assertNotIn("transfer-encoding", h, h)
            signed = re.search(r"SignedHeaders=([^,\s]+)", h.get("authorization", "")).group(1).split(";")
            for name in ("content-md5", "x-amz-checksum-crc32", "x-amz-content-sha256"):
                self.assertIn(name, signed, h)
        self.assertEqual(self.store.read("shape/parts"), data)

    def test_the_front_refuses_a_crc32_that_does_not_match_the_bytes(self):
        import botocore.exceptions
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.store.client.put_object(Bucket=self.store.bucket, Key=self.store.prefix + "/checksum/bad",
                                         Body=b"123456789", ChecksumCRC32="AAAAAA==")
        self.assertEqual(caught.exception.response["Error"]["Code"], "BadDigest")
        self.store.client.put_object(Bucket=self.store.bucket, Key=self.store.prefix + "/checksum/good",
                                     Body=b"123456789", ChecksumCRC32="y/Q5Jg==")

    def test_a_part_crc32_the_server_answers_otherwise_is_an_integrity_error(self):
        data = random.Random(17).randbytes(MULTIPART_BYTES)
        self.front.set_answer_header("PUT", "x-amz-checksum-crc32", "AAAAAA==", query="partNumber=2")
        run = self.stream("checksum/answered", data)
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertIn(b"IntegrityError", run.stderr)
        self.assertIn(b"part 2", run.stderr)
        self.assertIn(b"CRC32", run.stderr)
        self.assertEqual(self.pending_uploads(), [])
        self.assertFalse(self.store.exists("checksum/answered"))

    def test_latest_that_cannot_advance_is_a_warning_and_a_metric(self):
        self.assertRunOk(self.snapshot(["rich"]), "first snapshot")
        first = self.ws.latest("rich")
        up = UPSTREAMS["rich"]
        up.commit_file(f"stuck-{self.server}.txt", "stuck\n")
        up.push("--all")
        # Both spellings of If-Match refused though latest.json did not change.
        self.front.inject("PUT", 412, "PreconditionFailed", count=2, path="latest.json")
        run = self.snapshot(["rich"])
        result = self.assertRunOk(run, "a pointer that cannot be advanced")
        r = result["repositories"][0]
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(len(r.get("warnings", [])), 1, r)
        self.assertIn("latest.json not advanced", r["warnings"][0], r)
        self.assertIn("does not honour If-Match", r["warnings"][0], r)
        self.assertEqual(result["summary"]["latest_not_advanced"], 1, result)
        self.assertEqual(emf_metrics(run).get("LatestNotAdvanced"), 1, run.describe())
        self.assertEqual(self.ws.latest("rich"), first, "the pointer stays")
        self.assertTrue(self.store.exists(harness.manifest_key("rich", r["snapshot_id"])), "the snapshot is committed")


class Moto(_Server, unittest.TestCase):
    server = "moto"
    applies_multipart_retention = False


class Rgw(_Server, unittest.TestCase):
    server = "rgw"
    applies_multipart_retention = False
    applies_aes256_over_http = False

    def test_a_gateway_restart_mid_upload_does_not_fail_the_snapshot(self):
        serve = harness.mkdtemp("outage-")
        up = harness.build_random_blob(serve, "outage", OUTAGE_BYTES)
        UPSTREAMS["outage"] = up
        cluster = self.store.service.cluster
        before = len(self.front.log)
        restarted = {}

        def restart_after_first_part():
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if any(e[0] == "PUT" and "partNumber=" in e[2] and e[3] == 200 for e in self.front.log[before:]):
                    started = time.monotonic()
                    cluster.stop_gateway()
                    time.sleep(2)
                    cluster.start_gateway()
                    restarted["seconds"] = time.monotonic() - started
                    return
                time.sleep(0.05)

        thread = threading.Thread(target=restart_after_first_part, daemon=True)
        thread.start()
        run = self.snapshot(["outage"])
        thread.join(timeout=130)
        self.assertIn("seconds", restarted, "radosgw was restarted during the upload")
        print(f"\nradosgw down for {restarted['seconds']:.1f} s mid-upload", flush=True)
        result = self.assertRunOk(run, "snapshot through a gateway restart")
        r = result["repositories"][0]
        self.assertGreater(r["bundle"]["size"], OUTAGE_BYTES, r)
        self.assertIn(b"retrying in", run.stderr, "some request met the outage")
        target = self.ws.new_target("outage")
        self.assertRunOk(self.ws.run(self.ws.restore_payload("outage", target)), "restore after the outage")
        self.assertRepoEquals(target, up, "restored after the outage")


del _Server

if __name__ == "__main__":
    unittest.main()
