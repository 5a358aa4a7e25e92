"""--dry-run: plans are reported and nothing is written anywhere.

After a real snapshot and an upstream change, a dry run reports a plan per
repository (full / unchanged / empty) with snapshot_id null, and leaves the
storage dir and the cache dir byte-for-byte unchanged (every file's content,
mode and mtime, and the list of names). An unreachable repository is
reported failed, still without writing anything.
"""

import unittest

import harness

SERVE_ROOT = None
DAEMON = None
TEMPLATE = None
EMPTY = None


def setUpModule():
    global SERVE_ROOT, DAEMON, TEMPLATE, EMPTY
    harness.setup_module()
    SERVE_ROOT = harness.mkdtemp("serve-")
    # No tag of a tag here: test_snapshot_restore covers those; this module tests the dry run.
    TEMPLATE = harness.build_rich(harness.mkdtemp("templates-"), "rich", tag_of_tag=False)
    EMPTY = harness.build_empty(SERVE_ROOT, "empty")
    DAEMON = harness.GitDaemon(SERVE_ROOT)


def tearDownModule():
    harness.teardown_module()


def unreachable_url() -> str:
    return f"git://127.0.0.1:{harness.free_port()}/nothing-listens-here.git"


class DryRun(harness.Assertions, unittest.TestCase):
    counter = 0

    def setUp(self):
        self.ws = harness.Workspace()
        # The git-CLI engine fills the cache, so "nothing written" covers it too.
        self.ws.default_options = {"engine": "cli"}

    def upstream(self, label: str) -> tuple:
        DryRun.counter += 1
        name = f"{label}-{DryRun.counter}"
        up = TEMPLATE.copy_to(SERVE_ROOT, name)
        return up, {"url": DAEMON.url_for(f"{name}.git"), "name": f"org/{name}"}

    def states(self) -> tuple:
        return (harness.tree_state(self.ws.storage_dir, with_mtimes=True),
                harness.tree_state(self.ws.cache_dir, with_mtimes=True))

    def assertNothingWritten(self, before: tuple) -> None:
        storage, cache = self.states()
        self.assertTreeUnchanged(before[0], storage, "storage dir")
        self.assertTreeUnchanged(before[1], cache, "cache dir")

    def by_name(self, result: dict) -> dict:
        return {r.get("name"): r for r in result.get("repositories", [])}

    def test_plans_and_nothing_written(self):
        changed, changed_repo = self.upstream("changed")
        same, same_repo = self.upstream("same")
        fresh, fresh_repo = self.upstream("fresh")
        empty_repo = {"url": DAEMON.url_for("empty.git"), "name": "org/empty"}
        self.assertRunOk(self.ws.snapshot([changed_repo, same_repo]), "the real snapshot")
        changed.checkout("main")
        changed.commit_file("dry.txt", "dry\n", "change after the snapshot")
        changed.push("main")

        before = self.states()
        self.assertTrue(before[0] and before[1], "the real snapshot wrote storage and cache")
        run = self.ws.snapshot([changed_repo, same_repo, fresh_repo, empty_repo], args=["--dry-run"])
        result = self.assertRunOk(run, "dry run")
        self.assertNothingWritten(before)

        self.assertEqual((result.get("action"), result.get("dry_run")), ("snapshot", True), run.describe())
        repos = self.by_name(result)
        self.assertEqual(list(repos), [r["name"] for r in (changed_repo, same_repo, fresh_repo, empty_repo)])
        expected = {
            changed_repo["name"]: ("incremental", len(changed.ref_map())),
            same_repo["name"]: ("unchanged", len(same.ref_map())),
            fresh_repo["name"]: ("full", len(fresh.ref_map())),
            "org/empty": ("empty", 0),
        }
        actual = {n: (r.get("plan"), r.get("refs")) for n, r in repos.items()}
        self.assertEqual(actual, expected, run.describe())
        for n, r in repos.items():
            self.assertIn("snapshot_id", r, f"{n}: dry-run entries carry snapshot_id null")
            self.assertIsNone(r["snapshot_id"], f"{n}: a dry run creates no snapshot")
            self.assertNotEqual(r.get("status"), "failed", r)
        self.assertEqual(result.get("summary", {}).get("total"), 4, run.describe())
        self.assertEqual(result.get("summary", {}).get("failed"), 0, run.describe())

        # The real run afterwards still sees the change (the dry run did not update the cache or latest).
        result = self.assertRunOk(self.ws.snapshot([changed_repo, same_repo]), "real snapshot after the dry run")
        statuses = {n: r.get("status") for n, r in self.by_name(result).items()}
        self.assertEqual(statuses, {changed_repo["name"]: "ok", same_repo["name"]: "unchanged"})

    def test_dry_run_on_a_pristine_workspace_creates_nothing(self):
        _, repo = self.upstream("pristine")
        self.ws.storage_dir.mkdir()
        run = self.ws.snapshot([repo], args=["--dry-run"])
        result = self.assertRunOk(run, "dry run without any previous snapshot")
        self.assertEqual(self.by_name(result)[repo["name"]].get("plan"), "full", run.describe())
        self.assertEqual(harness.tree_state(self.ws.storage_dir), {}, "storage must stay empty")
        self.assertFalse(self.ws.cache_dir.exists(), "a dry run must not create the cache dir")

    def test_unreachable_repository_is_reported_failed(self):
        _, good = self.upstream("good")
        self.assertRunOk(self.ws.snapshot([good]), "the real snapshot")
        before = self.states()
        bad = {"url": unreachable_url(), "name": "org/unreachable"}
        run = self.ws.snapshot([good, bad], args=["--dry-run"])
        out = self.assertRunFails(run, 2, "PartialFailure", "dry run with one unreachable repository")
        self.assertNothingWritten(before)
        repos = self.by_name(out.get("result", {}))
        self.assertEqual(repos[good["name"]].get("plan"), "unchanged", run.describe())
        self.assertEqual((repos["org/unreachable"].get("status"), repos["org/unreachable"].get("error")),
                         ("failed", "GitError"), run.describe())
        self.assertEqual(out["result"].get("summary", {}).get("failed"), 1, run.describe())

    def test_only_unreachable_repository(self):
        self.ws.storage_dir.mkdir()
        bad = {"url": unreachable_url(), "name": "org/unreachable"}
        run = self.ws.snapshot([bad], args=["--dry-run"])
        out = self.assertRunFails(run, 1, "GitError", "dry run whose only repository is unreachable")
        self.assertIs(out.get("result", {}).get("dry_run"), True, run.describe())
        repos = self.by_name(out["result"])
        self.assertEqual(repos["org/unreachable"].get("status"), "failed", run.describe())
        self.assertEqual(harness.tree_state(self.ws.storage_dir), {})
        self.assertFalse(self.ws.cache_dir.exists(), "a dry run must not create the cache dir")


if __name__ == "__main__":
    unittest.main()
