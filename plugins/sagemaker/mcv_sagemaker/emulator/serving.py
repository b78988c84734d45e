"""The built-in algorithms' inference containers: a model.tar.gz loaded with onnxruntime, answering as they do.

Contracts (cloud-apis.md 1.4, 1.6, 1.8):

* Request content types ``image/jpeg``, ``image/png`` and ``application/x-image`` (any image Pillow reads);
  one image per request.
* image-classification answers ``{"prediction": [p_0, ..., p_{n-1}]}`` (softmax probabilities, or independent
  sigmoid probabilities for a multi-label model); object-detection answers ``{"prediction": [[class_id,
  score, xmin, ymin, xmax, ymax], ...]}`` with coordinates normalised to 0..1, highest score first.
* ``Accept: application/jsonlines`` gives the same JSON object on one line (newline-terminated); object
  detection also takes ``application/json;annotation=1`` (pixels, ``{"image_size": [...], "annotations":
  [{class_id, score, left, top, width, height}]}``).
* A payload the container cannot use is a :class:`ModelFailure` (HTTP status from the container, message in
  its words); the runtime wraps it as ``ModelError`` (HTTP 424) like the service.
* Loading (:func:`load_model`) downloads ``ModelDataUrl``, unpacks it (members with absolute or ``..``
  paths refused) and reads ``emulator.json``; anything wrong is a :class:`LoadFailure` whose reason is the
  service's endpoint text ("The primary container for production variant <variant> did not pass the ping
  health check. Please check CloudWatch logs for this endpoint.") or, for a missing object, "Failed to
  download model data(bucket: b, key: k). ...".

Models are served by the shared :class:`multicloud_cv.emulation.serving.LoadedModel` (the local provider's
:class:`~mcv_local.serving.session.OnnxModel` for classification, its ``OnnxDetector`` for detection;
neither imports torch); archives are unpacked by :func:`multicloud_cv.emulation.serving.safe_extract`.
"""

from __future__ import annotations

import json
import logging
import shutil
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from mcv_sagemaker.emulator.rules import IMAGE_CLASSIFICATION, OBJECT_DETECTION
from multicloud_cv.emulation.aws import S3, split_uri
from multicloud_cv.emulation.serving import ImageDecodeError, LoadedModel, decode_rgb, safe_extract

log = logging.getLogger(__name__)

REQUEST_TYPES = ("image/jpeg", "image/png", "application/x-image")
JSON = "application/json"
JSONLINES = "application/jsonlines"
DETECTION_SCORE_THRESHOLD = 0.05


class ModelFailure(Exception):
    """The container refused a payload: ``status`` (its HTTP status) and ``message`` (its words)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class LoadFailure(Exception):
    """The model could not be loaded: ``reason`` is the service's FailureReason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def ping_failure(variant: str) -> str:
    """The service's FailureReason for a container that does not come up."""
    return (
        f"The primary container for production variant {variant} did not pass the ping health check. "
        "Please check CloudWatch logs for this endpoint."
    )


