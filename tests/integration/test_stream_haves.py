"""A reset branch whose old tip the server pruned still gets a small incremental (issue 21).

The stream engine's haves are the previous snapshot's tips. When a branch is
reset and the server runs `git gc --prune=now`, the server no longer has that
branch's old tip, finds no common commit on its history and used to resend
all of it. Now the first fetch is a negotiation round without "done": the
tips the server does not acknowledge are answered with older commits of the
chain (earlier snapshots' tips, then spaced first-parent ancestors read from
the chain's bundles), and the pack stays near the minimal one.

Over git daemon and smart HTTP (stateless: each round is a new request), the
incremental's bundle stays within 3x the minimal `git bundle create --all
--not <old tips>`, the chain restores exactly (refs equal upstream and the
manifest, git fsck clean), and the ledger records the reset as rewritten with
its old tip preserved. When the reset leaves gh-pages on an ancestor of its
lost tip (no new commit), the chain already holds that commit: it is offered
as a have too, and the incremental carries exactly the minimal bundle's objects.
"""

from __future__ import annotations

import itertools
import random
import unittest
from pathlib import Path

import harness

HTTP_USER = "haves-bot"
HTTP_TOKEN = "tok-haves-31c9"
TOKEN_ENV = "SNAP_HAVES_TOKEN"

SERVE_ROOT: Path | None = None
SERVERS: harness.GitAndHttp | None = None
_counter = itertools.count(1)


def setUpModule():
    global SERVE_ROOT, SERVERS
    harness.setup_module()
    SERVE_ROOT = harness.mkdtemp("serve-")
    SERVERS = harness.GitAndHttp(SERVE_ROOT, HTTP_USER, HTTP_TOKEN, TOKEN_ENV)


def tearDownModule():
    harness.teardown_module()


def pack_object_count(bundle: Path) -> int:
    """The object count of the pack in `bundle` (its header)."""
    data = bundle.read_bytes()
    pack = data.index(b"\n\nPACK") + 2
    return int.from_bytes(data[pack + 8:pack + 12], "big")


class ResetAndServerGc(harness.Assertions, unittest.TestCase):
    def check(self, transport: str, new_page: bool = True) -> None:
        rng = random.Random(21)
        up = harness.new_upstream(SERVE_ROOT, f"haves-{transport}-{next(_counter)}")
        for i in range(3):
            up.commit_file("src.txt", f"main {i}\n", f"main {i}")
        up.push("main")
        # An orphan gh-pages history of incompressible pages (fast-import: one
        # process): resending it would cost about 100 KB.
        stream = []
        for i in range(48):
            page = b"%x\n" % rng.getrandbits(16000)
            stream.append(b"commit refs/heads/gh-pages\ncommitter T <t@example.com> %d +0000\ndata 5\npage\n"
                          % (1_600_000_000 + i) + b"M 644 inline page-%d.html\ndata %d\n%s\n" % (i % 8, len(page), page))
        up.git("fast-import", "--quiet", input=b"".join(stream))
        up.push("gh-pages")
        up.git("tag", "-a", "pages-v1", "-m", "pages", "gh-pages~30")
        up.push("pages-v1")
        up.set_head("refs/heads/main")

        name = f"org/haves-{transport}"
        repo, options, env = SERVERS.repository(transport, up.bare, name)
        options.update({"engine": "stream"})
        ws = harness.Workspace(f"haves-{transport}-")
        full = self.assertRunOk(ws.snapshot([repo], options, env_extra=env))["repositories"][0]
        self.assertEqual(full["kind"], "full", full)

        # The night: a commit on main, gh-pages reset by 3 and one new page on it, then a server gc.
        scratch = harness.mkdtemp("haves-min-")
        mirror = scratch / "mirror.git"
        harness.git("clone", "-q", "--mirror", str(up.bare), str(mirror))
        old_pages = up.git("rev-parse", "gh-pages").strip()
        up.commit_file("src.txt", "main night\n", "main night")
        up.push("main")
        up.checkout("gh-pages")
        up.git("reset", "-q", "--hard", "HEAD~3")
        if new_page:
            up.commit_file("page-new.html", "%x\n" % rng.getrandbits(16000), "new page")
        up.push("gh-pages", force=True)
        harness.git("reflog", "expire", "--expire=now", "--all", git_dir=up.bare)
        harness.git("gc", "-q", "--prune=now", git_dir=up.bare)
        self.assertNotEqual(harness.git("cat-file", "-t", old_pages, git_dir=up.bare, check=False).strip(),
                            "commit", "the server still has gh-pages' old tip")
        minimal = harness.minimal_bundle(mirror, up.bare, scratch)

        run = ws.snapshot([repo], options, args=["--log-level", "info"], env_extra=env)
        inc = self.assertRunOk(run)["repositories"][0]
        self.assertEqual(inc["kind"], "incremental", inc)
        size = inc["bundle"]["size"]
        self.assertLessEqual(size, 3 * minimal, f"incremental {size} B against a minimal bundle of {minimal} B")
        if not new_page:
            # gh-pages' new tip is a commit of the chain: nothing of gh-pages is resent.
            self.assertIn("1 wanted tip(s) already there", run.stderr.decode(errors="replace"))
            self.assertEqual(pack_object_count(ws.path_of(inc["bundle"]["key"])),
                             pack_object_count(scratch / "minimal.bundle"))

        # The negotiation found the lost tip and offered older commits of the chain.
        log = run.stderr.decode(errors="replace")
        self.assertIn("the server lacks 1 previous tip(s) of moved refs", log)

        # The ledger: gh-pages was rewritten, main fast-forwarded; the old tip is preserved.
        manifest = ws.manifest(name, inc["snapshot_id"])
        self.assertEqual(inc["refs_rewritten"], 1, inc)
        self.assertEqual({ref: c["change"] for ref, c in manifest["changes"].items()},
                         {"refs/heads/gh-pages": "rewritten", "refs/heads/main": "fast_forward"})
        self.assertIn(old_pages, manifest["preserved"].values())
        self.assertEqual(manifest["refs"], up.ref_map())

        # The chain restores exactly: refs equal upstream (and so the manifest's), fsck clean.
        target = ws.new_target()
        self.assertRunOk(ws.restore(name, target))
        self.assertRepoEquals(target, up)

    def test_over_git_daemon(self):
        self.check("git")

    def test_over_smart_http(self):
        self.check("http")

    def test_reset_to_ancestor_over_git_daemon(self):
        self.check("git", new_page=False)

    def test_reset_to_ancestor_over_smart_http(self):
        self.check("http", new_page=False)


if __name__ == "__main__":
    unittest.main()
