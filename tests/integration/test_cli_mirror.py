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

After a protocol v2 listing, a kept mirror fetches the listed tips by object
id: a night that only moves refs onto objects the mirror holds (a branch
moved back, a tag on an old commit) makes no connection but the listing's,
refs the payload does not select never reach the mirror, and a night whose
fetch adds more than `max_pack_bytes` still drops the mirror and fails.
"""

import os
import unittest
from pathlib import Path

import harness

SERVE_ROOT: Path | None = None
DAEMON: harness.GitDaemon | None = None


def setUpModule():
    global SERVE_ROOT, DAEMON
    harness.setup_module()
    SERVE_ROOT = harness.mkdtemp("serve-")
    DAEMON = harness.GitDaemon(SERVE_ROOT, verbose=True)


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

    def test_nights_fetched_by_object_id(self):
        up = harness.build_rich(SERVE_ROOT, "by-oid")
        old = up.git("rev-parse", "main").strip()
        up.checkout("main")
        up.commit_file("second.txt", "second\n", "second")
        up.push("refs/heads/main:refs/heads/main", f"{old}:refs/pull/1/head")
        path = str(up.bare.relative_to(SERVE_ROOT))
        repo = {"url": DAEMON.url_for(path), "name": "org/by-oid", "refs": ["refs/heads/*", "refs/tags/*"]}
        options = {"engine": "cli", "full_size_ratio": 100, "retries": 0}
        ws = harness.Workspace("cli-by-oid-")
        selected = lambda: {k: v for k, v in up.ref_map().items() if not k.startswith("refs/pull/")}
        mirror = ws.cache_dir / "mirrors" / "org%2Fby-oid.git"

        def mirror_refs() -> dict:
            return {k: v for k, v in harness.ref_map(mirror).items() if not k.startswith("refs/snapshotter/")}

        self.assertRunOk(ws.snapshot([repo], options), "first snapshot")
        self.assertEqual(mirror_refs(), selected())

        # A night of refs only: main moved back, a tag on an old commit, a
        # new unselected ref on a new commit. The mirror holds every listed
        # object, so git fetch connects to nothing: one upload-pack (the listing).
        up.commit_file("pull.txt", "pull\n", "pull")
        up.push(f"{old}:refs/heads/main", f"{old}:refs/tags/old", "HEAD:refs/pull/2/head", force=True)
        before = DAEMON.upload_packs(path)
        night = self.assertRunOk(ws.snapshot([repo], options), "refs-only night")["repositories"][0]
        self.assertEqual(night.get("kind"), "incremental", night)
        self.assertEqual(DAEMON.upload_packs(path) - before, 1, DAEMON.log()[-2000:])
        self.assertEqual(mirror_refs(), selected(), "exactly the selected refs, as listed")

        # A night whose fetch adds more than max_pack_bytes: the mirror is dropped.
        up.checkout("main")
        up.git("reset", "-q", "--hard", old)
        up.commit_file("big.bin", os.urandom(300_000), "big")
        up.push("refs/heads/main:refs/heads/main", force=True)
        run = ws.snapshot([repo], {**options, "max_pack_bytes": 100_000})
        out = self.assertRunFails(run, 1, "GitError", "a fetch past max_pack_bytes")
        self.assertIn("options.max_pack_bytes", out["result"]["repositories"][0]["message"])
        self.assertFalse(mirror.exists(), "a mirror that grew past the limit is dropped")

        # Without the limit the next night fetches again, and the chain restores exactly.
        self.assertRunOk(ws.snapshot([repo], options), "the night again")
        self.assertEqual(mirror_refs(), selected())
        target = ws.new_target()
        self.assertRunOk(ws.run(ws.restore_payload(repo["name"], target, "latest")), "restore")
        self.assertEqual(harness.ref_map(target), selected())
        p = harness.fsck(target)
        self.assertEqual(p.returncode, 0, f"fsck --full: {p.stdout!r} {p.stderr!r}")


if __name__ == "__main__":
    unittest.main()
