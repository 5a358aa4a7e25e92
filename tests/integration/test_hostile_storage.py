"""Hostile storage: what someone who can write to the storage can plant, and
the rule that stops each (docs/SECURITY.md, "Hostile storage").

- Keys read from storage (prune-pending.json, a manifest's bundle list) that
  lie outside the repository's own bundles/ are refused with IntegrityError
  naming the key and where it came from, by prune, gc, restore and verify;
  nothing outside is ever deleted.
- A stored bundle larger than its manifest says is read only to its size
  plus one byte (a file-size limit on the process proves no full copy).
- JSON read from storage is bounded in depth: a shard report nested 100,000
  levels deep is an IntegrityError of merge_reports, not a crash.
- One planted repos/%2E%2E/ prefix is a skipped item of `list`, not a failure.
- file:// only: a symbolic link inside the storage tree is never followed
  (a symlinked bundles/ directory, a symlinked manifests/ directory, a
  symlinked bundle).

`HostileStorage` runs on file://, `HostileStorageS3` the same tests on s3://
(moto behind the strict SigV4 front).
"""

import json
import resource
import unittest
from pathlib import Path

import harness

UPSTREAM = None
NAME = "org/app"
OTHER = "org/other"


def setUpModule():
    global UPSTREAM
    harness.setup_module()
    UPSTREAM = harness.build_rich(harness.mkdtemp("up-"), "hostile", tag_of_tag=False)


def tearDownModule():
    harness.teardown_module()


