"""Shared helpers for the integration suite.

The tests run the real `snapshotter` binary (path in $SNAPSHOTTER_BIN) against
real git repositories served on 127.0.0.1 by `git daemon` and by lighttpd
running `git http-backend` with basic auth. Nothing here mocks git.

Every process the harness starts runs in its own session and is killed (the
whole process group) at teardown and, as a safety net, at interpreter exit.
Every file lives under one tempfile.mkdtemp() root that is removed at exit.

Typical use in a test module:

    import harness

    def setUpModule():
        harness.setup_module()

    def tearDownModule():
        harness.teardown_module()
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
from pathlib import Path
from typing import Any, Iterable

HERE = Path(__file__).resolve().parent
SOURCE_ROOT = HERE.parent.parent

LIGHTTPD = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
GIT_HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"

DEFAULT_RUN_TIMEOUT_S = 180

# --------------------------------------------------------------------------
# Temp root and process registry (with an atexit safety net)
# --------------------------------------------------------------------------

_lock = threading.RLock()
_tmp_root: Path | None = None
_procs: list[subprocess.Popen] = []


def tmp_root() -> Path:
    """The suite's private temp directory, created on first use."""
    global _tmp_root
    with _lock:
        if _tmp_root is None:
            _tmp_root = Path(tempfile.mkdtemp(prefix="snapshotter-itest-"))
        return _tmp_root


def mkdtemp(prefix: str = "t-") -> Path:
    """A fresh directory under the suite's temp root."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=tmp_root()))


def _register(proc: subprocess.Popen) -> None:
    with _lock:
        _procs.append(proc)


def kill_process_group(proc: subprocess.Popen, grace_s: float = 3.0) -> None:
    """SIGTERM then SIGKILL the process group led by `proc` and reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    # The leader may be gone while children of its group live on.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    with _lock:
        if proc in _procs:
            _procs.remove(proc)


def cleanup_all() -> None:
    """Stop the S3 service, kill every registered process and remove the temp root."""
    global _tmp_root
    stop_s3_service()
    with _lock:
        procs = list(_procs)
    for proc in procs:
        kill_process_group(proc)
    with _lock:
        root, _tmp_root = _tmp_root, None
    if root is not None and root.exists():
        shutil.rmtree(root, ignore_errors=True)


atexit.register(cleanup_all)


def _on_sigterm(signum, frame):  # pragma: no cover - only when killed
    raise SystemExit(128 + signum)  # runs the atexit cleanup


def setup_module() -> None:
    """Call from setUpModule: check the binary and create the temp root."""
    snapshotter_bin()
    tmp_root()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def teardown_module() -> None:
    """Call from tearDownModule: kill servers, remove temp files."""
    cleanup_all()


# --------------------------------------------------------------------------
# Ports and servers
# --------------------------------------------------------------------------


def descendants(pid: int) -> set[int]:
    """Every live descendant of process `pid` (children, their children, ...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            # pid (comm) state ppid ...: comm may hold spaces and ')', so split after the last ')'.
            children.setdefault(int(stat[stat.rindex(b")") + 2:].split()[1]), []).append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout_s: float = 10.0) -> None:
    """Wait until 127.0.0.1:`port` accepts connections (or `proc` dies)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


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
    """`git daemon` exporting every repository under `base_path` (push enabled)."""

    def __init__(self, base_path: Path) -> None:
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
                str(self.base_path),
            ],
            cwd=workdir,
            env=git_env(),
        )

    def url_for(self, repo_name: str) -> str:
        """git:// URL of `repo_name` (a path relative to base_path)."""
        return f"git://127.0.0.1:{self.port}/{repo_name}"


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
        conf.write_text(
            f"""
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
        )
        self.workdir = workdir
        self._spawn([LIGHTTPD, "-D", "-f", str(conf)], cwd=workdir)

    def log(self) -> str:
        text = super().log()
        err = self.workdir / "error.log" if hasattr(self, "workdir") else None
        if err and err.exists():
            text += err.read_text(errors="replace")
        return text

    def url_for(self, repo_name: str) -> str:
        """http:// URL of `repo_name` (a path relative to project_root), no credentials."""
        return f"http://127.0.0.1:{self.port}/git/{repo_name}"


JGIT = shutil.which("jgit") or "/usr/bin/jgit"
JAVA_DIR = Path("/usr/share/java")
# What `jgit daemon` loads besides the org.eclipse.jgit jars: Debian's /usr/bin/jgit
# puts only org.eclipse.jgit.pgm.jar on the class path and expects the rest in
# $JGIT_CLASSPATH.
JGIT_DEPENDENCIES = ("args4j", "jsch", "javaewah", "slf4j-api", "slf4j-nop", "jzlib", "gson",
                     "httpclient", "httpcore", "commons-logging", "commons-codec", "commons-compress")


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
    answer a fetch. A context manager; runs in daemon threads."""

    def __init__(self, backend_port: int, drop_after: int = 1024, count: int = 0, rate: float = 0.0,
                 seed: int = 0, answer: bytes | None = None) -> None:
        import http.server
        import random
        self.backend_port = backend_port
        self.drop_after = drop_after
        self.count = count
        self.rate = rate
        self.random = random.Random(seed)
        self.answer = answer
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


# --------------------------------------------------------------------------
# git
# --------------------------------------------------------------------------

_git_home: Path | None = None


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """An isolated environment for the harness's own git commands."""
    global _git_home
    with _lock:
        if _git_home is None or not _git_home.exists():
            home = Path(tempfile.mkdtemp(prefix="git-home-", dir=tmp_root()))
            (home / ".gitconfig").write_text(
                "[user]\n\tname = Itest\n\temail = itest@example.com\n"
                "[init]\n\tdefaultBranch = main\n"
                "[protocol \"file\"]\n\tallow = always\n"
                "[advice]\n\tdetachedHead = false\n"
                "[gc]\n\tauto = 0\n"
            )
            _git_home = home
        home = _git_home
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
    }
    if extra:
        env.update(extra)
    return env


