"""Delta tables (docs/manifest.md, schema versions 3 and 4) over a chain of nights.

A repository of some 60 refs is snapshotted night after night while refs move
(a commit on main, a branch reset, a branch deleted, a tag created), so each
changed night stores a delta table against its parent's. Each test checks, on
file:// and on s3:// (moto behind the strict SigV4 front):

- deltas are written (a version-3 manifest naming a table with a base) and an
  unchanged night writes no table;
- every snapshot restores to exactly the refs upstream had that night, and
  verify (which reads and digest-checks every table of each chain) is clean;
- a prune of the middle snapshots (no rebase) keeps the tables the kept
  snapshots' chains need, so their restores still work;
- gc (min_age_s 0) removes no table of a kept chain;
- manifests of every earlier version (1: sets inline, 2: a keyed full table,
  3: plain JSON naming a delta chain) among version-4 (gzip) ones are still
  read by list, restore, verify, the next snapshot, prune and gc.
"""

import json
import unittest

import harness

NAME = "org/deltas"


def setUpModule():
    harness.setup_module()


def tearDownModule():
    harness.teardown_module()


class _Base(harness.Assertions):
    storage = "file"

    def setUp(self):
        self.ws = harness.Workspace(storage=self.storage)
        self.ws.store.create()
        self.up = harness.new_upstream(harness.mkdtemp("upstream-"), "deltas")
        self.up.commit_file("README", "first\n")
        self.up.push("HEAD:refs/heads/main")
        self.up.set_head("refs/heads/main")
        # 60 branches, each on its own commit, as real refs are (their table compresses as a real one).
        marks = "".join(f"commit refs/heads/topic-{i:02d}\ncommitter T <t@example.com> {1700000000 + i} +0000\n"
                        f"data 6\ntopic\nfrom refs/heads/main^0\n\n" for i in range(60))
        harness.git("fast-import", "--quiet", git_dir=self.up.bare, input=marks.encode())
        self.repo = {"url": str(self.up.bare), "name": NAME}

    def snapshot(self) -> dict:
        result = self.assertRunOk(self.ws.snapshot([self.repo], {"engine": "cli"}))
        return result["repositories"][0]

    def night(self, n: int) -> None:
        """A commit on main; a branch reset to it, one deleted, a tag created."""
        self.up.commit_file("night.txt", f"night {n}\n")
        self.up.push("HEAD:refs/heads/main")
        harness.git("update-ref", f"refs/heads/topic-{n:02d}", "refs/heads/main", git_dir=self.up.bare)
        harness.git("update-ref", "-d", f"refs/heads/topic-{30 + n:02d}", git_dir=self.up.bare)
        harness.git("tag", f"night-{n}", "refs/heads/main", git_dir=self.up.bare)

    def table_keys(self) -> set[str]:
        return {k for k in self.ws.store.keys(f"repos/{harness.repo_key(NAME)}/tables/")
                if not k.rsplit("/", 1)[-1].startswith(".tmp-")}

    def chain_keys(self, sid: str) -> set[str]:
        key = harness.manifest_key(NAME, sid)
        return {k for k, _ in self.ws.store.table_chain(key, self.ws.store.json(key)["table"])}

    def assert_restores(self, expected: dict[str, dict]) -> None:
        for sid, refs in expected.items():
            target = self.ws.new_target()
            self.assertRunOk(self.ws.restore(NAME, target, sid), sid)
            self.assertEqual(harness.ref_map(target), refs, sid)

    def test_a_chain_of_nights_with_moving_refs(self):
        expected = {}
        first = self.snapshot()
        expected[first["snapshot_id"]] = self.up.ref_map()
        for n in range(1, 4):
            self.night(n)
            r = self.snapshot()
            self.assertEqual(r["kind"], "incremental", r)
            expected[r["snapshot_id"]] = self.up.ref_map()
        ids = sorted(expected)
        # Deltas in use: the newest names a delta whose chain ends at the first night's full table.
        newest = self.ws.store.json(harness.manifest_key(NAME, ids[-1]))
        self.assertEqual(newest["schema_version"], 4)
        self.assertEqual(self.ws.store.read(harness.manifest_key(NAME, ids[-1]))[:2], b"\x1f\x8b",
                         "version 4 is stored gzip-compressed")
        self.assertNotIn("key", newest["table"])
        chain = self.ws.store.table_chain(harness.manifest_key(NAME, ids[-1]), newest["table"])
        self.assertGreater(len(chain), 1, "a delta table")
        self.assertIn("base", chain[0][1])
        self.assertLess(self.ws.store.size(chain[0][0]), 1024, "a delta of a few hundred bytes")
        # An unchanged night writes no table.
        tables = self.table_keys()
        self.assertEqual(self.snapshot()["kind"], "unchanged")
        self.assertEqual(self.table_keys(), tables)
        # Every snapshot restores exactly; verify reads every chain.
        for sid in ids:
            self.assertEqual(self.ws.manifest(NAME, sid)["refs"], expected[sid], sid)
        self.assert_restores(expected)
        out = self.assertRunOk(self.ws.run(self.ws.verify_payload([NAME], snapshot="all", drill=False)))
        self.assertEqual(out["summary"]["failed"], 0, out)
        # Prune the middle (no rebase): the kept chains stay whole.
        latest = self.ws.latest(NAME)["snapshot_id"]
        policy = {"keep_last": 2, "pinned": [ids[0]], "rebase": False}
        self.assertRunOk(self.ws.run({"version": 1, "action": "prune", "storage": self.ws.storage(),
                                      "prune": policy}))
        kept = {ids[0], ids[-1], latest}
        self.assertEqual({sid for sid in expected if self.ws.store.exists(harness.manifest_key(NAME, sid))},
                         {ids[0], ids[-1]})
        needed = set().union(*(self.chain_keys(sid) for sid in kept))
        self.assertEqual(self.table_keys(), needed)
        self.assert_restores({sid: expected[sid] for sid in (ids[0], ids[-1])})
        # gc removes no table of a kept chain.
        self.assertRunOk(self.ws.run({"version": 1, "action": "gc", "storage": self.ws.storage(),
                                      "gc": {"min_age_s": 0, "allow_short_age": True}}))
        self.assertEqual(self.table_keys(), needed)
        out = self.assertRunOk(self.ws.run(self.ws.verify_payload([NAME], snapshot="all", drill=False)))
        self.assertEqual(out["summary"]["failed"], 0, out)

    def rewrite_as(self, sid: str, version: int) -> None:
        """Store snapshot `sid`'s manifest as snapshotter version `version` wrote it."""
        key = harness.manifest_key(NAME, sid)
        if version == 3:  # plain JSON naming the same (delta) table
            manifest = dict(self.ws.store.json(key), schema_version=3)
            self.ws.store.write(key, (json.dumps(manifest, separators=(",", ":")) + "\n").encode())
        elif version == 2:  # a full table named with its key
            self.ws.store.write_manifest(key, self.ws.store.manifest(key))
        else:  # every set inline, indented
            manifest = dict(self.ws.store.manifest(key), schema_version=1)
            manifest.pop("table")
            self.ws.store.write(key, json.dumps(manifest, indent=2).encode())

    def test_manifests_of_every_version_still_read(self):
        expected = {}
        first = self.snapshot()
        expected[first["snapshot_id"]] = self.up.ref_map()
        for n in range(1, 5):
            self.night(n)
            r = self.snapshot()
            expected[r["snapshot_id"]] = self.up.ref_map()
        ids = sorted(expected)
        for sid, version in zip(ids, (1, 2, 3, 3)):
            self.rewrite_as(sid, version)
        self.assertEqual([self.ws.store.json(harness.manifest_key(NAME, sid))["schema_version"] for sid in ids],
                         [1, 2, 3, 3, 4])
        self.assertEqual(self.ws.store.read(harness.manifest_key(NAME, ids[2]))[:1], b"{")
        # list, restore and verify read every version.
        listed = self.assertRunOk(self.ws.list(NAME))["repositories"][0]["snapshots"]
        self.assertEqual(sorted(s["snapshot_id"] for s in listed), ids)
        self.assert_restores(expected)
        out = self.assertRunOk(self.ws.run(self.ws.verify_payload([NAME], snapshot="all", drill=False)))
        self.assertEqual(out["summary"]["failed"], 0, out)
        # The next night's parent is version 3: a version-4 delta on its chain.
        self.rewrite_as(ids[-1], 3)
        self.night(5)
        r = self.snapshot()
        self.assertEqual(r["kind"], "incremental", r)
        expected[r["snapshot_id"]] = self.up.ref_map()
        newest = self.ws.store.json(harness.manifest_key(NAME, r["snapshot_id"]))
        self.assertEqual(newest["schema_version"], 4)
        self.assertIn("base", self.ws.store.table_chain(harness.manifest_key(NAME, r["snapshot_id"]),
                                                        newest["table"])[0][1])
        # prune (no rebase) of the middle, then gc: what is kept reads and restores.
        policy = {"keep_last": 2, "pinned": [ids[0], ids[2]], "rebase": False}
        self.assertRunOk(self.ws.run({"version": 1, "action": "prune", "storage": self.ws.storage(),
                                      "prune": policy}))
        kept = {ids[0], ids[2], ids[-1], r["snapshot_id"]}
        self.assertEqual({sid for sid in expected if self.ws.store.exists(harness.manifest_key(NAME, sid))}, kept)
        self.assertRunOk(self.ws.run({"version": 1, "action": "gc", "storage": self.ws.storage(),
                                      "gc": {"min_age_s": 0, "allow_short_age": True}}))
        needed = set().union(*(self.chain_keys(sid) for sid in kept if sid != ids[0]))
        self.assertEqual(self.table_keys(), needed)
        self.assert_restores({sid: expected[sid] for sid in kept})
        out = self.assertRunOk(self.ws.run(self.ws.verify_payload([NAME], snapshot="all", drill=False)))
        self.assertEqual(out["summary"]["failed"], 0, out)


class DeltaTablesFile(_Base, unittest.TestCase):
    storage = "file"


class DeltaTablesS3(_Base, unittest.TestCase):
    storage = "s3"


if __name__ == "__main__":
    unittest.main()
