"""Git servers on 127.0.0.1, each in its own session: git daemon, lighttpd
running git http-backend with basic auth, JGit's and Dulwich's v0-only
git:// daemons, and a TCP proxy that cuts connections (GitFaultProxy)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

from .processes import HERE, _register, free_port, kill_process_group, mkdtemp, wait_for_port
from .upstreams import git_env


LIGHTTPD = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
GIT_HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"


class _Server:
    """A background server in its own session; a context manager."""

    # How long the server may take to listen (a JVM starts slowly on a busy machine).
    ready_timeout_s = 10.0

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log_path: Path | None = None

    def _spawn(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        assert self.log_path is not None
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _register(self.proc)
        try:
            wait_for_port(self.port, self.proc, self.ready_timeout_s)
        except Exception:
            self.stop()
            raise RuntimeError(f"{argv[0]} did not start; log:\n{self.log()}")

    def log(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")
        return ""

    def stop(self) -> None:
        if self.proc is not None:
            kill_process_group(self.proc)
            self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class GitDaemon(_Server):
    """`git daemon` exporting every repository under `base_path` (push enabled);
    with `verbose`, its log (log()) names every connection's request."""

    def __init__(self, base_path: Path, verbose: bool = False) -> None:
        super().__init__()
        self.base_path = Path(base_path)
        workdir = mkdtemp("git-daemon-")
        self.log_path = workdir / "daemon.log"
        self.port = free_port()
        self._spawn(
            [
                "git", "daemon",
                "--listen=127.0.0.1", f"--port={self.port}",
                f"--base-path={self.base_path}",
                "--export-all", "--reuseaddr", "--enable=receive-pack",
                "--informative-errors",
                *(["--verbose"] if verbose else []),
                str(self.base_path),
            ],
            cwd=workdir,
            env=git_env(),
        )

    def url_for(self, repo_name: str) -> str:
        """git:// URL of `repo_name` (a path relative to base_path)."""
        return f"git://127.0.0.1:{self.port}/{repo_name}"

    def upload_packs(self, repo_name: str) -> int:
        """How many upload-pack connections `repo_name` has had (a `verbose` daemon)."""
        return self.log().count(f"Request upload-pack for '/{repo_name}'")


class SmartHttp(_Server):
    """lighttpd + git-http-backend over http://127.0.0.1 with basic auth.

    `users` maps user name to password; every request under /git/ needs one
    of them. Raises unittest.SkipTest only when lighttpd or git-http-backend
    is not installed.
    """

    def __init__(self, project_root: Path, users: dict[str, str]) -> None:
        super().__init__()
        missing = [p for p in (LIGHTTPD, GIT_HTTP_BACKEND) if not os.access(p, os.X_OK)]
        if missing:
            raise unittest.SkipTest(f"smart HTTP tests need {', '.join(missing)} (not installed)")
        self.project_root = Path(project_root)
        self.users = dict(users)
        workdir = mkdtemp("lighttpd-")
        self.log_path = workdir / "lighttpd.log"
        docroot = workdir / "docroot"
        docroot.mkdir()
        userfile = workdir / "users"
        userfile.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
        userfile.chmod(0o600)
        self.port = free_port()
        conf = workdir / "lighttpd.conf"
        conf.write_text(self.config(docroot, workdir, userfile))
        self.workdir = workdir
        self._spawn([LIGHTTPD, "-D", "-f", str(conf)], cwd=workdir)

    def config(self, docroot: Path, workdir: Path, userfile: Path) -> str:
        """lighttpd.conf: git-http-backend under /git/, basic auth on all of it."""
        return f"""
server.modules = ("mod_auth", "mod_authn_file", "mod_alias", "mod_setenv", "mod_cgi")
server.bind = "127.0.0.1"
server.port = {self.port}
server.document-root = "{docroot}"
server.errorlog = "{workdir}/error.log"
server.upload-dirs = ("{workdir}")
alias.url = ("/git/" => "{GIT_HTTP_BACKEND}/")
$HTTP["url"] =~ "^/git/" {{
    cgi.assign = ("" => "")
    setenv.add-environment = (
        "GIT_PROJECT_ROOT" => "{self.project_root}",
        "GIT_HTTP_EXPORT_ALL" => "1",
        "GIT_CONFIG_NOSYSTEM" => "1",
        "HOME" => "{workdir}"
    )
}}
auth.backend = "plain"
auth.backend.plain.userfile = "{userfile}"
auth.require = ("/git/" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
"""

    def log(self) -> str:
        text = super().log()
        err = self.workdir / "error.log" if hasattr(self, "workdir") else None
        if err and err.exists():
            text += err.read_text(errors="replace")
        return text

    def url_for(self, repo_name: str) -> str:
        """http:// URL of `repo_name` (a path relative to project_root), no credentials."""
        return f"http://127.0.0.1:{self.port}/git/{repo_name}"


