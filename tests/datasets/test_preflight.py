"""Preflight: each check fires on the mistake it exists for, and stays quiet on good data."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from multicloud_cv.capabilities import Limits, Task
from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.datasets.preflight import (
    BaseModel,
    PreflightContext,
    Severity,
    check_dataset,
    preflight,
)
from multicloud_cv.errors import DatasetError
from multicloud_cv.testing.datasets import make_detection_dataset, make_multilabel_dataset

LOOSE = Limits(min_images_per_label=1, min_labels=1)


def codes(findings: list) -> set[str]:
    return {f.code for f in findings}


@pytest.fixture()
def detection(tmp_path: Path) -> Dataset:
    return make_detection_dataset(tmp_path / "det")


def test_good_detection_dataset_has_no_errors(detection: Dataset) -> None:
    found = check_dataset(detection, Task.DETECTION, LOOSE, files=True, decode=True)
    assert [f for f in found if f.severity is Severity.ERROR] == []


def _with_box(dataset: Dataset, box: BoxAnnotation) -> Dataset:
    first = dataset.images[1]
    images = [replace(first, boxes=(*first.boxes, box)), *dataset.images[2:], dataset.images[0]]
    return replace(dataset, images=images)


def test_box_outside_the_image_is_an_error_naming_the_file(detection: Dataset) -> None:
    bad = _with_box(detection, BoxAnnotation(0, 50, 10, 70, 20))  # image is 64 wide
    found = check_dataset(bad, Task.DETECTION, LOOSE)
    outside = [f for f in found if f.code == "box-outside-image"]
    assert outside and outside[0].path == detection.images[1].path and "64x48" in outside[0].message


def test_box_outside_is_found_from_the_header_when_the_annotation_has_no_size(detection: Dataset) -> None:
    bad = _with_box(detection, BoxAnnotation(0, 50, 10, 70, 20))
    bad = replace(bad, images=[replace(i, width=None, height=None) for i in bad.images])
    assert "box-outside-image" not in codes(check_dataset(bad, Task.DETECTION, LOOSE))
    assert "box-outside-image" in codes(check_dataset(bad, Task.DETECTION, LOOSE, files=True))


def test_zero_area_box_is_an_error(detection: Dataset) -> None:
    bad = _with_box(detection, BoxAnnotation(1, 10, 10, 10, 30))
    with pytest.raises(DatasetError, match="zero area"):
        preflight(bad, Task.DETECTION, LOOSE)


def test_class_with_no_boxes_is_an_error(detection: Dataset) -> None:
    bad = replace(detection, classes=[*detection.classes, "hexagon"])
    with pytest.raises(DatasetError, match="class 'hexagon' has no training boxes"):
        preflight(bad, Task.DETECTION, LOOSE)


def test_images_without_boxes_are_valid_negatives_but_warned_where_ignored(detection: Dataset) -> None:
    assert not [f for f in check_dataset(detection, Task.DETECTION, LOOSE) if f.code == "negatives-ignored"]
    found = check_dataset(detection, Task.DETECTION, replace(LOOSE, ignores_negative_images=True))
    warning = [f for f in found if f.code == "negatives-ignored"]
    assert warning and warning[0].severity is Severity.WARNING
    preflight(detection, Task.DETECTION, replace(LOOSE, ignores_negative_images=True))  # warnings do not stop


def test_too_few_images_per_label_differs_for_detection(detection: Dataset) -> None:
    limits = Limits(min_images_per_label=1, min_images_per_label_detection=15)
    with pytest.raises(DatasetError, match="at least 15 per label"):
        preflight(detection, Task.DETECTION, limits, provider="customvision")


def test_labels_and_boxes_per_image_limits(detection: Dataset) -> None:
    found = check_dataset(detection, Task.DETECTION, replace(LOOSE, max_boxes_per_image=1, max_labels_per_image=1))
    assert {"too-many-boxes", "too-many-labels-per-image"} <= codes(found)


def test_same_image_in_train_and_test_is_found_by_content(detection: Dataset) -> None:
    train_image = detection.split("train")[1]
    copy = Path(detection.root / "images" / "copy.png")
    copy.write_bytes(detection.absolute(train_image).read_bytes())
    leaked = replace(detection, images=[*detection.images, replace(train_image, path="images/copy.png", split="test")])
    found = [f for f in check_dataset(leaked, Task.DETECTION, LOOSE, files=True) if f.code == "train-test-duplicate"]
    assert found and "images/copy.png" in found[0].message and train_image.path in found[0].message


def test_file_limits_bytes_sides_format_rgb_aspect(tmp_path: Path) -> None:
    dataset = make_multilabel_dataset(tmp_path / "ml")
    gray = dataset.absolute(dataset.images[0])
    Image.new("L", (40, 32)).save(gray)
    limits = replace(
        LOOSE,
        max_image_bytes=50,
        min_image_side=33,
        requires_rgb=True,
        image_formats=frozenset({"JPEG"}),
        max_aspect_ratio=1.1,
    )
    found = check_dataset(dataset, Task.MULTILABEL, limits, files=True)
    assert {"image-too-large", "image-too-small", "not-rgb", "image-format", "aspect-ratio"} <= codes(found)
    not_rgb = [f for f in found if f.code == "not-rgb"]
    assert len(not_rgb) == 1 and not_rgb[0].path == str(gray)


def test_corrupt_image_found_when_decoding(tmp_path: Path) -> None:
    dataset = make_multilabel_dataset(tmp_path / "ml")
    path = dataset.absolute(dataset.images[2])
    path.write_bytes(path.read_bytes()[:60])
    found = check_dataset(dataset, Task.MULTILABEL, LOOSE, files=True, decode=True)
    assert "corrupt-image" in codes(found)


def test_images_in_several_buckets(tmp_path: Path) -> None:
    images = [ImageRecord(f"s3://bucket-{i % 2}/img/{i}.jpg", labels=(i % 2,)) for i in range(4)]
    dataset = Dataset(root=tmp_path, classes=["a", "b"], images=images)
    found = check_dataset(dataset, Task.CLASSIFICATION, replace(LOOSE, single_bucket=True))
    assert "images-in-several-buckets" in codes(found)
    assert "images-in-several-buckets" not in codes(check_dataset(dataset, Task.CLASSIFICATION, LOOSE))


def test_test_labels_must_overlap_training_labels(tmp_path: Path) -> None:
    images = [
        ImageRecord("a.jpg", labels=(0,), split="train"),
        ImageRecord("b.jpg", labels=(1,), split="train"),
        ImageRecord("c.jpg", labels=(2,), split="test"),
        ImageRecord("d.jpg", labels=(3,), split="test"),
    ]
    dataset = Dataset(root=tmp_path, classes=["a", "b", "c", "d"], images=images)
    limits = replace(LOOSE, min_test_label_overlap=0.5)
    assert "test-labels-unknown" in codes(check_dataset(dataset, Task.CLASSIFICATION, limits))


def test_job_context_checks(detection: Dataset) -> None:
    context = PreflightContext(
        provider="sagemaker",
        region="eu-west-1",
        bucket="data",
        bucket_region="us-east-1",
        mini_batch_size=5,
        channels={"train": "application/x-recordio", "validation": None, "training": "application/x-recordio"},
        accepted_channels={"train", "validation", "model"},
        image_shape=(3, 224, 224),
        base_model=BaseModel(num_classes=5, image_shape=(3, 300, 300)),
        label_width=6,
    )
    found = check_dataset(detection, Task.DETECTION, LOOSE, context)
    assert {
        "bucket-region",
        "mini-batch-too-large",
        "channel-content-type",
        "channel-name",
        "base-model-classes",
        "base-model-image-shape",
        "label-width",
    } <= codes(found)
    width = next(f for f in found if f.code == "label-width")
    most = max(len(i.boxes) for i in detection.images)
    assert f"at least {2 + 5 * most}" in width.fix
    batch = next(f for f in found if f.code == "mini-batch-too-large")
    assert "The number of input images must be bigger or equal to the mini_batch_size." in batch.message


def test_errors_come_before_warnings_and_preflight_counts_the_rest(detection: Dataset) -> None:
    bad = _with_box(detection, BoxAnnotation(1, 10, 10, 10, 30))
    bad = _with_box(bad, BoxAnnotation(0, 50, 10, 90, 20))
    found = check_dataset(bad, Task.DETECTION, replace(LOOSE, ignores_negative_images=True))
    assert found[0].severity is Severity.ERROR and found[-1].severity is Severity.WARNING
    with pytest.raises(DatasetError, match=r"1 more problem"):
        preflight(bad, Task.DETECTION, LOOSE)


def test_job_context_checks_files_a_rec_against_its_lst_and_manifest_attributes(tmp_path: Path) -> None:
    from multicloud_cv.datasets.formats import write_dataset

    dataset = make_multilabel_dataset(tmp_path / "ml")
    rec_dir = write_dataset(dataset, tmp_path / "rec", "recordio")
    rec, lst = rec_dir / "train.rec", rec_dir / "train.lst"
    context = PreflightContext(rec_files=[(rec, lst)])
    assert "rec-lst-count" not in codes(check_dataset(dataset, Task.MULTILABEL, LOOSE, context))
    lst.write_text(lst.read_text() + "99\t1\t0\t0\textra.png\n")
    found = [f for f in check_dataset(dataset, Task.MULTILABEL, LOOSE, context) if f.code == "rec-lst-count"]
    assert found and str(rec.name) in found[0].message

    manifest_dir = write_dataset(dataset, tmp_path / "manifest", "sagemaker-manifest")
    manifest = manifest_dir / "train.manifest"
    lines = manifest.read_text().splitlines()
    lines[2] = lines[2].replace('"class"', '"klass"')
    manifest.write_text("\n".join(lines) + "\n")
    context = PreflightContext(manifests=[(manifest, ["source-ref", "class"])])
    found = [f for f in check_dataset(dataset, Task.MULTILABEL, LOOSE, context) if f.code == "manifest-attributes"]
    assert found and "train.manifest:3" in found[0].message and "class" in found[0].message
