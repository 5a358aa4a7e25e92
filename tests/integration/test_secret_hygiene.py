"""Secret hygiene on every failure path the harness can reach (issue 6, item 7).

With a recognisable git token (and, for S3, recognisable AWS secrets) every
run below must fail or succeed without the secret appearing in any byte of
stdout, stderr, the stored objects (manifests, reports, bundles: every object
of the storage), the cache_dir tree, HOME or TMPDIR. While each run is going,
a sampler reads /proc/<pid>/cmdline and /proc/<pid>/environ of every
descendant of the snapshotter process: the token and the AWS secret key and
session token must appear in no child's argv and no child's environment (the
snapshotter process itself holds them in its environment by design; its
children must not inherit them).

Paths driven, with both engines where git is involved: a wrong token (401),
a URL where nothing listens, a repository that does not exist (404), a
server answering 500, a server that accepts and never answers (timeout_s 2),
a good token (the success path), and on the storage side S3 with a wrong
secret key, an unreachable S3 endpoint and the fault proxy at 100%.
"""

import http.server
import os
import socket
import threading
import time
import unittest

import harness

USER = "hygiene"
TOKEN = "tok-HYGIENE-c0ffee-5ecret-77aa"
WRONG_TOKEN = "tok-HYGIENE-wrong-0badbeef"
TOKEN_ENV = "SNAP_HYGIENE_TOKEN"
BAD_AWS_SECRET = "awsSECRET-hygiene/Wrong+Key=0123456789"
SESSION_TOKEN = "awsSESSION-hygiene-token-0123456789abcdef"

HTTP = None
SERVE = None
UPSTREAM = None


