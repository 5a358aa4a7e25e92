"""The stream engine and the git-CLI engine, through the real CLI (issue 4).

- Differential: one upstream goes through a sequence of states (initial, new
  commits, a force-push, a branch deletion, a rewind, a new annotated tag, a
  new ref on an old commit, history rewritten from the root, a force-push
  followed by `git gc --prune=now` on the server). After each state two
  independent snapshot chains (separate storage and cache) take a snapshot,
  one with "engine": "stream" and one with "engine": "cli". At every step the
  latest snapshot of both restores to the same ref map (equal to upstream's),
  the same set of reachable objects and a clean `fsck --full`, and every
  earlier snapshot id of both chains still restores to the upstream state of
  its step. A third chain uses the stream engine with "verify": "index"
  (every pack checked by git index-pack) and must record the same ledger as
  the CLI engine. Over git daemon and over smart HTTP with basic auth.
- auto: "stream" against a protocol v2 server, "cli" against a smart-HTTP
  server that answers protocol v0 (lighttpd strips the Git-Protocol header).
- A stream-engine job creates no cache directory.
- Refs-only changes: a manifest and no new bundle ("bundle": null), for both
  engines.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import unittest
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import harness
from harness import Upstream

HTTP_USER = "engine-bot"
HTTP_TOKEN = "tok-engines-4f2a9c"
TOKEN_ENV = "SNAP_ENGINES_TOKEN"
ENGINES = ("stream", "cli")

SERVE_ROOT: Path | None = None
DAEMON: harness.GitDaemon | None = None
HTTP: harness.SmartHttp | None = None
V0_HTTP: harness.SmartHttp | None = None
_counter = itertools.count(1)


class V0SmartHttp(harness.SmartHttp):
    """The harness's smart HTTP server, except that lighttpd removes the
    Git-Protocol request header, so git-http-backend answers protocol v0."""

    def _spawn(self, argv, cwd, env=None):
        conf = Path(argv[-1])
        conf.write_text(conf.read_text() + '\nsetenv.set-request-header = ("Git-Protocol" => "")\n')
        super()._spawn(argv, cwd, env)


def setUpModule():
    global SERVE_ROOT, DAEMON, HTTP, V0_HTTP
    harness.setup_module()
    SERVE_ROOT = harness.mkdtemp("serve-")
    DAEMON = harness.GitDaemon(SERVE_ROOT)
    try:
        HTTP = harness.SmartHttp(SERVE_ROOT, {HTTP_USER: HTTP_TOKEN})
        V0_HTTP = V0SmartHttp(SERVE_ROOT, {HTTP_USER: HTTP_TOKEN})
    except unittest.SkipTest:
        HTTP = V0_HTTP = None  # the smart HTTP tests skip themselves


def tearDownModule():
    harness.teardown_module()


def reachable_objects(repo: Path | str) -> list[str]:
    """Sorted ids of every object reachable from any ref (`rev-list --objects --all`)."""
    out = harness.git("rev-list", "--objects", "--all", git_dir=repo)
    return sorted({line.split(" ", 1)[0] for line in out.splitlines() if line})


class State:
    """What upstream looked like at one step."""

    def __init__(self, label: str, up: Upstream) -> None:
        self.label = label
        self.refs = up.refs()
        self.head = up.head()
        self.ref_map = up.ref_map()
        self.objects = reachable_objects(up.bare)


class _Base(harness.Assertions):
    transport = "git"  # git | http | v0http

    def setUp(self):
        if self.transport in ("http", "v0http") and HTTP is None:
            raise unittest.SkipTest("lighttpd or git-http-backend is not installed")

    def new_upstream(self, label: str) -> Upstream:
        up = harness.build_rich(SERVE_ROOT, f"{label}-{self.transport}-{next(_counter)}")
        # No reflogs on the server: `gc --prune=now` really drops what no ref reaches.
        harness.git("config", "core.logAllRefUpdates", "false", git_dir=up.bare)
        return up

    def repo_spec(self, up: Upstream, transport: str | None = None) -> tuple[dict, dict, dict]:
        """(repository entry, options, extra env) for `up` over `transport`."""
        transport = transport or self.transport
        served = str(up.bare.relative_to(SERVE_ROOT))
        name = "org/" + up.bare.name[:-4]
        if transport == "git":
            return {"url": DAEMON.url_for(served), "name": name}, {}, {}
        server = HTTP if transport == "http" else V0_HTTP
        return ({"url": server.url_for(served), "name": name, "credentials": {"token_env": TOKEN_ENV,
                                                                              "username": HTTP_USER}},
                {"allow_http": True}, {TOKEN_ENV: HTTP_TOKEN})

    def snapshot(self, ws: harness.Workspace, up: Upstream, options: dict, transport: str | None = None,
                 msg: str = "") -> dict:
        """One snapshot of `up`; returns the repository's result."""
        repo, opts, env = self.repo_spec(up, transport)
        opts.update(options)
        run = ws.snapshot([repo], opts, env_extra=env)
        result = self.assertRunOk(run, f"{msg}: snapshot of {repo['url']} with {options}")
        repos = result.get("repositories")
        self.assertIsInstance(repos, list, run.describe())
        self.assertEqual(len(repos), 1, run.describe())
        r = repos[0]
        self.assertIsInstance(r.get("snapshot_id"), str, f"{msg}: {r}")
        r["_name"] = repo["name"]
        return r

    def restore(self, ws: harness.Workspace, name: str, snapshot: str, preserved: bool = False) -> tuple[Path, dict]:
        target = ws.new_target()
        payload = ws.restore_payload(name, target, snapshot)
        if preserved:
            payload["restore"]["preserved"] = True
        result = self.assertRunOk(ws.run(payload), f"restore of {name}@{snapshot}")
        return target, result

    def assertRestoresTo(self, ws: harness.Workspace, name: str, snapshot: str, state: State, msg: str) -> list[str]:
        """Restore `snapshot`; its refs, HEAD and reachable objects equal `state`; fsck is clean.
        Returns the restored repository's reachable objects."""
        target, _ = self.restore(ws, name, snapshot)
        self.assertEqual(harness.refs_of(target), state.refs, f"{msg}: refs differ from upstream at {state.label}")
        self.assertEqual(harness.head_symref(target), state.head, f"{msg}: HEAD differs at {state.label}")
        p = harness.fsck(target)
        self.assertEqual(p.returncode, 0, f"{msg}: fsck --full failed: {p.stdout!r} {p.stderr!r}")
        objects = reachable_objects(target)
        self.assertEqual(objects, state.objects, f"{msg}: reachable objects differ from upstream at {state.label}")
        return objects


