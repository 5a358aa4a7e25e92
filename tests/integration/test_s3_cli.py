"""The CLI end to end on s3:// with the stock AWS tools (issue 3, items 6 and 7).

moto runs behind the strict SigV4 front of s3harness.py (started once for the
module). A snapshot payload uploaded with `aws s3 cp` runs with
`--job-file s3://bucket/key`; a verify payload uploaded with boto3 runs with
SNAPSHOTTER_JOB_URL; the endpoint for reading the payload comes from
AWS_ENDPOINT_URL_S3, as in a container. Every object snapshotter wrote
carries the requested SSE (`storage.sse: "AES256"`), seen by boto3 and by
`aws s3api head-object`; the bundle that boto3 and `aws s3 cp` download has
the size and SHA-256 the manifest records.
"""

import hashlib
import json
import shutil
import subprocess
import unittest
import urllib.parse

import harness
import s3harness

NAME = "org/cli"
UPSTREAM = None


def setUpModule():
    global UPSTREAM
    harness.setup_module()
    harness.s3_service()  # skips the module when moto_server is absent
    UPSTREAM = harness.build_rich(harness.mkdtemp("up-"), "cli", tag_of_tag=False)


def tearDownModule():
    harness.teardown_module()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class S3Cli(harness.Assertions, unittest.TestCase):
    storage = "s3"

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace(storage=cls.storage)
        cls.store = cls.ws.store
        cls.s3 = cls.store.client
        cls.bucket = cls.store.bucket
        # The snapshot payload goes up with `aws s3 cp` when the command is there, else boto3.
        payload = cls.ws.snapshot_payload([{"url": str(UPSTREAM.bare), "name": NAME}], {"full_every": 1})
        cls.job_id = payload["job_id"]
        cls.payload_key = f"payloads/{cls.store.prefix}/snapshot.json"
        local = cls.ws.root / "snapshot.json"
        local.write_text(json.dumps(payload))
        if cls.aws() is not None:
            p = cls.run_aws("s3", "cp", str(local), f"s3://{cls.bucket}/{cls.payload_key}")
            if p.returncode != 0:
                raise AssertionError(f"aws s3 cp of the payload failed: {p.stderr!r}")
        else:
            cls.s3.put_object(Bucket=cls.bucket, Key=cls.payload_key, Body=local.read_bytes())
        cls.snapshot_run = harness.run_snapshotter(None, job_file=f"s3://{cls.bucket}/{cls.payload_key}",
                                          env=cls.ws.env(cls.payload_env()))

    @classmethod
    def payload_env(cls) -> dict:
        """How a container finds the payload's S3 endpoint: the standard AWS variables."""
        return {"AWS_ENDPOINT_URL_S3": cls.store.endpoint, "AWS_REGION": s3harness.REGION}

    @staticmethod
    def aws():
        return shutil.which("aws")

    @classmethod
    def run_aws(cls, *args: str) -> subprocess.CompletedProcess:
        env = harness.snapshotter_env(cls.ws.home, cls.ws.tmp, dict(cls.store.env(), AWS_DEFAULT_REGION=s3harness.REGION,
                                                                     AWS_PAGER=""))
        return subprocess.run([cls.aws(), "--endpoint-url", cls.store.endpoint, *args], env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)

    def need_aws(self):
        if self.aws() is None:
            self.skipTest("the aws command is not installed")

    def snapshot_result(self) -> dict:
        result = self.assertRunOk(self.snapshot_run, "snapshot from --job-file s3://")
        self.assertEqual(result.get("job_id"), self.job_id, self.snapshot_run.describe())
        r = result["repositories"][0]
        self.assertEqual((r.get("name"), r.get("status"), r.get("kind")), (NAME, "ok", "full"), r)
        return r

    # -- items 6 and 7 ------------------------------------------------------
    def test_job_file_s3_url_runs_the_uploaded_payload(self):
        r = self.snapshot_result()
        sid = r["snapshot_id"]
        m = self.ws.manifest(NAME, sid)
        self.assertEqual((m.get("job_id"), m.get("refs")), (self.job_id, UPSTREAM.ref_map()))
        self.assertEqual(self.ws.latest(NAME), {"snapshot_id": sid, "manifest": harness.manifest_key(NAME, sid)})
        self.assertEqual(self.store.json(f"jobs/{self.job_id}.json").get("job_id"), self.job_id)

    def test_job_url_env_runs_a_payload_uploaded_with_boto3(self):
        sid = self.snapshot_result()["snapshot_id"]
        key = f"payloads/{self.store.prefix}/verify.json"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(self.ws.verify_payload([NAME])).encode())
        run = harness.run_snapshotter(None, env=self.ws.env(dict(self.payload_env(),
                                                                 SNAPSHOTTER_JOB_URL=f"s3://{self.bucket}/{key}")))
        result = self.assertRunOk(run, "verify from SNAPSHOTTER_JOB_URL")
        self.assertEqual(result.get("snapshots"), [{"repository": NAME, "snapshot_id": sid, "ok": True,
                                                    "drill": True, "problems": []}], run.describe())

    def test_missing_payload_object_is_a_payload_error(self):
        url = f"s3://{self.bucket}/payloads/{self.store.prefix}/does-not-exist.json"
        for args, extra in (((), {"SNAPSHOTTER_JOB_URL": url}), (("--job-file", url), {})):
            run = harness.run_snapshotter(None, args=args, env=self.ws.env(dict(self.payload_env(), **extra)))
            out = self.assertRunFails(run, 1, "PayloadError", f"payload at a missing key ({args or extra})")
            self.assertIn(url, out["message"], run.describe())
            self.assertEqual(out["message"].count("does-not-exist.json"), 1, "the name once: " + out["message"])

    def test_sse_on_every_object_written(self):
        sid = self.snapshot_result()["snapshot_id"]
        keys = self.store.keys()
        expected = {harness.manifest_key(NAME, sid), harness.bundle_key(NAME, sid), harness.latest_key(NAME),
                    f"jobs/{self.job_id}.json"}
        self.assertTrue(expected <= set(keys), f"missing {sorted(expected - set(keys))} in {keys}")
        for key in keys:
            self.assertEqual(self.store.head(key).get("ServerSideEncryption"), self.store.SSE,
                             f"boto3 head_object of {self.store.url}/{key}")

    def test_aws_s3api_head_object_shows_sse(self):
        self.need_aws()
        sid = self.snapshot_result()["snapshot_id"]
        for key in (harness.bundle_key(NAME, sid), harness.manifest_key(NAME, sid), harness.latest_key(NAME)):
            p = self.run_aws("s3api", "head-object", "--bucket", self.bucket, "--key", self.store.object_key(key))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(json.loads(p.stdout).get("ServerSideEncryption"), self.store.SSE, f"{key}: {p.stdout!r}")

    def test_boto3_download_of_the_bundle_matches_the_manifest(self):
        r = self.snapshot_result()
        sid = r["snapshot_id"]
        (entry,) = self.ws.manifest(NAME, sid)["bundles"]
        self.assertEqual(entry["key"], harness.bundle_key(NAME, sid))
        target = self.ws.root / "boto3.bundle"
        self.s3.download_file(self.bucket, self.store.object_key(entry["key"]), str(target))
        data = target.read_bytes()
        self.assertEqual((len(data), sha256(data)), (entry["size"], entry["sha256"]), "boto3's download")
        self.assertEqual(r.get("bundle"), {"key": entry["key"], "size": entry["size"], "sha256": entry["sha256"]})
        # It is a git bundle of every upstream ref.
        heads = harness.git("bundle", "list-heads", str(target))
        listed = {line.split(" ", 1)[1]: line.split(" ", 1)[0] for line in heads.splitlines()}
        self.assertEqual({k: v for k, v in listed.items() if k != "HEAD"},
                         {k: v["oid"] for k, v in UPSTREAM.ref_map().items()})

    def test_aws_cli_lists_and_downloads_the_bundle(self):
        self.need_aws()
        sid = self.snapshot_result()["snapshot_id"]
        bkey, mkey = harness.bundle_key(NAME, sid), harness.manifest_key(NAME, sid)
        p = self.run_aws("s3", "ls", "--recursive", f"s3://{self.bucket}/{self.store.prefix}/")
        self.assertEqual(p.returncode, 0, p.stderr)
        for key in (bkey, mkey):
            self.assertIn(self.store.object_key(key).encode(), p.stdout)
        target = self.ws.root / "aws.bundle"
        p = self.run_aws("s3", "cp", f"s3://{self.bucket}/{self.store.object_key(bkey)}", str(target))
        self.assertEqual(p.returncode, 0, p.stderr)
        (entry,) = self.ws.manifest(NAME, sid)["bundles"]
        data = target.read_bytes()
        self.assertEqual((len(data), sha256(data)), (entry["size"], entry["sha256"]), "aws s3 cp's download")


