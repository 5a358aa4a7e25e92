"""Fake forge APIs on 127.0.0.1 for the sources tests (issue 18): GitHub,
GitLab, Gitea/Forgejo and Bitbucket Cloud, one class each, answering the
listing endpoints snapshotter uses the way the public documentation says
(docs/sources.md lists each behaviour with the page it comes from).

The repositories they list point at real git repositories served by the
harness (lighttpd + git http-backend), so discovery, snapshot and restore all
run for real. Each fake records every request (path, status, whether a token
came with it) and can be told to answer the next requests with faults:
5xx bursts, a GitHub secondary rate limit (403 + Retry-After), a spent
primary quota (403, X-RateLimit-Remaining: 0, X-RateLimit-Reset), a GitLab
429 with Retry-After.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Repo:
    """One repository as the fakes know it; each API renders its own JSON."""
    full_name: str                 # "owner/repo"; GitLab "group/sub/project"
    clone_url: str                 # http(s) clone URL (a harness SmartHttp URL)
    ssh_url: str = ""
    archived: bool = False
    fork: bool = False
    private: bool = False
    topics: list[str] = field(default_factory=list)
    pushed_at: str = "2026-11-01T10:00:00Z"
    has_wiki: bool = False
    id: int = 0

    @property
    def owner(self) -> str:
        return self.full_name.rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.rsplit("/", 1)[1]


@dataclass
class Fault:
    status: int
    headers: dict[str, str]
    body: dict


class FakeForge:
    """The common part: a threaded HTTP server, the token check, the request
    log and the fault queue. Subclasses implement `route`."""

    def __init__(self, token: str = "") -> None:
        self.token = token
        self.repos: list[Repo] = []
        self.requests: list[dict] = []
        self.faults: list[Fault] = []
        self.teams: dict[str, list[str]] = {}  # "org/slug" -> full names
        self._lock = threading.Lock()
        self._next_id = 1000
        forge = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # quiet
                pass

            def do_GET(self):
                forge._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # -- set-up -----------------------------------------------------------
    def add(self, repo: Repo) -> Repo:
        with self._lock:
            self._next_id += 1
            repo.id = self._next_id
            self.repos.append(repo)
        return repo

    def remove(self, full_name: str) -> None:
        with self._lock:
            self.repos = [r for r in self.repos if r.full_name != full_name]

    def fail_next(self, count: int, status: int = 502, headers: dict[str, str] | None = None,
                  body: dict | None = None) -> None:
        """Answer the next `count` requests with `status` (after the auth check)."""
        with self._lock:
            for _ in range(count):
                self.faults.append(Fault(status, dict(headers or {}), body or {"message": "fault injected"}))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def listing_requests(self) -> list[dict]:
        return [r for r in self.requests if r["status"] != 0]

    # -- the exchange -----------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(h.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        given = self.token_of(h.headers)
        record = {"path": parsed.path, "query": query, "token": given is not None, "status": 0}
        if given is not None and given != self.token:
            status, headers, body = self.unauthorized()
        else:
            with self._lock:
                fault = self.faults.pop(0) if self.faults else None
            if fault is not None:
                status, headers, body = fault.status, fault.headers, fault.body
            else:
                status, headers, body = self.route(parsed.path, query, authenticated=given is not None)
        headers = {**self.common_headers(), **headers}
        record["status"] = status
        with self._lock:
            self.requests.append(record)
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def visible(self, authenticated: bool) -> list[Repo]:
        """What a caller sees: everything with the token, public ones without."""
        with self._lock:
            repos = list(self.repos)
        return [r for r in repos if authenticated or not r.private]

    @staticmethod
    def page_of(items: list, page: int, per_page: int) -> list:
        return items[(page - 1) * per_page: page * per_page]

    @staticmethod
    def int_param(query: dict, name: str, default: int, maximum: int) -> int:
        try:
            value = int(query.get(name, default))
        except ValueError:
            value = default
        return max(1, min(value, maximum))

    def link_header(self, path: str, query: dict, page: int, last: int, page_param: str = "page") -> str:
        """RFC 8288 Link with next, last, first, prev as GitHub and GitLab send them."""
        def url(p: int) -> str:
            q = dict(query)
            q[page_param] = str(p)
            return f"<{self.base_url}{path}?{urllib.parse.urlencode(q)}>"
        parts = []
        if page < last:
            parts += [f'{url(page + 1)}; rel="next"', f'{url(last)}; rel="last"']
        if page > 1:
            parts += [f'{url(1)}; rel="first"', f'{url(min(page - 1, last))}; rel="prev"']
        return ", ".join(parts)

    # -- per API ------------------------------------------------------------
    def token_of(self, headers) -> str | None:
        raise NotImplementedError

    def unauthorized(self) -> tuple[int, dict, dict]:
        raise NotImplementedError

    def common_headers(self) -> dict[str, str]:
        return {}

    def route(self, path: str, query: dict, authenticated: bool) -> tuple[int, dict, object]:
        raise NotImplementedError


def _bearer(headers, *schemes: str) -> str | None:
    value = headers.get("Authorization")
    if value is None:
        return None
    for scheme in schemes:
        if value.lower().startswith(scheme.lower() + " "):
            return value[len(scheme) + 1:]
    return ""  # a scheme we do not take: a wrong token


class GitHubFake(FakeForge):
    """GitHub REST API: /orgs/{org}/repos, /users/{u}/repos, /user/repos,
    /user, /orgs/{org}/teams/{slug}/repos; per_page (max 100, default 30),
    Link pagination; X-RateLimit-* on every answer, a spent quota answers
    403 with X-RateLimit-Remaining: 0."""

    def __init__(self, token: str = "", login: str = "", quota: int = 5000) -> None:
        super().__init__(token)
        self.login = login
        self.quota = quota
        self.remaining = quota
        self.reset_at: int | None = int(time.time()) + 3600
        self.reset_delay = 0

    def spend_quota_then_reset(self, reset_in_s: int = 1) -> None:
        """Make the quota spent; it resets `reset_in_s` seconds after the
        first request that finds it spent (queued faults answer first)."""
        with self._lock:
            self.remaining = 0
            self.reset_at = None
            self.reset_delay = reset_in_s

    def token_of(self, headers) -> str | None:
        return _bearer(headers, "Bearer", "token")

    def unauthorized(self):
        return 401, {}, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}

    def common_headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.quota), "X-RateLimit-Remaining": str(max(self.remaining, 0)),
                "X-RateLimit-Reset": str(self.reset_at or int(time.time()) + 3600), "X-RateLimit-Resource": "core",
                "X-GitHub-Api-Version-Selected": "2022-11-28"}

    def render(self, r: Repo) -> dict:
        owner = r.owner
        return {"id": r.id, "name": r.name, "full_name": r.full_name, "owner": {"login": owner},
                "private": r.private, "visibility": "private" if r.private else "public",
                "fork": r.fork, "archived": r.archived, "disabled": False,
                "clone_url": r.clone_url, "ssh_url": r.ssh_url, "html_url": f"https://github.example/{r.full_name}",
                "topics": r.topics, "pushed_at": r.pushed_at, "has_wiki": r.has_wiki, "default_branch": "main"}

    def route(self, path, query, authenticated):
        now = int(time.time())
        with self._lock:
            if self.reset_at is None:
                self.reset_at = now + self.reset_delay
            if self.remaining <= 0 and now >= self.reset_at:
                self.remaining = self.quota
                self.reset_at = now + 3600
            if self.remaining <= 0:
                return 403, {}, {"message": "API rate limit exceeded for user.",
                                 "documentation_url": "https://docs.github.com/rest/overview/rate-limits"}
            self.remaining -= 1
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if parts == ["user"]:
            if not authenticated:
                return 401, {}, {"message": "Requires authentication"}
            return 200, {}, {"login": self.login, "id": 1}
        repos = self.visible(authenticated)
        if len(parts) == 3 and parts[0] == "orgs" and parts[2] == "repos":
            chosen = [r for r in repos if r.owner.lower() == parts[1].lower()]
            if not chosen and not any(r.owner.lower() == parts[1].lower() for r in self.repos):
                return 404, {}, {"message": "Not Found"}
        elif len(parts) == 3 and parts[0] == "users" and parts[2] == "repos":
            chosen = [r for r in repos if r.owner.lower() == parts[1].lower() and not r.private]
        elif parts == ["user", "repos"]:
            if not authenticated:
                return 401, {}, {"message": "Requires authentication"}
            chosen = [r for r in repos if r.owner.lower() == self.login.lower()]
        elif len(parts) == 5 and parts[0] == "orgs" and parts[2] == "teams" and parts[4] == "repos":
            key = f"{parts[1]}/{parts[3]}"
            if key not in self.teams:
                return 404, {}, {"message": "Not Found"}
            chosen = [r for r in repos if r.full_name in self.teams[key]]
        else:
            return 404, {}, {"message": "Not Found"}
        per_page = self.int_param(query, "per_page", 30, 100)
        page = self.int_param(query, "page", 1, 10**9)
        last = max(1, -(-len(chosen) // per_page))
        headers = {}
        link = self.link_header(path, query, page, last)
        if link:
            headers["Link"] = link
        return 200, headers, [self.render(r) for r in self.page_of(chosen, page, per_page)]


class GitLabFake(FakeForge):
    """GitLab REST API v4: /api/v4/groups/:id/projects (include_subgroups),
    /api/v4/users/:id/projects; offset pagination (per_page max 100, default
    20) with X-Page, X-Per-Page, X-Next-Page, X-Prev-Page, X-Total,
    X-Total-Pages and Link; keyset pagination (pagination=keyset) on the
    user's projects only; RateLimit-* headers; 429 + Retry-After when
    throttled (fail_next)."""

    def __init__(self, token: str = "", send_link: bool = True) -> None:
        super().__init__(token)
        self.send_link = send_link
        self.keyset_requests = 0

    def token_of(self, headers) -> str | None:
        if headers.get("PRIVATE-TOKEN") is not None:
            return headers.get("PRIVATE-TOKEN")
        return _bearer(headers, "Bearer")

    def unauthorized(self):
        return 401, {}, {"message": "401 Unauthorized"}

    def common_headers(self) -> dict[str, str]:
        reset = int(time.time()) + 60
        return {"RateLimit-Limit": "2000", "RateLimit-Observed": "1", "RateLimit-Remaining": "1999",
                "RateLimit-Reset": str(reset),
                "RateLimit-ResetTime": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(reset))}

    def render(self, r: Repo) -> dict:
        d = {"id": r.id, "name": r.name, "path": r.name, "path_with_namespace": r.full_name,
             "namespace": {"full_path": r.owner}, "http_url_to_repo": r.clone_url,
             "ssh_url_to_repo": r.ssh_url, "web_url": f"https://gitlab.example/{r.full_name}",
             "archived": r.archived, "visibility": "private" if r.private else "public",
             "topics": r.topics, "tag_list": r.topics, "last_activity_at": r.pushed_at.replace("Z", ".000Z"),
             "wiki_enabled": r.has_wiki, "default_branch": "main"}
        if r.fork:
            d["forked_from_project"] = {"id": 1, "path_with_namespace": "upstream/" + r.name}
        return d

    def route(self, path, query, authenticated):
        prefix = "/api/v4/"
        if not path.startswith(prefix):
            return 404, {}, {"message": "404 Not Found"}
        # The group id is its URL-encoded full path: split on the raw '/' first.
        raw = path[len(prefix):].split("/")
        parts = [urllib.parse.unquote(p) for p in raw]
        repos = self.visible(authenticated)
        if len(parts) == 3 and parts[0] == "groups" and parts[2] == "projects":
            group = parts[1]
            if not any(r.owner == group or r.owner.startswith(group + "/") for r in self.repos):
                return 404, {}, {"message": "404 Group Not Found"}
            subgroups = query.get("include_subgroups") == "true"
            chosen = [r for r in repos if r.owner == group or (subgroups and r.owner.startswith(group + "/"))]
        elif len(parts) == 3 and parts[0] == "users" and parts[2] == "projects":
            chosen = [r for r in repos if r.owner == parts[1]]
            # Keyset pagination: the "Projects" resource supports it (order_by=id only); the
            # group projects listing above has offset pagination only and ignores the parameter.
            if query.get("pagination") == "keyset":
                return self.keyset_page(path, query, chosen)
        else:
            return 404, {}, {"message": "404 Not Found"}
        if query.get("order_by", "created_at") == "id":
            chosen.sort(key=lambda r: r.id, reverse=query.get("sort", "desc") == "desc")
        per_page = self.int_param(query, "per_page", 20, 100)
        page = self.int_param(query, "page", 1, 10**9)
        last = max(1, -(-len(chosen) // per_page))
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page),
                   "X-Next-Page": str(page + 1) if page < last else "",
                   "X-Prev-Page": str(page - 1) if page > 1 else "",
                   "X-Total": str(len(chosen)), "X-Total-Pages": str(last)}
        if self.send_link:
            link = self.link_header(path, query, page, last)
            if link:
                headers["Link"] = link
        return 200, headers, [self.render(r) for r in self.page_of(chosen, page, per_page)]


    def keyset_page(self, path: str, query: dict, chosen: list[Repo]) -> tuple[int, dict, object]:
        """GitLab keyset pagination: order_by (only `id` here) and sort are required, 405
        otherwise; the next page is the same request with `id_after` (asc) or `id_before`
        (desc) of the last record, in `Link: <...>; rel="next"`; no other pagination header.
        At the end of the collection the array is empty and `Link` is absent."""
        if query.get("order_by") != "id" or query.get("sort") not in ("asc", "desc"):
            return 405, {}, {"error": "Keyset pagination is not yet available for this type of request"}
        self.keyset_requests += 1
        ascending = query["sort"] == "asc"
        chosen = sorted(chosen, key=lambda r: r.id, reverse=not ascending)
        try:
            after = int(query["id_after"]) if "id_after" in query else None
            before = int(query["id_before"]) if "id_before" in query else None
        except ValueError:
            return 400, {}, {"error": "id_after is invalid"}
        if after is not None:
            chosen = [r for r in chosen if r.id > after]
        if before is not None:
            chosen = [r for r in chosen if r.id < before]
        per_page = self.int_param(query, "per_page", 20, 100)
        page = chosen[:per_page]
        headers = {}
        if page:
            q = {k: v for k, v in query.items() if k not in ("id_after", "id_before")}
            q["id_after" if ascending else "id_before"] = str(page[-1].id)
            headers["Link"] = f'<{self.base_url}{path}?{urllib.parse.urlencode(q)}>; rel="next"'
        return 200, headers, [self.render(r) for r in page]


class GiteaFake(FakeForge):
    """Gitea/Forgejo API v1: /api/v1/orgs/{org}/repos, /api/v1/users/{u}/repos;
    page and limit (cut to MAX_RESPONSE_ITEMS, 50 by default), Link and
    X-Total-Count headers."""

    max_items = 50

    def token_of(self, headers) -> str | None:
        return _bearer(headers, "token", "Bearer")

    def unauthorized(self):
        return 401, {}, {"message": "user does not exist [uid: 0, name: ]", "url": "https://gitea.example/api/swagger"}

    def render(self, r: Repo) -> dict:
        return {"id": r.id, "name": r.name, "full_name": r.full_name, "owner": {"login": r.owner},
                "private": r.private, "internal": False, "fork": r.fork, "archived": r.archived,
                "clone_url": r.clone_url, "ssh_url": r.ssh_url, "html_url": f"https://gitea.example/{r.full_name}",
                "topics": r.topics, "updated_at": r.pushed_at.replace("Z", "+00:00"), "has_wiki": r.has_wiki,
                "default_branch": "main"}

    def route(self, path, query, authenticated):
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if len(parts) != 5 or parts[:2] != ["api", "v1"] or parts[2] not in ("orgs", "users") or parts[4] != "repos":
            return 404, {}, {"message": "Not Found"}
        owner = parts[3]
        if not any(r.owner == owner for r in self.repos):
            return 404, {}, {"message": "GetOrgByName", "errors": [f"org does not exist [name: {owner}]"]}
        chosen = [r for r in self.visible(authenticated) if r.owner == owner]
        limit = self.int_param(query, "limit", self.max_items, self.max_items)
        page = self.int_param(query, "page", 1, 10**9)
        last = max(1, -(-len(chosen) // limit))
        headers = {"X-Total-Count": str(len(chosen))}
        q = dict(query)
        q["limit"] = str(limit)
        link = self.link_header(path, q, page, last)
        if link:
            headers["Link"] = link
        return 200, headers, [self.render(r) for r in self.page_of(chosen, page, limit)]


class BitbucketFake(FakeForge):
    """Bitbucket Cloud API 2.0: /2.0/repositories/{workspace}; pagelen (max
    100, default 10) and page; each answer is {"pagelen", "page", "size",
    "values", "next"?, "previous"?}, the last page has no "next"."""

    def token_of(self, headers) -> str | None:
        value = headers.get("Authorization")
        if value is None:
            return None
        if value.startswith("Basic "):
            import base64
            try:
                user, _, secret = base64.b64decode(value[6:]).decode().partition(":")
            except ValueError:
                return ""
            return secret
        return _bearer(headers, "Bearer")

    def unauthorized(self):
        return 401, {}, {"type": "error", "error": {"message": "Access token expired or invalid."}}

    def render(self, r: Repo) -> dict:
        d = {"type": "repository", "uuid": f"{{{r.id:08d}-0000-0000-0000-000000000000}}", "full_name": r.full_name,
             "name": r.name, "slug": r.name, "is_private": r.private, "has_wiki": r.has_wiki,
             "updated_on": r.pushed_at.replace("Z", ".123456+00:00"),
             "links": {"clone": [{"name": "https", "href": r.clone_url.replace("http://", "http://someone@", 1)},
                                 {"name": "ssh", "href": r.ssh_url}],
                       "html": {"href": f"https://bitbucket.example/{r.full_name}"}},
             "mainbranch": {"name": "main", "type": "branch"}}
        if r.fork:
            d["parent"] = {"type": "repository", "full_name": "upstream/" + r.name}
        return d

    def route(self, path, query, authenticated):
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if len(parts) != 3 or parts[:2] != ["2.0", "repositories"]:
            return 404, {}, {"type": "error", "error": {"message": "Resource not found"}}
        ws = parts[2]
        if not any(r.owner == ws for r in self.repos):
            return 404, {}, {"type": "error", "error": {"message": f"No workspace with identifier '{ws}'."}}
        chosen = [r for r in self.visible(authenticated) if r.owner == ws]
        pagelen = self.int_param(query, "pagelen", 10, 100)
        page = self.int_param(query, "page", 1, 10**9)
        body: dict = {"pagelen": pagelen, "page": page, "size": len(chosen),
                      "values": [self.render(r) for r in self.page_of(chosen, page, pagelen)]}
        last = max(1, -(-len(chosen) // pagelen))
        q = dict(query)
        if page < last:
            q["page"] = str(page + 1)
            body["next"] = f"{self.base_url}{path}?{urllib.parse.urlencode(q)}"
        if page > 1:
            q["page"] = str(page - 1)
            body["previous"] = f"{self.base_url}{path}?{urllib.parse.urlencode(q)}"
        return 200, {}, body
