"""Sources (issue 18): the payload's `sources` discover repositories through
a forge's API (the fakes of forge_fake.py, on 127.0.0.1), and what they
discover is snapshotted and restored from real git repositories served by
lighttpd + git http-backend, with the source's token on both paths.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
import unittest
from pathlib import Path

import harness
from forge_fake import BitbucketFake, GiteaFake, GitHubFake, GitLabFake, Repo
from harness import Assertions, SmartHttp, Workspace

TOKEN = "forge-token-3f9a1c77e2"


def setUpModule():
    harness.setup_module()


def tearDownModule():
    harness.teardown_module()


_template: Path | None = None


def template_repo() -> Path:
    """A bare repository with one commit on main and a tag (built once)."""
    global _template
    if _template is None:
        up = harness.new_upstream(harness.mkdtemp("src-tpl-"), "template")
        up.git("checkout", "-q", "-b", "main")
        up.commit_file("README", "discovered\n")
        up.git("tag", "v1")
        up.push("main", "v1")
        up.set_head("refs/heads/main")
        harness.git("pack-refs", "--all", git_dir=up.bare)
        shutil.rmtree(up.bare / "hooks")
        _template = up.bare
    return _template


class SourcesTest(Assertions, unittest.TestCase):
    """One lighttpd serving <root>/<full name>.git for every fake."""

    @classmethod
    def setUpClass(cls):
        cls.root = harness.mkdtemp("src-git-")
        users = {u: TOKEN for u in ("x-access-token", "oauth2", "x-token-auth")}
        cls.http = SmartHttp(cls.root, users)

    @classmethod
    def tearDownClass(cls):
        cls.http.stop()

    def serve(self, full_name: str, path: str | None = None) -> str:
        """A real repository at `path` (default <full_name>.git); its clone URL."""
        rel = path or f"{full_name}.git"
        dest = self.root / rel
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(template_repo(), dest, copy_function=os.link)
        return self.http.url_for(rel)

    def serve_wiki(self, path: str) -> Path:
        """A wiki repository at `path` whose refs differ from the template's (one more branch),
        so a restore shows which of the two was snapshotted."""
        self.serve("", path)
        wiki = self.root / path
        harness.git("update-ref", "refs/heads/wiki-home", "refs/heads/main", git_dir=wiki)
        return wiki

    def host(self) -> str:
        return f"127.0.0.1_{self.http.port}"

    def fake(self, cls, **kw):
        f = cls(token=TOKEN, **kw)
        self.addCleanup(f.stop)
        return f

    def payload(self, ws: Workspace, sources: list[dict], repositories: list[dict] | None = None,
                options: dict | None = None) -> dict:
        p = ws.snapshot_payload(repositories or [], {"allow_http": True, **(options or {})})
        if not repositories:
            del p["repositories"]
        p["sources"] = sources
        return p

    def run_ok(self, ws: Workspace, payload: dict, args=()) -> dict:
        run = ws.run(payload, args=args, env_extra={"FORGE_TOKEN": TOKEN})
        self.assertNotIn(TOKEN, run.stdout.decode() + run.stderr.decode())
        return self.assertRunOk(run)

    @staticmethod
    def statuses(result: dict) -> dict[str, str]:
        return {r["name"]: r["status"] for r in result["repositories"]}


class GitHubTest(SourcesTest):
    def github_org(self, extra: int = 0) -> GitHubFake:
        """acme: app (with a wiki), lib, old-tool (archived), forked (a fork),
        secret (private), plus `extra` listed repositories named filler-N."""
        gh = self.fake(GitHubFake, login="octo")
        gh.add(Repo("acme/app", self.serve("acme/app"), has_wiki=True, topics=["backend"]))
        self.serve("acme/app.wiki")
        gh.add(Repo("acme/lib", self.serve("acme/lib"), topics=["backend", "library"]))
        gh.add(Repo("acme/old-tool", self.serve("acme/old-tool"), archived=True, pushed_at="2019-01-01T00:00:00Z"))
        gh.add(Repo("acme/forked", self.serve("acme/forked"), fork=True))
        gh.add(Repo("acme/secret", self.serve("acme/secret"), private=True))
        for i in range(extra):
            gh.add(Repo(f"acme/filler-{i:03}", self.http.url_for(f"acme/filler-{i:03}.git")))
        return gh

    def source(self, gh: GitHubFake, **kw) -> dict:
        s = {"type": "github", "api_url": gh.base_url, "org": "acme", "credentials": {"token_env": "FORGE_TOKEN"}}
        s.update(kw)
        return s

    def test_org_discovery_snapshot_and_restore(self):
        gh = self.github_org(extra=230)
        ws = Workspace("src-gh-")
        result = self.run_ok(ws, self.payload(ws, [self.source(gh, exclude=["acme/filler-*"], forks=False,
                                                               include_wikis=True)]))
        h = self.host()
        self.assertEqual(self.statuses(result), {f"{h}/acme/app": "ok", f"{h}/acme/app.wiki": "ok",
                                                 f"{h}/acme/lib": "ok", f"{h}/acme/old-tool": "ok",
                                                 f"{h}/acme/secret": "ok"})
        src = result["sources"][0]
        self.assertEqual((src["status"], src["listed"], src["kept"], src["wikis"]), ("ok", 235, 4, 1))
        self.assertEqual(src["removed"]["exclude"]["count"], 230)
        self.assertEqual(src["removed"]["forks"]["names"], ["acme/forked"])
        # 235 repositories at per_page=100: exactly three pages, every one with the token.
        self.assertEqual(src["api_requests"], 3)
        self.assertEqual([r["query"].get("page", "1") for r in gh.requests], ["1", "2", "3"])
        self.assertTrue(all(r["token"] and r["query"]["per_page"] == "100" for r in gh.requests))
        # Restore a discovered repository and its wiki: the same refs as served.
        for name, path in ((f"{h}/acme/app", "acme/app.git"), (f"{h}/acme/app.wiki", "acme/app.wiki.git")):
            target = ws.root / "restore" / name.replace("/", "_")
            self.assertRunOk(ws.restore(name, target))
            self.assertEqual(harness.refs_of(target), harness.refs_of(self.root / path))
        # list works on discovered names like any other.
        listed = self.assertRunOk(ws.list(f"{h}/acme/lib"))
        self.assertIn(f"{h}/acme/lib", json.dumps(listed))

    def test_filters_in_order_and_dry_run_report(self):
        gh = self.github_org()
        ws = Workspace("src-gh-dry-")
        source = self.source(gh, include=["ACME/*"], exclude=["acme/s*"], archived=False, forks=False,
                             topics=["backend"], pushed_since="2020-01-01T00:00:00Z")
        result = self.run_ok(ws, self.payload(ws, [source]), args=["--dry-run"])
        src = result["sources"][0]
        self.assertEqual({k: v["names"] for k, v in src["removed"].items()},
                         {"exclude": ["acme/secret"], "archived": ["acme/old-tool"], "forks": ["acme/forked"]})
        self.assertEqual(src["repositories"], [f"{self.host()}/acme/app", f"{self.host()}/acme/lib"])
        self.assertEqual([c["status"] for c in src["api_calls"]], [200])
        self.assertTrue(src["api_calls"][0]["url"].startswith(gh.base_url + "/orgs/acme/repos?"))
        self.assertTrue(result["dry_run"])
        self.assertFalse(ws.storage_dir.joinpath("sources").exists(), "a dry run writes nothing")
        # topics and visibility filters on their own.
        source = self.source(gh, topics=["library"], visibility="public")
        src = self.run_ok(ws, self.payload(ws, [source]), args=["--dry-run"])["sources"][0]
        self.assertEqual(src["repositories"], [f"{self.host()}/acme/lib"])
        source = self.source(gh, visibility="private")
        src = self.run_ok(ws, self.payload(ws, [source]), args=["--dry-run"])["sources"][0]
        self.assertEqual(src["repositories"], [f"{self.host()}/acme/secret"])

    def test_user_scope_lists_private_repositories_of_the_token_owner(self):
        gh = self.fake(GitHubFake, login="octo")
        gh.add(Repo("octo/pub", self.serve("octo/pub")))
        gh.add(Repo("octo/priv", self.serve("octo/priv"), private=True))
        ws = Workspace("src-gh-user-")
        mine = self.source(gh)
        del mine["org"]
        mine["user"] = "octo"
        src = self.run_ok(ws, self.payload(ws, [mine]), args=["--dry-run"])["sources"][0]
        self.assertEqual(sorted(src["repositories"]), [f"{self.host()}/octo/priv", f"{self.host()}/octo/pub"])
        self.assertEqual([r["path"] for r in gh.requests], ["/user", "/user/repos"])
        # Someone else's user: /users/{u}/repos, public only.
        gh.login = "someone-else"
        gh.requests.clear()
        src = self.run_ok(ws, self.payload(ws, [mine]), args=["--dry-run"])["sources"][0]
        self.assertEqual(src["repositories"], [f"{self.host()}/octo/pub"])
        self.assertEqual([r["path"] for r in gh.requests], ["/user", "/users/octo/repos"])

    def test_team_scope(self):
        gh = self.github_org()
        gh.teams["acme/core"] = ["acme/lib"]
        ws = Workspace("src-gh-team-")
        team = self.source(gh)
        del team["org"]
        team["team"] = "acme/core"
        src = self.run_ok(ws, self.payload(ws, [team]), args=["--dry-run"])["sources"][0]
        self.assertEqual(src["repositories"], [f"{self.host()}/acme/lib"])
        self.assertEqual(gh.requests[0]["path"], "/orgs/acme/teams/core/repos")

    def test_rate_limits_and_5xx_are_waited_out(self):
        gh = self.github_org(extra=150)
        ws = Workspace("src-gh-rate-")
        # A 502 burst, then a secondary limit (403 + Retry-After), then a spent quota.
        gh.fail_next(2, 502)
        gh.fail_next(1, 403, {"Retry-After": "1"}, {"message": "You have exceeded a secondary rate limit."})
        gh.spend_quota_then_reset(reset_in_s=1)
        start = time.monotonic()
        src = self.run_ok(ws, self.payload(ws, [self.source(gh, include=["acme/app"])]),
                          args=["--dry-run"])["sources"][0]
        self.assertGreaterEqual(time.monotonic() - start, 1.0)
        self.assertEqual(src["status"], "ok")
        self.assertEqual(src["listed"], 155)
        self.assertEqual([c["status"] for c in src["api_calls"]][:4], [502, 502, 403, 403])
        self.assertEqual([c["status"] for c in src["api_calls"]][-2:], [200, 200])
        self.assertGreaterEqual(src["rate_limit_waits"], 2)

    def test_a_rate_limit_reset_beyond_the_cap_fails_that_source_only(self):
        gh = self.github_org()
        gt = self.fake(GiteaFake)
        gt.add(Repo("team/svc", self.serve("team/svc")))
        ws = Workspace("src-gh-cap-")
        gh.spend_quota_then_reset(reset_in_s=600)
        capped = self.source(gh, max_rate_limit_wait_s=2)
        other = {"type": "gitea", "api_url": gt.base_url + "/api/v1", "org": "team",
                 "credentials": {"token_env": "FORGE_TOKEN"}}
        start = time.monotonic()
        run = ws.run(self.payload(ws, [capped, other]), env_extra={"FORGE_TOKEN": TOKEN})
        self.assertLess(time.monotonic() - start, 60, "the source must not wait for a reset beyond its cap")
        out = self.assertRunFails(run, 2, "PartialFailure")
        src = out["result"]["sources"][0]
        self.assertEqual(src["status"], "failed")
        self.assertRegex(src["message"], r"the API rate limit resets at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "
                                         r"\(\d+ s from now\), later than this source waits \(max_rate_limit_wait_s: 2\)")
        self.assertEqual(self.statuses(out["result"]), {f"{self.host()}/team/svc": "ok"})
        self.assertEqual(out["result"]["sources"][1]["status"], "ok")
        self.assertNotIn(TOKEN, run.stdout.decode() + run.stderr.decode())
        # The setting is validated.
        bad = self.source(gh, max_rate_limit_wait_s=86401)
        out = self.assertRunFails(ws.run(self.payload(ws, [bad]), env_extra={"FORGE_TOKEN": TOKEN}), 1,
                                  "PayloadError")
        self.assertIn("sources[0].max_rate_limit_wait_s", out["message"])

    def test_auth_failures_fail_the_source_and_the_job_goes_on(self):
        gh = self.github_org()
        ws = Workspace("src-gh-auth-")
        explicit = {"name": "explicit", "url": self.serve("solo/explicit"),
                    "credentials": {"token_env": "FORGE_TOKEN"}}
        wrong = self.source(gh, credentials={"token_env": "WRONG_TOKEN"})
        payload = self.payload(ws, [wrong], [explicit])
        run = ws.run(payload, env_extra={"FORGE_TOKEN": TOKEN, "WRONG_TOKEN": "not-the-token-ab12cd"})
        out = self.assertRunFails(run, 2, "PartialFailure")
        self.assertIn("1 source failed", out["message"])
        src = out["result"]["sources"][0]
        self.assertEqual(src["status"], "failed")
        self.assertIn("HTTP 401, authentication failed (check the token in WRONG_TOKEN): Bad credentials",
                      src["message"])
        self.assertEqual(self.statuses(out["result"]), {"explicit": "ok"})
        text = run.stdout.decode() + run.stderr.decode()
        self.assertNotIn("not-the-token-ab12cd", text)
        self.assertNotIn(TOKEN, text)
        # 403 without rate-limit headers: access denied, no retry; the only source: exit 1.
        gh.fail_next(1, 403, {}, {"message": "Resource not accessible by personal access token"})
        run = ws.run(self.payload(ws, [self.source(gh)]), env_extra={"FORGE_TOKEN": TOKEN})
        out = self.assertRunFails(run, 1, "GitError")
        self.assertIn("HTTP 403, access denied", out["message"])
        self.assertEqual(len([r for r in gh.requests if r["status"] == 403]), 1)
        # Unknown organization: 404 named.
        missing = self.source(gh, org="nobody")
        out = self.assertRunFails(ws.run(self.payload(ws, [missing]), env_extra={"FORGE_TOKEN": TOKEN}), 1, "GitError")
        self.assertIn('the org "nobody" does not exist', out["message"])

    def test_max_repositories_fails_the_source_instead_of_truncating(self):
        gh = self.github_org()
        ws = Workspace("src-gh-max-")
        out = self.assertRunFails(ws.run(self.payload(ws, [self.source(gh, max_repositories=4)]),
                                         env_extra={"FORGE_TOKEN": TOKEN}), 1, "GitError")
        self.assertIn("5 repositories are left after the filters, more than max_repositories (4)", out["message"])
        self.assertEqual(out["result"]["summary"]["total"], 0)

    def test_gone_repositories_keep_their_snapshots(self):
        gh = self.github_org()
        ws = Workspace("src-gh-gone-")
        payload = self.payload(ws, [self.source(gh, include=["acme/app", "acme/lib"])])
        first = self.run_ok(ws, payload)
        self.assertEqual(first["gone"], [])
        gh.remove("acme/lib")
        payload = self.payload(ws, [self.source(gh, include=["acme/app", "acme/lib"])])
        second = self.run_ok(ws, payload)
        gone = f"{self.host()}/acme/lib"
        self.assertEqual(second["gone"], [gone])
        self.assertEqual(second["sources"][0]["gone"], [gone])
        self.assertEqual(second["summary"]["gone"], 1)
        self.assertEqual(list(self.statuses(second)), [f"{self.host()}/acme/app"])
        report = json.loads(ws.path_of(f"jobs/{ws.last_job_id}.json").read_text())
        self.assertEqual(report["gone"], [gone])
        # Its snapshot is still there and restorable.
        target = ws.root / "restored-gone"
        self.assertRunOk(ws.restore(gone, target))
        self.assertEqual(harness.refs_of(target), harness.refs_of(self.root / "acme/lib.git"))

    def test_a_name_collision_names_both_urls(self):
        gh = self.github_org()
        ws = Workspace("src-gh-collide-")
        clash = f"{self.host()}/acme/app"
        explicit = {"name": clash, "url": self.serve("other/app"), "credentials": {"token_env": "FORGE_TOKEN"}}
        run = ws.run(self.payload(ws, [self.source(gh, include=["acme/app"])], [explicit]),
                     env_extra={"FORGE_TOKEN": TOKEN})
        out = self.assertRunFails(run, 2, "PartialFailure")
        message = out["result"]["sources"][0]["message"]
        self.assertIn(self.http.url_for("acme/app.git"), message)
        self.assertIn(self.http.url_for("other/app.git"), message)
        self.assertEqual(self.statuses(out["result"]), {clash: "ok"})

    def test_sharding_a_discovered_fleet_across_four_processes(self):
        gh = self.fake(GitHubFake, login="octo")
        names = [f"fleet/r{i:02}" for i in range(24)]
        for n in names:
            gh.add(Repo(n, self.serve(n)))
        ws = Workspace("src-gh-shard-")
        seen: list[str] = []
        job_id = "sharded-sources"
        for index in range(4):
            payload = self.payload(ws, [self.source(gh, org="fleet")],
                                   options={"shard": {"count": 4, "index": index}})
            payload["job_id"] = job_id
            result = self.run_ok(ws, payload)
            self.assertEqual(result["shard"]["of_total"], 24)
            self.assertTrue(all(s == "ok" for s in self.statuses(result).values()))
            seen += list(self.statuses(result))
        self.assertEqual(sorted(seen), sorted(f"{self.host()}/{n}" for n in names), "each exactly once")

        # The next night two repositories left the organization: every shard lists the source, so
        # several shards may name them; the merged report names each once and counts it once.
        gh.remove("fleet/r03")
        gh.remove("fleet/r17")
        for index in range(4):
            payload = self.payload(ws, [self.source(gh, org="fleet")],
                                   options={"shard": {"count": 4, "index": index}})
            payload["job_id"] = job_id + "-2"
            self.run_ok(ws, payload)
        merge = ws.run({"version": 1, "action": "merge_reports", "storage": ws.storage(),
                        "merge_reports": {"job_id": job_id + "-2"}})
        self.assertEqual(merge.rc, 0, merge.out)
        merged = merge.out["result"]
        h = self.host()
        self.assertEqual(sorted(merged["gone"]), [f"{h}/fleet/r03", f"{h}/fleet/r17"])
        self.assertEqual((merged["summary"]["gone"], merged["summary"]["sources_failed"]), (2, 0))
        self.assertEqual(merged["summary"]["total"], 22)


class GitLabTest(SourcesTest):
    def test_group_with_subgroups_via_x_next_page_and_user_scope(self):
        gl = self.fake(GitLabFake, send_link=False)
        gl.add(Repo("grp/top", self.serve("grp/top"), has_wiki=True))
        self.serve("grp/top.wiki")
        gl.add(Repo("grp/sub/mid", self.serve("grp/sub/mid")))
        gl.add(Repo("grp/sub/deep/leaf", self.serve("grp/sub/deep/leaf"), fork=True))
        gl.add(Repo("grp/sub/old", self.serve("grp/sub/old"), archived=True))
        for i in range(120):
            gl.add(Repo(f"grp/bulk/p{i:03}", self.http.url_for(f"grp/bulk/p{i:03}.git")))
        gl.add(Repo("alice/notes", self.serve("alice/notes")))
        ws = Workspace("src-gl-")
        group = {"type": "gitlab", "api_url": gl.base_url + "/api/v4", "group": "grp",
                 "credentials": {"token_env": "FORGE_TOKEN"}, "exclude": ["grp/bulk/**"], "archived": False,
                 "include_wikis": True}
        user = {"type": "gitlab", "api_url": gl.base_url + "/api/v4", "user": "alice",
                "credentials": {"token_env": "FORGE_TOKEN"}}
        result = self.run_ok(ws, self.payload(ws, [group, user]))
        h = self.host()
        self.assertEqual(self.statuses(result), {f"{h}/grp/top": "ok", f"{h}/grp/top.wiki": "ok",
                                                 f"{h}/grp/sub/mid": "ok", f"{h}/grp/sub/deep/leaf": "ok",
                                                 f"{h}/alice/notes": "ok"})
        g = result["sources"][0]
        self.assertEqual((g["listed"], g["api_requests"]), (124, 2))
        self.assertEqual(gl.requests[0]["path"], "/api/v4/groups/grp/projects")
        self.assertEqual(gl.requests[0]["query"]["include_subgroups"], "true")
        self.assertEqual(gl.requests[1]["query"]["page"], "2")
        target = ws.root / "restored-leaf"
        self.assertRunOk(ws.restore(f"{h}/grp/sub/deep/leaf", target))
        self.assertEqual(harness.refs_of(target), harness.refs_of(self.root / "grp/sub/deep/leaf.git"))

    def test_subgroup_scope_and_429_retry_after(self):
        gl = self.fake(GitLabFake)
        gl.add(Repo("grp/top", self.serve("grp/top")))
        gl.add(Repo("grp/sub/mid", self.serve("grp/sub/mid")))
        gl.fail_next(1, 429, {"Retry-After": "1"}, {"message": "Retry later"})
        ws = Workspace("src-gl-sub-")
        sub = {"type": "gitlab", "api_url": gl.base_url + "/api/v4", "group": "grp/sub",
               "credentials": {"token_env": "FORGE_TOKEN"}}
        src = self.run_ok(ws, self.payload(ws, [sub]), args=["--dry-run"])["sources"][0]
        self.assertEqual(src["repositories"], [f"{self.host()}/grp/sub/mid"])
        self.assertEqual([c["status"] for c in src["api_calls"]], [429, 200])
        self.assertTrue(src["api_calls"][1]["url"].startswith(gl.base_url + "/api/v4/groups/grp%2Fsub/projects"))


    def test_user_projects_by_keyset_pagination(self):
        gl = self.fake(GitLabFake)
        gl.add(Repo("alice/notes", self.serve("alice/notes")))
        for i in range(129):
            gl.add(Repo(f"alice/p{i:03}", self.http.url_for(f"alice/p{i:03}.git")))
        ws = Workspace("src-gl-keyset-")
        user = {"type": "gitlab", "api_url": gl.base_url + "/api/v4", "user": "alice",
                "credentials": {"token_env": "FORGE_TOKEN"}, "include": ["alice/notes"]}
        src = self.run_ok(ws, self.payload(ws, [user]))["sources"][0]
        self.assertEqual((src["listed"], src["repositories"]), (130, [f"{self.host()}/alice/notes"]))
        # 100 + 29, then the empty page without Link that ends a keyset listing.
        self.assertEqual((src["api_requests"], gl.keyset_requests), (3, 3))
        queries = [r["query"] for r in gl.requests]
        self.assertTrue(all(q["pagination"] == "keyset" and q["order_by"] == "id" and q["sort"] == "asc"
                            and "page" not in q for q in queries), queries)
        self.assertNotIn("id_after", queries[0])
        self.assertLess(int(queries[1]["id_after"]), int(queries[2]["id_after"]))


class GiteaTest(SourcesTest):
    def test_org_pages_of_fifty_and_user(self):
        gt = self.fake(GiteaFake)
        gt.add(Repo("team/svc", self.serve("team/svc"), has_wiki=True))
        self.serve("team/svc.wiki")
        gt.add(Repo("team/mirror", self.serve("team/mirror"), fork=True))
        for i in range(60):
            gt.add(Repo(f"team/junk-{i:02}", self.http.url_for(f"team/junk-{i:02}.git")))
        gt.add(Repo("bob/dots", self.serve("bob/dots")))
        ws = Workspace("src-gitea-")
        org = {"type": "gitea", "api_url": gt.base_url + "/api/v1", "org": "team",
               "credentials": {"token_env": "FORGE_TOKEN"}, "exclude": ["team/junk-*"], "forks": False,
               "include_wikis": True}
        user = {"type": "gitea", "api_url": gt.base_url + "/api/v1", "user": "bob",
                "credentials": {"token_env": "FORGE_TOKEN"}}
        result = self.run_ok(ws, self.payload(ws, [org, user]))
        h = self.host()
        self.assertEqual(self.statuses(result), {f"{h}/team/svc": "ok", f"{h}/team/svc.wiki": "ok",
                                                 f"{h}/bob/dots": "ok"})
        self.assertEqual((result["sources"][0]["listed"], result["sources"][0]["api_requests"]), (62, 2))
        self.assertEqual([r["path"] for r in gt.requests],
                         ["/api/v1/orgs/team/repos", "/api/v1/orgs/team/repos", "/api/v1/users/bob/repos"])


    def test_the_snapshot_subcommand_takes_a_source(self):
        gt = self.fake(GiteaFake)
        gt.add(Repo("bob/dots", self.serve("bob/dots")))
        ws = Workspace("src-gitea-cli-")
        run = ws.run(None, args=["snapshot", "--storage", ws.storage()["url"], "--source", "gitea:user/bob",
                                 "--api-url", gt.base_url + "/api/v1", "--token-env", "FORGE_TOKEN",
                                 "--allow-http", "--dry-run"], env_extra={"FORGE_TOKEN": TOKEN})
        src = self.assertRunOk(run)["sources"][0]
        self.assertEqual((src["type"], src["repositories"]), ("gitea", [f"{self.host()}/bob/dots"]))
        self.assertTrue(all(r["token"] for r in gt.requests))


class BitbucketTest(SourcesTest):
    def test_workspace_next_links(self):
        bb = self.fake(BitbucketFake)
        bb.add(Repo("ws1/api", self.serve("ws1/api")))
        bb.add(Repo("ws1/fork", self.serve("ws1/fork"), fork=True))
        for i in range(105):
            bb.add(Repo(f"ws1/x{i:03}", self.http.url_for(f"ws1/x{i:03}.git")))
        ws = Workspace("src-bb-")
        source = {"type": "bitbucket", "api_url": bb.base_url + "/2.0", "workspace": "ws1",
                  "credentials": {"token_env": "FORGE_TOKEN"}, "include": ["ws1/*"], "exclude": ["ws1/x*"],
                  "forks": False}
        result = self.run_ok(ws, self.payload(ws, [source]))
        self.assertEqual(self.statuses(result), {f"{self.host()}/ws1/api": "ok"})
        src = result["sources"][0]
        self.assertEqual((src["listed"], src["api_requests"]), (107, 2))
        self.assertEqual(bb.requests[0]["query"]["pagelen"], "100")
        # Without a token only public repositories show (all are public here); a wrong one fails.
        bad = dict(source, credentials={"token_env": "BAD"})
        run = ws.run(self.payload(ws, [bad]), env_extra={"BAD": "nope-nope-123"})
        out = self.assertRunFails(run, 1, "GitError")
        self.assertIn("Access token expired or invalid.", out["message"])


    def test_wiki_is_the_clone_url_with_wiki_appended(self):
        # Bitbucket Cloud serves a repository's wiki as a git repository of its own at
        # <clone URL>/wiki (https://bitbucket.org/ws/repo.git/wiki).
        bb = self.fake(BitbucketFake)
        bb.add(Repo("ws9/docs", self.serve("ws9/docs"), has_wiki=True))
        bb.add(Repo("ws9/nowiki", self.serve("ws9/nowiki")))
        wiki = self.serve_wiki("ws9/docs.git/wiki")
        ws = Workspace("src-bb-wiki-")
        source = {"type": "bitbucket", "api_url": bb.base_url + "/2.0", "workspace": "ws9",
                  "credentials": {"token_env": "FORGE_TOKEN"}, "include_wikis": True}
        result = self.run_ok(ws, self.payload(ws, [source]))
        h = self.host()
        self.assertEqual(self.statuses(result), {f"{h}/ws9/docs": "ok", f"{h}/ws9/docs.wiki": "ok",
                                                 f"{h}/ws9/nowiki": "ok"})
        self.assertEqual(result["sources"][0]["wikis"], 1)
        target = ws.root / "restored-wiki"
        self.assertRunOk(ws.restore(f"{h}/ws9/docs.wiki", target))
        self.assertEqual(harness.refs_of(target), harness.refs_of(wiki))
        self.assertNotEqual(harness.refs_of(target), harness.refs_of(self.root / "ws9/docs.git"))


class ScaleTest(SourcesTest):
    def test_ten_thousand_repositories_take_one_hundred_requests(self):
        gh = self.fake(GitHubFake, login="octo")
        gh.add(Repo("big/keep", self.serve("big/keep")))
        for i in range(9999):
            gh.add(Repo(f"big/r{i:05}", f"http://127.0.0.1:{self.http.port}/git/big/r{i:05}.git"))
        ws = Workspace("src-scale-")
        source = {"type": "github", "api_url": gh.base_url, "org": "big",
                  "credentials": {"token_env": "FORGE_TOKEN"}, "include": ["big/keep"]}
        src = self.run_ok(ws, self.payload(ws, [source]), args=["--dry-run"])["sources"][0]
        self.assertEqual((src["listed"], src["api_requests"]), (10000, 100))
        self.assertEqual(src["repositories"], [f"{self.host()}/big/keep"])


SSH_KEY_ENV = "FORGE_SSH_KEY"


class SshTransportTest(SourcesTest):
    """`"transport": "ssh"`: the API is asked with the token, git clones the ssh URLs the forge
    lists (pointing at the harness's sshd) with the source's ssh key; the token never reaches
    git or ssh (argv, environment) nor any output."""

    @classmethod
    def setUpClass(cls):
        import test_ssh
        if os.geteuid() != 0 or not os.access(test_ssh.SSHD, os.X_OK):
            raise unittest.SkipTest("needs root and OpenSSH's sshd (package openssh-server)")
        super().setUpClass()
        keydir = harness.mkdtemp("src-ssh-user-")
        cls.key = test_ssh.keygen(keydir / "id")
        cls.sshd = test_ssh.Sshd((keydir / "id.pub").read_text())

    @classmethod
    def tearDownClass(cls):
        cls.sshd.stop()
        super().tearDownClass()

    def ssh_url(self, rel: str) -> str:
        return self.sshd.url_for(self.root / rel)

    def spy_path(self) -> tuple[str, Path]:
        """A PATH whose `git` and `ssh` log their argv and environment to a file, then run the real ones."""
        spy = harness.mkdtemp("src-ssh-spy-")
        log = spy / "calls.log"
        for tool in ("git", "ssh"):
            real = shutil.which(tool)
            script = spy / tool
            script.write_text(f'#!/bin/sh\n{{ echo "--- {tool} $*"; env; }} >> "{log}"\nexec "{real}" "$@"\n')
            script.chmod(script.stat().st_mode | stat.S_IXUSR)
        return f"{spy}:{os.environ.get('PATH', '/usr/bin:/bin')}", log

    def test_discovery_with_the_token_then_git_over_ssh_with_the_key(self):
        gh = self.fake(GitHubFake, login="octo")
        self.serve("acme/app")
        gh.add(Repo("acme/app", self.http.url_for("acme/app.git"), ssh_url=self.ssh_url("acme/app.git"),
                    has_wiki=True))
        app_wiki = self.serve_wiki("acme/app.wiki.git")
        gh.add(Repo("acme/https-only", self.serve("acme/https-only")))  # no ssh_url: rejected, named
        bb = self.fake(BitbucketFake)
        self.serve("ws2/api")
        bb.add(Repo("ws2/api", self.http.url_for("ws2/api.git"), ssh_url=self.ssh_url("ws2/api.git"),
                    has_wiki=True))
        api_wiki = self.serve_wiki("ws2/api.git/wiki")
        creds = {"token_env": "FORGE_TOKEN", "ssh_key_env": SSH_KEY_ENV}
        sources = [{"type": "github", "api_url": gh.base_url, "org": "acme", "transport": "ssh",
                    "credentials": creds, "include_wikis": True},
                   {"type": "bitbucket", "api_url": bb.base_url + "/2.0", "workspace": "ws2", "transport": "ssh",
                    "credentials": creds, "include_wikis": True}]
        ws = Workspace("src-ssh-")
        path, log = self.spy_path()
        payload = self.payload(ws, sources, options={"ssh": {"known_hosts": self.sshd.known_hosts_line()}})
        run = ws.run(payload, env_extra={"FORGE_TOKEN": TOKEN, SSH_KEY_ENV: self.key, "PATH": path})
        result = self.assertRunOk(run)
        h = f"127.0.0.1_{self.sshd.port}"
        self.assertEqual(self.statuses(result), {f"{h}/acme/app": "ok", f"{h}/acme/app.wiki": "ok",
                                                 f"{h}/ws2/api": "ok", f"{h}/ws2/api.wiki": "ok"})
        self.assertEqual(result["sources"][0]["rejected"],
                         [{"name": "acme/https-only", "reason": "the forge gives no ssh URL"}])
        # The API was asked with the token; git went over ssh.
        self.assertTrue(gh.requests and all(r["token"] for r in gh.requests + bb.requests))
        calls = log.read_text()
        self.assertIn(f"--- ssh ", calls)
        self.assertIn(f"-p {self.sshd.port}", calls)
        # The token is in no argv, no environment of git or ssh, and no output.
        self.assertNotIn(TOKEN, calls)
        self.assertNotIn(TOKEN, run.stdout.decode() + run.stderr.decode())
        key_body = "".join(self.key.splitlines()[1:-1])[:40]
        self.assertNotIn(key_body, calls.replace("\n", ""))
        # Restores give the refs served over ssh, wikis included.
        for name, served in ((f"{h}/acme/app", self.root / "acme/app.git"), (f"{h}/acme/app.wiki", app_wiki),
                             (f"{h}/ws2/api.wiki", api_wiki)):
            target = ws.root / "restore" / name.replace("/", "_")
            self.assertRunOk(ws.restore(name, target))
            self.assertEqual(harness.refs_of(target), harness.refs_of(served), name)


if __name__ == "__main__":
    unittest.main()
