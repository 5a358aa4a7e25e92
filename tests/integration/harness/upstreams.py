"""git as the tests run it (isolated from the machine's config), reading
refs of a repository, and the upstream repositories the tests snapshot."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .processes import _lock, mkdtemp, tmp_root


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


def minimal_bundle(mirror: Path, upstream: Path | str, scratch: Path) -> int:
    """Bytes of `git bundle create --all --not <the mirror's tips>` after fetching `upstream`
    (a path or URL) into `mirror` (a mirror clone of it taken before the night): the least an
    incremental of that night can store. The bundle is left at scratch/minimal.bundle. Tests
    and benches (incremental_bench, chain_bench) measure against it."""
    old = git("for-each-ref", "--format=%(objectname)", git_dir=mirror).split()
    git("fetch", "-q", "--prune", str(upstream), "+refs/*:refs/*", git_dir=mirror)
    out = Path(scratch) / "minimal.bundle"
    # Without the bitmap a local clone copies from a bitmapped upstream: git 2.39's pack-objects
    # ignores a thin pack's bases when it counts with one (docs/streaming-engine.md). One delta
    # search thread: with more, where git cuts the object list changes from run to run, and a tree
    # cut off from its bases goes whole (bench/README.md, round 31).
    subprocess.run(["git", "--git-dir", str(mirror), "-c", "pack.useBitmaps=false", "-c", "pack.threads=1",
                    "bundle", "create", "-q", str(out), "--all", "--not", *old],
                   env=git_env(), check=True, capture_output=True)
    return out.stat().st_size


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
