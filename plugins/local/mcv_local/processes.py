"""Detached helper processes (training workers, endpoint servers) and their liveness.

A process started here runs in its own session, so it outlives the ``mcv`` command that
started it; any later ``mcv`` process finds it again by pid. A pid is only trusted while
``/proc/<pid>/cmdline`` still names the module we started (pid reuse guard).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def spawn(module: str, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> int:
    """Start ``python -m module args...`` detached, output appended to ``log_path``; return its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env={**os.environ, **(env or {})},
        )
    _CHILDREN[process.pid] = process
    return process.pid


def exit_code(pid: int) -> int | None:
    """The exit code of a process started by THIS process, once it ended; else ``None``."""
    child = _CHILDREN.get(pid)
    return None if child is None else child.poll()


def is_alive(pid: int | None, module: str) -> bool:
    """True while ``pid`` runs and is still ``python -m module`` (not a reused pid, not a zombie)."""
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return module.encode() in cmdline


def terminate(pid: int, module: str, grace_s: float = 10.0) -> bool:
    """SIGTERM, wait up to ``grace_s``, then SIGKILL. Returns False when it was not running."""
    if not is_alive(pid, module):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not is_alive(pid, module):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    child = _CHILDREN.get(pid)
    if child is not None:
        child.wait(timeout=5)
    return True