def git(*args: str, cwd: Path | str | None = None, git_dir: Path | str | None = None,
        check: bool = True, input: bytes | None = None) -> str:
    """Run git and return its stdout as text; raise with stderr on failure."""
    argv = ["git"]
    if git_dir is not None:
        argv.append(f"--git-dir={git_dir}")
    argv += list(args)
    p = subprocess.run(argv, cwd=cwd, env=git_env(), input=input,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    return p.stdout.decode("utf-8", errors="surrogateescape")


def git_version() -> str:
    """'2.39.5' for 'git version 2.39.5'."""
    return git("--version").split()[2]


def refs_of(repo: Path | str) -> str:
    """`git for-each-ref --format='%(objectname) %(objecttype) %(refname)'` of a (bare) repository."""
    return git("for-each-ref", "--format=%(objectname) %(objecttype) %(refname)", git_dir=repo)


def ref_map(repo: Path | str) -> dict[str, dict[str, str]]:
    """{refname: {"oid": ..., "peeled": ...}} as a manifest writes it.

    "peeled" is present for annotated tags only and is the fully peeled object
    (git's meaning of peeled, as in `ls-remote`'s `^{}` lines and packed-refs):
    for a tag of a tag it is the commit, not the inner tag.
    """
    out: dict[str, dict[str, str]] = {}
    tags = []
    for line in refs_of(repo).splitlines():
        oid, objtype, name = line.split(" ", 2)
        out[name] = {"oid": oid}
        if objtype == "tag":
            tags.append(name)
    if tags:
        peeled = git("rev-parse", *[f"{name}^{{}}" for name in tags], git_dir=repo).split()
        for name, oid in zip(tags, peeled, strict=True):
            out[name]["peeled"] = oid
    return out


def head_symref(repo: Path | str) -> str | None:
    """Where HEAD points ('refs/heads/develop'), or None for a detached HEAD."""
    out = git("symbolic-ref", "-q", "HEAD", git_dir=repo, check=False).strip()
    return out or None


def refs_and_head(repo: Path | str) -> tuple[str, str | None]:
    """(for-each-ref output, HEAD symref) of a repository."""
    return refs_of(repo), head_symref(repo)


def object_format(repo: Path | str) -> str:
    return git("rev-parse", "--show-object-format", git_dir=repo).strip()


def fsck(repo: Path | str) -> subprocess.CompletedProcess:
    """`git fsck --full --strict` of a repository (returns the CompletedProcess)."""
    return subprocess.run(["git", f"--git-dir={repo}", "fsck", "--full", "--strict", "--no-progress"],
                          env=git_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


# --------------------------------------------------------------------------
# Upstream repository builders
# --------------------------------------------------------------------------


class Upstream:
    """A bare upstream repository plus a work tree that pushes into it."""

    def __init__(self, bare: Path, work: Path) -> None:
        self.bare = Path(bare)
        self.work = Path(work)

    # -- inspection -------------------------------------------------------
    def refs(self) -> str:
        return refs_of(self.bare)

    def ref_map(self) -> dict[str, dict[str, str]]:
        return ref_map(self.bare)

    def head(self) -> str | None:
        return head_symref(self.bare)

    def object_format(self) -> str:
        return object_format(self.bare)

    # -- changes ----------------------------------------------------------
    def git(self, *args: str, input: bytes | None = None) -> str:
        return git(*args, cwd=self.work, input=input)

    def commit_file(self, path: str, content: bytes | str, message: str | None = None) -> str:
        """Write `path` in the work tree, commit it, return the new commit id."""
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        target.write_bytes(content)
        self.git("add", "--", path)
        self.git("commit", "-q", "-m", message or f"change {path}")
        return self.git("rev-parse", "HEAD").strip()

    def checkout(self, branch: str, create: bool = False, orphan: bool = False) -> None:
        if orphan:
            self.git("checkout", "-q", "--orphan", branch)
        elif create:
            self.git("checkout", "-q", "-b", branch)
        else:
            self.git("checkout", "-q", branch)

    def push(self, *refspecs: str, force: bool = False) -> None:
        args = ["push", "-q"] + (["--force"] if force else []) + ["origin"] + list(refspecs)
        self.git(*args)

    def set_head(self, ref: str) -> None:
        git("symbolic-ref", "HEAD", ref, git_dir=self.bare)

    def delete_ref(self, ref: str) -> None:
        self.push(f":{ref}")

    def copy_to(self, dest_root: Path, name: str) -> "Upstream":
        """A full copy (bare + work tree) at dest_root/name.git, work tree beside it."""
        bare = Path(dest_root) / f"{name}.git"
        work = mkdtemp("work-") / "w"
        bare.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.bare, bare, symlinks=True)
        shutil.copytree(self.work, work, symlinks=True)
        git("remote", "set-url", "origin", str(bare), cwd=work)
        return Upstream(bare, work)


def new_upstream(root: Path, name: str, object_format: str = "sha1") -> Upstream:
    """An empty bare repository root/name.git and a work tree cloned from it."""
    bare = Path(root) / f"{name}.git"
    bare.parent.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "--bare", f"--object-format={object_format}", str(bare))
    work = mkdtemp("work-") / "w"
    git("init", "-q", f"--object-format={object_format}", str(work))
    git("remote", "add", "origin", str(bare), cwd=work)
    return Upstream(bare, work)


