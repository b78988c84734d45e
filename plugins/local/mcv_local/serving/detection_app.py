"""The HTTP app for a detection model: same routes and error contract as the classification app.

``POST /v1/predict`` takes the raw image bytes; query ``threshold`` (score threshold, default
0.5) and ``top_k`` (maximum detections, default 100) are passed to the ONNX graph, whose NMS
runs inside the model. The answer is a shared-schema ``Prediction`` dict with ``detections``
(class name and index, confidence, box normalised to the image). The exported graph takes one
image at a time, so requests are not micro-batched: each runs in a worker thread
(onnxruntime sessions are safe to call from several threads). No torch is imported here.
"""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from mcv_local.engine.detection_export import OnnxDetector
from mcv_local.serving.errors import InvalidImage, ModelLoadError

log = logging.getLogger(__name__)

PROVIDER = "local"
DEFAULT_SCORE_THRESHOLD = 0.5
DEFAULT_MAX_DETECTIONS = 100


def model_task(model_dir: Path) -> str:
    """``mcv.task`` from the metadata of ``model_dir/model.onnx`` (``""`` when unreadable)."""
    import onnxruntime as ort

    path = Path(model_dir) / "model.onnx"
    if not path.is_file():
        return ""
    try:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return str(session.get_modelmeta().custom_metadata_map.get("mcv.task", ""))
    except Exception:  # onnxruntime raises its own types; the real loader reports the problem
        return ""


def load_detector(model_dir: Path, intra_op_threads: int | None = None) -> OnnxDetector:
    """Load ``model_dir/model.onnx`` as a detector; :class:`ModelLoadError` when it is not one."""
    from mcv_local.engine.errors import EngineError

    try:
        return OnnxDetector(Path(model_dir) / "model.onnx", intra_op_threads=intra_op_threads)
    except (EngineError, OSError) as exc:
        raise ModelLoadError(f"cannot load the detection model in {model_dir}: {exc}") from exc


def decode_rgb(data: bytes) -> np.ndarray:
    """Encoded image bytes to uint8 HxWx3 RGB; :class:`InvalidImage` naming why not."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"the body is not a decodable image ({exc})") from exc


def parse_detection_query(params: Any) -> tuple[float, int]:
    """``threshold`` in [0, 1] and ``top_k`` >= 1 from the query; ValueError with the rule otherwise."""
    raw_threshold, raw_top_k = params.get("threshold"), params.get("top_k")
    try:
        threshold = DEFAULT_SCORE_THRESHOLD if raw_threshold is None else float(raw_threshold)
    except ValueError:
        raise ValueError(f"threshold must be a number between 0 and 1, got {raw_threshold!r}") from None
    try:
        top_k = DEFAULT_MAX_DETECTIONS if raw_top_k is None else int(raw_top_k)
    except ValueError:
        raise ValueError(f"top_k must be an integer >= 1, got {raw_top_k!r}") from None
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    if top_k < 1:
        raise ValueError(f"top_k must be an integer >= 1, got {top_k}")
    return threshold, top_k


def detect_result(detector: OnnxDetector, data: bytes, threshold: float, top_k: int, start: float) -> dict[str, Any]:
    """Decode, detect and format one image as a shared ``Prediction`` dict."""
    found = detector.detect(decode_rgb(data), threshold, top_k)
    detections = [
        {
            "name": detector.labels[label],
            "index": int(label),
            "confidence": min(1.0, max(0.0, float(score))),
            "box": {
                "x_min": min(1.0, max(0.0, float(x0))),
                "y_min": min(1.0, max(0.0, float(y0))),
                "x_max": min(1.0, max(0.0, float(x1))),
                "y_max": min(1.0, max(0.0, float(y1))),
            },
        }
        for label, score, x0, y0, x1, y1 in found
    ]
    return {
        "provider": PROVIDER,
        "model_id": detector.metadata.get("mcv.model_id", ""),
        "task": "detection",
        "labels": [],
        "detections": detections,
        "latency_ms": round((time.perf_counter() - start) * 1000.0, 3),
    }


def create_detection_app(detector: OnnxDetector, max_body_bytes: int) -> Any:
    """The Starlette app serving ``detector`` (``/v1/predict``, ``/healthz``, ``/v1/metadata``)."""
    from mcv_local.serving.responses import one_model_app

    model_id = detector.metadata.get("mcv.model_id", "")

    def answer(body: bytes, parsed: tuple[float, int], started: float) -> dict[str, Any]:
        threshold, top_k = parsed
        return detect_result(detector, body, threshold, top_k, started)

    return one_model_app(
        answer,
        parse_detection_query,
        {"status": "ok", "model_id": model_id},
        {"task": "detection", "labels": detector.labels, **detector.metadata},
        max_body_bytes,
        state={"detector": detector},
    )
