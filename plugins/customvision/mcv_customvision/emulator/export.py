"""The archives the Custom Vision emulator's ExportIteration answers: a trained local model in Custom Vision's
export layout.

Contract (shared with the emulator, the provider and the local server; see the Custom Vision ONNX sample in
Azure-Samples/customvision-export-samples, samples/python/onnx):

* :func:`build_export` ``(model_dir, task, labels, platform, flavor) -> bytes`` returns a zip. ``model_dir`` is
  what :func:`multicloud_cv.emulation.training.train_classifier` / ``train_detector`` left (``model.onnx`` under
  the local engine's graph contract, ``mcv.*`` metadata); ``task`` is ``classification``, ``multilabel`` or
  ``detection`` (the service's ``Classification`` / ``ObjectDetection`` are accepted too); ``labels`` are the
  tag names in the model's class index order. ``ValueError`` for an unknown platform or flavor, a task the
  model was not trained for, or labels that do not match the model's classes.
* Every archive holds ``labels.txt`` (one label a line, index order) and ``cvexport.manifest`` (JSON:
  ``DomainType`` ``Classification``|``ObjectDetection``, ``ClassificationType`` ``Multiclass``|``Multilabel``
  for classification, ``Platform``, ``Flavor``, ``ModelFileName``, ``LabelFileName``, ``ExporterVersion``,
  ``SchemaVersion``, ``Emulated`` true).
* ``ONNX`` (flavors ``None``, ``ONNX10``, ``ONNX12``, ``ONNXFloat16``): ``model.onnx`` is the trained model
  wrapped (``onnx.compose``, the inner model's opset and IR version) in Custom Vision's export signature: one
  input ``data`` ``float32 [1, 3, S, S]`` (``float16`` for ``ONNXFloat16``), BGR channel order
  (``Image.BitmapPixelFormat`` = ``Bgr8``), pixel values 0..255 (``Image.NominalPixelRange`` =
  ``NominalRange_0_255``), ``Image.ColorSpaceGamma`` = ``SRGB``. ``S`` is the classifier's trained side
  (``mcv.image_size``) or :data:`INPUT_SIDE` for detection (the emulator resizes prediction images to it too, so
  the published iteration and its export answer alike). The wrapper rounds and clips the values to 0..255 and
  feeds them to the inner graph as ``uint8`` NHWC RGB, so a client that resizes with the local engine's decode
  gets the local model's scores exactly.
  Classification output ``model_output`` ``float32 [1, C]`` (softmax probabilities, sigmoid for multilabel).
  Detection outputs ``detected_boxes`` ``float32 [1, N, 4]`` (``x1, y1, x2, y2`` normalised 0..1),
  ``detected_scores`` ``float32 [1, N]`` (highest first), ``detected_classes`` ``int64 [1, N]``: the inner
  detector's own score threshold and detection cap. The metadata keeps ``mcv.model_id`` and adds
  ``mcv.emulated`` = ``true``; there is no ``mcv.task``/``mcv.labels`` (labels are in labels.txt, as in the
  service's exports).
* Other platforms produce the archive LAYOUT of that export with the model file a clearly marked placeholder
  text (the emulator cannot produce TensorFlow, TensorFlow Lite, CoreML, OpenVINO or Docker images):
  ``TensorFlow`` ``TensorFlowNormal``: ``model.pb``; ``TensorFlowLite``: ``model.tflite``; ``CoreML``:
  ``model.mlmodel``; ``OpenVino``: ``model.xml`` + ``model.bin``; ``VAIDK``: ``model.onnx`` placeholder;
  ``DockerFile`` (``Linux``|``Windows``|``ARM``): ``Dockerfile``, ``app/app.py``, ``app/predict.py``,
  ``app/model.pb`` (the manifest's ``ModelFileName``), ``app/labels.txt``. Every placeholder model file starts with
  :data:`PLACEHOLDER_MARK` (the Dockerfile and app sources carry it in their first comment).

onnx is imported when an ONNX archive is built (the emulator extra installs it).
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

INPUT_SIDE = 64
"""Side of the square ``data`` input of an exported detector (and of the images the emulator detects on)."""

INPUT_NAME = "data"
CLASSIFICATION_OUTPUT = "model_output"
DETECTION_OUTPUTS = ("detected_boxes", "detected_scores", "detected_classes")
PIXEL_FORMAT = "Bgr8"
PLACEHOLDER_MARK = "MCV-EMULATOR-PLACEHOLDER"
MANIFEST_NAME = "cvexport.manifest"
LABELS_NAME = "labels.txt"

PLATFORMS = ("ONNX", "TensorFlow", "CoreML", "DockerFile", "OpenVino", "VAIDK")
FLAVORS: dict[str, tuple[str | None, ...]] = {
    "ONNX": (None, "ONNX10", "ONNX12", "ONNXFloat16"),
    "TensorFlow": (None, "TensorFlowNormal", "TensorFlowLite"),
    "CoreML": (None,),
    "DockerFile": (None, "Linux", "Windows", "ARM"),
    "OpenVino": (None,),
    "VAIDK": (None,),
}

_TASKS = {
    "classification": "classification",
    "multiclass": "classification",
    "multilabel": "multilabel",
    "detection": "detection",
    "objectdetection": "detection",
}


def build_export(model_dir: Path, task: str, labels: list[str], platform: str, flavor: str | None) -> bytes:
    """The zip of an export of the model in ``model_dir`` to ``platform``/``flavor`` (see the module docstring)."""
    model_dir = Path(model_dir)
    canonical_task = _TASKS.get(str(task).replace(" ", "").lower())
    if canonical_task is None:
        raise ValueError(f"unknown task {task!r}: expected classification, multilabel or detection")
    platform_name = _platform(platform)
    flavor_name = _flavor(platform_name, flavor)
    labels = [str(label) for label in labels]
    if not labels:
        raise ValueError("an export needs at least one label")
    files: dict[str, bytes] = {}
    labels_text = ("\n".join(labels) + "\n").encode()
    if platform_name == "ONNX":
        files["model.onnx"] = wrap_onnx(model_dir, canonical_task, labels, float16=flavor_name == "ONNXFloat16")
        model_file = "model.onnx"
    else:
        model_file, placeholders = _placeholders(platform_name, flavor_name, canonical_task)
        files.update(placeholders)
    files[LABELS_NAME] = labels_text
    if platform_name == "DockerFile":
        files["app/labels.txt"] = labels_text
    manifest = _manifest(canonical_task, platform_name, flavor_name, model_file)
    files[MANIFEST_NAME] = json.dumps(manifest, indent=2).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name])
    logger.info("built %s/%s export of %s (%d files)", platform_name, flavor_name, model_dir, len(files))
    return buffer.getvalue()


def _platform(platform: str) -> str:
    for name in PLATFORMS:
        if name.lower() == str(platform).lower():
            return name
    raise ValueError(f"unknown export platform {platform!r}: expected one of {', '.join(PLATFORMS)}")


def _flavor(platform: str, flavor: str | None) -> str | None:
    allowed = FLAVORS[platform]
    if flavor in (None, ""):
        return None
    for name in allowed:
        if name is not None and name.lower() == str(flavor).lower():
            return name
    names = ", ".join(name for name in allowed if name is not None) or "none"
    raise ValueError(f"flavor {flavor!r} is not a {platform} export flavor (allowed: {names})")


def _manifest(task: str, platform: str, flavor: str | None, model_file: str) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "DomainType": "ObjectDetection" if task == "detection" else "Classification",
        "Platform": platform,
        "Flavor": flavor,
        "ExporterVersion": "2.0",
        "ModelFileName": model_file,
        "LabelFileName": LABELS_NAME,
        "SchemaVersion": "1.0",
        "Emulated": True,
    }
    if task != "detection":
        manifest["ClassificationType"] = "Multilabel" if task == "multilabel" else "Multiclass"
    return manifest


def _placeholder(platform: str, flavor: str | None, what: str) -> bytes:
    return (
        f"{PLACEHOLDER_MARK}: {what}\n"
        f"The multicloud-cv Custom Vision emulator cannot produce {platform}"
        f"{'/' + flavor if flavor else ''} models; this file only stands where the service puts the model.\n"
        "Export to ONNX for a runnable model.\n"
    ).encode()


def _placeholders(platform: str, flavor: str | None, task: str) -> tuple[str, dict[str, bytes]]:
    if platform == "TensorFlow":
        if flavor == "TensorFlowLite":
            return "model.tflite", {"model.tflite": _placeholder(platform, flavor, "TensorFlow Lite model")}
        return "model.pb", {"model.pb": _placeholder(platform, flavor, "TensorFlow frozen graph")}
    if platform == "CoreML":
        return "model.mlmodel", {"model.mlmodel": _placeholder(platform, flavor, "Core ML model")}
    if platform == "OpenVino":
        return "model.xml", {
            "model.xml": _placeholder(platform, flavor, "OpenVINO IR (XML)"),
            "model.bin": _placeholder(platform, flavor, "OpenVINO IR weights"),
        }
    if platform == "VAIDK":
        return "model.onnx", {"model.onnx": _placeholder(platform, flavor, "Vision AI Dev Kit model")}
    base = "arm32v7/python:3.7-slim" if flavor == "ARM" else "python:3.7-slim"
    dockerfile = (
        f"# {PLACEHOLDER_MARK}: the Custom Vision emulator's DockerFile export ({flavor or 'Linux'}).\n"
        "# The layout follows the service's export; app/model.pb is a placeholder, so the image does not serve.\n"
        f"FROM {base}\n"
        "RUN pip install -U pip && pip install numpy flask pillow tensorflow\n"
        "COPY app /app\n"
        "EXPOSE 80\n"
        "WORKDIR /app\n"
        'CMD ["python", "-u", "app.py"]\n'
    )
    app = f'"""{PLACEHOLDER_MARK}: the service\'s Flask app (POST /image, /url) would be here."""\n'
    predict = f'"""{PLACEHOLDER_MARK}: the service\'s predict.py for a {task} model would be here."""\n'
    return "app/model.pb", {
        "Dockerfile": dockerfile.encode(),
        "app/app.py": app.encode(),
        "app/predict.py": predict.encode(),
        "app/model.pb": _placeholder(platform, flavor, "TensorFlow frozen graph of the container"),
    }


