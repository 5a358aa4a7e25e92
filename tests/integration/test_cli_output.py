"""The shape of stdout and stderr (contract: "stdout: exactly ONE line of
minified JSON"; "stderr: logs; JSON lines ({"ts","level","msg"}) when stderr is
not a terminal"; --log-level trace|debug|info|warn|error|off).

run_snapshotter() already asserts the stdout shape on every run of the suite;
this module checks stderr, which is a pipe here, never a terminal.
"""

import unittest

import harness

UPSTREAM = None


def setUpModule():
    global UPSTREAM
    harness.setup_module()
    UPSTREAM = harness.build_unicode(harness.mkdtemp("up-"), "cli")


def tearDownModule():
    harness.teardown_module()


class CliOutput(harness.Assertions, unittest.TestCase):
    def setUp(self):
        self.ws = harness.Workspace()
        self.repo = {"url": str(UPSTREAM.bare), "name": "org/cli"}

    def test_snapshot_stderr_is_json_log_lines(self):
        run = self.ws.snapshot([self.repo], args=["--log-level", "debug"])
        self.assertRunOk(run)
        self.assertTrue(run.stderr.strip(), "debug level logs something")
        self.assertStderrJsonLines(run)

    def test_failed_snapshot_stderr_is_json_log_lines(self):
        bad = {"url": f"git://127.0.0.1:{harness.free_port()}/nothing.git", "name": "org/bad"}
        run = self.ws.snapshot([bad])
        self.assertRunFails(run, 1, "GitError")
        self.assertStderrJsonLines(run)

    def test_restore_and_verify_stderr_are_json_log_lines(self):
        self.assertRunOk(self.ws.snapshot([self.repo]))
        run = self.ws.verify(drill=True)
        self.assertRunOk(run)
        self.assertStderrJsonLines(run)
        run = self.ws.restore("org/cli", self.ws.new_target())
        self.assertRunOk(run)
        self.assertStderrJsonLines(run)

    def test_log_level_off_writes_nothing_to_stderr(self):
        run = self.ws.snapshot([self.repo], args=["--log-level", "off"])
        self.assertRunOk(run)
        self.assertEqual(run.stderr, b"", "--log-level off must leave stderr empty")

    def test_payload_error_log_level_off(self):
        run = self.ws.run("not json", args=["--log-level", "off"])
        self.assertRunFails(run, 1, "PayloadError")
        self.assertEqual(run.stderr, b"")


if __name__ == "__main__":
    unittest.main()
