"""Credentials stay with their origin (issue 14, item 1).

The repository is served by lighttpd + git http-backend with basic auth,
behind hostile_http.ForwardingFront A (the configured URL). A second front B,
on another port, serves the same repository anonymously and records every
Authorization header it is sent. A answers info/refs, or the upload-pack
POST, with a 302 to B. With options.http.follow_redirects at its default
(same_origin) the repository fails with a GitError naming the redirect, and
B never sees a credential; with any_without_credentials the snapshot
follows the redirect and succeeds, B still seeing no credential; a redirect
within A's origin keeps working (credentials included), and `never` refuses
it. Both engines.
"""

import base64
import unittest

import harness
import hostile_http

SERVE = None
HTTP = None
TOKEN = "origin-bound-token-5d1f0c"
TOKEN_ENV = "SNAP_ORIGIN_TOKEN"
UPSTREAM = None


def setUpModule():
    global SERVE, HTTP, UPSTREAM
    harness.setup_module()
    SERVE = harness.mkdtemp("serve-")
    UPSTREAM = harness.build_rich(SERVE, "app")
    HTTP = harness.SmartHttp(SERVE, {"u": TOKEN})


def tearDownModule():
    harness.teardown_module()


INFO_REFS = (r"/git/app\.git/info/refs", ("GET",))
POST = (r"/git/app\.git/git-upload-pack$", ("POST",))


class CredentialOrigin(harness.Assertions, unittest.TestCase):
    def fronts(self, *redirect):
        """Front A (the configured origin) and front B (another port, anonymous, recording)."""
        auth = "Basic " + base64.b64encode(f"u:{TOKEN}".encode()).decode()
        home = hostile_http.ForwardingFront(HTTP.port)
        other = hostile_http.ForwardingFront(HTTP.port, inject_auth=auth)
        self.addCleanup(home.stop)
        self.addCleanup(other.stop)
        return home, other

    def snapshot(self, engine, url, **http_options):
        ws = harness.Workspace()
        repo = {"url": url, "name": "app", "credentials": {"token_env": TOKEN_ENV, "username": "u"}}
        options = {"allow_http": True, "engine": engine, "retries": 0}
        if http_options:
            options["http"] = http_options
        run = ws.snapshot([repo], options, env_extra={TOKEN_ENV: TOKEN})
        self.assertNotIn(TOKEN.encode(), run.stdout + run.stderr)
        return ws, run

    def test_redirect_to_another_origin_is_refused(self):
        for engine in ("stream", "cli"):
            for where in (INFO_REFS, POST):
                with self.subTest(engine=engine, where=where[0]):
                    home, other = self.fronts()
                    home.redirects = [(where[0], other.base + "{path}", where[1])]
                    ws, run = self.snapshot(engine, home.url_for("app.git"))
                    out = self.assertRunFails(run, 1, "GitError")
                    entry = out["result"]["repositories"][0]
                    self.assertEqual((entry["status"], entry["error"]), ("failed", "GitError"), entry)
                    if engine == "stream" or where is INFO_REFS:
                        self.assertIn("redirect", entry["message"], entry)
                        self.assertIn(f"127.0.0.1:{other.port}", entry["message"], entry)
                    self.assertEqual(other.authorizations(), [], other.requests)
                    self.assertEqual(ws.store.keys("repos/"), [], "nothing may be committed")

    def test_any_without_credentials_follows_without_sending_any(self):
        for engine in ("stream", "cli"):
            with self.subTest(engine=engine):
                home, other = self.fronts()
                home.redirects = [(INFO_REFS[0], other.base + "{path}", INFO_REFS[1])]
                ws, run = self.snapshot(engine, home.url_for("app.git"), follow_redirects="any_without_credentials")
                result = self.assertRunOk(run)
                self.assertEqual(result["repositories"][0]["status"], "ok", result)
                self.assertTrue(other.requests, "the redirect was not followed")
                self.assertEqual(other.authorizations(), [], other.requests)

    def test_another_origin_asking_for_credentials_gets_none(self):
        # B wants credentials too (it forwards to lighttpd as it is): the stream engine sends
        # none, and the cli engine's credential helper answers nothing for B's host and port.
        for engine in ("stream", "cli"):
            with self.subTest(engine=engine):
                home, _ = self.fronts()
                other = hostile_http.ForwardingFront(HTTP.port)
                self.addCleanup(other.stop)
                home.redirects = [(INFO_REFS[0], other.base + "{path}", INFO_REFS[1])]
                ws, run = self.snapshot(engine, home.url_for("app.git"), follow_redirects="any_without_credentials")
                out = self.assertRunFails(run, 1, "GitError")
                self.assertEqual(out["result"]["repositories"][0]["status"], "failed", out)
                self.assertTrue(other.requests, "the redirect was not followed")
                self.assertEqual(other.authorizations(), [], other.requests)

    def test_same_origin_redirect_keeps_working_and_never_refuses_it(self):
        for engine in ("stream", "cli"):
            with self.subTest(engine=engine):
                home, other = self.fronts()
                # A renamed repository: old.git moved to app.git on the same origin.
                home.redirects = [(r"/git/old\.git/info/refs",
                                   "{front}/git/app.git/info/refs?service=git-upload-pack", ("GET",))]
                ws, run = self.snapshot(engine, home.url_for("old.git"))
                result = self.assertRunOk(run)
                self.assertEqual(result["repositories"][0]["status"], "ok", result)
                self.assertTrue(home.authorizations(), "the credentials went nowhere")
                self.assertEqual(other.requests, [])
                ws, run = self.snapshot(engine, home.url_for("old.git"), follow_redirects="never")
                out = self.assertRunFails(run, 1, "GitError")
                self.assertEqual(out["result"]["repositories"][0]["status"], "failed", out)

    def test_token_in_the_url_is_refused_and_never_printed(self):
        # https://TOKEN@host/... (a form some forges document) and user:password.
        for userinfo in (TOKEN, f"u:{TOKEN}"):
            with self.subTest(userinfo=userinfo.replace(TOKEN, "<token>")):
                ws = harness.Workspace()
                url = f"http://{userinfo}@127.0.0.1:{HTTP.port}/git/app.git"
                run = ws.snapshot([{"url": url, "name": "app"}], {"allow_http": True},
                                  args=["--log-level", "trace"])
                out = self.assertRunFails(run, 1, "PayloadError")
                self.assertIn("credentials.token_env", out["message"], out)
                needles = harness.secret_forms(TOKEN)
                self.assertEqual([n for n in needles if n in run.stdout + run.stderr], [], run.describe())
                self.assertEqual(harness.find_bytes_in_tree(ws.root, needles), [], "the token reached a file")


if __name__ == "__main__":
    unittest.main()
