"""Shared fixtures: every test gets its own MCV_HOME, so run records never leak between tests."""

from __future__ import annotations

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
