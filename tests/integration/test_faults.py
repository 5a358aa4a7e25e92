"""Fault injection: a misbehaving S3 and a smart-HTTP server that drops packs.

S3 side: the strict SigV4 front of s3harness.py is put in chaos mode (500
InternalError, 503 SlowDown, connection resets mid-upload and mid-download,
stalls longer than `storage.stall_timeout_s`). At a 10% rate a snapshot of
several repositories with multipart-sized bundles, then restore and verify,
all succeed with nothing lost. At 100% the job fails cleanly with StorageError
after a bounded number of attempts, in bounded time, and leaves nothing
half-written behind (no new object at all, latest unchanged).

git side: harness.GitFaultProxy cuts upload-pack responses carrying a pack
after 1 KiB and resets the connection. The repository is retried by the
fleet and committed once, whole; at 100% it fails with GitError, transient,
after exactly 1 + retries attempts, and nothing is committed. Both engines.
"""

import os
import time
import unittest

import harness

# Bundles past the 8 MiB part size go up as multipart uploads.
BLOB_BYTES = 9 * 1024 * 1024 + 12345
STALL_TIMEOUT_S = 2
# Each S3 request is retried for this long (storage.retry_budget_s; 90 s by
# default, sized for real outages): short here so that failing runs end soon.
RETRY_BUDGET_S = 4
# The runs that must succeed through random faults get a budget in which a
# stall (2 s) plus a few resets can never use it up: at a 10% rate, running
# out takes about ten faults in a row on one request. With 4 s, one stall and
# two quick faults on the same request failed a CI run.
SURVIVE_BUDGET_S = 30
USER = "faults"
TOKEN = "tok-faults-0123456789"
TOKEN_ENV = "SNAP_FAULTS_TOKEN"

SERVE = None
UPSTREAMS = {}
HTTP = None


def setUpModule():
    global SERVE, HTTP
    harness.setup_module()
    SERVE = harness.mkdtemp("serve-")
    UPSTREAMS["big-a"] = harness.build_random_blob(SERVE, "big-a", BLOB_BYTES)
    UPSTREAMS["big-b"] = harness.build_random_blob(SERVE, "big-b", BLOB_BYTES)
    UPSTREAMS["rich"] = harness.build_rich(SERVE, "rich")
    # Packs of a few hundred KiB for the git side: a cut after 1 KiB is mid-pack.
    UPSTREAMS["mid-a"] = harness.build_random_blob(SERVE, "mid-a", 300 * 1024)
    UPSTREAMS["mid-b"] = harness.build_random_blob(SERVE, "mid-b", 300 * 1024)
    HTTP = harness.SmartHttp(SERVE, {USER: TOKEN})


def tearDownModule():
    harness.teardown_module()


def committed_keys(store, name):
    """The manifests and bundles stored for repository `name`."""
    prefix = f"repos/{harness.repo_key(name)}/"
    return [k for k in store.keys(prefix) if "/manifests/" in k or "/bundles/" in k]


