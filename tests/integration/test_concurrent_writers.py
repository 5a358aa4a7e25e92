"""Concurrent writers (issue 6, item 3): several snapshot jobs on the same
repository and the same storage at the same moment, round after round with
pushes (and a force-push) in between, on file:// and on s3:// (moto).

Afterwards: every job succeeded; no manifest was ever overwritten (the bytes
of every manifest are recorded after each round and compared later); every
manifest's chain is intact (crashcheck.check_committed: bundles exist with
their size and SHA-256, parents exist); `latest.json` names the newest
manifest (the pointer only moves forward, whatever order the jobs finish
in); and every manifest restores with refs and HEAD equal to it and passes
`git fsck`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unittest

import crashcheck
import harness
from harness import Assertions, GitDaemon, Workspace

ROUNDS = 4
WRITERS = 3


def setUpModule():
    harness.setup_module()


def tearDownModule():
    harness.teardown_module()


class ConcurrentBase(Assertions):
    storage_kind = "file"

    def setUp(self):
        root = harness.mkdtemp("cw-up-")
        self.up = harness.build_rich(root, "app")
        self.daemon = GitDaemon(root)
        self.addCleanup(self.daemon.stop)
        self.ws = Workspace("cw-", storage=self.storage_kind)
        self.repo = {"url": self.daemon.url_for("app.git"), "name": "org/app"}

    def start(self, job_id: str, writer: int) -> subprocess.Popen:
        # Each writer its own cache (no mirror lock serialises them); engines alternate.
        options = {"engine": "stream" if writer % 2 == 0 else "cli",
                   "cache_dir": str(self.ws.root / f"cache-{writer}"), "retries": 0}
        payload = self.ws.snapshot_payload([self.repo], options, job_id=job_id)
        env = self.ws.env({"SNAPSHOTTER_JOB_JSON": json.dumps(payload)})
        proc = subprocess.Popen([harness.snapshotter_bin()], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        harness._register(proc)
        return proc

    def change_upstream(self, round_: int) -> None:
        if round_ == 2:
            self.up.git("reset", "-q", "--hard", "HEAD~1")
            self.up.commit_file("rewritten.txt", "rewritten\n")
            self.up.push("main", force=True)
        else:
            self.up.commit_file(f"round-{round_}.bin", os.urandom(200_000))
            self.up.push("main")

    def test_simultaneous_jobs_never_break_a_chain_or_overwrite_a_manifest(self):
        store = self.ws.store
        check = crashcheck.Checker(store)
        recorded: dict[str, str] = {}
        out_of_order = 0
        for round_ in range(ROUNDS):
            if round_:
                self.change_upstream(round_)
            procs = [self.start(f"cw-{round_}-{w}", w) for w in range(WRITERS)]
            for w, proc in enumerate(procs):
                stdout, stderr = proc.communicate(timeout=120)
                out = harness.check_stdout(stdout)
                self.assertEqual((proc.returncode, out.get("ok")), (0, True),
                                 f"round {round_} writer {w}: {stdout!r}\n{stderr.decode(errors='replace')[-3000:]}")
            now = crashcheck.manifest_bytes(store)
            for key, digest in recorded.items():
                self.assertEqual(now.get(key), digest, f"round {round_}: manifest {key} was overwritten or removed")
            self.assertEqual(len(now), len(recorded) + WRITERS, f"round {round_}: one manifest per job")
            if store.kind == "file":
                # Was the race there to win? An older snapshot committing last is
                # the case where an unconditional pointer write would move back.
                fresh = sorted(set(now) - set(recorded))
                times = [store.path_of(k).stat().st_mtime_ns for k in fresh]
                out_of_order += any(later < earlier for earlier, later in zip(times, times[1:]))
            recorded = now
            self.assertEqual(check.check_committed(), [], f"round {round_}")
            newest = check.newest_manifests()["org/app"]
            self.assertEqual(self.ws.latest("org/app")["snapshot_id"], newest["snapshot_id"],
                             f"round {round_}: latest.json does not name the newest manifest")
        if store.kind == "file":
            print(f"\nrounds where an older snapshot was published after a newer one: {out_of_order} of {ROUNDS}",
                  file=sys.stderr)
        # Every snapshot, whichever writer made it, restores exactly; latest is the newest.
        for key, manifest in sorted(check.manifests().items()):
            crashcheck.assert_restores(self, self.ws, manifest, key)
        crashcheck.assert_restores(self, self.ws, newest, "latest", snapshot="latest")


class ConcurrentFileTest(ConcurrentBase, unittest.TestCase):
    storage_kind = "file"


class ConcurrentS3Test(ConcurrentBase, unittest.TestCase):
    storage_kind = "s3"


if __name__ == "__main__":
    unittest.main()
