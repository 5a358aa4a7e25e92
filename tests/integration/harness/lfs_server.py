"""A Git LFS server on 127.0.0.1 for the integration suite (LfsServer).

No LFS server is packaged in Debian, so this one is written here against the
public Git LFS specification (git-lfs's docs/api/batch.md,
docs/api/basic-transfers.md, docs/api/server-discovery.md and the pointer
format of docs/spec.md), and the real client (`git lfs push`, `git lfs pull`,
`git lfs fsck`) is what proves it speaks the protocol.

What it follows:

- The Batch API: `POST <repository>/info/lfs/objects/batch` with
  `Accept: application/vnd.git-lfs+json` (406 otherwise), operations
  `download` and `upload`, the `basic` transfer (the response's `transfer`),
  `hash_algo` `sha256` (409 for any other, as the spec's newer revision
  says), the optional `ref` accepted and ignored, 422 for a body that is not
  a batch request. Per object: `download` answers a `download` action, or
  the error 404 "Object does not exist" (also for a purged object), or 422
  when the size asked for is not the stored one; `upload` answers no
  `actions` when the object is already stored, else an `upload` and a
  `verify` action. Every action carries `expires_in` (seconds; set with
  `expires_in=`), and `authenticated: true`.
- Basic transfers: GET of an object's href answers its bytes
  (application/octet-stream, Content-Length), PUT stores the body after
  checking its SHA-256 and size against the oid (422 otherwise; a
  `Transfer-Encoding: chunked` body is read too), and the verify action's
  POST `{"oid", "size"}` answers 200 only when that object is stored with
  that size (404 otherwise).
- Authentication: HTTP basic auth with the same users as the git server
  (SmartHttp); a request without valid credentials gets 401 with
  `LFS-Authenticate: Basic realm="Git LFS"`. With `object_host=True`, the
  batch answers hrefs on a second port (a separate object host, as the big
  forges hand out storage URLs), each action with its own
  `header: {"Authorization": "Bearer <token>"}`; that host accepts only the
  token and records every Authorization header it saw
  (`object_host_authorizations`), so a test proves the repository's
  credentials never reach it. Without it, hrefs are on the origin the batch
  request came to (the `Host` header: lighttpd's when proxied) and need the
  same basic auth as the batch.
- Server discovery is the client's business: SmartHttpLfs (servers.py) puts
  this server behind lighttpd's mod_proxy for `/git/<repo>/info/lfs/...`, so
  the URL git-lfs derives from the clone URL reaches it; `url_for()` gives
  the direct URL on its own port, for `lfs_url` or `.lfsconfig`.

What it does not do: the File Locking API (`/locks*` answer 404, which
git-lfs reports and then pushes anyway; tests turn `lfs.locksverify` off),
the legacy v1 API, tus or custom transfer adapters, SSH
(`git-lfs-authenticate`), authorization by `ref`, `expires_at`, ranges
(resumed downloads), rate limits (429) and storage quotas. Objects live in
memory, per repository (the path before `/info/lfs`, without a trailing
`.git`), up to `max_object_size` bytes each.

Test hooks: `purge()` deletes an object (the next batch and GET answer 404),
`corrupt()` makes downloads of an object answer other bytes of the same
size after the batch announced it (a hash mismatch for the client), `put()`
and `objects()` store and read behind the protocol's back, `stats` counts
requests and bytes per kind, and `authorizations` /
`object_host_authorizations` hold every Authorization header received
(`reset_stats()` starts over).
"""

from __future__ import annotations

import base64
import collections
import hashlib
import http.server
import json
import re
import secrets
import threading
import urllib.parse

from .processes import free_port


LFS_MEDIA_TYPE = "application/vnd.git-lfs+json"
_OID_RE = re.compile(r"^[0-9a-f]{64}$")
# /<repository>/info/lfs/<rest>
_LFS_PATH_RE = re.compile(r"^/(?P<repo>.+?)/info/lfs(?P<rest>/.*)?$")
# /objects/<token>/<repository>/<oid> on the object host
_OBJECT_HOST_PATH_RE = re.compile(r"^/objects/(?P<repo>.+)/(?P<oid>[0-9a-f]{64})$")
_MAX_BATCH_BYTES = 1 << 20


