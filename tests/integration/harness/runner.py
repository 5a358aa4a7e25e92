"""Running the snapshotter binary: its path, its environment, the one JSON
line it prints and the Run that holds all of it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Iterable

from .processes import SOURCE_ROOT, _register, kill_process_group


DEFAULT_RUN_TIMEOUT_S = 180


# --------------------------------------------------------------------------
# Running the binary
# --------------------------------------------------------------------------


def snapshotter_bin() -> str:
    """Path of the binary under test: $SNAPSHOTTER_BIN, else build/snapshotter."""
    path = os.environ.get("SNAPSHOTTER_BIN") or str(SOURCE_ROOT / "build" / "snapshotter")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"snapshotter binary not found at {path!r}; set SNAPSHOTTER_BIN")
    return path


def sanitizer_runtimes(binary: str) -> list[str]:
    """The sanitizer runtimes `binary` links (libasan, libubsan, libtsan: a
    scripts/sanitize.sh build), by ldd; empty for a plain build. Memory and
    packaging checks that mean nothing under instrumentation skip on these."""
    p = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return sorted({line.split()[0] for line in p.stdout.splitlines()
                   if line.strip().startswith(("libasan", "libubsan", "libtsan"))})


def is_minified_json_text(text: str) -> bool:
    """True when `text` has no whitespace outside JSON strings."""
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in " \t\r\n":
            return False
    return True


class OutputError(AssertionError):
    pass


def check_stdout(raw: bytes) -> dict:
    """Assert `raw` is exactly one line of minified JSON (an object); return it parsed."""
    if raw.endswith(b"\n"):
        body = raw[:-1]
    else:
        body = raw
    if not body:
        raise OutputError("stdout is empty; expected one line of JSON")
    if b"\n" in body:
        raise OutputError(f"stdout has more than one line: {raw[:2000]!r}")
    try:
        text = body.decode("utf-8")
        parsed = json.loads(text)
    except (UnicodeDecodeError, ValueError) as e:
        raise OutputError(f"stdout is not JSON ({e}): {raw[:2000]!r}")
    if not isinstance(parsed, dict):
        raise OutputError(f"stdout JSON is not an object: {raw[:2000]!r}")
    if not is_minified_json_text(text):
        raise OutputError(f"stdout JSON is not minified: {raw[:2000]!r}")
    if not isinstance(parsed.get("ok"), bool):
        raise OutputError(f"stdout JSON has no boolean \"ok\": {raw[:2000]!r}")
    return parsed


class Run:
    """The outcome of one snapshotter run; unpacks as (rc, out, stdout, stderr)."""

    def __init__(self, argv, rc, out, stdout, stderr, duration_s):
        self.argv, self.rc, self.out, self.stdout, self.stderr = argv, rc, out, stdout, stderr
        self.duration_s = duration_s

    def __iter__(self):
        return iter((self.rc, self.out, self.stdout, self.stderr))

    def describe(self) -> str:
        return (f"argv={self.argv}\nrc={self.rc}\nstdout={self.stdout.decode(errors='replace')}\n"
                f"stderr (tail)={self.stderr.decode(errors='replace')[-3000:]}")

    def emf(self) -> list[dict]:
        """The CloudWatch EMF metrics lines of stderr (JSON objects with "_aws")."""
        out = []
        for line in self.stderr.decode(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and "_aws" in rec:
                out.append(rec)
        return out


def snapshotter_env(home: Path | None = None, tmpdir: Path | None = None,
                    extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for the binary: no GIT_*, SNAPSHOTTER_* or AWS_* leaking in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "SNAPSHOTTER_", "AWS_")) and k not in ("XDG_CACHE_HOME",)}
    env["LANG"] = env["LC_ALL"] = "C.UTF-8"
    if home is not None:
        env["HOME"] = str(home)
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    if extra:
        env.update(extra)
    return env


def run_snapshotter(payload: dict | str | bytes | None, args: Iterable[str] = (), env: dict[str, str] | None = None,
                    job_file: Path | str | None = None, timeout_s: float = DEFAULT_RUN_TIMEOUT_S,
                    check_output: bool = True, preexec_fn=None, on_start=None) -> Run:
    """Run the binary; the payload (a dict, or raw text) goes in $SNAPSHOTTER_JOB_JSON.

    `job_file` adds `--job-file PATH`. `env` is the full environment (default:
    snapshotter_env()). Asserts stdout is exactly one line of minified JSON
    unless `check_output` is false. `preexec_fn` runs in the child before the
    exec (resource limits); `on_start(proc)` is called once it runs (to watch
    it from /proc). Returns a Run: rc, out (parsed), stdout, stderr.
    """
    run_env = dict(env) if env is not None else snapshotter_env()
    run_env.pop("SNAPSHOTTER_JOB_JSON", None) if payload is None else None
    if payload is not None:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        elif isinstance(payload, bytes):
            payload = payload.decode("utf-8", errors="surrogateescape")
        run_env["SNAPSHOTTER_JOB_JSON"] = payload
    argv = [snapshotter_bin()]
    if job_file is not None:
        argv += ["--job-file", str(job_file)]
    argv += list(args)
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=run_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, preexec_fn=preexec_fn)
    _register(proc)
    try:
        if on_start is not None:
            on_start(proc)
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_process_group(proc)
        stdout, stderr = proc.communicate()
        raise AssertionError(f"snapshotter timed out after {timeout_s}s: {argv}\nstderr: {stderr[-3000:]!r}")
    finally:
        kill_process_group(proc, grace_s=0.5)
    duration = time.monotonic() - start
    out = None
    if check_output:
        try:
            out = check_stdout(stdout)
        except OutputError as e:
            raise OutputError(f"{e}\nrc={proc.returncode}\nstderr (tail)={stderr.decode(errors='replace')[-3000:]}")
    else:
        try:
            out = json.loads(stdout)
        except ValueError:
            out = None
    return Run(argv, proc.returncode, out, stdout, stderr, duration)
