"""Exact or refused (issues 14 and 15): a snapshot reported ok restores exactly.

- Shallow upstreams (`git clone --depth N` mirrors) are refused by every
  engine with `GitError: the upstream is a shallow repository`, over git
  daemon (protocol v2), smart HTTP answering protocol v0 (auto falls back to
  the cli engine) and file://; nothing is committed. Before this, the stream
  engine committed a snapshot restore refused and the cli engine committed
  an empty one.
- Ref names no restore could create (a component longer than 250 bytes, a
  name longer than 2048 bytes) are refused by both engines at snapshot time:
  the result counts and lists them, the manifest never holds them, the rest
  restores exactly, and the dry run reports the same plan.
"""

from __future__ import annotations

import itertools
import unittest
from pathlib import Path

import harness
from harness import Upstream
from test_engines import V0SmartHttp

HTTP_USER = "exact-bot"
HTTP_TOKEN = "tok-exactness-7d1e"
TOKEN_ENV = "SNAP_EXACT_TOKEN"

SERVE_ROOT: Path | None = None
DAEMON: harness.GitDaemon | None = None
V0_HTTP: harness.SmartHttp | None = None
_counter = itertools.count(1)

SHALLOW_PHRASE = "the upstream is a shallow repository"


def setUpModule():
    global SERVE_ROOT, DAEMON, V0_HTTP
    harness.setup_module()
    SERVE_ROOT = harness.mkdtemp("serve-")
    DAEMON = harness.GitDaemon(SERVE_ROOT)
    try:
        V0_HTTP = V0SmartHttp(SERVE_ROOT, {HTTP_USER: HTTP_TOKEN})
    except unittest.SkipTest:
        V0_HTTP = None


def tearDownModule():
    harness.teardown_module()


def repo_spec(bare: Path, transport: str) -> tuple[dict, dict, dict]:
    """(repository entry, options, extra env) for the served repository `bare`."""
    served = str(bare.relative_to(SERVE_ROOT))
    name = f"org/{bare.name[:-4]}-{transport}"
    if transport == "git":
        return {"url": DAEMON.url_for(served), "name": name}, {}, {}
    if transport == "file":
        return {"url": f"file://{bare}", "name": name}, {}, {}
    if transport == "v0http":
        return ({"url": V0_HTTP.url_for(served), "name": name,
                 "credentials": {"token_env": TOKEN_ENV, "username": HTTP_USER}},
                {"allow_http": True}, {TOKEN_ENV: HTTP_TOKEN})
    raise AssertionError(transport)


def shallow_mirror(up: Upstream, depth: int) -> Path:
    """A bare `git clone --depth` of `up`, served beside it (what some CI caches serve)."""
    return harness.shallow_clone(up, SERVE_ROOT / f"shallow-{depth}-{next(_counter)}.git", depth)


