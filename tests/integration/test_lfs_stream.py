"""The stream engine finds Git LFS pointers in the pack as it streams
(options.verify "pack", the default; docs/lfs.md), for a full and an
incremental snapshot, and for an incremental in which LFS first appears in a
thin pack, against a real git daemon. No LFS server listens (the lfs_url's
port is free), so every object is recorded missing: what the test reads is
which pointers were found, from the result's missing objects."""

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
    def upstream(self, files: dict[str, str], lfs):
        """A repository whose first commit holds `files`, served by a git daemon; (git, work, serve, repo entry)."""
        root = harness.mkdtemp("lfs-stream-")
        work, serve = root / "work", root / "serve"
        serve.mkdir()

        def git(*args, cwd=work):
            subprocess.run(["git", *args], cwd=cwd, env=harness.git_env(), check=True, capture_output=True)

        git("init", "-q", "-b", "main", str(work), cwd=root)
        for path, text in files.items():
            (work / path).write_text(text)
        git("add", ".")
        git("commit", "-q", "-m", "one")
        git("clone", "-q", "--bare", str(work), str(serve / "r.git"), cwd=root)
        daemon = harness.GitDaemon(serve)
        repo = {"name": "r", "url": daemon.url_for("r.git"), "lfs": lfs,
                "lfs_url": f"http://127.0.0.1:{harness.free_port()}/lfs"}
        return git, work, serve, repo

    def test_pointers_found_in_full_and_incremental_packs(self):
        git, work, serve, repo = self.upstream(
            {"a.bin": pointer("a", 1000), "b.bin": pointer("b", 2000), "code.txt": "line\n" * 200}, True)
        ws = harness.Workspace("lfs-stream-ws-")
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

    def test_lfs_first_seen_in_a_thin_pack_is_read_completely(self):
        # "auto" and no LFS yet: the incremental's pack is thin, and its small files and trees are
        # deltas on objects of the previous snapshot. LFS appears in it (.gitattributes and a
        # pointer): the new commits are fetched again without thin deltas and read whole.
        files = {f"small{i}.txt": f"small file {i}\n" + "some text of a small file\n" * (5 + i) for i in range(6)}
        git, work, serve, repo = self.upstream(files, "auto")
        ws = harness.Workspace("lfs-stream-auto-ws-")
        options = {"engine": "stream", "allow_http": True}
        full = self.assertRunOk(ws.snapshot([repo], options), "full")["repositories"][0]
        self.assertNotIn("lfs", full)
        for path, text in files.items():
            (work / path).write_text(text + "one more line\n")
        (work / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
        (work / "a.bin").write_text(pointer("d", 4000))
        git("add", ".")
        git("commit", "-q", "-m", "LFS arrives")
        git("push", "-q", str(serve / "r.git"), "main")
        run = ws.snapshot([repo], options, args=["--log-level", "info"])
        r = self.assertRunOk(run, "incremental")["repositories"][0]
        self.assertEqual(r["kind"], "incremental", r)
        self.assertIs(r["lfs"]["scanned"], True, r)
        self.assertEqual([m["oid"] for m in r["lfs"]["missing_objects"]], ["d" * 64], r)
        self.assertFalse([w for w in r.get("warnings", []) if "not looked for" in w], r)
        self.assertIn(b"fetched again without thin deltas", run.stderr, run.describe())


if __name__ == "__main__":
    unittest.main()