class SmartHttpRoutes(SmartHttp):
    """SmartHttp with four routes to the same repositories: /git/ anonymous,
    /auth/ behind basic auth, /v0/ with the Git-Protocol header dropped (a
    server without protocol v2), and /moved/ redirecting to /git/. A subclass
    adds modules, redirects and configuration through the three hooks below."""

    extra_modules: tuple[str, ...] = ()

    def extra_redirects(self) -> str:
        """More `url.redirect` entries, each starting with ", "."""
        return ""

    def extra_config(self, workdir: Path) -> str:
        """More lighttpd configuration, appended."""
        return ""

    def config(self, docroot: Path, workdir: Path, userfile: Path) -> str:
        backend_dir = GIT_HTTP_BACKEND + "/"
        modules = ("mod_auth", "mod_authn_file", "mod_alias", "mod_setenv", "mod_redirect", "mod_cgi") + \
            self.extra_modules
        return f"""
server.document-root = "{docroot}"
server.bind = "127.0.0.1"
server.port = {self.port}
server.modules = ({", ".join(f'"{m}"' for m in modules)})
server.errorlog = "{workdir}/error.log"
server.upload-dirs = ("{workdir}")
alias.url = ( "/git/" => "{backend_dir}", "/auth/" => "{backend_dir}", "/v0/" => "{backend_dir}" )
url.redirect = ( "^/moved/(.*)$" => "/git/$1"{self.extra_redirects()} )
$HTTP["url"] =~ "^/(git|auth|v0)/" {{
  cgi.assign = ( "" => "" )
  setenv.add-environment = ( "GIT_PROJECT_ROOT" => "{self.project_root}", "GIT_HTTP_EXPORT_ALL" => "1",
                             "GIT_CONFIG_NOSYSTEM" => "1", "HOME" => "{workdir}" )
}}
$HTTP["url"] =~ "^/v0/" {{
  setenv.set-request-header = ( "Git-Protocol" => "" )
}}
auth.backend = "plain"
auth.backend.plain.userfile = "{userfile}"
$HTTP["url"] =~ "^/auth/" {{
  auth.require = ( "" => ( "method" => "basic", "realm" => "git", "require" => "valid-user" ) )
}}
""" + self.extra_config(workdir)