def _is_ancestor_rc(up: Upstream, old: str, new: str) -> int:
    """0 when commit `old` is an ancestor of `new` (the work tree keeps every object ever made)."""
    return subprocess.run(["git", "merge-base", "--is-ancestor", old, new], cwd=up.work, env=harness.git_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


def _peel(up: Upstream, oid: str) -> str:
    return subprocess.run(["git", "rev-parse", f"{oid}^{{commit}}"], cwd=up.work, env=harness.git_env(),
                          capture_output=True, text=True).stdout.strip()


def _lost_tip_ancestors(up: Upstream, old: dict, new: dict) -> dict[str, set[str]]:
    """The previous tips of moved branches the server lost (a gc after a reset), each with the
    first-parent ancestors 1, 2, 4, ... 2048 back that the stream engine offers as more haves
    (snapshot/chain_haves.hpp) and that tell it a rewrite (ancestry_from_pack's `older`)."""
    lost: dict[str, set[str]] = {}
    for name in set(old) & set(new):
        if old[name]["oid"] == new[name]["oid"] or name.startswith(("refs/tags/", "refs/replace/")):
            continue
        tip = old[name].get("peeled") or old[name]["oid"]
        if subprocess.run(["git", "cat-file", "-e", tip], cwd=up.bare, env=harness.git_env(),
                          capture_output=True).returncode == 0:
            continue
        line = harness.git("rev-list", "--first-parent", "--max-count=2049", tip, cwd=up.work).split()
        lost[tip] = {line[i] for i in (1 << k for k in range(12)) if i < len(line)}
    return lost


def _stream_answer(up: Upstream, before: str, after: str, haves: list[str],
                   lost: dict[str, set[str]] | None = None) -> str:
    """What the stream engine can tell from an incremental's pack alone (snapshot::ancestry_from_pack):
    the server sends the commits of `after` not reachable from the haves it has (with the
    ancestors of `lost` tips offered too); walking their parents from `after` reaches `before`
    (fast_forward), never leaves them (rewritten), or leaves them at commits whose history the
    pack does not show (updated) unless all of those are known ancestors of a lost `before`."""
    lost = lost or {}
    haves = list(haves) + sorted(set().union(*lost.values()) if lost else [])

    def peel(oid: str) -> str:
        return _peel(up, oid)
    listed = subprocess.run(["git", "rev-list", "--parents", "--ignore-missing", after, "--not", *haves],
                            cwd=up.bare, env=harness.git_env(), capture_output=True, text=True, check=True).stdout
    pack = {line.split()[0]: line.split()[1:] for line in listed.splitlines() if line}
    old, todo, seen, outside = peel(before), [peel(after)], set(), set()
    while todo:
        oid = todo.pop()
        if oid in seen:
            continue
        seen.add(oid)
        if oid == old:
            return "fast_forward"
        if oid not in pack:
            outside.add(oid)
            continue
        todo.extend(pack[oid])
    return "updated" if outside - lost.get(old, set()) else "rewritten"


def expected_changes(up: Upstream, old: dict, new: dict, engine: str, haves: list[str] | None = None,
                     full: bool = False) -> dict:
    """The ref ledger ("changes") each engine records between two ref maps; for the
    stream engine, `haves` are the oids its incremental sent (previous tips, preserved tips),
    and a `full` snapshot (a new chain: its pack is not scanned for commits) judges no move."""
    changes = {}
    lost = _lost_tip_ancestors(up, old, new) if engine == "stream" and not full else {}
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name, {}).get("oid"), new.get(name, {}).get("oid")
        if before == after:
            continue
        if before is None:
            kind = "created"
        elif after is None:
            kind = "deleted"
        else:
            kind = "fast_forward" if _is_ancestor_rc(up, before, after) == 0 else "rewritten"
            if engine == "stream":
                # No local history: what the pack shows, never contradicting git.
                answer = "updated" if full else _stream_answer(up, before, after, haves or [], lost)
                assert answer in (kind, "updated"), (name, answer, kind)
                kind = answer
        changes[name] = {"change": kind, "old": before, "new": after}
    return changes


