"""The prediction server of the custom route's serving container: ``python -m mcv_vertex.serving``.

Vertex AI's custom-container contract: the model's ``artifact_uri`` arrives as ``AIP_STORAGE_URI`` (a ``gs://``
folder, downloaded at start; ``--model-dir`` names a local folder instead), the server listens on
``AIP_HTTP_PORT`` (default 8080) and answers ``GET AIP_HEALTH_ROUTE`` (default ``/health``: 200 once the model is
loaded - the model loads before the port opens) and ``POST AIP_PREDICT_ROUTE`` (default ``/predict``)::

    {"instances": [{"content": "<base64 image bytes, or a gs:// URI>", "mimeType": "image/jpeg"}, ...],
     "parameters": {"confidenceThreshold": 0.5, "maxPredictions": 5}}
    -> 200 {"predictions": [...]}, one per instance, in AutoML's image formats:
       classification / multilabel  {"ids": ["2", "0"], "displayNames": ["cat", "dog"], "confidences": [0.9, 0.1]}
       detection                    the same plus "bboxes": [[xMin, xMax, yMin, yMax], ...]   (relative; x,x,y,y!)
    -> 400 {"error": "..."} for a bad body, instance or parameter; 500 {"error": "..."} for a failure of ours.

Predictions are sorted by confidence, highest first; ``ids`` are class indices as strings. Parameters
(``confidenceThreshold`` 0..1, default :data:`DEFAULT_CONFIDENCE_THRESHOLD`; ``maxPredictions`` >= 1, default
:data:`DEFAULT_MAX_PREDICTIONS`, the AutoML prediction-params schema defaults) keep the labels / boxes whose
confidence is at least the threshold, at most ``maxPredictions`` of them; other parameters are ignored.

:func:`predict_instances` is that computation in-process (the Vertex emulator calls it for deployed custom models,
so it answers exactly what the container would). Models are the local engine's ONNX exports
(:mod:`mcv_vertex.task`): classifiers load with :class:`mcv_local.serving.session.OnnxModel`, detectors with
:class:`mcv_local.engine.detection_export.OnnxDetector`; neither imports torch. The server listens on 127.0.0.1
unless ``--host`` says otherwise (the container's command passes ``--host 0.0.0.0``).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import logging
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from multicloud_cv.errors import BadInput, InvalidImage, NotFound

log = logging.getLogger("mcv_vertex.serving")

DEFAULT_PORT = 8080
DEFAULT_HEALTH_ROUTE = "/health"
DEFAULT_PREDICT_ROUTE = "/predict"
DEFAULT_CONFIDENCE_THRESHOLD = 0.0
DEFAULT_MAX_PREDICTIONS = 10
MODEL_FILE = "model.onnx"
TASKS = ("classification", "multilabel", "detection")


class BadInstance(BadInput):
    """An instance or parameter the server cannot use (HTTP 400)."""


class VertexModel:
    """An exported model folder, loaded: ``task``, ``labels``, and ``classifier`` (an ``OnnxModel``) or
    ``detector`` (an ``OnnxDetector``)."""

    def __init__(self, model_dir: str | Path, threads: int | None = None) -> None:
        self.model_dir = Path(model_dir)
        path = self.model_dir / MODEL_FILE
        if not path.is_file():
            raise NotFound(f"no {MODEL_FILE} in {self.model_dir}: is this a multicloud-cv model folder?")
        from multicloud_cv.workers import usable_cpus

        threads = threads or usable_cpus()
        self.task = _onnx_task(path)
        self.classifier: Any = None
        self.detector: Any = None
        if self.task == "detection":
            from mcv_local.engine.detection_export import OnnxDetector

            self.detector = OnnxDetector(path, intra_op_threads=threads)
            self.labels: list[str] = list(self.detector.labels)
        else:
            from mcv_local.serving.errors import ModelLoadError
            from mcv_local.serving.session import OnnxModel

            try:
                self.classifier = OnnxModel(self.model_dir, intra_op_threads=threads)
            except ModelLoadError as exc:
                raise BadInput(str(exc)) from exc
            self.labels = list(self.classifier.labels)
        log.info("loaded %s model (%d labels) from %s", self.task, len(self.labels), self.model_dir)


def _onnx_task(path: Path) -> str:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types
        raise BadInput(f"{path} is not a loadable ONNX model: {exc}") from None
    task = dict(session.get_modelmeta().custom_metadata_map).get("mcv.task", "")
    if task not in TASKS:
        raise BadInput(f"{path} has mcv.task={task!r}; expected one of {', '.join(TASKS)} (a multicloud-cv export)")
    return task


def load_model(source: str | Path, workdir: Path | None = None, threads: int | None = None) -> VertexModel:
    """Load a model folder: local, or a ``gs://`` prefix downloaded into ``workdir`` (default: a new temporary
    folder that lives as long as the process)."""
    text = str(source)
    if text.startswith("gs://"):
        from mcv_vertex.task import download_folder

        target = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="mcv-vertex-model-"))
        log.info("downloading %s to %s", text, target)
        download_folder(text, target)
        return VertexModel(target, threads=threads)
    return VertexModel(Path(text[len("file://") :] if text.startswith("file://") else text), threads=threads)


_LOADED: dict[tuple[str, float], VertexModel] = {}


def _as_model(model: Any) -> Any:
    if isinstance(model, str | Path):
        path = Path(str(model)).resolve()
        key = (str(path), (path / MODEL_FILE).stat().st_mtime if (path / MODEL_FILE).exists() else 0.0)
        if key not in _LOADED:
            _LOADED[key] = load_model(path)
        return _LOADED[key]
    if getattr(model, "task", None) not in TASKS:
        raise TypeError(f"expected a model folder or a loaded model with a task, got {type(model).__name__}")
    return model


def check_parameters(parameters: Mapping[str, Any] | None) -> tuple[float, int]:
    """``(confidenceThreshold, maxPredictions)`` with defaults; :class:`BadInstance` for bad values."""
    parameters = parameters or {}
    if not isinstance(parameters, Mapping):
        raise BadInstance(f"parameters must be an object, got {type(parameters).__name__}")
    threshold = parameters.get("confidenceThreshold", DEFAULT_CONFIDENCE_THRESHOLD)
    if threshold is None:
        threshold = DEFAULT_CONFIDENCE_THRESHOLD
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 <= float(threshold) <= 1.0:
        raise BadInstance(f"parameters.confidenceThreshold must be a number between 0 and 1, got {threshold!r}")
    limit = parameters.get("maxPredictions", DEFAULT_MAX_PREDICTIONS)
    if limit is None:
        limit = DEFAULT_MAX_PREDICTIONS
    if isinstance(limit, float) and limit.is_integer():
        limit = int(limit)
    if isinstance(limit, str) and limit.strip().isdigit():  # proto int64 fields arrive as JSON strings
        limit = int(limit)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise BadInstance(f"parameters.maxPredictions must be an integer >= 1, got {limit!r}")
    return float(threshold), int(limit)


def instance_bytes(instance: Any, number: int) -> bytes:
    """The encoded image of one instance: ``content`` base64 (or a ``gs://`` URI, read from Cloud Storage);
    ``{"b64": ...}`` objects are accepted too."""
    where = f"instance {number}"
    if not isinstance(instance, Mapping):
        raise BadInstance(f"{where}: expected an object with 'content', got {type(instance).__name__}")
    content = instance.get("content")
    if isinstance(content, Mapping) and "b64" in content:
        content = content["b64"]
    if content is None and isinstance(instance.get("b64"), str):
        content = instance["b64"]
    if not isinstance(content, str) or not content.strip():
        raise BadInstance(f"{where}: 'content' (the base64-encoded image) is missing or empty")
    content = content.strip()
    if content.startswith("gs://"):
        from mcv_vertex.task import read_uri

        try:
            return read_uri(content)
        except NotFound as exc:
            raise BadInstance(f"{where}: {exc}") from None
    normalised = "".join(content.split()).replace("-", "+").replace("_", "/")  # URL-safe and unpadded too
    try:
        data = base64.b64decode(normalised + "=" * (-len(normalised) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadInstance(f"{where}: 'content' is not valid base64") from None
    if not data:
        raise BadInstance(f"{where}: 'content' decodes to no bytes")
    return data


def _decode_rgb(data: bytes, where: str) -> Any:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            return np.ascontiguousarray(np.asarray(opened.convert("RGB")))
    except UnidentifiedImageError:
        raise BadInstance(f"{where}: the {len(data)} bytes are not a recognised image (send JPEG, PNG, ...)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise BadInstance(f"{where}: the image could not be decoded: {exc}") from None


def _classify(model: Any, images: list[bytes], threshold: float, limit: int) -> list[dict[str, Any]]:
    import numpy as np

    from mcv_local.serving.errors import InvalidImage as ServingInvalidImage

    classifier = model.classifier
    pixels = []
    for number, data in enumerate(images):
        try:
            pixels.append(classifier.decode(data))
        except ServingInvalidImage as exc:
            raise BadInstance(f"instance {number}: {exc}") from None
    scores = classifier.predict_pixels(np.stack(pixels)) if pixels else np.zeros((0, 0))
    labels = list(classifier.labels)
    answers = []
    for row in scores:
        values = np.clip(np.nan_to_num(np.asarray(row, dtype=np.float64), nan=0.0), 0.0, 1.0)
        order = [int(i) for i in np.argsort(-values, kind="stable") if values[i] >= threshold][:limit]
        answers.append(
            {
                "ids": [str(i) for i in order],
                "displayNames": [labels[i] for i in order],
                "confidences": [float(values[i]) for i in order],
            }
        )
    return answers


def _detect(model: Any, images: list[bytes], threshold: float, limit: int) -> list[dict[str, Any]]:
    detector = model.detector
    labels = list(detector.labels)
    answers = []
    for number, data in enumerate(images):
        pixels = _decode_rgb(data, f"instance {number}")
        found = detector.detect(pixels, score_threshold=threshold, max_detections=limit)
        found = sorted(found, key=lambda row: -row[1])[:limit]
        found = [row for row in found if 0 <= int(row[0]) < len(labels) and float(row[1]) >= threshold]
        answers.append(
            {
                "ids": [str(int(row[0])) for row in found],
                "displayNames": [labels[int(row[0])] for row in found],
                "confidences": [float(row[1]) for row in found],
                "bboxes": [[float(x0), float(x1), float(y0), float(y1)] for _, _, x0, y0, x1, y1 in found],
            }
        )
    return answers


def predict_instances(
    model: VertexModel | Any | str | Path,
    instances: Sequence[Any],
    parameters: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One AutoML-format prediction per instance (see the module docstring).

    ``model`` is a :class:`VertexModel`, a model folder (loaded once and cached), or any loaded model with the same
    ``task`` / ``classifier`` / ``detector`` attributes (the emulation kit's ``LoadedModel``). Raises
    :class:`BadInstance` (a :class:`~multicloud_cv.errors.BadInput`) naming the first bad instance or parameter.
    """
    threshold, limit = check_parameters(parameters)
    if isinstance(instances, str | bytes) or not isinstance(instances, Sequence):
        raise BadInstance(f"instances must be a list, got {type(instances).__name__}")
    images = [instance_bytes(instance, number) for number, instance in enumerate(instances)]
    loaded = _as_model(model)
    if not images:
        return []
    if loaded.task == "detection":
        return _detect(loaded, images, threshold, limit)
    return _classify(loaded, images, threshold, limit)


# ------------------------------------------------------------------------------------------------ the server


def create_app(
    model: VertexModel | Any,
    health_route: str = DEFAULT_HEALTH_ROUTE,
    predict_route: str = DEFAULT_PREDICT_ROUTE,
) -> Any:
    """The Starlette application serving a loaded ``model`` on the two routes."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "task": model.task})

    async def predict(request: Request) -> JSONResponse:
        import json

        body = await request.body()
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return JSONResponse({"error": f"the request body is not JSON: {exc}"}, status_code=400)
        if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
            return JSONResponse({"error": "the request body needs an 'instances' list"}, status_code=400)
        try:
            predictions = await run_in_threadpool(
                predict_instances, model, payload["instances"], payload.get("parameters")
            )
        except (BadInput, InvalidImage) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except Exception as exc:  # a failure of ours: 500 with the reason, logged with its traceback
            log.exception("prediction failed")
            return JSONResponse({"error": f"prediction failed: {type(exc).__name__}: {exc}"}, status_code=500)
        return JSONResponse({"predictions": predictions})

    return Starlette(
        routes=[
            Route(health_route, health, methods=["GET"]),
            Route(predict_route, predict, methods=["POST"]),
        ]
    )


def _route(value: str | None, default: str) -> str:
    value = (value or "").strip() or default
    return value if value.startswith("/") else "/" + value


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Download and load the model, then serve until stopped; returns the exit status (1: the model would not
    load, with one last stderr line saying why)."""
    environ = dict(os.environ if env is None else env)
    parser = argparse.ArgumentParser(prog="python -m mcv_vertex.serving", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model-dir", help="local model folder (default: download $AIP_STORAGE_URI)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (the container uses 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port (default: $AIP_HTTP_PORT or 8080)")
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    source = args.model_dir or environ.get("AIP_STORAGE_URI", "").strip()
    try:
        port = args.port if args.port is not None else int(environ.get("AIP_HTTP_PORT") or DEFAULT_PORT)
        if not source:
            raise BadInput("no model: set AIP_STORAGE_URI (Vertex sets it from the model's artifact_uri)")
        model = load_model(source)
    except Exception as exc:  # nothing to serve: say why on one line
        log.debug("loading failed", exc_info=True)
        sys.stderr.write(f"mcv_vertex.serving failed: {' '.join(str(exc).split()) or type(exc).__name__}\n")
        return 1
    health = _route(environ.get("AIP_HEALTH_ROUTE"), DEFAULT_HEALTH_ROUTE)
    predict = _route(environ.get("AIP_PREDICT_ROUTE"), DEFAULT_PREDICT_ROUTE)
    import uvicorn

    log.info("serving %s on %s:%d (health %s, predict %s)", source, args.host, port, health, predict)
    uvicorn.run(create_app(model, health, predict), host=args.host, port=port, log_level="warning")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise SystemExit(main())
