"""The command line for people: subcommands that build the payload, help with
examples, suggestions for typos, tables on a terminal, and a progress line that
log lines never land on (checked in a real terminal: tmux).

The JSON contract for programs is checked byte for byte against the previous
binary by tests/tools/json_contract_diff.py; here the JSON of a subcommand is
checked to be the JSON of the same job given as a payload.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import unittest
from pathlib import Path

import harness


def setUpModule():
    harness.setup_module()


def tearDownModule():
    harness.teardown_module()


class Cli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = harness.mkdtemp("people-")
        cls.app = harness.build_rich(cls.root / "up", "app")
        cls.lib = harness.build_rich(cls.root / "up", "lib")
        cls.storage = cls.root / "store"
        cls.home = cls.root / "home"
        cls.home.mkdir()
        first = cls.cli("snapshot", "--storage", str(cls.storage), "--repo", f"org/app={cls.app.bare}",
                        "--repo", f"org/lib={cls.lib.bare}")
        assert first.rc == 0, first.describe()

    @classmethod
    def cli(cls, *args: str, check_output: bool = True, env_extra: dict | None = None) -> harness.Run:
        env = harness.snapshotter_env(home=cls.home, extra=env_extra)
        return harness.run_snapshotter(None, args=list(args), env=env, check_output=check_output)

    def test_print_payload_is_the_job_the_flags_build(self):
        run = self.cli("snapshot", "--storage", str(self.storage), "--repo", f"org/app={self.app.bare}",
                       "--ref", "refs/heads/*", "--concurrency", "2", "--print-payload", check_output=False)
        self.assertEqual(run.rc, 0, run.describe())
        payload = json.loads(run.stdout)
        self.assertEqual(payload, {"version": 1, "action": "snapshot", "storage": {"url": str(self.storage)},
                                   "repositories": [{"url": str(self.app.bare), "name": "org/app",
                                                     "refs": ["refs/heads/*"]}],
                                   "options": {"concurrency": 2}})
        self.assertNotIn("job_id", payload, "a job_id in a job file makes every rerun skip everything")
        self.assertEqual(list(self.storage.glob("jobs/*")), list(self.storage.glob("jobs/*")))

    def test_subcommand_json_equals_the_payload_json(self):
        by_flags = self.cli("list", "--storage", str(self.storage), "--repo", "org/app")
        by_payload = harness.run_snapshotter(
            {"version": 1, "action": "list", "storage": {"url": str(self.storage)},
             "list": {"repository": "org/app"}}, env=harness.snapshotter_env(home=self.home))
        self.assertEqual(by_flags.rc, 0, by_flags.describe())
        self.assertEqual(by_flags.stdout, by_payload.stdout)

    def test_table_for_every_action_when_asked(self):
        s = str(self.storage)
        target = self.root / "restored" / "app.git"
        cases = [
            (["list", "--storage", s], ["org/lib: 1 snapshot\n", "CREATED (UTC)"]),
            (["verify", "--storage", s], ["REPOSITORY", "2 snapshots checked: 2 ok, 0 failed"]),
            (["prune", "--storage", s, "--keep-last", "1", "--dry-run"],
             ["org/lib: keep 1 of 1 snapshots, would free 0 B", "dry run, 2 repositories"]),
            (["gc", "--storage", s, "--dry-run"], ["would remove 0 leftovers (0 B)"]),
            (["restore", "--storage", s, "--repo", "org/lib", "--target", str(target)],
             ["org/lib", str(target)]),
            (["snapshot", "--storage", s, "--repo", f"org/app={self.app.bare}"],
             ["REPOSITORY", "org/app", "unchanged", "1 repositories: 0 ok, 1 unchanged"]),
        ]
        for args, expected in cases:
            with self.subTest(args[0]):
                run = self.cli(*args, "--output", "table", check_output=False)
                self.assertEqual(run.rc, 0, run.describe())
                text = run.stdout.decode()
                for piece in expected:
                    self.assertIn(piece, text, run.describe())
                self.assertNotIn('{"ok"', text)
        self.assertEqual(harness.ref_map(target), self.lib.ref_map())

    def test_unknown_action_and_flag_suggest_the_nearest(self):
        run = self.cli("lsit", "--storage", str(self.storage))
        self.assertEqual((run.rc, run.out["error"]), (1, "UsageError"), run.describe())
        self.assertIn('(lsit: did you mean "list"?)', run.out["message"])
        run = self.cli("lsit")
        self.assertEqual(run.out["message"], 'The following argument was not expected: lsit (did you mean "list"?)')
        run = self.cli("list", "--stroage", str(self.storage))
        self.assertEqual((run.rc, run.out["error"]), (1, "UsageError"), run.describe())
        self.assertIn('--stroage: did you mean "--storage"?', run.out["message"])
        run = self.cli("help", "restroe")
        self.assertIn('unknown action "restroe" (did you mean "restore"?)', run.out["message"])

    def test_help_prints_once_with_actions_and_examples(self):
        run = self.cli("--help", check_output=False)
        self.assertEqual(run.rc, 0)
        self.assertEqual(run.stderr, b"", "help is printed once, on stdout")
        text = run.stdout.decode()
        for action in ("snapshot", "restore", "verify", "list", "prune", "gc", "merge-reports"):
            self.assertRegex(text, rf"\n  {action}[ ,]", action)
        self.assertEqual(text.count("Examples:"), 1, text)
        self.assertIn("snapshotter list --storage", text)
        run = self.cli("help", "prune", check_output=False)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertIn("--keep-daily", run.stdout.decode())
        self.assertIn("snapshotter prune --storage /backups --keep-daily 7", run.stdout.decode())
        self.assertEqual(self.cli("restore", "--help", check_output=False).stdout,
                         self.cli("help", "restore", check_output=False).stdout)

    def test_missing_flags_and_mismatched_job_file(self):
        run = self.cli("restore", "--storage", str(self.storage), "--repo", "org/app")
        self.assertEqual((run.rc, run.out["error"]), (1, "UsageError"), run.describe())
        self.assertIn("--target", run.out["message"])
        run = self.cli("list")
        self.assertIn("--storage URL is required", run.out["message"])
        job = self.root / "verify.json"
        job.write_text(json.dumps({"version": 1, "action": "verify", "storage": {"url": str(self.storage)}}))
        run = self.cli("list", "--job-file", str(job))
        self.assertEqual((run.rc, run.out["error"]), (1, "UsageError"), run.describe())
        self.assertIn('the payload\'s action is "verify", not "list"', run.out["message"])
        run = self.cli("verify", "--job-file", str(job))
        self.assertEqual(run.rc, 0, run.describe())

    def test_reading_a_storage_that_does_not_exist_is_not_found(self):
        missing = self.root / "no-such-store"
        for args in (["list"], ["verify"], ["prune", "--keep-last", "1"]):
            with self.subTest(args[0]):
                run = self.cli(*args, "--storage", f"file://{missing}")
                self.assertEqual((run.rc, run.out["error"]), (1, "NotFound"), run.describe())
                self.assertEqual(run.out["message"], f"storage file://{missing} does not exist")
        self.assertFalse(missing.exists())

    def test_log_level_takes_the_names_logs_print(self):
        run = self.cli("list", "--storage", str(self.storage), "--log-level", "warning")
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(run.stderr, b"", "nothing at warning level or above")

    def test_no_progress_and_emf_metrics_when_stderr_is_not_a_terminal(self):
        run = self.cli("snapshot", "--storage", str(self.storage), "--repo", f"org/app={self.app.bare}")
        self.assertEqual(run.rc, 0, run.describe())
        self.assertNotIn(b"\r", run.stderr)
        self.assertNotIn(b"repositories  ", run.stderr)
        self.assertIn(b'"CloudWatchMetrics"', run.stderr)
        run = self.cli("snapshot", "--storage", str(self.storage), "--repo", f"org/app={self.app.bare}",
                       "--metrics", "off")
        self.assertNotIn(b'"CloudWatchMetrics"', run.stderr)


@unittest.skipUnless(shutil.which("tmux"), "tmux is not installed (scripts/install-deps.sh --test)")
class Terminal(unittest.TestCase):
    """The binary in a real 120x40 terminal (tmux); the raw bytes written to
    the pane are recorded with pipe-pane."""

    def setUp(self):
        self.root = harness.mkdtemp("tty-")
        self.socket = str(self.root / "tmux.sock")
        self.repos = [harness.build_rich(self.root / "up", f"r{i}") for i in range(3)]
        self.storage = self.root / "store"
        self.addCleanup(self.kill_server)

    def kill_server(self):
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise AssertionError(f"tmux {args[0]} exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def in_terminal(self, *args: str, timeout_s: float = 60.0) -> tuple[str, bytes, int]:
        """Run snapshotter ARGS in a terminal; the screen at the end, the raw bytes and the exit code."""
        # A new server (socket) for each run: a killed server may still hold its socket for a
        # moment, and a new-session that reaches it fails with "server exited unexpectedly".
        self.socket = str(self.root / f"tmux-{time.monotonic_ns()}.sock")
        raw = self.root / f"raw-{time.monotonic_ns()}"
        done = self.root / f"rc-{time.monotonic_ns()}"
        env = harness.snapshotter_env(home=self.root)
        script = self.root / "run.sh"
        command = " ".join(_quote(a) for a in [harness.snapshotter_bin(), *args])
        script.write_text(f"{command}\necho $? > {done}.tmp && mv {done}.tmp {done}\nsleep 600\n")
        self.tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", "t",
                  *[f"-e{k}={v}" for k, v in env.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")],
                  "sh -c 'sleep 0.5; exec sh " + str(script) + "'")
        self.tmux("pipe-pane", "-t", "t", "-o", f"cat >> {raw}")
        deadline = time.monotonic() + timeout_s
        while not done.exists():
            self.assertLess(time.monotonic(), deadline, "the run did not finish")
            time.sleep(0.1)
        time.sleep(0.3)  # pipe-pane catches up
        screen = self.tmux("capture-pane", "-p", "-t", "t", "-S", "-2000")
        self.kill_server()
        return screen, raw.read_bytes() if raw.exists() else b"", int(done.read_text())

    def test_progress_line_is_cleared_before_log_lines_and_results_are_tables(self):
        args = ["snapshot", "--storage", str(self.storage), "--concurrency", "1"]
        for i, r in enumerate(self.repos):
            args += ["--repo", f"org/r{i}={r.bare}"]
        screen, raw, rc = self.in_terminal(*args)
        self.assertEqual(rc, 0, screen)
        # The progress line was drawn...
        self.assertRegex(raw, rb"snapshot  \d/3 repositories", raw[-3000:])
        # ...and erased before every log line: none starts glued to it.
        lines = [line for line in screen.splitlines() if line.strip()]
        log_lines = [line for line in lines if re.search(r"\d\d:\d\d:\d\d (info|warning|error)", line)]
        self.assertGreaterEqual(len(log_lines), 3, screen)
        for line in log_lines:
            self.assertRegex(line, r"^\d\d:\d\d:\d\d ", f"a log line shares its line: {line!r}\n{screen}")
        self.assertNotIn("repositories  ", screen, "the progress line is gone at the end")
        self.assertNotIn("CloudWatchMetrics", screen, "EMF lines are for log collectors, not terminals")
        self.assertNotIn('{"ok"', screen)
        self.assertIn("REPOSITORY", screen)
        self.assertIn("3 repositories: 3 ok", screen)
        # verify on a terminal: its own progress line, then its table.
        screen, raw, rc = self.in_terminal("verify", "--storage", str(self.storage), "--drill")
        self.assertEqual(rc, 0, screen)
        self.assertRegex(raw, rb"verify  \d/3 repositories")
        self.assertIn("3 snapshots checked: 3 ok, 0 failed", screen)
        self.assertNotIn("repositories  ", screen)
        # Just `snapshotter` at a terminal: the help, not a JSON error.
        screen, raw, rc = self.in_terminal()
        self.assertEqual(rc, 0, screen)
        self.assertIn("Usage: snapshotter [OPTIONS] [SUBCOMMAND]", screen)
        self.assertNotIn("PayloadError", screen)


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


if __name__ == "__main__":
    unittest.main()
