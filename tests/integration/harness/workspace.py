"""Workspace: a storage, a cache dir, a HOME and a TMPDIR for a series of
runs, with payload builders for each action."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Iterable

from .processes import mkdtemp
from .runner import Run, run_snapshotter, snapshotter_env
from .stores import FileStore, latest_key, make_store, manifest_key


class Workspace:
    """A storage (file:// dir or s3:// prefix), a cache dir, a HOME and a TMPDIR
    for a series of runs. Tests read and change stored objects through
    `self.store` (a Store), so they run unchanged against either backend."""

    def __init__(self, prefix: str = "ws-", storage: str = "file") -> None:
        self.root = mkdtemp(prefix)
        self.store = make_store(storage, self.root)
        self.cache_dir = self.root / "cache"
        self.home = self.root / "home"
        self.tmp = self.root / "tmp"
        # Options every snapshot payload of this workspace gets (a test's own win).
        self.default_options: dict[str, Any] = {}
        self.home.mkdir()
        self.tmp.mkdir()

    @property
    def storage_dir(self) -> Path:
        """The storage directory (file:// workspaces only)."""
        if not isinstance(self.store, FileStore):
            raise AttributeError(f"a {self.store.kind}:// workspace has no storage directory")
        return self.store.root

    @property
    def storage_url(self) -> str:
        return self.store.url

    def storage(self) -> dict:
        return self.store.storage()

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        merged = dict(self.store.env())
        merged.update(extra or {})
        return snapshotter_env(self.home, self.tmp, merged)

    # -- payloads ---------------------------------------------------------
    _job_ids = itertools.count(1)

    def snapshot_payload(self, repositories: list[dict], options: dict | None = None,
                         job_id: str | None = None) -> dict:
        """A snapshot payload; each call gets a new job_id unless one is given
        (a run with the job_id of an earlier run resumes that job)."""
        if job_id is None:
            job_id = f"itest-{next(Workspace._job_ids)}"
        self.last_job_id = job_id
        opts = {"cache_dir": str(self.cache_dir)}
        opts.update(self.default_options)
        opts.update(options or {})
        return {"version": 1, "action": "snapshot", "job_id": job_id, "storage": self.storage(),
                "repositories": repositories, "options": opts}

    def restore_payload(self, repository: str, target: Path | str, snapshot: str = "latest") -> dict:
        return {"version": 1, "action": "restore", "storage": self.storage(),
                "restore": {"repository": repository, "snapshot": snapshot, "target": str(target)}}

    def verify_payload(self, repositories: list[str] | None = None, snapshot: str = "latest",
                       drill: bool = True) -> dict:
        spec: dict[str, Any] = {"snapshot": snapshot, "drill": drill}
        if repositories is not None:
            spec["repositories"] = repositories
        return {"version": 1, "action": "verify", "storage": self.storage(), "verify": spec}

    def list_payload(self, repository: str | None = None) -> dict:
        payload: dict[str, Any] = {"version": 1, "action": "list", "storage": self.storage()}
        if repository is not None:
            payload["list"] = {"repository": repository}
        return payload

    # -- runs -------------------------------------------------------------
    def run(self, payload, args: Iterable[str] = (), env_extra: dict[str, str] | None = None, **kw) -> Run:
        return run_snapshotter(payload, args=args, env=self.env(env_extra), **kw)

    def snapshot(self, repositories: list[dict], options: dict | None = None, args: Iterable[str] = (),
                 env_extra: dict[str, str] | None = None, job_id: str | None = None) -> Run:
        return self.run(self.snapshot_payload(repositories, options, job_id), args=args, env_extra=env_extra)

    def restore(self, repository: str, target: Path | str, snapshot: str = "latest") -> Run:
        return self.run(self.restore_payload(repository, target, snapshot))

    def verify(self, repositories: list[str] | None = None, snapshot: str = "latest", drill: bool = True) -> Run:
        return self.run(self.verify_payload(repositories, snapshot, drill))

    def list(self, repository: str | None = None) -> Run:
        return self.run(self.list_payload(repository))

    # -- storage ----------------------------------------------------------
    def path_of(self, key: str) -> Path:
        """The file of `key` (file:// workspaces only; use self.store otherwise)."""
        return self.storage_dir / key

    def manifest(self, name: str, snapshot_id: str) -> dict:
        return self.store.manifest(manifest_key(name, snapshot_id))

    def latest(self, name: str) -> dict:
        return self.store.json(latest_key(name))

    def new_target(self, name: str = "restored") -> Path:
        """A path that does not exist yet, for a restore."""
        return mkdtemp("target-") / name
