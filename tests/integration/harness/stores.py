"""The storage layout's keys, the S3 services of this test process (moto
and Ceph RGW behind the strict SigV4 front), and Store: one interface to
the stored objects whatever the backend (file:// or s3://)."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import re
import unittest
import urllib.parse
from pathlib import Path
from typing import Any

from .processes import _lock
from .assertions import diff_states, sha256_file, tree_state


# --------------------------------------------------------------------------
# Storage layout (docs: CONTRACT "Storage layout")
# --------------------------------------------------------------------------


def repo_key(name: str) -> str:
    """Every byte outside [A-Za-z0-9._-] percent-encoded as %XX uppercase."""
    return "".join(chr(b) if (chr(b).isascii() and (chr(b).isalnum() or chr(b) in "._-")) else f"%{b:02X}"
                   for b in name.encode("utf-8"))


def manifest_key(name: str, snapshot_id: str) -> str:
    return f"repos/{repo_key(name)}/manifests/{snapshot_id}.json"


def bundle_key(name: str, snapshot_id: str) -> str:
    return f"repos/{repo_key(name)}/bundles/{snapshot_id}.bundle"


# What a version-2 or -3 manifest keeps in its (full) table (docs/manifest.md).
TABLE_MEMBERS = ("refs", "bundles", "preserved", "shallow")


def latest_key(name: str) -> str:
    return f"repos/{repo_key(name)}/latest.json"


SNAPSHOT_ID_RE = re.compile(r"^\d{8}T\d{6}\.\d{3}Z-[0-9a-z]+$")
RFC3339_UTC_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


# --------------------------------------------------------------------------
# Storage backends seen from the tests: file:// and s3:// (moto behind the
# strict SigV4 front of s3harness.py)
# --------------------------------------------------------------------------

S3_BUCKET = "snapshotter-itest"
# A bucket created with Object Lock enabled (on both servers).
S3_LOCK_BUCKET = "snapshotter-itest-lock"
# The S3 servers the s3:// tests run against: moto behind the strict front,
# and Ceph RGW (rgw.py) behind the same front. SNAPSHOTTER_S3_SERVERS=moto
# leaves RGW out (it costs ~15 s to start, once per test process).
S3_SERVERS = ("moto", "rgw")
_s3_services: dict = {}


def s3_servers() -> list[str]:
    """The S3 servers selected by SNAPSHOTTER_S3_SERVERS (default: all)."""
    chosen = os.environ.get("SNAPSHOTTER_S3_SERVERS", ",".join(S3_SERVERS)).split(",")
    return [s for s in S3_SERVERS if s in chosen]


def s3_service(server: str = "moto"):
    """The S3 service `server` ("moto" or "rgw") of this test process, behind
    the strict SigV4-checking front, with S3_BUCKET and S3_LOCK_BUCKET created;
    started on first use and stopped by teardown_module (cleanup_all). Raises
    unittest.SkipTest when the server is not installed or not selected."""
    with _lock:
        if server not in _s3_services:
            import s3harness
            if server not in s3_servers():
                raise unittest.SkipTest(f"S3 server {server} not selected by SNAPSHOTTER_S3_SERVERS")
            if server == "rgw":
                import rgw
                if rgw.missing_tools():
                    raise unittest.SkipTest(f"RGW tests need Ceph ({', '.join(rgw.missing_tools())} missing; "
                                            "scripts/install-deps.sh --test installs it)")
                service = rgw.RgwService()
            else:
                if s3harness.moto_server_path() is None:
                    raise unittest.SkipTest("s3:// tests need moto_server (pip install 'moto[server]'); "
                                            "not installed")
                service = s3harness.S3Harness()
            service.start()
            try:
                client = service.boto3_client()
                client.create_bucket(Bucket=S3_BUCKET)
                client.create_bucket(Bucket=S3_LOCK_BUCKET, ObjectLockEnabledForBucket=True)
            except BaseException:
                service.stop()
                raise
            _s3_services[server] = service
        return _s3_services[server]


def stop_s3_service() -> None:
    with _lock:
        services = list(_s3_services.values())
        _s3_services.clear()
    for service in services:
        service.stop()


class Store:
    """What the tests need of a storage backend, whatever it is: the payload's
    storage object, the environment the binary needs, and reading, listing,
    rewriting and watching the stored objects by key (docs: "Storage layout")."""

    kind = ""

    def storage(self) -> dict:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {}

    def create(self) -> None:
        """Make the (empty) storage root exist, as an operator would before a first run."""

    def keys(self, prefix: str = "") -> list[str]:
        """Every stored key under `prefix`, sorted."""
        raise NotImplementedError

    def read(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError when it does not exist."""
        raise NotImplementedError

    def write(self, key: str, data: bytes) -> None:
        """Replace (or create) an object behind the binary's back."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def size(self, key: str) -> int:
        return len(self.read(key))

    def sha256(self, key: str) -> str:
        return hashlib.sha256(self.read(key)).hexdigest()

    def json(self, key: str):
        """The JSON object under `key`, inflated first when stored as gzip
        (a version-4 manifest, docs/manifest.md)."""
        data = self.read(key)
        return json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)

    def manifest(self, key: str) -> dict:
        """The manifest under `key` with its sets inline whatever its version: a
        version-2 or -3 manifest's table (docs/manifest.md), with the bases of a
        delta, is read, checked against its SHA-256 and merged in, so tests read
        `refs` and `bundles` as of v1."""
        manifest = self.json(key)
        if manifest.get("schema_version") in (2, 3, 4):
            manifest.update(self.table_sets(key, manifest["table"]))
        return manifest

    def table_chain(self, manifest_key: str, ref: dict) -> list[tuple[str, dict]]:
        """(key, content) of table `ref` of the repository of `manifest_key` and
        of each delta's base down to the full table, each checked against its SHA-256."""
        chain = []
        while True:
            key = f"{manifest_key.split('/manifests/')[0]}/tables/{ref['sha256']}.json.gz"
            raw = gzip.decompress(self.read(key))
            assert hashlib.sha256(raw).hexdigest() == ref["sha256"], f"table {key}: SHA-256 mismatch"
            content = json.loads(raw)
            chain.append((key, content))
            if "base" not in content:
                return chain
            ref = content["base"]

    def table_sets(self, manifest_key: str, ref: dict) -> dict:
        """The sets (refs, bundles, preserved, shallow) table `ref` holds: its
        full table with each delta above it applied."""
        chain = self.table_chain(manifest_key, ref)
        sets = dict(chain[-1][1])
        for _, delta in reversed(chain[:-1]):
            refs = {k: v for k, v in sets.get("refs", {}).items() if k not in delta.get("refs_removed", [])}
            refs.update(delta.get("refs_set", {}))
            tips = {k: v for k, v in sets.get("preserved", {}).items() if k not in delta.get("preserved_removed", [])}
            tips.update(delta.get("preserved_set", {}))
            sets = {"refs": refs, "preserved": tips,
                    "bundles": sets.get("bundles", [])[:delta["bundles_kept"]] + delta.get("bundles_added", []),
                    **({"shallow": sets["shallow"]} if sets.get("shallow") else {})}
            if "shallow" in delta:
                sets.pop("shallow", None)
                if delta["shallow"]:
                    sets["shallow"] = delta["shallow"]
        return sets

    def write_manifest(self, key: str, manifest: dict) -> None:
        """Store `manifest` (as manifest() returns it, perhaps edited) under
        `key`; a version-2 to -4 one becomes version 2 (plain JSON) with a full
        table of its sets, written first."""
        manifest = dict(manifest)
        if manifest.get("schema_version") in (2, 3, 4):
            manifest["schema_version"] = 2
            sets = {k: manifest.pop(k) for k in TABLE_MEMBERS if k in manifest}
            raw = json.dumps(sets, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
            digest = hashlib.sha256(raw).hexdigest()
            table_key = f"{key.split('/manifests/')[0]}/tables/{digest}.json.gz"
            data = gzip.compress(raw, mtime=0)
            self.write(table_key, data)
            manifest["table"] = {"key": table_key, "sha256": digest, "size": len(data), "raw_size": len(raw),
                                 "count": len(sets.get("refs", {}))}
        self.write(key, json.dumps(manifest).encode())

    def flip_middle_byte(self, key: str) -> None:
        data = bytearray(self.read(key))
        data[len(data) // 2] ^= 0xFF
        self.write(key, bytes(data))

    def state(self) -> Any:
        """An opaque mark of everything stored now, for changes_since()."""
        raise NotImplementedError

    def changes_since(self, mark) -> str:
        """What changed since `mark` ('' when nothing did), readable."""
        raise NotImplementedError


class FileStore(Store):
    """file:// storage in a local directory."""

    kind = "file"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def url(self) -> str:
        return f"file://{self.root}"

    def storage(self) -> dict:
        return {"url": self.url}

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def path_of(self, key: str) -> Path:
        return self.root / key

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for k, v in tree_state(self.root).items() if v[0] == "file" and k.startswith(prefix))

    def read(self, key: str) -> bytes:
        return self.path_of(key).read_bytes()

    def write(self, key: str, data: bytes) -> None:
        path = self.path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.chmod(0o644)  # the binary may store objects read-only
        path.write_bytes(data)

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def size(self, key: str) -> int:
        return self.path_of(key).stat().st_size

    def sha256(self, key: str) -> str:
        return sha256_file(self.path_of(key))

    def state(self) -> dict:
        # Content, mode and mtime of every file and directory, and the list of names.
        return tree_state(self.root, with_mtimes=True)

    def changes_since(self, mark) -> str:
        return diff_states(mark, self.state())


class S3Store(Store):
    """s3://S3_BUCKET/<prefix> on the module's S3 service, with the options a
    payload gives the S3 backend (endpoint, region, path addressing, SSE-S3).
    The binary gets static credentials through the environment; the harness
    reads and writes through boto3 (also through the strict front)."""

    kind = "s3"
    SSE = "AES256"
    _prefixes = itertools.count(1)

    def __init__(self, prefix: str | None = None, server: str = "moto", bucket: str = S3_BUCKET) -> None:
        import s3harness
        self.server = server
        self.service = s3_service(server)
        self.s3harness = s3harness
        self.bucket = bucket
        # RGW 16.2 has no SSE-S3 (AES256 is accepted over HTTP, not applied): SSE-KMS with its testing KMS.
        if server == "rgw":
            import rgw
            self.SSE = "aws:kms"
            self.sse_options = {"sse": "aws:kms", "kms_key_id": rgw.KMS_KEY_ID}
        else:
            self.sse_options = {"sse": self.SSE}
        self.prefix = prefix or f"ws-{os.getpid()}-{next(S3Store._prefixes)}"
        self.client = self.service.boto3_client()

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def endpoint(self) -> str:
        return self.service.endpoint

    def storage(self) -> dict:
        return {"url": self.url, "endpoint": self.endpoint, "region": self.s3harness.REGION,
                "addressing": "path", **self.sse_options}

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.s3harness.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": self.s3harness.SECRET_KEY,
                "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost"}

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}"

    def _objects(self, prefix: str = "") -> dict[str, dict]:
        out = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.object_key(prefix)):
            for obj in page.get("Contents", []):
                out[obj["Key"][len(self.prefix) + 1:]] = obj
        return out

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(self._objects(prefix))

    def read(self, key: str) -> bytes:
        from botocore.exceptions import ClientError
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(f"{self.url}/{key}") from None
            raise

    def head(self, key: str) -> dict | None:
        from botocore.exceptions import ClientError
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data)

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def size(self, key: str) -> int:
        head = self.head(key)
        if head is None:
            raise FileNotFoundError(f"{self.url}/{key}")
        return head["ContentLength"]

    def state(self) -> tuple:
        # Every object's ETag, size and time, and where the front's request log stands:
        # changes_since() also reports any write request (PUT, POST, DELETE) the
        # binary sent since, even one that left the same bytes behind.
        objects = {k: (o["ETag"], o["Size"], o["LastModified"].isoformat()) for k, o in self._objects().items()}
        with self.service.front.lock:
            position = len(self.service.front.log)
        return objects, position

    def changes_since(self, mark) -> str:
        before, position = mark
        after, _ = self.state()
        with self.service.front.lock:
            requests = list(self.service.front.log[position:])
        mine = "/%s/%s/" % (self.bucket, self.prefix)
        writes = [f"request {m} {p}{'?' + q if q else ''} -> {status}" for m, p, q, status, _ in requests
                  if m in ("PUT", "POST", "DELETE") and urllib.parse.unquote(p).startswith(mine)]
        return "\n".join(filter(None, [diff_states(before, after)] + writes))


def make_store(kind: str, root: Path) -> Store:
    """A store of `kind` ("file" or "s3"); the file store lives at root/storage."""
    if kind == "file":
        return FileStore(Path(root) / "storage")
    if kind == "s3":
        return S3Store()
    if kind in ("s3-rgw", "rgw"):
        return S3Store(server="rgw")
    raise ValueError(f"unknown storage kind {kind!r}")
