"""The real work behind the emulated Vertex AI: answering predictions, training AutoML models, running packages.

* :class:`AutoMLPredictor` answers AutoML image predictions from a model trained by the kit
  (:class:`multicloud_cv.emulation.serving.LoadedModel`) in AutoML's format (cloud-apis.md 3.3):
  classification ``{"ids", "displayNames", "confidences"}`` sorted by confidence, detection adds ``"bboxes"``
  ``[xMin, xMax, yMin, yMax]`` (relative, x,x,y,y), honouring ``confidenceThreshold`` (default 0.0) and
  ``maxPredictions`` (default 10). Instances are ``{"content": "<base64>", "mimeType": ...}``.
* :class:`CustomPredictor` answers for an uploaded custom model: its artifact folder downloaded from GCS, served
  by :func:`mcv_vertex.serving.predict_instances` (what the serving container answers), imported when first used.
* :func:`train_automl` trains an AutoML model with the kit (classifier or FCOS detector) on local image copies.
* :func:`task_environment` is the environment a custom job's ``mcv_vertex.task`` subprocess gets.

A predictor raises :class:`~multicloud_cv.emulation.protocol.ApiError` (400 INVALID_ARGUMENT) for a bad instance.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mcv_vertex.emulator.texts import invalid
from multicloud_cv.emulation.training import Limits

log = logging.getLogger(__name__)


class Predictor(Protocol):
    """What a deployed model (or a batch prediction job's model) answers."""

    def predict(self, instances: Sequence[Any], parameters: dict[str, Any]) -> list[dict[str, Any]]:
        """One prediction per instance."""
        ...


@dataclass
class Item:
    """One imported data item: its gs:// URI, local copy, labels (names), relative boxes, ml_use."""

    uri: str
    local: Path
    labels: list[str] = field(default_factory=list)
    boxes: list[tuple[str, float, float, float, float]] = field(default_factory=list)  # name, x0, y0, x1, y1
    ml_use: str | None = None
    width: int = 0
    height: int = 0


def _number(parameters: dict[str, Any], key: str, default: float) -> float:
    value = parameters.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise invalid(f"parameters.{key} must be a number, got {value!r}")
    try:
        return float(value)
    except ValueError:
        raise invalid(f"parameters.{key} must be a number, got {value!r}") from None


def instance_bytes(instance: Any, index: int) -> bytes:
    """The image bytes of an AutoML image instance (``content`` base64)."""
    if not isinstance(instance, dict) or not isinstance(instance.get("content"), str):
        raise invalid(f'instances[{index}] must be an object with "content" (the base64 image bytes)')
    try:
        return base64.b64decode(instance["content"], validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"instances[{index}].content is not valid base64.") from None


class AutoMLPredictor:
    """An AutoML image model trained by the emulator (see the module docstring)."""

    def __init__(self, model_dir: Path, task: str, classes: Sequence[str], threads: int = 1) -> None:
        from multicloud_cv.emulation.serving import LoadedModel

        self.task = task
        self.classes = list(classes)
        self.model = LoadedModel(model_dir, task, threads=threads)

    def predict(self, instances: Sequence[Any], parameters: dict[str, Any]) -> list[dict[str, Any]]:
        from multicloud_cv.emulation.serving import ImageDecodeError, decode_rgb

        threshold = _number(parameters, "confidenceThreshold", 0.0)
        limit = int(_number(parameters, "maxPredictions", 10))
        answers = []
        for index, instance in enumerate(instances):
            data = instance_bytes(instance, index)
            try:
                if self.task == "detection":
                    found = self.model.detect(decode_rgb(data), score_threshold=max(threshold, 0.01))
                    found = sorted(found, key=lambda row: -row[1])[:limit]
                    answers.append(
                        {
                            "ids": [str(label) for label, *_ in found],
                            "displayNames": [self.classes[label] for label, *_ in found],
                            "confidences": [round(score, 6) for _, score, *_ in found],
                            "bboxes": [[x0, x1, y0, y1] for _, _, x0, y0, x1, y1 in found],
                        }
                    )
                    continue
                scores = self.model.classify(data)
            except ImageDecodeError:
                raise invalid(f"instances[{index}]: Provided image is not valid.") from None
            order = sorted(range(len(scores)), key=lambda i: -scores[i])
            chosen = [i for i in order if scores[i] >= threshold][:limit]
            answers.append(
                {
                    "ids": [str(i) for i in chosen],
                    "displayNames": [self.classes[i] for i in chosen],
                    "confidences": [round(scores[i], 6) for i in chosen],
                }
            )
        return answers


class CustomPredictor:
    """An uploaded model served as the serving container would (:mod:`mcv_vertex.serving`)."""

    def __init__(self, folder: Path) -> None:
        from mcv_vertex import serving  # helper VRUN's module: imported when a custom model is deployed

        self.folder = folder
        loader = getattr(serving, "load_model", None)
        self.model: Any = loader(folder) if callable(loader) else folder
        self._predict: Callable[..., list[dict[str, Any]]] = serving.predict_instances

    def predict(self, instances: Sequence[Any], parameters: dict[str, Any]) -> list[dict[str, Any]]:
        from multicloud_cv.errors import BadInput

        try:
            return list(self._predict(self.model, list(instances), dict(parameters)))
        except BadInput as exc:
            raise invalid(str(exc)) from None


def task_environment(
    *,
    storage_host: str,
    project: str,
    job_id: str,
    base_output_dir: str | None,
    pools: Sequence[tuple[str, int]],
    limits: Limits,
    extra: dict[str, str],
) -> dict[str, str]:
    """The environment of a custom job's chief process (``pools``: ``(name, replica count)`` per pool)."""
    env = dict(os.environ)
    env.update(
        {
            "STORAGE_EMULATOR_HOST": storage_host,
            "CLOUD_ML_PROJECT_ID": project,
            "CLOUD_ML_JOB_ID": job_id,
            "MCV_TASK_MAX_EPOCHS": str(limits.max_epochs),
            "MCV_TASK_MAX_IMAGE_SIZE": str(limits.max_image_size),
            "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", str(limits.threads)),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if base_output_dir:
        base = base_output_dir.rstrip("/")
        env["AIP_MODEL_DIR"] = f"{base}/model/"
        env["AIP_CHECKPOINT_DIR"] = f"{base}/checkpoints/"
        env["AIP_TENSORBOARD_LOG_DIR"] = f"{base}/logs/"
    if sum(count for _, count in pools) > 1:
        cluster = {name: [f"{name}-{i}:2222" for i in range(count)] for name, count in pools if count > 0}
        env["CLUSTER_SPEC"] = json.dumps(
            {"cluster": cluster, "environment": "cloud", "task": {"type": "workerpool0", "index": 0}}
        )
        tf_names = {"workerpool0": "chief", "workerpool1": "worker", "workerpool2": "ps", "workerpool3": "evaluator"}
        env["TF_CONFIG"] = json.dumps(
            {
                "cluster": {tf_names.get(k, k): v for k, v in cluster.items()},
                "task": {"type": "chief", "index": 0},
                "environment": "cloud",
            }
        )
    env.update(extra)
    return env


@dataclass(frozen=True)
class Trained:
    """An AutoML model the emulator trained: its folder, task, classes and a one-line summary."""

    model_dir: Path
    task: str
    classes: list[str]
    summary: str


def train_automl(
    *,
    task: str,
    classes: Sequence[str],
    train: Sequence[Item],
    validation: Sequence[Item],
    workdir: Path,
    model_dir: Path,
    model_id: str,
    limits: Limits,
    should_stop: Callable[[], bool],
) -> Trained:
    """Train ``task`` (``classification``, ``multilabel``, ``detection``) on ``train`` with the kit.

    Raises :class:`multicloud_cv.emulation.training.TrainingStopped` when ``should_stop`` says so.
    """
    from multicloud_cv.emulation import training as kit

    index = {name: i for i, name in enumerate(classes)}
    workdir.mkdir(parents=True, exist_ok=True)
    if task != "detection":

        def samples(items: Sequence[Item]) -> list[kit.Sample]:
            return [(str(item.local), sorted({index[n] for n in item.labels})) for item in items if item.labels]

        run = kit.train_classifier(
            task=task,
            classes=classes,
            train=samples(train),
            val=samples(validation),
            image_size=limits.max_image_size,
            epochs=limits.max_epochs,
            batch_size=8,
            threads=limits.threads,
            patience=limits.max_epochs,
            workdir=workdir,
            model_dir=model_dir,
            model_id=model_id,
            should_stop=should_stop,
        )
        summary = f"{run.epochs_run} epochs, validation accuracy {run.val_accuracy:.3f}"
        return Trained(model_dir, task, list(classes), summary)
    from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord

    images = []
    for split, items in (("train", train), ("validation", validation)):
        for item in items:
            boxes = tuple(
                BoxAnnotation(index[n], x0 * item.width, y0 * item.height, x1 * item.width, y1 * item.height)
                for n, x0, y0, x1, y1 in item.boxes
            )
            images.append(
                ImageRecord(path=str(item.local), boxes=boxes, split=split, width=item.width, height=item.height)
            )
    dataset = Dataset(root=workdir, classes=list(classes), images=images, task="detection")
    size = limits.max_image_size
    result = kit.train_detector(
        dataset,
        image_size=(size, size),
        epochs=limits.max_epochs,
        max_steps=limits.max_steps,
        threads=limits.threads,
        pretrained=kit.pretrained_backbone_problem() is None,
        workdir=workdir,
        onnx_path=model_dir / "model.onnx",
        model_id=model_id,
        should_stop=should_stop,
    )
    (model_dir / "labels.json").write_text(json.dumps(list(result.classes)), encoding="utf-8")
    return Trained(model_dir, task, list(result.classes), f"{result.steps_run} detector steps")