def build_rich(root: Path, name: str = "rich", object_format: str = "sha1", tag_of_tag: bool = True) -> Upstream:
    """Branches (main, develop, feature/x, an orphan), lightweight and annotated
    tags (with `tag_of_tag`, one annotated tag on an annotated tag), HEAD on
    develop (not the default)."""
    up = new_upstream(root, name, object_format)
    up.commit_file("README", "hello\n", "initial")
    up.commit_file("src/a.txt", "a\n", "add a")
    up.git("tag", "v0.1")  # lightweight
    up.git("tag", "-a", "-m", "release 1.0", "v1.0")  # annotated
    up.checkout("develop", create=True)
    up.commit_file("src/b.txt", "b\n", "add b")
    up.commit_file("src/c.txt", "c\n", "add c")
    up.git("tag", "-a", "-m", "beta", "v2.0-beta")
    if tag_of_tag:
        up.git("tag", "-a", "-m", "tag of a tag", "v2.0-beta-signed", "v2.0-beta")
    up.checkout("feature/x", create=True)
    up.commit_file("feature.txt", "x1\n", "feature x 1")
    up.commit_file("feature.txt", "x2\n", "feature x 2")
    up.checkout("pages", orphan=True)
    up.git("rm", "-q", "-rf", ".")
    up.commit_file("index.html", "<html></html>\n", "orphan pages")
    up.checkout("main")
    up.push("--all")
    up.push("--tags")
    up.set_head("refs/heads/develop")
    return up


def build_empty(root: Path, name: str = "empty", head: str = "refs/heads/trunk") -> Upstream:
    """A repository with no commits; its unborn HEAD points at `head`."""
    up = new_upstream(root, name)
    up.set_head(head)
    return up


def build_sha256(root: Path, name: str = "sha256") -> Upstream:
    """The rich repository in the SHA-256 object format."""
    return build_rich(root, name, object_format="sha256")


def shallow_clone(up: Upstream, dest: Path, depth: int) -> Path:
    """A bare `git clone --depth` of `up` at `dest`: a shallow upstream, as some CI caches serve."""
    git("clone", "-q", "--bare", "--no-local", f"--depth={depth}", "--no-single-branch", f"file://{up.bare}",
        str(dest))
    assert (Path(dest) / "shallow").is_file(), "the clone is not shallow"
    return Path(dest)


UNICODE_BRANCH = "feature/ünïcødé/a/b/c/d/e/f"
UNICODE_TAG = "日本語"
NESTED_BRANCH = "team/" + "/".join(f"level{i}" for i in range(1, 13)) + "/leaf"


def build_unicode(root: Path, name: str = "unicode") -> Upstream:
    """Unicode and deeply nested ref names; HEAD on the unicode branch."""
    up = new_upstream(root, name)
    up.commit_file("README", "unicode\n", "initial")
    up.checkout(UNICODE_BRANCH, create=True)
    up.commit_file("ü.txt", "ü\n", "ünïcødé commit")
    up.git("tag", UNICODE_TAG)
    up.git("tag", "-a", "-m", "タグ", "リリース/1.0")
    up.checkout(NESTED_BRANCH, create=True)
    up.commit_file("deep.txt", "deep\n", "deep")
    up.checkout("main")
    up.push("--all")
    up.push("--tags")
    up.set_head(f"refs/heads/{UNICODE_BRANCH}")
    return up


def build_random_blob(root: Path, name: str, size: int) -> Upstream:
    """A repository whose main branch holds `size` random bytes in blob.bin, stored
    uncompressed (random data does not compress), so its pack is a bit over `size`."""
    up = new_upstream(root, name)
    for repo in (up.work, up.bare):
        git("config", "core.compression", "0", cwd=repo)
    up.commit_file("README", f"{name}\n", "initial")
    up.commit_file("blob.bin", os.urandom(size), f"{size} random bytes")
    up.push("--all")
    return up


BIG_FILE_SIZE = 50 * 1024 * 1024
_big_file: Path | None = None


