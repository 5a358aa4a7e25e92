"""What storage must look like after a crash or a race, whatever the backend
(harness.Store), shared by test_crash.py and test_concurrent_writers.py; and
kill_tree(), which kills a process the way a container kill does.

Invariants checked (docs/manifest.md, "Commit order"):
- every manifest parses and names itself; every bundle it lists exists with
  the size and SHA-256 it records; its parent, when given, exists;
- every latest.json parses and names an existing manifest (it is written in
  one atomic step after the manifest, so a partial or dangling one means a bug);
- leftovers are exactly pending uploads (temporary files / incomplete
  multipart uploads) and bundles no manifest of their repository lists;
- Git LFS (docs/lfs.md): every object a manifest's set names, unless the
  manifest records it missing, is stored with its size and a SHA-256 equal
  to its oid; a large set's file exists with the SHA-256 the manifest
  records; orphan LFS objects and sets are those no manifest needs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import harness

TEMP_PREFIX = ".tmp-snapshotter-"
_MANIFEST = re.compile(r"^repos/([^/]+)/manifests/([^/]+)\.json$")
_BUNDLE = re.compile(r"^repos/([^/]+)/bundles/[^/]+$")
_TABLE = re.compile(r"^repos/([^/]+)/tables/[0-9a-f]{64}\.json\.gz$")
_LATEST = re.compile(r"^repos/([^/]+)/latest\.json$")
_LFS = re.compile(r"^repos/([^/]+)/lfs/(?:[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}|sets/[0-9a-f]{64}\.json)$")


def objects(store) -> dict[str, int]:
    """{key: size} of everything stored, temporary files included, in one listing."""
    if store.kind == "file":
        out = {}
        for directory, _, files in os.walk(store.root):
            for name in files:
                path = Path(directory) / name
                try:
                    out[str(path.relative_to(store.root))] = path.stat().st_size
                except FileNotFoundError:
                    pass  # a temporary file a running job published or dropped meanwhile
        return out
    return {key: o["Size"] for key, o in store._objects("").items()}


def _is_temp(key: str) -> bool:
    return key.rsplit("/", 1)[-1].startswith(TEMP_PREFIX)


class Checker:
    """Reads one store's state; a manifest, committed once and never
    rewritten, is read only the first time it is seen."""

    def __init__(self, store) -> None:
        self.store = store
        self._manifests: dict[str, dict] = {}
        self._verified: dict[str, str] = {}  # bundle key -> sha256 already checked

    def manifests(self, listing: dict[str, int] | None = None) -> dict[str, dict]:
        """{manifest key: parsed manifest} of every committed manifest."""
        listing = objects(self.store) if listing is None else listing
        found = {}
        for key in listing:
            if _MANIFEST.match(key) and not _is_temp(key):
                if key not in self._manifests:
                    self._manifests[key] = self.store.manifest(key)
                found[key] = self._manifests[key]
        return found

    def check_committed(self) -> list[str]:
        """Problems with what is committed ([] when every invariant holds)."""
        listing = objects(self.store)
        found = self.manifests(listing)
        problems = []
        for key, m in found.items():
            repo_key, snapshot_id = _MANIFEST.match(key).groups()
            if m.get("snapshot_id") != snapshot_id:
                problems.append(f"{key}: names snapshot {m.get('snapshot_id')}")
            parent = m.get("parent")
            if parent and f"repos/{repo_key}/manifests/{parent}.json" not in found:
                problems.append(f"{key}: parent {parent} does not exist")
            for b in m.get("bundles", []):
                if b["key"] not in listing:
                    problems.append(f"{key}: bundle {b['key']} is missing")
                elif listing[b["key"]] != b["size"]:
                    problems.append(f"{key}: bundle {b['key']} has {listing[b['key']]} bytes, manifest {b['size']}")
                elif self._verified.get(b["key"]) != b["sha256"]:
                    digest = self.store.sha256(b["key"])
                    if digest != b["sha256"]:
                        problems.append(f"{key}: bundle {b['key']} SHA-256 {digest} != {b['sha256']}")
                    else:
                        self._verified[b["key"]] = digest
        for key, m in found.items():
            problems += self.check_lfs(key, m, listing)
        for key in listing:
            if not _LATEST.match(key):
                continue
            try:
                pointer = json.loads(self.store.read(key))
                target = pointer["manifest"]
                named = pointer["snapshot_id"]
            except (ValueError, KeyError, TypeError) as e:
                problems.append(f"{key}: unreadable pointer ({e})")
                continue
            if target not in found or not target.endswith(f"/{named}.json"):
                problems.append(f"{key}: names {target}, which is not a committed manifest")
        return problems

    def lfs_needed(self, manifest: dict) -> tuple[dict[str, int], set[str]]:
        """({storage key: size} of the LFS objects and set file `manifest` needs,
        keys of those it records missing)."""
        lfs = manifest.get("lfs")
        if lfs is None:
            return {}, set()
        area = f"repos/{harness.repo_key(manifest['repository'])}/lfs/"
        keys: dict[str, int] = {}
        if "set" in lfs:
            keys[lfs["set"]["key"]] = -1
            objects = json.loads(self.store.read(lfs["set"]["key"]))["objects"]
        else:
            objects = lfs["objects"]
        for o in objects:
            keys[f"{area}{o['oid'][:2]}/{o['oid'][2:4]}/{o['oid']}"] = o["size"]
        missing = {f"{area}{o['oid'][:2]}/{o['oid'][2:4]}/{o['oid']}" for o in lfs.get("missing", [])}
        return keys, missing

    def check_lfs(self, key: str, manifest: dict, listing: dict[str, int]) -> list[str]:
        """Problems with the LFS objects of one committed manifest."""
        lfs = manifest.get("lfs")
        if lfs is None:
            return []
        if "set" in lfs and lfs["set"]["key"] not in listing:
            return [f"{key}: LFS set {lfs['set']['key']} is missing"]
        if "set" in lfs and self.store.sha256(lfs["set"]["key"]) != lfs["set"]["sha256"]:
            return [f"{key}: LFS set {lfs['set']['key']} does not match its SHA-256"]
        problems = []
        needed, missing = self.lfs_needed(manifest)
        for object_key, size in needed.items():
            if size < 0 or object_key in missing:
                continue
            if object_key not in listing:
                problems.append(f"{key}: LFS object {object_key} is missing")
            elif listing[object_key] != size:
                problems.append(f"{key}: LFS object {object_key} has {listing[object_key]} bytes, set {size}")
            elif object_key not in self._verified:
                digest = self.store.sha256(object_key)
                if digest != object_key.rsplit("/", 1)[-1]:
                    problems.append(f"{key}: LFS object {object_key} has SHA-256 {digest}")
                else:
                    self._verified[object_key] = digest
        return problems

    def orphan_lfs(self, listing: dict[str, int] | None = None) -> set[str]:
        """LFS objects and sets that no manifest needs."""
        listing = objects(self.store) if listing is None else listing
        referenced: set[str] = set()
        for m in self.manifests(listing).values():
            referenced |= set(self.lfs_needed(m)[0])
        return {k for k in listing if _LFS.match(k) and k not in referenced}

    def newest_manifests(self) -> dict[str, dict]:
        """{repository name: its newest manifest}."""
        newest: dict[str, dict] = {}
        for m in self.manifests().values():
            if m["repository"] not in newest or m["snapshot_id"] > newest[m["repository"]]["snapshot_id"]:
                newest[m["repository"]] = m
        return newest

    def pending_uploads(self, listing: dict[str, int] | None = None) -> set[str]:
        """Keys of the uploads begun and not finished: temporary files or multipart uploads."""
        if self.store.kind == "file":
            listing = objects(self.store) if listing is None else listing
            out = set()
            for key in filter(_is_temp, listing):
                directory, _, name = key.rpartition("/")
                final = re.sub(r"\.[0-9a-f]{12}$", "", name[len(TEMP_PREFIX):])
                out.add(f"{directory}/{final}" if directory else final)
            return out
        store, base = self.store, self.store.prefix + "/"
        found = set()
        kwargs = {"Bucket": store.bucket, "Prefix": base}
        while True:
            page = store.client.list_multipart_uploads(**kwargs)
            found.update(u["Key"][len(base):] for u in page.get("Uploads", []))
            if not page.get("IsTruncated"):
                return found
            kwargs.update(KeyMarker=page["NextKeyMarker"], UploadIdMarker=page["NextUploadIdMarker"])

    def orphan_bundles(self, listing: dict[str, int] | None = None) -> set[str]:
        """Bundles that no manifest of their repository lists."""
        listing = objects(self.store) if listing is None else listing
        referenced = {b["key"] for m in self.manifests(listing).values() for b in m.get("bundles", [])}
        return {k for k in listing if _BUNDLE.match(k) and not _is_temp(k) and k not in referenced}

    def orphan_tables(self, listing: dict[str, int] | None = None) -> set[str]:
        """Tables that no manifest's chain of tables holds (a run killed after
        writing its table and before its manifest leaves one)."""
        listing = objects(self.store) if listing is None else listing
        referenced: set[str] = set()
        for key, m in self.manifests(listing).items():
            if m.get("table"):
                referenced |= {table_key for table_key, _ in self.store.table_chain(key, m["table"])}
        return {k for k in listing if _TABLE.match(k) and not _is_temp(k) and k not in referenced}

    def leftovers(self) -> tuple[set[str], set[str]]:
        """(pending uploads, orphan bundles and tables)."""
        listing = objects(self.store)
        return self.pending_uploads(listing), self.orphan_bundles(listing) | self.orphan_tables(listing)


def assert_restores(test, ws, manifest: dict, msg: str, snapshot: str | None = None) -> dict:
    """Restore `snapshot` (default: the manifest's own id) of the manifest's
    repository with `ws`, assert that it is the manifest's snapshot, that refs
    and HEAD equal the manifest and that `git fsck --full` passes; returns the
    restore result."""
    target = ws.new_target()
    result = test.assertRunOk(ws.restore(manifest["repository"], target, snapshot or manifest["snapshot_id"]), msg)
    test.assertEqual(result["snapshot_id"], manifest["snapshot_id"], f"{msg}: restored another snapshot")
    test.assertEqual(harness.ref_map(target), manifest["refs"], f"{msg}: refs differ from the manifest")
    test.assertEqual(harness.head_symref(target), manifest["head"], f"{msg}: HEAD differs from the manifest")
    fsck = harness.fsck(target)
    test.assertEqual(fsck.returncode, 0, f"{msg}: git fsck: {fsck.stderr!r}")
    return result


def manifest_bytes(store) -> dict[str, str]:
    """{manifest key: SHA-256 of its bytes}, read afresh, to prove later that none was overwritten."""
    return {key: hashlib.sha256(store.read(key)).hexdigest()
            for key in objects(store) if _MANIFEST.match(key) and not _is_temp(key)}


# --------------------------------------------------------------------------
# Killing like a container runtime
# --------------------------------------------------------------------------


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL `proc`, its process group and every descendant (git runs in
    process groups of its own), as a container kill does; then reap `proc`.

    Everything is stopped first (SIGSTOP, repeated until no new process
    appears) so that nothing can spawn, write or commit in between."""
    stopped: set[int] = set()
    for _ in range(50):
        fresh = ({proc.pid} | harness.descendants(proc.pid)) - stopped
        if not fresh:
            break
        for pid in fresh:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        stopped |= fresh
    for pid in stopped:
        for kill in (lambda p: os.killpg(p, signal.SIGKILL), lambda p: os.kill(p, signal.SIGKILL)):
            try:
                kill(pid)
            except (ProcessLookupError, PermissionError):
                pass
    proc.wait(timeout=30)
    # The others are reaped by init; wait until none of them runs any more.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(p) for p in stopped - {proc.pid}):
        time.sleep(0.02)


def _running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] != b"Z"
