"""Vertex AI import JSON Lines: round trips per task, the docs' own line shapes, detection, errors with file:line."""

from __future__ import annotations

import json
from dataclasses import astuple, replace
from pathlib import Path

import pytest

from multicloud_cv.datasets import vertex_jsonl
from multicloud_cv.datasets.folder import read_folder
from multicloud_cv.datasets.formats import detect_format, read_dataset, write_dataset
from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError
from multicloud_cv.testing import make_tiny_dataset
from multicloud_cv.testing.datasets import assert_same_dataset, make_detection_dataset, make_multilabel_dataset

SPLITS = {"train": 3, "validation": 2, "test": 2}


def unassign_last(dataset: Dataset) -> Dataset:
    """The dataset with its last image unassigned (split None), so that case round-trips too."""
    images = [*dataset.images[:-1], replace(dataset.images[-1], split=None)]
    return replace(dataset, images=images)


@pytest.fixture
def detection(tmp_path: Path) -> Dataset:
    return unassign_last(make_detection_dataset(tmp_path / "src", per_split=SPLITS))


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- round trips --------------------------------------------------------------------------------


def test_classification_round_trip_through_the_registry(tmp_path: Path) -> None:
    tiny = unassign_last(read_folder(make_tiny_dataset(tmp_path / "data", train_per_class=2, test_per_class=1, size=8)))
    out = write_dataset(tiny, tmp_path / "out", "vertex-jsonl")
    assert sorted(p.name for p in out.iterdir()) == ["classes.txt", "dataset.jsonl", "images"]
    assert detect_format(out) == "vertex-jsonl"
    first, last = lines(out / "dataset.jsonl")[0], lines(out / "dataset.jsonl")[-1]
    assert first == {
        "imageGcsUri": "images/circle_000.png",  # read_folder lists test/ first
        "classificationAnnotation": {"displayName": "circle"},
        "dataItemResourceLabels": {"aiplatform.googleapis.com/ml_use": "test"},
    }
    assert "dataItemResourceLabels" not in last  # unassigned: Vertex splits it itself
    back = read_dataset(out, "vertex-jsonl")
    assert back.source_format == "vertex-jsonl" and back.root == out
    assert_same_dataset(tiny, back)
    write_dataset(back, tmp_path / "again", "vertex-jsonl")
    assert (tmp_path / "again" / "dataset.jsonl").read_text() == (out / "dataset.jsonl").read_text()


def test_multilabel_round_trip_keeps_empty_label_sets_and_class_order(tmp_path: Path) -> None:
    data = unassign_last(make_multilabel_dataset(tmp_path / "src", per_split=SPLITS))
    data.images[1] = replace(data.images[1], labels=())
    vertex_jsonl.write(data, tmp_path / "out")
    assert (tmp_path / "out" / "classes.txt").read_text() == "square\ncircle\ntriangle\n"  # not sorted: kept
    second = lines(tmp_path / "out" / "dataset.jsonl")[1]
    assert second["classificationAnnotations"] == []
    back = vertex_jsonl.read(tmp_path / "out")
    assert back.task == "multilabel"
    assert_same_dataset(data, back)


def test_detection_round_trip_with_a_negative_image(detection: Dataset, tmp_path: Path) -> None:
    vertex_jsonl.write(detection, tmp_path / "out")
    rows = lines(tmp_path / "out" / "dataset.jsonl")
    assert rows[0]["boundingBoxAnnotations"] == []  # the first train image has no boxes
    box = detection.images[1].boxes[0]
    written = rows[1]["boundingBoxAnnotations"][0]
    assert written["displayName"] == detection.classes[box.label]
    assert written["xMin"] == pytest.approx(box.x_min / 64, abs=1e-6)
    assert written["yMax"] == pytest.approx(box.y_max / 48, abs=1e-6)
    back = vertex_jsonl.read(tmp_path / "out" / "dataset.jsonl")
    assert back.task == "detection" and back.classes == detection.classes
    assert_same_dataset(detection, back)
    assert vertex_jsonl.import_schema_uri("detection").endswith("image_bounding_box_io_format_1.0.0.yaml")


def test_gs_references_need_image_sizes_to_read_boxes(detection: Dataset, tmp_path: Path) -> None:
    def to_gs(image: ImageRecord) -> str:
        return "gs://bucket/shapes/" + Path(image.path).name

    vertex_jsonl.write(detection, tmp_path / "out", image_ref=to_gs, filename="import.jsonl")
    assert not (tmp_path / "out" / "images").exists()
    rows = lines(tmp_path / "out" / "import.jsonl")
    assert rows[0]["imageGcsUri"] == "gs://bucket/shapes/train_000.png"
    with pytest.raises(DatasetError, match=r"import\.jsonl:2: boxes are relative but the size of gs://.*image_size="):
        vertex_jsonl.read(tmp_path / "out")
    back = vertex_jsonl.read(tmp_path / "out", image_size=lambda ref: (64, 48))
    assert back.images[1].path == "gs://bucket/shapes/train_001.png"
    for got, want in zip(back.images, detection.images, strict=True):
        assert [b.label for b in got.boxes] == [b.label for b in want.boxes]
        assert [c for b in got.boxes for c in astuple(b)] == pytest.approx(
            [c for b in want.boxes for c in astuple(b)], abs=1e-3
        )
    assert [i.split for i in back.images] == [i.split for i in detection.images]


