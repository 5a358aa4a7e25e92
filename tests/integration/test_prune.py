"""Chain-aware prune with a retention policy, over generated histories.

Histories are generated at simulated dates through the test hook
SNAPSHOTTER_TEST_NOW: mostly unchanged snapshots, a push every few runs, and
a full bundle every `options.full_every` bundles, so there are several chains.
Each test checks:

- the policy: a dry run changes nothing and reports the bytes it would free;
  the real run leaves exactly the snapshots an independent oracle of restic's
  rules keeps (buckets computed here with strftime in UTC), and exactly the
  bundles those snapshots list; every kept snapshot restores to its
  manifest's refs with a clean `git fsck --full`;
- rebase: the old base bundle is gone and every kept snapshot still restores;
- a crash: prune killed with SIGKILL at random moments never leaves a kept
  snapshot unrestorable, and a rerun finishes;
- S3 Object Lock (s3:// only): retained objects are reported and neither
  deleted nor hidden behind a delete marker.

The `...S3` class runs the same tests on moto behind the strict SigV4 front.
"""

import datetime
import os
import random
import signal
import subprocess
import time
import unittest

import harness

START = datetime.datetime(2026, 1, 1, 6, 0, tzinfo=datetime.timezone.utc)
NAME = "org/app"


def setUpModule():
    harness.setup_module()


def tearDownModule():
    harness.teardown_module()


def sim_time(step: int, hours: int) -> str:
    return (START + datetime.timedelta(hours=hours * step)).strftime("%Y-%m-%dT%H:%M:%SZ")


def id_time(snapshot_id: str) -> datetime.datetime:
    stamp = datetime.datetime.strptime(snapshot_id[:15], "%Y%m%dT%H%M%S").replace(tzinfo=datetime.timezone.utc)
    return stamp + datetime.timedelta(milliseconds=int(snapshot_id[16:19]))


def expected_kept(ids: list[str], policy: dict) -> set[str]:
    """restic's forget rules, OR-ed, in UTC, plus the newest snapshot."""
    ordered = sorted(ids, reverse=True)
    kept = {ordered[0]}
    kept.update(ordered[:policy.get("keep_last", 0)])
    for rule, fmt in (("keep_hourly", "%Y-%m-%dT%H"), ("keep_daily", "%Y-%m-%d"), ("keep_weekly", "%G-W%V"),
                      ("keep_monthly", "%Y-%m"), ("keep_yearly", "%Y")):
        seen = []
        for sid in ordered:
            if len(seen) == policy.get(rule, 0):
                break
            bucket = id_time(sid).strftime(fmt)
            if bucket not in seen:
                seen.append(bucket)
                kept.add(sid)
    kept.update(s for s in ids if s in policy.get("pinned", []))
    return kept