# The sequence of upstream states. Each step changes `up` and says whether the
# change is refs-only (no object the chain lacks), so that no bundle is written.

def step_new_commits(up: Upstream) -> None:
    n = next(_counter)
    up.checkout("main")
    up.commit_file("news.txt", f"news {n}.1\n", "news 1")
    up.commit_file("news.txt", f"news {n}.2\n", "news 2")
    up.checkout("develop")
    up.commit_file("dev.txt", f"dev work {n}\n", "dev work")
    up.push("main", "develop")


def step_force_push(up: Upstream) -> None:
    up.checkout("develop")
    up.git("reset", "-q", "--hard", "HEAD~2")
    up.commit_file("dev.txt", "rewritten dev\n", "rewritten develop")
    up.push("+refs/heads/develop:refs/heads/develop")


def step_delete_branch(up: Upstream) -> None:
    up.delete_ref("refs/heads/feature/x")


def step_rewind(up: Upstream) -> None:
    up.checkout("main")
    up.git("reset", "-q", "--hard", "HEAD~1")
    up.push("+refs/heads/main:refs/heads/main")


def step_annotated_tag(up: Upstream) -> None:
    up.git("tag", "-a", "-m", "release 3.0", "v3.0", "main")
    up.push("refs/tags/v3.0")


def step_ref_on_old_commit(up: Upstream) -> None:
    old = up.git("rev-parse", "v0.1~1").strip()
    up.push(f"{old}:refs/heads/hotfix/old")


