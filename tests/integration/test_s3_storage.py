"""The s3:// backend against moto behind a strict SigV4-checking front.

The snapshotter CLI is being written separately, so these tests drive the
backend through tests/tools/s3_probe (built next to the snapshotter binary),
and check what it wrote with boto3 and the aws command.
"""

import hashlib
import os
import random
import shutil
import subprocess
import tempfile
import time
import unittest

import s3harness

BUCKET = "snap-test"
HARNESS = None


def probe_path():
    explicit = os.environ.get("S3_PROBE_BIN")
    if explicit:
        return explicit
    binary = os.environ.get("SNAPSHOTTER_BIN")
    if not binary:
        return None
    return os.path.join(os.path.dirname(binary), "tests", "s3_probe")


def setUpModule():
    global HARNESS
    if s3harness.moto_server_path() is None:
        raise unittest.SkipTest("moto_server is not installed")
    probe = probe_path()
    if probe is None or not os.path.exists(probe):
        raise unittest.SkipTest("s3_probe is not built (set SNAPSHOTTER_BIN or S3_PROBE_BIN)")
    HARNESS = s3harness.S3Harness()
    # Module cleanups run even when setUpModule fails halfway.
    unittest.addModuleCleanup(HARNESS.stop)
    HARNESS.start()
    # botocore through the strict front: proves the front accepts AWS's own signer.
    HARNESS.boto3_client().create_bucket(Bucket=BUCKET)


class ProbeTestCase(unittest.TestCase):
    def setUp(self):
        self.home = tempfile.mkdtemp(prefix="s3-test-home-")
        self.addCleanup(shutil.rmtree, self.home, True)
        self.s3 = HARNESS.boto3_client()

    def env(self, credentials=True, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(HOME=self.home, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
                   AWS_EC2_METADATA_DISABLED="true")
        if credentials:
            env.update(AWS_ACCESS_KEY_ID=s3harness.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=s3harness.SECRET_KEY)
        env.update(extra)
        return env

    def probe(self, prefix, *args, data=None, env=None, options=(), check=True):
        argv = [probe_path(), "s3://%s/%s" % (BUCKET, prefix), "-o", "endpoint=" + HARNESS.endpoint,
                "-o", "region=" + s3harness.REGION]
        for option in options:
            argv += ["-o", option]
        argv += list(args)
        result = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env if env is not None else self.env(), timeout=300)
        if check and result.returncode != 0:
            self.fail("s3_probe %s failed (%d): %s" % (" ".join(args), result.returncode,
                                                        result.stderr.decode(errors="replace")))
        return result


