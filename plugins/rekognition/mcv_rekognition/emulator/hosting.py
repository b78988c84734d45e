"""Running a model version in the emulator: start, stop, delete, and DetectCustomLabels' real predictions.

* StartProjectVersion: ``STARTING`` -> ``RUNNING`` once the trained model is loaded with onnxruntime (at
  least ``pace`` seconds), or ``FAILED`` when it does not load. StopProjectVersion: ``STOPPING`` ->
  ``STOPPED`` after ``pace`` (a stop during STARTING wins: the model never runs). DeleteProjectVersion:
  ``DELETING`` -> gone after ``pace``, its files removed. DeleteProject and DeleteDataset walk
  ``DELETING`` / ``DELETE_IN_PROGRESS`` the same way (:meth:`Hosting.later`).
* :func:`custom_labels` turns the model's answer into ``CustomLabels`` (BC ``DetectCustomLabels``;
  cloud-apis.md 2 and 7): ``Name``, ``Confidence`` as a percentage (0..100), and for a localization model
  ``Geometry.BoundingBox`` {``Width``, ``Height``, ``Left``, ``Top``} as ratios of the image size (clipped
  to the image; a box with no area left is not answered); labels
  below ``MinConfidence`` are left out, and without ``MinConfidence`` each label is filtered at its assumed
  threshold from training ("If you don't specify a value for MinConfidence, DetectCustomLabels returns
  labels based on the assumed threshold of each label", BC); sorted by confidence, highest first, cut to
  ``MaxResults``. An image-level model answers every label that passes (several labels can).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

from mcv_rekognition.emulator.store import Version
from multicloud_cv.emulation.serving import LoadedModel, decode_rgb

log = logging.getLogger(__name__)

DETECTION_FLOOR = 0.05
"""The exported detector's own score floor: lower MinConfidence values cannot bring back more boxes."""


def pause(seconds: float, closing: threading.Event) -> bool:
    """Wait ``seconds``; True when the emulator is closing."""
    return closing.wait(max(0.0, seconds))


class Hosting:
    """Starts, stops and deletes model versions in background threads (``start_thread`` runs them)."""

    def __init__(
        self, closing: threading.Event, threads: int, start_thread: Callable[[str, Callable[[], None]], Any]
    ) -> None:
        self.closing = closing
        self.threads = threads
        self._start_thread = start_thread

    def start(self, version: Version, pace: float) -> None:
        """Walk STARTING -> RUNNING in at least ``pace`` seconds (the caller has set STARTING and bumped the
        generation)."""
        generation = version.generation

        def run() -> None:
            began = time.monotonic()
            try:
                task = version.task or "classification"
                model = LoadedModel(version.model_dir, task, threads=self.threads)
            except Exception as exc:  # onnxruntime and the loaders raise their own types
                log.warning("model %s does not load: %s", version.name, exc)
                with version.lock:
                    if version.generation == generation and version.status == "STARTING":
                        version.set_status("FAILED", f"The model failed to start: {exc}")
                return
            if pause(pace - (time.monotonic() - began), self.closing):
                return
            with version.lock:
                if version.generation == generation and version.status == "STARTING":
                    version.served = model
                    version.set_status("RUNNING")

        self._start_thread(f"rekognition-start-{version.name}", run)

    def stop(self, version: Version, pace: float) -> None:
        """Walk STOPPING -> STOPPED in ``pace`` seconds (the caller has set STOPPING and bumped the generation)."""
        generation = version.generation

        def run() -> None:
            if pause(pace, self.closing):
                return
            with version.lock:
                if version.generation == generation and version.status == "STOPPING":
                    version.served = None
                    version.set_status("STOPPED")

        self._start_thread(f"rekognition-stop-{version.name}", run)

    def later(self, name: str, pace: float, action: Callable[[], None]) -> None:
        """Run ``action`` after ``pace`` seconds (deletions), unless the emulator closes first."""

        def run() -> None:
            if not pause(pace, self.closing):
                action()

        self._start_thread(name, run)

    def delete_files(self, version: Version) -> None:
        """Forget a deleted version's model files."""
        with version.lock:
            version.served = None
        shutil.rmtree(version.workdir, ignore_errors=True)


def custom_labels(
    version: Version, model: LoadedModel, body: bytes, min_confidence: float | None, max_results: int | None
) -> list[dict[str, Any]]:
    """The ``CustomLabels`` of one image (see the module docstring)."""
    classes = version.classes

    def floor(name: str) -> float:
        if min_confidence is not None:
            return float(min_confidence)
        return 100.0 * float(version.thresholds.get(name, 0.5))

    labels: list[dict[str, Any]] = []
    if model.task == "detection":
        pixels = decode_rgb(body)
        lowest = min([floor(name) for name in classes] or [0.0]) / 100.0
        for label, score, x0, y0, x1, y1 in model.detect(pixels, max(DETECTION_FLOOR, min(lowest, 0.999))):
            if not 0 <= label < len(classes):
                continue
            name = classes[label]
            confidence = 100.0 * score
            x0, y0, x1, y1 = (min(1.0, max(0.0, v)) for v in (x0, y0, x1, y1))
            if confidence < floor(name) or x1 <= x0 or y1 <= y0:
                continue  # below the label's floor, or a box with no area left inside the image
            box = {"Width": x1 - x0, "Height": y1 - y0, "Left": x0, "Top": y0}
            labels.append({"Name": name, "Confidence": confidence, "Geometry": {"BoundingBox": box}})
    else:
        for index, score in enumerate(model.classify(body)):
            if index >= len(classes):
                break
            confidence = 100.0 * score
            if confidence >= floor(classes[index]):
                labels.append({"Name": classes[index], "Confidence": confidence})
    labels.sort(key=lambda item: item["Confidence"], reverse=True)
    if max_results is not None:
        labels = labels[:max_results]
    return labels