def step_rewrite_from_root(up: Upstream) -> None:
    up.checkout("new-root", orphan=True)
    up.git("rm", "-q", "-rf", ".")
    up.commit_file("ROOT", "a new beginning\n", "new root")
    up.commit_file("src/a.txt", "a, rewritten\n", "rewritten a")
    up.git("branch", "-M", "new-root", "main")
    up.push("+refs/heads/main:refs/heads/main")


def step_force_push_then_gc(up: Upstream) -> None:
    up.checkout("develop")
    up.git("reset", "-q", "--hard", "HEAD~1")
    up.commit_file("gc.txt", "after gc\n", "develop again")
    up.push("+refs/heads/develop:refs/heads/develop")
    # Drop the rewritten history (the tags that kept the first main alive, too) and collect it.
    up.push(":refs/tags/v0.1", ":refs/tags/v1.0")
    harness.git("reflog", "expire", "--expire=now", "--all", git_dir=up.bare)
    harness.git("gc", "-q", "--prune=now", git_dir=up.bare)


STEPS = [
    ("new commits", step_new_commits, False),
    ("force-push", step_force_push, False),
    ("branch deletion", step_delete_branch, True),
    ("rewind", step_rewind, True),
    ("new annotated tag", step_annotated_tag, False),
    ("new ref on an old commit", step_ref_on_old_commit, True),
    ("history rewritten from the root", step_rewrite_from_root, False),
    ("force-push and server gc", step_force_push_then_gc, False),
]

# Incrementals on these small repositories: the chain never gets too large.
CHAIN_OPTIONS = {"full_size_ratio": 100}

# The chains the differential test keeps side by side. "stream-index" checks
# every pack with git index-pack (options.verify) and, holding the objects,
# records the same ledger as the CLI engine.
CHAINS = {"stream": {"engine": "stream"}, "stream-index": {"engine": "stream", "verify": "index"},
          "cli": {"engine": "cli"}}


def ledger_of(chain_options: dict) -> str:
    """Whose ledger rules a chain follows in expected_changes()."""
    return "cli" if chain_options.get("verify") == "index" else chain_options["engine"]


