"""A memory budget no server can break (issue 14, item 2).

One snapshot job with the stream engine against hostile_http.HostileGitServer,
one repository per hostile shape (ls-refs lines without a space, empty
packets, an endless acknowledgments section, endless response headers, an
endless v0 advertisement), each offered for 256 MiB, plus one healthy
repository served by git daemon. The peak resident set of the snapshotter
process (VmHWM, sampled from /proc while it runs, and ru_maxrss of the whole
process tree once it is reaped) stays under 64 MiB; every hostile repository
fails alone with a GitError naming the bound it broke; the healthy one is
committed.
"""

import resource
import threading
import time
import unittest

import harness
import hostile_http

SERVE = None
DAEMON = None
HEALTHY = None
LIMIT_BYTES = 64 << 20
OFFERED = 256 << 20


def setUpModule():
    global SERVE, DAEMON, HEALTHY
    harness.setup_module()
    SERVE = harness.mkdtemp("serve-")
    HEALTHY = harness.build_rich(SERVE, "healthy")
    DAEMON = harness.GitDaemon(SERVE)


def tearDownModule():
    harness.teardown_module()


class PeakRss:
    """Samples VmHWM of a process every few milliseconds until it exits."""

    def __init__(self) -> None:
        self.peak_kib = 0
        self.samples = 0

    def start(self, proc) -> None:
        def sample():
            path = f"/proc/{proc.pid}/status"
            while proc.poll() is None:
                try:
                    with open(path) as f:
                        for line in f:
                            if line.startswith("VmHWM:"):
                                self.peak_kib = max(self.peak_kib, int(line.split()[1]))
                                self.samples += 1
                except (OSError, ValueError):
                    return
                time.sleep(0.005)

        threading.Thread(target=sample, daemon=True).start()


class HostileMemory(harness.Assertions, unittest.TestCase):
    def test_hostile_shapes_stay_within_the_budget_and_the_healthy_repository_succeeds(self):
        expected = {
            "ls-refs-nospace": "ls-refs line",
            "ls-refs-empty": "bad ls-refs line",
            "acks": "before the packfile section",
            "header": "response headers larger than",
            "v0": "does not speak git protocol v2",
        }
        with hostile_http.HostileGitServer(budget=OFFERED) as server:
            ws = harness.Workspace()
            repos = [{"url": server.url_for(shape), "name": f"hostile-{shape}"} for shape in expected]
            repos.append({"url": DAEMON.url_for("healthy.git"), "name": "healthy"})
            peak = PeakRss()
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            start = time.monotonic()
            run = ws.run(ws.snapshot_payload(repos, {"allow_http": True, "engine": "stream", "retries": 0}),
                         on_start=peak.start)
            seconds = time.monotonic() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            sent = dict(server.sent)

        out = self.assertRunFails(run, 2, "PartialFailure")
        entries = {e["name"]: e for e in out["result"]["repositories"]}
        self.assertEqual(entries["healthy"]["status"], "ok", entries["healthy"])
        for shape, phrase in expected.items():
            entry = entries[f"hostile-{shape}"]
            self.assertEqual((entry["status"], entry["error"]), ("failed", "GitError"), entry)
            self.assertIn(phrase, entry["message"], entry)
        self.assertGreater(peak.samples, 0)
        self.assertLess(peak.peak_kib * 1024, LIMIT_BYTES,
                        f"VmHWM {peak.peak_kib} KiB; server sent {sent}\n{run.describe()}")
        # ru_maxrss (KiB) of the largest reaped descendant: the snapshotter or one of its git children;
        # it only tells something when no earlier child of this test process was larger.
        if after > before:
            self.assertLess(after * 1024, LIMIT_BYTES, f"ru_maxrss {after} KiB; server sent {sent}")
        # Every shape was on offer for 256 MiB; the client hung up long before.
        for shape in expected:
            self.assertLess(sent.get(shape, 0), OFFERED, f"{shape}: the client read the whole offer: {sent}")
        print(f"\n  peak VmHWM {peak.peak_kib} KiB, {seconds:.1f} s, bytes sent per shape {sent}")


if __name__ == "__main__":
    unittest.main()