class S3CliRgw(S3Cli):
    """The same against Ceph RGW (rgw.py): SSE-KMS with its testing KMS."""
    storage = "rgw"


class S3RequestBudget(harness.Assertions, unittest.TestCase):
    """What a no-change pass costs on S3, counted at the strict front: one
    ls-refs per repository on the git side, and on S3 one read of the latest
    snapshot (GET latest.json, LIST manifests/, GET the manifest), the new
    manifest and the pointer's compare-and-swap (GET + conditional PUT).
    Reading the latest snapshot twice (once for the rerun check, once for the
    snapshot) would show up here as a second LIST."""

    def test_no_change_pass_reads_the_latest_snapshot_once_per_repository(self):
        ws = harness.Workspace(storage="s3")
        names = [f"budget/r{i}" for i in range(3)]
        repos = [{"url": str(UPSTREAM.bare), "name": n} for n in names]
        cold = harness.run_snapshotter(ws.snapshot_payload(repos), env=ws.env())
        self.assertRunOk(cold, "cold pass")
        front = ws.store.service.front
        before = len(front.log)
        again = harness.run_snapshotter(ws.snapshot_payload(repos), env=ws.env())
        result = self.assertRunOk(again, "no-change pass")
        self.assertEqual(result["summary"]["unchanged"], 3, result)
        # (method, object key or LIST prefix, is-a-LIST), decoded from the front's log.
        requests = []
        for method, raw_path, raw_query, _status, _signed in front.log[before:]:
            query = urllib.parse.parse_qs(raw_query)
            if "list-type" in query:
                requests.append((method, query.get("prefix", [""])[0], True))
            else:
                requests.append((method, urllib.parse.unquote(raw_path).split("/", 2)[-1], False))
        for name in names:
            repo_path = ws.store.object_key(f"repos/{harness.repo_key(name)}/")
            mine = [r for r in requests if r[1].startswith(repo_path)]
            gets_latest = [r for r in mine if r[0] == "GET" and not r[2] and r[1].endswith("/latest.json")]
            lists = [r for r in mine if r[2]]
            puts = [r for r in mine if r[0] == "PUT"]
            self.assertEqual(len(gets_latest), 2, f"{name}: read once, then the compare-and-swap: {mine}")
            self.assertEqual(len(lists), 1, f"{name}: one LIST of manifests/: {mine}")
            self.assertEqual(len(puts), 2, f"{name}: the manifest and latest.json: {mine}")


if __name__ == "__main__":
    unittest.main()