class S3Faults(harness.Assertions, unittest.TestCase):
    def setUp(self):
        self.ws = harness.Workspace(storage="s3")
        self.front = self.ws.store.service.front
        self.addCleanup(self.front.set_chaos, 0)

    def payload_storage(self, budget_s):
        storage = self.ws.storage()
        storage["stall_timeout_s"] = STALL_TIMEOUT_S
        storage["retry_budget_s"] = budget_s
        return storage

    def run_action(self, payload, budget_s=RETRY_BUDGET_S):
        payload["storage"] = self.payload_storage(budget_s)
        return self.ws.run(payload)

    def snapshot(self, names, options=None, budget_s=RETRY_BUDGET_S):
        repos = [{"url": str(UPSTREAMS[n].bare), "name": n} for n in names]
        return self.run_action(self.ws.snapshot_payload(repos, options), budget_s)

    def assertInjected(self, at_least=1):
        counts = dict(self.front.chaos_counts)
        self.assertGreaterEqual(sum(counts.values()), at_least, f"no fault was injected: {counts}")
        return counts

    def test_ten_percent_snapshot_restore_verify_lose_nothing(self):
        names = ["big-a", "big-b", "rich"]
        self.front.set_chaos(0.10, seed=6, stall_s=STALL_TIMEOUT_S + 2)
        result = self.assertRunOk(self.snapshot(names, budget_s=SURVIVE_BUDGET_S), "snapshot at a 10% fault rate")
        self.assertEqual(harness.snapshot_summary(result), {"total": 3, "ok": 3, "unchanged": 0, "failed": 0})
        for entry in result["repositories"]:
            if entry["name"].startswith("big-"):
                self.assertGreater(entry["bundle"]["size"], 8 << 20, f"not a multipart-sized bundle: {entry}")
        for name in names:
            target = self.ws.new_target(name)
            restored = self.run_action(self.ws.restore_payload(name, target), SURVIVE_BUDGET_S)
            self.assertRunOk(restored, f"restore {name} at 10%")
            self.assertRepoEquals(target, UPSTREAMS[name], f"{name} restored through a 10% fault rate")
        verified = self.assertRunOk(self.run_action(self.ws.verify_payload(drill=True), SURVIVE_BUDGET_S), "verify at 10%")
        self.assertEqual(verified["summary"]["failed"], 0, verified)
        counts = self.assertInjected(at_least=3)
        print(f"\nfaults injected at 10%: {counts}", flush=True)
        # And with the faults gone, the stored data verifies as well.
        self.front.set_chaos(0)
        self.assertRunOk(self.run_action(self.ws.verify_payload(drill=True)), "verify without faults")

    def assertNothingChanged(self, before, run):
        self.front.set_chaos(0)
        after = self.ws.store.state()
        self.assertEqual(after[0], before[0],
                         f"objects changed:\n{harness.diff_states(before[0], after[0])}\n{run.describe()}")
        for name in ("big-a", "rich"):
            verified = self.assertRunOk(self.run_action(self.ws.verify_payload([name], drill=False)))
            self.assertEqual(verified["summary"]["failed"], 0, verified)

    def assertBoundedRetries(self, run):
        stderr = run.stderr.decode(errors="replace")
        self.assertIn("attempt 1 failed", stderr, run.describe())
        self.assertIn(f"of the {RETRY_BUDGET_S} s retry budget left", stderr, run.describe())
        # Full jitter from 0.2 s doubling: a 4 s budget holds a handful of attempts, never twenty.
        self.assertNotIn("attempt 20 failed", stderr, run.describe())

    def test_every_request_failing_is_a_clean_storage_error(self):
        self.assertRunOk(self.snapshot(["big-a", "rich"]), "the first snapshot, no faults")
        UPSTREAMS["rich"].commit_file("more.txt", "more\n")
        UPSTREAMS["rich"].push("--all")
        before = self.ws.store.state()
        self.front.set_chaos(1.0, seed=1, stall_s=STALL_TIMEOUT_S + 2)
        start = time.monotonic()
        run = self.snapshot(["big-a", "rich"])
        elapsed = time.monotonic() - start
        self.assertRunFails(run, run.rc, "StorageError", "every S3 request fails")
        self.assertNotEqual(run.rc, 0)
        self.assertLess(elapsed, 90, f"took {elapsed:.1f}s\n{run.describe()}")
        self.assertBoundedRetries(run)
        # Every request is tried at least 3 times (k_min_attempts); how many more fit in the
        # retry budget depends on the jitter and on how many faults were stalls.
        self.assertInjected(at_least=3)
        self.assertNothingChanged(before, run)

    def test_every_write_failing_commits_nothing(self):
        # Reads work, every PUT and POST fails (never after doing the work):
        # repositories fail in the upload, after bounded retries.
        self.assertRunOk(self.snapshot(["big-a", "rich"]), "the first snapshot, no faults")
        UPSTREAMS["big-a"].commit_file("blob2.bin", os.urandom(BLOB_BYTES), "another blob")
        UPSTREAMS["big-a"].push("--all")
        UPSTREAMS["rich"].commit_file("more2.txt", "more\n")
        UPSTREAMS["rich"].push("--all")
        before = self.ws.store.state()
        self.front.set_chaos(1.0, kinds=("500", "503", "reset_request", "stall"), seed=2, methods=("PUT", "POST"),
                             stall_s=STALL_TIMEOUT_S + 2)
        start = time.monotonic()
        run = self.snapshot(["big-a", "rich"])
        elapsed = time.monotonic() - start
        out = self.assertRunFails(run, run.rc, "StorageError", "every S3 write fails")
        self.assertNotEqual(run.rc, 0)
        self.assertLess(elapsed, 120, f"took {elapsed:.1f}s\n{run.describe()}")
        repos = out["result"]["repositories"]
        self.assertEqual([(r["status"], r["error"]) for r in repos], [("failed", "StorageError")] * 2, repos)
        self.assertBoundedRetries(run)
        self.assertNothingChanged(before, run)

    def test_a_lost_answer_to_a_manifest_put_is_not_a_conflict(self):
        # moto stores the manifest, the answer is lost: the retry meets
        # If-None-Match (412) and must recognise its own object.
        # The PUTs of this job: the (small, single-PUT) bundle, its retry, the
        # manifest's table, the manifest, its retry, latest. Lose the answers to
        # the first bundle and the first manifest PUT.
        self.front.inject("PUT", 500, "InternalError", count=1, after_forward=True)
        self.front.inject("PUT", 500, "InternalError", count=1, after_forward=True, skip=2)
        run = self.snapshot(["rich"])
        result = self.assertRunOk(run, "lost answers to PUTs")
        self.assertEqual(result["repositories"][0]["status"], "ok", result)
        self.assertEqual(run.stderr.count(b"already written by an earlier attempt"), 2, run.describe())
        target = self.ws.new_target()
        self.assertRunOk(self.run_action(self.ws.restore_payload("rich", target)))
        self.assertRepoEquals(target, UPSTREAMS["rich"], "after lost PUT answers")


