"""SageMaker augmented manifest (sagemaker-manifest): round trips, the documented samples, AttributeNames, errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from multicloud_cv.datasets import augmented_manifest as am
from multicloud_cv.datasets import groundtruth
from multicloud_cv.datasets.folder import read_folder
from multicloud_cv.datasets.formats import detect_format, read_dataset, write_dataset
from multicloud_cv.datasets.model import Dataset, ImageRecord
from multicloud_cv.errors import DatasetError
from multicloud_cv.testing import make_tiny_dataset
from multicloud_cv.testing.datasets import assert_same_dataset, make_detection_dataset, make_multilabel_dataset

FMT = "sagemaker-manifest"


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def round_trip(source: Dataset, out: Path, **options: object) -> Dataset:
    """write, read (detected), compare; write the read dataset again, read, compare; both writes identical."""
    first = write_dataset(source, out / "one", FMT, **options)
    assert detect_format(first) == FMT
    back = read_dataset(first)
    assert back.source_format == FMT and back.root == first
    assert_same_dataset(source, back)
    second = write_dataset(back, out / "two", FMT, **options)
    again = read_dataset(second, FMT)
    assert_same_dataset(source, again)
    for name in ("train.manifest", "test.manifest", "classes.txt"):
        if (first / name).exists():
            assert (first / name).read_text() == (second / name).read_text()
    return back


def test_classification_round_trip(tmp_path: Path) -> None:
    source = read_folder(make_tiny_dataset(tmp_path / "src", classes=3, train_per_class=2, test_per_class=1, size=8))
    round_trip(source, tmp_path)
    out = tmp_path / "one"
    assert sorted(p.name for p in out.iterdir()) == ["classes.txt", "images", "test.manifest", "train.manifest"]
    assert (out / "classes.txt").read_text() == "circle\nsquare\ntriangle\n"
    first = (out / "test.manifest").read_text().splitlines()[0]
    assert first == '{"source-ref":"images/circle_000.png","class":"0"}'  # train's circle_000.png is renamed
    assert lines(out / "train.manifest")[0] == {"source-ref": "images/circle_000-1.png", "class": "0"}


@pytest.mark.parametrize(("label_format", "sample"), [("multi-hot", "[0, 1, 1]"), ("class-id", "[1, 2]")])
def test_multilabel_round_trip(tmp_path: Path, label_format: str, sample: str) -> None:
    source = make_multilabel_dataset(tmp_path / "src")
    back = round_trip(source, tmp_path, label_format=label_format)
    assert back.task == "multilabel"
    second = lines(tmp_path / "one" / "train.manifest")[1]
    assert second == {"source-ref": "images/train_001.png", "class": sample}
    assert all(isinstance(line["class"], str) for line in lines(tmp_path / "one" / "train.manifest"))


def test_detection_round_trip_with_unassigned_split(tmp_path: Path) -> None:
    source = make_detection_dataset(tmp_path / "src", per_split={"train": 4, "validation": 2, None: 2})  # type: ignore[dict-item]
    round_trip(source, tmp_path)
    out = tmp_path / "one"
    assert {p.name for p in out.glob("*.manifest")} == {"train.manifest", "validation.manifest", "dataset.manifest"}
    line = lines(out / "train.manifest")[1]
    assert list(line) == ["source-ref", "bounding-box", "bounding-box-metadata"]
    assert line["bounding-box"]["image_size"] == [{"width": 64, "height": 48, "depth": 3}]
    assert set(line["bounding-box"]["annotations"][0]) == {"class_id", "left", "top", "width", "height"}
    assert line["bounding-box-metadata"] == {
        "class-map": {"0": "square", "1": "circle", "2": "triangle"},
        "type": "groundtruth/object-detection",
    }
    assert lines(out / "train.manifest")[0]["bounding-box"]["annotations"] == []  # the negative sample


def test_boxes_are_whole_pixels_within_half_a_pixel(tmp_path: Path) -> None:
    source = make_detection_dataset(tmp_path / "src", per_split={"train": 3})

    def nudge(image: ImageRecord) -> ImageRecord:
        return replace(image, boxes=tuple(replace(b, x_min=b.x_min + 0.4, y_max=b.y_max - 0.3) for b in image.boxes))

    images = [nudge(image) for image in source.images]
    shifted = replace(source, images=images)
    out = write_dataset(shifted, tmp_path / "out", FMT)
    for line in lines(out / "train.manifest"):
        assert all(isinstance(v, int) for a in line["bounding-box"]["annotations"] for v in a.values())
    assert_same_dataset(shifted, read_dataset(out))


def test_image_ref_writes_uris_and_no_images(tmp_path: Path) -> None:
    source = make_multilabel_dataset(tmp_path / "src", per_split={"train": 3})
    out = write_dataset(source, tmp_path / "out", FMT, image_ref=lambda image: f"s3://bkt/data/{image.path}")
    assert not (out / "images").exists()
    refs = [line["source-ref"] for line in lines(out / "train.manifest")]
    assert refs == [f"s3://bkt/data/images/train_00{i}.png" for i in range(3)]
    back = read_dataset(out)
    assert [i.path for i in back.images] == refs and back.classes == source.classes


def test_reads_documented_samples(tmp_path: Path) -> None:
    """The examples of the SageMaker DG (image-classification.md, object-detection.md), verbatim."""
    (tmp_path / "ic.manifest").write_text(
        '{"source-ref":"s3://image/filename1.jpg", "class":"0"}\n'
        '{"source-ref":"s3://image/filename2.jpg", "class":"1"}\n'
    )
    ic = am.read(tmp_path / "ic.manifest")
    assert ic.task == "classification" and ic.classes == ["0", "1"]
    assert [(i.path, i.labels, i.split) for i in ic.images] == [
        ("s3://image/filename1.jpg", (0,), None),
        ("s3://image/filename2.jpg", (1,), None),
    ]
    (tmp_path / "ml.manifest").write_text(
        '{"source-ref":"s3://image/filename1.jpg", "class":"[1, 0, 1]"}\n'
        '{"source-ref":"s3://image/filename2.jpg", "class":"[0, 1, 0]"}\n'
    )
    assert [i.labels for i in am.read(tmp_path / "ml.manifest").images] == [(0, 2), (1,)]
    assert [i.labels for i in am.read(tmp_path / "ml.manifest", label_format="class-id").images] == [(0, 1), (0, 1)]
    (tmp_path / "train.manifest").write_text(
        '{"source-ref": "s3://your_bucket/image1.jpg", "bounding-box":{"image_size":[{ "width": 500, "height": 400, '
        '"depth":3}], "annotations":[{"class_id": 0, "left": 111, "top": 134, "width": 61, "height": 128}, '
        '{"class_id": 5, "left": 161, "top": 250, "width": 80, "height": 50}]}, "bounding-box-metadata":{"class-map":'
        '{"0": "dog", "5": "horse"}, "type": "groundtruth/object_detection"}}\n'
        '{"source-ref": "s3://your_bucket/image2.jpg", "bounding-box":{"image_size":[{ "width": 400, "height": 300, '
        '"depth":3}], "annotations":[{"class_id": 1, "left": 100, "top": 120, "width": 43, "height": 78}]}, '
        '"bounding-box-metadata":{"class-map":{"1": "cat"}, "type": "groundtruth/object_detection"}}\n'
    )
    assert am.detect(tmp_path / "train.manifest")
    od = am.read(tmp_path / "train.manifest")
    assert od.task == "detection" and od.classes == ["dog", "cat", "2", "3", "4", "horse"]
    first = od.images[0]
    assert first.split == "train" and (first.width, first.height) == (500, 400)
    assert [(b.label, b.x_min, b.y_min, b.x_max, b.y_max) for b in first.boxes] == [
        (0, 111, 134, 172, 262),
        (5, 161, 250, 241, 300),
    ]


def test_ground_truth_class_id_lists_and_class_names(tmp_path: Path) -> None:
    """A Ground Truth multi-label output used as an augmented manifest: JSON list values, names from class-map."""
    (tmp_path / "a.png").write_bytes(b"x")
    meta = '"class-map": {"0": "person", "1": "bicycle"}, "type": "groundtruth/image-classification-multilabel"'
    (tmp_path / "out.manifest").write_text(
        f'{{"source-ref": "a.png", "labels": [1, 0], "labels-metadata": {{{meta}}}}}\n'
        f'{{"source-ref": "a.png", "labels": [1], "labels-metadata": {{{meta}}}}}\n'
    )
    data = am.read(tmp_path / "out.manifest", attribute="labels", label_format="class-id")
    assert data.classes == ["person", "bicycle"] and [i.labels for i in data.images] == [(0, 1), (1,)]


def test_attribute_names_and_order_check(tmp_path: Path) -> None:
    assert am.attribute_names("classification") == ["source-ref", "class"]
    assert am.attribute_names("multilabel") == ["source-ref", "class"]
    assert am.attribute_names("detection") == ["source-ref", "bounding-box"]
    assert am.attribute_names("detection", "boxes") == ["source-ref", "boxes"]
    with pytest.raises(DatasetError, match="unknown task"):
        am.attribute_names("segmentation")
    with pytest.raises(DatasetError, match="must be non-empty"):
        am.attribute_names("classification", "label-ref")
    manifest = tmp_path / "train.manifest"
    manifest.write_text(
        '{"source-ref": "s3://b/1.jpg", "class": "0"}\n\n{"class": "1", "source-ref": "s3://b/2.jpg"}\n'
        '{"source-ref": "s3://b/3.jpg", "label": "1"}\n'
    )
    with pytest.raises(DatasetError, match=r"train\.manifest:4: attribute 'class' \(AttributeNames\[1\].*empty batch"):
        am.check_attribute_order(manifest, ["source-ref", "class"])
    assert am.check_attribute_order(manifest, ["source-ref"]) == 3
    with pytest.raises(DatasetError, match="must start with the image reference"):
        am.check_attribute_order(manifest, ["class", "source-ref"])
    with pytest.raises(DatasetError, match="twice"):
        am.check_attribute_order(manifest, ["source-ref", "class", "class"])
    with pytest.raises(DatasetError, match="1 to 16"):
        am.check_attribute_order(manifest, [])
    manifest.write_text('{"source-ref": "s3://b/1.jpg", "class": "0"}\n{"source-ref": "s3://b/2.jpg", "class": ')
    with pytest.raises(DatasetError, match=r"train\.manifest:2: not valid JSON"):
        am.check_attribute_order(manifest, ["source-ref", "class"])


def test_detect(tmp_path: Path) -> None:
    source = make_detection_dataset(tmp_path / "src", per_split={"train": 2, "test": 1})
    ours = write_dataset(source, tmp_path / "am", FMT)
    assert am.detect(ours) and am.detect(ours / "train.manifest")
    gt = write_dataset(source, tmp_path / "gt", "groundtruth")
    assert not am.detect(gt) and groundtruth.detect(gt)  # Ground Truth output lines belong to 'groundtruth'
    assert not am.detect(tmp_path / "src") and not am.detect(tmp_path / "missing")
    (tmp_path / "x.json").write_text('{"images": [], "annotations": []}')
    assert not am.detect(tmp_path / "x.json")
    (tmp_path / "bad.manifest").write_text("not json\n")
    assert not am.detect(tmp_path / "bad.manifest")


@pytest.mark.parametrize(
    ("second_line", "message"),
    [
        ('{"source-ref": "a.png", "class": "1"', r"d\.manifest:2: not valid JSON"),
        ("[1, 2]", r"d\.manifest:2: a JSON list, not an object"),
        ('{"class": "1"}', r"d\.manifest:2: no 'source-ref'"),
        ('{"source-ref": "a.png", "label": "1"}', r"d\.manifest:2: attribute 'class' is missing.*empty batch"),
        ('{"source-ref": "a.png", "class": "5"}', r"d\.manifest:2: class 5 is out of range; .*classes\.txt names 2"),
        ('{"source-ref": "a.png", "class": "cat"}', r"d\.manifest:2: 'class' must be a class index"),
        ('{"source-ref": "gone.png", "class": "1"}', r"d\.manifest:2: image gone\.png not found"),
        ('{"source-ref": "a.png", "class": "[1, 0]"}', r"d\.manifest:2: 'class' holds a multilabel label"),
    ],
)
def test_bad_classification_lines(tmp_path: Path, second_line: str, message: str) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    (tmp_path / "d.manifest").write_text('{"source-ref": "a.png", "class": "0"}\n' + second_line + "\n")
    with pytest.raises(DatasetError, match=message):
        am.read(tmp_path)


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        ('{"class_id": 0, "left": 1, "top": 1, "width": -5, "height": 4}', r"d\.manifest:2: annotation 0 .*width -5"),
        ('{"class_id": 0, "left": 1, "top": 1, "width": 5}', r"d\.manifest:2: annotation 0 .*lacks height"),
        ('{"class_id": 7, "left": 1, "top": 1, "width": 5, "height": 4}', r"d\.manifest:2: class_id 7 is not in"),
        ('{"class_id": -1, "left": 1, "top": 1, "width": 5, "height": 4}', r"d\.manifest:2: .*class_id -1 is not"),
    ],
)
def test_bad_boxes(tmp_path: Path, annotation: str, message: str) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    size = '"image_size": [{"width": 10, "height": 10, "depth": 3}]'
    meta = '"bounding-box-metadata": {"class-map": {"0": "dog"}, "type": "groundtruth/object-detection"}'
    (tmp_path / "d.manifest").write_text(
        f'{{"source-ref": "a.png", "bounding-box": {{{size}, "annotations": []}}, {meta}}}\n'
        f'{{"source-ref": "a.png", "bounding-box": {{{size}, "annotations": [{annotation}]}}, {meta}}}\n'
    )
    with pytest.raises(DatasetError, match=message):
        am.read(tmp_path / "d.manifest")


def test_other_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"holds no \.manifest files"):
        am.read(tmp_path)
    with pytest.raises(DatasetError, match="unknown label format"):
        am.read(tmp_path, label_format="bits")
    (tmp_path / "d.manifest").write_text('{"source-ref": "s3://b/a.png", "x": "0", "y": "1"}\n')
    with pytest.raises(DatasetError, match=r"d\.manifest:1: cannot tell the label attribute .*pass attribute="):
        am.read(tmp_path)
    assert am.read(tmp_path, attribute="y").images[0].labels == (1,)
    (tmp_path / "d.manifest").write_text('{"source-ref": "s3://b/a.png", "class": "[1, 0]"}\n')
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    with pytest.raises(DatasetError, match=r"d\.manifest:1: multi-hot 'class' has 2 values but 3"):
        am.read(tmp_path, label_format="multi-hot")
    source = read_folder(make_tiny_dataset(tmp_path / "src", classes=2, train_per_class=1, test_per_class=0, size=8))
    with pytest.raises(DatasetError, match="exactly one label"):
        am.write(replace(source, images=[replace(source.images[0], labels=(0, 1))]), tmp_path / "w1")
    empty = replace(source, task="multilabel", images=[replace(source.images[0], labels=())])
    with pytest.raises(DatasetError, match="class-id lists cannot be empty"):
        am.write(empty, tmp_path / "w2", label_format="class-id")
    with pytest.raises(DatasetError, match="outside the 2 classes"):
        am.write(replace(source, images=[replace(source.images[0], labels=(4,))]), tmp_path / "w3")
