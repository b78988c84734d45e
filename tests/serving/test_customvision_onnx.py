"""Serving a Custom Vision ONNX export folder (model.onnx in the service's signature + labels.txt) locally.

The folders are made by the Custom Vision emulator's ``build_export`` from tiny models trained for real
(:mod:`tiny_models`); the local adapter (:mod:`mcv_local.serving.customvision_onnx`), in process and behind the
local deployer's real server, must answer what the original model answers on the same image.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tiny_models import TinyModel, train_tiny_classifier, train_tiny_detector

from mcv_customvision.emulator.export import INPUT_SIDE, build_export
from mcv_local.engine.detection_export import OnnxDetector
from mcv_local.preprocess import decode
from mcv_local.serving.customvision_onnx import CustomVisionOnnx, describe, is_customvision_folder
from mcv_local.serving.errors import InvalidImage, ModelLoadError
from mcv_local.serving.session import OnnxModel
from multicloud_cv.runs import ModelRecord, RunStore, new_id

pytestmark = pytest.mark.timeout(180)


def _cv_folder(model: TinyModel, target: Path) -> Path:
    data = build_export(model.model_dir, model.task, model.labels, "ONNX", None)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(target)
    return target


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[TinyModel, Path]]:
    root = tmp_path_factory.mktemp("cv-serving")
    found = {
        "classification": train_tiny_classifier(root / "cls"),
        "multilabel": train_tiny_classifier(root / "ml", task="multilabel"),
        "detection": train_tiny_detector(root / "det", side=INPUT_SIDE),
    }
    return {task: (model, _cv_folder(model, root / f"{task}-export")) for task, model in found.items()}


def _original_labels(model: TinyModel, path: Path) -> list[tuple[str, float]]:
    (row,) = OnnxModel(model.model_dir, intra_op_threads=1).predict_encoded([path.read_bytes()])
    order = np.argsort(-row, kind="stable")
    return [(model.labels[int(i)], float(row[int(i)])) for i in order]


def _original_detections(model: TinyModel, path: Path, threshold: float) -> list[tuple[Any, ...]]:
    detector = OnnxDetector(model.model_dir / "model.onnx", intra_op_threads=1)
    return list(detector.detect(decode(path, INPUT_SIDE, 3), score_threshold=threshold))


def _same_labels(answer: list[dict[str, Any]], expected: list[tuple[str, float]]) -> None:
    assert [label["name"] for label in answer] == [name for name, _ in expected]
    for label, (_, confidence) in zip(answer, expected, strict=True):
        assert label["confidence"] == pytest.approx(confidence, abs=1e-4)


def _same_detections(answer: list[dict[str, Any]], expected: list[tuple[Any, ...]], labels: list[str]) -> None:
    assert len(answer) == len(expected)
    for found, (label, score, x0, y0, x1, y1) in zip(answer, expected, strict=True):
        assert found["name"] == labels[label] and found["index"] == label
        assert found["confidence"] == pytest.approx(score, abs=1e-4)
        box = found["box"]
        corners = [box["x_min"], box["y_min"], box["x_max"], box["y_max"]]
        np.testing.assert_allclose(corners, [x0, y0, x1, y1], atol=1e-3)


@pytest.mark.parametrize("task", ["classification", "multilabel"])
def test_classification_export_answers_like_the_original(task: str, models: dict[str, Any]) -> None:
    model, folder = models[task]
    assert is_customvision_folder(folder) and not is_customvision_folder(model.model_dir)
    served = CustomVisionOnnx(folder, intra_op_threads=1)
    assert served.task == task and served.labels == model.labels and served.bgr and served.range_255
    assert (served.width, served.height) == (model.image_size, model.image_size)
    for path in model.images:
        options = {"threshold": 0.0} if task == "multilabel" else {"top_k": 3}
        answer = served.predict(path.read_bytes(), **options)
        assert answer["task"] == task and answer["detections"] == []
        _same_labels(answer["labels"], _original_labels(model, path))


def test_detection_export_answers_like_the_original(models: dict[str, Any]) -> None:
    model, folder = models["detection"]
    served = CustomVisionOnnx(folder, intra_op_threads=1)
    assert served.task == "detection" and served.labels == model.labels
    assert (served.width, served.height) == (INPUT_SIDE, INPUT_SIDE)
    compared = 0
    for path in model.images:
        answer = served.predict(path.read_bytes(), threshold=0.0)
        expected = _original_detections(model, path, 0.0)
        _same_detections(answer["detections"], expected, model.labels)
        compared += len(expected)
        capped = served.predict(path.read_bytes(), threshold=0.0, top_k=2)
        assert len(capped["detections"]) == min(2, len(expected))
    assert compared > 0, "the tiny detector found nothing: nothing was compared"


def test_describe_and_refusals(models: dict[str, Any], tmp_path: Path) -> None:
    for task, (model, folder) in models.items():
        assert describe(folder) == (task, model.labels)
        assert describe(model.model_dir) == (task, model.labels)  # a local engine export
    assert describe(tmp_path) is None
    model, folder = models["classification"]
    with pytest.raises(InvalidImage):
        CustomVisionOnnx(folder, intra_op_threads=1).predict(b"not an image")
    with pytest.raises(ModelLoadError, match=r"labels\.txt"):
        CustomVisionOnnx(model.model_dir)


def test_served_by_the_local_deployer(models: dict[str, Any]) -> None:
    from multicloud_cv.registry import registry

    deployer, predictor = registry().deployer("local"), registry().predictor("local")
    for task, (model, folder) in models.items():
        native = deployer._servable(folder, "onnx")
        assert native is not None and native.task == task and native.labels == model.labels
        record = RunStore().add_model(
            ModelRecord(
                id=new_id("model"), provider="local", task=task, labels=native.labels, artifact=str(folder), info={}
            )
        )
        endpoint = deployer.deploy(record.id, timeout=60)
        try:
            assert endpoint.state.value == "READY" and endpoint.url.startswith("http://127.0.0.1:")
            path = model.images[0]
            if task == "detection":
                prediction = predictor.predict(endpoint.id, path, threshold=0.0)
                _same_detections(
                    [d.model_dump() for d in prediction.detections],
                    _original_detections(model, path, 0.0),
                    model.labels,
                )
            else:
                options = {"threshold": 0.0} if task == "multilabel" else {"top_k": 3}
                prediction = predictor.predict(endpoint.id, path, **options)
                _same_labels([label.model_dump() for label in prediction.labels], _original_labels(model, path))
            assert prediction.task == task and prediction.model_id == record.id
        finally:
            deployer.undeploy(endpoint.id)