def _base(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


class ServedModel:
    """A loaded model of one built-in algorithm."""

    def __init__(self, model_dir: Path, info: dict[str, Any], threads: int = 1) -> None:
        self.model_dir = model_dir
        self.info = info
        self.algorithm = str(info["algorithm"])
        self.classes = [str(c) for c in info.get("classes", [])]
        task = "detection" if self.algorithm == OBJECT_DETECTION else str(info.get("task") or "classification")
        self.model = LoadedModel(model_dir, task, threads=threads)

    def answer(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        """``(response body, response content type)`` for one request; :class:`ModelFailure` otherwise."""
        kind = _base(content_type or "")
        if kind not in REQUEST_TYPES:
            raise ModelFailure(
                415,
                f"Content type {content_type or '(none)'} is not supported by this algorithm; send one of "
                f"{', '.join(REQUEST_TYPES)}.",
            )
        wanted = _base(accept or JSON) if accept and accept.strip() != "*/*" else JSON
        annotation = self.algorithm == OBJECT_DETECTION and "annotation=1" in (accept or "").replace(" ", "")
        if wanted not in (JSON, JSONLINES):
            raise ModelFailure(406, f"Accept type {accept} is not supported; use {JSON} or {JSONLINES}.")
        classify = self.algorithm == IMAGE_CLASSIFICATION
        payload = self._classify(body) if classify else self._detect(body, annotation)
        if wanted == JSONLINES:
            return (json.dumps(payload) + "\n").encode(), JSONLINES
        return json.dumps(payload).encode(), JSON if not annotation else accept

    def _classify(self, body: bytes) -> dict[str, Any]:
        try:
            scores = self.model.classify(body)
        except ImageDecodeError as exc:
            raise ModelFailure(400, f"Unable to decode the input image: {exc}") from exc
        return {"prediction": scores}

    def _detect(self, body: bytes, annotation: bool) -> dict[str, Any]:
        try:
            pixels = decode_rgb(body)
        except ImageDecodeError as exc:
            raise ModelFailure(400, f"Unable to decode the input image: {exc}") from exc
        height, width = pixels.shape[:2]
        found = self.model.detect(pixels, DETECTION_SCORE_THRESHOLD)
        if annotation:
            return {
                "image_size": [{"width": int(width), "height": int(height), "depth": 3}],
                "annotations": [
                    {
                        "class_id": int(label),
                        "score": float(score),
                        "left": round(x0 * width, 2),
                        "top": round(y0 * height, 2),
                        "width": round((x1 - x0) * width, 2),
                        "height": round((y1 - y0) * height, 2),
                    }
                    for label, score, x0, y0, x1, y1 in found
                ],
            }
        return {"prediction": [[float(label), float(score), x0, y0, x1, y1] for label, score, x0, y0, x1, y1 in found]}


def load_model(
    container: dict[str, Any], s3: S3, target: Path, variant: str, region: str, threads: int = 1
) -> ServedModel:
    """Download, unpack and load a model for ``container`` (its ``Image`` and ``ModelDataUrl``)."""
    from botocore.exceptions import ClientError

    from mcv_sagemaker.emulator.rules import algorithm_of_image

    url = str(container.get("ModelDataUrl") or "")
    if not url:
        raise LoadFailure(ping_failure(variant), "the model has no ModelDataUrl")
    try:
        bucket, key = split_uri(url)
    except ValueError as exc:
        raise LoadFailure(ping_failure(variant), str(exc)) from exc
    try:
        data = s3.get(bucket, key)
    except ClientError as exc:
        raise LoadFailure(
            f"Failed to download model data(bucket: {bucket}, key: {key}). Please ensure that there is an object "
            "located at the URL and that the role passed to CreateModel has permissions to download the model.",
            str(exc),
        ) from exc
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    try:
        safe_extract(data, target)
        info = json.loads((target / "emulator.json").read_text(encoding="utf-8"))
    except (tarfile.TarError, OSError, ValueError, EOFError) as exc:
        raise LoadFailure(ping_failure(variant), f"{url} is not a model.tar.gz made by a training job: {exc}") from exc
    try:
        image_algorithm = algorithm_of_image(str(container.get("Image") or ""), region)
    except Exception as exc:
        raise LoadFailure(ping_failure(variant), f"inference image: {exc}") from exc
    if info.get("algorithm") != image_algorithm:
        raise LoadFailure(
            ping_failure(variant),
            f"the model was trained by {info.get('algorithm')!r} but the container image is {image_algorithm!r}",
        )
    try:
        return ServedModel(target, info, threads=threads)
    except Exception as exc:  # onnxruntime and the loaders raise their own types
        raise LoadFailure(ping_failure(variant), f"the model does not load: {exc}") from exc


def output_key(input_prefix: str, key: str) -> str:
    """A transform output's key under the output path: the input key relative to the input prefix, + ``.out``.

    A prefix ending in ``/`` (or followed by ``/`` in the key) is a folder; otherwise the key is taken
    relative to the prefix's parent folder (``in/x`` and ``in/x.jpg`` give ``x.jpg.out``).
    """
    rest = key[len(input_prefix) :] if key.startswith(input_prefix) else None
    if rest is not None and (input_prefix.endswith("/") or rest.startswith("/")):
        relative = rest.lstrip("/")
    elif "/" in input_prefix:
        relative = key[len(input_prefix.rsplit("/", 1)[0]) + 1 :]
    else:
        relative = key
    return (relative or PurePosixPath(key).name) + ".out"
