"""Shared fixtures: every test gets its own MCV_HOME, so run records never leak between tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from multicloud_cv.registry import reset

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def mcv_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "mcv-home"
    monkeypatch.setenv("MCV_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    reset()
    yield home
    reset()


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
