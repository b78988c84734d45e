"""Azure Custom Vision upload batches: round trips per project type, batching limits, errors naming file and entry."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from multicloud_cv.datasets import customvision
from multicloud_cv.datasets.folder import read_folder
from multicloud_cv.datasets.formats import detect_format, read_dataset, write_dataset
from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError
from multicloud_cv.testing import make_tiny_dataset
from multicloud_cv.testing.datasets import assert_same_dataset, make_detection_dataset, make_multilabel_dataset

SPLITS = {"train": 4, "validation": 2, "test": 2}


def unassign_last(dataset: Dataset) -> Dataset:
    images = [*dataset.images[:-1], replace(dataset.images[-1], split=None)]
    return replace(dataset, images=images)


@pytest.fixture
def detection(tmp_path: Path) -> Dataset:
    return unassign_last(make_detection_dataset(tmp_path / "src", per_split=SPLITS))


def batch(path: Path) -> list[dict]:
    return json.loads(path.read_text())["images"]


# --- round trips --------------------------------------------------------------------------------


def test_classification_round_trip_in_batches(tmp_path: Path) -> None:
    tiny = unassign_last(read_folder(make_tiny_dataset(tmp_path / "data", train_per_class=3, test_per_class=1, size=8)))
    out = write_dataset(tiny, tmp_path / "out", "customvision", batch_size="5")  # as -o batch_size=5 gives it
    assert detect_format(out) == "customvision"
    assert json.loads((out / "tags.json").read_text()) == {
        "domain_type": "Classification",
        "classification_type": "Multiclass",
        "tags": ["circle", "square", "triangle"],
    }
    files = sorted((out / "batches").iterdir())
    assert [f.name for f in files] == ["batch-0001.json", "batch-0002.json", "batch-0003.json"]
    assert [len(batch(f)) for f in files] == [5, 5, 2]
    first = batch(files[0])[0]
    assert first == {
        "name": "circle_000.png",
        "path": "images/circle_000.png",
        "tag_names": ["circle"],
        "regions": [],
        "split": "test",
    }
    assert (out / first["path"]).read_bytes() == tiny.absolute(tiny.images[0]).read_bytes()
    back = read_dataset(out, "customvision")
    assert back.source_format == "customvision" and back.root == out
    assert_same_dataset(tiny, back)


def test_multilabel_round_trip(tmp_path: Path) -> None:
    data = unassign_last(make_multilabel_dataset(tmp_path / "src", per_split=SPLITS))
    data.images[2] = replace(data.images[2], labels=())
    customvision.write(data, tmp_path / "out")
    tags = json.loads((tmp_path / "out" / "tags.json").read_text())
    assert (tags["classification_type"], tags["tags"]) == ("Multilabel", ["square", "circle", "triangle"])
    back = customvision.read(tmp_path / "out")
    assert back.task == "multilabel"
    assert_same_dataset(data, back)


def test_detection_round_trip_with_normalised_regions(detection: Dataset, tmp_path: Path) -> None:
    customvision.write(detection, tmp_path / "out")
    entries = batch(tmp_path / "out" / "batches" / "batch-0001.json")
    assert entries[0]["regions"] == [] and entries[0]["tag_names"] == []  # a negative image
    box = detection.images[1].boxes[0]
    region = entries[1]["regions"][0]
    assert region == {
        "tag_name": detection.classes[box.label],
        "left": pytest.approx(box.x_min / 64, abs=1e-6),
        "top": pytest.approx(box.y_min / 48, abs=1e-6),
        "width": pytest.approx((box.x_max - box.x_min) / 64, abs=1e-6),
        "height": pytest.approx((box.y_max - box.y_min) / 48, abs=1e-6),
    }
    back = customvision.read(tmp_path / "out" / "tags.json")
    assert back.task == "detection" and back.classes == detection.classes
    assert_same_dataset(detection, back)


# --- batches for the provider plugin ------------------------------------------------------------


def test_iter_batches_gives_absolute_paths_and_cuts_by_count_and_bytes(detection: Dataset) -> None:
    batches = list(customvision.iter_batches(detection, batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 2]
    first = batches[0][0]
    assert first["path"] == str(detection.absolute(detection.images[0])) and first["name"] == "train_000.png"
    assert [e["split"] for b in batches for e in b] == [i.split for i in detection.images]
    sizes = [detection.absolute(image).stat().st_size for image in detection.images]
    by_bytes = list(customvision.iter_batches(detection, max_batch_bytes=sizes[0] + sizes[1]))
    assert len(by_bytes[0]) == 2 and sum(len(b) for b in by_bytes) == len(detection.images)
    assert [len(b) for b in customvision.iter_batches(detection)] == [8]
    for bad in (0, 65, True, 2.5):
        with pytest.raises(DatasetError, match=r"batch_size .* must be a whole number from 1 to 64"):
            list(customvision.iter_batches(detection, batch_size=bad))  # type: ignore[arg-type]
    assert customvision.project_settings("multilabel") == {
        "domain_type": "Classification",
        "classification_type": "Multilabel",
    }


# --- hand-written upload folder (the SDK's ImageFileCreateEntry / Region fields, by name) ----------


def test_reads_a_hand_written_upload_folder(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "images").mkdir()
    Image.new("RGB", (400, 300)).save(tmp_path / "images" / "a.jpg")
    Image.new("RGB", (100, 100)).save(tmp_path / "images" / "b.png")
    (tmp_path / "tags.json").write_text(
        '{"domain_type": "ObjectDetection", "classification_type": null, "tags": ["fork", "scissors"]}'
    )
    (tmp_path / "batches").mkdir()
    (tmp_path / "batches" / "batch-0001.json").write_text(
        """{"images": [
  {"name": "a.jpg", "path": "images/a.jpg", "tag_names": [], "split": "train",
   "regions": [{"tag_name": "fork", "left": 0.25, "top": 0.5, "width": 0.5, "height": 0.25},
               {"tag_name": "scissors", "left": 0, "top": 0, "width": 1, "height": 1}]},
  {"name": "b.png", "path": "images/b.png"}
]}"""
    )
    assert customvision.detect(tmp_path)
    data = customvision.read(tmp_path)
    assert data.classes == ["fork", "scissors"]
    assert data.images[0] == ImageRecord(
        "images/a.jpg",
        boxes=(BoxAnnotation(0, 100.0, 150.0, 300.0, 225.0), BoxAnnotation(1, 0.0, 0.0, 400.0, 300.0)),
        split="train",
        width=400,
        height=300,
    )
    assert data.images[1] == ImageRecord("images/b.png")  # optional fields absent: no regions, unassigned


def test_detect(detection: Dataset, tmp_path: Path) -> None:
    customvision.write(detection, tmp_path / "out")
    assert customvision.detect(tmp_path / "out") and customvision.detect(tmp_path / "out" / "tags.json")
    assert not customvision.detect(detection.root)
    (tmp_path / "lonely").mkdir()
    (tmp_path / "lonely" / "tags.json").write_text("{}")
    assert not customvision.detect(tmp_path / "lonely")  # no batches/ folder


# --- bad input ----------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    from PIL import Image

    root = tmp_path / "cv"
    (root / "images").mkdir(parents=True)
    (root / "batches").mkdir()
    Image.new("RGB", (10, 10)).save(root / "images" / "a.png")
    (root / "tags.json").write_text(
        '{"domain_type": "ObjectDetection", "classification_type": null, "tags": ["cat", "dog"]}'
    )
    return root


REGION = {"tag_name": "cat", "left": 0.1, "top": 0.1, "width": 0.5, "height": 0.5}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"path": "images/a.png"}, r"batch-0001\.json entry 1: missing required field 'name'"),
        ({"name": "a.png"}, r"batch-0001\.json entry 1: missing required field 'path'"),
        ({"name": "x.png", "path": "images/x.png"}, r"entry 1: image images/x\.png not found under"),
        (
            {"name": "a.png", "path": "images/a.png", "regions": [{**REGION, "tag_name": "cow"}]},
            r"entry 1: tag 'cow' is not one of the 2 tags in tags\.json",
        ),
        (
            {"name": "a.png", "path": "images/a.png", "regions": [{k: v for k, v in REGION.items() if k != "height"}]},
            r"entry 1: region has no numeric 'height'",
        ),
        (
            {"name": "a.png", "path": "images/a.png", "regions": [{**REGION, "left": 0.7}]},
            r"entry 1: region .* reaches past the image",
        ),
        (
            {"name": "a.png", "path": "images/a.png", "regions": [{**REGION, "top": 12}]},
            r"entry 1: region top=12 is not normalised to 0\.\.1",
        ),
        ({"name": "a.png", "path": "images/a.png", "split": "dev"}, r"entry 1: unknown split 'dev'"),
    ],
)
def test_bad_entries_name_file_and_entry(folder: Path, entry: dict, message: str) -> None:
    (folder / "batches" / "batch-0001.json").write_text(json.dumps({"images": [entry]}))
    with pytest.raises(DatasetError, match=message):
        customvision.read(folder)


def test_bad_files(folder: Path) -> None:
    target = folder / "batches" / "batch-0001.json"
    target.write_text('{"images": [\n  {"name": "a.png",\n   "path": }\n]}')
    with pytest.raises(DatasetError, match=r"batch-0001\.json:3: not valid JSON"):
        customvision.read(folder)
    entry = {"name": "a.png", "path": "images/a.png"}
    target.write_text(json.dumps({"images": [entry] * 65}))
    with pytest.raises(DatasetError, match=r"batch-0001\.json: 65 entries; Custom Vision takes at most 64 per batch"):
        customvision.read(folder)
    target.write_text(json.dumps({"images": [{**entry, "tag_names": ["cat", "dog"]}]}))
    (folder / "tags.json").write_text(
        '{"domain_type": "Classification", "classification_type": "Multiclass", "tags": ["cat", "dog"]}'
    )
    with pytest.raises(DatasetError, match=r"entry 1: 2 tags in a Multiclass project"):
        customvision.read(folder)
    (folder / "tags.json").write_text('{"domain_type": "Classification", "tags": ["cat"]}')
    with pytest.raises(DatasetError, match=r"tags\.json: domain_type 'Classification' with classification_type None"):
        customvision.read(folder)


def test_writer_refuses_what_custom_vision_refuses(detection: Dataset, tmp_path: Path) -> None:
    crowded = replace(detection.images[1], boxes=(BoxAnnotation(0, 1, 1, 5, 5),) * 301)
    with pytest.raises(DatasetError, match="301 boxes; Custom Vision takes at most 300 regions per image"):
        customvision.write(replace(detection, images=[crowded]), tmp_path / "a")
    big = tmp_path / "big.jpg"
    with big.open("wb") as handle:
        handle.truncate(6 * 1024 * 1024 + 1)
    huge = replace(detection, task="classification", images=[ImageRecord(str(big), labels=(0,))])
    with pytest.raises(DatasetError, match=r"big\.jpg: 6291457 bytes; Custom Vision takes training images up to 6 MB"):
        customvision.write(huge, tmp_path / "b")
    with pytest.raises(DatasetError, match="batch_size 65 must be a whole number from 1 to 64"):
        customvision.write(detection, tmp_path / "c", batch_size=65)
    assert not (tmp_path / "c" / "images").exists()  # refused before copying anything
    with pytest.raises(DatasetError, match="takes batch_size, max_batch_bytes; got size"):
        customvision.write(detection, tmp_path / "d", size=3)