class _Answer500(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        body = b"Internal Server Error\n"
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET


class _Silent:
    """Accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def stop(self):
        self.sock.close()
        for c in self.held:
            c.close()


def setUpModule():
    global HTTP, SERVE, UPSTREAM
    harness.setup_module()
    SERVE = harness.mkdtemp("serve-")
    UPSTREAM = harness.build_rich(SERVE, "hygiene")
    HTTP = harness.SmartHttp(SERVE, {USER: TOKEN})


def tearDownModule():
    harness.teardown_module()


class ProcSampler:
    """Reads argv and environment of every descendant of a process, until it exits."""

    def __init__(self, needles_argv, needles_env):
        self.needles_argv = needles_argv
        self.needles_env = needles_env
        self.leaks = set()
        self.children_seen = set()   # argv[0] basenames of descendants seen
        self.credential_file_seen = False
        self.thread = None

    def start(self, proc):
        self.thread = threading.Thread(target=self._watch, args=(proc,), daemon=True)
        self.thread.start()

    def join(self):
        if self.thread is not None:
            self.thread.join()

    def _read(self, pid, what):
        try:
            with open(f"/proc/{pid}/{what}", "rb") as f:
                return f.read()
        except OSError:
            return b""

    @staticmethod
    def _exe(pid):
        try:
            return os.readlink(f"/proc/{pid}/exe")
        except OSError:
            return None

    def _watch(self, proc):
        root_exe = self._exe(proc.pid)
        while proc.poll() is None:
            for pid in harness.descendants(proc.pid):
                # A child between fork and exec still shows the parent's memory
                # (its environment included): judge it once it runs its own program.
                exe_before = self._exe(pid)
                argv = self._read(pid, "cmdline")
                env = self._read(pid, "environ")
                if root_exe in (exe_before, self._exe(pid)):
                    continue
                if argv:
                    self.children_seen.add(os.path.basename(argv.split(b"\0")[0]).decode(errors="replace"))
                if b"SNAPSHOTTER_GIT_CREDENTIAL_FILE=" in env:
                    self.credential_file_seen = True
                shown = argv.replace(b"\0", b" ").decode(errors="replace")
                for n in self.needles_argv:
                    if n in argv:
                        self.leaks.add(f"argv of {pid} ({shown[:200]}) holds {n!r}")
                for n in self.needles_env:
                    if n in env:
                        self.leaks.add(f"environment of {pid} ({shown[:200]}) holds {n!r}")
            time.sleep(0.001)


class SecretHygiene(harness.Assertions, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.answer500 = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer500)
        cls.answer500.daemon_threads = True
        threading.Thread(target=cls.answer500.serve_forever, daemon=True).start()
        cls.silent = _Silent()
        cls.children_seen = set()
        cls.credential_file_seen = False

    @classmethod
    def tearDownClass(cls):
        cls.answer500.shutdown()
        cls.answer500.server_close()
        cls.silent.stop()

    def secrets(self, ws):
        """Every secret of a run in `ws`, in each form that would betray it."""
        values = [TOKEN, WRONG_TOKEN, BAD_AWS_SECRET, SESSION_TOKEN]
        if ws.store.kind == "s3":
            values.append(ws.store.s3harness.SECRET_KEY)
        needles = []
        for v in values:
            needles += harness.secret_forms(v, [USER])
        return sorted(set(needles))

    def run_checked(self, ws, payload, env_extra, expect_ok):
        needles = self.secrets(ws)
        sampler = ProcSampler(needles, needles)
        run = ws.run(payload, env_extra=env_extra, args=["--log-level", "trace"], on_start=sampler.start)
        sampler.join()
        SecretHygiene.children_seen |= sampler.children_seen
        SecretHygiene.credential_file_seen |= sampler.credential_file_seen
        if expect_ok:
            self.assertRunOk(run)
        else:
            self.assertNotEqual(run.rc, 0, run.describe())
            self.assertIs(run.out.get("ok"), False, run.describe())
        self.assertEqual(sorted(sampler.leaks), [], "a secret reached a child process")
        for stream, data in (("stdout", run.stdout), ("stderr", run.stderr)):
            self.assertEqual([n for n in needles if n in data], [], f"a secret leaked to {stream}")
        for what, root in (("cache_dir", ws.cache_dir), ("HOME", ws.home), ("TMPDIR", ws.tmp)):
            self.assertEqual(harness.find_bytes_in_tree(root, needles), [], f"a secret leaked into {what}")
        leftovers = [p.name for p in ws.tmp.iterdir() if "git-credential" in p.name]
        self.assertEqual(leftovers, [], "a credential directory outlived its git command")
        if ws.store.kind == "file":
            self.assertEqual(harness.find_bytes_in_tree(ws.storage_dir, needles), [], "a secret is in storage")
        else:
            ws.store.service.front.set_chaos(0)
            for key in ws.store.keys():
                data = ws.store.read(key)
                self.assertEqual([n for n in needles if n in data], [], f"a secret is in object {key}")
        return run

    def git_repo(self, url, token=TOKEN):
        return [{"url": url, "name": "org/hygiene", "credentials": {"token_env": TOKEN_ENV, "username": USER}}]

    def test_every_git_failure_path(self):
        port_closed = harness.free_port()
        cases = [
            ("wrong token (401)", HTTP.url_for("hygiene.git"), WRONG_TOKEN, False),
            ("nothing listens", f"http://127.0.0.1:{port_closed}/git/hygiene.git", TOKEN, False),
            ("no such repository (404)", HTTP.url_for("missing.git"), TOKEN, False),
            ("server error (500)", f"http://127.0.0.1:{self.answer500.server_address[1]}/git/x.git", TOKEN, False),
            ("server never answers (timeout)", f"http://127.0.0.1:{self.silent.port}/git/x.git", TOKEN, False),
            ("the right token", HTTP.url_for("hygiene.git"), TOKEN, True),
        ]
        for engine in ("stream", "cli"):
            for label, url, token, ok in cases:
                with self.subTest(engine=engine, path=label):
                    ws = harness.Workspace()
                    payload = ws.snapshot_payload(self.git_repo(url), {"allow_http": True, "engine": engine,
                                                                       "retries": 0, "timeout_s": 2})
                    self.run_checked(ws, payload, {TOKEN_ENV: token}, ok)
        # The sampler saw git children and their credential file (so it looked at the right processes).
        self.assertIn("git", self.children_seen, self.children_seen)
        self.assertTrue(self.credential_file_seen, "no git child with a credential file was sampled")

    def test_a_killed_run_leaves_its_credential_file_only_until_the_next_run(self):
        # SIGKILL while git waits on a server that never answers its fetch
        # (the cli engine lists an http remote in-process, so the server
        # answers the listing and hangs on the fetch): the credential
        # directory cannot be removed by the dead process. The next run finds
        # it unlocked (and old) and removes it before doing anything.
        stalling = harness.GitFaultProxy(HTTP.port, stall=True)
        self.addCleanup(stalling.stop)
        ws = harness.Workspace()
        payload = ws.snapshot_payload(self.git_repo(stalling.url_for("hygiene.git")),
                                      {"allow_http": True, "engine": "cli", "retries": 0, "timeout_s": 60})
        killed = threading.Event()

        def kill_once_git_holds_the_credential(proc):
            def watch():
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and proc.poll() is None:
                    if any("git-credential" in p.name for p in ws.tmp.iterdir()):
                        time.sleep(0.2)  # let git start on it
                        family = harness.descendants(proc.pid)
                        proc.kill()
                        for pid in family:  # as a container stop would
                            try:
                                os.kill(pid, 9)
                            except ProcessLookupError:
                                pass
                        killed.set()
                        return
                    time.sleep(0.01)
            threading.Thread(target=watch, daemon=True).start()

        run = ws.run(payload, env_extra={TOKEN_ENV: TOKEN}, on_start=kill_once_git_holds_the_credential,
                     check_output=False)
        self.assertTrue(killed.is_set(), f"git never got a credential directory: {run.describe()}")
        left = [p for p in ws.tmp.iterdir() if "git-credential" in p.name]
        self.assertEqual(len(left), 1, "the kill should have left the credential directory behind")
        self.assertNotEqual(harness.find_bytes_in_tree(left[0], [TOKEN.encode()]), [], "it holds the token")
        # A sweeper leaves young directories alone (one may be in creation); this one is old.
        two_hours_ago = time.time() - 7200
        os.utime(left[0], (two_hours_ago, two_hours_ago))
        # The next run (on the working server) removes it: run_checked finds
        # no credential directory and no token in TMPDIR afterwards.
        run = self.run_checked(ws, ws.snapshot_payload(self.git_repo(HTTP.url_for("hygiene.git")),
                                                       {"allow_http": True, "engine": "cli", "retries": 0}),
                               {TOKEN_ENV: TOKEN}, True)
        self.assertIn("left by a killed run", run.stderr.decode(errors="replace"))

    def test_every_storage_failure_path(self):
        from s3harness import ACCESS_KEY
        repo = self.git_repo(HTTP.url_for("hygiene.git"))
        options = {"allow_http": True, "engine": "cli", "retries": 0}
        dead_port = harness.free_port()
        cases = [
            ("wrong S3 secret key", {"AWS_SECRET_ACCESS_KEY": BAD_AWS_SECRET}, None, None, False),
            ("unreachable S3 endpoint", {}, f"http://127.0.0.1:{dead_port}", None, False),
            ("fault proxy at 100%", {}, None, 1.0, False),
            # The harness's key has no session token, so this one works; the token must stay hidden all the same.
            ("with a session token", {"AWS_SESSION_TOKEN": SESSION_TOKEN}, None, None, True),
        ]
        for label, env, endpoint, chaos, ok in cases:
            with self.subTest(path=label):
                ws = harness.Workspace(storage="s3")
                payload = ws.snapshot_payload(repo, options)
                payload["storage"]["stall_timeout_s"] = 1
                payload["storage"]["retry_budget_s"] = 2  # fail soon: only the messages matter here
                if endpoint:
                    payload["storage"]["endpoint"] = endpoint
                env_extra = {TOKEN_ENV: TOKEN, "AWS_ACCESS_KEY_ID": ACCESS_KEY, **env}
                front = ws.store.service.front
                self.addCleanup(front.set_chaos, 0)
                if chaos:
                    front.set_chaos(chaos, seed=7, stall_s=2)
                run = self.run_checked(ws, payload, env_extra, ok)
                if not ok:
                    self.assertEqual(run.out.get("error"), "StorageError", run.describe())
        # And the success path on S3: the token and the AWS secret stay out of everything.
        ws = harness.Workspace(storage="s3")
        self.run_checked(ws, ws.snapshot_payload(repo, options), {TOKEN_ENV: TOKEN}, True)


if __name__ == "__main__":
    unittest.main()