class _Base(harness.Assertions):
    storage = "file"
    history_runs = 120  # snapshot runs of the main history
    short_runs = 24  # of the rebase and crash histories

    def setUp(self):
        self.ws = harness.Workspace(storage=self.storage)
        self.ws.store.create()
        root = harness.mkdtemp("upstream-")
        self.up = harness.new_upstream(root, "app")
        self.up.commit_file("README", "first\n")
        self.up.push("HEAD:refs/heads/main")
        self.up.set_head("refs/heads/main")
        self.repo = {"url": str(self.up.bare), "name": NAME}
        self.pushes = 0

    # -- history ------------------------------------------------------------
    def change_upstream(self) -> None:
        """A push: a commit on main; every third one a branch, a tag or a deleted branch."""
        self.pushes += 1
        n = self.pushes
        self.up.commit_file(f"file-{n % 7}.txt", f"change {n}\n" * (n % 5 + 1))
        self.up.push("HEAD:refs/heads/main")
        if n % 3 == 0:
            self.up.push(f"HEAD:refs/heads/topic-{n}")
        if n % 6 == 0:
            self.up.git("tag", "-a", f"v{n}", "-m", f"release {n}")
            self.up.push(f"refs/tags/v{n}")
        if n % 9 == 0:
            self.up.delete_ref(f"refs/heads/topic-{n - 6}")

    def snapshot_at(self, when: str, full_every: int, extra_storage: dict | None = None) -> str:
        # full_size_ratio out of the way: full_every alone decides where chains start.
        payload = self.ws.snapshot_payload([self.repo], {"full_every": full_every, "full_size_ratio": 100,
                                                         "engine": "cli"})
        if extra_storage:
            payload["storage"] = dict(payload["storage"], **extra_storage)
        result = self.assertRunOk(self.ws.run(payload, env_extra={"SNAPSHOTTER_TEST_NOW": when}))
        return result["repositories"][0]["snapshot_id"]

    def make_history(self, runs: int, push_every: int, full_every: int, hours: int = 11) -> list[str]:
        """Snapshot ids of `runs` runs `hours` apart (simulated), oldest first."""
        ids = []
        for step in range(runs):
            if step % push_every == push_every - 1:
                self.change_upstream()
            ids.append(self.snapshot_at(sim_time(step, hours), full_every))
        return ids

    # -- storage --------------------------------------------------------------
    def manifests(self) -> dict[str, dict]:
        prefix = f"repos/{harness.repo_key(NAME)}/manifests/"
        return {k[len(prefix):-5]: self.ws.store.manifest(k) for k in self.ws.store.keys(prefix)
                if not k[len(prefix):].startswith(".tmp-")}

    def bundle_keys(self) -> set[str]:
        # A run killed while writing leaves a file-storage temporary (".tmp-..."), which is no object.
        return {k for k in self.ws.store.keys(f"repos/{harness.repo_key(NAME)}/bundles/")
                if not k.rsplit("/", 1)[-1].startswith(".tmp-")}

    def prune_payload(self, policy: dict) -> dict:
        return {"version": 1, "action": "prune", "storage": self.ws.storage(), "prune": policy}

    def prune(self, policy: dict, args=()) -> dict:
        return self.assertRunOk(self.ws.run(self.prune_payload(policy), args=args))

    def assert_consistent(self, kept: set[str], msg: str = "") -> None:
        """Exactly `kept` remain, exactly their bundles are stored, latest names one, nothing pending."""
        manifests = self.manifests()
        self.assertEqual(set(manifests), kept, msg)
        listed = {b["key"] for m in manifests.values() for b in m["bundles"]}
        self.assertEqual(self.bundle_keys(), listed, msg)
        latest = self.ws.latest(NAME)["snapshot_id"]
        self.assertIn(latest, manifests)
        self.assertFalse(self.ws.store.exists(f"repos/{harness.repo_key(NAME)}/prune-pending.json"))

    def assert_restores(self, snapshot_ids) -> None:
        """Each snapshot restores to exactly its manifest's refs, and fsck is clean."""
        for sid in sorted(snapshot_ids):
            manifest = self.ws.manifest(NAME, sid)
            target = self.ws.new_target()
            self.assertRunOk(self.ws.restore(NAME, target, sid), sid)
            self.assertEqual(harness.ref_map(target), manifest["refs"], sid)
            p = harness.fsck(target)
            self.assertEqual(p.returncode, 0, f"{sid}: {p.stdout!r} {p.stderr!r}")

    # -- tests --------------------------------------------------------------------
    def test_policy_over_a_generated_history(self):
        t0 = time.monotonic()
        ids = self.make_history(self.history_runs, push_every=5, full_every=4)
        generated_s = time.monotonic() - t0
        manifests = self.manifests()
        self.assertEqual(set(manifests), set(ids))
        self.assertGreater(sum(m["kind"] == "full" for m in manifests.values()), 2, "several chains")
        policy = {"keep_last": 3, "keep_daily": 6, "keep_weekly": 4, "keep_monthly": 2,
                  "pinned": [ids[len(ids) // 3]]}
        kept = expected_kept(ids, policy)
        self.assertLess(len(kept), len(ids) // 3)

        # Dry run: the plan, the bytes, and nothing changed.
        before = self.ws.store.state()
        dry = self.prune(policy, args=["--dry-run"])
        self.assertEqual(self.ws.store.changes_since(before), "")
        self.assertTrue(dry["dry_run"])
        repo = dry["repositories"][0]
        self.assertEqual({k["snapshot_id"] for k in repo["keep"]}, kept)
        self.assertEqual(set(repo["drop"]), set(ids) - kept)
        reasons = {k["snapshot_id"]: k["reasons"] for k in repo["keep"]}
        self.assertIn("newest", reasons[ids[-1]])
        self.assertIn("pinned", reasons[ids[len(ids) // 3]])
        doomed = {b["key"] for b in repo["drop_bundles"]}
        prefix = f"repos/{harness.repo_key(NAME)}/manifests/"
        freed = sum(self.ws.store.size(f"{prefix}{sid}.json") for sid in repo["drop"])
        freed += sum(self.ws.store.size(k) for k in doomed)
        self.assertEqual(repo["bytes_freed"], freed)
        self.assertGreater(freed, 0)
        needed = {b["key"] for sid in kept for b in manifests[sid]["bundles"]}
        self.assertFalse(doomed & needed)
        for b in repo["kept_for_chain"]:
            self.assertIn(b["key"], needed)
            self.assertNotIn(b["snapshot_id"], kept)

        # The real run: exactly the policy, exactly the bundles it needs.
        result = self.prune(policy)
        repo = result["repositories"][0]
        self.assertEqual(set(repo["deleted"]["manifests"]), set(ids) - kept)
        self.assertEqual(set(repo["deleted"]["bundles"]), doomed)
        self.assertEqual(repo["deleted"]["bytes"], freed)
        self.assertEqual((repo["retained"], repo["failed"]), ([], []))
        self.assert_consistent(kept)
        self.assert_restores(kept)

        # Again: nothing more to do.
        again = self.prune(policy)["repositories"][0]
        self.assertEqual((again["drop"], again["deleted"]["bundles"]), ([], []))
        print(f"\n{type(self).__name__}: {len(ids)} snapshot runs in {generated_s:.1f}s, kept {len(kept)}",
              flush=True)

    def test_rebase_replaces_the_old_base(self):
        ids = self.make_history(self.short_runs, push_every=3, full_every=100, hours=7)
        base = self.manifests()[ids[0]]["bundles"][0]["key"]
        policy = {"keep_last": 4}
        kept = expected_kept(ids, policy)

        # Without rebase the base stays, kept for the chain.
        plain = self.prune(dict(policy), args=["--dry-run"])["repositories"][0]
        self.assertIn(base, {b["key"] for b in plain["kept_for_chain"]})

        result = self.prune(dict(policy, rebase=True))["repositories"][0]
        self.assertEqual(len(result["rebased"]), 1)
        self.assertEqual(result["rebased"][0]["at"], min(kept))
        self.assertIn(base, result["deleted"]["bundles"])
        self.assertFalse(self.ws.store.exists(base))
        self.assert_consistent(kept)
        for sid in kept:
            self.assertEqual(self.ws.manifest(NAME, sid)["bundles"][0]["key"], result["rebased"][0]["key"])
        self.assert_restores(kept)
        # Nothing left to rebase.
        self.assertEqual(self.prune(dict(policy, rebase=True))["repositories"][0]["rebase"], [])
        # A snapshot after the rebase builds on the new chain and restores too.
        self.change_upstream()
        after = self.snapshot_at(sim_time(30, 7), 100)
        self.assertEqual(self.ws.manifest(NAME, after)["kind"], "incremental")
        self.assert_restores([after])

    def test_crash_in_the_middle_then_rerun(self):
        ids = self.make_history(self.short_runs, push_every=3, full_every=3, hours=11)
        policy = {"keep_last": 3, "keep_daily": 2, "rebase": True}
        kept = expected_kept(ids, policy)
        seed = int(os.environ.get("PRUNE_CRASH_SEED", str(random.randrange(1 << 30))))
        rng = random.Random(seed)
        env = self.ws.env()
        env["SNAPSHOTTER_JOB_JSON"] = __import__("json").dumps(self.prune_payload(policy))
        kills = 0
        for attempt in range(4):
            proc = subprocess.Popen([harness.snapshotter_bin()], env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            harness._register(proc)
            time.sleep(rng.uniform(0.02, 0.8))
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                kills += 1
            proc.wait()
            manifests = self.manifests()
            self.assertTrue(kept <= set(manifests), f"seed {seed}, attempt {attempt}: a kept manifest is gone")
            self.assert_restores(kept)
        result = self.prune(policy)
        self.assertEqual(result["repositories"][0]["failed"], [])
        self.assert_consistent(kept, f"seed {seed}, {kills} kills; last run: {result}")
        self.assert_restores(kept)
        print(f"\n{type(self).__name__}: crash seed {seed}, {kills} kills", flush=True)

    def test_payload_errors(self):
        def error_of(payload):
            return self.assertRunFails(self.ws.run(payload), 1, "PayloadError")["message"]

        base = {"version": 1, "action": "prune", "storage": self.ws.storage()}
        self.assertIn("retention policy is empty", error_of(dict(base, prune={})))
        self.assertIn("retention policy is empty", error_of(dict(base, prune={"pinned": [], "keep_daily": 0})))
        self.assertIn("prune.keep_within", error_of(dict(base, prune={"keep_within": "30 days"})))
        self.assertIn("prune: is required", error_of(base))
        self.assertIn("prune.keep_daily", error_of(dict(base, prune={"keep_daily": -1})))


class PruneFile(_Base, unittest.TestCase):
    storage = "file"

    def test_object_lock_is_refused_on_file_storage(self):
        payload = self.ws.snapshot_payload([self.repo])
        payload["storage"] = dict(payload["storage"], object_lock_mode="GOVERNANCE", object_lock_retain_days=1)
        out = self.assertRunFails(self.ws.run(payload), 1, "PayloadError")
        self.assertIn("Object Lock is an S3 feature", out["message"])


class PruneS3(_Base, unittest.TestCase):
    storage = "s3"
    history_runs = 40
    short_runs = 18

    def test_object_lock_retained_objects_are_reported_not_hidden(self):
        store = self.ws.store
        bucket = f"locked-{os.getpid()}-{int(time.monotonic() * 1000) % 100000}"
        store.client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        self.ws.store.bucket = bucket
        lock = {"object_lock_mode": "GOVERNANCE", "object_lock_retain_days": 1}
        ids = []
        for step in range(6):
            self.change_upstream()
            # The first three unlocked, the last three locked.
            ids.append(self.snapshot_at(sim_time(step, 24), 2, lock if step >= 3 else None))
        manifests = self.manifests()
        prefix = f"repos/{harness.repo_key(NAME)}/"
        locked_key = f"{prefix}manifests/{ids[4]}.json"
        head = store.client.head_object(Bucket=bucket, Key=store.object_key(locked_key))
        self.assertEqual(head.get("ObjectLockMode"), "GOVERNANCE")
        self.assertIn("ObjectLockRetainUntilDate", head)
        bundle = manifests[ids[4]]["bundles"][-1]["key"]
        self.assertEqual(store.client.head_object(Bucket=bucket, Key=store.object_key(bundle)).get(
            "ObjectLockMode"), "GOVERNANCE")
        latest = store.client.head_object(Bucket=bucket, Key=store.object_key(f"{prefix}latest.json"))
        self.assertNotIn("ObjectLockMode", latest)

        result = self.prune({"keep_last": 1})["repositories"][0]
        locked_manifests = {f"{prefix}manifests/{sid}.json" for sid in ids[3:5]}
        self.assertTrue(locked_manifests <= set(result["retained"]), result["retained"])
        self.assertEqual(result["failed"], [])
        self.assertEqual(set(result["deleted"]["manifests"]), set(ids[:3]))
        remaining = self.manifests()
        self.assertEqual(set(remaining), set(ids[3:]))
        # No delete marker hides a retained object (deleted unlocked ones get one, as on S3).
        versions = store.client.list_object_versions(Bucket=bucket, Prefix=store.object_key(prefix))
        markers = {m["Key"] for m in versions.get("DeleteMarkers", [])}
        self.assertFalse(markers & {store.object_key(k) for k in result["retained"]}, markers)
        self.assertTrue(markers, "the unlocked dropped manifests were deleted")
        self.assert_restores(remaining)


class PruneRgw(PruneS3):
    """Against Ceph RGW (rgw.py): Object Lock and a rebase (manifests
    rewritten); the long generated history, the crash and the payload tests
    do not depend on the server and run on moto, to keep the suite's time."""
    storage = "rgw"
    short_runs = 8
    test_policy_over_a_generated_history = None
    test_crash_in_the_middle_then_rerun = None
    test_payload_errors = None


del _Base

if __name__ == "__main__":
    unittest.main()
