"""Full disk and read-only storage (file://), and a full cache_dir.

The storage (or cache_dir) lives on a small tmpfs mounted for the test
(`mount -t tmpfs -o size=8m`, which needs root with CAP_SYS_ADMIN; those tests
skip with the reason when the mount is refused). A snapshot that does not fit
fails with StorageError naming the cause (No space left on device), commits
nothing (no manifest, no bundle, latest unchanged, no temporary file left) and
earlier snapshots stay intact and restore. A read-only mount gives a clear
StorageError and loses nothing. One test always runs, mount or not: the same
ENOSPC-like write failure through RLIMIT_FSIZE on the binary (EFBIG).
Everything mounted is unmounted in cleanup.
"""

import resource
import signal
import subprocess
import unittest

import harness

SERVE = None
RICH = None
BIG = None
BIG_BYTES = 10 * 1024 * 1024


def setUpModule():
    global SERVE, RICH, BIG
    harness.setup_module()
    SERVE = harness.mkdtemp("serve-")
    RICH = harness.build_rich(SERVE, "rich")
    BIG = harness.build_random_blob(SERVE, "big", BIG_BYTES)


def tearDownModule():
    harness.teardown_module()


def repo(upstream, name):
    return {"url": str(upstream.bare), "name": name}


def temp_files(root):
    return [str(p) for p in harness.Path(root).rglob("*") if p.name.startswith(".tmp-snapshotter-")]


class SmallDisk(harness.Assertions, unittest.TestCase):
    def mount_tmpfs(self, size="8m"):
        """A fresh tmpfs of `size`, unmounted at cleanup; skips the test when mounting is refused."""
        path = harness.mkdtemp("tmpfs-")
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs here ({p.stderr.decode(errors='replace').strip()}); "
                          "test_rlimit_fsize_write_failure covers the same path")
        self.addCleanup(self.unmount, path)
        return path

    def unmount(self, path):
        if subprocess.run(["umount", str(path)], stderr=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], stderr=subprocess.DEVNULL)

    def workspace_on(self, mount):
        ws = harness.Workspace()
        ws.store.root = mount / "storage"
        return ws

    def assertCleanFailure(self, ws, run, error, cause, committed_before):
        out = self.assertRunFails(run, 1, error, cause)
        self.assertIn(cause, out["message"], run.describe())
        self.assertFalse(ws.store.exists(harness.latest_key("big")), "latest of the failed repository")
        self.assertEqual([k for k in ws.store.keys("repos/big/")], [], "something of the failed snapshot was kept")
        self.assertEqual(temp_files(ws.storage_dir), [], "temporary files left in storage")
        self.assertEqual(harness.tree_state(ws.storage_dir / "repos" / "rich"), committed_before,
                         "the earlier snapshot changed")
        target = ws.new_target()
        self.assertRunOk(ws.restore("rich", target), "restore of the earlier snapshot")
        self.assertRepoEquals(target, RICH, "the earlier snapshot")

    def test_full_storage_disk_commits_nothing(self):
        for engine in ("stream", "cli"):
            with self.subTest(engine=engine):
                ws = self.workspace_on(self.mount_tmpfs("8m"))
                self.assertRunOk(ws.snapshot([repo(RICH, "rich")], {"engine": engine}), "a small first snapshot")
                before = harness.tree_state(ws.storage_dir / "repos" / "rich")
                run = ws.snapshot([repo(BIG, "big")], {"engine": engine})
                self.assertCleanFailure(ws, run, "StorageError", "No space left on device", before)

    def test_read_only_storage_is_a_clear_error(self):
        mount = self.mount_tmpfs("8m")
        ws = self.workspace_on(mount)
        self.assertRunOk(ws.snapshot([repo(RICH, "rich")]), "a first snapshot")
        before = harness.tree_state(ws.storage_dir / "repos" / "rich")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        run = ws.snapshot([repo(BIG, "big"), repo(RICH, "rich")])
        self.assertCleanFailure(ws, run, "StorageError", "Read-only file system", before)

    def test_full_cache_dir_for_the_cli_engine(self):
        cache = self.mount_tmpfs("4m")
        ws = harness.Workspace()
        run = ws.snapshot([repo(BIG, "big")], {"engine": "cli", "cache_dir": str(cache), "retries": 1})
        out = self.assertRunFails(run, 1, run.out.get("error"), "a full cache_dir")
        self.assertIn(out["error"], ("GitError", "StorageError"), run.describe())
        self.assertIn("No space left on device", out["message"], run.describe())
        entry = out["result"]["repositories"][0]
        self.assertFalse(entry["transient"], f"a full disk is not worth a retry: {entry}")
        self.assertEqual(entry["attempts"], 1, entry)
        self.assertEqual([k for k in ws.store.keys("repos/")], [], "nothing may be committed")
        self.assertEqual(temp_files(ws.storage_dir), [], "temporary files left in storage")

    def test_rlimit_fsize_write_failure(self):
        # Runs everywhere: the binary may write no file larger than 2 MiB, so
        # the bundle write fails with EFBIG as a full disk fails with ENOSPC.
        ws = harness.Workspace()
        self.assertRunOk(ws.snapshot([repo(RICH, "rich")]), "a small first snapshot")
        before = harness.tree_state(ws.storage_dir / "repos" / "rich")

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, 2 << 20))

        run = ws.run(ws.snapshot_payload([repo(BIG, "big")], {"engine": "stream"}), preexec_fn=limit)
        self.assertCleanFailure(ws, run, "StorageError", "File too large", before)


if __name__ == "__main__":
    unittest.main()
