"""Trees and secrets (states of a directory, byte searches), and the
Assertions mixin of unittest.TestCase shared by the test modules."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import urllib.parse
from pathlib import Path
from typing import Iterable

from .upstreams import Upstream, fsck, git, head_symref, object_format, refs_of
from .runner import Run


# --------------------------------------------------------------------------
# Trees and secrets
# --------------------------------------------------------------------------


def tree_state(root: Path | str, with_mtimes: bool = False) -> dict[str, tuple]:
    """{relative path: (kind, sha256 or link target, mode[, mtime_ns])} for a whole tree.

    A missing root gives {}. Compare two states for "byte-for-byte unchanged".
    """
    root = Path(root)
    state: dict[str, tuple] = {}
    if not root.exists() and not root.is_symlink():
        return state
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            extra = (st.st_mtime_ns,) if with_mtimes else ()
            if stat.S_ISLNK(st.st_mode):
                state[rel] = ("link", os.readlink(path), None) + extra
            elif stat.S_ISDIR(st.st_mode):
                state[rel] = ("dir", None, stat.S_IMODE(st.st_mode)) + extra
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                state[rel] = ("file", h.hexdigest(), stat.S_IMODE(st.st_mode)) + extra
            else:
                state[rel] = ("other", None, stat.S_IMODE(st.st_mode)) + extra
    return state


def tree_digest(root: Path | str, with_mtimes: bool = False) -> str:
    """One SHA-256 over tree_state(root)."""
    return hashlib.sha256(json.dumps(sorted(tree_state(root, with_mtimes).items())).encode()).hexdigest()


def diff_states(before: dict, after: dict) -> str:
    """A readable list of what changed between two tree_state() results."""
    lines = []
    for k in sorted(set(before) | set(after)):
        if k not in before:
            lines.append(f"+ {k}")
        elif k not in after:
            lines.append(f"- {k}")
        elif before[k] != after[k]:
            lines.append(f"~ {k}: {before[k]} -> {after[k]}")
    return "\n".join(lines)


def secret_forms(secret: str, usernames: Iterable[str] = ()) -> list[bytes]:
    """The byte strings that would betray `secret`: raw, URL-encoded, and as a basic-auth header."""
    forms = {secret.encode(), urllib.parse.quote(secret, safe="").encode()}
    for user in usernames:
        forms.add(base64.b64encode(f"{user}:{secret}".encode()))
    return sorted(forms)


def find_bytes_in_tree(root: Path | str, needles: Iterable[bytes]) -> list[str]:
    """Paths (and symlink targets / file names) under `root` that contain any needle."""
    needles = list(needles)
    hits = []
    root = Path(root)
    if not root.exists():
        return hits
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if any(n in name.encode("utf-8", "surrogateescape") for n in needles):
                hits.append(f"{path} (name)")
            if path.is_symlink():
                if any(n in os.readlink(path).encode("utf-8", "surrogateescape") for n in needles):
                    hits.append(f"{path} (link)")
            elif path.is_file():
                data = path.read_bytes()
                for n in needles:
                    if n in data:
                        hits.append(f"{path} contains {n!r}")
    return hits


# --------------------------------------------------------------------------
# Assertions shared by the test modules
# --------------------------------------------------------------------------


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


SNAPSHOT_SUMMARY_KEYS = ("total", "ok", "unchanged", "failed")


def snapshot_summary(result: dict) -> dict:
    """The contract's counts of a snapshot result's summary (later fields, such as
    "skipped" or "bytes", are extensions and are not compared)."""
    summary = result.get("summary")
    if not isinstance(summary, dict):
        return {"summary": summary}
    return {k: summary.get(k) for k in SNAPSHOT_SUMMARY_KEYS}


class Assertions:
    """Mixin for unittest.TestCase with assertions about runs and repositories."""

    def assertRunOk(self, run: Run, msg: str = "") -> dict:
        """Exit 0 and {"ok": true, "result": {...}}; returns the result."""
        self.assertEqual(run.rc, 0, f"{msg}\nexpected exit 0\n{run.describe()}")
        self.assertIs(run.out.get("ok"), True, f"{msg}\n{run.describe()}")
        self.assertIsInstance(run.out.get("result"), dict, f"{msg}\n{run.describe()}")
        return run.out["result"]

    def assertRunFails(self, run: Run, rc: int, error: str, msg: str = "") -> dict:
        """Exit `rc` and {"ok": false, "error": `error`, "message": str}; returns the output."""
        self.assertEqual((run.rc, run.out.get("ok"), run.out.get("error")), (rc, False, error),
                         f"{msg}\nexpected exit {rc} with error {error}\n{run.describe()}")
        self.assertIsInstance(run.out.get("message"), str, f"{msg}\n{run.describe()}")
        return run.out

    def assertRepoEquals(self, restored: Path | str, upstream: "Upstream", msg: str = "") -> None:
        """Restored refs and HEAD equal upstream exactly; fsck --full is clean; same object format; bare."""
        self.assertTrue(Path(restored).is_dir(), f"{msg}: restore target {restored} does not exist")
        self.assertEqual(refs_of(restored), upstream.refs(), f"{msg}: for-each-ref differs from upstream")
        self.assertEqual(head_symref(restored), upstream.head(), f"{msg}: HEAD differs from upstream")
        self.assertEqual(object_format(restored), upstream.object_format(), f"{msg}: object format differs")
        self.assertEqual(git("rev-parse", "--is-bare-repository", git_dir=restored).strip(), "true",
                         f"{msg}: restored repository is not bare")
        p = fsck(restored)
        self.assertEqual(p.returncode, 0, f"{msg}: git fsck --full failed: {p.stdout!r} {p.stderr!r}")

    def assertStderrJsonLines(self, run: Run) -> None:
        """stderr is not a terminal here, so every log line is JSON with ts, level and msg."""
        for line in run.stderr.decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                self.fail(f"stderr line is not JSON: {line!r}")
            self.assertIsInstance(record, dict, line)
            self.assertTrue({"ts", "level", "msg"} <= set(record), f"stderr line lacks ts/level/msg: {line!r}")

    def assertTreeUnchanged(self, before: dict, after: dict, what: str) -> None:
        self.assertEqual(after, before, f"{what} changed:\n{diff_states(before, after)}")