# --- what Vertex documents and exports -------------------------------------------------------------

DOCS_SINGLE = """\
{"imageGcsUri": "gs://bucket/filename1.jpeg", "classificationAnnotation": {"displayName": "daisy", \
"annotationResourceLabels": {"aiplatform.googleapis.com/annotation_set_name": "displayName", \
"env": "prod"}}, "dataItemResourceLabels": {"aiplatform.googleapis.com/ml_use": "training"}}
{"imageGcsUri": "gs://bucket/filename2.gif", "classificationAnnotation": {"displayName": "dandelion"}, \
"dataItemResourceLabels": {"aiplatform.googleapis.com/ml_use": "test"}}
{"imageGcsUri": "gs://bucket/filename3.png", "classificationAnnotation": {"displayName": "daisy"}, \
"dataItemResourceLabels": {"aiplatform.googleapis.com/ml_use": "validation"}}
{"imageGcsUri":"gs://test_b/gcs3/enct.jpg","classificationAnnotation":{"displayName":"roses",\
"annotationResourceLabels":{"aiplatform.googleapis.com/annotation_set_name":"8066716590760001536"}},\
"dataItemResourceLabels":{}}
"""

DOCS_MULTI = """\
{"imageGcsUri": "gs://bucket/filename.ext", "classificationAnnotations": [{"displayName": "LABEL1", \
"annotationResourceLabels": {"aiplatform.googleapis.com/annotation_set_name": "displayName", \
"label_type": "flower_type"}}, {"displayName": "LABEL2", "annotationResourceLabels": \
{"aiplatform.googleapis.com/annotation_set_name": "displayName", "label_type": "image_shot_type"}}], \
"dataItemResourceLabels": {"aiplatform.googleapis.com/ml_use": "training"}}
"""

DOCS_BOXES = """\
{"imageGcsUri": "gs://bucket/filename.ext", "boundingBoxAnnotations": [{"displayName": "OBJECT1_LABEL", \
"xMin": 0.1, "yMin": 0.2, "xMax": 0.5, "yMax": 0.6, "annotationResourceLabels": \
{"aiplatform.googleapis.com/annotation_set_name": "displayName", "env": "prod"}}, {"displayName": \
"OBJECT2_LABEL", "xMin": 0.0, "yMin": 0.5, "xMax": 1.0, "yMax": 1.0}], \
"dataItemResourceLabels": {"aiplatform.googleapis.com/ml_use": "test"}}
"""


def test_reads_the_single_label_lines_vertex_documents_and_exports(tmp_path: Path) -> None:
    (tmp_path / "flowers.jsonl").write_text(DOCS_SINGLE)
    assert vertex_jsonl.detect(tmp_path / "flowers.jsonl") and vertex_jsonl.detect(tmp_path)
    data = vertex_jsonl.read(tmp_path / "flowers.jsonl")
    assert data.task == "classification" and data.classes == ["daisy", "dandelion", "roses"]  # sorted names
    assert [(i.path, i.labels, i.split) for i in data.images] == [
        ("gs://bucket/filename1.jpeg", (0,), "train"),
        ("gs://bucket/filename2.gif", (1,), "test"),
        ("gs://bucket/filename3.png", (0,), "validation"),
        ("gs://test_b/gcs3/enct.jpg", (2,), None),
    ]


def test_reads_the_documented_multi_label_and_bounding_box_lines(tmp_path: Path) -> None:
    multi = tmp_path / "multi.jsonl"
    multi.write_text(DOCS_MULTI)
    data = vertex_jsonl.read(multi)
    assert data.task == "multilabel" and data.classes == ["LABEL1", "LABEL2"]
    assert data.images[0].labels == (0, 1) and data.images[0].split == "train"
    boxes = tmp_path / "boxes.jsonl"
    boxes.write_text(DOCS_BOXES)
    data = vertex_jsonl.read(boxes, image_size=lambda ref: (200, 100))
    assert data.task == "detection" and data.classes == ["OBJECT1_LABEL", "OBJECT2_LABEL"]
    assert data.images[0].boxes == (
        BoxAnnotation(0, 20.0, 20.0, 100.0, 60.0),
        BoxAnnotation(1, 0.0, 50.0, 200.0, 100.0),
    )
    assert (data.images[0].width, data.images[0].height, data.images[0].split) == (200, 100, "test")


