"""Serving a Custom Vision ONNX export folder (``model.onnx`` + ``labels.txt``) with the local server.

The folder is what Custom Vision's ExportIteration (platform ONNX) zips, unpacked: the signature of the
service's exports (Azure-Samples/customvision-export-samples, samples/python/onnx), which the Custom Vision
emulator's ``build_export`` reproduces:

* one float input (``data`` in the current exports; any name is accepted) ``[1, 3, H, W]`` (float32 or
  float16), channel order from the metadata ``Image.BitmapPixelFormat`` (``Bgr8``: BGR, else RGB), pixel range
  from ``Image.NominalPixelRange`` (``NominalRange_0_255``: 0..255, else 0..1);
* classification: ``model_output`` ``[1, C]`` probabilities, or the older ONNX10/12 outputs ``loss`` (a list of
  ``{label: probability}`` maps) and ``classLabel``;
* detection: ``detected_boxes`` ``[1, N, 4]`` (``x1, y1, x2, y2`` normalised 0..1), ``detected_scores``
  ``[1, N]``, ``detected_classes`` ``[1, N]``.

Preprocessing: the image bytes are decoded and resized with :func:`mcv_local.preprocess.decode` (the local
engine's decode, so the pixels equal what a local model sees), laid out NCHW, BGR-swapped when ``Bgr8`` and
divided by 255 unless ``NominalRange_0_255``. The task is ``detection`` when the detection outputs are there,
else ``multilabel`` when ``cvexport.manifest`` says ``"ClassificationType": "Multilabel"``, else
``classification``. Answers are shared-schema ``Prediction`` dicts with the local server's query options
(classification ``top_k`` default 5; multilabel ``threshold`` default 0.5; detection ``threshold`` default 0.5
and ``top_k`` default 100).

:func:`is_customvision_folder` tells such a folder from a local engine export; :func:`create_customvision_app`
is the HTTP app (same routes and error contract as the other local apps, one request at a time per thread).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from mcv_local.serving.errors import ModelLoadError
from mcv_local.serving.session import DEFAULT_THRESHOLD, DEFAULT_TOP_K, check_options, decode_image
from multicloud_cv.workers import usable_cpus

log = logging.getLogger(__name__)

PROVIDER = "local"
MODEL_FILE = "model.onnx"
LABELS_FILE = "labels.txt"
MANIFEST_FILE = "cvexport.manifest"
CLASSIFICATION_OUTPUT = "model_output"
LEGACY_OUTPUTS = ("loss", "classLabel")
DETECTION_OUTPUTS = ("detected_boxes", "detected_scores", "detected_classes")
DEFAULT_SCORE_THRESHOLD = 0.5
DEFAULT_MAX_DETECTIONS = 100


def read_labels(model_dir: Path) -> list[str]:
    """The labels of ``labels.txt`` in index order (blank lines at the end ignored)."""
    lines = (Path(model_dir) / LABELS_FILE).read_text(encoding="utf-8-sig").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]


def is_customvision_folder(model_dir: Path) -> bool:
    """True when ``model_dir`` holds ``model.onnx`` and ``labels.txt`` and the model is not a local engine export
    (it has no ``mcv.task`` metadata)."""
    folder = Path(model_dir)
    if not ((folder / MODEL_FILE).is_file() and (folder / LABELS_FILE).is_file()):
        return False
    try:
        import onnx

        proto = onnx.load(str(folder / MODEL_FILE), load_external_data=False)
    except Exception:  # not an ONNX file: the loaders report it
        return False
    return not any(prop.key == "mcv.task" for prop in proto.metadata_props)


class CustomVisionOnnx:
    """A Custom Vision ONNX export folder on onnxruntime.

    Attributes: ``labels``, ``task``, ``height``/``width`` (the input's), ``bgr``, ``range_255``, ``model_id``
    (``mcv.model_id`` when the export has it, else the folder name), ``metadata`` (the model's props).
    """

    def __init__(self, model_dir: str | Path, *, intra_op_threads: int | None = None) -> None:
        self.model_dir = Path(model_dir)
        path = self.model_dir / MODEL_FILE
        if not path.is_file() or not (self.model_dir / LABELS_FILE).is_file():
            raise ModelLoadError(
                f"{str(self.model_dir)!r} is not a Custom Vision ONNX export (model.onnx + labels.txt)"
            )
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(intra_op_threads or usable_cpus()))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"{str(path)!r} is not a loadable ONNX model: {exc}") from None
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        self.labels = read_labels(self.model_dir)
        if not self.labels:
            raise ModelLoadError(f"{str(self.model_dir / LABELS_FILE)!r} lists no labels")
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            shapes = [(i.name, i.shape) for i in inputs]
            raise ModelLoadError(f"{str(path)!r} must have one [1, 3, H, W] image input, has {shapes}")
        self.input_name: str = inputs[0].name
        if inputs[0].type not in ("tensor(float)", "tensor(float16)"):
            raise ModelLoadError(f"input {self.input_name!r} of {str(path)!r} must be float, is {inputs[0].type}")
        self.input_dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32
        _, channels, height, width = inputs[0].shape
        if not (isinstance(height, int) and isinstance(width, int)) or channels not in (3, "3"):
            raise ModelLoadError(
                f"input {self.input_name!r} of {str(path)!r} must be [1, 3, H, W], is {inputs[0].shape}"
            )
        self.height, self.width = int(height), int(width)
        self.bgr = self.metadata.get("Image.BitmapPixelFormat", "Bgr8") == "Bgr8"
        self.range_255 = self.metadata.get("Image.NominalPixelRange") == "NominalRange_0_255"
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.manifest = _read_manifest(self.model_dir)
        if all(name in self.output_names for name in DETECTION_OUTPUTS):
            self.task = "detection"
        elif CLASSIFICATION_OUTPUT in self.output_names or LEGACY_OUTPUTS[0] in self.output_names:
            multilabel = str(self.manifest.get("ClassificationType", "")).lower() == "multilabel"
            self.task = "multilabel" if multilabel else "classification"
        else:
            raise ModelLoadError(
                f"{str(path)!r} has outputs {self.output_names}: expected {CLASSIFICATION_OUTPUT!r} (classification) "
                f"or {', '.join(DETECTION_OUTPUTS)} (object detection)"
            )
        self.model_id: str = self.metadata.get("mcv.model_id") or self.model_dir.name
        log.info(
            "loaded Custom Vision export %s (%s, %d labels, %dx%d, %s) from %s",
            self.model_id,
            self.task,
            len(self.labels),
            self.width,
            self.height,
            "BGR" if self.bgr else "RGB",
            path,
        )

    def metadata_dict(self) -> dict[str, Any]:
        """What ``GET /v1/metadata`` answers."""
        return {
            "provider": PROVIDER,
            "model_id": self.model_id,
            "task": self.task,
            "labels": list(self.labels),
            "image_size": [self.width, self.height],
            "format": "customvision-onnx",
            "metadata": dict(self.metadata),
        }

    # -- inference -----------------------------------------------------------------------
    def pixels(self, data: bytes) -> np.ndarray:
        """Encoded bytes to the ``uint8 [H, W, 3]`` RGB pixels the model sees (raises :class:`InvalidImage`).

        A square input (every Custom Vision export) gets exactly the local engine's decode; a non-square one is
        decoded at the larger side, then resized bilinearly to ``W x H``.
        """
        pixels = decode_image(data, max(self.width, self.height), 3)
        if self.width != self.height:
            from PIL import Image

            resized = Image.fromarray(pixels).resize((self.width, self.height), Image.Resampling.BILINEAR)
            pixels = np.asarray(resized, dtype=np.uint8)
        return pixels

    def input_tensor(self, pixels: np.ndarray) -> np.ndarray:
        """``uint8 [H, W, 3]`` RGB pixels to the model's input ``[1, 3, H, W]`` (channel order, range, dtype)."""
        tensor = pixels.astype(np.float32).transpose(2, 0, 1)[None]
        if self.bgr:
            tensor = tensor[:, ::-1]
        if not self.range_255:
            tensor = tensor / 255.0
        return np.ascontiguousarray(tensor, dtype=self.input_dtype)

    def run(self, pixels: np.ndarray) -> dict[str, Any]:
        """The model's raw outputs for one image's pixels, by output name."""
        outputs = self.session.run(self.output_names, {self.input_name: self.input_tensor(pixels)})
        return dict(zip(self.output_names, outputs, strict=True))

    def scores(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities ``float [C]`` in label order (classification exports)."""
        out = self.run(pixels)
        if CLASSIFICATION_OUTPUT in out:
            row = np.asarray(out[CLASSIFICATION_OUTPUT], dtype=np.float64).reshape(-1)
        else:  # ONNX10/12: loss = [{label: probability}]
            found = out[LEGACY_OUTPUTS[0]]
            mapping = found[0] if isinstance(found, list) and found else {}
            row = np.array([float(mapping.get(label, 0.0)) for label in self.labels], dtype=np.float64)
        if row.shape[0] != len(self.labels):
            raise ValueError(f"the model answers {row.shape[0]} scores for {len(self.labels)} labels")
        return row

    def detect(
        self, pixels: np.ndarray, threshold: float = DEFAULT_SCORE_THRESHOLD, top_k: int = DEFAULT_MAX_DETECTIONS
    ) -> list[tuple[int, float, float, float, float, float]]:
        """``(label, score, x_min, y_min, x_max, y_max)`` (normalised) at or above ``threshold``, best first."""
        out = self.run(pixels)
        boxes = np.asarray(out[DETECTION_OUTPUTS[0]], dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(out[DETECTION_OUTPUTS[1]], dtype=np.float64).reshape(-1)
        classes = np.asarray(out[DETECTION_OUTPUTS[2]]).reshape(-1).astype(np.int64)
        order = np.argsort(-scores, kind="stable")
        found = []
        for i in order:
            if scores[i] < threshold or not 0 <= classes[i] < len(self.labels):
                continue
            x0, y0, x1, y1 = (float(v) for v in np.clip(boxes[i], 0.0, 1.0))
            found.append((int(classes[i]), float(scores[i]), min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
            if len(found) >= top_k:
                break
        return found

    def predict(self, data: bytes, *, top_k: int | None = None, threshold: float | None = None) -> dict[str, Any]:
        """Decode, run and format one image as a shared ``Prediction`` dict (``ValueError`` for bad options)."""
        start = time.perf_counter()
        top_k, threshold = check_options(top_k, threshold)
        pixels = self.pixels(data)
        labels: list[dict[str, Any]] = []
        detections: list[dict[str, Any]] = []
        if self.task == "detection":
            for label, score, x0, y0, x1, y1 in self.detect(
                pixels,
                DEFAULT_SCORE_THRESHOLD if threshold is None else threshold,
                DEFAULT_MAX_DETECTIONS if top_k is None else top_k,
            ):
                detections.append(
                    {
                        "name": self.labels[label],
                        "index": label,
                        "confidence": min(1.0, max(0.0, score)),
                        "box": {"x_min": x0, "y_min": y0, "x_max": x1, "y_max": y1},
                    }
                )
        else:
            row = np.clip(np.nan_to_num(self.scores(pixels), nan=0.0), 0.0, 1.0)
            order = [int(i) for i in np.argsort(-row, kind="stable")]
            if self.task == "multilabel":
                limit = DEFAULT_THRESHOLD if threshold is None else threshold
                chosen = [i for i in order if row[i] >= limit][:top_k]
            else:
                chosen = order[: DEFAULT_TOP_K if top_k is None else top_k]
            labels = [{"name": self.labels[i], "index": i, "confidence": float(row[i])} for i in chosen]
        return {
            "provider": PROVIDER,
            "model_id": self.model_id,
            "task": self.task,
            "labels": labels,
            "detections": detections,
            "latency_ms": round((time.perf_counter() - start) * 1000.0, 3),
        }


def _read_manifest(model_dir: Path) -> dict[str, Any]:
    path = model_dir / MANIFEST_FILE
    if not path.is_file():
        return {}
    try:
        found = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return {}
    return found if isinstance(found, dict) else {}


def describe(model_dir: Path) -> tuple[str, list[str]] | None:
    """``(task, labels)`` of a folder the local server can serve (a local engine export or a Custom Vision ONNX
    export), ``None`` when it cannot serve it."""
    folder = Path(model_dir)
    if not (folder / MODEL_FILE).is_file():
        return None
    try:
        if is_customvision_folder(folder):
            model = CustomVisionOnnx(folder, intra_op_threads=1)
            return model.task, list(model.labels)
        import onnx

        proto = onnx.load(str(folder / MODEL_FILE), load_external_data=False)
        props = {prop.key: prop.value for prop in proto.metadata_props}
        task, labels = props.get("mcv.task"), json.loads(props.get("mcv.labels", "null"))
        if task in ("classification", "multilabel", "detection") and isinstance(labels, list) and labels:
            return str(task), [str(label) for label in labels]
    except Exception as exc:  # unreadable or foreign: not servable
        log.info("the local server cannot serve %s: %s", folder, exc)
    return None


def create_customvision_app(model: CustomVisionOnnx, max_body_bytes: int) -> Any:
    """The Starlette app serving ``model`` (``POST /v1/predict``, ``GET /healthz``, ``GET /v1/metadata``)."""
    from mcv_local.serving.responses import one_model_app

    def answer(body: bytes, parsed: tuple[int | None, float | None], started: float) -> dict[str, Any]:
        top_k, threshold = parsed
        return model.predict(body, top_k=top_k, threshold=threshold)

    return one_model_app(
        answer,
        _parse_query,
        {"status": "ok", "model_id": model.model_id},
        model.metadata_dict(),
        max_body_bytes,
        state={"model": model},
    )


def _parse_query(params: Any) -> tuple[int | None, float | None]:
    top_k: Any = params.get("top_k")
    threshold: Any = params.get("threshold")
    try:
        top_k = None if top_k is None else int(top_k)
    except ValueError:
        raise ValueError(f"top_k must be an integer >= 1, got {top_k!r}") from None
    try:
        threshold = None if threshold is None else float(threshold)
    except ValueError:
        raise ValueError(f"threshold must be a number between 0 and 1, got {threshold!r}") from None
    return check_options(top_k, threshold)


__all__ = ["CustomVisionOnnx", "create_customvision_app", "describe", "is_customvision_folder", "read_labels"]
