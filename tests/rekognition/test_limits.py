"""The documented Rekognition Custom Labels limits: every value cited, and the core's preflight checking them."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from mcv_rekognition import limits as rk_limits
from mcv_rekognition.limits import capabilities_limits, citation, documented, rekognition_limits
from multicloud_cv.capabilities import Task
from multicloud_cv.datasets import groundtruth
from multicloud_cv.datasets.model import Dataset, ImageRecord
from multicloud_cv.datasets.preflight import Severity, check_files, check_structure


def test_every_limit_is_cited_or_marked_not_found() -> None:
    pages = rk_limits._data()["pages"]
    entries = documented()
    assert len(entries) >= 25
    for name, entry in entries.items():
        if entry.status == "not found":
            assert entry.quote is None and entry.note, name
            assert "not stated" in entry.citation()
            continue
        assert entry.status == "documented", name
        assert entry.page in pages, f"{name} cites an unknown page {entry.page}"
        assert entry.quote and len(entry.quote) > 15, name
        assert entry.url and entry.url.startswith("https://"), name
    assert documented()["image_color_modes"].status == "not found"


def test_the_numbers_the_guide_states() -> None:
    lim = rekognition_limits()
    assert lim.image_formats == {"JPEG", "PNG"}
    assert (lim.min_image_side, lim.max_image_side, lim.max_aspect_ratio) == (64, 4096, 20.0)
    assert (lim.max_image_bytes, lim.max_predict_image_bytes) == (15_000_000, 4_000_000)
    assert lim.max_predict_image_bytes < lim.api_image_bytes_max
    assert (lim.min_labels("classification"), lim.min_labels("multilabel"), lim.min_labels("detection")) == (2, 2, 1)
    assert (lim.max_labels, lim.max_labels_per_image, lim.max_boxes_per_image) == (250, 50, 50)
    assert (lim.max_invalid_line_fraction, lim.min_test_label_overlap) == (0.2, 0.5)
    assert lim.max_images("detection") == 250_000
    assert lim.max_images("classification", "eu-west-2") == 28_000
    assert lim.max_images("classification", "eu-west-2", split="test") == 7_000
    assert "20:1" in citation("max_aspect_ratio") and citation("max_aspect_ratio").startswith("Guidelines and quotas")


def test_manifest_limits_agree_with_the_core_ground_truth_writer() -> None:
    lim = rekognition_limits()
    assert lim.max_manifest_lines == groundtruth.MAX_LINES
    assert lim.max_manifest_bytes == groundtruth.MAX_MANIFEST_BYTES
    assert lim.max_line_chars == groundtruth.MAX_LINE_CHARS
    assert lim.max_labels == groundtruth.MAX_CLASSES
    assert lim.max_boxes_per_image == groundtruth.MAX_BOXES_PER_IMAGE
    assert lim.max_labels_per_image == groundtruth.MAX_LABELS_PER_IMAGE


def test_capabilities_limits_per_task_and_region() -> None:
    classification = capabilities_limits()
    assert classification.min_labels == 2 and classification.image_formats == frozenset({"JPEG", "PNG"})
    assert classification.single_bucket and classification.ignores_negative_images
    assert classification.min_test_label_overlap == 0.5 and classification.max_images == 250_000
    assert capabilities_limits("detection").min_labels == 1
    assert capabilities_limits("classification", region="ap-south-1").max_images == 28_000
    assert classification.as_dict()["image_formats"] == ["JPEG", "PNG"]


def _image(path: Path, size: tuple[int, int], fmt: str = "PNG") -> str:
    Image.new("RGB", size, (90, 120, 200)).save(path, format=fmt)
    return path.name


def test_core_preflight_refuses_what_the_guide_refuses(tmp_path: Path) -> None:
    names = {
        "ok": _image(tmp_path / "ok.png", (80, 80)),
        "small": _image(tmp_path / "small.png", (28, 28)),
        "wide": _image(tmp_path / "wide.png", (1344, 64)),
        "bmp": _image(tmp_path / "pic.bmp", (80, 80), "BMP"),
    }
    dataset = Dataset(tmp_path, ["a", "b"], [ImageRecord(name, (i % 2,)) for i, name in enumerate(names.values())])
    findings = check_files(dataset, capabilities_limits())
    codes = {(Path(f.path or "").name, f.code) for f in findings if f.severity is Severity.ERROR}
    assert codes == {("small.png", "image-too-small"), ("wide.png", "aspect-ratio"), ("pic.bmp", "image-format")}


@pytest.mark.parametrize(("task", "classes", "expected"), [("classification", 1, True), ("detection", 1, False)])
def test_one_label_is_enough_only_for_detection(tmp_path: Path, task: str, classes: int, expected: bool) -> None:
    from multicloud_cv.datasets.model import BoxAnnotation

    box = (BoxAnnotation(0, 1, 1, 10, 10),)
    images = [
        ImageRecord(
            f"{n}.png", (0,) if task != "detection" else (), box if task == "detection" else (), "train", 64, 64
        )
        for n in range(3)
    ]
    dataset = Dataset(tmp_path, ["only"][:classes], images, task=task)
    codes = [f.code for f in check_structure(dataset, Task(task), capabilities_limits(task))]
    assert ("too-few-labels" in codes) is expected


def test_test_labels_must_overlap_training_labels(tmp_path: Path) -> None:
    images = [ImageRecord(f"t{n}.png", (n % 2,), split="train") for n in range(4)]
    images += [ImageRecord(f"s{n}.png", (2 + n % 2,), split="test") for n in range(2)]
    dataset = Dataset(tmp_path, ["a", "b", "c", "d"], images)
    codes = [f.code for f in check_structure(dataset, Task.CLASSIFICATION, capabilities_limits())]
    assert "test-labels-unknown" in codes
