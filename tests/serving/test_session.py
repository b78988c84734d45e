"""OnnxModel: loading, metadata, prediction and result formatting, in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcv_local.preprocess import decode
from mcv_local.serving.errors import InvalidImage, ModelLoadError, ServingError
from mcv_local.serving.session import OnnxModel, check_options

PREDICTION_KEYS = {"provider", "model_id", "task", "labels", "detections", "latency_ms"}


@pytest.fixture(scope="module")
def cls_model(classification_dir: Path) -> OnnxModel:
    return OnnxModel(classification_dir)


@pytest.fixture(scope="module")
def ml_model(multilabel_dir: Path) -> OnnxModel:
    return OnnxModel(multilabel_dir)


def test_metadata_is_read_into_attributes(cls_model: OnnxModel) -> None:
    assert cls_model.labels == ["cat", "dog", "bird", "fish", "horse", "cow", "sheep"]
    assert cls_model.task == "classification"
    assert cls_model.image_size == 32
    assert cls_model.channels == 3
    assert cls_model.model_id == "cls-model"
    assert cls_model.backbone == "tiny-cnn"
    assert cls_model.num_classes == 7
    meta = cls_model.metadata_dict()
    assert meta["labels"] == cls_model.labels and meta["task"] == "classification"
    assert meta["image_size"] == 32 and meta["channels"] == 3 and meta["model_id"] == "cls-model"


def test_predict_pixels_returns_probabilities(cls_model: OnnxModel, image_bytes: Any) -> None:
    pixels = np.stack([decode(image_bytes(seed=s), 32, 3) for s in range(3)])
    scores = cls_model.predict_pixels(pixels)
    assert scores.shape == (3, 7) and scores.dtype == np.float32
    assert np.allclose(scores.sum(axis=1), 1.0, atol=1e-5)
    single = cls_model.predict_pixels(pixels[1])  # one image without the batch axis
    assert np.allclose(single[0], scores[1], atol=1e-6)
    assert cls_model.predict_pixels(np.zeros((0, 32, 32, 3), np.uint8)).shape == (0, 7)


def test_predict_pixels_rejects_wrong_shape_or_dtype(cls_model: OnnxModel) -> None:
    with pytest.raises(ValueError, match="shape"):
        cls_model.predict_pixels(np.zeros((1, 16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        cls_model.predict_pixels(np.zeros((1, 32, 32, 3), np.float32))


def test_predict_encoded_uses_the_shared_decode(cls_model: OnnxModel, image_bytes: Any) -> None:
    images = [image_bytes("JPEG", seed=1), image_bytes("PNG", seed=2), image_bytes("BMP", seed=3)]
    rows = cls_model.predict_encoded(images)
    assert len(rows) == 3
    expected = cls_model.predict_pixels(np.stack([decode(b, 32, 3) for b in images]))
    for row, exp in zip(rows, expected, strict=True):
        assert np.allclose(row, exp, atol=1e-6)
    assert cls_model.predict_encoded([]) == []


def test_to_result_is_a_sorted_prediction(cls_model: OnnxModel, image_bytes: Any) -> None:
    (scores,) = cls_model.predict_encoded([image_bytes(seed=4)])
    result = cls_model.to_result(scores, 12.3456)
    assert set(result) == PREDICTION_KEYS
    assert result["provider"] == "local" and result["model_id"] == "cls-model"
    assert result["task"] == "classification" and result["detections"] == []
    assert result["latency_ms"] == pytest.approx(12.346)
    labels = result["labels"]
    assert len(labels) == 5  # default top_k
    confidences = [item["confidence"] for item in labels]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0.0 <= c <= 1.0 and isinstance(c, float) for c in confidences)
    for item in labels:
        assert set(item) == {"name", "index", "confidence"}
        assert cls_model.labels[item["index"]] == item["name"]
        assert item["confidence"] == pytest.approx(float(scores[item["index"]]))
    assert labels[0]["index"] == int(np.argmax(scores))
    json.dumps(result)  # plain JSON types only


def test_top_k(cls_model: OnnxModel) -> None:
    scores = np.array([0.05, 0.4, 0.1, 0.2, 0.15, 0.06, 0.04], np.float32)
    assert [x["name"] for x in cls_model.to_result(scores, 1.0, top_k=2)["labels"]] == ["dog", "fish"]
    assert [x["index"] for x in cls_model.to_result(scores, 1.0, top_k=1)["labels"]] == [1]
    everything = cls_model.to_result(scores, 1.0, top_k=100)["labels"]
    assert [x["index"] for x in everything] == [1, 3, 4, 2, 5, 0, 6]


def test_ties_are_ordered_by_index(cls_model: OnnxModel) -> None:
    scores = np.full(7, 1 / 7, np.float32)
    assert [x["index"] for x in cls_model.to_result(scores, 1.0, top_k=7)["labels"]] == list(range(7))


def test_confidences_are_clamped_to_0_1(cls_model: OnnxModel) -> None:
    scores = np.array([1.0000002, -1e-9, 0, 0, 0, 0, np.nan], np.float32)
    labels = cls_model.to_result(scores, 1.0, top_k=7)["labels"]
    assert all(0.0 <= x["confidence"] <= 1.0 for x in labels)
    assert labels[0] == {"name": "cat", "index": 0, "confidence": 1.0}


def test_multilabel_threshold(ml_model: OnnxModel) -> None:
    assert ml_model.task == "multilabel"
    scores = np.array([0.9, 0.2, 0.55, 0.5, 0.49], np.float32)
    result = ml_model.to_result(scores, 2.0)
    assert result["task"] == "multilabel"
    assert [(x["name"], x["index"]) for x in result["labels"]] == [("red", 0), ("blue", 2), ("round", 3)]
    assert [x["name"] for x in ml_model.to_result(scores, 2.0, threshold=0.8)["labels"]] == ["red"]
    assert [x["name"] for x in ml_model.to_result(scores, 2.0, threshold=0.0)["labels"]] == [
        "red",
        "blue",
        "round",
        "square",
        "green",
    ]
    assert ml_model.to_result(scores, 2.0, threshold=0.95)["labels"] == []
    assert [x["name"] for x in ml_model.to_result(scores, 2.0, top_k=2)["labels"]] == ["red", "blue"]


def test_multilabel_model_scores_are_independent(ml_model: OnnxModel, image_bytes: Any) -> None:
    rows = ml_model.predict_encoded([image_bytes(seed=s) for s in range(4)])
    for row in rows:
        assert row.shape == (5,) and np.all((row >= 0) & (row <= 1))
        result = ml_model.to_result(row, 1.0)
        assert all(x["confidence"] >= 0.5 for x in result["labels"])
        assert len(result["labels"]) == int((row >= 0.5).sum())


def test_grey_model_accepts_colour_images(grey_dir: Path, image_bytes: Any) -> None:
    model = OnnxModel(grey_dir)
    assert model.channels == 1 and model.image_size == 28
    result = model.predict(image_bytes("JPEG", seed=5), top_k=3)
    assert len(result["labels"]) == 3 and result["model_id"] == "grey"
    assert model.predict(image_bytes("PNG", mode="L"))["labels"]


@pytest.mark.parametrize(
    ("top_k", "threshold", "match"),
    [
        (0, None, "top_k"),
        (-1, None, "top_k"),
        (1.5, None, "top_k"),
        (True, None, "top_k"),
        (None, 1.5, "threshold"),
        (None, -0.1, "threshold"),
        (None, "x", "threshold"),
    ],
)
def test_bad_options(top_k: object, threshold: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_options(top_k, threshold)


def test_non_image_bytes_raise_invalid_image(cls_model: OnnxModel) -> None:
    with pytest.raises(InvalidImage, match="not a recognised image format") as info:
        cls_model.predict(b"this is plain text, not a picture")
    assert isinstance(info.value, ServingError)
    with pytest.raises(InvalidImage, match="empty"):
        cls_model.decode(b"")


def test_truncated_jpeg_raises_invalid_image(cls_model: OnnxModel, image_bytes: Any) -> None:
    data = image_bytes("JPEG", size=(120, 90), seed=6)
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        cls_model.predict(data[: len(data) // 2])


def test_missing_directory_is_a_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        OnnxModel(tmp_path / "nowhere")
    with pytest.raises(ModelLoadError, match=r"no model\.onnx"):
        OnnxModel(tmp_path)


def test_corrupt_file_is_a_model_load_error(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"not an onnx protobuf at all")
    with pytest.raises(ModelLoadError, match="not a loadable ONNX model"):
        OnnxModel(tmp_path)


def test_missing_metadata_is_a_model_load_error(tmp_path: Path, make_model: Any) -> None:
    make_model(tmp_path, props={"mcv.task": "classification"})
    with pytest.raises(ModelLoadError, match=r"mcv\.labels"):
        OnnxModel(tmp_path)


def test_bad_task_is_a_model_load_error(tmp_path: Path, make_model: Any) -> None:
    make_model(
        tmp_path,
        props={"mcv.labels": '["a", "b"]', "mcv.task": "detection", "mcv.image_size": "32", "mcv.channels": "3"},
    )
    with pytest.raises(ModelLoadError, match="detection"):
        OnnxModel(tmp_path)


def test_wrong_input_name_is_a_model_load_error(tmp_path: Path, make_model: Any) -> None:
    make_model(tmp_path, input_name="pixels")
    with pytest.raises(ModelLoadError, match="input named 'image'"):
        OnnxModel(tmp_path)


def test_metadata_disagreeing_with_graph_is_a_model_load_error(tmp_path: Path, make_model: Any) -> None:
    make_model(
        tmp_path,
        props={
            "mcv.labels": '["a", "b", "c", "d", "e"]',
            "mcv.task": "classification",
            "mcv.image_size": "64",
            "mcv.channels": "3",
        },
    )
    with pytest.raises(ModelLoadError, match="height"):
        OnnxModel(tmp_path)
