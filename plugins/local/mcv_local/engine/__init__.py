"""PyTorch training engine of the ``local`` provider.

Public API::

    from mcv_local.engine.train import train        # train(cfg, workdir, ...) -> TrainResult
    from mcv_local.engine import TrainConfig, TrainResult, export_onnx, build_model
    from mcv_local.engine import EngineError, TrainingInterrupted

The names are imported lazily, so ``import mcv_local.engine`` does not load torch. The
``train`` function is not re-exported here because it shares its name with its module.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": ".config",
    "EngineError": ".errors",
    "TrainingInterrupted": ".errors",
    "build_model": ".models",
    "export_onnx": ".export",
    "TrainResult": ".train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
