"""Helpers shared by the tests (imported as ``support``; conftest modules are not importable by name)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


def run_mcv(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real ``mcv`` command in a subprocess (no stdin) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "multicloud_cv.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


@contextlib.contextmanager
def emulator_process(provider: str, state_dir: Path, bucket: str, pace: float = 0.02) -> Iterator[dict[str, str]]:
    """Run ``mcv emulate PROVIDER --json`` as a user would; yield the environment it prints; SIGTERM it after.

    The emulator must stop by itself on SIGTERM, within 30 s, with exit code 0.
    """
    command = [sys.executable, "-m", "multicloud_cv.cli.main", "emulate", provider, "--pace", str(pace), "--json"]
    process = subprocess.Popen(
        [*command, "--state-dir", str(state_dir), "--bucket", bucket],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else "no output"
        yield json.loads(line)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""


def worker_children() -> list[int]:
    """Pids of this process's children running ``multicloud_cv.workers`` (Linux: reads /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "")
        if parent == str(os.getpid()) and b"multicloud_cv.workers" in command:
            found.append(int(entry.name))
    return found
