"""list: snapshots of one repository or of all, newest first.

Two repositories, three snapshot runs (full, then one changed and one
unchanged, then unchanged): list with a repository returns exactly its
snapshots newest first with the documented fields, each agreeing with its
manifest; list without a repository returns both repositories.
`--output table` prints the same snapshots as a table for people (and a
readable error on stderr, or a refusal for other actions).
`ListS3` does the same against s3:// (moto behind the strict SigV4 front).
"""

import unittest

import harness

ALPHA, BETA = "org/alpha", "team/beta"
LIST_FIELDS = {"snapshot_id", "created_at", "kind", "refs", "changes", "bytes", "chain", "parent"}
LEDGER_KINDS = ("created", "fast_forward", "updated", "rewritten", "deleted")
TABLE = ["--output", "table"]


def ledger_counts(manifest: dict) -> dict:
    counts = dict.fromkeys(LEDGER_KINDS, 0)
    for change in manifest.get("changes", {}).values():
        counts[change["change"]] += 1
    return counts


def changed_cell(manifest: dict) -> str:
    """What the table's CHANGED column shows for `manifest`."""
    c = ledger_counts(manifest)
    parts = [f"{sign}{n}" for sign, n in (("+", c["created"]), ("~", c["fast_forward"] + c["updated"]),
                                          ("!", c["rewritten"]), ("-", c["deleted"])) if n]
    return " ".join(parts) or ("none" if manifest.get("parent") else "")


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
            self.assertEqual(s["chain"], len(m["bundles"]), f"{name} {sid}: chain length")
            self.assertEqual(s["changes"], ledger_counts(m), f"{name} {sid}: ledger counts")
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

    def table_run(self, payload: dict, expect_rc: int = 0) -> harness.Run:
        run = self.ws.run(payload, args=TABLE, check_output=False)
        self.assertEqual(run.rc, expect_rc, run.describe())
        return run

    def check_table(self, name: str, text: str) -> None:
        """The block of `name` in a table: title, header, one row per snapshot
        newest first, each agreeing with its manifest and aligned under the header."""
        lines = text.splitlines()
        title = f"{name}: {len(self.ids[name])} snapshot{'s' if len(self.ids[name]) != 1 else ''}"
        self.assertIn(title, lines, text)
        at = lines.index(title)
        header, rows = lines[at + 1], lines[at + 2:at + 2 + len(self.ids[name])]
        self.assertRegex(header, r"^CREATED \(UTC\)\s+SNAPSHOT\s+KIND\s+REFS\s+CHANGED\s+SIZE\s+CHAIN$")
        for row, sid in zip(rows, reversed(self.ids[name])):
            m = self.ws.manifest(name, sid)
            self.assertEqual(row.index(sid), header.index("SNAPSHOT"), f"aligned:\n{text}")
            self.assertEqual(len(row), len(header), f"CHAIN is right-aligned:\n{text}")
            self.assertTrue(row.startswith(m["created_at"][:10] + " " + m["created_at"][11:19]), row)
            kind_refs = row[header.index("KIND"):header.index("CHANGED")].split()
            self.assertEqual(kind_refs, [m["kind"], str(len(m["refs"]))], row)
            changed = row[header.index("CHANGED"):header.index("SIZE")].strip()
            # SIZE is right-aligned, so a wide size may start left of its header.
            self.assertTrue(changed.startswith(changed_cell(m)), f"{row!r}: expected {changed_cell(m)!r}")
            self.assertTrue(row.endswith(f" {len(m['bundles'])}"), row)
            if sid in self.sizes:
                self.assertRegex(row, r"\d(\.\d)? (B|KiB|MiB)\s+\d+$")

    def test_table_of_one_repository(self):
        run = self.table_run(self.ws.list_payload(ALPHA))
        text = run.stdout.decode("utf-8")
        self.check_table(ALPHA, text)
        self.assertNotIn(BETA, text)
        self.assertIn("+created ~updated !rewritten", text)
        # The second alpha snapshot saw main move forward and feature/x go.
        second = self.ws.manifest(ALPHA, self.ids[ALPHA][1])
        self.assertIn(changed_cell(second), text)
        self.assertIn("-1", changed_cell(second))

    def test_table_of_all_repositories(self):
        run = self.table_run(self.ws.list_payload(None))
        text = run.stdout.decode("utf-8")
        self.check_table(ALPHA, text)
        self.check_table(BETA, text)
        self.assertLess(text.index(ALPHA + ":"), text.index(BETA + ":"))

    def test_table_error_is_readable_and_fails(self):
        run = self.table_run(self.ws.list_payload("org/missing"), expect_rc=1)
        self.assertEqual(run.stdout, b"", run.describe())
        self.assertIn("snapshotter: NotFound: org/missing: no snapshot exists", run.stderr.decode(), run.describe())

    def test_table_for_other_actions_too(self):
        payload = self.ws.snapshot_payload([{"url": str(self.alpha.bare), "name": "org/tabled"}])
        run = self.table_run(payload)
        text = run.stdout.decode()
        self.assertRegex(text, r"(?m)^org/tabled +ok +full ", run.describe())
        self.assertIn("1 repositories: 1 ok, 0 unchanged, 0 failed, 0 skipped", text)
        self.assertTrue(any(k.startswith(f"repos/{harness.repo_key('org/tabled')}/manifests/")
                            for k in self.ws.store.keys()), "the snapshot was taken")
        bad = self.ws.run(self.ws.list_payload(ALPHA), args=["--output", "yaml"])
        self.assertEqual((bad.rc, bad.out["error"]), (1, "UsageError"), bad.describe())


class ListS3(List):
    storage = "s3"


if __name__ == "__main__":
    unittest.main()
