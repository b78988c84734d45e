"""End-to-end training runs on tiny synthetic data (each a few seconds on 2 cores)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from engine_images import CLASSES, Samples

from mcv_local.engine import TrainConfig, TrainingInterrupted
from mcv_local.engine.train import train
from mcv_local.preprocess import decode

Factory = Callable[..., Samples]


def onnx_scores(path: Path, samples: Samples) -> np.ndarray:
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    size, channels = int(props["mcv.image_size"]), int(props["mcv.channels"])
    batch = np.stack([decode(p, size, channels) for p, _ in samples])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["scores"], {"image": batch})[0]


def config(samples: Samples, **overrides: Any) -> TrainConfig:
    values: dict[str, Any] = {
        "task": "classification",
        "classes": CLASSES,
        "train": samples,
        "epochs": 6,
        "num_threads": 1,
    }
    values.update(overrides)
    return TrainConfig(**values)


def test_single_label_beats_chance_on_held_out_images(image_factory: Factory, tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    result = train(config(image_factory("train", per_class=20, seed=0)), tmp_path / "run", on_event=events.append)
    held_out = image_factory("test", per_class=10, seed=99)
    scores = onnx_scores(result.onnx_path, held_out)
    accuracy = float((scores.argmax(1) == np.array([labels[0] for _, labels in held_out])).mean())
    assert accuracy >= 0.7, accuracy  # chance is 1/3
    assert np.allclose(scores.sum(1), 1, atol=1e-5)

    assert result.onnx_path == tmp_path / "run" / "model.onnx"
    assert result.epochs_run == 6 and 1 <= result.best_epoch <= 6
    for name in ("last.pt", "best.pt", "labels.json", "metrics.json"):
        assert (tmp_path / "run" / name).exists()
    assert json.loads((tmp_path / "run" / "labels.json").read_text()) == CLASSES
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["val_images"] == 6 and metrics["train_images"] == 54  # carved 10 %, stratified
    assert metrics["backbone"] == "small_cnn" and metrics["stop_reason"] == "completed"
    assert len(metrics["history"]) == 6

    kinds = [e["event"] for e in events]
    assert kinds[0] == "epoch_start" and kinds[-1] == "done" and kinds.count("epoch_end") == 6
    for epoch in range(1, 7):
        batches = [e for e in events if e["event"] == "batch" and e["epoch"] == epoch]
        assert 1 <= len(batches) <= 21 and batches[-1]["batch"] == batches[-1]["batches"]
    end = next(e for e in events if e["event"] == "epoch_end")
    assert set(end) == {"event", "epoch", "epochs", "train_loss", "val_loss", "val_accuracy", "seconds"}
    assert events[-1] == {
        "event": "done",
        "best_epoch": result.best_epoch,
        "val_accuracy": result.metrics["val_accuracy"],
    }


def test_multilabel_outputs_sigmoid_scores(image_factory: Factory, tmp_path: Path) -> None:
    train_set = image_factory("train", per_class=20, seed=0, multilabel=True)
    val_set = image_factory("val", per_class=4, seed=1, multilabel=True)
    result = train(config(train_set, task="multilabel", val=val_set, epochs=8), tmp_path / "run")
    props = {p.key: p.value for p in onnx.load(str(result.onnx_path)).metadata_props}
    assert props["mcv.task"] == "multilabel"
    held_out = image_factory("test", per_class=5, seed=7, multilabel=True)
    scores = onnx_scores(result.onnx_path, held_out)
    assert scores.shape == (15, 3) and ((scores >= 0) & (scores <= 1)).all()
    assert not np.allclose(scores.sum(1), 1, atol=1e-3)  # not a softmax
    truth = np.zeros((15, 3), dtype=bool)
    for row, (_, labels) in enumerate(held_out):
        truth[row, labels] = True
    assert ((scores > 0.5) == truth).mean() > 0.7  # per-label accuracy; always-0 would give about 1/3
    assert 0.0 <= result.metrics["val_macro_f1"] <= 1.0 and "val_accuracy" in result.metrics


def test_resume_after_interruption(image_factory: Factory, tmp_path: Path) -> None:
    cfg = config(image_factory("train", per_class=10), epochs=4, augment=True)
    workdir = tmp_path / "run"
    first: list[dict[str, Any]] = []
    with pytest.raises(TrainingInterrupted):
        train(cfg, workdir, on_event=first.append, should_stop=lambda: any(e["event"] == "epoch_end" for e in first))
    assert [e["epoch"] for e in first if e["event"] == "epoch_end"] == [1]
    checkpoint = torch.load(workdir / "last.pt", weights_only=True)
    assert checkpoint["state"]["epoch"] == 1
    assert not (workdir / "model.onnx").exists()

    second: list[dict[str, Any]] = []
    result = train(cfg, workdir, on_event=second.append)
    assert [e["epoch"] for e in second if e["event"] == "epoch_start"] == [2, 3, 4]
    assert result.epochs_run == 4
    assert [h["epoch"] for h in result.metrics["history"]] == [1, 2, 3, 4]

    # an uninterrupted run with the same seed ends in the same place
    fresh = train(cfg, tmp_path / "fresh", resume=False)
    assert [round(h["train_loss"], 4) for h in fresh.metrics["history"]] == [
        round(h["train_loss"], 4) for h in result.metrics["history"]
    ]


def test_resume_mid_epoch(image_factory: Factory, tmp_path: Path) -> None:
    cfg = config(image_factory("train", per_class=40), epochs=2, batch_size=8)
    calls = iter(range(1000))
    with pytest.raises(TrainingInterrupted, match="batch 5"):
        train(cfg, tmp_path / "run", should_stop=lambda: next(calls) == 1)  # polls at batches 0, 5, 10...
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["state"]
    assert state["epoch"] == 0 and state["partial"]["batch"] == 5
    result = train(cfg, tmp_path / "run")
    fresh = train(cfg, tmp_path / "fresh")
    assert result.epochs_run == 2
    assert abs(result.metrics["history"][0]["train_loss"] - fresh.metrics["history"][0]["train_loss"]) < 1e-3


def test_early_stopping(image_factory: Factory, tmp_path: Path) -> None:
    train_set = image_factory("train", per_class=10)
    # validation images are training images with a consistently wrong label: learning only makes it worse
    val_set = [(path, [(labels[0] + 1) % 3]) for path, labels in train_set[:9]]
    events: list[dict[str, Any]] = []
    result = train(
        config(train_set, val=val_set, epochs=20, patience=2, lr=3e-3), tmp_path / "run", on_event=events.append
    )
    assert result.epochs_run < 20
    assert result.metrics["stop_reason"] == "early_stop"
    assert [e for e in events if e["event"] == "early_stop"] == [{"event": "early_stop", "epoch": result.epochs_run}]


def test_time_budget_stops_after_the_crossing_epoch(image_factory: Factory, tmp_path: Path) -> None:
    result = train(config(image_factory("train", per_class=5), epochs=50, max_train_seconds=0.01), tmp_path / "run")
    assert result.epochs_run == 1 and result.metrics["stop_reason"] == "time_budget"


def test_streaming_path_for_larger_images(image_factory: Factory, tmp_path: Path) -> None:
    samples = image_factory("train", per_class=8, size=80, mode="L")
    result = train(config(samples, backbone="small_cnn", image_size=72, epochs=2), tmp_path / "run")
    assert result.metrics["in_memory"] is False
    props = {p.key: p.value for p in onnx.load(str(result.onnx_path)).metadata_props}
    assert (props["mcv.image_size"], props["mcv.channels"]) == ("72", "1")
    assert onnx_scores(result.onnx_path, samples[:4]).shape == (4, 3)


def test_lite0_fine_tunes(image_factory: Factory, tmp_path: Path) -> None:
    samples = image_factory("train", per_class=8, size=48)
    result = train(config(samples, backbone="efficientnet_lite0", image_size=64, epochs=2), tmp_path / "run")
    assert result.metrics["backbone"] == "efficientnet_lite0" and result.metrics["channels"] == 3
    scores = onnx_scores(result.onnx_path, samples[:5])
    assert scores.shape == (5, 3) and np.allclose(scores.sum(1), 1, atol=1e-5)


def test_one_cycle_schedule() -> None:
    from mcv_local.engine.train import OneCycle

    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=1.0)
    schedule = OneCycle(optimizer, 0.01, total=100)
    assert schedule.warmup == 15 and optimizer.param_groups[0]["lr"] == pytest.approx(0.01 / 25)
    lrs = []
    for _ in range(100):
        schedule.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert max(lrs) == pytest.approx(0.01) and lrs.index(max(lrs)) == 14
    assert lrs[-1] == pytest.approx(0.01 / 1e4)
    assert all(a >= b for a, b in itertools.pairwise(lrs[14:]))
    again = OneCycle(optimizer, 0.5, total=7)
    again.load_state_dict(schedule.state_dict())
    assert again.state_dict() == schedule.state_dict()
    schedule.set_total(50)  # shortened by a time budget: already at the end
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 / 1e4)
