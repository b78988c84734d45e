"""ONNX export of a trained detector, and a torch-free onnxruntime detector for serving.

Graph contract (see ``docs/notes/detection-spike.md``, Q2):

* ONNX opset 17, ``torch.onnx.export(..., dynamo=False)``; batch 1 only (torchvision's
  transform and post-processing loop over images in Python and tracing unrolls the loop).
* Inputs: ``image`` ``uint8 [1, H, W, 3]`` RGB with dynamic ``H``/``W`` (resize, mean/std
  normalisation, decode and NMS are in the graph); ``score_threshold`` ``float32 []`` and
  ``max_detections`` ``int64 []``, request-time filters that can only narrow the model's own
  limits (``mcv.score_thresh`` / ``mcv.detections_per_img``).
* Outputs: ``boxes`` ``float32 [n, 4]`` in PIXELS of the input image, ``x_min, y_min, x_max,
  y_max``; ``scores`` ``float32 [n]`` sorted highest first; ``labels`` ``int64 [n]``, the
  dataset's class indices (the detector has no background index, see :mod:`.detection`).
* Metadata props (strings): ``mcv.labels`` (JSON list of class names in index order),
  ``mcv.task`` (``detection``), ``mcv.image_size`` (``WxH`` the model was trained at),
  ``mcv.channels`` (``3``), ``mcv.backbone``, ``mcv.model_id``, ``mcv.box_format``
  (``xyxy_pixels``), ``mcv.score_thresh``, ``mcv.detections_per_img``.

This module imports neither torch nor torchvision at import time: :func:`export_detector`
imports them when called, so :class:`OnnxDetector` serves with onnxruntime and numpy only.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import EngineError

if TYPE_CHECKING:
    from torch import nn

OPSET = 17
INPUT_NAMES = ("image", "score_threshold", "max_detections")
OUTPUT_NAMES = ("boxes", "scores", "labels")
BACKBONE_NAME = "fcos_mobilenet_v2"

Detection = tuple[int, float, float, float, float, float]
"""``(class index, score, x_min, y_min, x_max, y_max)`` with the box normalised to 0..1."""


def _served(model: nn.Module) -> nn.Module:
    import torch
    from torch import nn

    class Served(nn.Module):
        """``uint8 [1,H,W,3]``, threshold, cap -> boxes (pixels), scores, labels of one image."""

        def __init__(self, detector: nn.Module) -> None:
            super().__init__()
            self.detector = detector

        def forward(
            self, image: torch.Tensor, score_threshold: torch.Tensor, max_detections: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            x = image[0].permute(2, 0, 1).to(torch.float32) / 255.0
            out = self.detector([x])[0]
            scores = out["scores"]
            rank = torch.arange(scores.shape[0])
            keep = (scores >= score_threshold) & (rank < max_detections)  # scores come sorted, highest first
            return out["boxes"][keep], scores[keep], out["labels"][keep]

    return Served(model).eval()


def export_detector(
    model: nn.Module,
    path: str | Path,
    class_names: list[str],
    image_size: tuple[int, int],
    model_id: str = "",
) -> Path:
    """Write the FCOS ``model`` (from :func:`~.detection.build_detector`) to ``path`` as ONNX.

    ``image_size`` is ``(width, height)``: the shape of the example traced and recorded in
    the metadata (other sizes work: the graph resizes). Exporter warnings are suppressed.
    The file is written atomically and checked with ``onnx.checker``.
    """
    import copy

    import onnx
    import torch

    path = Path(path)
    detector = copy.deepcopy(model).float().cpu().eval()
    head = getattr(detector, "head", None)
    num_classes = getattr(getattr(head, "classification_head", None), "num_classes", None)
    if num_classes is None:
        raise EngineError("export_detector needs an FCOS detector from build_detector")
    if int(num_classes) != len(class_names):
        raise EngineError(f"the detector has {num_classes} classes but {len(class_names)} names were given")
    served = _served(detector)
    width, height = image_size
    example = (
        torch.zeros((1, height, width, 3), dtype=torch.uint8),
        torch.tensor(0.05, dtype=torch.float32),
        torch.tensor(100, dtype=torch.int64),
    )
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings and the legacy-exporter deprecation notice
        torch.onnx.export(
            served,
            example,
            str(tmp),
            dynamo=False,
            opset_version=OPSET,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={
                "image": {1: "height", 2: "width"},
                "boxes": {0: "n"},
                "scores": {0: "n"},
                "labels": {0: "n"},
            },
        )
    try:
        proto = onnx.load(str(tmp))
        props = {
            "mcv.labels": json.dumps(list(class_names)),
            "mcv.task": "detection",
            "mcv.image_size": f"{width}x{height}",
            "mcv.channels": "3",
            "mcv.backbone": BACKBONE_NAME,
            "mcv.model_id": model_id,
            "mcv.box_format": "xyxy_pixels",
            "mcv.score_thresh": str(float(getattr(detector, "score_thresh", 0.0))),
            "mcv.detections_per_img": str(int(getattr(detector, "detections_per_img", 0))),
        }
        onnx.helper.set_model_props(proto, props)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


class OnnxDetector:
    """An exported detector on onnxruntime (no torch): :meth:`detect` one image at a time."""

    def __init__(self, path: str | Path, intra_op_threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if intra_op_threads:
            options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        if self.metadata.get("mcv.task") != "detection":
            raise EngineError(f"{path} is not a detection model (mcv.task={self.metadata.get('mcv.task')!r})")
        self.labels: list[str] = [str(name) for name in json.loads(self.metadata.get("mcv.labels", "[]"))]

    def raw(
        self, image: np.ndarray, score_threshold: float = 0.05, max_detections: int = 100
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The graph's outputs (boxes in pixels, scores, labels) for one ``uint8 HxWx3`` image."""
        pixels = _as_rgb(image)
        feeds: dict[str, Any] = {
            "image": pixels[None],
            "score_threshold": np.asarray(score_threshold, dtype=np.float32),
            "max_detections": np.asarray(max_detections, dtype=np.int64),
        }
        boxes, scores, labels = self.session.run(list(OUTPUT_NAMES), feeds)
        return np.asarray(boxes), np.asarray(scores), np.asarray(labels)

    def detect(self, image: np.ndarray, score_threshold: float = 0.5, max_detections: int = 100) -> list[Detection]:
        """Detections of one ``uint8 HxWx3`` RGB image (greyscale and RGBA are converted),
        highest score first, boxes normalised to 0..1 of the image's width and height."""
        pixels = _as_rgb(image)
        height, width = pixels.shape[:2]
        boxes, scores, labels = self.raw(pixels, score_threshold, max_detections)
        scale = np.array([width, height, width, height], dtype=np.float32)
        normalised = np.clip(boxes.reshape(-1, 4) / scale, 0.0, 1.0)
        order = np.argsort(-scores, kind="stable")
        result: list[Detection] = []
        for i in order:
            x0, y0, x1, y1 = (float(v) for v in normalised[i])
            result.append((int(labels[i]), float(scores[i]), x0, y0, x1, y1))
        return result


def _as_rgb(image: np.ndarray) -> np.ndarray:
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8:
        raise EngineError(f"images must be uint8, not {pixels.dtype}")
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
        raise EngineError(f"images must be HxWx3, not {list(pixels.shape)}")
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    elif pixels.shape[2] == 4:
        pixels = pixels[:, :, :3]
    return np.ascontiguousarray(pixels)
