"""The snapshot-restore matrix (issue 15): repository shapes x servers x engines.

Servers: git daemon (protocol v2), git http-backend behind lighttpd (v2,
basic auth), file://, JGit 4.11's `jgit daemon` and Dulwich 0.21's
TCPGitServer (both v0-only, git://; harness.JGitDaemon, harness.DulwichDaemon).
Engines: stream, cli, auto. On a v0-only server the stream engine refuses
clearly ("does not speak git protocol v2", nothing committed) and auto falls
back to the cli engine, saying why in the manifest's engine_fallback.

Shapes: a head and a tag of the same name, unicode names, an annotated tag
of a tag, tags of a tree and of a blob, a gitlink, notes (selected), an empty
repository, and HEAD in every state: symbolic, unborn (names a missing
branch), detached at a ref's tip, detached at a commit no ref reaches
(stored as refs/snapshotter/head in the bundle so restore can detach there),
and absent (HEAD names a ref git's syntax refuses; no server advertises it).
Every case snapshots, restores, compares `git for-each-ref` and HEAD of the
restored repository with the upstream's, and runs git fsck.

What v0 cannot say: a v0 server never advertises an unborn HEAD, so over JGit
and Dulwich an unborn HEAD is recorded as absent, and an absent HEAD restores
as git's default unborn branch (a repository cannot lack HEAD).

Shallow upstreams (`git clone --depth` mirrors) with options.allow_shallow:
snapshot ok, the manifest lists the boundary under "shallow", restore gives
an equally shallow repository with exactly the upstream's refs, an
incremental on top restores too, and verify's drill passes; on every server.
"""

from __future__ import annotations

import itertools
import unittest
from pathlib import Path

import harness

HTTP_USER = "matrix-bot"
HTTP_TOKEN = "tok-matrix-3b9e"
TOKEN_ENV = "SNAP_MATRIX_TOKEN"
PATTERNS = ["refs/heads/*", "refs/tags/*", "refs/notes/*"]
V2_SERVERS = ("daemon", "http", "file")
V0_SERVERS = ("jgit", "dulwich")

SERVE_ROOT: Path | None = None
SERVERS: dict[str, object] = {}
SKIPPED: dict[str, str] = {}
_counter = itertools.count(1)


def setUpModule():
    global SERVE_ROOT
    harness.setup_module()
    SERVE_ROOT = harness.mkdtemp("serve-")
    SERVERS["daemon"] = harness.GitDaemon(SERVE_ROOT)
    SERVERS["file"] = None
    for name, start in (("http", lambda: harness.SmartHttp(SERVE_ROOT, {HTTP_USER: HTTP_TOKEN})),
                        ("jgit", lambda: harness.JGitDaemon(SERVE_ROOT)),
                        ("dulwich", lambda: harness.DulwichDaemon(SERVE_ROOT))):
        try:
            SERVERS[name] = start()
        except unittest.SkipTest as e:
            SKIPPED[name] = str(e)


def tearDownModule():
    harness.teardown_module()


def repo_spec(bare: Path, server: str, label: str) -> tuple[dict, dict, dict]:
    """(repository entry, options, extra env) for the served repository `bare` on `server`."""
    served = str(bare.relative_to(SERVE_ROOT))
    entry = {"name": f"m/{bare.name[:-4]}-{server}-{label}-{next(_counter)}", "refs": PATTERNS}
    if server == "file":
        return dict(entry, url=f"file://{bare}"), {}, {}
    if server == "http":
        return (dict(entry, url=SERVERS["http"].url_for(served),
                     credentials={"token_env": TOKEN_ENV, "username": HTTP_USER}),
                {"allow_http": True}, {TOKEN_ENV: HTTP_TOKEN})
    return dict(entry, url=SERVERS[server].url_for(served)), {}, {}


def head_of(repo: Path) -> tuple[str | None, str | None]:
    """(symbolic target or None, the oid HEAD resolves to or None)."""
    oid = harness.git("rev-parse", "-q", "--verify", "HEAD^{object}", git_dir=repo, check=False).strip()
    return harness.head_symref(repo), oid or None