def big_file() -> Path:
    """A 50 MB file of random bytes, generated once per process."""
    global _big_file
    with _lock:
        if _big_file is None or not _big_file.exists():
            path = Path(tempfile.mkdtemp(prefix="bigfile-", dir=tmp_root())) / "blob.bin"
            with open(path, "wb") as f:
                f.write(os.urandom(BIG_FILE_SIZE))
            _big_file = path
        return _big_file


def build_bigfile(root: Path, name: str = "bigfile") -> Upstream:
    """A repository whose main branch holds a 50 MB binary file."""
    up = new_upstream(root, name)
    # Random data does not compress: store it without trying, on both sides.
    for repo in (up.work, up.bare):
        git("config", "core.compression", "0", cwd=repo)
        git("config", "core.bigFileThreshold", "1m", cwd=repo)
    up.commit_file("README", "big\n", "initial")
    shutil.copyfile(big_file(), up.work / "blob.bin")
    up.git("add", "blob.bin")
    up.git("commit", "-q", "-m", "add a 50 MB binary file")
    up.push("--all")
    return up


# --------------------------------------------------------------------------
# Running the binary
# --------------------------------------------------------------------------


def snapshotter_bin() -> str:
    """Path of the binary under test: $SNAPSHOTTER_BIN, else build/snapshotter."""
    path = os.environ.get("SNAPSHOTTER_BIN") or str(SOURCE_ROOT / "build" / "snapshotter")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"snapshotter binary not found at {path!r}; set SNAPSHOTTER_BIN")
    return path


def sanitizer_runtimes(binary: str) -> list[str]:
    """The sanitizer runtimes `binary` links (libasan, libubsan, libtsan: a
    scripts/sanitize.sh build), by ldd; empty for a plain build. Memory and
    packaging checks that mean nothing under instrumentation skip on these."""
    p = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return sorted({line.split()[0] for line in p.stdout.splitlines()
                   if line.strip().startswith(("libasan", "libubsan", "libtsan"))})


def is_minified_json_text(text: str) -> bool:
    """True when `text` has no whitespace outside JSON strings."""
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in " \t\r\n":
            return False
    return True


class OutputError(AssertionError):
    pass


def check_stdout(raw: bytes) -> dict:
    """Assert `raw` is exactly one line of minified JSON (an object); return it parsed."""
    if raw.endswith(b"\n"):
        body = raw[:-1]
    else:
        body = raw
    if not body:
        raise OutputError("stdout is empty; expected one line of JSON")
    if b"\n" in body:
        raise OutputError(f"stdout has more than one line: {raw[:2000]!r}")
    try:
        text = body.decode("utf-8")
        parsed = json.loads(text)
    except (UnicodeDecodeError, ValueError) as e:
        raise OutputError(f"stdout is not JSON ({e}): {raw[:2000]!r}")
    if not isinstance(parsed, dict):
        raise OutputError(f"stdout JSON is not an object: {raw[:2000]!r}")
    if not is_minified_json_text(text):
        raise OutputError(f"stdout JSON is not minified: {raw[:2000]!r}")
    if not isinstance(parsed.get("ok"), bool):
        raise OutputError(f"stdout JSON has no boolean \"ok\": {raw[:2000]!r}")
    return parsed


class Run:
    """The outcome of one snapshotter run; unpacks as (rc, out, stdout, stderr)."""

    def __init__(self, argv, rc, out, stdout, stderr, duration_s):
        self.argv, self.rc, self.out, self.stdout, self.stderr = argv, rc, out, stdout, stderr
        self.duration_s = duration_s

    def __iter__(self):
        return iter((self.rc, self.out, self.stdout, self.stderr))

    def describe(self) -> str:
        return (f"argv={self.argv}\nrc={self.rc}\nstdout={self.stdout.decode(errors='replace')}\n"
                f"stderr (tail)={self.stderr.decode(errors='replace')[-3000:]}")


def snapshotter_env(home: Path | None = None, tmpdir: Path | None = None,
                    extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for the binary: no GIT_*, SNAPSHOTTER_* or AWS_* leaking in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "SNAPSHOTTER_", "AWS_")) and k not in ("XDG_CACHE_HOME",)}
    env["LANG"] = env["LC_ALL"] = "C.UTF-8"
    if home is not None:
        env["HOME"] = str(home)
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    if extra:
        env.update(extra)
    return env