class HostileStorage(harness.Assertions, unittest.TestCase):
    storage = "file"  # file | s3

    def setUp(self):
        self.ws = harness.Workspace(storage=self.storage)
        self.ws.store.create()
        run = self.ws.snapshot([{"url": str(UPSTREAM.bare), "name": NAME},
                                {"url": str(UPSTREAM.bare), "name": OTHER}])
        repos = self.assertRunOk(run, "snapshot")["repositories"]
        self.sid = {r["name"]: r["snapshot_id"] for r in repos}
        self.manifest_key = harness.manifest_key(NAME, self.sid[NAME])
        self.bundle_key = harness.bundle_key(NAME, self.sid[NAME])
        self.other_manifest = harness.manifest_key(OTHER, self.sid[OTHER])
        self.other_bundle = harness.bundle_key(OTHER, self.sid[OTHER])
        # A job report: keys outside repos/ that a planted key might aim at.
        self.report = "jobs/victim.json"
        self.ws.store.write(self.report, b'{"keep": "me"}\n')
        self.victims = [self.other_manifest, self.other_bundle, self.report]

    def assertVictimsIntact(self, msg: str) -> None:
        for key in self.victims:
            self.assertTrue(self.ws.store.exists(key), f"{msg}: {key} was deleted")

    def rewrite_bundle_key(self, key: str) -> None:
        manifest = self.ws.store.manifest(self.manifest_key)
        manifest["bundles"][0]["key"] = key
        self.ws.store.write_manifest(self.manifest_key, manifest)

    def prune(self, policy: dict) -> harness.Run:
        return self.ws.run({"version": 1, "action": "prune", "storage": self.ws.storage(),
                            "prune": dict(policy, repositories=[NAME])})

    def gc(self) -> harness.Run:
        return self.ws.run({"version": 1, "action": "gc", "storage": self.ws.storage(),
                            "gc": {"min_age_s": 0, "allow_short_age": True}})

    # -- containment of keys read from storage -----------------------------
    def test_prune_refuses_pending_keys_outside_the_repository(self):
        pending = harness.repo_key(NAME)
        pending_key = f"repos/{pending}/prune-pending.json"
        for planted in [self.other_manifest, self.report, f"repos/{pending}/bundles/../../{harness.repo_key(OTHER)}/x",
                        f"repos/{pending}/bundles/%2E%2E"]:
            with self.subTest(planted=planted):
                self.ws.store.write(pending_key, json.dumps({"bundles": [planted]}).encode())
                run = self.prune({"keep_last": 1})
                out = self.assertRunFails(run, 1, "IntegrityError", "prune with a planted pending key")
                self.assertIn(json.dumps(planted), out["message"])
                self.assertIn("prune-pending.json", out["message"])
                entry = out["result"]["repositories"][0]
                self.assertEqual((entry["status"], entry["error"]), ("failed", "IntegrityError"))
                self.assertVictimsIntact("prune")

    def test_foreign_bundle_key_in_a_manifest_is_refused_everywhere(self):
        for planted in [self.other_bundle, "../../x", self.report, f"repos/{harness.repo_key(NAME)}/bundles/a\\b"]:
            with self.subTest(planted=planted):
                self.rewrite_bundle_key(planted)
                target = self.ws.new_target()
                out = self.assertRunFails(self.ws.restore(NAME, target), 1, "IntegrityError", "restore")
                self.assertIn(json.dumps(planted), out["message"])
                self.assertIn(self.manifest_key, out["message"])
                self.assertFalse(target.exists() and any(target.iterdir()), "restore left a target")
                out = self.assertRunFails(self.ws.verify([NAME], drill=False), 1, "IntegrityError", "verify")
                self.assertIn(json.dumps(planted), out["message"])
                out = self.assertRunFails(self.prune({"keep_last": 1}), 1, "IntegrityError", "prune")
                self.assertIn(json.dumps(planted), out["message"])
                gc = self.gc()
                self.assertEqual(gc.out.get("error"), "IntegrityError", gc.describe())
                self.assertVictimsIntact("restore, verify, prune and gc")

    # -- downloads bounded by the manifest's size --------------------------
    def test_oversized_bundle_is_read_only_to_its_size_plus_one(self):
        size = self.ws.store.size(self.bundle_key)
        # 24 MiB more than the manifest says; the process may write 8 MiB per file.
        self.ws.store.write(self.bundle_key, self.ws.store.read(self.bundle_key) + b"\0" * (24 << 20))
        limit = 8 << 20

        def cap_file_size():
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        expected = f"larger than the manifest's {size} bytes; stopped reading at byte {size + 1}"
        run = harness.run_snapshotter(self.ws.verify_payload([NAME], drill=False), env=self.ws.env(),
                                      preexec_fn=cap_file_size)
        out = self.assertRunFails(run, 1, "IntegrityError", "verify of an oversized bundle")
        self.assertIn(expected, out["message"])
        target = self.ws.new_target()
        run = harness.run_snapshotter(self.ws.restore_payload(NAME, target), env=self.ws.env(),
                                      preexec_fn=cap_file_size)
        out = self.assertRunFails(run, 1, "IntegrityError", "restore of an oversized bundle")
        self.assertIn(expected, out["message"])

    # -- JSON bounded in depth ---------------------------------------------
    def test_deep_shard_report_is_an_integrity_error(self):
        deep = "[" * 100_000 + "]" * 100_000
        report = '{"shard": {"count": 1, "index": 0}, "summary": {}, "repositories": [' + deep + ']}'
        self.ws.store.write("jobs/deep/shard-0-of-1.json", report.encode())
        run = self.ws.run({"version": 1, "action": "merge_reports", "storage": self.ws.storage(),
                           "merge_reports": {"job_id": "deep"}})
        out = self.assertRunFails(run, 1, "IntegrityError", "merge_reports of a deep report")
        self.assertIn("jobs/deep/shard-0-of-1.json", out["message"])
        self.assertIn("nested deeper than", out["message"])

    def test_deep_manifest_latest_and_pending_are_refused(self):
        deep = ("[" * 100_000 + "]" * 100_000).encode()
        self.ws.store.write(harness.latest_key(NAME), deep)
        self.ws.store.write(f"repos/{harness.repo_key(NAME)}/prune-pending.json", deep)
        # The pointer is a hint and the pending list is advisory: both are ignored.
        verified = self.assertRunOk(self.ws.verify([NAME], drill=False), "verify with a deep latest.json")
        self.assertEqual(verified["snapshots"][0]["snapshot_id"], self.sid[NAME])
        self.assertRunOk(self.prune({"keep_last": 1}), "prune with a deep prune-pending.json")
        self.ws.store.write(self.manifest_key, deep)
        out = self.assertRunFails(self.ws.verify([NAME], drill=False), 1, "IntegrityError", "verify")
        self.assertIn("nested deeper than", out["message"])

    # -- a planted prefix does not fail the list of all ----------------------
    def test_list_of_all_reports_a_planted_dotdot_prefix(self):
        self.ws.store.write("repos/%2E%2E/manifests/20260101T000000.000Z-aaaa.json", b"{}")
        result = self.assertRunOk(self.ws.list(), "list of all with a planted prefix")
        self.assertEqual(sorted(r["name"] for r in result["repositories"]), sorted([NAME, OTHER]))
        self.assertEqual([(s["prefix"], s["error"]) for s in result["skipped"]],
                         [("repos/%2E%2E/", "IntegrityError")])
        # verify and prune of all repositories skip it too (with a warning).
        self.assertRunOk(self.ws.verify(None, drill=False), "verify of all")