class _Differential(_Base):
    """Both engines, one sequence of upstream states, two chains."""

    def test_stream_and_cli_chains_restore_identically(self):
        up = self.new_upstream("diff")
        workspaces = {chain: harness.Workspace(f"{chain}-") for chain in CHAINS}
        states: list[State] = []
        sids: dict[str, list[str]] = {chain: [] for chain in CHAINS}
        preserved: dict[str, dict[str, str]] = {chain: {} for chain in CHAINS}
        stream_seen: dict[str, set[str]] = {chain: set() for chain in CHAINS}
        pool = ThreadPoolExecutor(max_workers=len(CHAINS))
        self.addCleanup(pool.shutdown)

        steps = [("initial", None, False)] + STEPS
        for index, (label, mutate, refs_only) in enumerate(steps):
            previous_map = states[-1].ref_map if states else None
            if mutate is not None:
                mutate(up)
            state = State(label, up)
            self.assertTrue(previous_map is None or state.ref_map != previous_map, f"{label}: upstream did not change")
            states.append(state)

            for chain, chain_options in CHAINS.items():
                engine = chain_options["engine"]
                ws = workspaces[chain]
                if chain == "stream-index" and index % 3 == 2:
                    # A container that starts empty: the objects index-pack needs come from the chain.
                    shutil.rmtree(ws.cache_dir / "verify", ignore_errors=True)
                msg = f"step {index} ({label}), chain {chain}"
                r = self.snapshot(ws, up, dict(CHAIN_OPTIONS, **chain_options), msg=msg)
                name, sid = r["_name"], r["snapshot_id"]
                expected_kind = "full" if index == 0 else "incremental"
                self.assertEqual((r.get("status"), r.get("engine"), r.get("kind"), r.get("refs")),
                                 ("ok", engine, expected_kind, len(state.ref_map)), f"{msg}: {r}")
                bundle_key = harness.bundle_key(name, sid)
                m = ws.manifest(name, sid)
                self.assertEqual((m.get("engine"), m.get("kind"), m.get("refs"), m.get("head")),
                                 (engine, expected_kind, state.ref_map, state.head), f"{msg}: manifest")
                self.assertEqual(m.get("parent"), sids[chain][-1] if sids[chain] else None, f"{msg}: parent")
                if refs_only:
                    # A refs-only change: a manifest, no bundle; the chain is the previous one.
                    self.assertIsNone(r.get("bundle"), f"{msg}: a refs-only change must not write a bundle: {r}")
                    self.assertFalse(ws.path_of(bundle_key).exists(), f"{msg}: unexpected {bundle_key}")
                    prev = ws.manifest(name, sids[chain][-1])
                    self.assertEqual(m.get("bundles"), prev.get("bundles"), f"{msg}: chain")
                else:
                    bpath = ws.path_of(bundle_key)
                    self.assertTrue(bpath.is_file(), f"{msg}: no bundle {bundle_key}: {r}")
                    self.assertEqual(r.get("bundle"), {"key": bundle_key, "size": bpath.stat().st_size,
                                                       "sha256": harness.sha256_file(bpath)}, f"{msg}")
                    self.assertEqual(m["bundles"][-1]["key"], bundle_key, f"{msg}: chain")
                    self.assertEqual("index_pack" in m.get("timings_ms", {}), chain_options.get("verify") == "index",
                                     f"{msg}: git index-pack ran exactly when asked: {m.get('timings_ms')}")
                    self.assertEqual(len(m["bundles"]), 1 if index == 0 else
                                     len(ws.manifest(name, sids[chain][-1])["bundles"]) + 1, f"{msg}: chain")
                # The ref ledger and the preserved tips.
                if previous_map is not None:
                    changes = m.get("changes")
                    haves = [t["oid"] for t in previous_map.values()] + list(preserved[chain].values())
                    self.assertEqual(changes, expected_changes(up, previous_map, state.ref_map, ledger_of(chain_options),
                                                               haves), f"{msg}: changes")
                    stream_seen[chain] |= {c["change"] for c in changes.values()}
                    for ref, c in changes.items():
                        if c["change"] in ("rewritten", "deleted", "updated"):
                            preserved[chain][f"refs/snapshotter/preserved/{sid}/{ref}"] = previous_map[ref]["oid"]
                self.assertEqual({f"refs/snapshotter/preserved/{k}": v for k, v in (m.get("preserved") or {}).items()},
                                 preserved[chain], f"{msg}: preserved")
                sids[chain].append(sid)

            # The latest snapshots: the same refs, HEAD and objects as upstream, hence as each other.
            futures = {chain: pool.submit(self.assertRestoresTo, workspaces[chain], name, "latest", state,
                                          f"step {index} ({label}): latest of the {chain} chain")
                       for chain in CHAINS}
            objects = {chain: f.result() for chain, f in futures.items()}
            for chain in CHAINS:
                self.assertEqual(objects[chain], objects["cli"], f"step {index} ({label}): reachable objects differ")

        # With the default verify (pack) the stream engine's ledger tells fast-forwards and
        # rewrites from the pack, and keeps "updated" for the force-push and the rewind.
        self.assertLessEqual({"fast_forward", "rewritten", "updated"}, stream_seen["stream"], stream_seen)

        # No change: an "unchanged" manifest on the same chain, for both engines.
        for chain, chain_options in CHAINS.items():
            engine = chain_options["engine"]
            ws = workspaces[chain]
            r = self.snapshot(ws, up, dict(CHAIN_OPTIONS, **chain_options), msg=f"no change ({chain})")
            self.assertEqual((r.get("status"), r.get("engine"), r.get("kind"), r.get("bundle")),
                             ("unchanged", engine, "unchanged", None), r)
            m, prev = ws.manifest(name, r["snapshot_id"]), ws.manifest(name, sids[chain][-1])
            self.assertEqual((m.get("engine"), m.get("refs"), m.get("bundles")),
                             (engine, prev["refs"], prev["bundles"]), f"no change ({chain}): manifest")
            sids[chain].append(r["snapshot_id"])
        states.append(states[-1])

        # Every earlier snapshot id of both chains still restores to the upstream state of its step.
        earlier = [pool.submit(self.assertRestoresTo, workspaces[chain], name, sids[chain][i], states[i],
                               f"{chain} snapshot {i} ({states[i].label}) after the whole sequence")
                   for chain in CHAINS for i in range(len(states))]
        for f in earlier:
            f.result()

        # restore.preserved brings back every preserved tip of each chain; the
        # CLI engine's (rewritten and deleted refs) are among the stream engine's
        # (every moved or deleted ref).
        def moved(tips: dict[str, str]) -> set[tuple[str, str]]:  # (ref, old tip) without the snapshot id
            return {(key.split("/", 4)[4], oid) for key, oid in tips.items()}

        self.assertLessEqual(moved(preserved["cli"]), moved(preserved["stream"]))
        self.assertEqual(moved(preserved["stream-index"]), moved(preserved["cli"]))
        self.assertTrue(preserved["cli"], "the sequence rewrites and deletes refs")
        for chain in CHAINS:
            target, result = self.restore(workspaces[chain], name, "latest", preserved=True)
            restored = harness.ref_map(target)
            self.assertEqual({k: v["oid"] for k, v in restored.items() if k.startswith("refs/snapshotter/")},
                             preserved[chain], f"{chain}: preserved tips")
            self.assertEqual({k: v for k, v in restored.items() if not k.startswith("refs/snapshotter/")},
                             states[-1].ref_map, f"{chain}: refs beside the preserved tips")
            self.assertEqual(result.get("preserved"), len(preserved[chain]), result)
            p = harness.fsck(target)
            self.assertEqual(p.returncode, 0, f"{chain}: fsck after restore with preserved tips: {p.stderr!r}")


