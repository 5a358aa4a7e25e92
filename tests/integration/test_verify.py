"""Verify, corruption and restore refusals.

A fresh snapshot verifies (with a restore drill). One flipped byte in the
middle of the stored bundle makes verify fail with IntegrityError naming
the snapshot id and the bundle key, and makes restore refuse, leaving the
target absent/empty. A drill catches corruption that the checksums cannot
(bundle and manifest checksum both rewritten). Restore refuses a non-empty
target (Conflict) without touching it.

Stored objects are read and corrupted through `Workspace.store`; `VerifyS3`
runs every test again against s3:// (moto behind the strict SigV4 front).
"""

import unittest

import harness

UPSTREAM = None
NAME = "org/app"


def setUpModule():
    global UPSTREAM
    harness.setup_module()
    # No tag of a tag here: test_snapshot_restore covers those; this module tests verify.
    UPSTREAM = harness.build_rich(harness.mkdtemp("up-"), "verify", tag_of_tag=False)


def tearDownModule():
    harness.teardown_module()


class Verify(harness.Assertions, unittest.TestCase):
    storage = "file"  # file | s3

    def setUp(self):
        self.ws = harness.Workspace(storage=self.storage)
        run = self.ws.snapshot([{"url": str(UPSTREAM.bare), "name": NAME}])
        r = self.assertRunOk(run, "snapshot")["repositories"][0]
        self.assertEqual(r.get("status"), "ok", r)
        self.sid = r["snapshot_id"]
        self.bkey = harness.bundle_key(NAME, self.sid)
        self.assertTrue(self.ws.store.exists(self.bkey), f"no bundle at {self.ws.store.url}/{self.bkey}")

    def flip_bundle_byte(self) -> None:
        self.ws.store.flip_middle_byte(self.bkey)

    def test_verify_with_drill_ok(self):
        result = self.assertRunOk(self.ws.verify([NAME], drill=True), "verify of a fresh snapshot")
        self.assertEqual(result, {
            "action": "verify",
            "snapshots": [{"repository": NAME, "snapshot_id": self.sid, "ok": True, "drill": True, "problems": []}],
            "summary": {"checked": 1, "ok": 1, "failed": 0},
            "leftovers": {"count": 0, "bytes": 0, "stale": 0, "stale_after_s": 86400, "items": [],
                          "truncated": False, "problems": []},
        })

    def test_leftovers_are_reported_never_failed_and_removed_by_gc(self):
        # A bundle no manifest lists: what a job killed before its manifest leaves.
        orphan = harness.bundle_key(NAME, "20261128T000000.000Z-0rphan")
        self.ws.store.write(orphan, b"half a bundle")
        result = self.assertRunOk(self.ws.verify([NAME], drill=False), "verify with an orphan bundle")
        self.assertEqual([s["ok"] for s in result["snapshots"]], [True])
        items = result["leftovers"]["items"]
        self.assertEqual([(i["kind"], i["key"], i["repository"], i["bytes"]) for i in items],
                         [("orphan_bundle", orphan, NAME, 13)])
        self.assertLess(items[0]["age_s"], 3600)
        gc = {"version": 1, "action": "gc", "storage": self.ws.storage()}
        # Young: the default safety age keeps it; a dry run with a forced tiny age lists it and keeps it.
        self.assertEqual(self.assertRunOk(self.ws.run(gc))["removed"]["count"], 0)
        forced = dict(gc, gc={"min_age_s": 0, "allow_short_age": True})
        dry = self.assertRunOk(self.ws.run(forced, args=["--dry-run"]))
        self.assertEqual(([i["key"] for i in dry["removed"]["items"]], dry["removed"]["bytes"], dry["dry_run"]),
                         ([orphan], 13, True))
        self.assertTrue(self.ws.store.exists(orphan))
        self.assertEqual(self.assertRunOk(self.ws.run(forced))["removed"]["count"], 1)
        self.assertFalse(self.ws.store.exists(orphan))
        self.assertTrue(self.ws.store.exists(self.bkey), "gc removed a bundle a manifest lists")
        after = self.assertRunOk(self.ws.verify([NAME], drill=True), "verify after gc")
        self.assertEqual((after["summary"]["ok"], after["leftovers"]["count"]), (1, 0))
        # Too small an age is refused unless forced.
        self.assertRunFails(self.ws.run(dict(gc, gc={"min_age_s": 60})), 1, "PayloadError")

    def test_verify_all_repositories_without_drill_ok(self):
        result = self.assertRunOk(self.ws.run(
            {"version": 1, "action": "verify", "storage": self.ws.storage()}), "verify with defaults")
        self.assertEqual([(s.get("repository"), s.get("snapshot_id"), s.get("ok")) for s in result["snapshots"]],
                         [(NAME, self.sid, True)])

    def assertIntegrityFailure(self, run: harness.Run, drill: bool) -> list:
        out = self.assertRunFails(run, 1, "IntegrityError", "verify of a corrupted bundle")
        result = out.get("result")
        self.assertIsInstance(result, dict, run.describe())
        self.assertEqual(result.get("summary"), {"checked": 1, "ok": 0, "failed": 1}, run.describe())
        snaps = result.get("snapshots")
        self.assertEqual(len(snaps), 1, run.describe())
        s = snaps[0]
        self.assertEqual((s.get("repository"), s.get("snapshot_id"), s.get("ok"), s.get("drill")),
                         (NAME, self.sid, False, drill), run.describe())
        self.assertTrue(s.get("problems"), run.describe())
        return s["problems"]

    def test_flipped_byte_fails_verify_and_names_snapshot_and_bundle(self):
        self.flip_bundle_byte()
        problems = self.assertIntegrityFailure(self.ws.verify([NAME], drill=True), drill=True)
        self.assertTrue(any(self.sid in p and self.bkey in p for p in problems),
                        f"no problem names snapshot {self.sid} and bundle {self.bkey}: {problems}")

    def test_flipped_byte_fails_verify_without_drill(self):
        self.flip_bundle_byte()
        problems = self.assertIntegrityFailure(self.ws.verify([NAME], snapshot=self.sid, drill=False), drill=False)
        self.assertTrue(any(self.bkey in p for p in problems), problems)

    def test_drill_catches_corruption_the_checksum_misses(self):
        # Corrupt the pack and make the manifest agree with the corrupted file:
        # only unpacking (the drill) can notice.
        self.flip_bundle_byte()
        store = self.ws.store
        mkey = harness.manifest_key(NAME, self.sid)
        manifest = store.manifest(mkey)
        for b in manifest["bundles"]:
            if b["key"] == self.bkey:
                b["sha256"] = store.sha256(self.bkey)
                b["size"] = store.size(self.bkey)
        store.write_manifest(mkey, manifest)
        problems = self.assertIntegrityFailure(self.ws.verify([NAME], drill=True), drill=True)
        self.assertTrue(any(self.sid in p for p in problems), problems)

    def test_verify_all_snapshots_sharing_a_corrupted_bundle(self):
        # A second, unchanged snapshot points at the same bundle: both are checked, then both fail.
        run = self.ws.snapshot([{"url": str(UPSTREAM.bare), "name": NAME}])
        r2 = self.assertRunOk(run)["repositories"][0]
        self.assertEqual(r2.get("kind"), "unchanged", r2)
        sids = sorted([self.sid, r2["snapshot_id"]])
        result = self.assertRunOk(self.ws.verify([NAME], snapshot="all", drill=False), "verify all")
        self.assertEqual(sorted((s.get("snapshot_id"), s.get("ok")) for s in result["snapshots"]),
                         [(sid, True) for sid in sids])
        self.assertEqual(result.get("summary"), {"checked": 2, "ok": 2, "failed": 0})
        self.flip_bundle_byte()
        run = self.ws.verify([NAME], snapshot="all", drill=False)
        out = self.assertRunFails(run, 1, "IntegrityError", "verify all after corruption")
        snaps = out.get("result", {}).get("snapshots", [])
        self.assertEqual(sorted((s.get("snapshot_id"), s.get("ok")) for s in snaps),
                         [(sid, False) for sid in sids], run.describe())
        for s in snaps:
            # The entry names the snapshot; its problem names the shared bundle.
            self.assertTrue(any(self.bkey in p for p in s.get("problems", [])),
                            f"problems of {s['snapshot_id']} must name {self.bkey}: {s.get('problems')}")

    def test_restore_of_corrupted_snapshot_refuses_new_target(self):
        self.flip_bundle_byte()
        target = self.ws.new_target()
        run = self.ws.restore(NAME, target, self.sid)
        self.assertRunFails(run, 1, "IntegrityError", "restore of a corrupted bundle")
        self.assertFalse(target.exists() and any(target.iterdir()),
                         f"a refused restore left files in {target}: {sorted(p.name for p in target.iterdir())}"
                         if target.exists() else "")

    def test_restore_of_corrupted_snapshot_refuses_empty_dir_target(self):
        self.flip_bundle_byte()
        target = self.ws.new_target()
        target.mkdir()
        run = self.ws.restore(NAME, target)
        self.assertRunFails(run, 1, "IntegrityError", "restore of a corrupted bundle")
        self.assertEqual(harness.tree_state(target), {}, "a refused restore must leave the target empty")

    def test_restore_into_non_empty_target_is_refused(self):
        target = self.ws.new_target()
        (target / "keep").mkdir(parents=True)
        (target / "keep" / "data.txt").write_text("precious\n")
        (target / "HEAD").write_text("not a repository\n")
        before = harness.tree_state(target, with_mtimes=True)
        run = self.ws.restore(NAME, target)
        self.assertRunFails(run, 1, "Conflict", "restore into a non-empty directory")
        self.assertTreeUnchanged(before, harness.tree_state(target, with_mtimes=True), "the non-empty target")

    def test_restore_onto_a_file_is_refused(self):
        target = self.ws.new_target()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("a file\n")
        run = self.ws.restore(NAME, target)
        self.assertEqual((run.rc, run.out.get("ok")), (1, False), run.describe())
        self.assertEqual(target.read_text(), "a file\n")

    def test_restore_into_existing_empty_dir_works(self):
        target = self.ws.new_target()
        target.mkdir()
        self.assertRunOk(self.ws.restore(NAME, target), "restore into an empty directory")
        self.assertRepoEquals(target, UPSTREAM, "restore into an empty directory")

    def test_restore_of_unknown_repository_is_not_found(self):
        target = self.ws.new_target()
        self.assertRunFails(self.ws.restore("org/nope", target), 1, "NotFound", "restore of an unknown repository")
        self.assertFalse(target.exists())

    def test_restore_of_unknown_snapshot_is_not_found(self):
        target = self.ws.new_target()
        self.assertRunFails(self.ws.restore(NAME, target, "20000101T000000.000Z-000000"), 1, "NotFound")
        self.assertFalse(target.exists())


class VerifyS3(Verify):
    storage = "s3"


class VerifyRgw(Verify):
    """Against Ceph RGW (rgw.py), SSE-KMS with its testing KMS."""
    storage = "rgw"


if __name__ == "__main__":
    unittest.main()