class ShallowUpstreams(harness.Assertions, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = harness.build_rich(SERVE_ROOT, f"deep-{next(_counter)}")
        for i in range(4):
            cls.up.checkout("main")
            cls.up.commit_file("more.txt", f"more {i}\n", f"more {i}")
        cls.up.push("main")
        cls.mirrors = {depth: shallow_mirror(cls.up, depth) for depth in (1, 3)}

    def assertRefused(self, bare: Path, transport: str, engine: str) -> None:
        ws = harness.Workspace()
        repo, options, env = repo_spec(bare, transport)
        options["engine"] = engine
        run = ws.snapshot([repo], options, env_extra=env)
        what = f"{bare.name} over {transport} with engine {engine}"
        self.assertEqual(run.rc, 1, f"{what}: expected the repository to fail\n{run.describe()}")
        entry = run.out["result"]["repositories"][0]
        self.assertEqual((entry.get("status"), entry.get("error")), ("failed", "GitError"), run.describe())
        self.assertIn(SHALLOW_PHRASE, entry.get("message", ""), run.describe())
        manifests = ws.storage_dir / "repos" / harness.repo_key(repo["name"]) / "manifests"
        self.assertEqual(list(manifests.glob("*.json")) if manifests.exists() else [], [],
                         f"{what}: a manifest was committed")

    def test_refused_by_every_engine_over_git_daemon_and_file(self):
        for depth, bare in self.mirrors.items():
            for transport in ("git", "file"):
                for engine in ("stream", "cli", "auto"):
                    with self.subTest(depth=depth, transport=transport, engine=engine):
                        self.assertRefused(bare, transport, engine)

    def test_refused_over_v0_smart_http(self):
        if V0_HTTP is None:
            self.skipTest("lighttpd or git-http-backend is not installed")
        for depth, bare in self.mirrors.items():
            for engine in ("auto", "cli"):
                with self.subTest(depth=depth, engine=engine):
                    self.assertRefused(bare, "v0http", engine)


def add_packed_refs(bare: Path, refs: dict[str, str]) -> None:
    """Add `refs` (name -> oid) straight to packed-refs, as a server holding them would."""
    harness.git("pack-refs", "--all", git_dir=bare)
    packed = bare / "packed-refs"
    lines = packed.read_text().splitlines()
    # One record per ref: its line and, for an annotated tag, the "^peeled" line after it.
    records: list[list[str]] = []
    for line in lines[1:]:
        if line.startswith("^"):
            records[-1].append(line)
        else:
            records.append([line])
    records += [[f"{oid} {name}"] for name, oid in refs.items()]
    records.sort(key=lambda r: r[0].split(" ", 1)[1].encode())
    packed.write_text("\n".join([lines[0]] + [line for r in records for line in r]) + "\n")


class RefNamesNoRestoreCouldCreate(harness.Assertions, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = harness.build_rich(SERVE_ROOT, f"names-{next(_counter)}")
        main = cls.up.git("rev-parse", "refs/heads/main").strip()
        cls.long_component = "refs/heads/" + "c" * 300
        cls.long_total = "refs/heads/" + "/".join(["d" * 100] * 21)
        cls.long_but_fine = "refs/heads/" + "/".join(["u" * 110] * 5)  # 565 bytes: restorable
        add_packed_refs(cls.up.bare, {cls.long_component: main, cls.long_total: main, cls.long_but_fine: main})
        cls.refused = {cls.long_component, cls.long_total}

    def expected_refs(self) -> str:
        return "\n".join(line for line in self.up.refs().splitlines()
                         if line.split(" ", 2)[2] not in self.refused) + "\n"

    def test_refused_reported_and_never_stored_by_both_engines(self):
        for transport in ("git", "file"):
            for engine in ("stream", "cli"):
                with self.subTest(transport=transport, engine=engine):
                    ws = harness.Workspace()
                    repo, options, env = repo_spec(self.up.bare, transport)
                    options["engine"] = engine
                    dry = self.assertRunOk(ws.snapshot([repo], options, args=["--dry-run"], env_extra=env),
                                           "dry run")["repositories"][0]
                    run = ws.snapshot([repo], options, env_extra=env)
                    entry = self.assertRunOk(run, f"snapshot with {engine} over {transport}")["repositories"][0]
                    self.assertEqual(entry.get("refs_refused"), 2, entry)
                    refused = {r["name"].removesuffix("...") for r in entry.get("refused_refs", [])}
                    self.assertEqual(len(refused), 2, entry)
                    for name in self.refused:
                        self.assertTrue(any(name.startswith(r) for r in refused), (name[:40], entry))
                    # The dry run promised the same plan.
                    self.assertEqual((dry.get("refs"), dry.get("refs_refused"), dry.get("refused_refs")),
                                     (entry.get("refs"), entry.get("refs_refused"), entry.get("refused_refs")))
                    manifest = ws.manifest(repo["name"], entry["snapshot_id"])
                    self.assertFalse(self.refused & set(manifest["refs"]), "a refused name was stored")
                    self.assertIn(self.long_but_fine, manifest["refs"])
                    target = ws.new_target()
                    self.assertRunOk(ws.restore(repo["name"], target), "restore")
                    self.assertEqual(harness.refs_of(target), self.expected_refs())
                    self.assertEqual(harness.fsck(target).returncode, 0)


class HeadInEveryState(harness.Assertions, unittest.TestCase):
    """Symbolic, unborn and detached HEADs: both engines record the same state, restore reproduces it."""

    @classmethod
    def setUpClass(cls):
        cls.ups = {}
        for state in ("symbolic", "unborn", "detached"):
            up = harness.build_rich(SERVE_ROOT, f"head-{state}-{next(_counter)}")
            if state == "unborn":
                up.set_head("refs/heads/not-yet")
            elif state == "detached":
                oid = up.git("rev-parse", "refs/heads/main").strip()
                harness.git("update-ref", "--no-deref", "HEAD", oid, git_dir=up.bare)
            cls.ups[state] = up

    def test_head_states_agree_and_restore(self):
        for state, up in self.ups.items():
            main = up.git("rev-parse", "refs/heads/main").strip()
            expected = {"symbolic": ("refs/heads/develop", None),
                        "unborn": ("refs/heads/not-yet", None),
                        "detached": (None, main)}[state]
            for transport in ("git", "file"):
                for engine in ("stream", "cli"):
                    with self.subTest(state=state, transport=transport, engine=engine):
                        ws = harness.Workspace()
                        repo, options, env = repo_spec(up.bare, transport)
                        options["engine"] = engine
                        entry = self.assertRunOk(ws.snapshot([repo], options, env_extra=env),
                                                 "snapshot")["repositories"][0]
                        manifest = ws.manifest(repo["name"], entry["snapshot_id"])
                        self.assertEqual((manifest.get("head_state"), manifest.get("head"), manifest.get("head_oid")),
                                         (state,) + expected, manifest)
                        target = ws.new_target()
                        self.assertRunOk(ws.restore(repo["name"], target), "restore")
                        self.assertEqual(harness.head_symref(target), expected[0])
                        if state == "detached":
                            self.assertEqual(harness.git("rev-parse", "HEAD", git_dir=target).strip(), main)
                        self.assertEqual(harness.refs_of(target), up.refs())


class OneUrlMeaning(harness.Assertions, unittest.TestCase):
    """file:// paths are percent-decoded as git decodes them, by both engines; plain paths are literal."""

    def test_percent_escapes_name_the_same_repository_in_both_engines(self):
        decoded = harness.build_rich(SERVE_ROOT, f"pct A ü-{next(_counter)}")
        # A decoy under the literal name: an engine reading the URL literally would back it up instead.
        literal = harness.build_empty(SERVE_ROOT, decoded.bare.name[:-4].replace("A", "%41"))
        url = "file://" + str(decoded.bare).replace("A", "%41").replace(" ", "%20")
        for engine in ("stream", "cli", "auto"):
            with self.subTest(engine=engine):
                ws = harness.Workspace()
                repo = {"url": url, "name": f"org/pct-{engine}"}
                entry = self.assertRunOk(ws.snapshot([repo], {"engine": engine}), url)["repositories"][0]
                manifest = ws.manifest(repo["name"], entry["snapshot_id"])
                self.assertEqual(manifest["refs"], decoded.ref_map(), f"{engine} read another repository")
        self.assertTrue(literal.bare.is_dir())


if __name__ == "__main__":
    unittest.main()