class DifferentialOverGitDaemon(_Differential, unittest.TestCase):
    transport = "git"


class DifferentialOverSmartHttp(_Differential, unittest.TestCase):
    transport = "http"


class AlternatingEngines(_Base, unittest.TestCase):
    """auto may pick another engine from one night to the next: one chain whose
    snapshots alternate between the engines restores exactly at every step."""

    def test_one_chain_two_engines(self):
        up = self.new_upstream("alternate")
        ws = harness.Workspace("alternate-")
        states, sids = [], []
        for index, (label, mutate, refs_only) in enumerate([("initial", None, False)] + STEPS):
            if mutate is not None:
                mutate(up)
            engine = ENGINES[index % 2]
            r = self.snapshot(ws, up, dict(CHAIN_OPTIONS, engine=engine), msg=f"{label} ({engine})")
            self.assertEqual((r.get("engine"), r.get("kind")), (engine, "incremental" if index else "full"), r)
            self.assertEqual(r.get("bundle") is None, refs_only, f"{label} ({engine}): {r}")
            states.append(State(label, up))
            sids.append(r["snapshot_id"])
            self.assertRestoresTo(ws, r["_name"], "latest", states[-1], f"{label} ({engine})")
        for sid, state in zip(sids, states):
            self.assertRestoresTo(ws, r["_name"], sid, state, f"{state.label} after the whole sequence")