class S3StorageTest(ProbeTestCase):
    def test_small_put_get_head_with_awkward_keys(self):
        for key in ["plain.txt", "dir/with space+plus=eq&amp.txt", "unicode/\u043a\u043b\u044e\u0447 \u20ac.bin",
                    "q/what?#frag~tilde"]:
            data = ("content of %s" % key).encode()
            self.probe("small", "put", key, data=data)
            self.assertEqual(self.probe("small", "get", key).stdout, data)
            head = self.probe("small", "head", key).stdout.decode()
            self.assertTrue(head.startswith("%d " % len(data)), head)
            # boto3 sees the same bytes under prefix + key.
            body = self.s3.get_object(Bucket=BUCKET, Key="small/" + key)["Body"].read()
            self.assertEqual(body, data)
        self.assertEqual(self.probe("small", "head", "missing").stdout.decode().strip(), "absent")
        # An empty object is a single empty PutObject.
        self.probe("small", "put", "empty", data=b"")
        self.assertEqual(self.probe("small", "get", "empty").stdout, b"")
        self.assertEqual(self.s3.head_object(Bucket=BUCKET, Key="small/empty")["ContentLength"], 0)

    def test_payload_read_by_url_uses_the_environment(self):
        # What `--job-file s3://...` / SNAPSHOTTER_JOB_URL need: a payload
        # uploaded with boto3, read back with the endpoint from AWS_ENDPOINT_URL_S3.
        payload = b'{"repositories": []}'
        self.s3.put_object(Bucket=BUCKET, Key="payloads/job.json", Body=payload)
        env = self.env(AWS_ENDPOINT_URL_S3=HARNESS.endpoint, AWS_REGION=s3harness.REGION)
        result = subprocess.run([probe_path(), "read-url", "s3://%s/payloads/job.json" % BUCKET], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, payload)
        missing = subprocess.run([probe_path(), "read-url", "s3://%s/payloads/nope.json" % BUCKET], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(missing.returncode, 2)
        self.assertIn(b"NotFound", missing.stderr)

    def test_get_missing_is_not_found(self):
        result = self.probe("small", "get", "does/not/exist", check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn(b"NotFound", result.stderr)

    def test_check_writes_nothing(self):
        before = len(HARNESS.front.log)
        self.probe("check-prefix", "check")
        methods = {entry[0] for entry in HARNESS.front.log[before:]}
        self.assertEqual(methods, {"GET"})

    def test_streamed_multipart_upload_of_40_mib(self):
        data = random.Random(40).randbytes(40 << 20)
        before = len(HARNESS.front.log)
        started = time.monotonic()
        self.probe("big", "stream", "bundle.pack", data=data)
        elapsed = time.monotonic() - started
        print("\n40 MiB multipart upload through the strict front: %.2f s" % elapsed)
        log = HARNESS.front.log[before:]
        parts = [e for e in log if e[0] == "PUT" and "partNumber=" in e[2]]
        self.assertEqual(len(parts), 5)  # 8 MiB parts
        self.assertTrue(any(e[0] == "POST" and e[2] == "uploads=" for e in log))
        self.assertTrue(any(e[0] == "POST" and "uploadId=" in e[2] and e[3] == 200 for e in log))
        obj = self.s3.get_object(Bucket=BUCKET, Key="big/bundle.pack")
        self.assertEqual(hashlib.sha256(obj["Body"].read()).hexdigest(), hashlib.sha256(data).hexdigest())
        # And back through our own reader.
        got = self.probe("big", "get", "bundle.pack").stdout
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest())
        uploads = self.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
        self.assertEqual(uploads, [])

    def test_overwrite_no_conflicts(self):
        self.probe("cond", "put", "manifest.json", "--no-overwrite", data=b"first")
        result = self.probe("cond", "put", "manifest.json", "--no-overwrite", data=b"second", check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn(b"Conflict", result.stderr)
        self.assertEqual(self.probe("cond", "get", "manifest.json").stdout, b"first")
        # A multipart stream must not overwrite either, and leaves no upload behind.
        result = self.probe("cond", "stream", "manifest.json", "--no-overwrite", data=b"x" * (9 << 20), check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn(b"Conflict", result.stderr)
        self.assertEqual(self.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []), [])
        # Overwrite::yes replaces.
        self.probe("cond", "put", "manifest.json", data=b"third")
        self.assertEqual(self.probe("cond", "get", "manifest.json").stdout, b"third")

    def test_if_none_match_is_sent_and_412_is_conflict(self):
        # The store answers 412 (as S3 does when another writer won the race
        # after our HEAD): that is a Conflict, and If-None-Match was signed.
        HARNESS.front.inject("PUT", 412, "PreconditionFailed")
        before = len(HARNESS.front.log)
        result = self.probe("cond412", "put", "pointer", "--no-overwrite", data=b"p", check=False)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn(b"Conflict", result.stderr)
        puts = [e for e in HARNESS.front.log[before:] if e[0] == "PUT"]
        self.assertIn("if-none-match", puts[0][4].split(";"))
        # moto itself enforces If-None-Match: * on a real second write.
        self.probe("cond412", "put", "pointer", "--no-overwrite", data=b"p")
        with self.assertRaises(Exception) as caught:
            self.s3.put_object(Bucket=BUCKET, Key="cond412/pointer", Body=b"q", IfNoneMatch="*")
        self.assertIn("PreconditionFailed", str(caught.exception))

    def test_list_with_continuation_and_batch_delete(self):
        direct = HARNESS.boto3_client(direct=True)
        keys = ["many/k%04d" % i for i in range(1100)]
        for key in keys:
            direct.put_object(Bucket=BUCKET, Key=key, Body=b"x")
        before = len(HARNESS.front.log)
        listed = self.probe("", "list", "many/").stdout.decode().splitlines()
        self.assertEqual([line.split()[0] for line in listed], keys)
        lists = [e for e in HARNESS.front.log[before:] if e[0] == "GET" and "list-type=2" in e[2]]
        self.assertGreaterEqual(len(lists), 2)
        self.assertTrue(any("continuation-token=" in e[2] for e in lists))
        self.assertTrue(all("prefix=many%2F" in e[2] for e in lists))  # AWS-correct %2F, checked strictly
        before = len(HARNESS.front.log)
        self.assertEqual(self.probe("", "delete-prefix", "many/").stdout.strip(), b"1100")
        deletes = [e for e in HARNESS.front.log[before:] if e[0] == "POST" and "delete=" in e[2]]
        self.assertEqual(len(deletes), 2)  # 1000 + 100
        self.assertEqual(self.s3.list_objects_v2(Bucket=BUCKET, Prefix="many/")["KeyCount"], 0)

    def test_sse_aes256_is_visible_to_boto3(self):
        self.probe("sse", "put", "small", data=b"secret bytes", options=["sse=AES256"])
        self.probe("sse", "stream", "large", data=b"y" * (9 << 20), options=["sse=AES256"])
        for key in ("sse/small", "sse/large"):
            head = self.s3.head_object(Bucket=BUCKET, Key=key)
            self.assertEqual(head.get("ServerSideEncryption"), "AES256", key)

    def test_wrong_secret_is_refused_and_never_printed(self):
        wrong = "WrongSecretKeyValue/ShouldNeverAppear0123"
        env = self.env(AWS_SECRET_ACCESS_KEY=wrong, S3_PROBE_LOG="trace")
        result = self.probe("auth", "put", "x", data=b"x", env=env, check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn(b"StorageError", result.stderr)
        self.assertIn(b"SignatureDoesNotMatch", result.stderr)
        self.assertNotIn(wrong.encode(), result.stderr + result.stdout)
        self.assertNotIn(s3harness.SECRET_KEY.encode(), result.stderr + result.stdout)
        self.assertNotIn(b"Signature=", result.stderr)

    def test_retries_slowdown_and_503_then_succeeds(self):
        HARNESS.front.inject("PUT", 503, "SlowDown", count=2)
        result = self.probe("retry", "put", "obj", data=b"retried")
        self.assertEqual(result.stderr.count(b"retrying in"), 2, result.stderr)
        self.assertIn(b"SlowDown", result.stderr)
        self.assertEqual(self.probe("retry", "get", "obj").stdout, b"retried")
        # A retried multipart part re-sends its buffered bytes.
        HARNESS.front.inject("PUT", 500, "InternalError", count=1, query="partNumber=2")
        data = random.Random(2).randbytes(17 << 20)
        result = self.probe("retry", "stream", "parts", data=data)
        self.assertIn(b"InternalError", result.stderr)
        obj = self.s3.get_object(Bucket=BUCKET, Key="retry/parts")["Body"].read()
        self.assertEqual(hashlib.sha256(obj).hexdigest(), hashlib.sha256(data).hexdigest())

    def test_complete_answering_200_with_error_is_retried(self):
        HARNESS.front.inject("POST", 200, "InternalError", count=1, query="uploadId=")
        data = random.Random(3).randbytes(9 << 20)
        result = self.probe("err200", "stream", "obj", data=data)
        self.assertIn(b"retrying in", result.stderr)
        obj = self.s3.get_object(Bucket=BUCKET, Key="err200/obj")["Body"].read()
        self.assertEqual(hashlib.sha256(obj).hexdigest(), hashlib.sha256(data).hexdigest())

    def test_complete_answering_200_with_a_final_error_fails_and_aborts(self):
        HARNESS.front.inject("POST", 200, "AccessDenied", count=1, query="uploadId=")
        result = self.probe("err200final", "stream", "obj", data=b"f" * (9 << 20), check=False)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn(b"HTTP 200 with an error document AccessDenied", result.stderr)
        self.assertNotIn(b"retrying", result.stderr)
        self.assertEqual(self.s3.list_multipart_uploads(Bucket=BUCKET, Prefix="err200final/").get("Uploads", []),
                         [])
        self.assertNotIn("Contents", self.s3.list_objects_v2(Bucket=BUCKET, Prefix="err200final/"))

    def test_complete_whose_answer_was_lost_is_recognised(self):
        for overwrite in ([], ["--no-overwrite"]):
            key = "lost/obj" + ("-no-overwrite" if overwrite else "")
            # The first Complete succeeds at moto but its answer is lost; the
            # retry is told NoSuchUpload, as S3 may once the upload is gone.
            HARNESS.front.inject("POST", 500, "InternalError", count=1, query="uploadId=", after_forward=True)
            HARNESS.front.inject("POST", 404, "NoSuchUpload", count=1, query="uploadId=", skip=1)
            data = random.Random(4).randbytes(17 << 20)
            result = self.probe("", "stream", key, *overwrite, data=data)
            self.assertIn(b"retrying in", result.stderr)
            self.assertIn(b"already completed", result.stderr)
            obj = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            self.assertEqual(hashlib.sha256(obj).hexdigest(), hashlib.sha256(data).hexdigest())

    def test_complete_meeting_another_object_is_a_conflict(self):
        # Another writer publishes between our HEAD and our Complete: 412.
        HARNESS.front.inject("POST", 412, "PreconditionFailed", count=1, query="uploadId=")
        result = self.probe("race", "stream", "obj", "--no-overwrite", data=b"r" * (9 << 20), check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn(b"Conflict", result.stderr)
        self.assertEqual(self.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []), [])

    def test_clock_skew_is_corrected(self):
        HARNESS.front.inject("PUT", 403, "RequestTimeTooSkewed", count=1)
        result = self.probe("skew", "put", "obj", data=b"s")
        self.assertIn(b"RequestTimeTooSkewed", result.stderr)

    def test_other_4xx_is_not_retried(self):
        HARNESS.front.inject("PUT", 403, "AccessDenied", count=1)
        result = self.probe("noretry", "put", "obj", data=b"x", check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn(b"AccessDenied", result.stderr)
        self.assertNotIn(b"retrying", result.stderr)

    def test_failed_part_aborts_the_upload(self):
        HARNESS.front.inject("PUT", 400, "InvalidPart", count=1, query="partNumber=1")
        result = self.probe("abort", "stream", "obj", data=b"z" * (17 << 20), check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn(b"InvalidPart", result.stderr)
        self.assertEqual(self.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []), [])
        self.assertNotIn("Contents", self.s3.list_objects_v2(Bucket=BUCKET, Prefix="abort/"))


class StrictFrontTest(unittest.TestCase):
    def test_raw_slash_in_query_value_is_refused_like_aws(self):
        # A signer that signs `prefix=a/` raw (libcurl 7.88) must fail, as on AWS.
        import http.client
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        url = HARNESS.endpoint + "/" + BUCKET + "?list-type=2&prefix=a/"
        request = AWSRequest(method="GET", url=url)
        auth = S3SigV4Auth(Credentials(s3harness.ACCESS_KEY, s3harness.SECRET_KEY), "s3", s3harness.REGION)
        auth._canonical_query_string_url = lambda parts: "list-type=2&prefix=a/"
        auth.add_auth(request)
        conn = http.client.HTTPConnection("127.0.0.1", HARNESS.front.port, timeout=30)
        conn.request("GET", "/" + BUCKET + "?list-type=2&prefix=a/", headers=dict(request.headers))
        response = conn.getresponse()
        body = response.read()
        conn.close()
        self.assertEqual(response.status, 403)
        self.assertIn(b"SignatureDoesNotMatch", body)


class RepeatedHeaderTest(unittest.TestCase):
    def test_a_repeated_single_valued_header_is_refused(self):
        # S3 reads Content-MD5, the lock and SSE headers as one value; a client
        # that sends one twice signs "a,b" and fails there: here too.
        import http.client
        for name in ("Content-MD5", "x-amz-object-lock-mode", "x-amz-server-side-encryption"):
            conn = http.client.HTTPConnection("127.0.0.1", HARNESS.front.port, timeout=30)
            conn.putrequest("PUT", "/%s/repeated" % BUCKET)
            conn.putheader(name, "AAAA")
            conn.putheader(name, "AAAA")
            conn.putheader("Content-Length", "0")
            conn.endheaders()
            response = conn.getresponse()
            body = response.read()
            conn.close()
            self.assertEqual(response.status, 400, name)
            self.assertIn(b"InvalidArgument", body, name)
            self.assertIn(name.lower().encode(), body, name)

    def test_a_multipart_upload_under_object_lock_sends_each_header_once(self):
        lock_bucket = "snap-test-lock"
        HARNESS.boto3_client().create_bucket(Bucket=lock_bucket, ObjectLockEnabledForBucket=True)
        probe = probe_path()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=s3harness.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=s3harness.SECRET_KEY,
                   AWS_EC2_METADATA_DISABLED="true", NO_PROXY="127.0.0.1")
        data = random.Random(9).randbytes(9 << 20)
        result = subprocess.run([probe, "s3://%s/locked" % lock_bucket, "-o", "endpoint=" + HARNESS.endpoint,
                                 "-o", "region=" + s3harness.REGION, "-o", "object_lock_mode=GOVERNANCE",
                                 "-o", "object_lock_retain_days=1", "stream", "obj", "--no-overwrite"],
                                input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        head = HARNESS.boto3_client().head_object(Bucket=lock_bucket, Key="locked/obj")
        self.assertEqual(head.get("ObjectLockMode"), "GOVERNANCE")


class CredentialProviderTest(ProbeTestCase):
    def roundtrip(self, env, name):
        self.probe("creds", "put", name, data=name.encode(), env=env)
        self.assertEqual(self.probe("creds", "get", name, env=env).stdout, name.encode())

    def test_container_credentials_full_uri_with_token_file(self):
        key, secret, token = "ASIACONTAINER0000001", "container/secret+key=1", "container-session-token"
        HARNESS.front.add_key(key, secret, token)
        token_file = os.path.join(self.home, "auth-token")
        with open(token_file, "w") as f:
            f.write("container-auth-token-value\n")
        with s3harness.CredentialResponder(key, secret, token, auth_token="container-auth-token-value") as r:
            env = self.env(credentials=False, AWS_CONTAINER_CREDENTIALS_FULL_URI=r.endpoint + "/creds",
                           AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=token_file)
            self.roundtrip(env, "container")
            self.assertTrue(any(req[1] == "/creds" for req in r.requests))

    def test_imdsv2_credentials(self):
        key, secret, token = "ASIAIMDS000000000001", "imds/secret+key=2", "imds-session-token"
        HARNESS.front.add_key(key, secret, token)
        with s3harness.CredentialResponder(key, secret, token) as r:
            env = self.env(credentials=False, AWS_EC2_METADATA_SERVICE_ENDPOINT=r.endpoint,
                           AWS_EC2_METADATA_DISABLED="false")
            self.roundtrip(env, "imds")
            self.assertEqual(r.requests[0][0:2], ("PUT", "/latest/api/token"))

    def test_web_identity_through_moto_sts(self):
        token_file = os.path.join(self.home, "web-identity-token")
        with open(token_file, "w") as f:
            f.write("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzbmFwc2hvdHRlciJ9.c2lnbmF0dXJl")
        env = self.env(credentials=False, AWS_WEB_IDENTITY_TOKEN_FILE=token_file,
                       AWS_ROLE_ARN="arn:aws:iam::123456789012:role/snapshotter",
                       AWS_ROLE_SESSION_NAME="integration", AWS_ENDPOINT_URL_STS=HARNESS.endpoint)
        self.roundtrip(env, "webidentity")

    def test_shared_credentials_file_and_profile_region(self):
        os.makedirs(os.path.join(self.home, ".aws"))
        with open(os.path.join(self.home, ".aws", "credentials"), "w") as f:
            f.write("[snap]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                    % (s3harness.ACCESS_KEY, s3harness.SECRET_KEY))
        with open(os.path.join(self.home, ".aws", "config"), "w") as f:
            f.write("[profile snap]\nregion = %s\n" % s3harness.REGION)
        env = self.env(credentials=False, AWS_PROFILE="snap")
        argv = [probe_path(), "s3://%s/creds" % BUCKET, "-o", "endpoint=" + HARNESS.endpoint, "put", "profile"]
        subprocess.run(argv, input=b"profile", env=env, check=True, stderr=subprocess.PIPE)
        self.assertEqual(self.probe("creds", "get", "profile", env=env).stdout, b"profile")

    def test_endpoint_from_environment(self):
        env = self.env(AWS_ENDPOINT_URL_S3=HARNESS.endpoint, AWS_REGION=s3harness.REGION)
        argv = [probe_path(), "s3://%s/envendpoint" % BUCKET, "put", "k"]
        subprocess.run(argv, input=b"v", env=env, check=True, stderr=subprocess.PIPE)
        self.assertEqual(self.s3.get_object(Bucket=BUCKET, Key="envendpoint/k")["Body"].read(), b"v")


class AwsToolsInteropTest(ProbeTestCase):
    def test_aws_cli_lists_and_downloads_what_we_wrote(self):
        aws = shutil.which("aws")
        if aws is None:
            self.skipTest("the aws command is not installed")
        data = random.Random(7).randbytes(9 << 20)
        self.probe("interop/dir", "stream", "bundle.pack", data=data)
        env = self.env(AWS_DEFAULT_REGION=s3harness.REGION)
        listing = subprocess.run([aws, "--endpoint-url", HARNESS.endpoint, "s3", "ls", "--recursive",
                                  "s3://%s/interop/" % BUCKET], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(listing.returncode, 0, listing.stderr)
        self.assertIn(b"interop/dir/bundle.pack", listing.stdout)
        target = os.path.join(self.home, "download.pack")
        copy = subprocess.run([aws, "--endpoint-url", HARNESS.endpoint, "s3", "cp",
                               "s3://%s/interop/dir/bundle.pack" % BUCKET, target], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(copy.returncode, 0, copy.stderr)
        with open(target, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(data).hexdigest())
        # boto3's paginated listing agrees.
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket=BUCKET, Prefix="interop/")["Contents"]]
        self.assertEqual(keys, ["interop/dir/bundle.pack"])


if __name__ == "__main__":
    unittest.main()
