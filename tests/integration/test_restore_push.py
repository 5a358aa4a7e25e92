"""Restores for a bad day (issue 17): several repositories (or all) into a
directory tree, `as_of` picking the newest snapshot at or before a time per
repository, and `push_to` rebuilding a lost remote with exactly the
snapshot's refs, against `git http-backend` (receive-pack enabled by basic
auth: lighttpd sets REMOTE_USER) and `git daemon --enable=receive-pack`.

Two snapshots of org/app are taken at simulated times (SNAPSHOTTER_TEST_NOW)
with different states, so `as_of` has a boundary to fall on either side of.
"""

from __future__ import annotations

import json
import os
import unittest
from pathlib import Path

import harness
from harness import Assertions, GitDaemon, SmartHttp, Workspace

TOKEN = "tok-push-secret-5f2a9c"
WRONG = "tok-wrong-secret-81be07"


def setUpModule():
    harness.setup_module()


def tearDownModule():
    harness.teardown_module()


def remote_refs(repo: Path) -> dict:
    return harness.ref_map(repo)


class RestorePush(Assertions, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = harness.mkdtemp("restore-push-")
        up_root = cls.root / "up"
        up_root.mkdir()
        cls.app = harness.new_upstream(up_root, "app")
        cls.app.git("checkout", "-q", "-b", "main")
        cls.app.commit_file("README", "first\n")
        cls.app.git("tag", "-a", "-m", "release one", "v1")
        cls.app.push("main", "v1")
        cls.app.set_head("refs/heads/main")
        cls.lib = harness.new_upstream(up_root, "lib")
        cls.lib.git("checkout", "-q", "-b", "trunk")
        cls.lib.commit_file("lib.c", "int x;\n")
        cls.lib.push("trunk")
        cls.lib.set_head("refs/heads/trunk")
        cls.daemon = GitDaemon(up_root)
        cls.ws = Workspace("restore-push-ws-")

        def snap(names, now):
            repos = [{"url": cls.daemon.url_for(f"{n}.git"), "name": f"org/{n}"} for n in names]
            return cls.ws.snapshot(repos, env_extra={"SNAPSHOTTER_TEST_NOW": now})

        # org/app at 2026-11-20 (state A) and 2026-11-25 (state B); org/lib at 2026-11-25.
        first = snap(["app"], "2026-11-20T00:00:00Z")
        assert first.rc == 0, first.describe()
        cls.state_a = cls.app.ref_map()
        cls.app.commit_file("README", "second\n")
        cls.app.git("branch", "feature")
        cls.app.push("main", "feature")
        second = snap(["app", "lib"], "2026-11-25T00:00:00Z")
        assert second.rc == 0, second.describe()
        # team/lib: the lib upstream under a second name, for a symbolic link in the tree.
        alias = cls.ws.snapshot([{"url": cls.daemon.url_for("lib.git"), "name": "team/lib"}],
                                env_extra={"SNAPSHOTTER_TEST_NOW": "2026-11-25T00:00:00Z"})
        assert alias.rc == 0, alias.describe()
        cls.state_b = cls.app.ref_map()
        cls.lib_only = cls.lib.ref_map()  # org/lib has one snapshot, at 2026-11-25

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()

    def payload(self, restore: dict, options: dict | None = None) -> dict:
        p = {"version": 1, "action": "restore", "storage": self.ws.storage(), "restore": restore}
        if options:
            p["options"] = options
        return p

    def run_restore(self, restore: dict, options: dict | None = None, env: dict | None = None, args=()):
        return self.ws.run(self.payload(restore, options), env_extra=env, args=args)

    def bare_remote(self, root: Path, name: str = "app.git") -> Path:
        path = root / name
        harness.git("init", "-q", "--bare", str(path))
        return path

    def assertNoSecret(self, run, *secrets):
        text = run.stdout + run.stderr
        for s in secrets:
            self.assertNotIn(s.encode(), text, run.describe())

    # --------------------------------------------------------------- push_to
    def test_push_to_empty_http_remote_then_refuse_then_force(self):
        push_root = harness.mkdtemp("push-http-")
        remote = self.bare_remote(push_root)
        with SmartHttp(push_root, {"pusher": TOKEN}) as http:
            push_to = {"url": http.url_for("app.git"),
                       "credentials": {"token_env": "NEW_TOKEN", "username": "pusher"}}
            env = {"NEW_TOKEN": TOKEN}
            opts = {"allow_http": True}

            # An empty remote ends with exactly the snapshot's refs.
            run = self.run_restore({"repository": "org/app", "push_to": push_to}, opts, env)
            result = self.assertRunOk(run)
            self.assertEqual(remote_refs(remote), self.state_b)
            self.assertEqual(result["pushed_refs"], len(self.state_b))
            self.assertEqual(result["deleted_on_remote"], 0)
            self.assertEqual(result["head"], "refs/heads/main")
            self.assertIn("remote_head", result)
            self.assertNotIn("target", result)
            self.assertNoSecret(run, TOKEN)

            # Now it is not empty: refused, and nothing on it changes.
            harness.git("update-ref", "refs/heads/extra", self.state_b["refs/heads/main"]["oid"], git_dir=remote)
            before = harness.tree_state(remote)
            refused = self.run_restore({"repository": "org/app", "as_of": "2026-11-21T00:00:00Z",
                                        "push_to": push_to}, opts, env)
            out = self.assertRunFails(refused, 1, "Conflict")
            self.assertIn("is not empty", out["message"])
            self.assertIn("force", out["message"])
            self.assertTreeUnchanged(before, harness.tree_state(remote), "the refused remote")

            # With force, the older snapshot's refs exactly: feature and extra are deleted.
            forced = self.run_restore({"repository": "org/app", "as_of": "2026-11-21T00:00:00Z",
                                       "push_to": dict(push_to, force=True)}, opts, env)
            result = self.assertRunOk(forced)
            self.assertEqual(remote_refs(remote), self.state_a)
            self.assertEqual(result["deleted_on_remote"], 2)
            self.assertEqual(harness.fsck(remote).returncode, 0)

            # A wrong token: a clear error, and no token anywhere in the output.
            wrong = self.run_restore({"repository": "org/app", "push_to": dict(push_to, force=True)}, opts,
                                     {"NEW_TOKEN": WRONG})
            out = self.assertRunFails(wrong, 1, "GitError")
            self.assertIn("ls-remote", out["message"])
            self.assertNoSecret(wrong, WRONG, TOKEN)
            self.assertEqual(remote_refs(remote), self.state_a)

    def test_push_to_git_daemon_with_a_target_too(self):
        push_root = harness.mkdtemp("push-daemon-")
        remote = self.bare_remote(push_root)
        target = self.ws.new_target("kept.git")
        with GitDaemon(push_root) as daemon:
            run = self.run_restore({"repository": "org/app", "target": str(target),
                                    "push_to": {"url": daemon.url_for("app.git")}})
            result = self.assertRunOk(run)
        self.assertEqual(remote_refs(remote), self.state_b)
        self.assertEqual(harness.ref_map(target), self.state_b)
        self.assertEqual(result["target"], str(target))
        self.assertTrue(result["pushed_to"].startswith("git://127.0.0.1:"))

    # ------------------------------------------------------ several, as_of
    def test_several_repositories_as_of_into_a_tree(self):
        tree = harness.mkdtemp("tree-") / "restore"
        run = self.run_restore({"repositories": ["org/app", "org/lib"], "as_of": "2026-11-23T00:00:00Z",
                                "target_dir": str(tree)})
        # org/lib has nothing at or before 11-23: its own NotFound naming the earliest; app still restored.
        out = self.assertRunFails(run, 2, "PartialFailure")
        entries = {e["repository"]: e for e in out["result"]["restored"]}
        self.assertEqual(entries["org/app"]["status"], "ok", entries)
        self.assertTrue(entries["org/app"]["snapshot_id"].startswith("20261120T"))
        self.assertEqual(harness.ref_map(tree / "org" / "app.git"), self.state_a)
        self.assertEqual(entries["org/lib"]["status"], "failed")
        self.assertEqual(entries["org/lib"]["error"], "NotFound")
        self.assertIn("no snapshot at or before 2026-11-23T00:00:00Z (the earliest is 20261125T",
                      entries["org/lib"]["message"])
        self.assertIn("2026-11-25T00:00:00Z", entries["org/lib"]["message"])
        self.assertFalse((tree / "org" / "lib.git").exists())
        self.assertEqual(out["result"]["summary"], {"total": 2, "ok": 1, "failed": 1})

        # "all" after both exist, through the subcommand's flags.
        tree2 = harness.mkdtemp("tree-") / "all"
        run = self.ws.run(None, args=["restore", "--storage", self.ws.storage_url, "--all",
                                      "--as-of", "2026-11-26T00:00:00Z", "--target-dir", str(tree2),
                                      "--output", "json"])
        result = self.assertRunOk(run)
        self.assertEqual([e["repository"] for e in result["restored"]], ["org/app", "org/lib", "team/lib"])
        self.assertEqual(harness.ref_map(tree2 / "org" / "app.git"), self.state_b)
        self.assertEqual(harness.ref_map(tree2 / "org" / "lib.git"), self.lib_only)
        self.assertEqual(harness.fsck(tree2 / "org" / "lib.git").returncode, 0)

    def test_existing_target_symlink_and_unknown_name(self):
        tree = harness.mkdtemp("tree-")
        # org/app's target exists and is not empty: refused, left as it was.
        (tree / "org" / "app.git").mkdir(parents=True)
        (tree / "org" / "app.git" / "mine").write_text("keep me\n")
        # team/*: a symbolic link to somewhere else is never followed.
        outside = harness.mkdtemp("outside-")
        (tree / "team").symlink_to(outside)
        before = harness.tree_state(tree / "org" / "app.git")
        run = self.run_restore({"repositories": ["org/app", "org/lbi", "org/lib", "team/lib"],
                                "target_dir": str(tree)})
        out = self.assertRunFails(run, 2, "PartialFailure")
        entries = {e["repository"]: e for e in out["result"]["restored"]}
        self.assertEqual(entries["org/app"]["error"], "Conflict", entries)
        self.assertIn("exists and is not an empty directory", entries["org/app"]["message"])
        self.assertTreeUnchanged(before, harness.tree_state(tree / "org" / "app.git"), "an existing target")
        self.assertEqual(entries["org/lbi"]["message"], 'unknown repository "org/lbi" (did you mean "org/lib"?)')
        self.assertEqual(entries["org/lib"]["status"], "ok")
        self.assertEqual(entries["team/lib"]["status"], "failed")
        self.assertIn("symbolic link", entries["team/lib"]["message"])
        self.assertEqual(list(outside.iterdir()), [])

    def test_single_repository_as_of_keeps_the_result_fields(self):
        target = self.ws.new_target("app.git")
        result = self.assertRunOk(self.run_restore({"repository": "org/app", "as_of": "2026-11-24T23:59:59+01:00",
                                                    "target": str(target)}))
        self.assertEqual(set(result), {"action", "repository", "snapshot_id", "target", "refs", "preserved", "head"})
        self.assertTrue(result["snapshot_id"].startswith("20261120T"), result)
        self.assertEqual(harness.ref_map(target), self.state_a)
        # Before the first snapshot: NotFound naming the earliest.
        out = self.assertRunFails(self.run_restore({"repository": "org/app", "as_of": "2026-01-01T00:00:00Z",
                                                    "target": str(self.ws.new_target())}), 1, "NotFound")
        self.assertRegex(out["message"], r"^org/app: no snapshot at or before 2026-01-01T00:00:00Z \(the earliest is "
                                         r"20261120T000000\.000Z-\w+ at 2026-11-20T00:00:00Z\)$")

    def test_unknown_single_repository_and_print_payload(self):
        run = self.run_restore({"repository": "org/ap", "target": str(self.ws.new_target())})
        out = self.assertRunFails(run, 1, "NotFound")
        self.assertEqual(out["message"], 'unknown repository "org/ap" (did you mean "org/app"?)')
        shown = self.ws.run(None, args=["restore", "--storage", self.ws.storage_url, "--repo", "org/app",
                                        "--push-to", "https://git.example/org/app.git", "--token-env",
                                        "NEW_TOKEN", "--force", "--print-payload"],
                          env_extra={"NEW_TOKEN": TOKEN}, check_output=False)
        self.assertEqual(shown.rc, 0, shown.describe())
        payload = json.loads(shown.stdout)
        self.assertEqual(payload["restore"], {"repository": "org/app", "push_to": {
            "url": "https://git.example/org/app.git", "credentials": {"token_env": "NEW_TOKEN"}, "force": True}})


if __name__ == "__main__":
    unittest.main()