class HostileStorageS3(HostileStorage):
    storage = "s3"


class SymlinksInFileStorage(harness.Assertions, unittest.TestCase):
    """The file backend never follows a symbolic link inside the storage root."""

    def setUp(self):
        self.ws = harness.Workspace(storage="file")
        self.repo = {"url": str(UPSTREAM.bare), "name": NAME}
        run = self.ws.snapshot([self.repo])
        self.sid = self.assertRunOk(run, "snapshot")["repositories"][0]["snapshot_id"]
        self.root = self.ws.storage_dir
        self.repo_dir = self.root / "repos" / harness.repo_key(NAME)
        self.outside = harness.mkdtemp("outside-")

    def tree(self) -> dict:
        return harness.tree_state(self.outside, with_mtimes=True)

    def swap_for_symlink(self, directory: Path) -> None:
        """Move `directory`'s content outside and leave a symlink to it in its place."""
        for child in directory.iterdir():
            child.rename(self.outside / child.name)
        directory.rmdir()
        directory.symlink_to(self.outside, target_is_directory=True)

    def test_symlinked_bundles_directory_is_not_deleted_through(self):
        orphan = f"{self.sid[:-4]}dead.bundle"
        (self.repo_dir / "bundles" / orphan).write_bytes(b"orphan")
        self.swap_for_symlink(self.repo_dir / "bundles")
        # What a delete through the link would remove: the orphan and the real bundle.
        before = self.tree()
        pending = {"bundles": [harness.bundle_key(NAME, self.sid[:-4] + "dead")]}
        (self.repo_dir / "prune-pending.json").write_text(json.dumps(pending))
        # gc does not see through the link (symlinks are no objects), so it removes nothing.
        self.ws.run({"version": 1, "action": "gc", "storage": self.ws.storage(),
                     "gc": {"min_age_s": 0, "allow_short_age": True}})
        self.assertEqual(self.tree(), before, "gc changed a file outside the storage root")
        run = self.ws.run({"version": 1, "action": "prune", "storage": self.ws.storage(),
                           "prune": {"keep_last": 1}})
        self.assertNotEqual(run.rc, 0, run.describe())
        self.assertIn("symbolic link", json.dumps(run.out), run.describe())
        out = self.assertRunFails(self.ws.restore(NAME, self.ws.new_target()), 1, "IntegrityError", "restore")
        self.assertIn("symbolic link", out["message"])
        self.assertIn(harness.bundle_key(NAME, self.sid), out["message"])
        self.assertEqual(self.tree(), before, "a file outside the storage root changed")

    def test_symlinked_manifests_directory_does_not_redirect_writes(self):
        self.swap_for_symlink(self.repo_dir / "manifests")
        before = self.tree()
        UPSTREAM.commit_file("moved.txt", "a change, so that the snapshot writes\n")
        UPSTREAM.push("HEAD:refs/heads/main")
        run = self.ws.snapshot([self.repo])
        self.assertNotEqual(run.rc, 0, run.describe())
        self.assertIn("symbolic link", json.dumps(run.out), run.describe())
        self.assertEqual(self.tree(), before, "a write went through the symlink")

    def test_symlinked_bundle_is_not_read(self):
        bundle = self.repo_dir / "bundles" / f"{self.sid}.bundle"
        copy = self.outside / "copy.bundle"
        copy.write_bytes(bundle.read_bytes())
        bundle.unlink()
        bundle.symlink_to(copy)
        out = self.assertRunFails(self.ws.verify([NAME], drill=False), 1, "IntegrityError", "verify")
        self.assertIn("symbolic link", out["message"])
        self.assertTrue(copy.exists())


if __name__ == "__main__":
    unittest.main()
