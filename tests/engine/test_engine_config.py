"""TrainConfig: validation and JSON round trip."""

from __future__ import annotations

import json

import pytest

from mcv_local.engine import EngineError, TrainConfig


def make(**overrides: object) -> TrainConfig:
    values: dict[str, object] = {
        "task": "classification",
        "classes": ["a", "b"],
        "train": [("x.png", [0]), ("y.png", [1])],
    }
    values.update(overrides)
    return TrainConfig(**values)


def test_defaults_and_json_round_trip() -> None:
    cfg = make(val=[("z.png", [1])], max_train_seconds=12.5)
    assert (cfg.backbone, cfg.epochs, cfg.patience, cfg.augment, cfg.pretrained) == ("auto", 10, 3, True, True)
    data = json.loads(json.dumps(cfg.to_dict()))
    again = TrainConfig.from_dict(data)
    assert again == cfg
    assert again.train[0] == ("x.png", [0])


def test_from_dict_rejects_unknown_keys() -> None:
    data = make().to_dict()
    data["colour"] = "blue"
    with pytest.raises(EngineError, match="colour"):
        TrainConfig.from_dict(data)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"task": "detection"}, "task"),
        ({"classes": ["a"]}, "at least 2"),
        ({"classes": ["a", "a"]}, "unique"),
        ({"train": []}, "no training images"),
        ({"train": [("x.png", [0, 1])]}, "exactly one"),
        ({"train": [("x.png", [2])]}, "outside"),
        ({"backbone": "resnet"}, "unknown backbone"),
        ({"channels": 2}, "channels"),
        ({"epochs": 0}, "epochs"),
    ],
)
def test_check_rejects_bad_configs(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(EngineError, match=message):
        make(**overrides).check()


def test_multilabel_allows_zero_or_many_labels() -> None:
    make(task="multilabel", train=[("x.png", []), ("y.png", [0, 1])]).check()
    make(backbone="timm:resnet18").check()