class IndexVerificationSelfHeals(_Base, unittest.TestCase):
    """With "verify": "index" and no cached objects, a chain whose bundle was
    damaged in storage (same size, so the cheap existence check passes) cannot
    be replayed: the next snapshot starts a new full chain instead of failing,
    and it restores exactly."""

    def test_damaged_chain_gives_a_full_snapshot(self):
        up = self.new_upstream("indexheal")
        ws = harness.Workspace("indexheal-")
        options = dict(CHAIN_OPTIONS, engine="stream", verify="index")
        first = self.snapshot(ws, up, options, msg="first")
        bundle = ws.path_of(harness.bundle_key(first["_name"], first["snapshot_id"]))
        data = bytearray(bundle.read_bytes())
        data[len(data) // 2] ^= 0x5A
        bundle.write_bytes(bytes(data))
        shutil.rmtree(ws.cache_dir / "verify")
        step_new_commits(up)
        second = self.snapshot(ws, up, options, msg="after the damage")
        self.assertEqual((second.get("status"), second.get("kind")), ("ok", "full"), second)
        m = ws.manifest(second["_name"], second["snapshot_id"])
        self.assertEqual(len(m["bundles"]), 1, m["bundles"])
        self.assertIn("index_pack", m["timings_ms"])
        self.assertRestoresTo(ws, second["_name"], "latest", State("after the damage", up), "self-healed chain")


class FullSnapshotLedger(_Base, unittest.TestCase):
    """A full snapshot that starts a new chain (full_every 1) records, counts and
    logs how refs moved, with either engine."""

    def test_full_snapshot_counts_deletions(self):
        up = self.new_upstream("fullledger")
        workspaces = {engine: harness.Workspace(f"fullledger-{engine}-") for engine in ENGINES}
        options = {"full_every": 1}
        for engine, ws in workspaces.items():
            self.snapshot(ws, up, dict(options, engine=engine), msg=f"first ({engine})")
        before = up.ref_map()
        step_delete_branch(up)
        step_force_push(up)
        for engine, ws in workspaces.items():
            repo, opts, env = self.repo_spec(up)
            run = ws.snapshot([repo], dict(opts, engine=engine, **options), env_extra=env)
            result = self.assertRunOk(run, f"second ({engine})")
            r = result["repositories"][0]
            rewritten = 1 if engine == "cli" else 0  # the stream engine cannot tell a rewrite from an update
            self.assertEqual((r.get("kind"), r.get("refs_deleted"), r.get("refs_rewritten")),
                             ("full", 1, rewritten), f"{engine}: {r}")
            self.assertEqual((result["summary"].get("refs_deleted"), result["summary"].get("refs_rewritten")),
                             (1, rewritten), f"{engine}: {result['summary']}")
            self.assertIn(b"refs/heads/feature/x was deleted", run.stderr, f"{engine}: the deletion is logged")
            m = ws.manifest(repo["name"], r["snapshot_id"])
            self.assertEqual(m.get("changes"), expected_changes(up, before, up.ref_map(), engine, full=True), engine)
            if engine == "stream":
                self.assertEqual(m.get("preserved"), {}, "a stateless full chain carries no old tips")


class AutoEngine(_Base, unittest.TestCase):
    """engine auto: stream where the server speaks protocol v2, git otherwise."""

    transport = "http"

    def check_auto(self, transport: str, expected: str) -> None:
        up = self.new_upstream("auto")
        ws = harness.Workspace("auto-")
        r1 = self.snapshot(ws, up, {}, transport=transport, msg=f"auto over {transport}")
        name = r1["_name"]
        self.assertEqual((r1.get("status"), r1.get("engine"), r1.get("kind")), ("ok", expected, "full"), r1)
        m1 = ws.manifest(name, r1["snapshot_id"])
        self.assertEqual(m1.get("engine"), expected, f"auto over {transport}: manifest")
        self.assertEqual(ws.cache_dir.exists(), expected == "cli", f"auto over {transport}: cache_dir")
        state1 = State("initial", up)
        step_new_commits(up)
        step_delete_branch(up)
        r2 = self.snapshot(ws, up, CHAIN_OPTIONS, transport=transport, msg=f"auto over {transport}, second")
        self.assertEqual((r2.get("status"), r2.get("engine"), r2.get("kind")), ("ok", expected, "incremental"), r2)
        self.assertEqual(ws.manifest(name, r2["snapshot_id"]).get("engine"), expected)
        self.assertRestoresTo(ws, name, "latest", State("changed", up), f"auto over {transport}")
        self.assertRestoresTo(ws, name, r1["snapshot_id"], state1, f"auto over {transport}, first")

    def test_auto_uses_git_against_a_protocol_v0_server(self):
        self.check_auto("v0http", "cli")

    def test_auto_streams_from_a_protocol_v2_http_server(self):
        self.check_auto("http", "stream")

    def test_auto_streams_from_git_daemon(self):
        self.check_auto("git", "stream")

    def test_stream_engine_refuses_a_protocol_v0_server(self):
        up = self.new_upstream("v0stream")
        ws = harness.Workspace("v0stream-")
        repo, opts, env = self.repo_spec(up, "v0http")
        run = ws.snapshot([repo], dict(opts, engine="stream"), env_extra=env)
        self.assertEqual(run.rc, 1, run.describe())
        self.assertEqual(run.out.get("error"), "GitError", run.describe())
        self.assertIn("protocol v2", run.out.get("message", ""), run.describe())
        self.assertFalse((ws.storage_dir / "repos" / harness.repo_key(repo["name"]) / "bundles").exists()
                         and any((ws.storage_dir / "repos" / harness.repo_key(repo["name"]) / "bundles").iterdir()),
                         "no bundle is written")
        self.assertFalse(ws.cache_dir.exists(), "engine stream never falls back to git")


class StreamEngineNeedsNoCache(_Base, unittest.TestCase):
    """A stream-engine job never creates a cache directory: not the given
    cache_dir, not the default one under $HOME."""

    def test_no_cache_directory(self):
        up = self.new_upstream("nocache")
        for cache_given in (True, False):
            with self.subTest(cache_dir_given=cache_given):
                ws = harness.Workspace("nocache-")
                repo, opts, env = self.repo_spec(up)
                options = dict(opts, engine="stream", **CHAIN_OPTIONS)
                payload = ws.snapshot_payload([repo], options)
                if not cache_given:
                    del payload["options"]["cache_dir"]
                before = harness.tree_state(ws.home)
                for step in range(3):  # full, incremental, unchanged
                    payload["job_id"] = f"nocache-{cache_given}-{step}"
                    r = self.assertRunOk(ws.run(payload, env_extra=env))["repositories"][0]
                    self.assertEqual((r.get("engine"), r.get("kind")),
                                     ("stream", ["full", "incremental", "unchanged"][step]), r)
                    if step == 0:
                        step_new_commits(up)
                self.assertFalse(ws.cache_dir.exists(), f"{ws.cache_dir} was created")
                self.assertTreeUnchanged(before, harness.tree_state(ws.home), "HOME")
                self.assertEqual(sorted(p.name for p in ws.root.iterdir()), ["home", "storage", "tmp"],
                                 "only storage was written")
                self.assertEqual(list(ws.tmp.iterdir()), [], "TMPDIR is left empty")


class RefsOnlyChanges(_Base, unittest.TestCase):
    """A deletion, a rewind and a new ref on an old commit, one at a time and
    all at once: a new manifest, no new bundle, for both engines."""

    def test_refs_only_changes_write_no_bundle(self):
        up = self.new_upstream("refsonly")
        workspaces = {engine: harness.Workspace(f"refsonly-{engine}-") for engine in ENGINES}

        def take(label: str) -> dict:
            out = {}
            for engine, ws in workspaces.items():
                out[engine] = self.snapshot(ws, up, dict(CHAIN_OPTIONS, engine=engine), msg=f"{label} ({engine})")
            return out

        first = take("initial")
        chains = {engine: workspaces[engine].manifest(r["_name"], r["snapshot_id"])["bundles"]
                  for engine, r in first.items()}

        def all_at_once(u: Upstream) -> None:
            u.delete_ref("refs/heads/pages")
            u.push(f"{u.git('rev-parse', 'v0.1').strip()}:refs/heads/from-tag")
            u.checkout("develop")
            u.git("reset", "-q", "--hard", "HEAD~1")
            u.push("+refs/heads/develop:refs/heads/develop")

        for label, mutate in (("branch deletion", step_delete_branch), ("rewind", step_rewind),
                              ("new ref on an old commit", step_ref_on_old_commit),
                              ("all at once", all_at_once)):
            mutate(up)
            state = State(label, up)
            for engine, r in take(label).items():
                ws = workspaces[engine]
                msg = f"{label} ({engine})"
                self.assertEqual((r.get("status"), r.get("engine"), r.get("kind"), r.get("bundle")),
                                 ("ok", engine, "incremental", None), f"{msg}: {r}")
                m = ws.manifest(r["_name"], r["snapshot_id"])
                self.assertEqual((m.get("refs"), m.get("bundles")), (state.ref_map, chains[engine]), msg)
                self.assertEqual(sorted(p.name for p in ws.path_of(harness.bundle_key(r["_name"], "x")).parent.iterdir()),
                                 [chains[engine][0]["key"].rsplit("/", 1)[1]], f"{msg}: one bundle in storage")
                self.assertRestoresTo(ws, r["_name"], "latest", state, msg)


if __name__ == "__main__":
    unittest.main()
