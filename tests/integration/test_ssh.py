"""ssh repositories through the real CLI, against a real OpenSSH server.

The harness starts `sshd` on 127.0.0.1 with a fresh host key and one
authorized user key (the test runs as root, so it logs in as root, the way a
forge's `git@` account runs git-upload-pack). The payload names the key by
`credentials.ssh_key_env` and the host key by `options.ssh.known_hosts`.

- Both engines snapshot over ssh (the stream engine with protocol v2, which
  sshd passes on through `AcceptEnv GIT_PROTOCOL`) and restore exactly.
- A host key that does not match known_hosts fails with GitError and writes
  nothing; `accept_new` with no known_hosts connects.
- A missing key variable is a PayloadError; a wrong key is a GitError.
- The private key appears in no output, manifest or report, and no key file
  is left behind in TMPDIR.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import unittest
from pathlib import Path

import harness

SSHD = "/usr/sbin/sshd"
KEY_ENV = "SNAP_SSH_KEY"

SERVE: Path | None = None
SERVER: "Sshd | None" = None


def keygen(path: Path) -> str:
    """A new ed25519 key pair at `path` (and path.pub); returns the private key text."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "snapshotter-test", "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL)
    return path.read_text()


class Sshd(harness._Server):
    """OpenSSH's sshd on 127.0.0.1: key authentication only, for `user_pubkey`."""

    def __init__(self, user_pubkey: str) -> None:
        super().__init__()
        workdir = harness.mkdtemp("sshd-")
        self.log_path = workdir / "sshd.log"
        self.port = harness.free_port()
        keygen(workdir / "host_ed25519")
        self.host_pubkey = (workdir / "host_ed25519.pub").read_text().split()[:2]
        (workdir / "authorized_keys").write_text(user_pubkey)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
        conf = workdir / "sshd_config"
        conf.write_text(f"""
Port {self.port}
ListenAddress 127.0.0.1
HostKey {workdir}/host_ed25519
PidFile {workdir}/sshd.pid
AuthorizedKeysFile {workdir}/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
AcceptEnv GIT_PROTOCOL
LogLevel VERBOSE
""")
        self._spawn([SSHD, "-D", "-e", "-f", str(conf)], cwd=workdir)

    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {' '.join(self.host_pubkey)}"

    def url_for(self, path: Path) -> str:
        return f"ssh://root@127.0.0.1:{self.port}{path}"


def setUpModule():
    global SERVE, SERVER, USER_KEY
    if os.geteuid() != 0 or not os.access(SSHD, os.X_OK):
        raise unittest.SkipTest("needs root and OpenSSH's sshd (package openssh-server)")
    harness.setup_module()
    SERVE = harness.mkdtemp("ssh-serve-")
    keydir = harness.mkdtemp("ssh-user-")
    USER_KEY = keygen(keydir / "id")
    SERVER = Sshd((keydir / "id.pub").read_text())


def tearDownModule():
    harness.teardown_module()


USER_KEY = ""


