"""Capabilities are data: complete declarations, every gap with its reason, checked before work."""

from __future__ import annotations

import pytest

from multicloud_cv.capabilities import ALL_FEATURES, Capabilities, Task
from multicloud_cv.errors import UnsupportedFeature


def _caps(**unsupported: str) -> Capabilities:
    gaps = {k.replace("__", ":"): v for k, v in unsupported.items()}
    return Capabilities.declare([f for f in ALL_FEATURES if f not in gaps], gaps)


def test_declaration_must_cover_every_feature() -> None:
    with pytest.raises(ValueError, match="no declaration"):
        Capabilities.declare(["task:classification"], {})


def test_unsupported_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="need a reason"):
        _caps(task__detection="  ")


def test_unknown_feature_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown features"):
        Capabilities.declare([*ALL_FEATURES, "task:segmentation"], {})


def test_check_lists_every_gap_with_reason() -> None:
    caps = _caps(task__detection="no detector yet", compute__tpu="no TPUs here")
    caps.check("p", ["task:classification", "compute:cpu"])
    with pytest.raises(UnsupportedFeature) as info:
        caps.check("p", [Task.DETECTION.feature, "compute:tpu"])
    message = str(info.value)
    assert "provider 'p' cannot do this" in message
    assert "task:detection: no detector yet" in message and "compute:tpu: no TPUs here" in message
    assert info.value.exit_code == 2


def test_tasks_and_as_dict() -> None:
    caps = _caps(task__detection="no")
    assert caps.tasks == [Task.CLASSIFICATION, Task.MULTILABEL]
    assert caps.as_dict()["unsupported"] == {"task:detection": "no"}
