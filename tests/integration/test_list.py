"""list: snapshots of one repository or of all, newest first.

Two repositories, three snapshot runs (full, then one changed and one
unchanged, then unchanged): list with a repository returns exactly its
snapshots newest first with the documented fields, each agreeing with its
manifest; list without a repository returns both repositories.
`ListS3` does the same against s3:// (moto behind the strict SigV4 front).
"""

import unittest

import harness

ALPHA, BETA = "org/alpha", "team/beta"
LIST_FIELDS = {"snapshot_id", "created_at", "kind", "refs", "bytes", "parent"}


def setUpModule():
    harness.setup_module()


def tearDownModule():
    harness.teardown_module()


class List(harness.Assertions, unittest.TestCase):
    storage = "file"  # file | s3

    @classmethod
    def setUpClass(cls):
        root = harness.mkdtemp("up-")
        # No tag of a tag here: test_snapshot_restore covers those; this module tests list.
        cls.alpha = harness.build_rich(root, "alpha", tag_of_tag=False)
        cls.beta = harness.build_unicode(root, "beta")
        cls.ws = harness.Workspace(storage=cls.storage)
        cls.ids = {ALPHA: [], BETA: []}       # oldest first
        cls.kinds = {ALPHA: [], BETA: []}
        cls.refs = {ALPHA: [], BETA: []}
        cls.sizes = {}
        a = {"url": str(cls.alpha.bare), "name": ALPHA}
        b = {"url": str(cls.beta.bare), "name": BETA}

        def snap(repos):
            run = cls.ws.snapshot(repos, {"full_every": 1})
            if run.rc != 0:
                raise AssertionError(f"snapshot failed:\n{run.describe()}")
            for r in run.out["result"]["repositories"]:
                cls.ids[r["name"]].append(r["snapshot_id"])
                cls.kinds[r["name"]].append(r.get("kind"))
                cls.refs[r["name"]].append(r.get("refs"))
                if r.get("kind") == "full":
                    cls.sizes[r["snapshot_id"]] = r["bundle"]["size"]

        snap([a, b])
        cls.alpha.checkout("main")
        cls.alpha.commit_file("list.txt", "one more\n", "one more commit")
        cls.alpha.push("main")
        cls.alpha.delete_ref("refs/heads/feature/x")
        snap([a, b])
        snap([a])

    def check_entry_list(self, name: str, entry: dict) -> None:
        self.assertEqual(entry.get("name"), name)
        snaps = entry.get("snapshots")
        self.assertEqual([s.get("snapshot_id") for s in snaps], list(reversed(self.ids[name])),
                         f"{name}: snapshots newest first")
        for s, kind, refs in zip(snaps, reversed(self.kinds[name]), reversed(self.refs[name])):
            sid = s["snapshot_id"]
            self.assertEqual(set(s), LIST_FIELDS, f"{name} {sid}: fields")
            m = self.ws.manifest(name, sid)
            self.assertEqual((s["kind"], s["refs"], s["created_at"], s["parent"]),
                             (kind, refs, m.get("created_at"), m.get("parent")), f"{name} {sid}")
            self.assertRegex(s["created_at"], harness.RFC3339_UTC_RE)
            self.assertIsInstance(s["bytes"], int)
            if sid in self.sizes:
                self.assertEqual(s["bytes"], self.sizes[sid], f"{name} {sid}: bytes of its bundle")

    def test_snapshot_kinds_as_expected(self):
        self.assertEqual(self.kinds, {ALPHA: ["full", "full", "unchanged"], BETA: ["full", "unchanged"]})

    def test_list_one_repository(self):
        run = self.ws.list(ALPHA)
        result = self.assertRunOk(run, "list of one repository")
        self.assertEqual(result.get("action"), "list")
        self.assertEqual(len(result.get("repositories", [])), 1, run.describe())
        self.check_entry_list(ALPHA, result["repositories"][0])

    def test_list_the_other_repository(self):
        result = self.assertRunOk(self.ws.list(BETA))
        self.assertEqual([e.get("name") for e in result["repositories"]], [BETA])
        self.check_entry_list(BETA, result["repositories"][0])

    def test_list_all_repositories(self):
        for payload in (self.ws.list_payload(None), dict(self.ws.list_payload(None), list={})):
            run = self.ws.run(payload)
            result = self.assertRunOk(run, f"list of all repositories: {payload}")
            entries = {e.get("name"): e for e in result.get("repositories", [])}
            self.assertEqual(sorted(entries), sorted([ALPHA, BETA]), run.describe())
            self.assertEqual(len(result["repositories"]), 2, run.describe())
            for name, entry in entries.items():
                self.check_entry_list(name, entry)


class ListS3(List):
    storage = "s3"


if __name__ == "__main__":
    unittest.main()