def run_snapshotter(payload: dict | str | bytes | None, args: Iterable[str] = (), env: dict[str, str] | None = None,
                    job_file: Path | str | None = None, timeout_s: float = DEFAULT_RUN_TIMEOUT_S,
                    check_output: bool = True, preexec_fn=None, on_start=None) -> Run:
    """Run the binary; the payload (a dict, or raw text) goes in $SNAPSHOTTER_JOB_JSON.

    `job_file` adds `--job-file PATH`. `env` is the full environment (default:
    snapshotter_env()). Asserts stdout is exactly one line of minified JSON
    unless `check_output` is false. `preexec_fn` runs in the child before the
    exec (resource limits); `on_start(proc)` is called once it runs (to watch
    it from /proc). Returns a Run: rc, out (parsed), stdout, stderr.
    """
    run_env = dict(env) if env is not None else snapshotter_env()
    run_env.pop("SNAPSHOTTER_JOB_JSON", None) if payload is None else None
    if payload is not None:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        elif isinstance(payload, bytes):
            payload = payload.decode("utf-8", errors="surrogateescape")
        run_env["SNAPSHOTTER_JOB_JSON"] = payload
    argv = [snapshotter_bin()]
    if job_file is not None:
        argv += ["--job-file", str(job_file)]
    argv += list(args)
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=run_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, preexec_fn=preexec_fn)
    _register(proc)
    try:
        if on_start is not None:
            on_start(proc)
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_process_group(proc)
        stdout, stderr = proc.communicate()
        raise AssertionError(f"snapshotter timed out after {timeout_s}s: {argv}\nstderr: {stderr[-3000:]!r}")
    finally:
        kill_process_group(proc, grace_s=0.5)
    duration = time.monotonic() - start
    out = None
    if check_output:
        try:
            out = check_stdout(stdout)
        except OutputError as e:
            raise OutputError(f"{e}\nrc={proc.returncode}\nstderr (tail)={stderr.decode(errors='replace')[-3000:]}")
    else:
        try:
            out = json.loads(stdout)
        except ValueError:
            out = None
    return Run(argv, proc.returncode, out, stdout, stderr, duration)


# --------------------------------------------------------------------------
# Storage layout (docs: CONTRACT "Storage layout")
# --------------------------------------------------------------------------


def repo_key(name: str) -> str:
    """Every byte outside [A-Za-z0-9._-] percent-encoded as %XX uppercase."""
    return "".join(chr(b) if (chr(b).isascii() and (chr(b).isalnum() or chr(b) in "._-")) else f"%{b:02X}"
                   for b in name.encode("utf-8"))


def manifest_key(name: str, snapshot_id: str) -> str:
    return f"repos/{repo_key(name)}/manifests/{snapshot_id}.json"


def bundle_key(name: str, snapshot_id: str) -> str:
    return f"repos/{repo_key(name)}/bundles/{snapshot_id}.bundle"


def latest_key(name: str) -> str:
    return f"repos/{repo_key(name)}/latest.json"


SNAPSHOT_ID_RE = re.compile(r"^\d{8}T\d{6}\.\d{3}Z-[0-9a-z]+$")
RFC3339_UTC_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


# --------------------------------------------------------------------------
# Storage backends seen from the tests: file:// and s3:// (moto behind the
# strict SigV4 front of s3harness.py)
# --------------------------------------------------------------------------

S3_BUCKET = "snapshotter-itest"
# A bucket created with Object Lock enabled (on both servers).
S3_LOCK_BUCKET = "snapshotter-itest-lock"
# The S3 servers the s3:// tests run against: moto behind the strict front,
# and Ceph RGW (rgw.py) behind the same front. SNAPSHOTTER_S3_SERVERS=moto
# leaves RGW out (it costs ~15 s to start, once per test process).
S3_SERVERS = ("moto", "rgw")
_s3_services: dict = {}


def s3_servers() -> list[str]:
    """The S3 servers selected by SNAPSHOTTER_S3_SERVERS (default: all)."""
    chosen = os.environ.get("SNAPSHOTTER_S3_SERVERS", ",".join(S3_SERVERS)).split(",")
    return [s for s in S3_SERVERS if s in chosen]


def s3_service(server: str = "moto"):
    """The S3 service `server` ("moto" or "rgw") of this test process, behind
    the strict SigV4-checking front, with S3_BUCKET and S3_LOCK_BUCKET created;
    started on first use and stopped by teardown_module (cleanup_all). Raises
    unittest.SkipTest when the server is not installed or not selected."""
    with _lock:
        if server not in _s3_services:
            import s3harness
            if server not in s3_servers():
                raise unittest.SkipTest(f"S3 server {server} not selected by SNAPSHOTTER_S3_SERVERS")
            if server == "rgw":
                import rgw
                if rgw.missing_tools():
                    raise unittest.SkipTest(f"RGW tests need Ceph ({', '.join(rgw.missing_tools())} missing; "
                                            "scripts/install-deps.sh --test installs it)")
                service = rgw.RgwService()
            else:
                if s3harness.moto_server_path() is None:
                    raise unittest.SkipTest("s3:// tests need moto_server (pip install 'moto[server]'); "
                                            "not installed")
                service = s3harness.S3Harness()
            service.start()
            try:
                client = service.boto3_client()
                client.create_bucket(Bucket=S3_BUCKET)
                client.create_bucket(Bucket=S3_LOCK_BUCKET, ObjectLockEnabledForBucket=True)
            except BaseException:
                service.stop()
                raise
            _s3_services[server] = service
        return _s3_services[server]


def stop_s3_service() -> None:
    with _lock:
        services = list(_s3_services.values())
        _s3_services.clear()
    for service in services:
        service.stop()


