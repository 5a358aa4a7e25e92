"""Integration tests of the streaming engine (git protocol v2 straight into
bundles) through the stream_probe tool, against real servers on 127.0.0.1:
git daemon (git://), local paths / file://, and smart HTTP (lighttpd running
git-http-backend with basic auth). Every bundle chain is restored with the
git CLI (fetch with +refs/*:refs/*, refs set from the final ref map), checked
with fsck --full and compared ref for ref with upstream."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import harness


def find_probe():
    explicit = os.environ.get("STREAM_PROBE_BIN")
    if explicit:
        return explicit
    snapshotter = os.environ.get("SNAPSHOTTER_BIN")
    if snapshotter:
        candidate = os.path.join(os.path.dirname(snapshotter), "stream_probe")
        if os.path.exists(candidate):
            return candidate
    return None


PROBE = find_probe()
PASSWORD = "s3cret-stream-token"


@unittest.skipIf(PROBE is None, "stream_probe not built (set STREAM_PROBE_BIN or SNAPSHOTTER_BIN)")
@unittest.skipIf(shutil.which("git") is None, "git is not installed")
class StreamEngineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = str(harness.mkdtemp("stream-engine-"))
        cls.home = os.path.join(cls.tmp, "home")
        cls.serve = os.path.join(cls.tmp, "serve")
        cls.work = os.path.join(cls.tmp, "work")
        for d in (cls.home, cls.serve, cls.work):
            os.makedirs(d)
        cls.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": cls.home,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.com",
        }
        cls.git("config", "--global", "init.defaultBranch", "main")
        cls.git("config", "--global", "safe.directory", "*")
        cls.daemon = None
        cls.httpd = None
        try:
            cls.daemon = harness.GitDaemon(Path(cls.serve))
            cls.git_port = cls.daemon.port
            cls.http_port = cls.start_lighttpd()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for server in (cls.daemon, cls.httpd):
            if server is not None:
                server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def start_lighttpd(cls):
        """The port of harness.SmartHttpRoutes serving `serve`, or None when
        lighttpd or git-http-backend is not installed."""
        try:
            cls.httpd = harness.SmartHttpRoutes(Path(cls.serve), {"alice": PASSWORD})
        except unittest.SkipTest:
            return None
        return cls.httpd.port

    # ---- helpers -------------------------------------------------------

    @classmethod
    def git(cls, *args, cwd=None, check=True):
        proc = subprocess.run(["git", *args], cwd=cwd, env=cls.env, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError("git %s failed: %s" % (" ".join(args), proc.stderr))
        return proc.stdout

    def commit(self, repo, name, content=None):
        with open(os.path.join(repo, name), "w") as f:
            f.write(content if content is not None else name * 50 + "\n")
        self.git("add", name, cwd=repo)
        self.git("commit", "-q", "-m", "add " + name, cwd=repo)

    def make_repo(self, name, object_format="sha1"):
        """A work repository with branches and tags, mirrored to serve/<name>.git."""
        work = os.path.join(self.work, name)
        self.git("init", "-q", "--object-format=" + object_format, work)
        for i in range(5):
            self.commit(work, "f%d.txt" % i)
        self.git("tag", "-a", "v1", "-m", "release 1", cwd=work)
        self.git("tag", "light", "HEAD~1", cwd=work)
        self.git("branch", "dev", "HEAD~2", cwd=work)
        self.git("checkout", "-q", "-b", "feature", "HEAD~3", cwd=work)
        self.commit(work, "feature.txt")
        self.git("checkout", "-q", "main", cwd=work)
        bare = os.path.join(self.serve, name + ".git")
        self.git("init", "-q", "--bare", "--object-format=" + object_format, bare)
        self.publish(work, name)
        return work

    def publish(self, work, name):
        bare = os.path.join(self.serve, name + ".git")
        self.git("push", "-q", "--mirror", "--force", bare, cwd=work)

    def upstream_refs(self, name):
        bare = os.path.join(self.serve, name + ".git")
        out = self.git("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags", cwd=bare)
        return sorted(out.splitlines())

    def probe(self, url, key=None, previous=None, extra=(), expect_ok=True, env=None):
        store = os.path.join(self.tmp, "store")
        args = [PROBE, "--url", url, *extra]
        if key is not None:
            args += ["--out", store, "--key", key]
        if previous is not None:
            prev = os.path.join(self.tmp, "prev-%s.json" % time.monotonic_ns())
            with open(prev, "w") as f:
                json.dump(previous, f)
            args += ["--previous", prev]
        run_env = dict(self.env)
        run_env.update(env or {})
        proc = subprocess.run(args, env=run_env, capture_output=True, text=True, timeout=300)
        self.assertTrue(proc.stdout.strip(), "no output; stderr: " + proc.stderr)
        result = json.loads(proc.stdout)
        if expect_ok:
            self.assertTrue(result["ok"], result)
            self.assertEqual(proc.returncode, 0)
        else:
            self.assertFalse(result["ok"], result)
            self.assertNotEqual(proc.returncode, 0)
        result["_raw"] = proc.stdout + proc.stderr
        if key is not None:
            result["_path"] = os.path.join(store, key)
        return result

    def restore(self, steps, object_format="sha1"):
        """Replay a chain: each step is a probe result; bundles are fetched in
        order with +refs/*:refs/*, then refs are set from the last ref map."""
        repo = tempfile.mkdtemp(prefix="restore-", dir=self.tmp)
        self.git("init", "-q", "--bare", "--object-format=" + object_format, repo)
        for step in steps:
            if step["pack_written"]:
                self.git("bundle", "verify", step["_path"], cwd=repo)
                self.git("fetch", "-q", step["_path"], "+refs/*:refs/*", cwd=repo)
        final = steps[-1]["refs"]
        current = self.git("for-each-ref", "--format=%(refname)", cwd=repo).split()
        commands = ["delete %s" % r for r in current if r not in final]
        commands += ["update %s %s" % (name, target["oid"]) for name, target in sorted(final.items())]
        subprocess.run(["git", "update-ref", "--stdin"], cwd=repo, env=self.env, input="\n".join(commands) + "\n",
                       text=True, check=True)
        self.git("fsck", "--full", "--strict", cwd=repo)
        return repo

    def restored_refs(self, repo):
        out = self.git("for-each-ref", "--format=%(objectname) %(refname)", cwd=repo)
        return sorted(out.splitlines())

    def assert_restores(self, name, steps, object_format="sha1"):
        repo = self.restore(steps, object_format)
        self.assertEqual(self.restored_refs(repo), self.upstream_refs(name))
        # Every object reachable upstream is present and connected.
        self.git("rev-list", "--objects", "--all", cwd=repo)
        return repo

    def check_refs_match_upstream(self, result, name):
        got = sorted("%s %s" % (t["oid"], r) for r, t in result["refs"].items())
        self.assertEqual(got, self.upstream_refs(name))

    # ---- tests ---------------------------------------------------------

    def test_full_bundle_over_git_daemon(self):
        self.make_repo("daemon")
        result = self.probe("git://127.0.0.1:%d/daemon.git" % self.git_port, "daemon/full.bundle")
        self.assertTrue(result["pack_written"])
        self.assertEqual(result["object_format"], "sha1")
        self.assertEqual(result["head"], "refs/heads/main")
        self.check_refs_match_upstream(result, "daemon")
        # Annotated tag: both the tag object and what it peels to.
        self.assertTrue(result["refs"]["refs/tags/v1"]["peeled"])
        self.assertEqual(result["refs"]["refs/tags/light"]["peeled"], "")
        self.assertEqual(os.path.getsize(result["_path"]), result["bundle_size"])
        with open(result["_path"], "rb") as f:
            import hashlib
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), result["sha256"])
        self.assertGreater(result["object_count"], 0)
        # A mirror clone of the bundle equals upstream and passes fsck.
        mirror = os.path.join(self.tmp, "daemon-mirror")
        self.git("clone", "-q", "--mirror", result["_path"], mirror)
        self.git("fsck", "--full", cwd=mirror)
        self.assertEqual(self.restored_refs(mirror), self.upstream_refs("daemon"))

    def test_full_bundle_over_local_path_and_file_url(self):
        self.make_repo("local")
        path = os.path.join(self.serve, "local.git")
        a = self.probe(path, "local/path.bundle")
        b = self.probe("file://" + path, "local/url.bundle")
        self.assertEqual(a["refs"], b["refs"])
        self.assert_restores("local", [a])
        self.assert_restores("local", [b])

    def test_pattern_selection(self):
        self.make_repo("patterns")
        result = self.probe("git://127.0.0.1:%d/patterns.git" % self.git_port, "patterns/heads.bundle",
                            extra=["--pattern", "refs/heads/*"])
        self.assertEqual(sorted(result["refs"]), ["refs/heads/dev", "refs/heads/feature", "refs/heads/main"])
        heads = self.git("bundle", "list-heads", result["_path"]).split()
        self.assertNotIn("refs/tags/v1", heads)

    def test_full_bundle_sha256(self):
        self.make_repo("sha256repo", object_format="sha256")
        result = self.probe("git://127.0.0.1:%d/sha256repo.git" % self.git_port, "sha256/full.bundle")
        self.assertEqual(result["object_format"], "sha256")
        with open(result["_path"], "rb") as f:
            head = f.read(64)
        self.assertTrue(head.startswith(b"# v3 git bundle\n@object-format=sha256\n"))
        self.assert_restores("sha256repo", [result], object_format="sha256")
        local = self.probe(os.path.join(self.serve, "sha256repo.git"), "sha256/local.bundle")
        self.assertEqual(local["sha256"], result["sha256"])

    def test_missing_repository_is_a_git_error(self):
        result = self.probe("git://127.0.0.1:%d/nope.git" % self.git_port, "nope/full.bundle", expect_ok=False)
        self.assertEqual(result["error"], "GitError")
        self.assertFalse(os.path.exists(result["_path"]))

    def test_silent_server_times_out(self):
        # A server that accepts the connection and never answers.
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            port = listener.getsockname()[1]
            start = time.monotonic()
            result = self.probe("git://127.0.0.1:%d/silent.git" % port, "silent/full.bundle",
                                extra=["--timeout-ms", "500"], expect_ok=False)
            self.assertEqual(result["error"], "Timeout")
            self.assertLess(time.monotonic() - start, 10)

    def test_probe_reports_v2(self):
        self.make_repo("probe")
        for url in ("git://127.0.0.1:%d/probe.git" % self.git_port, os.path.join(self.serve, "probe.git")):
            result = self.probe(url, extra=["--probe"])
            self.assertTrue(result["v2"], url)

    def test_smart_http_with_basic_auth_and_redirect(self):
        if self.http_port is None:
            self.skipTest("lighttpd or git-http-backend is not installed")
        self.make_repo("http")
        base = "http://127.0.0.1:%d" % self.http_port
        anon = self.probe(base + "/git/http.git", "http/anon.bundle", extra=["--allow-http"])
        self.assert_restores("http", [anon])
        authed = self.probe(base + "/auth/http.git", "http/auth.bundle",
                            extra=["--allow-http", "--username", "alice", "--password-env", "PW"],
                            env={"PW": PASSWORD})
        self.assertNotIn(PASSWORD, authed["_raw"])
        self.assertEqual(authed["refs"], anon["refs"])
        self.assert_restores("http", [authed])
        denied = self.probe(base + "/auth/http.git", "http/denied.bundle",
                            extra=["--allow-http", "--username", "alice", "--password-env", "PW"],
                            env={"PW": "wrong-" + PASSWORD}, expect_ok=False)
        self.assertEqual(denied["error"], "GitError")
        self.assertIn("401", denied["message"])
        self.assertNotIn(PASSWORD, denied["_raw"])
        moved = self.probe(base + "/moved/http.git", "http/moved.bundle", extra=["--allow-http"])
        self.assertEqual(moved["sha256"], anon["sha256"])
        refused = self.probe(base + "/git/http.git", "http/refused.bundle", expect_ok=False)
        self.assertEqual(refused["error"], "PayloadError")

    def test_probe_detects_a_server_without_v2(self):
        if self.http_port is None:
            self.skipTest("lighttpd or git-http-backend is not installed")
        self.make_repo("oldserver")
        url = "http://127.0.0.1:%d/v0/oldserver.git" % self.http_port
        result = self.probe(url, extra=["--allow-http", "--probe"])
        self.assertFalse(result["v2"])
        refused = self.probe(url, "old/full.bundle", extra=["--allow-http"], expect_ok=False)
        self.assertIn("protocol v2", refused["message"])

    def test_incremental_chain(self):
        work = self.make_repo("incr")
        url = "git://127.0.0.1:%d/incr.git" % self.git_port
        full = self.probe(url, "incr/0-full.bundle")

        # New commits, a force-push (rewind + new commit), a deleted branch, a new annotated tag.
        for i in range(3):
            self.commit(work, "new%d.txt" % i)
        self.git("checkout", "-q", "feature", cwd=work)
        self.git("reset", "-q", "--hard", "HEAD~1", cwd=work)
        self.commit(work, "rewritten.txt")
        self.git("checkout", "-q", "main", cwd=work)
        self.git("branch", "-D", "dev", cwd=work)
        self.git("tag", "-a", "v2", "-m", "release 2", cwd=work)
        self.publish(work, "incr")
        inc1 = self.probe(url, "incr/1-incr.bundle", previous=full["refs"])
        self.assertTrue(inc1["pack_written"])
        self.assertFalse(inc1["unchanged"])
        self.assertTrue(inc1["prerequisites"])
        self.check_refs_match_upstream(inc1, "incr")
        self.assertLess(inc1["pack_size"], full["pack_size"] * 2)
        with open(inc1["_path"], "rb") as f:
            header = f.read(4096).split(b"\n\n")[0].decode()
        self.assertIn("\n-", header)
        self.assert_restores("incr", [full, inc1])

        # Refs-only: a deleted branch, a rewind (main back to where v1 points),
        # a new branch on a commit an earlier snapshot already listed.
        light = self.git("rev-parse", "light", cwd=work).strip()
        self.git("branch", "-D", "feature", cwd=work)
        self.git("branch", "old-point", light, cwd=work)
        self.git("reset", "-q", "--hard", "v1", cwd=work)
        self.publish(work, "incr")
        inc2 = self.probe(url, "incr/2-refs.bundle", previous=inc1["refs"])
        self.check_refs_match_upstream(inc2, "incr")
        self.assertFalse(inc2["pack_written"])
        self.assertFalse(inc2["unchanged"])
        self.assertEqual(inc2["wants"], [])
        self.assertFalse(os.path.exists(inc2["_path"]))
        self.assert_restores("incr", [full, inc1, inc2])

        # Unchanged: nothing fetched, nothing written.
        inc3 = self.probe(url, "incr/3-same.bundle", previous=inc2["refs"])
        self.assertTrue(inc3["unchanged"])
        self.assertFalse(inc3["pack_written"])
        self.assertEqual(inc3["wants"], [])
        self.assertFalse(os.path.exists(inc3["_path"]))
        self.assert_restores("incr", [full, inc1, inc2, inc3])

    def test_incremental_with_tags_on_trees_and_blobs(self):
        # git requires bundle prerequisites to be commits; tags may point at anything.
        work = self.make_repo("oddtags")
        self.git("tag", "tree-tag", "HEAD^{tree}", cwd=work)
        blob = self.git("rev-parse", "HEAD:f0.txt", cwd=work).strip()
        self.git("tag", "-a", "blob-tag", "-m", "a key", blob, cwd=work)
        self.publish(work, "oddtags")
        url = "git://127.0.0.1:%d/oddtags.git" % self.git_port
        full = self.probe(url, "oddtags/0.bundle")
        self.commit(work, "next.txt")
        self.git("tag", "next-tree", "HEAD^{tree}", cwd=work)
        self.publish(work, "oddtags")
        inc = self.probe(url, "oddtags/1.bundle", previous=full["refs"])
        self.assertTrue(inc["pack_written"])
        self.assertNotIn(full["refs"]["refs/tags/tree-tag"]["oid"], inc["prerequisites"])
        self.assert_restores("oddtags", [full, inc])

    def test_incremental_after_rewrite_from_root_and_server_gc(self):
        work = self.make_repo("rewrite")
        url = "git://127.0.0.1:%d/rewrite.git" % self.git_port
        full = self.probe(url, "rewrite/0-full.bundle")
        # Rewrite main from the root, drop the tag that kept the old history alive, gc the server.
        self.git("checkout", "-q", "--orphan", "fresh", cwd=work)
        self.git("rm", "-q", "-rf", ".", cwd=work)
        self.commit(work, "root.txt")
        self.commit(work, "second.txt")
        self.git("branch", "-M", "fresh", "main", cwd=work)
        self.git("tag", "-d", "v1", cwd=work)
        self.git("tag", "-d", "light", cwd=work)
        self.git("branch", "-D", "dev", "feature", cwd=work)
        self.git("tag", "-a", "v9", "-m", "new world", cwd=work)
        self.publish(work, "rewrite")
        bare = os.path.join(self.serve, "rewrite.git")
        self.git("reflog", "expire", "--expire=now", "--all", cwd=bare)
        self.git("gc", "-q", "--prune=now", cwd=bare)
        inc = self.probe(url, "rewrite/1-incr.bundle", previous=full["refs"])
        self.assertTrue(inc["pack_written"])
        self.check_refs_match_upstream(inc, "rewrite")
        self.assert_restores("rewrite", [full, inc])

    def test_ssh_transport_through_a_stand_in_ssh(self):
        # No sshd here: a stand-in `ssh` records its argv and environment and
        # runs the remote command with sh, as the remote login shell would.
        fakebin = os.path.join(self.tmp, "fakebin")
        os.makedirs(fakebin, exist_ok=True)
        log = os.path.join(self.tmp, "ssh-argv.json")
        with open(os.path.join(fakebin, "ssh"), "w") as f:
            f.write("#!/usr/bin/env python3\n"
                    "import json, os, sys\n"
                    "argv = sys.argv[1:]\n"
                    "key = argv[argv.index('-i') + 1] if '-i' in argv else None\n"
                    "info = {'argv': argv, 'git_protocol': os.environ.get('GIT_PROTOCOL')}\n"
                    "if key:\n"
                    "    info['key_mode'] = oct(os.stat(key).st_mode & 0o777)\n"
                    "    info['key_text'] = open(key).read()\n"
                    "json.dump(info, open(%r, 'w'))\n"
                    "os.execvp('sh', ['sh', '-c', sys.argv[-1]])\n" % log)
        os.chmod(os.path.join(fakebin, "ssh"), 0o755)
        self.make_repo("it's")
        path = os.path.join(self.serve, "it's.git")
        env = {"PATH": fakebin + os.pathsep + self.env["PATH"]}
        result = self.probe("ssh://git@example.invalid:2222" + path, "ssh/full.bundle", env=env)
        with open(log) as f:
            seen = json.load(f)
        self.assertEqual(seen["git_protocol"], "version=2")
        argv = seen["argv"]
        self.assertIn("SendEnv=GIT_PROTOCOL", argv)
        self.assertEqual(argv[argv.index("-p") + 1], "2222")
        self.assertEqual(argv[-3:], ["--", "git@example.invalid", "git-upload-pack '%s'" % path.replace("'", "'\\''")])
        self.assert_restores("it's", [result])
        self.assertIn("StrictHostKeyChecking=yes", argv)
        scp = self.probe("git@example.invalid:" + path, "ssh/scp.bundle", env=env)
        self.assertEqual(scp["sha256"], result["sha256"])
        # A key from the environment reaches ssh as a private 0600 file, removed afterwards.
        key = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n"
        keyed = self.probe("ssh://example.invalid" + path, "ssh/key.bundle",
                           extra=["--ssh-key-env", "SSH_KEY", "--host-key-policy", "accept-new"],
                           env=dict(env, SSH_KEY=key))
        with open(log) as f:
            seen = json.load(f)
        self.assertEqual(seen["key_mode"], "0o600")
        self.assertEqual(seen["key_text"], key)
        self.assertIn("StrictHostKeyChecking=accept-new", seen["argv"])
        self.assertFalse(os.path.exists(seen["argv"][seen["argv"].index("-i") + 1]))
        self.assertNotIn("not-a-real-key", keyed["_raw"])

    def test_empty_repository_reports_unborn_head_and_writes_nothing(self):
        for fmt in ("sha1", "sha256"):
            bare = os.path.join(self.serve, "empty-%s.git" % fmt)
            self.git("init", "-q", "--bare", "--object-format=" + fmt, bare)
            result = self.probe("git://127.0.0.1:%d/empty-%s.git" % (self.git_port, fmt), "empty/%s.bundle" % fmt)
            self.assertFalse(result["pack_written"])
            self.assertEqual(result["refs"], {})
            self.assertEqual(result["head"], "refs/heads/main")
            self.assertEqual(result["object_format"], fmt)
            self.assertFalse(os.path.exists(result["_path"]))

    def test_memory_stays_bounded_on_a_larger_pack(self):
        # ~12 MB of incompressible blobs over 3,000 commits, built with fast-import.
        import random
        bare = os.path.join(self.serve, "large.git")
        self.git("init", "-q", "--bare", bare)
        rng = random.Random(5)
        chunks = []
        for i in range(1, 3001):
            data = rng.randbytes(4096).hex().encode()[:4096] + b"\n"
            msg = b"commit %d\n" % i
            chunks.append(b"commit refs/heads/main\nmark :%d\ncommitter T <t@e> %d +0000\ndata %d\n%s"
                          % (i, 1600000000 + i, len(msg), msg))
            if i > 1:
                chunks.append(b"from :%d\n" % (i - 1))
            chunks.append(b"M 644 inline f%d.txt\ndata %d\n%s\n" % (i % 100, len(data), data))
        subprocess.run(["git", "fast-import", "--quiet"], cwd=bare, env=self.env, input=b"".join(chunks), check=True)
        result = self.probe("git://127.0.0.1:%d/large.git" % self.git_port, "large/full.bundle")
        self.assertGreater(result["pack_size"], 6 * 1024 * 1024)
        self.assertEqual(result["object_count"], 3 * 3000)
        self.assert_restores("large", [result])
        # Memory does not grow with the pack (the whole run, process included);
        # under ASan, RSS is mostly shadow memory and the free quarantine.
        if not harness.sanitizer_runtimes(PROBE):
            self.assertLess(result["peak_rss_kib"], 64 * 1024)

    def test_incremental_over_smart_http(self):
        if self.http_port is None:
            self.skipTest("lighttpd or git-http-backend is not installed")
        work = self.make_repo("httpincr")
        url = "http://127.0.0.1:%d/git/httpincr.git" % self.http_port
        full = self.probe(url, "httpincr/0.bundle", extra=["--allow-http"])
        for i in range(4):
            self.commit(work, "more%d.txt" % i)
        self.git("tag", "-a", "v2", "-m", "two", cwd=work)
        self.publish(work, "httpincr")
        inc = self.probe(url, "httpincr/1.bundle", previous=full["refs"], extra=["--allow-http"])
        self.assertTrue(inc["pack_written"])
        self.assert_restores("httpincr", [full, inc])


if __name__ == "__main__":
    unittest.main()