def commit_object(up: harness.Upstream, message: str, parent: str | None = None) -> str:
    """A commit of the work tree's HEAD tree that no ref points at."""
    args = ["commit-tree", "-m", message] + (["-p", parent] if parent else []) + ["HEAD^{tree}"]
    oid = up.git(*args).strip()
    return oid


def build_exotic(root: Path, name: str) -> harness.Upstream:
    """Heads and tags of the same name, unicode names, a tag of a tag, tags of a
    tree and of a blob, a gitlink, notes; HEAD on develop."""
    up = harness.new_upstream(root, name)
    up.commit_file("README", "exotic\n", "initial")
    up.git("update-index", "--add", "--cacheinfo", "160000," + "1" * 40 + ",vendor/lib")
    up.git("commit", "-q", "-m", "a gitlink")
    up.git("tag", "-a", "-m", "same name as a branch", "v1")
    up.git("tag", "-a", "-m", "tag of a tag", "v1-signed", "v1")
    up.git("tag", "-a", "-m", "a tree", "tree-tag", "HEAD^{tree}")
    blob = up.git("rev-parse", "HEAD:README").strip()
    up.git("tag", "blob-tag", blob)
    up.git("tag", "-a", "-m", "a blob", "blob-tag-annotated", blob)
    up.git("notes", "add", "-m", "a note", "HEAD")
    up.checkout("v1", create=True)  # refs/heads/v1 beside refs/tags/v1, on another commit
    up.commit_file("v1.txt", "branch v1\n", "branch v1")
    up.checkout(harness.UNICODE_BRANCH, create=True)
    up.commit_file("ü.txt", "ü\n", "ünïcødé")
    up.git("tag", harness.UNICODE_TAG)
    up.checkout("develop", create=True)
    up.commit_file("dev.txt", "dev\n", "develop")
    up.checkout("main")
    up.push("--all")
    up.push("--tags")
    up.push("refs/notes/commits")
    up.set_head("refs/heads/develop")
    return up


class Case:
    """One upstream shape: its repository and what HEAD each kind of server reports."""

    def __init__(self, label: str, up: harness.Upstream, state: str, target: str | None) -> None:
        self.label, self.up, self.state, self.target = label, up, state, target
        self.refs, self.head = up.refs(), head_of(up.bare)  # the upstream never changes

    def expected_head(self, server: str) -> tuple[str, str | None]:
        """(head_state, head or head_oid) the manifest records when served by `server`."""
        if self.state == "unborn" and server in V0_SERVERS:
            return "absent", None  # v0 has no way to advertise an unborn HEAD
        return self.state, self.target


def build_cases(root: Path) -> list[Case]:
    base = build_exotic(root, "exotic")
    cases = [Case("symbolic", base, "symbolic", "refs/heads/develop")]
    unborn = base.copy_to(root, "head-unborn")
    unborn.set_head("refs/heads/not-yet")
    cases.append(Case("unborn", unborn, "unborn", "refs/heads/not-yet"))
    detached = base.copy_to(root, "head-detached")
    main = detached.git("rev-parse", "refs/heads/main").strip()
    harness.git("update-ref", "--no-deref", "HEAD", main, git_dir=detached.bare)
    cases.append(Case("detached", detached, "detached", main))
    lost = base.copy_to(root, "head-unreachable")
    orphan = commit_object(lost, "reached by HEAD only", parent=main)
    lost.git("push", "-q", "origin", f"{orphan}:refs/heads/tmp")
    harness.git("update-ref", "--no-deref", "HEAD", orphan, git_dir=lost.bare)
    harness.git("update-ref", "-d", "refs/heads/tmp", git_dir=lost.bare)
    cases.append(Case("unreachable", lost, "detached", orphan))
    absent = base.copy_to(root, "head-absent")
    (absent.bare / "HEAD").write_text("ref: refs/heads/bad..name\n")  # git accepts the file, no server shows it
    cases.append(Case("absent", absent, "absent", None))
    empty = harness.build_empty(root, "empty", head="refs/heads/trunk")
    cases.append(Case("empty", empty, "unborn", "refs/heads/trunk"))
    return cases