class Store:
    """What the tests need of a storage backend, whatever it is: the payload's
    storage object, the environment the binary needs, and reading, listing,
    rewriting and watching the stored objects by key (docs: "Storage layout")."""

    kind = ""

    def storage(self) -> dict:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {}

    def create(self) -> None:
        """Make the (empty) storage root exist, as an operator would before a first run."""

    def keys(self, prefix: str = "") -> list[str]:
        """Every stored key under `prefix`, sorted."""
        raise NotImplementedError

    def read(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError when it does not exist."""
        raise NotImplementedError

    def write(self, key: str, data: bytes) -> None:
        """Replace (or create) an object behind the binary's back."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def size(self, key: str) -> int:
        return len(self.read(key))

    def sha256(self, key: str) -> str:
        return hashlib.sha256(self.read(key)).hexdigest()

    def json(self, key: str):
        return json.loads(self.read(key))

    def flip_middle_byte(self, key: str) -> None:
        data = bytearray(self.read(key))
        data[len(data) // 2] ^= 0xFF
        self.write(key, bytes(data))

    def state(self) -> Any:
        """An opaque mark of everything stored now, for changes_since()."""
        raise NotImplementedError

    def changes_since(self, mark) -> str:
        """What changed since `mark` ('' when nothing did), readable."""
        raise NotImplementedError


class FileStore(Store):
    """file:// storage in a local directory."""

    kind = "file"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def url(self) -> str:
        return f"file://{self.root}"

    def storage(self) -> dict:
        return {"url": self.url}

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def path_of(self, key: str) -> Path:
        return self.root / key

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for k, v in tree_state(self.root).items() if v[0] == "file" and k.startswith(prefix))

    def read(self, key: str) -> bytes:
        return self.path_of(key).read_bytes()

    def write(self, key: str, data: bytes) -> None:
        path = self.path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.chmod(0o644)  # the binary may store objects read-only
        path.write_bytes(data)

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def size(self, key: str) -> int:
        return self.path_of(key).stat().st_size

    def sha256(self, key: str) -> str:
        return sha256_file(self.path_of(key))

    def state(self) -> dict:
        # Content, mode and mtime of every file and directory, and the list of names.
        return tree_state(self.root, with_mtimes=True)

    def changes_since(self, mark) -> str:
        return diff_states(mark, self.state())


class S3Store(Store):
    """s3://S3_BUCKET/<prefix> on the module's S3 service, with the options a
    payload gives the S3 backend (endpoint, region, path addressing, SSE-S3).
    The binary gets static credentials through the environment; the harness
    reads and writes through boto3 (also through the strict front)."""

    kind = "s3"
    SSE = "AES256"
    _prefixes = itertools.count(1)

    def __init__(self, prefix: str | None = None, server: str = "moto", bucket: str = S3_BUCKET) -> None:
        import s3harness
        self.server = server
        self.service = s3_service(server)
        self.s3harness = s3harness
        self.bucket = bucket
        # RGW 16.2 has no SSE-S3 (AES256 is accepted over HTTP, not applied): SSE-KMS with its testing KMS.
        if server == "rgw":
            import rgw
            self.SSE = "aws:kms"
            self.sse_options = {"sse": "aws:kms", "kms_key_id": rgw.KMS_KEY_ID}
        else:
            self.sse_options = {"sse": self.SSE}
        self.prefix = prefix or f"ws-{os.getpid()}-{next(S3Store._prefixes)}"
        self.client = self.service.boto3_client()

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def endpoint(self) -> str:
        return self.service.endpoint

    def storage(self) -> dict:
        return {"url": self.url, "endpoint": self.endpoint, "region": self.s3harness.REGION,
                "addressing": "path", **self.sse_options}

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.s3harness.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": self.s3harness.SECRET_KEY,
                "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost"}

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}"

    def _objects(self, prefix: str = "") -> dict[str, dict]:
        out = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.object_key(prefix)):
            for obj in page.get("Contents", []):
                out[obj["Key"][len(self.prefix) + 1:]] = obj
        return out

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(self._objects(prefix))

    def read(self, key: str) -> bytes:
        from botocore.exceptions import ClientError
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(f"{self.url}/{key}") from None
            raise

    def head(self, key: str) -> dict | None:
        from botocore.exceptions import ClientError
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data)

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def size(self, key: str) -> int:
        head = self.head(key)
        if head is None:
            raise FileNotFoundError(f"{self.url}/{key}")
        return head["ContentLength"]

    def state(self) -> tuple:
        # Every object's ETag, size and time, and where the front's request log stands:
        # changes_since() also reports any write request (PUT, POST, DELETE) the
        # binary sent since, even one that left the same bytes behind.
        objects = {k: (o["ETag"], o["Size"], o["LastModified"].isoformat()) for k, o in self._objects().items()}
        with self.service.front.lock:
            position = len(self.service.front.log)
        return objects, position

    def changes_since(self, mark) -> str:
        before, position = mark
        after, _ = self.state()
        with self.service.front.lock:
            requests = list(self.service.front.log[position:])
        mine = "/%s/%s/" % (self.bucket, self.prefix)
        writes = [f"request {m} {p}{'?' + q if q else ''} -> {status}" for m, p, q, status, _ in requests
                  if m in ("PUT", "POST", "DELETE") and urllib.parse.unquote(p).startswith(mine)]
        return "\n".join(filter(None, [diff_states(before, after)] + writes))


def make_store(kind: str, root: Path) -> Store:
    """A store of `kind` ("file" or "s3"); the file store lives at root/storage."""
    if kind == "file":
        return FileStore(Path(root) / "storage")
    if kind == "s3":
        return S3Store()
    if kind in ("s3-rgw", "rgw"):
        return S3Store(server="rgw")
    raise ValueError(f"unknown storage kind {kind!r}")