# ----------------------------------------------------------------------------------------------- ONNX


def _opset(model: Any) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ValueError("the model has no default-domain opset")


def wrap_onnx(model_dir: Path, task: str, labels: list[str], float16: bool = False) -> bytes:
    """The serialized ``model.onnx`` of an ONNX export (see the module docstring)."""
    import onnx
    from onnx import TensorProto, compose, helper

    path = Path(model_dir) / "model.onnx"
    if not path.is_file():
        raise ValueError(f"no model.onnx in {model_dir}")
    inner = onnx.load(str(path))
    props = {entry.key: entry.value for entry in inner.metadata_props}
    model_task = props.get("mcv.task")
    trained = json.loads(props.get("mcv.labels", "[]"))
    if (model_task == "detection") != (task == "detection") or (task != "detection" and model_task != task):
        raise ValueError(f"the model in {model_dir} is a {model_task} model, not {task}")
    if len(trained) != len(labels):
        raise ValueError(f"the model has {len(trained)} classes but {len(labels)} labels were given")
    opset = _opset(inner)
    if task == "detection":
        side = INPUT_SIDE
    else:
        side = int(props.get("mcv.image_size", "0"))
        if props.get("mcv.channels", "3") != "3" or side < 1:
            raise ValueError("only 3-channel classifiers with a recorded mcv.image_size can be exported")

    # pre: data float [1,3,S,S] BGR 0..255 -> image uint8 [1,S,S,3] RGB (+ the detector's request filters)
    in_type = TensorProto.FLOAT16 if float16 else TensorProto.FLOAT
    nodes = []
    source = "pre_data"
    if float16:
        nodes.append(helper.make_node("Cast", ["pre_data"], ["pre_float"], to=TensorProto.FLOAT))
        source = "pre_float"
    nodes += [
        helper.make_node("Gather", [source, "pre_bgr_order"], ["pre_rgb"], axis=1),
        helper.make_node("Round", ["pre_rgb"], ["pre_round"]),
        helper.make_node("Clip", ["pre_round", "pre_zero", "pre_max"], ["pre_clip"]),
        helper.make_node("Transpose", ["pre_clip"], ["pre_nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Cast", ["pre_nhwc"], ["pre_image"], to=TensorProto.UINT8),
    ]
    initializers = [
        helper.make_tensor("pre_bgr_order", TensorProto.INT64, [3], [2, 1, 0]),
        helper.make_tensor("pre_zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("pre_max", TensorProto.FLOAT, [], [255.0]),
    ]
    pre_outputs = [helper.make_tensor_value_info("pre_image", TensorProto.UINT8, [1, side, side, 3])]
    if task == "detection":
        # The inner graph's own score_thresh and detections_per_img limit what it answers; 0 / a large cap
        # add no further filter.
        nodes += [
            helper.make_node(
                "Constant", [], ["pre_threshold"], value=helper.make_tensor("t", TensorProto.FLOAT, [], [0.0])
            ),
            helper.make_node(
                "Constant", [], ["pre_max_detections"], value=helper.make_tensor("m", TensorProto.INT64, [], [10000])
            ),
        ]
        pre_outputs += [
            helper.make_tensor_value_info("pre_threshold", TensorProto.FLOAT, []),
            helper.make_tensor_value_info("pre_max_detections", TensorProto.INT64, []),
        ]
    pre_graph = helper.make_graph(
        nodes,
        "cv_preprocess",
        [helper.make_tensor_value_info("pre_data", in_type, [1, 3, side, side])],
        pre_outputs,
        initializer=initializers,
    )
    pre = _model_like(inner, pre_graph, opset)
    inner = compose.add_prefix(inner, "inner/")

    if task == "detection":
        io_map = [
            ("pre_image", "inner/image"),
            ("pre_threshold", "inner/score_threshold"),
            ("pre_max_detections", "inner/max_detections"),
        ]
        post_nodes = [
            helper.make_node("Div", ["post_boxes_px", "post_scale"], ["post_boxes"]),
            helper.make_node("Unsqueeze", ["post_boxes", "post_axis"], ["post_detected_boxes"]),
            helper.make_node("Unsqueeze", ["post_scores", "post_axis"], ["post_detected_scores"]),
            helper.make_node("Unsqueeze", ["post_labels", "post_axis"], ["post_detected_classes"]),
        ]
        post_graph = helper.make_graph(
            post_nodes,
            "cv_postprocess",
            [
                helper.make_tensor_value_info("post_boxes_px", TensorProto.FLOAT, ["n", 4]),
                helper.make_tensor_value_info("post_scores", TensorProto.FLOAT, ["n"]),
                helper.make_tensor_value_info("post_labels", TensorProto.INT64, ["n"]),
            ],
            [
                helper.make_tensor_value_info("post_detected_boxes", TensorProto.FLOAT, [1, "n", 4]),
                helper.make_tensor_value_info("post_detected_scores", TensorProto.FLOAT, [1, "n"]),
                helper.make_tensor_value_info("post_detected_classes", TensorProto.INT64, [1, "n"]),
            ],
            initializer=[
                helper.make_tensor("post_scale", TensorProto.FLOAT, [], [float(side)]),
                helper.make_tensor("post_axis", TensorProto.INT64, [1], [0]),
            ],
        )
        post_map = [
            ("inner/boxes", "post_boxes_px"),
            ("inner/scores", "post_scores"),
            ("inner/labels", "post_labels"),
        ]
        renames = {f"post_{name}": name for name in DETECTION_OUTPUTS}
    else:
        io_map = [("pre_image", "inner/image")]
        post_graph = helper.make_graph(
            [helper.make_node("Identity", ["post_scores"], ["post_model_output"])],
            "cv_postprocess",
            [helper.make_tensor_value_info("post_scores", TensorProto.FLOAT, ["N", len(labels)])],
            [helper.make_tensor_value_info("post_model_output", TensorProto.FLOAT, [1, len(labels)])],
        )
        post_map = [("inner/scores", "post_scores")]
        renames = {"post_model_output": CLASSIFICATION_OUTPUT}
    post = _model_like(inner, post_graph, opset)
    # merge_models combines metadata_props; drop the inner model's before merging, set ours after.
    del inner.metadata_props[:]
    merged = compose.merge_models(pre, inner, io_map=io_map)
    merged = compose.merge_models(merged, post, io_map=post_map)
    graph = merged.graph
    renames["pre_data"] = INPUT_NAME
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for value in [*graph.input, *graph.output]:
        value.name = renames.get(value.name, value.name)
    graph.name = "customvision_export"
    del merged.metadata_props[:]
    helper.set_model_props(
        merged,
        {
            "Image.BitmapPixelFormat": PIXEL_FORMAT,
            "Image.ColorSpaceGamma": "SRGB",
            "Image.NominalPixelRange": "NominalRange_0_255",
            "mcv.model_id": props.get("mcv.model_id", ""),
            "mcv.emulated": "true",
        },
    )
    merged.producer_name = "mcv-customvision-emulator"
    onnx.checker.check_model(merged)
    return bytes(merged.SerializeToString())


def _model_like(reference: Any, graph: Any, opset: int) -> Any:
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = reference.ir_version
    return model


__all__ = ["INPUT_NAME", "INPUT_SIDE", "PLACEHOLDER_MARK", "PLATFORMS", "build_export", "wrap_onnx"]