class SmartHttpLogged(SmartHttpRoutes):
    """SmartHttpRoutes that logs every request, for counting them, with two
    more routes: /auth/renamed.git/, whose info/refs redirects (same origin)
    to /auth/<renamed_to>/ while its other paths answer 404 (a repository
    renamed on a forge), and /auth/locked.git/, whose POSTs get 403.
    requests() reads the access log."""

    extra_modules = ("mod_access", "mod_accesslog")

    def __init__(self, project_root: Path, users: dict[str, str], renamed_to: str = "app.git") -> None:
        self.renamed_to = renamed_to
        super().__init__(project_root, users)

    def extra_redirects(self) -> str:
        return f', "^/auth/renamed\\.git/info/refs(.*)$" => "/auth/{self.renamed_to}/info/refs$1"'

    def extra_config(self, workdir: Path) -> str:
        self.access_log = workdir / "access.log"
        return f"""
accesslog.filename = "{self.access_log}"
accesslog.format = "%m %U %s %u"
$HTTP["url"] =~ "^/auth/locked\\.git/git-upload-pack" {{
  $HTTP["request-method"] == "POST" {{
    url.access-deny = ( "" )
  }}
}}
"""

    def requests(self) -> list[tuple[str, str, int, str]]:
        """Every request so far as (method, path without query, status, user or "-"), in order.
        lighttpd writes its access log in batches (every few seconds): a request to a fresh
        /__mark__/ path is sent, and the log read once that request is in it."""
        self._marks = getattr(self, "_marks", 0) + 1
        sentinel = f"/__mark__/{self._marks}"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}{sentinel}", timeout=10)
        except urllib.error.HTTPError:
            pass  # 404: it is the log line that counts
        deadline = time.monotonic() + 30
        while True:
            lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
            if any(line.split(" ")[1:2] == [sentinel] for line in lines):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"lighttpd did not log {sentinel} within 30 s")
            time.sleep(0.2)
        out = []
        for line in lines:
            method, path, status, user = line.split(" ", 3)
            if not path.startswith("/__mark__/"):
                out.append((method, path, int(status), user))
        return out

    def mark(self) -> int:
        """The number of requests logged so far (requests()[mark():] are those made after it)."""
        return len(self.requests())

    def url_for(self, repo_name: str, route: str = "auth") -> str:
        """http:// URL of `repo_name` under /`route`/, no credentials."""
        return f"http://127.0.0.1:{self.port}/{route}/{repo_name}"


JGIT = shutil.which("jgit") or "/usr/bin/jgit"
JAVA_DIR = Path("/usr/share/java")
# What `jgit daemon` loads besides the org.eclipse.jgit jars: Debian's /usr/bin/jgit
# puts only org.eclipse.jgit.pgm.jar on the class path and expects the rest in
# $JGIT_CLASSPATH.
JGIT_DEPENDENCIES = ("args4j", "jsch", "javaewah", "slf4j-api", "slf4j-nop", "jzlib", "gson",
                     "httpclient", "httpcore", "commons-logging", "commons-codec", "commons-compress")


class GitAndHttp:
    """git daemon and smart HTTP (basic auth, one user) serving the same root, for tests that
    run one check over both transports. `http` is None when lighttpd or git-http-backend is
    missing (the HTTP case then skips)."""

    def __init__(self, root: Path, user: str, token: str, token_env: str) -> None:
        self.root = Path(root)
        self.user, self.token, self.token_env = user, token, token_env
        self.daemon = GitDaemon(self.root)
        try:
            self.http: SmartHttp | None = SmartHttp(self.root, {user: token})
        except unittest.SkipTest:
            self.http = None

    def repository(self, transport: str, bare: Path, name: str) -> tuple[dict, dict, dict]:
        """(repository entry, options, extra env) for the served repository `bare` over
        `transport` ("git" or "http")."""
        served = str(Path(bare).relative_to(self.root))
        if transport == "git":
            return {"url": self.daemon.url_for(served), "name": name}, {}, {}
        if self.http is None:
            raise unittest.SkipTest("lighttpd or git-http-backend is not installed")
        return ({"url": self.http.url_for(served), "name": name,
                 "credentials": {"token_env": self.token_env, "username": self.user}},
                {"allow_http": True}, {self.token_env: self.token})


def jgit_classpath() -> str:
    """$JGIT_CLASSPATH for Debian's jgit-cli: every unversioned org.eclipse.jgit*.jar and its dependencies."""
    jars = sorted(p for p in JAVA_DIR.glob("org.eclipse.jgit*.jar") if not re.search(r"-\d", p.name))
    jars += [JAVA_DIR / f"{name}.jar" for name in JGIT_DEPENDENCIES if (JAVA_DIR / f"{name}.jar").exists()]
    return ":".join(str(p) for p in jars)


