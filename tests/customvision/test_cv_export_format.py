"""The Custom Vision emulator's export archives (``mcv_customvision.emulator.export.build_export``).

A tiny classifier (multiclass and multilabel) and a tiny detector are trained for real once per module; their
ONNX exports must carry Custom Vision's signature and metadata and answer exactly what the trained model answers
on the same pixels (fed the way the customvision-export-samples ONNX client does: resize, NCHW, BGR, 0..255).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from tiny_models import TinyModel, train_tiny_classifier, train_tiny_detector

from mcv_customvision.emulator.export import INPUT_SIDE, PLACEHOLDER_MARK, build_export
from mcv_local.engine.detection_export import OnnxDetector
from mcv_local.preprocess import decode
from mcv_local.serving.session import OnnxModel

pytestmark = pytest.mark.timeout(120)

CV_PROPS = {
    "Image.BitmapPixelFormat": "Bgr8",
    "Image.NominalPixelRange": "NominalRange_0_255",
    "Image.ColorSpaceGamma": "SRGB",
}


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return train_tiny_classifier(tmp_path_factory.mktemp("cls"))


@pytest.fixture(scope="module")
def multilabel(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return train_tiny_classifier(tmp_path_factory.mktemp("ml"), task="multilabel")


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return train_tiny_detector(tmp_path_factory.mktemp("det"), side=INPUT_SIDE)


def _unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _cv_input(path: Path, side: int, dtype: type = np.float32) -> np.ndarray:
    """What the export samples' client feeds: resized RGB pixels, NCHW, BGR (Bgr8), 0..255 (NominalRange_0_255)."""
    pixels = decode(path, side, 3).astype(np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1)[None][:, ::-1]).astype(dtype)


