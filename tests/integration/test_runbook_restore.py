"""docs/AWS_RUNBOOK.md section 6 (restore at 3 a.m.), run as written.

The image runs as uid 10001. A restore written by that uid into a directory
the operator opened up (`chmod 0777`) leaves a repository that the operator's
git refuses ("detected dubious ownership"), so steps 4 and 5 (`git log`,
`push --mirror`) fail. The runbook's way runs the restore as the operator
(`--user "$(id -u):$(id -g)"`). No container is needed to show either: the
binary runs as another uid through setpriv, with the runbook's own restore
payload (only the storage and the target changed), and the runbook's own
step 4 and 5 commands run as the operator. Needs root (setpriv --reuid).
"""

import json
import os
import re
import shutil
import subprocess
import unittest
from pathlib import Path

import harness

RUNBOOK = harness.SOURCE_ROOT / "docs" / "AWS_RUNBOOK.md"
CONTAINER_UID = 10001  # the image's USER
OPERATOR_UID = 10002  # whoever runs the restore at 3 a.m.


def setUpModule():
    harness.setup_module()


def tearDownModule():
    harness.teardown_module()


def section_6() -> str:
    text = RUNBOOK.read_text()
    return text[text.index("\n## 6. "):text.index("\n## 7. ")]


def restore_payload() -> dict:
    """The restore payload of section 6."""
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", section_6(), re.S)]
    found = [b for b in blocks if b.get("action") == "restore"]
    assert len(found) == 1, f"one restore payload in section 6, found {len(found)}"
    return found[0]


def operator_commands() -> list[str]:
    """Steps 4 and 5's git commands, as the runbook spells them."""
    commands = re.findall(r"`(git -C restore/\S+ (?:log|push) [^`]*)`", section_6())
    assert [c.split()[3] for c in commands] == ["log", "push"], commands
    return commands


def as_user(uid: int) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]


def home_for(uid: int) -> Path:
    home = harness.mkdtemp(f"home-{uid}-")
    os.chown(home, uid, uid)
    return home


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"), "needs root and setpriv to run as other uids")
class RunbookRestore(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The other uids must reach the binary and the suite's files.
        os.chmod(harness.tmp_root(), 0o755)
        root = harness.mkdtemp("runbook-")
        os.chmod(root, 0o755)
        cls.upstream = harness.build_rich(root, "app")
        cls.storage = root / "snapshots"
        run = harness.run_snapshotter({"version": 1, "action": "snapshot",
                                       "storage": {"url": f"file://{cls.storage}"},
                                       "repositories": [{"url": str(cls.upstream.bare), "name": "org/app"}]})
        assert run.rc == 0, run.describe()
        cls.snapshot_id = run.out["result"]["repositories"][0]["snapshot_id"]
        subprocess.run(["chmod", "-R", "a+rX", str(cls.storage)], check=True)

    def restore_as(self, uid: int, restore_dir: Path) -> subprocess.CompletedProcess:
        """The runbook's restore payload, run by `uid` into restore_dir/<its target's name>."""
        payload = restore_payload()
        payload["storage"] = {"url": f"file://{self.storage}"}
        payload["restore"]["snapshot"] = self.snapshot_id
        payload["restore"]["target"] = str(restore_dir / Path(payload["restore"]["target"]).name)
        env = harness.snapshotter_env(home=home_for(uid), extra={"SNAPSHOTTER_JOB_JSON": json.dumps(payload)})
        return subprocess.run(as_user(uid) + [harness.snapshotter_bin()], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=120)

    def operator_steps(self, restore_dir: Path) -> list[subprocess.CompletedProcess]:
        """Steps 4 and 5 as the operator: git log, then push --mirror to a new remote."""
        remote = home_for(OPERATOR_UID) / "app.git"
        subprocess.run(as_user(OPERATOR_UID) + ["git", "init", "-q", "--bare", str(remote)], check=True, cwd="/",
                       env={"PATH": os.environ["PATH"], "HOME": str(remote.parent)})
        env = {"PATH": os.environ["PATH"], "HOME": str(home_for(OPERATOR_UID)), "GIT_CONFIG_NOSYSTEM": "1",
               "LC_ALL": "C.UTF-8"}
        results = []
        for command in operator_commands():
            command = command.replace("restore/", f"{restore_dir}/").replace("<branch>", "main")
            command = command.replace("<new or repaired remote>", str(remote))
            results.append(subprocess.run(as_user(OPERATOR_UID) + command.split(), env=env, capture_output=True,
                                          text=True, timeout=60, cwd="/"))
        self.remote = remote
        return results

    def test_the_runbook_restores_as_the_operator_and_its_steps_work(self):
        section = section_6()
        self.assertIn('--user "$(id -u):$(id -g)"', section, "the restore runs as the operator")
        self.assertNotRegex(section, r"chmod\s+0?777", "a world-writable restore directory is the trap")
        restore_dir = harness.mkdtemp("restore-")
        os.chown(restore_dir, OPERATOR_UID, OPERATOR_UID)
        restore = self.restore_as(OPERATOR_UID, restore_dir)
        self.assertEqual(restore.returncode, 0, restore.stderr[-3000:])
        log, push = self.operator_steps(restore_dir)
        self.assertEqual(log.returncode, 0, log.stderr)
        self.assertEqual(log.stdout.split("\n")[0].split()[0],
                         self.upstream.git("rev-parse", "--short", "main").strip())
        self.assertEqual(push.returncode, 0, push.stderr)
        pushed = subprocess.run(as_user(OPERATOR_UID) + ["git", "-C", str(self.remote), "for-each-ref",
                                                             "--format=%(objectname) %(objecttype) %(refname)"],
                                capture_output=True, text=True, env={"PATH": os.environ["PATH"]}, check=True)
        self.assertEqual(pushed.stdout, self.upstream.refs())

    def test_a_restore_owned_by_the_container_uid_is_refused_by_the_operators_git(self):
        # The old advice: `chmod 0777 restore`, then the container's uid writes the repository.
        restore_dir = harness.mkdtemp("restore-0777-")
        os.chmod(restore_dir, 0o777)
        restore = self.restore_as(CONTAINER_UID, restore_dir)
        self.assertEqual(restore.returncode, 0, restore.stderr[-3000:])
        log, push = self.operator_steps(restore_dir)
        for step in (log, push):
            self.assertNotEqual(step.returncode, 0, step.args)
            self.assertIn("dubious ownership", step.stderr)


if __name__ == "__main__":
    unittest.main()
