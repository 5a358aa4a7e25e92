"""Smart HTTP: two requests per repository on a cold pass, one on an unchanged
night (issue 21's fleet target; git/protocol.hpp, CapabilityMemo).

lighttpd + git http-backend (harness.SmartHttpLogged) log every request; a job
of several repositories on one origin is run with concurrency 1 so that the
order is known. The first repository of an origin and credential reads the
capability advertisement (GET info/refs); the later ones POST ls-refs at once.
A direct POST the server refuses (a SHA-256 repository: upload-pack dies on the
object format; a renamed repository: 404; a locked one: 403; a path without
protocol v2) falls back to the usual discovery, and the repository ends as it
would without the memo. Another credential on the same host never uses what
one credential learned.
"""

from __future__ import annotations

import unittest

import harness

SERVE = None
HTTP = None
USERS = {"alice": "alice-token-7f3e", "bob": "bob-token-91c2"}
ENV = {"SNAP_ALICE": USERS["alice"], "SNAP_BOB": USERS["bob"]}
UPSTREAMS: dict[str, harness.Upstream] = {}


def setUpModule():
    global SERVE, HTTP
    harness.setup_module()
    SERVE = harness.mkdtemp("serve-")
    for name in ("app", "one", "two", "three", "locked"):
        UPSTREAMS[name] = harness.build_rich(SERVE, f"{name}.git")
    UPSTREAMS["sha"] = harness.build_sha256(SERVE, "sha.git")
    HTTP = harness.SmartHttpLogged(SERVE, USERS, renamed_to="app.git")


def tearDownModule():
    if HTTP is not None:
        HTTP.stop()
    harness.teardown_module()


def repo(name: str, user: str | None = "alice", route: str = "auth", path: str | None = None) -> dict:
    entry = {"name": name, "url": HTTP.url_for(path or f"{name}.git", route)}
    if user is not None:
        entry["credentials"] = {"username": user, "token_env": f"SNAP_{user.upper()}"}
    return entry


