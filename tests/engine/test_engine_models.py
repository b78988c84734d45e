"""Model construction."""

from __future__ import annotations

import sys

import pytest
import torch

from mcv_local.engine import EngineError, TrainConfig, build_model


def cfg(**overrides: object) -> TrainConfig:
    values: dict[str, object] = {
        "task": "classification",
        "classes": ["a", "b", "c"],
        "train": [("x", [0])],
        "backbone": "small_cnn",
        "image_size": 28,
        "channels": 1,
    }
    values.update(overrides)
    return TrainConfig(**values)


@pytest.mark.parametrize(("size", "channels"), [(8, 1), (28, 1), (32, 3), (64, 3), (100, 3)])
def test_small_cnn_shapes(size: int, channels: int) -> None:
    model = build_model(cfg(image_size=size, channels=channels)).eval()
    x = torch.randint(0, 256, (2, channels, size, size)).float()
    assert model(x).shape == (2, 3)


def test_timm_missing_gives_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # makes `import timm` fail like a missing package
    with pytest.raises(EngineError) as info:
        build_model(cfg(backbone="timm:x", channels=3))
    assert str(info.value) == "backbone 'timm:x' needs timm: pip install timm"


def test_unresolved_config_is_refused() -> None:
    with pytest.raises(EngineError, match="resolved"):
        build_model(cfg(image_size=None))