class Workspace:
    """A storage (file:// dir or s3:// prefix), a cache dir, a HOME and a TMPDIR
    for a series of runs. Tests read and change stored objects through
    `self.store` (a Store), so they run unchanged against either backend."""

    def __init__(self, prefix: str = "ws-", storage: str = "file") -> None:
        self.root = mkdtemp(prefix)
        self.store = make_store(storage, self.root)
        self.cache_dir = self.root / "cache"
        self.home = self.root / "home"
        self.tmp = self.root / "tmp"
        # Options every snapshot payload of this workspace gets (a test's own win).
        self.default_options: dict[str, Any] = {}
        self.home.mkdir()
        self.tmp.mkdir()

    @property
    def storage_dir(self) -> Path:
        """The storage directory (file:// workspaces only)."""
        if not isinstance(self.store, FileStore):
            raise AttributeError(f"a {self.store.kind}:// workspace has no storage directory")
        return self.store.root

    @property
    def storage_url(self) -> str:
        return self.store.url

    def storage(self) -> dict:
        return self.store.storage()

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        merged = dict(self.store.env())
        merged.update(extra or {})
        return snapshotter_env(self.home, self.tmp, merged)

    # -- payloads ---------------------------------------------------------
    _job_ids = itertools.count(1)

    def snapshot_payload(self, repositories: list[dict], options: dict | None = None,
                         job_id: str | None = None) -> dict:
        """A snapshot payload; each call gets a new job_id unless one is given
        (a run with the job_id of an earlier run resumes that job)."""
        if job_id is None:
            job_id = f"itest-{next(Workspace._job_ids)}"
        self.last_job_id = job_id
        opts = {"cache_dir": str(self.cache_dir)}
        opts.update(self.default_options)
        opts.update(options or {})
        return {"version": 1, "action": "snapshot", "job_id": job_id, "storage": self.storage(),
                "repositories": repositories, "options": opts}

    def restore_payload(self, repository: str, target: Path | str, snapshot: str = "latest") -> dict:
        return {"version": 1, "action": "restore", "storage": self.storage(),
                "restore": {"repository": repository, "snapshot": snapshot, "target": str(target)}}

    def verify_payload(self, repositories: list[str] | None = None, snapshot: str = "latest",
                       drill: bool = True) -> dict:
        spec: dict[str, Any] = {"snapshot": snapshot, "drill": drill}
        if repositories is not None:
            spec["repositories"] = repositories
        return {"version": 1, "action": "verify", "storage": self.storage(), "verify": spec}

    def list_payload(self, repository: str | None = None) -> dict:
        payload: dict[str, Any] = {"version": 1, "action": "list", "storage": self.storage()}
        if repository is not None:
            payload["list"] = {"repository": repository}
        return payload

    # -- runs -------------------------------------------------------------
    def run(self, payload, args: Iterable[str] = (), env_extra: dict[str, str] | None = None, **kw) -> Run:
        return run_snapshotter(payload, args=args, env=self.env(env_extra), **kw)

    def snapshot(self, repositories: list[dict], options: dict | None = None, args: Iterable[str] = (),
                 env_extra: dict[str, str] | None = None, job_id: str | None = None) -> Run:
        return self.run(self.snapshot_payload(repositories, options, job_id), args=args, env_extra=env_extra)

    def restore(self, repository: str, target: Path | str, snapshot: str = "latest") -> Run:
        return self.run(self.restore_payload(repository, target, snapshot))

    def verify(self, repositories: list[str] | None = None, snapshot: str = "latest", drill: bool = True) -> Run:
        return self.run(self.verify_payload(repositories, snapshot, drill))

    def list(self, repository: str | None = None) -> Run:
        return self.run(self.list_payload(repository))

    # -- storage ----------------------------------------------------------
    def path_of(self, key: str) -> Path:
        """The file of `key` (file:// workspaces only; use self.store otherwise)."""
        return self.storage_dir / key

    def manifest(self, name: str, snapshot_id: str) -> dict:
        return self.store.json(manifest_key(name, snapshot_id))

    def latest(self, name: str) -> dict:
        return self.store.json(latest_key(name))

    def new_target(self, name: str = "restored") -> Path:
        """A path that does not exist yet, for a restore."""
        return mkdtemp("target-") / name


# --------------------------------------------------------------------------
# Trees and secrets
# --------------------------------------------------------------------------


def tree_state(root: Path | str, with_mtimes: bool = False) -> dict[str, tuple]:
    """{relative path: (kind, sha256 or link target, mode[, mtime_ns])} for a whole tree.

    A missing root gives {}. Compare two states for "byte-for-byte unchanged".
    """
    root = Path(root)
    state: dict[str, tuple] = {}
    if not root.exists() and not root.is_symlink():
        return state
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            extra = (st.st_mtime_ns,) if with_mtimes else ()
            if stat.S_ISLNK(st.st_mode):
                state[rel] = ("link", os.readlink(path), None) + extra
            elif stat.S_ISDIR(st.st_mode):
                state[rel] = ("dir", None, stat.S_IMODE(st.st_mode)) + extra
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                state[rel] = ("file", h.hexdigest(), stat.S_IMODE(st.st_mode)) + extra
            else:
                state[rel] = ("other", None, stat.S_IMODE(st.st_mode)) + extra
    return state


