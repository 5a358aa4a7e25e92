"""Size limits against a hostile or runaway server (issue 6, item 8: limits).

`options.max_refs`: a server advertising 20,000 refs with max_refs 1000 stops
the repository with a GitError naming the limit, nothing committed; with a
limit above the count the same repository snapshots fine. `options.max_pack_bytes`:
a pack over the limit stops the repository (the stream engine while
streaming, the cli engine after its fetch, or while writing a full bundle
from a mirror that already had the objects), nothing committed. A server
whose fetch answer is one packet-sized remote error (band 3) fails the
repository with a short GitError; the stream engine used to overflow its
stack redacting that text. Both engines, over smart HTTP.
"""

import unittest

import harness

SERVE = None
HTTP = None
MANY = None
BLOB = None
REF_COUNT = 20000


def build_many_refs(root, name, count):
    """A repository with one commit and `count` branches pointing at it (written as packed-refs)."""
    up = harness.new_upstream(root, name)
    oid = up.commit_file("README", "many refs\n", "initial")
    up.push("--all")
    lines = ["# pack-refs with: peeled fully-peeled sorted"]
    names = sorted([f"refs/heads/main"] + [f"refs/heads/b{i:05d}" for i in range(count)])
    lines += [f"{oid} {n}" for n in names]
    (up.bare / "packed-refs").write_text("\n".join(lines) + "\n")
    loose = up.bare / "refs" / "heads" / "main"
    if loose.exists():
        loose.unlink()
    return up


def setUpModule():
    global SERVE, HTTP, MANY, BLOB
    harness.setup_module()
    SERVE = harness.mkdtemp("serve-")
    MANY = build_many_refs(SERVE, "many", REF_COUNT)
    BLOB = harness.build_random_blob(SERVE, "blob", 300 * 1024)
    HTTP = harness.SmartHttp(SERVE, {"u": "limits-token"})


def tearDownModule():
    harness.teardown_module()


class Limits(harness.Assertions, unittest.TestCase):
    def snapshot(self, ws, name, engine, **options):
        repo = {"url": HTTP.url_for(f"{name}.git"), "name": name,
                "credentials": {"token_env": "SNAP_LIMITS_TOKEN", "username": "u"}}
        return ws.snapshot([repo], {"allow_http": True, "engine": engine, **options},
                           env_extra={"SNAP_LIMITS_TOKEN": "limits-token"})

    def assertStopped(self, ws, run, name, limit_name):
        out = self.assertRunFails(run, 1, "GitError", f"{limit_name} exceeded")
        entry = out["result"]["repositories"][0]
        self.assertIn(f"options.{limit_name}", entry["message"], entry)
        self.assertEqual((entry["transient"], entry["attempts"]), (False, 1), entry)
        return entry

    def test_too_many_refs(self):
        for engine in ("stream", "cli"):
            with self.subTest(engine=engine):
                ws = harness.Workspace()
                run = self.snapshot(ws, "many", engine, max_refs=1000)
                entry = self.assertStopped(ws, run, "many", "max_refs")
                self.assertIn("1000", entry["message"])
                self.assertEqual(ws.store.keys("repos/"), [], "nothing may be committed")
                # Under a limit above the count, the same server is fine.
                result = self.assertRunOk(self.snapshot(ws, "many", engine, max_refs=REF_COUNT + 10))
                self.assertEqual(result["repositories"][0]["refs"], REF_COUNT + 1)

    def test_pack_too_large(self):
        for engine in ("stream", "cli"):
            with self.subTest(engine=engine):
                ws = harness.Workspace()
                run = self.snapshot(ws, "blob", engine, max_pack_bytes=100_000)
                entry = self.assertStopped(ws, run, "blob", "max_pack_bytes")
                self.assertIn("100000", entry["message"])
                self.assertEqual(ws.store.keys("repos/"), [], "nothing may be committed")
                if engine == "cli":
                    mirror = ws.cache_dir / "mirrors" / "blob.git"
                    self.assertFalse(mirror.exists(), "a mirror that grew past the limit is dropped")
                self.assertRunOk(self.snapshot(ws, "blob", engine, max_pack_bytes=10_000_000))

    def test_cli_full_bundle_past_the_limit_from_a_warm_mirror(self):
        # The mirror already holds the big pack, so the fetch adds little: the
        # limit then stops the full bundle while it is written.
        ws = harness.Workspace()
        first = self.assertRunOk(self.snapshot(ws, "blob", "cli"))
        latest = ws.store.read(harness.latest_key("blob"))
        BLOB.commit_file("small.txt", "small\n")
        BLOB.push("--all")
        run = self.snapshot(ws, "blob", "cli", max_pack_bytes=100_000, full_every=1)
        self.assertStopped(ws, run, "blob", "max_pack_bytes")
        self.assertEqual(ws.store.read(harness.latest_key("blob")), latest, "latest moved")
        manifests = ws.store.keys(f"repos/blob/manifests/")
        bundles = ws.store.keys(f"repos/blob/bundles/")
        self.assertEqual((len(manifests), len(bundles)), (1, 1), (manifests, bundles))
        self.assertIn(first["repositories"][0]["snapshot_id"], manifests[0])

    def test_packet_sized_remote_error(self):
        # A protocol v2 fetch answer: the packfile section holding one band-3
        # packet of the largest size a pkt-line allows, all letters.
        def pkt(payload: bytes) -> bytes:
            return b"%04x" % (len(payload) + 4) + payload
        answer = pkt(b"packfile\n") + pkt(b"\x03" + b"a" * 65511) + b"0000"
        with harness.GitFaultProxy(HTTP.port, answer=answer) as proxy:
            for engine in ("stream", "cli"):
                with self.subTest(engine=engine):
                    ws = harness.Workspace()
                    repo = {"url": proxy.url_for("blob.git"), "name": "blob",
                            "credentials": {"token_env": "SNAP_LIMITS_TOKEN", "username": "u"}}
                    run = ws.snapshot([repo], {"allow_http": True, "engine": engine, "retries": 0},
                                      env_extra={"SNAP_LIMITS_TOKEN": "limits-token"})
                    out = self.assertRunFails(run, 1, "GitError", "remote error")
                    entry = out["result"]["repositories"][0]
                    self.assertIn("aaaa", entry["message"])
                    self.assertLess(len(entry["message"]), 4096, "the remote's text is cut short")
                    self.assertLess(len(run.stderr), 64 * 1024, "nor is all of it logged")
                    self.assertEqual(ws.store.keys("repos/"), [], "nothing may be committed")


if __name__ == "__main__":
    unittest.main()