def drop_bitmaps(bare: Path | str) -> None:
    """Delete the pack bitmaps of `bare`: JGit 4.11 cannot serve a repository that has one
    (a `git repack -a` or `git gc` of a bare repository writes them)."""
    for bitmap in (Path(bare) / "objects" / "pack").glob("*.bitmap"):
        bitmap.unlink()


class JGitDaemon(_Server):
    """`jgit daemon` (Debian's jgit-cli, JGit 4.11) exporting every repository
    under `base_path` on git://127.0.0.1: a protocol v0-only server written in
    Java. It advertises no HEAD for an unborn branch and cannot serve a
    repository with a pack bitmap, so url_for() deletes the bitmaps of the
    repository it names. Raises unittest.SkipTest when jgit or java is missing."""

    ready_timeout_s = 60.0

    def __init__(self, base_path: Path) -> None:
        super().__init__()
        if not os.access(JGIT, os.X_OK) or shutil.which("java") is None:
            raise unittest.SkipTest("JGit tests need jgit-cli (scripts/install-deps.sh --test installs it)")
        self.base_path = Path(base_path)
        workdir = mkdtemp("jgit-daemon-")
        self.log_path = workdir / "daemon.log"
        self.port = free_port()
        env = git_env({"JGIT_CLASSPATH": jgit_classpath(), "HOME": str(workdir)})
        self._spawn([JGIT, "daemon", "--listen", "127.0.0.1", "--port", str(self.port), "--export-all",
                     str(self.base_path)], cwd=workdir, env=env)

    def url_for(self, repo_name: str) -> str:
        """git:// URL of `repo_name` (relative to base_path), whose bitmaps are deleted first."""
        drop_bitmaps(self.base_path / repo_name)
        return f"git://127.0.0.1:{self.port}/{repo_name}"


DULWICH_PYTHON = "/usr/bin/python3"  # Debian's python3-dulwich is installed for the system python


