"""COCO instances JSON: round trips, layouts read, category ids, crowd boxes, detection, errors naming the file."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from multicloud_cv.datasets import coco
from multicloud_cv.datasets.formats import read_dataset, write_dataset
from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError
from multicloud_cv.testing.datasets import assert_same_dataset, make_detection_dataset


@pytest.fixture
def source(tmp_path: Path) -> Dataset:
    return make_detection_dataset(tmp_path / "src")


def write_json(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def tiny_coco(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "images": [{"id": 7, "file_name": "a.png", "width": 40, "height": 30}],
        "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 2, 10, 5], "area": 50, "iscrowd": 0}],
        "categories": [{"id": 3, "name": "cat"}],
    }
    document.update(overrides)
    return document


@pytest.mark.parametrize("copy_images", [True, False])
def test_round_trip_keeps_everything(source: Dataset, tmp_path: Path, copy_images: bool) -> None:
    out = write_dataset(source, tmp_path / "out", "coco", copy_images=copy_images)
    back = read_dataset(out, "coco")
    assert back.source_format == "coco" and back.task == "detection"
    assert_same_dataset(source, back, box_tolerance=0)
    assert all(back.absolute(image).is_file() for image in back.images)
    if copy_images:
        assert {p.name for p in (out / "images").iterdir()} == {Path(i.path).name for i in source.images}
        assert all(not Path(i.path).is_absolute() for i in back.images)
    else:
        assert not (out / "images").exists()
        assert all(str(back.absolute(i)).startswith(str(source.root)) for i in back.images)


def test_layout_ids_and_files(source: Dataset, tmp_path: Path) -> None:
    unassigned = replace(source.images[0], split=None)
    data = replace(source, images=[unassigned, *source.images[1:]])
    out = write_dataset(data, tmp_path / "out", "coco")
    names = sorted(p.name for p in (out / "annotations").iterdir())
    assert names == ["instances.json", "instances_test.json", "instances_train.json", "instances_validation.json"]
    train = json.loads((out / "annotations" / "instances_train.json").read_text())
    assert [c["id"] for c in train["categories"]] == [1, 2, 3]
    assert [c["name"] for c in train["categories"]] == source.classes
    first = train["annotations"][0]
    assert set(first) >= {"id", "image_id", "category_id", "bbox", "area", "iscrowd"}
    box = next(b for i in source.images[1:] for b in i.boxes)
    assert first["bbox"] == [box.x_min, box.y_min, box.x_max - box.x_min, box.y_max - box.y_min]
    assert first["category_id"] == box.label + 1
    all_ids = [
        img["id"]
        for name in names
        for img in json.loads((out / "annotations" / name).read_text())["images"]
    ]  # fmt: skip
    assert sorted(all_ids) == list(range(1, len(source.images) + 1))
    back = read_dataset(out, "coco")
    assert back.splits == {"unassigned": 1, "train": 7, "validation": 3, "test": 3}


def test_pycocotools_reads_our_output(source: Dataset, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    out = write_dataset(source, tmp_path / "out", "coco")
    api = COCO(str(out / "annotations" / "instances_train.json"))
    assert sorted(api.getCatIds()) == [1, 2, 3]
    train = source.split("train")
    assert len(api.getImgIds()) == len(train)
    assert len(api.getAnnIds()) == sum(len(i.boxes) for i in train)


def test_non_contiguous_category_ids_sorted_by_id(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"x")
    document = tiny_coco(
        categories=[{"id": 90, "name": "zebra"}, {"id": 3, "name": "cat"}, {"id": 17, "name": "ant"}],
        annotations=[
            {"id": 1, "image_id": 7, "category_id": 90, "bbox": [0, 0, 4, 4], "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 17, "bbox": [1.5, 2.25, 3, 1], "iscrowd": 0},
        ],
    )
    data = coco.read(write_json(tmp_path / "labels.json", document))
    assert data.classes == ["cat", "ant", "zebra"]
    assert data.images[0].boxes == (BoxAnnotation(2, 0, 0, 4, 4), BoxAnnotation(1, 1.5, 2.25, 4.5, 3.25))
    assert data.images[0].path == "images/a.png" and data.images[0].split is None
    assert (data.images[0].width, data.images[0].height) == (40, 30)
    out = write_dataset(data, tmp_path / "out", "coco")
    written = json.loads((out / "annotations" / "instances.json").read_text())
    assert [(c["id"], c["name"]) for c in written["categories"]] == [(1, "cat"), (2, "ant"), (3, "zebra")]
    assert sorted(a["category_id"] for a in written["annotations"]) == [2, 3]


def test_crowd_annotations_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    crowd = {"id": 2, "image_id": 7, "category_id": 3, "bbox": [0, 0, 9, 9], "iscrowd": 1}
    document = tiny_coco()
    document["annotations"].append(crowd)
    with caplog.at_level(logging.WARNING, logger="multicloud_cv.datasets.coco"):
        data = coco.read(write_json(tmp_path / "labels.json", document))
    assert len(data.images[0].boxes) == 1
    assert "1 iscrowd=1 annotation(s) skipped" in caplog.text
    assert any("iscrowd" in note for note in data.notes)


def test_image_roots_resolved(tmp_path: Path) -> None:
    # COCO 2017 download: annotations/instances_val2017.json and val2017/
    official = tmp_path / "coco2017"
    (official / "val2017").mkdir(parents=True)
    (official / "val2017" / "a.png").write_bytes(b"x")
    write_json(official / "annotations" / "instances_val2017.json", tiny_coco())
    for path in (official, official / "annotations" / "instances_val2017.json"):
        data = read_dataset(path, "coco")
        assert data.root == official.resolve()
        assert data.images[0].path == "val2017/a.png" and data.images[0].split == "validation"
    # datumaro's layout: images/<subset>/
    dm = tmp_path / "dm"
    (dm / "images" / "train").mkdir(parents=True)
    (dm / "images" / "train" / "a.png").write_bytes(b"x")
    write_json(dm / "annotations" / "instances_train.json", tiny_coco())
    assert coco.read(dm).images[0].path == "images/train/a.png"
    # a JSON file beside the images, and image_root=
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.png").write_bytes(b"x")
    file = write_json(flat / "export.json", tiny_coco())
    assert coco.read(file).images[0].path == "a.png"
    elsewhere = tmp_path / "pictures"
    elsewhere.mkdir()
    (elsewhere / "a.png").write_bytes(b"x")
    data = coco.read(file, image_root=elsewhere)
    assert data.absolute(data.images[0]) == elsewhere / "a.png"


def test_several_files_share_categories(tmp_path: Path) -> None:
    write_json(tmp_path / "annotations" / "instances_train.json", tiny_coco())
    other = tiny_coco(images=[{"id": 7, "file_name": "b.png", "width": 5, "height": 5}])
    write_json(tmp_path / "annotations" / "instances_test.json", other)
    data = coco.read(tmp_path)
    # no image on disk to say where they are: images/ beside annotations/, the layout we write
    assert [(i.path, i.split) for i in data.images] == [("images/b.png", "test"), ("images/a.png", "train")]
    clash = tiny_coco(categories=[{"id": 3, "name": "dog"}])
    write_json(tmp_path / "annotations" / "instances_val.json", clash)
    with pytest.raises(DatasetError, match="category id 3 is 'dog' here but 'cat'"):
        coco.read(tmp_path)


def test_detect(source: Dataset, tmp_path: Path) -> None:
    out = write_dataset(source, tmp_path / "out", "coco")
    assert coco.detect(out)
    assert coco.detect(out / "annotations" / "instances_train.json")
    # COCO 2017 order: a long images list before annotations and categories (found in the tail)
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "width": 640, "height": 480} for i in range(2000)]
    big = {"info": {}, "licenses": [], "images": images, "annotations": [], "categories": [{"id": 1, "name": "a"}]}
    assert coco.detect(write_json(tmp_path / "big.json", big))
    # SageMaker's per-image detection JSON has annotations and categories but no images list
    sagemaker = {"file": "a.jpg", "image_size": [{"width": 4, "height": 4, "depth": 3}], "annotations": [],
                 "categories": [{"class_id": 0, "name": "a"}]}  # fmt: skip
    assert not coco.detect(write_json(tmp_path / "sm.json", sagemaker))
    assert not coco.detect(write_json(tmp_path / "list.json", [1, 2]))  # type: ignore[arg-type]
    assert not coco.detect(tmp_path / "missing.json")
    assert not coco.detect(source.root)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"annotations": [{"id": 5, "image_id": 99, "category_id": 3, "bbox": [0, 0, 1, 1]}]}, "names image 99"),
        ({"annotations": [{"id": 5, "image_id": 7, "category_id": 4, "bbox": [0, 0, 1, 1]}]}, "names category 4"),
        ({"annotations": [{"id": 5, "image_id": 7, "category_id": 3}]}, r"annotations\[0\] has no 'bbox'"),
        ({"annotations": [{"id": 5, "image_id": 7, "category_id": 3, "bbox": [0, 0, 1]}]}, "bbox must be"),
        ({"annotations": [{"id": 5, "image_id": 7, "category_id": 3, "bbox": [0, 0, -1, 1]}]}, "negative bbox"),
        ({"images": [{"id": 1, "file_name": "a.png"}, {"id": 1, "file_name": "b.png"}]}, "image id 1 appears twice"),
        ({"images": [{"file_name": "a.png"}]}, r"images\[0\] needs 'id' and 'file_name'"),
        ({"categories": [{"id": 3}]}, r"categories\[0\] needs 'id' and 'name'"),
        ({"categories": [{"id": 3, "name": "a"}, {"id": 3, "name": "b"}]}, "category id 3 appears twice"),
        ({"categories": [{"id": 3, "name": "a"}, {"id": 4, "name": "a"}]}, "names must be unique; repeated: a"),
        ({"images": {"id": 1}}, "'images' must be a list"),
    ],
)
def test_bad_input_names_the_file(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    file = write_json(tmp_path / "bad.json", tiny_coco(**change))
    with pytest.raises(DatasetError, match=message) as caught:
        coco.read(file)
    assert str(file) in str(caught.value)


def test_unreadable_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [')
    with pytest.raises(DatasetError, match=r"broken\.json: not valid JSON") as caught:
        coco.read(broken)
    assert "line 1 column 13" in str(caught.value)  # the standard library's words: where it broke
    no_images = write_json(tmp_path / "none.json", {"annotations": [], "categories": []})
    with pytest.raises(DatasetError, match="no 'images' list"):
        coco.read(no_images)
    with pytest.raises(DatasetError, match="no annotations/instances"):
        coco.read(tmp_path)


def test_writer_refuses_what_coco_cannot_hold(source: Dataset, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="detection"):
        coco.write(replace(source, task="multilabel"), tmp_path / "a")
    odd = replace(source, images=[replace(source.images[1], split="holdout")])
    with pytest.raises(DatasetError, match="holdout"):
        coco.write(odd, tmp_path / "b")
    bad = replace(source, images=[replace(source.images[1], boxes=(BoxAnnotation(7, 0, 0, 1, 1),))])
    with pytest.raises(DatasetError, match="box label 7"):
        coco.write(bad, tmp_path / "c")
    broken = [BoxAnnotation(0, 5, 0, 1, 1), BoxAnnotation(0, 0, 0, math.nan, 1), BoxAnnotation(0, 0, 0, 1, math.inf)]
    for n, box in enumerate(broken):
        bad = replace(source, images=[replace(source.images[1], boxes=(box,))])
        with pytest.raises(DatasetError, match="not finite with min <= max"):
            coco.write(bad, tmp_path / f"e{n}")
    missing = replace(source, images=[ImageRecord("images/nope.png", split="train", width=4, height=4)])
    with pytest.raises(DatasetError, match="does not exist"):
        write_dataset(missing, tmp_path / "d", "coco")
    assert not (tmp_path / "d").exists()


def test_sizes_measured_when_unknown(source: Dataset, tmp_path: Path) -> None:
    unsized = replace(source, images=[replace(i, width=None, height=None) for i in source.images])
    out = write_dataset(unsized, tmp_path / "out", "coco", copy_images=False)
    assert_same_dataset(source, read_dataset(out, "coco"))


def test_empty_dataset_keeps_classes(tmp_path: Path) -> None:
    empty = Dataset(root=tmp_path, classes=["a", "b"], images=[], task="detection")
    out = write_dataset(empty, tmp_path / "out", "coco")
    assert read_dataset(out, "coco").classes == ["a", "b"]


def test_written_numbers_carry_no_float_noise(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    box = BoxAnnotation(0, 557.28, 375.36, 621.32, 448.74)  # 621.32 - 557.28 == 64.04000000000008 in floats
    data = Dataset(tmp_path, ["cat"], [ImageRecord("a.png", (), (box,), "test", 640, 480)], task="detection")
    out = write_dataset(data, tmp_path / "out", "coco")
    written = json.loads((out / "annotations" / "instances_test.json").read_text())["annotations"][0]
    assert written["bbox"] == [557.28, 375.36, 64.04, 73.38] and written["area"] == 4699.2552
    assert_same_dataset(data, read_dataset(out, "coco"), box_tolerance=1e-9)


@pytest.mark.parametrize(("encoding", "prefix"), [("utf-8", b"\xef\xbb\xbf"), ("utf-16", b""), ("utf-32", b"")])
def test_files_orjson_refuses_are_read_as_json_reads_them(tmp_path: Path, encoding: str, prefix: bytes) -> None:
    document = tiny_coco()
    expected = coco.read(write_json(tmp_path / "plain.json", document))
    odd = tmp_path / "odd.json"
    odd.write_bytes(prefix + json.dumps(document).encode(encoding))  # a byte-order mark; UTF-16/32 carry one
    assert coco.read(odd).images == expected.images
