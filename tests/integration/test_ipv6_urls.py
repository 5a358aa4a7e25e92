"""IPv6 literals with a port (issue 14, item 7): git://[::1]:PORT/x.

git daemon listens on the IPv6 loopback only; both engines snapshot a
repository through a URL naming it as `[::1]:PORT`, and the snapshot restores
to the upstream's refs. Skipped cleanly when the machine has no IPv6
loopback.
"""

import socket
import subprocess
import time
import unittest

import harness

SERVE = None
UPSTREAM = None
DAEMON = None
PORT = 0


def ipv6_loopback_port() -> int:
    """A free port on ::1, or raise unittest.SkipTest when there is no IPv6 loopback."""
    if not socket.has_ipv6:
        raise unittest.SkipTest("Python was built without IPv6")
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
            return s.getsockname()[1]
    except OSError as e:
        raise unittest.SkipTest(f"no IPv6 loopback on this machine: {e}")


def setUpModule():
    global SERVE, UPSTREAM, DAEMON, PORT
    harness.setup_module()
    PORT = ipv6_loopback_port()
    SERVE = harness.mkdtemp("serve-")
    UPSTREAM = harness.build_rich(SERVE, "rich")
    log = open(harness.mkdtemp("git-daemon6-") / "daemon.log", "wb")
    DAEMON = subprocess.Popen(
        ["git", "daemon", "--listen=::1", f"--port={PORT}", f"--base-path={SERVE}", "--export-all",
         "--reuseaddr", "--informative-errors", str(SERVE)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=harness.git_env(),
        start_new_session=True)
    log.close()
    harness._register(DAEMON)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("::1", PORT), timeout=0.5):
                break
        except OSError:
            if DAEMON.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("git daemon did not listen on [::1]")
            time.sleep(0.02)


def tearDownModule():
    harness.teardown_module()


class Ipv6Urls(harness.Assertions, unittest.TestCase):
    def test_git_daemon_on_the_ipv6_loopback(self):
        for engine in ("stream", "cli"):
            with self.subTest(engine=engine):
                ws = harness.Workspace()
                url = f"git://[::1]:{PORT}/rich.git"
                result = self.assertRunOk(ws.snapshot([{"url": url, "name": "rich"}], {"engine": engine}))
                entry = result["repositories"][0]
                self.assertEqual(entry["status"], "ok", entry)
                target = ws.new_target()
                self.assertRunOk(ws.restore("rich", target))
                self.assertRepoEquals(target, UPSTREAM)


if __name__ == "__main__":
    unittest.main()
