"""The stream engine finds Git LFS pointers in the pack as it streams
(options.verify "pack", the default; docs/lfs.md), for a full and an
incremental snapshot, against a real git daemon. No LFS server listens (the
lfs_url's port is free), so every object is recorded missing: what the test
reads is which pointers were found, from the result's missing objects."""

import subprocess
import unittest

import harness


def setUpModule():
    harness.setup_module()


def tearDownModule():
    harness.teardown_module()


def pointer(digit: str, size: int) -> str:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{digit * 64}\nsize {size}\n"


class LfsStream(harness.Assertions, unittest.TestCase):
    def test_pointers_found_in_full_and_incremental_packs(self):
        root = harness.mkdtemp("lfs-stream-")
        work, serve = root / "work", root / "serve"
        serve.mkdir()

        def git(*args, cwd=work):
            subprocess.run(["git", *args], cwd=cwd, env=harness.git_env(), check=True, capture_output=True)

        git("init", "-q", "-b", "main", str(work), cwd=root)
        (work / "a.bin").write_text(pointer("a", 1000))
        (work / "b.bin").write_text(pointer("b", 2000))
        (work / "code.txt").write_text("line\n" * 200)
        git("add", ".")
        git("commit", "-q", "-m", "one")
        git("clone", "-q", "--bare", str(work), str(serve / "r.git"), cwd=root)
        daemon = harness.GitDaemon(serve)
        ws = harness.Workspace("lfs-stream-ws-")
        repo = {"name": "r", "url": daemon.url_for("r.git"), "lfs": True,
                "lfs_url": f"http://127.0.0.1:{harness.free_port()}/lfs"}
        options = {"engine": "stream", "allow_http": True}

        def snapshot(kind: str) -> dict:
            r = self.assertRunOk(ws.snapshot([repo], options), kind)["repositories"][0]
            self.assertEqual(r.get("kind"), kind, r)
            self.assertIs(r["lfs"]["scanned"], True, r)
            return r

        full = snapshot("full")
        self.assertEqual(full["lfs"]["found"], 2, full)
        self.assertEqual(sorted(m["oid"] for m in full["lfs"]["missing_objects"]), ["a" * 64, "b" * 64])

        # The pointer changes: the incremental's (non-thin) pack holds the new one only.
        (work / "a.bin").write_text(pointer("c", 3000))
        (work / "code.txt").write_text("line\n" * 200 + "more\n")
        git("commit", "-q", "-am", "two")
        git("push", "-q", str(serve / "r.git"), "main")
        incremental = snapshot("incremental")
        self.assertEqual(incremental["lfs"]["found"], 1, incremental)
        self.assertEqual(incremental["lfs"]["objects"], 3, incremental)  # cumulative over the chain
        self.assertIn("c" * 64, [m["oid"] for m in incremental["lfs"]["missing_objects"]])


if __name__ == "__main__":
    unittest.main()
