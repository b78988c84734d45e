"""Helpers shared by the tests (imported as ``support``; conftest modules are not importable by name)."""

from __future__ import annotations

import os
import subprocess
import sys
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