def lfs_oid(data: bytes) -> str:
    """The LFS oid (SHA-256, lowercase hex) of `data`."""
    return hashlib.sha256(data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    """The pointer file git-lfs commits in place of `data` (docs/spec.md)."""
    return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{lfs_oid(data)}\n"
            f"size {len(data)}\n").encode()


def _repo_id(path_repo: str) -> str:
    """The repository an LFS path names: its path before /info/lfs, without
    slashes around it and without a trailing `.git`."""
    repo = urllib.parse.unquote(path_repo).strip("/")
    return repo[:-4] if repo.endswith(".git") else repo


class LfsServer:
    """The LFS server (see the module's docstring): a threaded http.server on
    127.0.0.1 in this test process, a second one as the object host when
    `object_host` is true. `users` maps user name to password; empty means
    no authentication. A context manager; stop() shuts both down."""

    def __init__(self, users: dict[str, str] | None = None, object_host: bool = False, expires_in: int = 3600,
                 max_object_size: int = 64 << 20) -> None:
        self.users = dict(users or {})
        self.expires_in = expires_in
        self.max_object_size = max_object_size
        self.lock = threading.Lock()
        self.store: dict[str, dict[str, bytes]] = collections.defaultdict(dict)
        self.corrupted: set[str] = set()
        self.stats: collections.Counter = collections.Counter()
        # Every Authorization header the API port and the object host received (None when absent).
        self.authorizations: list[str | None] = []
        self.object_host_authorizations: list[str | None] = []
        self.token = secrets.token_hex(16)
        self._servers: list[http.server.ThreadingHTTPServer] = []
        self.port = self._serve(self._api_handler())
        self.object_port = self._serve(self._object_host_handler()) if object_host else 0

    # -- life cycle ---------------------------------------------------------
    def _serve(self, handler) -> int:
        port = free_port()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._servers.append(server)
        return port

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------
    def url_for(self, repo_path: str) -> str:
        """The LFS URL of repository `repo_path` (e.g. "git/up.git") on this
        server's own port, as `lfs_url` or `.lfsconfig`'s lfs.url give it."""
        return f"http://127.0.0.1:{self.port}/{repo_path.strip('/')}/info/lfs"

    # -- test hooks ---------------------------------------------------------
    def put(self, repo: str, data: bytes) -> str:
        """Store `data` for repository `repo` behind the protocol's back; its oid."""
        oid = lfs_oid(data)
        with self.lock:
            self.store[_repo_id(repo)][oid] = bytes(data)
        return oid

    def objects(self, repo: str) -> dict[str, bytes]:
        """A copy of what repository `repo` stores, oid to bytes."""
        with self.lock:
            return dict(self.store.get(_repo_id(repo), {}))

    def purge(self, repo: str, oid: str) -> None:
        """Delete an object, as a quota purge does: batch and GET answer 404."""
        with self.lock:
            self.store[_repo_id(repo)].pop(oid, None)

    def corrupt(self, oid: str) -> None:
        """Downloads of `oid` (any repository) answer other bytes of the same size
        from now on, while the batch still announces the stored object."""
        with self.lock:
            self.corrupted.add(oid)

    def reset_stats(self) -> None:
        with self.lock:
            self.stats.clear()
            self.authorizations.clear()
            self.object_host_authorizations.clear()

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.stats[what] += n

    # -- the protocol, apart from HTTP ----------------------------------------
    def authorized(self, header: str | None) -> bool:
        """Whether a basic Authorization header names a known user and password."""
        if not self.users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user in self.users and secrets.compare_digest(self.users[user], password)

    def _action(self, href: str, authorization: str | None) -> dict:
        action: dict = {"href": href, "expires_in": self.expires_in}
        if self.object_port and href.startswith(f"http://127.0.0.1:{self.object_port}/"):
            action["header"] = {"Authorization": f"Bearer {self.token}"}
        elif authorization:
            action["header"] = {"Authorization": authorization}
        return action

    def _object_href(self, origin: str, repo_path: str, oid: str) -> str:
        if self.object_port:
            return f"http://127.0.0.1:{self.object_port}/objects/{urllib.parse.quote(_repo_id(repo_path))}/{oid}"
        return f"{origin}/{repo_path}/info/lfs/objects/{oid}"

    def batch(self, origin: str, repo_path: str, request, authorization: str | None = None) -> tuple[int, dict]:
        """The answer (status, JSON body) to a batch request of repository
        `repo_path` that came to `origin` (scheme://host:port) with the
        `authorization` header, which same-origin actions carry back (as
        Gitea's and lfs-test-server's do)."""
        if not isinstance(request, dict) or request.get("operation") not in ("download", "upload") or \
                not isinstance(request.get("objects"), list):
            return 422, {"message": "not a batch request: operation and objects are required"}
        if request.get("hash_algo", "sha256") != "sha256":
            return 409, {"message": "only hash_algo sha256 is supported"}
        transfers = request.get("transfers") or ["basic"]
        if "basic" not in transfers:
            return 422, {"message": "only the basic transfer is supported"}
        operation = request["operation"]
        self.count(f"batch_{operation}")
        repo = _repo_id(repo_path)
        answers = []
        for item in request["objects"]:
            oid = item.get("oid") if isinstance(item, dict) else None
            size = item.get("size") if isinstance(item, dict) else None
            if not isinstance(oid, str) or not _OID_RE.match(oid) or not isinstance(size, int) or \
                    isinstance(size, bool) or size < 0:
                answers.append({"oid": str(oid), "size": size if isinstance(size, int) else 0,
                                "error": {"code": 422, "message": "invalid oid or size"}})
                continue
            with self.lock:
                stored = self.store.get(repo, {}).get(oid)
            answer: dict = {"oid": oid, "size": size, "authenticated": True}
            href = self._object_href(origin, repo_path, oid)
            if operation == "download":
                if stored is None:
                    answer["error"] = {"code": 404, "message": "Object does not exist"}
                elif len(stored) != size:
                    answer["error"] = {"code": 422, "message": f"size mismatch: stored {len(stored)}"}
                else:
                    answer["actions"] = {"download": self._action(href, authorization)}
            elif stored is None or len(stored) != size:
                verify = self._action(f"{origin}/{repo_path}/info/lfs/verify", authorization)
                answer["actions"] = {"upload": self._action(href, authorization), "verify": verify}
            answers.append(answer)
        return 200, {"transfer": "basic", "objects": answers, "hash_algo": "sha256"}

    def download(self, repo: str, oid: str) -> bytes | None:
        """The bytes a GET of `oid` answers (flipped when corrupted), None when not stored."""
        with self.lock:
            data = self.store.get(_repo_id(repo), {}).get(oid)
            corrupted = oid in self.corrupted
        if data is None:
            return None
        if corrupted and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        elif corrupted:
            data = b"x"  # nothing to flip in an empty object: answer a byte more than announced
        self.count("download")
        self.count("bytes_downloaded", len(data))
        return data

    def upload(self, repo: str, oid: str, data: bytes) -> tuple[int, str]:
        """Store an uploaded body after checking it against its oid."""
        if lfs_oid(data) != oid:
            return 422, "the body's SHA-256 is not the object's oid"
        with self.lock:
            self.store[_repo_id(repo)][oid] = data
            self.stats["upload"] += 1
            self.stats["bytes_uploaded"] += len(data)
        return 200, ""

    def verify(self, repo: str, request) -> int:
        self.count("verify")
        if not isinstance(request, dict):
            return 422
        with self.lock:
            data = self.store.get(_repo_id(repo), {}).get(request.get("oid"))
        return 200 if data is not None and len(data) == request.get("size") else 404

    # -- HTTP -----------------------------------------------------------------
    def _base_handler(self):
        server = self

        class Base(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def reply(self, status: int, body: bytes = b"", content_type: str = LFS_MEDIA_TYPE,
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                if body or status != 200:
                    self.send_header("Content-Type", content_type)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def reply_json(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
                self.reply(status, json.dumps(body).encode(), LFS_MEDIA_TYPE, headers)

            def read_body(self, limit: int) -> bytes | None:
                """The request body (Content-Length or chunked), None when over `limit`."""
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts, total = [], 0
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            break
                        total += size
                        if total > limit:
                            return None
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(parts)
                length = int(self.headers.get("Content-Length") or 0)
                if length > limit:
                    return None
                return self.rfile.read(length) if length else b""

            def read_json(self):
                body = self.read_body(_MAX_BATCH_BYTES)
                if body is None:
                    return None
                try:
                    return json.loads(body)
                except ValueError:
                    return None

            def transfer(self, repo: str, oid: str):
                """A basic transfer of one object: GET (HEAD) downloads, PUT uploads."""
                if self.command in ("GET", "HEAD"):
                    data = server.download(repo, oid)
                    if data is None:
                        return self.reply_json(404, {"message": "Object does not exist"})
                    return self.reply(200, data, "application/octet-stream")
                if self.command == "PUT":
                    body = self.read_body(server.max_object_size)
                    if body is None:
                        return self.reply_json(413, {"message": "object too large"})
                    status, message = server.upload(repo, oid, body)
                    return self.reply_json(status, {"message": message} if message else {})
                return self.reply_json(405, {"message": "method not allowed"})

        return server, Base

    def _api_handler(self):
        server, Base = self._base_handler()

        class Api(Base):
            def handle_any(self):
                with server.lock:
                    server.stats["requests"] += 1
                    server.authorizations.append(self.headers.get("Authorization"))
                path = urllib.parse.urlsplit(self.path).path
                match = _LFS_PATH_RE.match(path)
                if match is None:
                    return self.reply_json(404, {"message": "not an LFS path"})
                if not server.authorized(self.headers.get("Authorization")):
                    server.count("unauthorized")
                    return self.reply_json(401, {"message": "Credentials needed"},
                                           {"LFS-Authenticate": 'Basic realm="Git LFS"'})
                repo_path, rest = match["repo"], match["rest"] or "/"
                origin = f"http://{self.headers.get('Host') or f'127.0.0.1:{server.port}'}"
                if rest == "/objects/batch" and self.command == "POST":
                    if LFS_MEDIA_TYPE not in self.headers.get("Accept", ""):
                        return self.reply_json(406, {"message": f"Accept must be {LFS_MEDIA_TYPE}"})
                    status, answer = server.batch(origin, repo_path, self.read_json(), self.headers.get("Authorization"))
                    return self.reply_json(status, answer)
                if rest == "/verify" and self.command == "POST":
                    status = server.verify(repo_path, self.read_json())
                    return self.reply_json(status, {} if status == 200 else {"message": "Object does not exist"})
                object_match = re.match(r"^/objects/([0-9a-f]{64})$", rest)
                if object_match is not None:
                    return self.transfer(repo_path, object_match[1])
                return self.reply_json(404, {"message": "not found"})

            do_GET = do_HEAD = do_POST = do_PUT = handle_any

        return Api

    def _object_host_handler(self):
        server, Base = self._base_handler()

        class ObjectHost(Base):
            def handle_any(self):
                authorization = self.headers.get("Authorization")
                with server.lock:
                    server.object_host_authorizations.append(authorization)
                    server.stats["object_host_requests"] += 1
                match = _OBJECT_HOST_PATH_RE.match(urllib.parse.urlsplit(self.path).path)
                if match is None:
                    return self.reply_json(404, {"message": "not found"})
                if authorization != f"Bearer {server.token}":
                    return self.reply_json(401, {"message": "bad token"})
                return self.transfer(urllib.parse.unquote(match["repo"]), match["oid"])

            do_GET = do_HEAD = do_PUT = do_POST = handle_any

        return ObjectHost