def engines_for(server: str) -> tuple[str, ...]:
    """The engines a server is tried with. On a v2 server auto is the stream engine (test_engines.AutoEngine
    shows it picks stream there), so it is tried once, on git daemon; on a v0-only server the stream
    engine's refusal is its own test, and auto must fall back to cli."""
    if server in V0_SERVERS:
        return ("cli", "auto")
    return ("stream", "cli", "auto") if server == "daemon" else ("stream", "cli")


class ServerMatrix(harness.Assertions, unittest.TestCase):
    """One snapshot job per server and engine holds every shape; each shape is then restored and compared."""

    @classmethod
    def setUpClass(cls):
        cls.cases = build_cases(SERVE_ROOT)

    def snapshot_all(self, server: str, engine: str) -> tuple[harness.Workspace, dict[str, tuple[dict, dict]]]:
        """Snapshot every shape on `server` with `engine` in one job; {label: (repository entry, result entry)}."""
        ws = harness.Workspace("mx-")
        repos, options, env = [], {"engine": engine}, {}
        for case in self.cases:
            repo, opts, extra = repo_spec(case.up.bare, server, case.label)
            repos.append(repo)
            options.update(opts)
            env.update(extra)
        result = self.assertRunOk(ws.snapshot(repos, options, env_extra=env), f"{server} with {engine}")
        by_name = {r["name"]: r for r in result["repositories"]}
        return ws, {case.label: (repo, by_name[repo["name"]]) for case, repo in zip(self.cases, repos)}

    def check_case(self, ws: harness.Workspace, case: Case, repo: dict, entry: dict, server: str,
                   engine: str) -> None:
        what = f"{case.label} on {server} with {engine}"
        self.assertEqual(entry.get("status"), "ok", f"{what}: {entry}")
        manifest = ws.manifest(repo["name"], entry["snapshot_id"])
        used = "cli" if server in V0_SERVERS else ("stream" if engine == "auto" else engine)
        self.assertEqual(manifest["engine"], used, what)
        if server in V0_SERVERS and engine == "auto":
            self.assertIn("protocol v2", manifest.get("engine_fallback") or "", f"{what}: engine_fallback")
        else:
            self.assertIsNone(manifest.get("engine_fallback"), what)
        state, target = case.expected_head(server)
        recorded = manifest.get("head_oid") if state == "detached" else manifest.get("head")
        self.assertEqual((manifest.get("head_state"), recorded), (state, target), f"{what}: HEAD recorded")
        target_dir = ws.new_target()
        self.assertRunOk(ws.restore(repo["name"], target_dir), f"{what}: restore")
        self.assertEqual(harness.refs_of(target_dir), case.refs, f"{what}: refs differ from upstream")
        symref, oid = head_of(target_dir)
        if state in ("symbolic", "unborn"):
            self.assertEqual(symref, target, f"{what}: HEAD")
            self.assertEqual((symref, oid), case.head, f"{what}: HEAD differs from upstream")
        elif state == "detached":
            self.assertEqual((symref, oid), (None, target), f"{what}: detached HEAD")
            self.assertEqual((symref, oid), case.head, f"{what}: HEAD differs from upstream")
        else:  # absent: a repository cannot lack HEAD; restore keeps the one git init wrote
            self.assertEqual(symref, "refs/heads/main", f"{what}: an absent HEAD restored")
        p = harness.fsck(target_dir)
        self.assertEqual(p.returncode, 0, f"{what}: git fsck: {p.stdout!r} {p.stderr!r}")

    def test_every_shape_on_every_server_with_every_engine(self):
        for server in V2_SERVERS + V0_SERVERS:
            for engine in engines_for(server):
                with self.subTest(server=server, engine=engine):
                    if server in SKIPPED:
                        self.skipTest(SKIPPED[server])
                    ws, done = self.snapshot_all(server, engine)
                    for case in self.cases:
                        with self.subTest(server=server, engine=engine, shape=case.label):
                            self.check_case(ws, case, *done[case.label], server, engine)

    def test_a_detached_head_no_ref_reaches_moves_in_an_incremental(self):
        for engine in ("stream", "cli"):
            with self.subTest(engine=engine):
                up = self.cases[0].up.copy_to(SERVE_ROOT, f"head-moves-{engine}")
                main = up.git("rev-parse", "refs/heads/main").strip()
                ws = harness.Workspace("mx-head-")
                repo, options, env = repo_spec(up.bare, "daemon", engine)
                options.update(engine=engine, full_every=10)
                for step in range(2):
                    orphan = commit_object(up, f"reached by HEAD only, step {step}", parent=main)
                    up.git("push", "-q", "origin", f"{orphan}:refs/heads/tmp")
                    harness.git("update-ref", "--no-deref", "HEAD", orphan, git_dir=up.bare)
                    harness.git("update-ref", "-d", "refs/heads/tmp", git_dir=up.bare)
                    entry = self.assertRunOk(ws.snapshot([repo], options, env_extra=env),
                                             f"{engine}, step {step}")["repositories"][0]
                    self.assertEqual(entry["kind"], ("full", "incremental")[step], entry)
                    target = ws.new_target()
                    self.assertRunOk(ws.restore(repo["name"], target), f"{engine}, step {step}: restore")
                    self.assertEqual((harness.refs_of(target), head_of(target)), (up.refs(), (None, orphan)),
                                     f"{engine}, step {step}")
                    self.assertEqual(harness.fsck(target).returncode, 0, f"{engine}, step {step}: fsck")
                    up.checkout("main")
                    main = up.commit_file("step.txt", f"{step}\n", f"step {step}")
                    up.push("main")

    def test_stream_engine_refuses_v0_servers_clearly(self):
        for server in V0_SERVERS:
            with self.subTest(server=server):
                if server in SKIPPED:
                    self.skipTest(SKIPPED[server])
                ws = harness.Workspace("mx-v0-")
                repo, options, env = repo_spec(self.cases[0].up.bare, server, "stream")
                run = ws.snapshot([repo], dict(options, engine="stream"), env_extra=env)
                self.assertEqual(run.rc, 1, run.describe())
                entry = run.out["result"]["repositories"][0]
                self.assertEqual((entry.get("status"), entry.get("error")), ("failed", "GitError"), run.describe())
                self.assertIn("does not speak git protocol v2", entry.get("message", ""), run.describe())
                self.assertEqual(ws.store.keys(f"repos/{harness.repo_key(repo['name'])}/"), [],
                                 f"{server}: something was committed")
                self.assertFalse(ws.cache_dir.exists(), f"{server}: engine stream never falls back to git")