class GitFaults(harness.Assertions, unittest.TestCase):
    def setUp(self):
        self.proxy = harness.GitFaultProxy(HTTP.port, drop_after=1024)
        self.addCleanup(self.proxy.stop)
        self.ws = harness.Workspace()

    def snapshot(self, names, engine, retries=3):
        repos = [{"url": self.proxy.url_for(f"{n}.git"), "name": n,
                  "credentials": {"token_env": TOKEN_ENV, "username": USER}} for n in names]
        return self.ws.snapshot(repos, {"allow_http": True, "engine": engine, "retries": retries},
                                env_extra={TOKEN_ENV: TOKEN})

    def assertNoLeftovers(self):
        leftovers = [k for k in self.ws.store.keys() if harness.Path(k).name.startswith(".tmp-snapshotter-")]
        self.assertEqual(leftovers, [], "temporary files left in storage")
        for path in self.ws.storage_dir.rglob("*"):
            self.assertFalse(path.name.startswith(".tmp-snapshotter-"), f"temporary file left: {path}")

    def check_retried_then_whole(self, engine):
        self.proxy.configure(count=1)
        run = self.snapshot(["mid-a"], engine)
        result = self.assertRunOk(run, f"{engine}: first pack dropped")
        entry = result["repositories"][0]
        self.assertEqual((entry["status"], entry["attempts"]), ("ok", 2), entry)
        self.assertEqual(self.proxy.dropped, 1)
        keys = committed_keys(self.ws.store, "mid-a")
        self.assertEqual(len(keys), 2, f"one manifest and one bundle, nothing from the broken attempt: {keys}")
        self.assertNoLeftovers()
        target = self.ws.new_target()
        self.assertRunOk(self.ws.restore("mid-a", target))
        self.assertRepoEquals(target, UPSTREAMS["mid-a"], f"{engine}: after a dropped pack")

    def test_stream_engine_retries_a_dropped_pack(self):
        self.check_retried_then_whole("stream")

    def test_cli_engine_retries_a_dropped_pack(self):
        self.check_retried_then_whole("cli")

    def check_always_dropped(self, engine):
        self.proxy.configure(rate=1.0)
        run = self.snapshot(["mid-a"], engine, retries=2)
        out = self.assertRunFails(run, 1, "GitError", f"{engine}: every pack dropped")
        entry = out["result"]["repositories"][0]
        self.assertEqual((entry["status"], entry["error"], entry["transient"], entry["attempts"]),
                         ("failed", "GitError", True, 3), entry)
        self.assertEqual(self.proxy.dropped, 3)
        self.assertEqual(committed_keys(self.ws.store, "mid-a"), [], "nothing may be committed")
        self.assertFalse(self.ws.store.exists(harness.latest_key("mid-a")))
        self.assertNoLeftovers()

    def test_stream_engine_fails_cleanly_when_every_pack_drops(self):
        self.check_always_dropped("stream")

    def test_cli_engine_fails_cleanly_when_every_pack_drops(self):
        self.check_always_dropped("cli")

    def test_a_fleet_at_a_thirty_percent_drop_rate_commits_everything_whole(self):
        self.proxy.configure(rate=0.3)
        names = ["mid-a", "mid-b", "rich"]
        for engine in ("stream", "cli"):
            ws = self.ws = harness.Workspace()
            result = self.assertRunOk(self.snapshot(names, engine, retries=8), f"{engine} at a 30% drop rate")
            self.assertEqual(harness.snapshot_summary(result), {"total": 3, "ok": 3, "unchanged": 0, "failed": 0})
            self.assertNoLeftovers()
            for name in names:
                target = ws.new_target(name)
                self.assertRunOk(ws.restore(name, target))
                self.assertRepoEquals(target, UPSTREAMS[name], f"{engine}: {name} at a 30% drop rate")
        self.assertGreater(self.proxy.dropped, 0, "no pack was dropped")


if __name__ == "__main__":
    unittest.main()