def _session(model_bytes: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("which", ["classifier", "multilabel"])
def test_onnx_classification_export(which: str, request: pytest.FixtureRequest) -> None:
    model: TinyModel = request.getfixturevalue(which)
    files = _unzip(build_export(model.model_dir, model.task, model.labels, "ONNX", None))
    assert sorted(files) == ["cvexport.manifest", "labels.txt", "model.onnx"]
    assert files["labels.txt"].decode().splitlines() == model.labels
    manifest = json.loads(files["cvexport.manifest"])
    assert manifest["DomainType"] == "Classification" and manifest["Platform"] == "ONNX"
    assert manifest["ModelFileName"] == "model.onnx" and manifest["LabelFileName"] == "labels.txt"
    assert manifest["ClassificationType"] == ("Multilabel" if model.task == "multilabel" else "Multiclass")

    proto = onnx.load_from_string(files["model.onnx"])
    onnx.checker.check_model(proto)
    assert {p.key: p.value for p in proto.metadata_props}.items() >= CV_PROPS.items()
    session = _session(files["model.onnx"])
    (data,) = session.get_inputs()
    assert (data.name, data.type, data.shape) == ("data", "tensor(float)", [1, 3, model.image_size, model.image_size])
    (output,) = session.get_outputs()
    assert (output.name, output.type, output.shape) == ("model_output", "tensor(float)", [1, len(model.labels)])

    original = OnnxModel(model.model_dir, intra_op_threads=1)
    for path in model.images:
        (wrapped,) = session.run(["model_output"], {"data": _cv_input(path, model.image_size)})
        (expected,) = original.predict_encoded([path.read_bytes()])
        assert wrapped.shape == (1, len(model.labels))
        np.testing.assert_allclose(wrapped[0], expected, atol=1e-5)
        assert int(np.argmax(wrapped[0])) == int(np.argmax(expected))


def test_onnx_float16_flavor_takes_half_precision_pixels(classifier: TinyModel) -> None:
    files = _unzip(build_export(classifier.model_dir, "classification", classifier.labels, "ONNX", "ONNXFloat16"))
    assert json.loads(files["cvexport.manifest"])["Flavor"] == "ONNXFloat16"
    session = _session(files["model.onnx"])
    assert session.get_inputs()[0].type == "tensor(float16)"
    path = classifier.images[0]
    (wrapped,) = session.run(None, {"data": _cv_input(path, classifier.image_size, np.float16)})
    (expected,) = OnnxModel(classifier.model_dir, intra_op_threads=1).predict_encoded([path.read_bytes()])
    np.testing.assert_allclose(wrapped[0], expected, atol=1e-5)


def test_onnx_detection_export(detector: TinyModel) -> None:
    files = _unzip(build_export(detector.model_dir, "ObjectDetection", detector.labels, "onnx", "ONNX12"))
    assert sorted(files) == ["cvexport.manifest", "labels.txt", "model.onnx"]
    manifest = json.loads(files["cvexport.manifest"])
    assert manifest["DomainType"] == "ObjectDetection" and manifest["Flavor"] == "ONNX12"
    assert "ClassificationType" not in manifest
    proto = onnx.load_from_string(files["model.onnx"])
    assert {p.key: p.value for p in proto.metadata_props}.items() >= CV_PROPS.items()
    session = _session(files["model.onnx"])
    (data,) = session.get_inputs()
    assert (data.name, data.type, data.shape) == ("data", "tensor(float)", [1, 3, INPUT_SIDE, INPUT_SIDE])
    outputs = {o.name: (o.type, o.shape) for o in session.get_outputs()}
    assert outputs == {
        "detected_boxes": ("tensor(float)", [1, "n", 4]),
        "detected_scores": ("tensor(float)", [1, "n"]),
        "detected_classes": ("tensor(int64)", [1, "n"]),
    }

    original = OnnxDetector(detector.model_dir / "model.onnx", intra_op_threads=1)
    seen = 0
    for path in detector.images:
        boxes, scores, classes = session.run(
            ["detected_boxes", "detected_scores", "detected_classes"], {"data": _cv_input(path, INPUT_SIDE)}
        )
        expected = original.detect(decode(path, INPUT_SIDE, 3), score_threshold=0.0)
        assert boxes.shape == (1, len(expected), 4) and scores.shape == classes.shape == (1, len(expected))
        assert classes.dtype == np.int64
        for (label, score, *box), got_box, got_score, got_label in zip(
            expected, boxes[0], scores[0], classes[0], strict=True
        ):
            assert int(got_label) == label
            assert float(got_score) == pytest.approx(score, abs=1e-5)
            np.testing.assert_allclose(got_box, box, atol=1e-4)
        assert np.all((boxes >= 0.0) & (boxes <= 1.0))
        seen += len(expected)
    assert seen > 0, "the tiny detector found nothing at all: nothing was compared"


@pytest.mark.parametrize(
    ("platform", "flavor", "members"),
    [
        ("TensorFlow", None, ["cvexport.manifest", "labels.txt", "model.pb"]),
        ("TensorFlow", "TensorFlowNormal", ["cvexport.manifest", "labels.txt", "model.pb"]),
        ("TensorFlow", "TensorFlowLite", ["cvexport.manifest", "labels.txt", "model.tflite"]),
        ("CoreML", None, ["cvexport.manifest", "labels.txt", "model.mlmodel"]),
        ("OpenVino", None, ["cvexport.manifest", "labels.txt", "model.bin", "model.xml"]),
        (
            "DockerFile",
            "Linux",
            [
                "Dockerfile",
                "app/app.py",
                "app/labels.txt",
                "app/model.pb",
                "app/predict.py",
                "cvexport.manifest",
                "labels.txt",
            ],
        ),
    ],
)
def test_other_platforms_are_marked_placeholders(
    platform: str, flavor: str | None, members: list[str], tmp_path: Path
) -> None:
    # placeholders never read the model: a folder without one is enough
    data = build_export(tmp_path, "classification", ["a", "b"], platform, flavor)
    files = _unzip(data)
    assert sorted(files) == members
    manifest = json.loads(files["cvexport.manifest"])
    assert manifest["Platform"] == platform and manifest["Flavor"] == flavor and manifest["Emulated"] is True
    model_file = manifest["ModelFileName"]
    assert model_file in files and files[model_file].decode().startswith(PLACEHOLDER_MARK)
    assert files["labels.txt"].decode() == "a\nb\n"
    assert data == build_export(tmp_path, "classification", ["a", "b"], platform, flavor)  # reproducible bytes


def test_refusals(classifier: TinyModel, detector: TinyModel) -> None:
    with pytest.raises(ValueError, match="unknown export platform"):
        build_export(classifier.model_dir, "classification", classifier.labels, "Caffe", None)
    with pytest.raises(ValueError, match="not a ONNX export flavor"):
        build_export(classifier.model_dir, "classification", classifier.labels, "ONNX", "Linux")
    with pytest.raises(ValueError, match="2 labels"):
        build_export(classifier.model_dir, "classification", classifier.labels[:2], "ONNX", None)
    with pytest.raises(ValueError, match="not detection"):
        build_export(classifier.model_dir, "detection", classifier.labels, "ONNX", None)
    with pytest.raises(ValueError, match="not classification"):
        build_export(detector.model_dir, "classification", detector.labels, "ONNX", None)
    with pytest.raises(ValueError, match="unknown task"):
        build_export(classifier.model_dir, "segmentation", classifier.labels, "ONNX", None)
