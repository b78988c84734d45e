"""Fixtures of the engine tests: tiny synthetic image sets in ``tmp_path``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PLUGIN_ROOT = HERE.parents[1] / "plugins" / "local"
for entry in (PLUGIN_ROOT, HERE):  # plugins/local until it is installed; HERE for engine_images
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from engine_images import Samples, make_images  # noqa: E402


@pytest.fixture
def image_factory(tmp_path: Path) -> Callable[..., Samples]:
    """``image_factory(name, per_class, seed, **kwargs)`` -> samples under ``tmp_path/name``."""

    def factory(name: str, per_class: int = 20, seed: int = 0, **kwargs: object) -> Samples:
        return make_images(tmp_path / name, per_class, seed, **kwargs)

    return factory