class HttpRequests(harness.Assertions, unittest.TestCase):
    def run_job(self, ws, repos, engine="stream", expect_ok=True):
        """Snapshot `repos` in that order; the requests the server saw for the run."""
        mark = HTTP.mark()
        run = ws.snapshot(repos, {"allow_http": True, "engine": engine, "concurrency": 1, "retries": 0},
                          env_extra=ENV)
        for token in USERS.values():
            self.assertNotIn(token.encode(), run.stdout + run.stderr)
        result = self.assertRunOk(run) if expect_ok else run.out["result"]
        return result, HTTP.requests()[mark:]

    def requests_of(self, requests, path):
        """(method, what, status, user) of the requests under `path`, in order."""
        out = []
        for method, url, status, user in requests:
            if url.startswith(path + "/"):
                out.append((method, url[len(path) + 1:], status, user))
        return out

    def manifest(self, ws, name):
        return ws.manifest(name, ws.latest(name)["snapshot_id"])

    def assertRestores(self, ws, name, upstream):
        target = ws.new_target(name)
        self.assertRunOk(ws.restore(name, target))
        self.assertRepoEquals(target, upstream)

    def test_later_repositories_of_an_origin_skip_the_advertisement(self):
        ws = harness.Workspace()
        names = ["app", "one", "two", "three"]
        cold = [repo(n) for n in names]
        _, requests = self.run_job(ws, cold)
        ls_refs_and_fetch = [("POST", "git-upload-pack", 200, "alice")] * 2
        self.assertEqual(self.requests_of(requests, "/auth/app.git"),
                         [("GET", "info/refs", 200, "alice")] + ls_refs_and_fetch)
        for name in names[1:]:
            with self.subTest(name=name, night="cold"):
                self.assertEqual(self.requests_of(requests, f"/auth/{name}.git"), ls_refs_and_fetch)
        for name in names:
            self.assertRestores(ws, name, UPSTREAMS[name])
        # An unchanged night: one request for each later repository (each job learns again).
        out, requests = self.run_job(ws, cold)
        self.assertEqual(out["summary"]["unchanged"], len(names), out["summary"])
        self.assertEqual(self.requests_of(requests, "/auth/app.git"),
                         [("GET", "info/refs", 200, "alice"), ("POST", "git-upload-pack", 200, "alice")])
        for name in names[1:]:
            with self.subTest(name=name, night="unchanged"):
                self.assertEqual(self.requests_of(requests, f"/auth/{name}.git"),
                                 [("POST", "git-upload-pack", 200, "alice")])

    def test_a_sha256_repository_on_the_same_origin_falls_back_and_restores_exactly(self):
        ws = harness.Workspace()
        _, requests = self.run_job(ws, [repo("app"), repo("sha"), repo("one")])
        # Its upload-pack refuses ls-refs in the origin's sha1 (HTTP 200, empty body, "fatal:
        # mismatched object format"): then the advertisement, ls-refs and the fetch in sha256.
        self.assertEqual(self.requests_of(requests, "/auth/sha.git"),
                         [("POST", "git-upload-pack", 200, "alice"), ("GET", "info/refs", 200, "alice"),
                          ("POST", "git-upload-pack", 200, "alice"), ("POST", "git-upload-pack", 200, "alice")])
        self.assertIn("mismatched object format: server sha256; client sha1", HTTP.log())
        self.assertEqual(self.manifest(ws, "sha")["object_format"], "sha256")
        self.assertRestores(ws, "sha", UPSTREAMS["sha"])
        # The last discovery is what the memo holds: the next sha1 repository pays the same once.
        self.assertEqual(len(self.requests_of(requests, "/auth/one.git")), 4)
        self.assertEqual(self.manifest(ws, "one")["object_format"], "sha1")
        self.assertRestores(ws, "one", UPSTREAMS["one"])

    def test_a_refused_direct_request_falls_back_to_discovery(self):
        ws = harness.Workspace()
        out, requests = self.run_job(ws, [repo("app"), repo("renamed"), repo("locked"), repo("one")],
                                     expect_ok=False)
        entries = {e["name"]: e for e in out["repositories"]}
        # A renamed repository: its POST path is gone (404), its info/refs redirects within the origin,
        # and the session goes on where the redirect led.
        self.assertEqual(self.requests_of(requests, "/auth/renamed.git"),
                         [("POST", "git-upload-pack", 404, "alice"), ("GET", "info/refs", 301, "alice")])
        self.assertEqual(entries["renamed"]["status"], "ok", entries["renamed"])
        self.assertRestores(ws, "renamed", UPSTREAMS["app"])
        # A repository whose POSTs are forbidden: the direct request, discovery, ls-refs again, and
        # the error is the one it would be without the memo.
        locked = [(m, what, status) for m, what, status, _ in self.requests_of(requests, "/auth/locked.git")]
        self.assertEqual(locked, [("POST", "git-upload-pack", 403), ("GET", "info/refs", 200),
                                  ("POST", "git-upload-pack", 403)])
        self.assertEqual((entries["locked"]["status"], entries["locked"]["error"]), ("failed", "GitError"))
        self.assertIn("HTTP 403", entries["locked"]["message"])
        # The repository after them still skips the advertisement.
        self.assertEqual(entries["one"]["status"], "ok", entries["one"])
        self.assertEqual(self.requests_of(requests, "/auth/one.git"),
                         [("POST", "git-upload-pack", 200, "alice")] * 2)

    def test_a_path_without_protocol_v2_still_gets_the_cli_engine(self):
        ws = harness.Workspace()
        out, requests = self.run_job(ws, [repo("app", user=None, route="git"), repo("one", user=None, route="v0")],
                                     engine="auto")
        entry = {e["name"]: e for e in out["repositories"]}["one"]
        self.assertEqual(entry["status"], "ok", entry)
        self.assertEqual(self.manifest(ws, "one")["engine"], "cli")
        self.assertIn("protocol v2", self.manifest(ws, "one")["engine_fallback"])
        self.assertEqual(self.requests_of(requests, "/v0/one.git")[:2],
                         [("POST", "git-upload-pack", 200, "-"), ("GET", "info/refs", 200, "-")])
        self.assertRestores(ws, "one", UPSTREAMS["one"])

    def test_another_credential_on_the_same_origin_does_not_share_what_one_learned(self):
        ws = harness.Workspace()
        repos = [repo("app", "alice"), repo("one", "bob"), repo("two", None, route="git"),
                 repo("three", "alice"), repo("sha", "bob")]
        _, requests = self.run_job(ws, repos)
        gets = [(path, user) for method, path, _, user in requests if method == "GET"]
        self.assertEqual(gets, [("/auth/app.git/info/refs", "alice"), ("/auth/one.git/info/refs", "bob"),
                                ("/git/two.git/info/refs", "-"), ("/auth/sha.git/info/refs", "bob")])
        self.assertEqual(self.requests_of(requests, "/auth/three.git"),
                         [("POST", "git-upload-pack", 200, "alice")] * 2)


if __name__ == "__main__":
    unittest.main()
