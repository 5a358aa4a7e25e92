"""The cli engine's cache on a read-only root (docs/job-payload.md, options.cache_dir).

In a container run with --read-only and no options.cache_dir, the default
cache ($HOME/.cache/snapshotter) cannot be created. The repository then fails
with a message that names options.cache_dir and the directory, instead of a
bare "open lock ...: No such file or directory"; nothing is committed. The same
payload with a writable options.cache_dir succeeds, so the check can fail.
HOME points to a directory the binary cannot write: owned by root and run as
uid 10001 (setpriv) when the suite runs as root, which writes anywhere;
mode 0555 otherwise.
"""

import json
import os
import shutil
import subprocess
import unittest

import harness

OTHER_UID = 10001


def setUpModule():
    harness.setup_module()


def tearDownModule():
    harness.teardown_module()


class CacheDirOnAReadOnlyRoot(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.as_root = os.geteuid() == 0
        if cls.as_root and not shutil.which("setpriv"):
            raise unittest.SkipTest("as root, needs setpriv to run as a user that cannot write HOME")
        os.chmod(harness.tmp_root(), 0o755)
        cls.root = harness.mkdtemp("cache-")
        os.chmod(cls.root, 0o755)
        cls.upstream = harness.build_rich(cls.root, "app")
        cls.home = cls.root / "home"  # read-only for the binary
        cls.home.mkdir()
        if cls.as_root:
            subprocess.run(["chown", "-R", f"{OTHER_UID}:{OTHER_UID}", str(cls.upstream.bare)], check=True)
        else:
            os.chmod(cls.home, 0o555)

    def snapshot(self, options: dict) -> subprocess.CompletedProcess:
        """A first snapshot (so the engine needs its mirror) into fresh storage."""
        self.storage = harness.mkdtemp("snapshots-")
        if self.as_root:
            os.chown(self.storage, OTHER_UID, OTHER_UID)
        payload = {"version": 1, "action": "snapshot", "storage": {"url": f"file://{self.storage}"},
                   "repositories": [{"url": str(self.upstream.bare), "name": "org/app"}],
                   "options": {"engine": "cli", "retries": 0, **options}}
        env = harness.snapshotter_env(home=self.home, extra={"SNAPSHOTTER_JOB_JSON": json.dumps(payload)})
        prefix = ["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups", "--"] \
            if self.as_root else []
        return subprocess.run(prefix + [harness.snapshotter_bin()], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=120, cwd="/")

    def test_an_unwritable_default_cache_names_options_cache_dir(self):
        run = self.snapshot({})
        self.assertNotEqual(run.returncode, 0, run.stdout)
        out = json.loads(run.stdout)
        self.assertFalse(out["ok"])
        (repo,) = out["result"]["repositories"]
        message = json.dumps(repo)
        self.assertIn("options.cache_dir", message)
        self.assertIn(str(self.home / ".cache" / "snapshotter" / "mirrors"), message)
        self.assertNotIn("snapshot_id", repo, "nothing is committed")
        self.assertEqual(list(self.storage.rglob("*.json")), [p for p in self.storage.rglob("*.json")
                                                              if p.parent.name == "jobs"], "only the job report")

    def test_a_writable_cache_dir_works(self):
        cache = harness.mkdtemp("writable-cache-")
        if self.as_root:
            os.chown(cache, OTHER_UID, OTHER_UID)
        run = self.snapshot({"cache_dir": str(cache)})
        self.assertEqual(run.returncode, 0, run.stderr[-3000:])
        self.assertTrue((cache / "mirrors" / "org%2Fapp.git").is_dir())


if __name__ == "__main__":
    unittest.main()
