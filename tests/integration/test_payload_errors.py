"""Invalid payloads, payload sources and command-line flags.

Every bad payload exits 1 with {"ok":false,"error":"PayloadError"} and a
message that starts with the JSON path of the problem, and writes nothing:
the storage dir and cache dir named by the payload do not exist afterwards,
and no command smuggled into a URL runs. Also: no payload at all, the
--job-file / SNAPSHOTTER_JOB_JSON precedence, an unknown flag, --version.
"""

import json
import re
import unittest

import harness

UPSTREAM = None


def setUpModule():
    global UPSTREAM
    harness.setup_module()
    UPSTREAM = harness.build_rich(harness.mkdtemp("up-"), "local")


def tearDownModule():
    harness.teardown_module()


class BadPayloads(harness.Assertions, unittest.TestCase):
    def setUp(self):
        self.ws = harness.Workspace()
        self.marker = self.ws.root / "pwned"

    def valid(self) -> dict:
        return self.ws.snapshot_payload([{"url": str(UPSTREAM.bare), "name": "org/app"}])

    def assertPayloadError(self, payload, path_prefix: str, contains: str = "", not_contains: str = "") -> dict:
        run = self.ws.run(payload)
        out = self.assertRunFails(run, 1, "PayloadError", f"payload {payload!r}")
        msg = out["message"]
        self.assertTrue(msg.startswith(path_prefix), f"message {msg!r} should start with {path_prefix!r}")
        if contains:
            self.assertIn(contains, msg)
        if not_contains:
            self.assertNotIn(not_contains, msg, "the message must not repeat a secret")
            self.assertNotIn(not_contains.encode(), run.stderr, "stderr must not repeat a secret")
        self.assertFalse(self.ws.storage_dir.exists(), f"storage dir was created for {payload!r}")
        self.assertFalse(self.ws.cache_dir.exists(), f"cache dir was created for {payload!r}")
        self.assertFalse(self.marker.exists(), "a command in the payload ran")
        return out

    def with_repo(self, **fields) -> dict:
        p = self.valid()
        p["repositories"][0].update(fields)
        return p

    def test_not_json(self):
        self.assertPayloadError('{"version": 1, "action": "snapshot",', "(payload): ", "not valid JSON")

    def test_not_json_garbage(self):
        self.assertPayloadError("this is not json", "(payload): ", "not valid JSON")

    def test_payload_not_an_object(self):
        self.assertPayloadError("[1, 2]", "(payload): ")

    def test_version_is_a_string(self):
        p = self.valid()
        p["version"] = "1"
        self.assertPayloadError(p, "version: ")

    def test_version_missing(self):
        p = self.valid()
        del p["version"]
        self.assertPayloadError(p, "version: is required")

    def test_repositories_is_an_object(self):
        p = self.valid()
        p["repositories"] = {"url": str(UPSTREAM.bare)}
        self.assertPayloadError(p, "repositories: ")

    def test_timeout_is_a_string(self):
        p = self.valid()
        p["options"]["timeout_s"] = "3600"
        self.assertPayloadError(p, "options.timeout_s: ")

    def test_unknown_top_level_key(self):
        p = self.valid()
        p["jobid"] = "x"
        self.assertPayloadError(p, 'jobid: unknown key (did you mean "job_id"?)')

    def test_unknown_nested_key(self):
        p = self.valid()
        p["options"]["cach_dir"] = str(self.ws.cache_dir)
        self.assertPayloadError(p, 'options.cach_dir: unknown key (did you mean "cache_dir"?)')

    def test_unknown_key_in_a_repository(self):
        self.assertPayloadError(self.with_repo(urll="x"), 'repositories[0].urll: unknown key (did you mean "url"?)')

    def test_missing_storage(self):
        p = self.valid()
        del p["storage"]
        self.assertPayloadError(p, "storage: is required")

    def test_ext_transport_with_spaces(self):
        self.assertPayloadError(self.with_repo(url=f"ext::sh -c touch% {self.marker}"), "repositories[0].url: ")

    def test_ext_transport(self):
        self.assertPayloadError(self.with_repo(url=f"ext::sh%20-c%20touch%20{self.marker}"),
                                "repositories[0].url: ", contains="ext")

    def test_fd_transport(self):
        self.assertPayloadError(self.with_repo(url="fd::3"), "repositories[0].url: ", contains="fd")

    def test_ext_in_second_repository(self):
        p = self.valid()
        p["repositories"].append({"url": f"ext::sh%20-c%20touch%20{self.marker}", "name": "b"})
        self.assertPayloadError(p, "repositories[1].url: ")

    def test_url_starting_with_dash(self):
        self.assertPayloadError(self.with_repo(url=f"--upload-pack=touch {self.marker}"), "repositories[0].url: ")

    def test_url_starting_with_dash_no_space(self):
        self.assertPayloadError(self.with_repo(url="-oProxyCommand=x"), "repositories[0].url: ")

    def test_name_with_dotdot(self):
        self.assertPayloadError(self.with_repo(name="../x"), "repositories[0].name: ")

    def test_name_with_nested_dotdot(self):
        self.assertPayloadError(self.with_repo(name="org/../../etc"), "repositories[0].name: ")

    def test_empty_repository_list(self):
        p = self.valid()
        p["repositories"] = []
        self.assertPayloadError(p, "repositories: must list at least one repository")

    def test_duplicate_names(self):
        p = self.valid()
        p["repositories"].append({"url": str(UPSTREAM.bare), "name": "org/app"})
        self.assertPayloadError(p, "repositories[1].name: ")

    def test_password_in_url(self):
        self.assertPayloadError(self.with_repo(url="https://bob:hunter2-PASSWORD@127.0.0.1/org/app.git"),
                                "repositories[0].url: ", not_contains="hunter2-PASSWORD")

    def test_http_without_allow_http(self):
        self.assertPayloadError(self.with_repo(url="http://127.0.0.1/org/app.git"), "repositories[0].url: ",
                                contains="allow_http")

    def test_unknown_scheme(self):
        self.assertPayloadError(self.with_repo(url="ftp://127.0.0.1/org/app.git"), "repositories[0].url: ",
                                contains="ftp")

    def test_unknown_action(self):
        p = self.valid()
        p["action"] = "snapshots"
        self.assertPayloadError(p, "action: ")

    def test_restore_target_relative(self):
        p = self.ws.restore_payload("org/app", "relative/dir")
        self.assertPayloadError(p, "restore.target: ")

    def test_refs_pattern_not_under_refs(self):
        self.assertPayloadError(self.with_repo(refs=["heads/*"]), "repositories[0].refs")


