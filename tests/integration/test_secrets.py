"""Credentials over smart HTTP with basic auth: errors and leaks.

A wrong token gives GitError (exit 1, every repository failed); a right
token works. In both cases, at the most verbose log level, the token (raw,
URL-encoded, or inside a basic-auth header) appears in no byte of stdout,
stderr, the storage tree, the cache tree, HOME or TMPDIR.
"""

import os
import sys
import threading
import time
import unittest

import harness

USER = "alice"
RIGHT_TOKEN = "tok-SECRET-right-1a2b3c4d5e6f"
WRONG_TOKEN = "tok-SECRET-9f8e7d6c5b4a"
TOKEN_ENV = "SNAP_ITEST_TOKEN"

HTTP = None
UPSTREAM = None


def setUpModule():
    global HTTP, UPSTREAM
    harness.setup_module()
    serve = harness.mkdtemp("serve-")
    UPSTREAM = harness.build_rich(serve, "secret")
    HTTP = harness.SmartHttp(serve, {USER: RIGHT_TOKEN})


def tearDownModule():
    harness.teardown_module()


class Secrets(harness.Assertions, unittest.TestCase):
    def run_with_token(self, token: str, ws: harness.Workspace | None = None) -> tuple:
        ws = ws or harness.Workspace()
        repo = {"url": HTTP.url_for("secret.git"), "name": "org/secret",
                "credentials": {"token_env": TOKEN_ENV, "username": USER}}
        run = ws.snapshot([repo], {"allow_http": True}, args=["--log-level", "trace"],
                          env_extra={TOKEN_ENV: token})
        return ws, run

    def assertNoLeak(self, ws: harness.Workspace, run: harness.Run, token: str) -> None:
        needles = harness.secret_forms(token, [USER])
        for stream, data in (("stdout", run.stdout), ("stderr", run.stderr)):
            hits = [n for n in needles if n in data]
            self.assertEqual(hits, [], f"token leaked to {stream}")
        for what, root in (("storage", ws.storage_dir), ("cache_dir", ws.cache_dir),
                           ("HOME", ws.home), ("TMPDIR", ws.tmp)):
            self.assertEqual(harness.find_bytes_in_tree(root, needles), [], f"token leaked into {what}")

    def test_wrong_token_is_git_error_and_does_not_leak(self):
        ws, run = self.run_with_token(WRONG_TOKEN)
        out = self.assertRunFails(run, 1, "GitError", "a wrong token")
        self.assertIsInstance(out.get("result"), dict, f"all repositories failed: result must be present\n{run.describe()}")
        repos = out["result"].get("repositories")
        self.assertEqual(len(repos), 1, run.describe())
        self.assertEqual((repos[0].get("name"), repos[0].get("status"), repos[0].get("error")),
                         ("org/secret", "failed", "GitError"), run.describe())
        self.assertEqual(harness.snapshot_summary(out["result"]), {"total": 1, "ok": 0, "unchanged": 0, "failed": 1})
        self.assertNoLeak(ws, run, WRONG_TOKEN)
        # Nothing committed for the failed repository.
        self.assertFalse(ws.path_of(harness.latest_key("org/secret")).exists())

    def test_right_token_works_and_does_not_leak(self):
        ws, run = self.run_with_token(RIGHT_TOKEN)
        result = self.assertRunOk(run, "the right token")
        r = result["repositories"][0]
        self.assertEqual((r.get("status"), r.get("kind"), r.get("refs")), ("ok", "full", len(UPSTREAM.ref_map())), r)
        self.assertNoLeak(ws, run, RIGHT_TOKEN)
        # A second (unchanged) run reuses the cache; still nothing leaks anywhere.
        _, run2 = self.run_with_token(RIGHT_TOKEN, ws)
        self.assertRunOk(run2, "second run with the right token")
        self.assertNoLeak(ws, run2, RIGHT_TOKEN)
        # The snapshot is usable without any credentials.
        target = ws.new_target()
        self.assertRunOk(ws.restore("org/secret", target))
        self.assertRepoEquals(target, UPSTREAM, "restore of the authenticated snapshot")

    def test_token_never_on_a_command_line(self):
        # Sample every process's argv while a snapshot with a fresh cache runs
        # (fetch included); the token must reach git some other way.
        needles = harness.secret_forms(RIGHT_TOKEN, [USER])
        box = {}
        worker = threading.Thread(target=lambda: box.setdefault("run", self.run_with_token(RIGHT_TOKEN)))
        worker.start()
        leaks, seen_git = set(), 0
        while worker.is_alive():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        argv = f.read()
                except OSError:
                    continue
                if b"git" in argv and str(HTTP.port).encode() in argv:
                    seen_git += 1
                if any(n in argv for n in needles):
                    leaks.add(argv.replace(b"\0", b" ").decode(errors="replace"))
            time.sleep(0.002)
        worker.join()
        _, run = box["run"]
        self.assertRunOk(run)
        self.assertEqual(leaks, set(), "the token appeared on a command line")
        if not seen_git:
            print(f"\nnote: no git process against port {HTTP.port} was sampled", file=sys.stderr)

    def test_token_never_in_the_manifest_source_url(self):
        ws, run = self.run_with_token(RIGHT_TOKEN)
        sid = self.assertRunOk(run)["repositories"][0]["snapshot_id"]
        self.assertEqual(ws.manifest("org/secret", sid).get("source_url"), HTTP.url_for("secret.git"))


if __name__ == "__main__":
    unittest.main()
