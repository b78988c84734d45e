"""Load an exported model directory and run it with onnxruntime.

The model contract (written by the local training engine): ``<dir>/model.onnx`` with
one input ``image`` (``uint8 [N, H, W, C]``, dynamic ``N``, normalisation inside the
graph) and one output ``scores`` (``float32 [N, num_classes]``: softmax probabilities
for ``classification``, independent sigmoid probabilities for ``multilabel``), and
string metadata ``mcv.labels`` (JSON list), ``mcv.task``, ``mcv.image_size``,
``mcv.channels``, ``mcv.backbone``, ``mcv.model_id``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from mcv_local.preprocess import decode as _decode_pixels
from mcv_local.serving.errors import InvalidImage, ModelLoadError
from multicloud_cv.workers import usable_cpus

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
INPUT_NAME = "image"
OUTPUT_NAME = "scores"
TASKS = ("classification", "multilabel")
DEFAULT_TOP_K = 5
DEFAULT_THRESHOLD = 0.5
PROVIDER = "local"


def decode_image(data: bytes, image_size: int, channels: int) -> np.ndarray:
    """Decode encoded image bytes into ``uint8 [image_size, image_size, channels]`` pixels.

    Uses the shared :func:`mcv_local.preprocess.decode`, so pixels are exactly those of
    training. Raises :class:`InvalidImage` with a message naming the problem.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidImage(f"expected encoded image bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise InvalidImage("the request body is empty: send the encoded image bytes (JPEG, PNG, ...)")
    try:
        return _decode_pixels(bytes(data), image_size, channels)
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"the image is too large to decode: {exc}") from None
    except UnidentifiedImageError:
        raise InvalidImage(
            f"the {len(data)} bytes sent are not a recognised image format (send JPEG, PNG, BMP, GIF, WebP, TIFF ...)"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated / corrupt data
        raise InvalidImage(f"the image could not be decoded (truncated or corrupt file?): {exc}") from None


class OnnxModel:
    """An exported model directory, loaded once and ready to predict.

    Attributes read from the model's metadata: ``labels`` (class names in index order),
    ``task``, ``image_size``, ``channels``, ``backbone``, ``model_id``, plus
    ``num_classes`` and ``model_dir``.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        intra_op_threads: int | None = None,
        allow_spinning: bool = True,
    ) -> None:
        self.model_dir = Path(model_dir)
        path = self.model_dir / MODEL_FILE
        if not self.model_dir.is_dir():
            raise ModelLoadError(f"model directory {str(self.model_dir)!r} does not exist or is not a directory")
        if not path.is_file():
            raise ModelLoadError(
                f"no {MODEL_FILE} in {str(self.model_dir)!r}: point --model-dir at a directory exported by training"
            )
        import onnxruntime as ort

        threads = intra_op_threads if intra_op_threads is not None else usable_cpus()
        self.intra_op_threads = max(1, int(threads))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"{str(path)!r} is not a loadable ONNX model: {exc}") from None
        self._check_signature(path)
        self._read_metadata(path)
        log.info(
            "loaded model %s (%s, %d classes, %dx%dx%d, %d intra-op threads) from %s",
            self.model_id,
            self.task,
            self.num_classes,
            self.image_size,
            self.image_size,
            self.channels,
            self.intra_op_threads,
            path,
        )

    # -- loading -----------------------------------------------------------------
    def _check_signature(self, path: Path) -> None:
        inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
            names = [i.name for i in inputs]
            raise ModelLoadError(f"{str(path)!r} must have exactly one input named {INPUT_NAME!r}, has {names}")
        if inputs[0].type != "tensor(uint8)":
            raise ModelLoadError(f"input {INPUT_NAME!r} of {str(path)!r} must be uint8, is {inputs[0].type}")
        if len(inputs[0].shape) != 4:
            raise ModelLoadError(f"input {INPUT_NAME!r} must be [N, H, W, C], has shape {inputs[0].shape}")
        if not any(o.name == OUTPUT_NAME for o in outputs):
            names = [o.name for o in outputs]
            raise ModelLoadError(f"{str(path)!r} must have an output named {OUTPUT_NAME!r}, has {names}")
        self._input_shape = inputs[0].shape

    def _read_metadata(self, path: Path) -> None:
        props: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        self.metadata = props

        def need(key: str) -> str:
            if key not in props:
                raise ModelLoadError(f"{str(path)!r} lacks the metadata property {key!r}; re-export the model")
            return props[key]

        try:
            labels = json.loads(need("mcv.labels"))
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"metadata 'mcv.labels' of {str(path)!r} is not JSON: {exc}") from None
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            raise ModelLoadError(f"metadata 'mcv.labels' of {str(path)!r} must be a non-empty JSON list of strings")
        task = need("mcv.task")
        if task not in TASKS:
            raise ModelLoadError(f"metadata 'mcv.task' of {str(path)!r} is {task!r}; expected one of {list(TASKS)}")
        try:
            image_size = int(need("mcv.image_size"))
            channels = int(need("mcv.channels"))
        except ValueError as exc:
            raise ModelLoadError(f"metadata image_size/channels of {str(path)!r} are not integers: {exc}") from None
        if channels not in (1, 3):
            raise ModelLoadError(f"metadata 'mcv.channels' of {str(path)!r} is {channels}; expected 1 or 3")
        if image_size < 1:
            raise ModelLoadError(f"metadata 'mcv.image_size' of {str(path)!r} is {image_size}")
        _, h, w, c = self._input_shape
        for name, declared, meta in (("height", h, image_size), ("width", w, image_size), ("channels", c, channels)):
            if isinstance(declared, int) and declared != meta:
                raise ModelLoadError(
                    f"input {name} of {str(path)!r} is {declared} but its metadata says {meta}; re-export the model"
                )
        self.labels: list[str] = labels
        self.task: str = task
        self.image_size: int = image_size
        self.channels: int = channels
        self.backbone: str = props.get("mcv.backbone", "")
        self.model_id: str = props.get("mcv.model_id") or self.model_dir.name
        self.num_classes: int = len(labels)

    # -- prediction ----------------------------------------------------------------
    def metadata_dict(self) -> dict[str, Any]:
        """What ``GET /v1/metadata`` answers."""
        return {
            "provider": PROVIDER,
            "model_id": self.model_id,
            "task": self.task,
            "labels": list(self.labels),
            "image_size": self.image_size,
            "channels": self.channels,
            "backbone": self.backbone,
        }

    def decode(self, data: bytes) -> np.ndarray:
        """Decode one encoded image into this model's input pixels (raises :class:`InvalidImage`)."""
        return decode_image(data, self.image_size, self.channels)

    def predict_pixels(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on ``uint8 [N, H, W, C]`` pixels; returns ``float32 [N, num_classes]`` scores."""
        expected = (self.image_size, self.image_size, self.channels)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.ndim != 4 or tuple(batch.shape[1:]) != expected:
            raise ValueError(
                f"expected pixels of shape [N, {expected[0]}, {expected[1]}, {expected[2]}], got {list(batch.shape)}"
            )
        if batch.dtype != np.uint8:
            raise ValueError(f"expected uint8 pixels, got {batch.dtype}")
        if batch.shape[0] == 0:
            return np.zeros((0, self.num_classes), dtype=np.float32)
        batch = np.ascontiguousarray(batch)
        (scores,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        return scores

    def predict_encoded(self, images: Sequence[bytes]) -> list[np.ndarray]:
        """Decode and score encoded images in one batch; one ``float32 [num_classes]`` row per image."""
        if not images:
            return []
        pixels = np.stack([self.decode(data) for data in images])
        scores = self.predict_pixels(pixels)
        return [scores[i] for i in range(scores.shape[0])]

    def predict(self, data: bytes, *, top_k: int | None = None, threshold: float | None = None) -> dict[str, Any]:
        """Decode, score and format one image: the same dict the HTTP endpoint answers."""
        start = time.perf_counter()
        (scores,) = self.predict_encoded([data])
        return self.to_result(scores, (time.perf_counter() - start) * 1000.0, top_k=top_k, threshold=threshold)

    def to_result(
        self,
        scores: np.ndarray,
        latency_ms: float,
        top_k: int | None = None,
        threshold: float | None = None,
    ) -> dict[str, Any]:
        """Format one row of scores as a shared ``Prediction`` dict.

        ``classification``: the ``top_k`` (default 5) labels by confidence.
        ``multilabel``: every label whose confidence is >= ``threshold`` (default 0.5),
        capped at ``top_k`` when one is given. Labels are sorted by confidence
        descending (ties by index).
        """
        top_k, threshold = check_options(top_k, threshold)
        row = np.asarray(scores, dtype=np.float64).reshape(-1)
        if row.shape[0] != self.num_classes:
            raise ValueError(f"expected {self.num_classes} scores, got {row.shape[0]}")
        row = np.clip(np.nan_to_num(row, nan=0.0), 0.0, 1.0)
        order = np.argsort(-row, kind="stable")
        if self.task == "multilabel":
            limit = threshold if threshold is not None else DEFAULT_THRESHOLD
            chosen = [int(i) for i in order if row[i] >= limit]
            if top_k is not None:
                chosen = chosen[:top_k]
        else:
            chosen = [int(i) for i in order[: (top_k if top_k is not None else DEFAULT_TOP_K)]]
        return {
            "provider": PROVIDER,
            "model_id": self.model_id,
            "task": self.task,
            "labels": [{"name": self.labels[i], "index": i, "confidence": float(row[i])} for i in chosen],
            "detections": [],
            "latency_ms": round(float(latency_ms), 3),
        }


def check_options(top_k: Any, threshold: Any) -> tuple[int | None, float | None]:
    """Validate ``top_k`` (int >= 1) and ``threshold`` (0..1); ``ValueError`` names the bad one."""
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ValueError(f"top_k must be an integer >= 1, got {top_k!r}")
        top_k = int(top_k)
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)):
            raise ValueError(f"threshold must be a number between 0 and 1, got {threshold!r}")
        threshold = float(threshold)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold!r}")
    return top_k, threshold


__all__ = ["DEFAULT_THRESHOLD", "DEFAULT_TOP_K", "OnnxModel", "check_options", "decode_image"]