class PayloadSources(harness.Assertions, unittest.TestCase):
    def setUp(self):
        self.ws = harness.Workspace()

    def test_no_payload(self):
        run = self.ws.run(None)
        self.assertRunFails(run, 1, "PayloadError", "no --job-file and no SNAPSHOTTER_JOB_JSON")
        self.assertFalse(self.ws.storage_dir.exists())

    def test_job_file_wins_over_env(self):
        other = harness.Workspace()
        file_payload = self.ws.snapshot_payload([{"url": str(UPSTREAM.bare), "name": "org/app"}], job_id="from-file")
        env_payload = other.snapshot_payload([{"url": str(UPSTREAM.bare), "name": "org/app"}], job_id="from-env")
        job_file = self.ws.root / "job.json"
        job_file.write_text(json.dumps(file_payload))
        run = self.ws.run(env_payload, job_file=job_file)
        result = self.assertRunOk(run, "both --job-file and SNAPSHOTTER_JOB_JSON")
        self.assertEqual(result.get("job_id"), "from-file")
        self.assertTrue(self.ws.path_of(harness.latest_key("org/app")).is_file())
        self.assertFalse(other.storage_dir.exists(), "the env payload must be ignored")
        self.assertFalse(other.cache_dir.exists(), "the env payload must be ignored")

    def test_invalid_job_file_wins_over_valid_env(self):
        env_payload = self.ws.snapshot_payload([{"url": str(UPSTREAM.bare), "name": "org/app"}])
        bad = dict(env_payload, version="1")
        job_file = self.ws.root / "job.json"
        job_file.write_text(json.dumps(bad))
        run = self.ws.run(env_payload, job_file=job_file)
        out = self.assertRunFails(run, 1, "PayloadError")
        self.assertTrue(out["message"].startswith("version: "), out["message"])
        self.assertFalse(self.ws.storage_dir.exists())

    def test_missing_job_file(self):
        run = self.ws.run(None, job_file=self.ws.root / "does-not-exist.json")
        self.assertEqual((run.rc, run.out.get("ok")), (1, False), run.describe())
        self.assertIn(run.out.get("error"), ("PayloadError", "UsageError"), run.describe())

    def test_unknown_flag(self):
        run = self.ws.run(None, args=["--bogus-flag"])
        self.assertRunFails(run, 1, "UsageError", "an unknown flag")

    def test_unknown_flag_with_valid_payload(self):
        p = self.ws.snapshot_payload([{"url": str(UPSTREAM.bare), "name": "org/app"}])
        run = self.ws.run(p, args=["--bogus-flag"])
        self.assertRunFails(run, 1, "UsageError", "an unknown flag")
        self.assertFalse(self.ws.storage_dir.exists(), "a usage error must not run the job")

    def test_bad_log_level(self):
        run = self.ws.run(None, args=["--log-level", "loud"])
        self.assertRunFails(run, 1, "UsageError", "a bad --log-level")

    def test_version(self):
        run = self.ws.run(None, args=["--version"])
        result = self.assertRunOk(run, "--version")
        self.assertRegex(result.get("version", ""), r"^\d+\.\d+\.\d+")
        cmake = (harness.SOURCE_ROOT / "CMakeLists.txt").read_text()
        project_version = re.search(r"project\(snapshotter VERSION (\S+)", cmake).group(1)
        self.assertEqual(result, {"version": project_version, "git": harness.git_version()})


if __name__ == "__main__":
    unittest.main()