def shallow_mirror(deep: harness.Upstream, depth: int, name: str) -> Path:
    """A bare `git clone --depth` of `deep`, served under SERVE_ROOT."""
    return harness.shallow_clone(deep, SERVE_ROOT / f"{name}.git", depth)


class ShallowSnapshots(harness.Assertions, unittest.TestCase):
    """options.allow_shallow: a shallow upstream gives a shallow snapshot that restores exactly."""

    @classmethod
    def setUpClass(cls):
        cls.deep = harness.build_rich(SERVE_ROOT, "deep")
        for i in range(3):
            cls.deep.checkout("main")
            cls.deep.commit_file("more.txt", f"more {i}\n", f"more {i}")
        cls.deep.push("main")

    def assertShallowRestore(self, ws: harness.Workspace, name: str, mirror: Path, what: str) -> None:
        target = ws.new_target()
        self.assertRunOk(ws.restore(name, target), f"{what}: restore")
        self.assertEqual(harness.refs_of(target), harness.refs_of(mirror), f"{what}: refs differ")
        self.assertEqual(harness.head_symref(target), harness.head_symref(mirror), f"{what}: HEAD differs")
        self.assertEqual(harness.git("rev-parse", "--is-shallow-repository", git_dir=target).strip(), "true",
                         f"{what}: the restored repository is not shallow")
        self.assertEqual(sorted((target / "shallow").read_text().split()),
                         sorted((mirror / "shallow").read_text().split()), f"{what}: another shallow boundary")
        p = harness.fsck(target)
        self.assertEqual(p.returncode, 0, f"{what}: git fsck: {p.stdout!r} {p.stderr!r}")

    def test_allowed_shallow_upstream_restores_as_an_equally_shallow_repository(self):
        # Every server that can serve a shallow repository, each engine on two of them (auto is
        # stream on these servers, as the matrix above shows).
        for server, engine in (("daemon", "stream"), ("daemon", "cli"), ("http", "cli"), ("file", "stream")):
            with self.subTest(server=server, engine=engine):
                if server in SKIPPED:
                    self.skipTest(SKIPPED[server])
                self.check_shallow_chain(server, engine)

    def check_shallow_chain(self, server: str, engine: str) -> None:
        mirror = shallow_mirror(self.deep, 2, f"shallow-{server}-{engine}")
        ws = harness.Workspace("mx-shallow-")
        repo, options, env = repo_spec(mirror, server, engine)
        repo["refs"] = ["refs/heads/*", "refs/tags/*"]
        options.update(engine=engine, allow_shallow=True)
        what = f"shallow on {server} with {engine}"
        first = self.assertRunOk(ws.snapshot([repo], options, env_extra=env), what)["repositories"][0]
        manifest = ws.manifest(repo["name"], first["snapshot_id"])
        self.assertEqual((first["kind"], manifest.get("shallow")),
                         ("full", sorted((mirror / "shallow").read_text().split())), what)
        self.assertShallowRestore(ws, repo["name"], mirror, what)
        # The upstream moves on (still shallow): an incremental on top restores too.
        self.deep.checkout("main")
        self.deep.commit_file("next.txt", f"{server} {engine}\n", f"next for {server} {engine}")
        self.deep.push("main")
        harness.git("fetch", "-q", f"file://{self.deep.bare}", "+refs/heads/main:refs/heads/main", git_dir=mirror)
        second = self.assertRunOk(ws.snapshot([repo], options, env_extra=env), f"{what}, second")["repositories"][0]
        self.assertEqual(second["kind"], "incremental", f"{what}: {second}")
        self.assertShallowRestore(ws, repo["name"], mirror, f"{what}, incremental")
        verify = self.assertRunOk(ws.verify([repo["name"]], drill=True), f"{what}: verify")
        self.assertEqual([s["ok"] for s in verify["snapshots"]], [True], f"{what}: {verify}")
        if (server, engine) == ("daemon", "stream"):
            # Without allow_shallow the unchanged upstream is not "unchanged": it is refused.
            run = ws.snapshot([repo], dict(options, allow_shallow=False), env_extra=env)
            self.assertEqual(run.rc, 1, run.describe())
            self.assertIn("the upstream is a shallow repository",
                          run.out["result"]["repositories"][0].get("message", ""), run.describe())
        if (server, engine) == ("daemon", "cli"):
            # prune's rebase replays the shallow chain into one full bundle, which restores the same.
            prune = {"version": 1, "action": "prune", "storage": ws.storage(),
                     "prune": {"repositories": [repo["name"]], "keep_last": 1, "rebase": True}}
            self.assertRunOk(ws.run(prune), f"{what}: prune with rebase")
            self.assertEqual(len(ws.manifest(repo["name"], second["snapshot_id"])["bundles"]), 1, what)
            self.assertShallowRestore(ws, repo["name"], mirror, f"{what}, rebased")

    def test_v0_servers_cannot_serve_a_shallow_repository_and_say_so(self):
        # JGit and Dulwich send no shallow lines over v0: git receives commits whose parents
        # nobody sends, so even with allow_shallow the snapshot fails clearly and commits nothing.
        mirror = shallow_mirror(self.deep, 2, "shallow-v0")
        for server in V0_SERVERS:
            with self.subTest(server=server):
                if server in SKIPPED:
                    self.skipTest(SKIPPED[server])
                ws = harness.Workspace("mx-shallow-v0-")
                repo, options, env = repo_spec(mirror, server, "v0")
                run = ws.snapshot([repo], dict(options, allow_shallow=True), env_extra=env)
                self.assertEqual(run.rc, 1, run.describe())
                entry = run.out["result"]["repositories"][0]
                self.assertEqual((entry.get("status"), entry.get("error")), ("failed", "GitError"), run.describe())
                self.assertIn("the upstream is a shallow repository", entry.get("message", ""), run.describe())
                self.assertEqual(ws.store.keys(f"repos/{harness.repo_key(repo['name'])}/manifests/"), [])


if __name__ == "__main__":
    unittest.main()