class DulwichDaemon(_Server):
    """Dulwich's git:// server (Debian's python3-dulwich, 0.21) exporting every
    repository under `base_path`: a protocol v0-only server written in Python.
    It runs under /usr/bin/python3 (the suite's python may be another one)
    through dulwich_daemon.py, because `dulwich daemon`'s FileSystemBackend
    joins the request path, which starts with '/', onto its base path and so
    serves /name.git from the file system root instead. Raises
    unittest.SkipTest when Dulwich is not importable there."""

    def __init__(self, base_path: Path) -> None:
        super().__init__()
        probe = subprocess.run([DULWICH_PYTHON, "-c", "import dulwich.server"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL) if os.access(DULWICH_PYTHON, os.X_OK) else None
        if probe is None or probe.returncode != 0:
            raise unittest.SkipTest("Dulwich tests need python3-dulwich (scripts/install-deps.sh --test "
                                    "installs it)")
        self.base_path = Path(base_path)
        workdir = mkdtemp("dulwich-daemon-")
        self.log_path = workdir / "daemon.log"
        self.port = free_port()
        self._spawn([DULWICH_PYTHON, str(HERE / "dulwich_daemon.py"), str(self.base_path), str(self.port)],
                    cwd=workdir, env=git_env())

    def url_for(self, repo_name: str) -> str:
        """git:// URL of `repo_name` (a path relative to base_path)."""
        return f"git://127.0.0.1:{self.port}/{repo_name}"

    def upload_packs(self, repo_name: str) -> int:
        """How many upload-pack connections `repo_name` has had (a `verbose` daemon)."""
        return self.log().count(f"Request upload-pack for '/{repo_name}'")


class GitFaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of a smart-HTTP server (SmartHttp)
    that drops upload-pack responses carrying a pack: the response to a POST
    whose request wants objects ("want " lines, also when gzip-encoded) is cut
    after `drop_after` bytes of its body and the connection reset (TCP RST),
    as a flaky network or load balancer does mid-pack. Which of those
    responses are dropped: the first `count` ones, then each with probability
    `rate` (a generator seeded with `seed`). Other requests (info/refs,
    ls-refs) pass untouched. With `answer` set, every such response is
    replaced by those bytes instead (HTTP 200), as a hostile server would
    answer a fetch. With `stall` set, such a request is never answered: the
    connection stays open until the proxy stops, as a server that hangs once
    the refs are listed (the listing passes). A context manager; runs in
    daemon threads."""

    def __init__(self, backend_port: int, drop_after: int = 1024, count: int = 0, rate: float = 0.0,
                 seed: int = 0, answer: bytes | None = None, stall: bool = False) -> None:
        import http.server
        import random
        self.backend_port = backend_port
        self.drop_after = drop_after
        self.count = count
        self.rate = rate
        self.random = random.Random(seed)
        self.answer = answer
        self.stall = stall
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.dropped = 0       # pack responses cut short
        self.passed = 0        # pack responses delivered whole
        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url_for(self, repo_name: str) -> str:
        return f"http://127.0.0.1:{self.port}/git/{repo_name}"

    def configure(self, count: int | None = None, rate: float | None = None) -> None:
        with self.lock:
            if count is not None:
                self.count = count
            if rate is not None:
                self.rate = rate

    def _should_drop(self) -> bool:
        with self.lock:
            if self.count > 0:
                self.count -= 1
                drop = True
            else:
                drop = self.random.random() < self.rate
            if drop:
                self.dropped += 1
            else:
                self.passed += 1
            return drop

    def stop(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _handler_class(self):
        import gzip
        import http.client
        import http.server
        from s3harness import reset_connection
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                plain = body
                if self.headers.get("Content-Encoding", "").lower() in ("gzip", "x-gzip") and body:
                    try:
                        plain = gzip.decompress(body)
                    except OSError:
                        plain = body
                wants_pack = self.command == "POST" and self.path.endswith("/git-upload-pack") and (
                    b"want " in plain)
                if wants_pack and proxy.stall:
                    proxy.stopped.wait()
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "host")}
                conn = http.client.HTTPConnection("127.0.0.1", proxy.backend_port, timeout=120)
                try:
                    conn.request(self.command, self.path, body=body if body else None, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    status, reason, response_headers = response.status, response.reason, response.getheaders()
                finally:
                    conn.close()
                if wants_pack and status == 200 and proxy.answer is not None:
                    status, data = 200, proxy.answer
                    response_headers = [("Content-Type", "application/x-git-upload-pack-result")]
                drop = wants_pack and status == 200 and proxy.answer is None and proxy._should_drop()
                self.send_response(status, reason)
                for name, value in response_headers:
                    if name.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not drop:
                    self.wfile.write(data)
                    return
                reset_connection(self, data[:proxy.drop_after])

            do_GET = do_POST = _handle

        return Handler


class SmartHttpLfs(SmartHttp):
    """SmartHttp with a Git LFS server (lfs_server.LfsServer, in this process)
    behind lighttpd's mod_proxy for every `/git/<repo>/info/lfs/...` path, so
    the LFS URL that git-lfs and the snapshotter derive from the clone URL
    (`<url>.git/info/lfs`) reaches it with the same basic auth as git.
    `lfs_options` go to LfsServer (object_host, expires_in, ...); `self.lfs`
    is the server, for its test hooks. stop() stops both."""

    def __init__(self, project_root: Path, users: dict[str, str], **lfs_options) -> None:
        from .lfs_server import LfsServer
        self.lfs = LfsServer(users, **lfs_options)
        try:
            super().__init__(project_root, users)
        except BaseException:
            self.lfs.stop()
            raise

    def config(self, docroot: Path, workdir: Path, userfile: Path) -> str:
        # mod_proxy handles the request before mod_cgi would: LFS paths never reach git-http-backend.
        return super().config(docroot, workdir, userfile).replace(
            '"mod_cgi")', '"mod_proxy", "mod_cgi")') + f"""
$HTTP["url"] =~ "^/git/.+/info/lfs(/|$)" {{
    proxy.server = ("" => (("host" => "127.0.0.1", "port" => {self.lfs.port})))
}}
"""

    def stop(self) -> None:
        super().stop()
        self.lfs.stop()
