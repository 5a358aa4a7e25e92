"""The cli engine's kept mirror keeps packs, not loose objects (issue 21).

Every night's `git fetch` into a kept mirror (options.cache_dir) keeps what
it brings as a pack (fetch.unpackLimit=1), so the mirror's objects/ gains no
loose files night after night, and once it holds more than
k_packs_to_repack (16) packs they are rolled together geometrically (`git
repack -d --geometric=2`), so twenty nights leave a handful of packs. A
mirror kept by an older binary, which left each night's objects loose, has
them packed on its next night, none of them dropped. The chain restores to
upstream's refs and objects exactly, and `max_pack_bytes` still bounds what
a fetch adds (a pack now): nights below it pass in a mirror larger than it,
a fetch past it fails and the mirror is dropped. A repack that fails is a
warning: the night is taken and the next one repacks.
"""

import os
import unittest
from pathlib import Path

import harness

SERVE_ROOT: Path | None = None
DAEMON: harness.GitDaemon | None = None

K_PACKS_TO_REPACK = 16  # git/object_store.hpp
K_LOOSE_OBJECTS_TO_PACK = 256


def setUpModule():
    global SERVE_ROOT, DAEMON
    harness.setup_module()
    SERVE_ROOT = harness.mkdtemp("serve-")
    DAEMON = harness.GitDaemon(SERVE_ROOT)


def tearDownModule():
    harness.teardown_module()


def loose_objects(repo: Path) -> int:
    """The files in the objects/<xx>/ fan-out directories of `repo`."""
    return sum(1 for d in (repo / "objects").glob("[0-9a-f][0-9a-f]") for _ in d.iterdir())


def packs(repo: Path) -> list[Path]:
    return sorted((repo / "objects" / "pack").glob("*.pack"))


class KeptMirrorPacks(harness.Assertions, unittest.TestCase):
    def test_nights_keep_packs_bounded_and_restore_exactly(self):
        up = harness.build_rich(SERVE_ROOT, "packs")
        # A mirror larger than max_pack_bytes: the bound is on what a fetch adds.
        up.checkout("main")
        up.commit_file("big-old.bin", os.urandom(150_000), "big old blob")
        up.push("refs/heads/main:refs/heads/main")
        path = str(up.bare.relative_to(SERVE_ROOT))
        repo = {"url": DAEMON.url_for(path), "name": "org/packs"}
        options = {"engine": "cli", "full_size_ratio": 100, "retries": 0}
        bounded = {**options, "max_pack_bytes": 100_000}
        ws = harness.Workspace("cli-packs-")
        mirror = ws.cache_dir / "mirrors" / "org%2Fpacks.git"

        first = self.assertRunOk(ws.snapshot([repo], options), "first snapshot")["repositories"][0]
        self.assertEqual(first.get("kind"), "full", first)
        self.assertEqual(loose_objects(mirror), 0, "the first fetch keeps its pack")
        self.assertEqual(len(packs(mirror)), 1)

        # Twenty nights of a commit each, under a limit the mirror itself passes.
        counts = []
        for night in range(1, 21):
            up.commit_file(f"night-{night}.txt", f"night {night}\n" * night, f"night {night}")
            up.push("refs/heads/main:refs/heads/main")
            res = self.assertRunOk(ws.snapshot([repo], bounded), f"night {night}")["repositories"][0]
            self.assertEqual(res.get("kind"), "incremental", res)
            self.assertEqual(loose_objects(mirror), 0, f"night {night} left loose objects")
            counts.append(len(packs(mirror)))
        self.assertLessEqual(max(counts), K_PACKS_TO_REPACK, f"packs after each night: {counts}")
        self.assertEqual(counts[:K_PACKS_TO_REPACK - 1], list(range(2, K_PACKS_TO_REPACK + 1)),
                         f"a pack a night until the policy's bound: {counts}")
        self.assertLess(counts[-1], 8, f"the packs were rolled together: {counts}")

        # A mirror an older binary kept: a year of nights' objects loose (and
        # unreachable ones a killed fetch may leave). The next night packs
        # them all and drops none.
        junk = [f"junk {i}\n" * 8 for i in range(K_LOOSE_OBJECTS_TO_PACK + 44)]
        written = harness.git("hash-object", "-w", "--stdin-paths", git_dir=mirror,
                              input=self._files(junk)).split()
        self.assertEqual(loose_objects(mirror), len(junk))
        # A repack that fails (here a config value only `git repack` reads) is the cache's
        # housekeeping: the night is taken, with a warning, and the objects wait for the next.
        harness.git("config", "repack.writeBitmaps", "notabool", git_dir=mirror)
        up.commit_file("repack-fails.txt", "repack fails\n", "repack fails")
        up.push("refs/heads/main:refs/heads/main")
        run = ws.snapshot([repo], bounded)
        self.assertEqual(self.assertRunOk(run, "a failed repack")["repositories"][0].get("kind"), "incremental")
        self.assertIn("repacking the kept mirror failed", run.stderr.decode(errors="replace"))
        self.assertEqual(loose_objects(mirror), len(junk), "the loose objects wait for the next repack")
        harness.git("config", "--unset", "repack.writeBitmaps", git_dir=mirror)
        up.commit_file("after-junk.txt", "after junk\n", "after junk")
        up.push("refs/heads/main:refs/heads/main")
        self.assertRunOk(ws.snapshot([repo], bounded), "the night after")
        self.assertEqual(loose_objects(mirror), 0, "an older mirror's loose objects are packed")
        self.assertLess(len(packs(mirror)), 8)
        missing = harness.git("cat-file", "--batch-check", git_dir=mirror,
                              input="\n".join(written).encode() + b"\n")
        self.assertNotIn("missing", missing, "packing dropped no object")

        # The chain restores exactly.
        target = ws.new_target()
        self.assertRunOk(ws.run(ws.restore_payload(repo["name"], target, "latest")), "restore")
        self.assertRepoEquals(target, up, "the chain restored")
        reachable = lambda r: {line.split(" ", 1)[0] for line in harness.git("rev-list", "--objects", "--all",
                                                                             git_dir=r).splitlines()}
        self.assertEqual(reachable(target), reachable(up.bare), "the restored objects are upstream's")

        # A fetch past max_pack_bytes (its pack) fails clearly and drops the mirror.
        up.commit_file("big-new.bin", os.urandom(300_000), "big new blob")
        up.push("refs/heads/main:refs/heads/main")
        run = ws.snapshot([repo], bounded)
        out = self.assertRunFails(run, 1, "GitError", "a fetch past max_pack_bytes")
        message = out["result"]["repositories"][0]["message"]
        self.assertIn("the fetch added", message)
        self.assertIn("options.max_pack_bytes", message)
        self.assertFalse(mirror.exists(), "a mirror that grew past the limit is dropped")

    def _files(self, contents: list[str]) -> bytes:
        """Write `contents` to files; their paths, one a line (hash-object --stdin-paths)."""
        folder = harness.mkdtemp("junk-")
        paths = []
        for i, text in enumerate(contents):
            (folder / str(i)).write_text(text)
            paths.append(str(folder / str(i)))
        return "\n".join(paths).encode() + b"\n"


if __name__ == "__main__":
    unittest.main()