def test_detect(tmp_path: Path, detection: Dataset) -> None:
    vertex_jsonl.write(detection, tmp_path / "out")
    assert vertex_jsonl.detect(tmp_path / "out") and vertex_jsonl.detect(tmp_path / "out" / "dataset.jsonl")
    assert not vertex_jsonl.detect(tmp_path / "out" / "classes.txt")
    assert not vertex_jsonl.detect(detection.root)  # a folder of images
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "out.jsonl").write_text('{"source-ref": "s3://b/a.jpg", "class": 1}\n')
    assert not vertex_jsonl.detect(tmp_path / "gt") and not vertex_jsonl.detect(tmp_path / "gt" / "out.jsonl")
    (tmp_path / "gt" / "bad.jsonl").write_text("{not json\n")
    assert not vertex_jsonl.detect(tmp_path / "gt" / "bad.jsonl")


# --- bad input ----------------------------------------------------------------------------------

GOOD = '{"imageGcsUri": "gs://b/a.jpg", "classificationAnnotation": {"displayName": "cat"}}'


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"imageGcsUri": "gs://b/b.jpg", ', r"x\.jsonl:3: not valid JSON \(.*column"),
        ('["gs://b/b.jpg"]', r"x\.jsonl:3: expected a JSON object"),
        ('{"classificationAnnotation": {"displayName": "cat"}}', r"x\.jsonl:3: missing required field imageGcsUri"),
        ('{"imageGcsUri": "gs://b/b.jpg", "classificationAnnotation": {}}', r"x\.jsonl:3: .*has no displayName"),
        (
            '{"imageGcsUri": "gs://b/b.jpg", "dataItemResourceLabels": {"aiplatform.googleapis.com/ml_use": "train"}}',
            r"x\.jsonl:3: aiplatform.googleapis.com/ml_use is 'train'; use training, validation or test",
        ),
        ('{"imageGcsUri": "gs://b/a.jpg"}', r"x\.jsonl:3: image gs://b/a\.jpg already listed at .*x\.jsonl:1"),
        ('{"imageGcsUri": "missing.png"}', r"x\.jsonl:3: image missing\.png not found under"),
        (
            '{"imageGcsUri": "gs://b/b.jpg", "boundingBoxAnnotations": []}',
            r"x\.jsonl:1: classification annotation in a file of bounding boxes",
        ),
        (
            '{"imageGcsUri": "gs://b/b.jpg", "boundingBoxAnnotations": [{"displayName": "cat", "xMin": 0.1}]}',
            r"x\.jsonl:3: boundingBoxAnnotations\[1\] has no numeric xMax",
        ),
        (
            '{"imageGcsUri": "gs://b/b.jpg", "boundingBoxAnnotations": '
            '[{"displayName": "cat", "xMin": 0.5, "xMax": 0.4, "yMin": 0, "yMax": 1}]}',
            r"x\.jsonl:3: boundingBoxAnnotations\[1\] .* is not a relative box",
        ),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "x.jsonl").write_text(f"{GOOD}\n\n{line}\n")
    with pytest.raises(DatasetError, match=message):
        vertex_jsonl.read(tmp_path / "x.jsonl")


def test_label_outside_classes_txt(tmp_path: Path) -> None:
    (tmp_path / "dataset.jsonl").write_text(
        GOOD + "\n" + GOOD.replace("a.jpg", "b.jpg").replace('"cat"', '"dog"') + "\n"
    )
    (tmp_path / "classes.txt").write_text("cat\n")
    with pytest.raises(
        DatasetError, match=r"dataset\.jsonl:2: label 'dog' is not one of the 1 classes in classes\.txt"
    ):
        vertex_jsonl.read(tmp_path)
    assert vertex_jsonl.read(tmp_path, classes=["dog", "cat"]).classes == ["dog", "cat"]  # explicit order wins


def test_writer_refuses_what_vertex_refuses(detection: Dataset, tmp_path: Path) -> None:
    crowded = replace(detection.images[1], boxes=(BoxAnnotation(0, 1, 1, 5, 5),) * 501)
    with pytest.raises(DatasetError, match=r"501 boxes; Vertex takes at most 500 per image"):
        vertex_jsonl.write(replace(detection, images=[crowded]), tmp_path / "a")
    outside = replace(detection.images[1], boxes=(BoxAnnotation(0, 1, 1, 70, 5),))
    with pytest.raises(DatasetError, match=r"70.* lies outside the image \(size 64 px\)"):
        vertex_jsonl.write(replace(detection, images=[outside]), tmp_path / "b")
    two = replace(detection, task="classification", images=[ImageRecord(detection.images[1].path, labels=(0, 1))])
    with pytest.raises(DatasetError, match="2 labels in a single-label dataset; use multilabel"):
        vertex_jsonl.write(two, tmp_path / "c")
    with pytest.raises(DatasetError, match="takes image_ref, filename; got bogus"):
        vertex_jsonl.write(detection, tmp_path / "d", bogus=1)
