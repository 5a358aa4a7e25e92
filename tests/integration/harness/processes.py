"""The suite's temporary root, the registry of every process the harness
starts (killed by process group at teardown and at exit), and ports on
127.0.0.1."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path


HERE = Path(__file__).resolve().parent.parent  # tests/integration
SOURCE_ROOT = HERE.parent.parent


# --------------------------------------------------------------------------
# Temp root and process registry (with an atexit safety net)
# --------------------------------------------------------------------------

_lock = threading.RLock()
_tmp_root: Path | None = None
_procs: list[subprocess.Popen] = []


def tmp_root() -> Path:
    """The suite's private temp directory, created on first use."""
    global _tmp_root
    with _lock:
        if _tmp_root is None:
            _tmp_root = Path(tempfile.mkdtemp(prefix="snapshotter-itest-"))
        return _tmp_root


def mkdtemp(prefix: str = "t-") -> Path:
    """A fresh directory under the suite's temp root."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=tmp_root()))


def _register(proc: subprocess.Popen) -> None:
    with _lock:
        _procs.append(proc)


def kill_process_group(proc: subprocess.Popen, grace_s: float = 3.0) -> None:
    """SIGTERM then SIGKILL the process group led by `proc` and reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    # The leader may be gone while children of its group live on.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    with _lock:
        if proc in _procs:
            _procs.remove(proc)


def cleanup_all() -> None:
    """Stop the S3 service, kill every registered process and remove the temp root."""
    global _tmp_root
    from .stores import stop_s3_service  # here: stores imports this module

    stop_s3_service()
    with _lock:
        procs = list(_procs)
    for proc in procs:
        kill_process_group(proc)
    with _lock:
        root, _tmp_root = _tmp_root, None
    if root is not None and root.exists():
        shutil.rmtree(root, ignore_errors=True)


atexit.register(cleanup_all)


def _on_sigterm(signum, frame):  # pragma: no cover - only when killed
    raise SystemExit(128 + signum)  # runs the atexit cleanup


def setup_module() -> None:
    """Call from setUpModule: check the binary and create the temp root."""
    from .runner import snapshotter_bin  # here: runner imports this module

    snapshotter_bin()
    tmp_root()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def teardown_module() -> None:
    """Call from tearDownModule: kill servers, remove temp files."""
    cleanup_all()


# --------------------------------------------------------------------------
# Processes and ports
# --------------------------------------------------------------------------


def descendants(pid: int) -> set[int]:
    """Every live descendant of process `pid` (children, their children, ...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            # pid (comm) state ppid ...: comm may hold spaces and ')', so split after the last ')'.
            children.setdefault(int(stat[stat.rindex(b")") + 2:].split()[1]), []).append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout_s: float = 10.0) -> None:
    """Wait until 127.0.0.1:`port` accepts connections (or `proc` dies)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")
