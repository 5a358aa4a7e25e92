"""Repositories with Git LFS content, made and checked with the real git-lfs
client: an upstream served by SmartHttpLfs whose large files a working clone
commits and pushes (git-lfs uploads them to the LFS server through the batch
API), and the checks of a restored repository (`git lfs pull`, `git lfs fsck`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import unittest
from pathlib import Path

from .processes import mkdtemp
from .upstreams import Upstream, git, git_env


GIT_LFS = shutil.which("git-lfs") or "/usr/bin/git-lfs"


def require_git_lfs() -> None:
    """Skip the test when the git-lfs client is not installed."""
    if not os.access(GIT_LFS, os.X_OK):
        raise unittest.SkipTest("LFS tests need git-lfs (scripts/install-deps.sh --test installs it)")


def with_credentials(url: str, user: str, password: str) -> str:
    """`url` (http://host/...) with user:password in it, for the harness's own git."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{user}:{password}@{rest}"


def lfs_git(*args: str, cwd: Path | str, check: bool = True) -> subprocess.CompletedProcess:
    """git (with git-lfs) in `cwd`, isolated like the harness's git; the CompletedProcess."""
    p = subprocess.run(["git", *args], cwd=cwd, env=git_env({"GIT_LFS_SKIP_SMUDGE": "0", **({"GIT_TRACE": "1"} if os.environ.get("LFS_TRACE") else {})}),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and p.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    return p


def lfs_ready(work: Path | str) -> None:
    """Make a working tree use git-lfs: its filters and hooks, and no locking API
    (the test server has none)."""
    lfs_git("lfs", "install", "--local", cwd=work)
    git("config", "lfs.locksverify", "false", cwd=work)


class LfsUpstream(Upstream):
    """A bare repository `name` under `server.project_root` (server: a
    SmartHttpLfs) and a working clone of it that tracks `patterns` with LFS
    and pushes over smart HTTP with the server's credentials, so that the
    real git-lfs uploads the large files to the LFS server (its pre-push
    hook). commit_files() writes and commits several files at once."""

    def __init__(self, server, name: str = "up.git", patterns: tuple[str, ...] = ("*.bin",),
                 user: str | None = None) -> None:
        require_git_lfs()
        self.server = server
        self.name = name
        self.user = user or next(iter(server.users))
        self.password = server.users[self.user]
        bare = Path(server.project_root) / name
        git("init", "--bare", "-q", str(bare))
        work = mkdtemp("lfs-work-") / "work"
        git("init", "-q", "-b", "main", str(work))
        super().__init__(bare, work)
        git("remote", "add", "origin", with_credentials(self.url, self.user, self.password), cwd=work)
        lfs_ready(work)
        if patterns:
            lfs_git("lfs", "track", *patterns, cwd=work)
            self.git("add", ".gitattributes")
            self.git("commit", "-q", "-m", "track large files with LFS")

    @property
    def url(self) -> str:
        """The clone URL, without credentials."""
        return self.server.url_for(self.name)

    @property
    def lfs_path(self) -> str:
        """The repository's path on the LFS server (LfsServer's `repo` argument)."""
        return f"git/{self.name}"

    def repository(self, name: str = "org/lfs", **fields) -> dict:
        """The payload's repository entry for this upstream, with its credentials
        (their secret in env())."""
        entry = {"name": name, "url": self.url,
                 "credentials": {"username": self.user, "token_env": "LFS_UPSTREAM_TOKEN"}}
        entry.update(fields)
        return entry

    def env(self) -> dict[str, str]:
        """The environment the payload's credentials come from."""
        return {"LFS_UPSTREAM_TOKEN": self.password}

    def commit_files(self, files: dict[str, bytes], message: str = "change") -> str:
        """Write `files` (path to bytes) in the work tree and commit them; the commit's oid."""
        for path, data in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        self.git("add", "--", *files)
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def content(self, path: str) -> bytes:
        """The bytes of `path` in the work tree (the real content, not the pointer)."""
        return (self.work / path).read_bytes()


def lfs_checkout(repo: Path | str) -> Path:
    """Clone the (restored, bare) repository `repo` and `git lfs pull` its
    content (git-lfs reads `repo`'s lfs/objects through its local file
    transfer); the working tree. Raises with git's stderr on failure."""
    require_git_lfs()
    work = mkdtemp("lfs-checkout-") / "work"
    subprocess.run(["git", "clone", "-q", str(repo), str(work)], env=git_env({"GIT_LFS_SKIP_SMUDGE": "1"}),
                   check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lfs_ready(work)
    lfs_git("lfs", "pull", cwd=work)
    return work


def lfs_fsck(work: Path | str) -> subprocess.CompletedProcess:
    """`git lfs fsck` of a working tree (objects and pointers); the CompletedProcess."""
    return lfs_git("lfs", "fsck", cwd=work, check=False)
