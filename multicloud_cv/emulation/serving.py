"""Inference inside an emulator: an exported model folder loaded with onnxruntime, answering image bytes.

* :class:`LoadedModel` loads what :mod:`.training` exported: a classifier (``classification`` or
  ``multilabel``, :class:`mcv_local.serving.session.OnnxModel`) or a detector (``detection``,
  :class:`mcv_local.engine.detection_export.OnnxDetector`); neither imports torch.
  :meth:`LoadedModel.classify` answers class probabilities for encoded image bytes,
  :meth:`LoadedModel.detect` boxes normalised to 0..1, most confident first.
* :func:`decode_rgb` decodes bytes with Pillow; an undecodable payload is an :class:`ImageDecodeError`
  that each emulator words as its service does.
* :func:`safe_extract` unpacks a ``.tar.gz`` model archive, refusing members with absolute or ``..``
  paths, links and devices.

Testing-grade code (see :mod:`multicloud_cv.emulation`): numpy, Pillow, onnxruntime and the local
provider are imported when used.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from multicloud_cv.emulation.training import Found


class ImageDecodeError(Exception):
    """The payload is not an image Pillow can decode."""


def decode_rgb(body: bytes) -> Any:
    """``body`` decoded to an RGB ``numpy`` array ``[height, width, 3]``; :class:`ImageDecodeError` otherwise."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(body)) as opened:
            return np.asarray(opened.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(str(exc)) from exc


def safe_extract(data: bytes, target: Path) -> None:
    """Unpack a tar archive (any compression) into ``target``; ``tarfile.TarError`` for an unsafe member."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for member in tar.getmembers():
            parts = PurePosixPath(member.name).parts
            if member.name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
                raise tarfile.TarError(f"unsafe member {member.name!r}")
        tar.extractall(target, filter="data")


class LoadedModel:
    """An exported model folder ready to answer: ``task`` is ``classification``, ``multilabel`` or ``detection``."""

    def __init__(self, model_dir: Path, task: str, threads: int = 1) -> None:
        self.model_dir = Path(model_dir)
        self.task = task
        if task == "detection":
            from mcv_local.engine.detection_export import OnnxDetector

            self.classifier: Any = None
            self.detector: Any = OnnxDetector(self.model_dir / "model.onnx", intra_op_threads=threads)
        else:
            from mcv_local.serving.session import OnnxModel

            self.classifier = OnnxModel(self.model_dir, intra_op_threads=threads)
            self.detector = None

    def classify(self, body: bytes) -> list[float]:
        """Class probabilities for one encoded image; :class:`ImageDecodeError` when it does not decode."""
        from mcv_local.serving.errors import InvalidImage

        try:
            (scores,) = self.classifier.predict_encoded([body])
        except InvalidImage as exc:
            raise ImageDecodeError(str(exc)) from exc
        return [float(v) for v in scores]

    def detect(self, pixels: Any, score_threshold: float) -> list[Found]:
        """Detections on an RGB array (from :func:`decode_rgb`) at or above ``score_threshold``."""
        found = self.detector.detect(pixels, score_threshold=score_threshold)
        return [(int(a), float(b), float(c), float(d), float(e), float(f)) for a, b, c, d, e, f in found]