def tree_digest(root: Path | str, with_mtimes: bool = False) -> str:
    """One SHA-256 over tree_state(root)."""
    return hashlib.sha256(json.dumps(sorted(tree_state(root, with_mtimes).items())).encode()).hexdigest()


def diff_states(before: dict, after: dict) -> str:
    """A readable list of what changed between two tree_state() results."""
    lines = []
    for k in sorted(set(before) | set(after)):
        if k not in before:
            lines.append(f"+ {k}")
        elif k not in after:
            lines.append(f"- {k}")
        elif before[k] != after[k]:
            lines.append(f"~ {k}: {before[k]} -> {after[k]}")
    return "\n".join(lines)


def secret_forms(secret: str, usernames: Iterable[str] = ()) -> list[bytes]:
    """The byte strings that would betray `secret`: raw, URL-encoded, and as a basic-auth header."""
    forms = {secret.encode(), urllib.parse.quote(secret, safe="").encode()}
    for user in usernames:
        forms.add(base64.b64encode(f"{user}:{secret}".encode()))
    return sorted(forms)


def find_bytes_in_tree(root: Path | str, needles: Iterable[bytes]) -> list[str]:
    """Paths (and symlink targets / file names) under `root` that contain any needle."""
    needles = list(needles)
    hits = []
    root = Path(root)
    if not root.exists():
        return hits
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if any(n in name.encode("utf-8", "surrogateescape") for n in needles):
                hits.append(f"{path} (name)")
            if path.is_symlink():
                if any(n in os.readlink(path).encode("utf-8", "surrogateescape") for n in needles):
                    hits.append(f"{path} (link)")
            elif path.is_file():
                data = path.read_bytes()
                for n in needles:
                    if n in data:
                        hits.append(f"{path} contains {n!r}")
    return hits


# --------------------------------------------------------------------------
# Assertions shared by the test modules
# --------------------------------------------------------------------------


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


SNAPSHOT_SUMMARY_KEYS = ("total", "ok", "unchanged", "failed")


def snapshot_summary(result: dict) -> dict:
    """The contract's counts of a snapshot result's summary (later fields, such as
    "skipped" or "bytes", are extensions and are not compared)."""
    summary = result.get("summary")
    if not isinstance(summary, dict):
        return {"summary": summary}
    return {k: summary.get(k) for k in SNAPSHOT_SUMMARY_KEYS}


class Assertions:
    """Mixin for unittest.TestCase with assertions about runs and repositories."""

    def assertRunOk(self, run: Run, msg: str = "") -> dict:
        """Exit 0 and {"ok": true, "result": {...}}; returns the result."""
        self.assertEqual(run.rc, 0, f"{msg}\nexpected exit 0\n{run.describe()}")
        self.assertIs(run.out.get("ok"), True, f"{msg}\n{run.describe()}")
        self.assertIsInstance(run.out.get("result"), dict, f"{msg}\n{run.describe()}")
        return run.out["result"]

    def assertRunFails(self, run: Run, rc: int, error: str, msg: str = "") -> dict:
        """Exit `rc` and {"ok": false, "error": `error`, "message": str}; returns the output."""
        self.assertEqual((run.rc, run.out.get("ok"), run.out.get("error")), (rc, False, error),
                         f"{msg}\nexpected exit {rc} with error {error}\n{run.describe()}")
        self.assertIsInstance(run.out.get("message"), str, f"{msg}\n{run.describe()}")
        return run.out

    def assertRepoEquals(self, restored: Path | str, upstream: "Upstream", msg: str = "") -> None:
        """Restored refs and HEAD equal upstream exactly; fsck --full is clean; same object format; bare."""
        self.assertTrue(Path(restored).is_dir(), f"{msg}: restore target {restored} does not exist")
        self.assertEqual(refs_of(restored), upstream.refs(), f"{msg}: for-each-ref differs from upstream")
        self.assertEqual(head_symref(restored), upstream.head(), f"{msg}: HEAD differs from upstream")
        self.assertEqual(object_format(restored), upstream.object_format(), f"{msg}: object format differs")
        self.assertEqual(git("rev-parse", "--is-bare-repository", git_dir=restored).strip(), "true",
                         f"{msg}: restored repository is not bare")
        p = fsck(restored)
        self.assertEqual(p.returncode, 0, f"{msg}: git fsck --full failed: {p.stdout!r} {p.stderr!r}")

    def assertStderrJsonLines(self, run: Run) -> None:
        """stderr is not a terminal here, so every log line is JSON with ts, level and msg."""
        for line in run.stderr.decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                self.fail(f"stderr line is not JSON: {line!r}")
            self.assertIsInstance(record, dict, line)
            self.assertTrue({"ts", "level", "msg"} <= set(record), f"stderr line lacks ts/level/msg: {line!r}")

    def assertTreeUnchanged(self, before: dict, after: dict, what: str) -> None:
        self.assertEqual(after, before, f"{what} changed:\n{diff_states(before, after)}")
