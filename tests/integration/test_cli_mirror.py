"""The cli engine's kept mirror (issue 21): refs packed, moved refs fetched by name.

A first snapshot of a repository with more than k_loose_refs_to_pack (64)
branches leaves the cache's mirror with its refs packed, as `git clone
--mirror` does. A night that moves main, deletes a branch, replaces
refs/heads/df by refs/heads/df/x (a deletion that must come before the
creation) and adds an annotated tag takes an incremental whose bundle lists
only the refs that brought new objects (df/x is on an old commit: the
manifest holds it, restore sets it); the kept mirror then holds exactly the listed refs (and
nothing the server deleted), and the chain restores to upstream's refs, HEAD
and objects exactly.
"""

import unittest
from pathlib import Path

import harness

SERVE_ROOT: Path | None = None
DAEMON: harness.GitDaemon | None = None


def setUpModule():
    global SERVE_ROOT, DAEMON
    harness.setup_module()
    SERVE_ROOT = harness.mkdtemp("serve-")
    DAEMON = harness.GitDaemon(SERVE_ROOT)


def tearDownModule():
    harness.teardown_module()


def loose_refs(repo: Path) -> list[str]:
    return sorted(str(p.relative_to(repo)) for p in (repo / "refs").rglob("*") if p.is_file())


class KeptMirror(harness.Assertions, unittest.TestCase):
    def test_packed_refs_and_a_night_fetched_by_name(self):
        up = harness.build_rich(SERVE_ROOT, "mirror")
        base = up.git("rev-parse", "main").strip()
        up.push(*[f"{base}:refs/heads/many/{i:02d}" for i in range(70)], f"{base}:refs/heads/df")
        repo = {"url": DAEMON.url_for(str(up.bare.relative_to(SERVE_ROOT))), "name": "org/mirror"}
        options = {"engine": "cli", "full_size_ratio": 100}
        ws = harness.Workspace("cli-mirror-")

        first = self.assertRunOk(ws.snapshot([repo], options), "first snapshot")["repositories"][0]
        self.assertEqual(first.get("kind"), "full", first)
        mirrors = list((ws.cache_dir / "mirrors").glob("*.git"))
        self.assertEqual(len(mirrors), 1, mirrors)
        mirror = mirrors[0]
        self.assertTrue((mirror / "packed-refs").is_file())
        self.assertEqual(loose_refs(mirror), [], "a first fetch of 75 refs leaves them packed")

        # A night.
        up.checkout("main")
        up.commit_file("night.txt", "night\n", "night")
        up.push("refs/heads/main:refs/heads/main")
        up.push(":refs/heads/feature/x", ":refs/heads/df")
        up.push(f"{base}:refs/heads/df/x")
        up.git("tag", "-a", "-m", "night", "night-1", "main")
        up.push("refs/tags/night-1")

        second = self.assertRunOk(ws.snapshot([repo], options), "night")["repositories"][0]
        self.assertEqual(second.get("kind"), "incremental", second)
        heads = harness.git("bundle", "list-heads", str(ws.path_of(second["bundle"]["key"])))
        self.assertEqual(sorted(line.split()[1] for line in heads.splitlines()),
                         ["refs/heads/main", "refs/tags/night-1"],
                         "the incremental's bundle lists only the moved refs that brought new objects")
        # The mirror holds exactly upstream's refs (and the preserved tips of deleted refs).
        mirror_refs = {k: v for k, v in harness.ref_map(mirror).items() if not k.startswith("refs/snapshotter/")}
        self.assertEqual(mirror_refs, up.ref_map())

        target = ws.new_target()
        self.assertRunOk(ws.run(ws.restore_payload(repo["name"], target, "latest")), "restore")
        self.assertEqual(harness.refs_of(target), up.refs())
        self.assertEqual(harness.head_symref(target), up.head())
        p = harness.fsck(target)
        self.assertEqual(p.returncode, 0, f"fsck --full: {p.stdout!r} {p.stderr!r}")
        objects = [sorted({line.split(" ", 1)[0] for line in harness.git("rev-list", "--objects", "--all",
                                                                         git_dir=repo).splitlines()})
                   for repo in (target, up.bare)]
        self.assertEqual(objects[0], objects[1])


if __name__ == "__main__":
    unittest.main()
