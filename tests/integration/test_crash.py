"""Crash harness (issue 6, item 1): snapshot jobs killed with SIGKILL at a
random moment, on file:// and on s3:// (moto behind the strict SigV4 front).

Each iteration changes an upstream at random (new commits, a force-push, a
new tag), starts a snapshot job of two repositories (a 9 MB one, whose full
bundle is a multipart upload on S3, and a small one with branches, tags and
an orphan branch) with a random engine (stream or cli) and a random
`full_every` (1: always full, or incrementals), and kills it with SIGKILL,
its process group and every git child (as a container kill does) at a random
moment within the time an uninterrupted run takes (or, for 40% of the kills,
right after an upload has begun: a temporary file or a multipart upload exists).
After every kill:

- every committed manifest's bundles exist with their size and SHA-256, no
  manifest points at missing data, every latest.json names a committed
  manifest (crashcheck.check_committed);
- the newest snapshot of every repository restores, its refs and HEAD equal
  the manifest, and `git fsck --full` passes;
- a rerun of the same job completes;
- when the storage holds leftovers (and after the last kill in any case),
  verify reports exactly the leftovers the storage holds (pending uploads and
  orphan bundles, computed independently here) and does not fail on them;
  gc with a tiny forced age removes them all and nothing else (after the last
  kill, verify then reports none); once, gc with its default safety age is
  shown to keep young leftovers.

Iterations (kills): 14 on file:// and 6 on s3:// by default (20 in all); with
SNAPSHOTTER_CRASH_ITERATIONS=N, N on each (100 gives 200 kills):

    cd tests/integration && SNAPSHOTTER_BIN=$PWD/../../build/snapshotter \\
        SNAPSHOTTER_CRASH_ITERATIONS=100 python3 -m unittest -v test_crash

The random generator is seeded from SNAPSHOTTER_CRASH_SEED, or at random; the
seed is printed first and in every failure message, so that a failure can be
replayed with the same choices (kill moments stay subject to timing).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import unittest

import crashcheck
import harness
from harness import Assertions, GitDaemon, Workspace

# Kills per backend: S3 (moto) runs cost about three times as much as file ones.
_ITERATIONS = os.environ.get("SNAPSHOTTER_CRASH_ITERATIONS")
ITERATIONS = {"file": int(_ITERATIONS or 14), "s3": int(_ITERATIONS or 6)}
SEED = int(os.environ.get("SNAPSHOTTER_CRASH_SEED", str(random.SystemRandom().randrange(1 << 32))))
REPOS = ("big", "rich")


def setUpModule():
    harness.setup_module()
    print(f"\ntest_crash: SNAPSHOTTER_CRASH_SEED={SEED} SNAPSHOTTER_CRASH_ITERATIONS={ITERATIONS}",
          file=sys.stderr, flush=True)


def tearDownModule():
    harness.teardown_module()


def quiet_front(service) -> None:
    """Connections our kills reset are expected: keep the S3 front from printing their tracebacks."""
    server = service.front.server
    default = server.handle_error

    def handle_error(request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            default(request, client_address)

    server.handle_error = handle_error


def binary_upstream(root, name: str, megabytes: float) -> harness.Upstream:
    """A repository whose main branch holds `megabytes` of random (incompressible) bytes."""
    up = harness.new_upstream(root, name)
    for repo in (up.work, up.bare):
        harness.git("config", "core.compression", "0", cwd=repo)
    up.commit_file("README", f"{name}\n", "initial")
    up.commit_file("blob.bin", os.urandom(int(megabytes * (1 << 20))), "random bytes")
    up.push("--all")
    up.set_head("refs/heads/main")
    return up


class CrashBase(Assertions):
    storage_kind = "file"

    def setUp(self):
        self.rng = random.Random(f"{SEED}-{self.storage_kind}")
        root = harness.mkdtemp("crash-up-")
        self.upstreams = {"big": binary_upstream(root, "big", 9),
                          "rich": harness.build_rich(root, "rich")}
        self.daemon = GitDaemon(root)
        self.addCleanup(self.daemon.stop)
        self.ws = Workspace("crash-", storage=self.storage_kind)
        self.repositories = [{"url": self.daemon.url_for(f"{n}.git"), "name": n} for n in REPOS]
        self.check = crashcheck.Checker(self.ws.store)
        if self.storage_kind == "s3":
            quiet_front(self.ws.store.service)
        self.restored: dict[str, str] = {}   # repository -> newest snapshot id already restored
        self.stats = {"kills": 0, "pending": 0, "orphans": 0, "killed_before_commit": 0}
        self.dry_run_checked = False

    def where(self, iteration: int, what: str) -> str:
        return f"[seed {SEED}, {self.storage_kind}, iteration {iteration}] {what}"

    # -- the upstreams change between runs -----------------------------------
    def mutate(self) -> None:
        """One random change upstream (or none): new commits, a force-push, a tag."""
        name = self.rng.choice(REPOS)
        up, roll = self.upstreams[name], self.rng.random()
        if roll < 0.5:
            size = self.rng.randrange(100_000, 1_500_000) if name == "big" else 64
            up.commit_file(f"f{self.rng.randrange(1 << 30)}.bin", os.urandom(size))
            up.push("main")
        elif roll < 0.65 and name == "rich":
            up.git("reset", "-q", "--hard", "HEAD~1")  # rewrite main: a force-push
            up.commit_file("rewritten.txt", f"{self.rng.random()}\n")
            up.push("main", force=True)
        elif roll < 0.8:
            tag = f"t{self.rng.randrange(1 << 30)}"
            up.git("tag", tag)
            up.push(tag)

    def payload(self, job_id: str, full: bool = False) -> dict:
        options = {"engine": self.rng.choice(["stream", "cli"]), "full_every": 1 if full else self.rng.choice([1, 30]),
                   "concurrency": 3, "retries": 0}
        return self.ws.snapshot_payload(self.repositories, options, job_id=job_id)

    def start(self, payload: dict) -> subprocess.Popen:
        env = self.ws.env({"SNAPSHOTTER_JOB_JSON": json.dumps(payload)})
        proc = subprocess.Popen([harness.snapshotter_bin()], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        harness._register(proc)
        return proc

    # -- the checks after every kill ------------------------------------------
    def check_storage(self, iteration: int, restore: bool = True) -> None:
        problems = self.check.check_committed()
        self.assertEqual(problems, [], self.where(iteration, "committed data is inconsistent"))
        if not restore:
            return
        for name, manifest in self.check.newest_manifests().items():
            if self.restored.get(name) == manifest["snapshot_id"]:
                continue  # restored and fsck'd already; its bundles were re-checked above
            crashcheck.assert_restores(self, self.ws, manifest, self.where(iteration, f"restore {name}@latest"),
                                       snapshot="latest")
            self.restored[name] = manifest["snapshot_id"]

    def check_leftovers_then_gc(self, iteration: int, last: bool) -> None:
        store = self.ws.store
        pending, orphans = self.check.leftovers()
        expected = pending | orphans
        self.stats["pending"] += len(pending)
        self.stats["orphans"] += len(orphans)
        if not expected and not last:
            return  # nothing to report or remove: verify and gc are exercised when there is
        run = self.ws.verify(drill=False)
        result = self.assertRunOk(run, self.where(iteration, "verify after the rerun"))
        reported = result["leftovers"]
        self.assertEqual({i["key"] for i in reported["items"]}, expected,
                         self.where(iteration, "verify's leftovers differ from the storage's"))
        self.assertEqual(reported["count"], len(expected))
        if expected and store.kind == "file" and not self.dry_run_checked:
            # Young leftovers survive the default safety age (moto dates every upload 2010).
            self.dry_run_checked = True
            dry = self.ws.run({"version": 1, "action": "gc", "storage": self.ws.storage()}, args=["--dry-run"])
            self.assertEqual(self.assertRunOk(dry)["removed"]["count"], 0, self.where(iteration, "gc took young ones"))
        gc = self.ws.run({"version": 1, "action": "gc", "storage": self.ws.storage(),
                          "gc": {"min_age_s": 0, "allow_short_age": True}})
        removed = self.assertRunOk(gc, self.where(iteration, "gc"))["removed"]
        self.assertEqual({i["key"] for i in removed["items"]}, expected, self.where(iteration, "gc removed"))
        self.assertEqual(self.check.leftovers(), (set(), set()), self.where(iteration, "leftovers after gc"))
        self.assertEqual(self.check.check_committed(), [], self.where(iteration, "after gc"))
        if last:
            clean = self.assertRunOk(self.ws.verify(drill=False), self.where(iteration, "verify after gc"))
            self.assertEqual(clean["leftovers"]["count"], 0, self.where(iteration, "verify after gc"))

    def run_and_kill(self, payload: dict, mid_upload: bool) -> bool:
        """Start the job and SIGKILL it at a random moment within the time jobs
        take here; True when it was still running (a kill), False when it
        finished first (its duration then sharpens the estimate)."""
        proc = self.start(payload)
        started = time.monotonic()
        # Jobs that finished before their kill shrink the window; uploads are waited for longer.
        window = 2 * max(self.durations) if mid_upload else self.rng.uniform(0.0, min(self.durations[-3:]))
        deadline = started + window
        while time.monotonic() < deadline and proc.poll() is None:
            if mid_upload and self.check.pending_uploads():
                time.sleep(self.rng.uniform(0.0, 0.2))
                break
            time.sleep(0.01)
        finished = proc.poll() is not None
        crashcheck.kill_tree(proc)
        if finished:
            self.durations.append(time.monotonic() - started)
        return not finished

    def test_sigkill_at_random_moments(self):
        # A first, uninterrupted run tells how long a job takes here.
        started = time.monotonic()
        self.assertRunOk(self.ws.run(self.payload("crash-0")), "first run")
        self.durations = [time.monotonic() - started]
        self.check_storage(0)
        kills = ITERATIONS[self.storage_kind]
        for iteration in range(1, 3 * kills + 1):
            self.mutate()
            # Some kills wait for an upload in flight (a temporary file, a multipart
            # upload of a full bundle), so that those leftovers are always exercised.
            mid_upload = self.rng.random() < 0.4
            payload = self.payload(f"crash-{iteration}", full=mid_upload)
            before = set(self.check.manifests())
            self.stats["kills"] += self.run_and_kill(payload, mid_upload)
            self.stats["killed_before_commit"] += set(self.check.manifests()) == before
            self.check_storage(iteration)
            # The same job again: it completes (repositories the killed run committed are skipped).
            # What it commits is restored after the next kill (or now, after the last one).
            self.assertRunOk(self.ws.run(payload), self.where(iteration, "rerun after the kill"))
            last = self.stats["kills"] >= kills
            self.check_storage(iteration, restore=last)
            self.check_leftovers_then_gc(iteration, last)
            if last:
                break
        print(f"\ntest_crash {self.storage_kind}: {self.stats} in {iteration} runs", file=sys.stderr)
        self.assertGreaterEqual(self.stats["kills"], kills, "too many jobs finished before their kill")


class CrashFileTest(CrashBase, unittest.TestCase):
    storage_kind = "file"


class CrashS3Test(CrashBase, unittest.TestCase):
    storage_kind = "s3"


if __name__ == "__main__":
    unittest.main()


class LfsCrashTest(Assertions, unittest.TestCase):
    """SIGKILL during snapshots of a repository with Git LFS content (file://),
    at moments spread over the run and right after an LFS object's upload
    began. After every kill: every committed manifest's LFS objects are stored
    whole (size and SHA-256: crashcheck.check_lfs), and a rerun of the same job
    completes. At the end the newest snapshot restores with its real content
    (`git lfs pull`, `git lfs fsck`), and gc with a tiny age removes exactly
    the leftovers (pending uploads, orphan bundles, orphan LFS objects) and
    nothing a manifest needs."""

    KILLS = int(_ITERATIONS or 4)
    ENGINES = ("cli", "stream")

    def test_sigkill_during_lfs_snapshots(self):
        from harness.lfs_repos import LfsUpstream, lfs_checkout, lfs_fsck, require_git_lfs
        from harness.servers import SmartHttpLfs
        require_git_lfs()
        rng = random.Random(f"{SEED}-lfs")
        http = SmartHttpLfs(harness.mkdtemp("lfs-crash-up-"), {"crash": "crash-pass"})
        self.addCleanup(http.stop)
        up = LfsUpstream(http, "lfs.git")
        files = {f"first-{k}.bin": os.urandom(200_000) for k in range(4)}
        up.commit_files(files, "first")
        up.push("main")
        ws = Workspace("lfs-crash-")
        ws.default_options = {"allow_http": True, "retries": 0}
        check = crashcheck.Checker(ws.store)
        repos = [up.repository("lfs", lfs=True)]
        env = ws.env(up.env())

        def start(job_id: str) -> tuple[subprocess.Popen, dict]:
            # The stream engine looks for pointers in the pack it indexes (docs/lfs.md).
            payload = ws.snapshot_payload(repos, {"engine": rng.choice(self.ENGINES), "verify": "index"},
                                          job_id=job_id)
            proc = subprocess.Popen([harness.snapshotter_bin()], env={**env, "SNAPSHOTTER_JOB_JSON": json.dumps(payload)},
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            harness._register(proc)
            return proc, payload

        proc, _ = start("lfs-crash-0")
        self.assertEqual(proc.wait(timeout=120), 0, "first run")
        # An uninterrupted incremental tells how long the killed runs take here.
        files["warm.bin"] = os.urandom(200_000)
        up.commit_files({"warm.bin": files["warm.bin"]}, "warm")
        up.push("main")
        started = time.monotonic()
        proc, _ = start("lfs-crash-warm")
        self.assertEqual(proc.wait(timeout=120), 0, "warm run")
        duration = time.monotonic() - started
        kills = 0
        for i in range(1, self.KILLS + 1):
            where = f"[seed {SEED}, LFS iteration {i}]"
            new = {f"n{i}-{k}.bin": os.urandom(rng.randrange(50_000, 300_000)) for k in range(3)}
            up.commit_files(new, f"iteration {i}")
            files.update(new)
            up.push("main")
            proc, payload = start(f"lfs-crash-{i}")
            area = f"repos/{harness.repo_key('lfs')}/lfs/"
            deadline = time.monotonic() + (2 * duration if i % 2 else 0.9 * duration * (i - 0.5) / self.KILLS)
            while time.monotonic() < deadline and proc.poll() is None:
                if i % 2 and any(k.startswith(area) for k in check.pending_uploads()):
                    break  # an LFS upload has begun
                time.sleep(0.005)
            kills += proc.poll() is None
            crashcheck.kill_tree(proc)
            self.assertEqual(check.check_committed(), [], f"{where} after the kill")
            self.assertRunOk(ws.run(payload, env_extra=up.env()), f"{where} rerun")
            self.assertEqual(check.check_committed(), [], f"{where} after the rerun")
        self.assertGreaterEqual(kills, 1, "every run finished before its kill")

        # The newest snapshot restores with every file's content.
        target = ws.new_target()
        self.assertRunOk(ws.restore("lfs", target), "restore")
        work = lfs_checkout(target)
        for path, data in files.items():
            self.assertEqual((work / path).read_bytes(), data, path)
        self.assertEqual(lfs_fsck(work).returncode, 0)

        # gc takes exactly the leftovers; what the manifests need stays.
        pending, orphans = check.leftovers()
        expected = pending | orphans | check.orphan_lfs()
        gc = self.assertRunOk(ws.run({"version": 1, "action": "gc", "storage": ws.storage(),
                                      "gc": {"min_age_s": 0, "allow_short_age": True}}), "gc")
        self.assertEqual({item["key"] for item in gc["removed"]["items"]}, expected)
        self.assertEqual((check.leftovers(), check.orphan_lfs()), ((set(), set()), set()))
        self.assertEqual(check.check_committed(), [], "after gc")
        print(f"\ntest_crash LFS: {kills} kills, {len(expected)} leftovers removed by gc", file=sys.stderr)


class StaleGitLockTest(Assertions, unittest.TestCase):
    """A SIGKILL during `git fetch` leaves git's lock files in the cached
    mirror (refs/heads/<b>.lock, packed-refs.lock); git then refuses every
    later fetch ("Another git process seems to be running ... remove the
    file manually"), so no snapshot of that repository ever succeeded again.
    The mirror's own lock proves them stale, and snapshot removes them."""

    def test_a_rerun_after_a_killed_fetch_succeeds(self):
        root = harness.mkdtemp("lock-up-")
        up = harness.build_rich(root, "app")
        with GitDaemon(root) as daemon:
            ws = Workspace("lock-")
            repo = [{"url": daemon.url_for("app.git"), "name": "app"}]
            self.assertRunOk(ws.snapshot(repo, {"engine": "cli"}), "first snapshot")
            mirror = ws.cache_dir / "mirrors" / "app.git"
            self.assertTrue((mirror / "HEAD").is_file(), f"no mirror at {mirror}")
            up.commit_file("after.txt", "after the kill\n")
            up.push("main")
            up.delete_ref("refs/heads/feature/x")
            (mirror / "refs" / "heads").mkdir(parents=True, exist_ok=True)
            for stale in ("refs/heads/main.lock", "packed-refs.lock", "config.lock"):
                (mirror / stale).write_text("")
            result = self.assertRunOk(ws.snapshot(repo, {"engine": "cli", "retries": 0}), "snapshot after the kill")
            self.assertEqual(result["repositories"][0]["status"], "ok")
            self.assertEqual(list(mirror.rglob("*.lock")), [])
            target = ws.new_target()
            self.assertRunOk(ws.restore("app", target))
            self.assertRepoEquals(target, up)
