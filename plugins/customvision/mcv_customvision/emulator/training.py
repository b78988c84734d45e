"""An emulated iteration's life: the status walk, REAL training of a small model, and its performance.

:class:`IterationRunner` walks an :class:`~.store.Iteration` from ``Training`` to ``Completed`` (or ``Failed``
with ``trainingErrorDetails``) at ``pace``:

* a failure queued with ``fail_next_iteration`` ends the iteration ``Failed`` with that text after one pace;
* otherwise the iteration's snapshot (the project's images and tags when TrainProject was called) trains the
  local provider's engine through the kit (:func:`multicloud_cv.emulation.training.train_classifier` for
  Multiclass / Multilabel projects, :func:`~multicloud_cv.emulation.training.train_detector` for object
  detection), capped by :class:`~multicloud_cv.emulation.training.Limits`; the model folder is kept under the
  state folder (``projects/<project>/iterations/<iteration>/model``) with ``emulator.json`` (task, labels, tag
  ids, caps);
* the trained model then answers every snapshot image once; :func:`performance` turns those answers into the
  service's IterationPerformance at any ``threshold`` / ``overlapThreshold`` (the emulator's approximation:
  the service evaluates on a held-out part of the images, the emulator on the training images themselves).
  Standard deviations are 0.

Detection answers come from :func:`detect`, which resizes the image to the ONNX export's input side first
(``export.INPUT_SIDE``) so a published iteration and its export answer alike.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcv_customvision.emulator.store import Iteration, TrainingImage, now
from multicloud_cv.emulation import training as kit
from multicloud_cv.emulation.serving import LoadedModel

log = logging.getLogger(__name__)

DETECTION_FLOOR = 0.01
"""Detections below this probability are not answered (the service answers low-probability boxes too)."""


class Stopped(Exception):
    """The emulator is stopping."""


def input_side(limits: kit.Limits) -> int:
    """The side detection images are resized to before the detector (the ONNX export's input side)."""
    try:
        from mcv_customvision.emulator.export import INPUT_SIDE
    except ImportError:  # the export module is optional for prediction
        return limits.max_image_size
    return int(INPUT_SIDE)


def detect(model: LoadedModel, pixels: Any, side: int, floor: float = DETECTION_FLOOR) -> list[kit.Found]:
    """Detections of an RGB array resized to ``side`` x ``side`` (boxes normalised, so unchanged by it)."""
    import numpy as np
    from PIL import Image

    resized = np.asarray(Image.fromarray(pixels).convert("RGB").resize((side, side), Image.Resampling.BILINEAR))
    return model.detect(resized, floor)


class IterationRunner:
    """Runs one iteration in a thread (see the module docstring)."""

    def __init__(
        self,
        iteration: Iteration,
        pace: float,
        limits: kit.Limits,
        closing: threading.Event,
        failure: str | None,
        on_done: Callable[[Iteration], None] | None = None,
    ) -> None:
        self.iteration = iteration
        self.pace = pace
        self.limits = limits
        self.closing = closing
        self.failure = failure
        self.on_done = on_done

    def _pause(self, seconds: float) -> None:
        if self.closing.wait(max(0.0, seconds)):
            raise Stopped()

    def _should_stop(self) -> bool:
        return self.closing.is_set() or self.iteration.deleted

    def _finish(self, status: str, details: str | None = None) -> None:
        iteration = self.iteration
        with iteration.lock:
            iteration.status = status
            iteration.training_error_details = details
            iteration.last_modified = now()
            if status == "Completed":
                iteration.trained_at = iteration.last_modified
                started = datetime.fromisoformat(iteration.created.replace("Z", "+00:00"))
                minutes = (datetime.now(UTC) - started).total_seconds() / 60
                iteration.training_time_in_minutes = max(1, round(minutes))
        log.info("iteration %s: %s%s", iteration.id, status, f" ({details})" if details else "")
        if self.on_done is not None:
            self.on_done(iteration)

    def run(self) -> None:
        """Walk the iteration to Completed or Failed; never raises."""
        iteration = self.iteration
        assert iteration.model_dir is not None
        scratch = iteration.model_dir.parent / "scratch"
        try:
            started = time.monotonic()
            self._pause(self.pace)
            if self.failure is not None:
                self._finish("Failed", self.failure)
                return
            if iteration.task == "detection":
                self._train_detector(scratch)
            else:
                self._train_classifier(scratch)
            model = LoadedModel(iteration.model_dir, iteration.task, threads=self.limits.threads)
            iteration.scores = self._answers(model)
            iteration.model = model
            self._pause(self.pace - (time.monotonic() - started))
            self._finish("Completed")
        except (Stopped, kit.TrainingStopped):
            return
        except Exception as exc:  # the iteration's last word
            log.warning("training of iteration %s failed inside the emulator", iteration.id, exc_info=True)
            self._finish("Failed", f"Training failed: {type(exc).__name__}: {exc}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    # -------------------------------------------------------------------------------------- training

    def _write_info(self, model_dir: Path, extra: dict[str, Any]) -> None:
        iteration = self.iteration
        info = {
            "task": iteration.task,
            "labels": list(iteration.labels),
            "tag_ids": list(iteration.tag_ids),
            "caps": vars(self.limits),
            "emulated": True,
            **extra,
        }
        (model_dir / "emulator.json").write_text(json.dumps(info, indent=1) + "\n", "utf-8")

    def _train_classifier(self, scratch: Path) -> None:
        iteration = self.iteration
        assert iteration.model_dir is not None
        index = {tag: i for i, tag in enumerate(iteration.tag_ids)}
        samples: list[kit.Sample] = []
        for image in iteration.snapshot:
            labels = sorted({index[t] for t in image.tag_ids if t in index})
            if not labels:
                continue
            samples.append((str(image.path), labels if iteration.task == "multilabel" else labels[:1]))
        limits = self.limits
        kit.train_classifier(
            task=iteration.task,
            classes=iteration.labels,
            train=samples,
            val=[],
            image_size=limits.max_image_size,
            epochs=limits.max_epochs,
            batch_size=max(4, min(32, len(samples) // 4)),
            threads=limits.threads,
            patience=limits.max_epochs,
            workdir=scratch / "train",
            model_dir=iteration.model_dir,
            model_id=iteration.id,
            should_stop=self._should_stop,
        )
        self._write_info(iteration.model_dir, {"image_size": limits.max_image_size})

    def _train_detector(self, scratch: Path) -> None:
        from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord

        iteration = self.iteration
        assert iteration.model_dir is not None
        index = {tag: i for i, tag in enumerate(iteration.tag_ids)}
        records = []
        for image in iteration.snapshot:
            boxes = []
            for region in image.regions:
                if region["tagId"] not in index:
                    continue
                x0, y0 = region["left"] * image.width, region["top"] * image.height
                x1 = min(image.width, (region["left"] + region["width"]) * image.width)
                y1 = min(image.height, (region["top"] + region["height"]) * image.height)
                if x1 - x0 >= 1 and y1 - y0 >= 1:
                    boxes.append(BoxAnnotation(index[region["tagId"]], x0, y0, x1, y1))
            records.append(
                ImageRecord(str(image.path), boxes=tuple(boxes), split="train", width=image.width, height=image.height)
            )
        dataset = Dataset(
            root=Path("/"), classes=list(iteration.labels), images=records, task="detection", source_format="cv"
        )
        limits = self.limits
        side = limits.max_image_size
        iteration.model_dir.mkdir(parents=True, exist_ok=True)
        kit.train_detector(
            dataset,
            image_size=(side, side),
            epochs=limits.max_epochs,
            max_steps=limits.max_steps,
            threads=limits.threads,
            pretrained=kit.pretrained_backbone_problem() is None,
            workdir=scratch / "train",
            onnx_path=iteration.model_dir / "model.onnx",
            model_id=iteration.id,
            should_stop=self._should_stop,
        )
        (iteration.model_dir / "labels.json").write_text(json.dumps(list(iteration.labels)) + "\n", "utf-8")
        self._write_info(iteration.model_dir, {"image_size": side, "input_side": input_side(limits)})

    def _answers(self, model: LoadedModel) -> list[Any]:
        from multicloud_cv.emulation.serving import decode_rgb

        answers: list[Any] = []
        side = input_side(self.limits)
        for image in self.iteration.snapshot:
            body = image.path.read_bytes()
            if self.iteration.task == "detection":
                answers.append(detect(model, decode_rgb(body), side))
            else:
                answers.append(model.classify(body))
        return answers


# ------------------------------------------------------------------------------------------ performance


def _average_precision(ranked_hits: Sequence[bool], positives: int) -> float:
    """Non-interpolated average precision of hits ranked by score (0 when there are no positives)."""
    if positives <= 0:
        return 0.0
    hits = 0
    total = 0.0
    for rank, hit in enumerate(ranked_hits, start=1):
        if hit:
            hits += 1
            total += hits / rank
    return total / positives


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _match(
    detections: list[tuple[int, float, tuple[float, float, float, float]]],
    truths: dict[int, list[tuple[float, float, float, float]]],
    overlap: float,
) -> list[bool]:
    """Greedy matching, most confident first: whether each detection (image, score, box) hits a new truth."""
    used: set[tuple[int, int]] = set()
    hits = []
    for image, _score, box in sorted(detections, key=lambda d: -d[1]):
        best, best_iou = -1, overlap
        for k, truth in enumerate(truths.get(image, [])):
            value = _iou(box, truth)
            if (image, k) not in used and value >= best_iou:
                best, best_iou = k, value
        if best >= 0:
            used.add((image, best))
        hits.append(best >= 0)
    return hits


def performance(iteration: Iteration, threshold: float, overlap: float) -> dict[str, Any]:
    """IterationPerformance of a completed iteration at ``threshold`` (and ``overlap`` IoU for detection)."""
    per_tag: list[dict[str, Any]] = []
    total_tp = total_fp = total_fn = 0
    for c, (tag_id, name) in enumerate(zip(iteration.tag_ids, iteration.labels, strict=True)):
        ranked: list[bool]
        if iteration.task == "detection":
            truths: dict[int, list[tuple[float, float, float, float]]] = {}
            for i, image in enumerate(iteration.snapshot):
                truths[i] = [
                    (r["left"], r["top"], r["left"] + r["width"], r["top"] + r["height"])
                    for r in image.regions
                    if r["tagId"] == tag_id
                ]
            positives = sum(len(v) for v in truths.values())
            found = [
                (i, score, (x0, y0, x1, y1))
                for i, rows in enumerate(iteration.scores)
                for label, score, x0, y0, x1, y1 in rows
                if label == c
            ]
            ranked = _match(found, truths, overlap)
            kept = _match([d for d in found if d[1] >= threshold], truths, overlap)
            tp = sum(kept)
            fp = len(kept) - tp
            fn = positives - tp
        else:
            pairs = zip(iteration.scores, iteration.snapshot, strict=True)
            rows = [(float(scores[c]), tag_id in image.tag_ids) for scores, image in pairs]
            rows.sort(key=lambda r: -r[0])
            ranked = [truth for _, truth in rows]
            positives = sum(ranked)
            tp = sum(1 for score, truth in rows if score >= threshold and truth)
            fp = sum(1 for score, truth in rows if score >= threshold and not truth)
            fn = positives - tp
        total_tp, total_fp, total_fn = total_tp + tp, total_fp + fp, total_fn + fn
        per_tag.append(
            {
                "id": tag_id,
                "name": name,
                "precision": tp / (tp + fp) if tp + fp else 0.0,
                "precisionStdDeviation": 0.0,
                "recall": tp / (tp + fn) if tp + fn else 0.0,
                "recallStdDeviation": 0.0,
                "averagePrecision": _average_precision(ranked, positives),
            }
        )
    return {
        "perTagPerformance": per_tag,
        "precision": total_tp / (total_tp + total_fp) if total_tp + total_fp else 0.0,
        "precisionStdDeviation": 0.0,
        "recall": total_tp / (total_tp + total_fn) if total_tp + total_fn else 0.0,
        "recallStdDeviation": 0.0,
        "averagePrecision": sum(float(t["averagePrecision"]) for t in per_tag) / len(per_tag) if per_tag else 0.0,
    }


__all__ = ["IterationRunner", "TrainingImage", "detect", "input_side", "performance"]