class SshRepositories(harness.Assertions, unittest.TestCase):
    def setUp(self):
        self.up = harness.build_rich(SERVE, f"r{len(list(SERVE.iterdir()))}")
        self.ws = harness.Workspace("ssh-")
        self.repo = {"url": SERVER.url_for(self.up.bare), "name": "org/ssh-app",
                     "credentials": {"ssh_key_env": KEY_ENV}}

    def snapshot(self, options: dict, key: str | None = None, ws: harness.Workspace | None = None) -> harness.Run:
        env = {KEY_ENV: USER_KEY if key is None else key}
        return (ws or self.ws).snapshot([self.repo], options, env_extra=env)

    def assertRepoFails(self, run: harness.Run, error: str, fragment: str = "") -> dict:
        """The job failed (its only repository failed) with `error` and a message
        containing `fragment`; returns the repository's result."""
        self.assertNotEqual(run.rc, 0, run.describe())
        r = run.out["result"]["repositories"][0]
        self.assertEqual((r.get("status"), r.get("error")), ("failed", error), run.describe())
        self.assertIn(fragment.lower(), r.get("message", "").lower(), run.describe())
        return r

    def strict(self, **more) -> dict:
        return dict({"ssh": {"known_hosts": SERVER.known_hosts_line()}}, **more)

    def assertNoKeyAnywhere(self, runs: list[harness.Run]) -> None:
        body = "".join(USER_KEY.splitlines()[1:-1])[:40]
        for run in runs:
            for stream in (run.stdout, run.stderr):
                text = stream.decode(errors="replace")
                self.assertNotIn(body, text.replace("\n", ""))
        for path in self.ws.root.rglob("*"):
            if path.is_file():
                self.assertNotIn(body.encode(), path.read_bytes().replace(b"\n", b""), f"key text in {path}")

    def test_both_engines_snapshot_and_restore_over_ssh(self):
        runs = []
        for engine in ("stream", "cli"):
            ws = harness.Workspace(f"ssh-{engine}-")
            run = self.snapshot(self.strict(engine=engine), ws=ws)
            runs.append(run)
            result = self.assertRunOk(run, f"engine {engine}")
            r = result["repositories"][0]
            self.assertEqual((r["status"], r["engine"], r["kind"]), ("ok", engine, "full"), r)
            target = ws.new_target()
            self.assertRunOk(ws.restore("org/ssh-app", target, r["snapshot_id"]))
            self.assertRepoEquals(target, self.up, f"restore of the {engine} snapshot")
        # auto picks the stream engine: sshd passed GIT_PROTOCOL on, so the server spoke v2.
        run = self.snapshot(self.strict(engine="auto"))
        runs.append(run)
        self.assertEqual(self.assertRunOk(run)["repositories"][0]["engine"], "stream")
        self.assertNoKeyAnywhere(runs)
        leftovers = [p for p in self.ws.tmp.rglob("*") if p.name in ("id", "known_hosts")]
        self.assertEqual(leftovers, [], "private ssh files must be removed after each connection")

    def test_unknown_host_key_is_refused(self):
        wrong = harness.mkdtemp("other-") / "k"
        keygen(wrong)  # a host key the server does not have
        line = f"[127.0.0.1]:{SERVER.port} {' '.join((wrong.parent / 'k.pub').read_text().split()[:2])}"
        for engine in ("stream", "cli"):
            run = self.snapshot({"engine": engine, "ssh": {"known_hosts": line}})
            self.assertRepoFails(run, "GitError", "host key")
        self.assertEqual(list(self.ws.storage_dir.rglob("*.bundle")), [], "nothing may be written")

    def test_accept_new_connects_without_known_hosts(self):
        user_known = Path.home() / ".ssh" / "known_hosts"
        before = user_known.read_bytes() if user_known.exists() else None
        for engine in ("stream", "cli"):
            run = self.snapshot({"engine": engine, "ssh": {"host_key_policy": "accept_new"}},
                                ws=harness.Workspace(f"ssh-new-{engine}-"))
            self.assertEqual(self.assertRunOk(run)["repositories"][0]["status"], "ok", engine)
        after = user_known.read_bytes() if user_known.exists() else None
        self.assertEqual(after, before, "what ssh learns must not reach the user's ~/.ssh/known_hosts")

    def test_strict_without_known_hosts_is_refused(self):
        for engine in ("stream", "cli"):
            self.assertRepoFails(self.snapshot({"engine": engine, "retries": 0}), "GitError", "host key")

    def test_wrong_key_is_a_git_error_and_missing_key_a_payload_error(self):
        stranger = keygen(harness.mkdtemp("stranger-") / "id")
        for engine in ("stream", "cli"):
            run = self.snapshot(self.strict(engine=engine, retries=0), key=stranger)
            self.assertRepoFails(run, "GitError", "permission denied")
        run = self.ws.snapshot([self.repo], self.strict())
        self.assertRunFails(run, 1, "PayloadError")
        self.assertIn(KEY_ENV, run.out["message"])

    def test_payload_rules(self):
        https = {"url": "https://example.com/org/app.git", "credentials": {"ssh_key_env": KEY_ENV}}
        run = self.ws.snapshot([https], {}, env_extra={KEY_ENV: USER_KEY})
        self.assertRunFails(run, 1, "PayloadError")
        self.assertIn("ssh_key_env", run.out["message"])
        run = self.snapshot({"ssh": {"host_key_policy": "insecure"}})
        self.assertRunFails(run, 1, "PayloadError")
        self.assertIn("options.ssh.host_key_policy", run.out["message"])


if __name__ == "__main__":
    unittest.main()
