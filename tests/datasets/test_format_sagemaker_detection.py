"""SageMaker object-detection per-image JSON (sagemaker-detection-json): round trips, the documented sample, errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from multicloud_cv.datasets import sagemaker_detection as sd
from multicloud_cv.datasets.formats import detect_format, read_dataset, write_dataset
from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError
from multicloud_cv.testing.datasets import assert_same_dataset, make_detection_dataset, make_multilabel_dataset

FMT = "sagemaker-detection-json"

# SageMaker DG object-detection.md, "Train with the Image Format", verbatim.
DOC_SAMPLE = """{
   "file": "your_image_directory/sample_image1.jpg",
   "image_size": [{"width": 500, "height": 400, "depth": 3}],
   "annotations": [
      {"class_id": 0, "left": 111, "top": 134, "width": 61, "height": 128},
      {"class_id": 0, "left": 161, "top": 250, "width": 79, "height": 143},
      {"class_id": 1, "left": 101, "top": 185, "width": 42, "height": 130}
   ],
   "categories": [{"class_id": 0, "name": "dog"}, {"class_id": 1, "name": "cat"}]
}"""


def test_round_trip_all_splits(tmp_path: Path) -> None:
    source = make_detection_dataset(tmp_path / "src", per_split={"train": 5, "validation": 2, "test": 2, None: 2})  # type: ignore[dict-item]
    out = write_dataset(source, tmp_path / "one", FMT)
    assert sorted(p.name for p in out.iterdir()) == [
        "annotation", "images", "test", "test_annotation", "train", "train_annotation", "validation",
        "validation_annotation",
    ]  # fmt: skip
    assert detect_format(out) == FMT
    back = read_dataset(out)
    assert back.source_format == FMT and back.task == "detection"
    assert_same_dataset(source, back)
    again = read_dataset(write_dataset(back, tmp_path / "two", FMT), FMT)
    assert_same_dataset(source, again)
    doc = json.loads((out / "train_annotation" / "train_001.json").read_text())
    assert list(doc) == ["file", "image_size", "annotations", "categories"]
    assert doc["file"] == "train_001.png" and (out / "train" / "train_001.png").is_file()
    assert doc["image_size"] == [{"width": 64, "height": 48, "depth": 3}]
    assert doc["categories"] == [{"class_id": 0, "name": "square"}, {"class_id": 1, "name": "circle"},
                                 {"class_id": 2, "name": "triangle"}]  # fmt: skip
    assert json.loads((out / "train_annotation" / "train_000.json").read_text())["annotations"] == []
    assert (out / "images" / "None_000.png").is_file() and (out / "annotation" / "None_000.json").is_file()


def test_reads_documented_sample(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train_annotation").mkdir()
    (tmp_path / "train" / "sample_image1.jpg").write_bytes(b"not decoded")
    (tmp_path / "train_annotation" / "sample_image1.json").write_text(DOC_SAMPLE)
    assert sd.detect(tmp_path)
    data = sd.read(tmp_path)
    assert data.classes == ["dog", "cat"]
    (image,) = data.images
    assert (image.path, image.split, image.width, image.height) == ("train/sample_image1.jpg", "train", 500, 400)
    assert image.boxes == (
        BoxAnnotation(0, 111, 134, 172, 262),
        BoxAnnotation(0, 161, 250, 240, 393),
        BoxAnnotation(1, 101, 185, 143, 315),
    )


def test_categories_optional_and_file_lookup(tmp_path: Path) -> None:
    for folder in ("validation", "validation_annotation", "validation/sub"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "validation" / "sub" / "b.png").write_bytes(b"x")
    (tmp_path / "validation" / "c.png").write_bytes(b"x")
    box = '{"class_id": 2, "left": 0, "top": 0, "width": 5, "height": 5}'
    size = '"image_size": [{"width": 10, "height": 10, "depth": 3}]'
    (tmp_path / "validation_annotation" / "b.json").write_text(
        f'{{"file": "sub/b.png", {size}, "annotations": [{box}]}}'
    )
    (tmp_path / "validation_annotation" / "c.json").write_text(f'{{{size}, "annotations": []}}')  # found by name
    data = sd.read(tmp_path)
    assert data.classes == ["0", "1", "2"]
    assert sorted(i.path for i in data.images) == ["validation/c.png", "validation/sub/b.png"]


def test_same_base_names_get_unique_annotation_files(tmp_path: Path) -> None:
    source = make_detection_dataset(tmp_path / "src", per_split={"train": 2})
    (tmp_path / "src" / "other").mkdir()
    twin = tmp_path / "src" / "other" / "train_000.jpg"
    twin.write_bytes((tmp_path / "src" / "images" / "train_001.png").read_bytes())  # same stem as train_000.png
    images = [*source.images, replace(source.images[1], path="other/train_000.jpg")]
    source = replace(source, images=images[:1] + images[2:])
    out = write_dataset(source, tmp_path / "out", FMT)
    assert sorted(p.name for p in (out / "train_annotation").iterdir()) == ["train_000-1.json", "train_000.json"]
    assert json.loads((out / "train_annotation" / "train_000-1.json").read_text())["file"] == "train_000-1.jpg"
    assert_same_dataset(source, read_dataset(out))


def test_detect(tmp_path: Path) -> None:
    source = make_detection_dataset(tmp_path / "src", per_split={"train": 2})
    out = write_dataset(source, tmp_path / "out", FMT)
    assert sd.detect(out)
    assert not sd.detect(out / "train_annotation" / "train_000.json")
    assert not sd.detect(tmp_path / "src") and not sd.detect(tmp_path / "missing")
    (tmp_path / "lonely" / "annotation").mkdir(parents=True)  # annotation/ without images/
    (tmp_path / "lonely" / "annotation" / "a.json").write_text(DOC_SAMPLE)
    assert not sd.detect(tmp_path / "lonely")
    (tmp_path / "other" / "train_annotation").mkdir(parents=True)
    (tmp_path / "other" / "train_annotation" / "a.json").write_text('{"something": 1}')
    assert not sd.detect(tmp_path / "other")


def _sample(tmp_path: Path, annotation: str = DOC_SAMPLE) -> Path:
    for folder in ("train", "train_annotation"):
        (tmp_path / folder).mkdir(exist_ok=True)
    (tmp_path / "train" / "sample_image1.jpg").write_bytes(b"x")
    (tmp_path / "train_annotation" / "sample_image1.json").write_text(annotation)
    return tmp_path / "train_annotation" / "sample_image1.json"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('"height": 130}', '"height": 130', r"sample_image1\.json: not valid JSON"),
        ('"width": 61', '"width": -61', r"sample_image1\.json: annotation 0 .*width -61"),
        ('"class_id": 1, "left"', '"class_id": 4, "left"', r"sample_image1\.json: class_id 4 is not in its categories"),
        ('"left": 111, ', "", r"sample_image1\.json: annotation 0 .*lacks left"),
        (
            '"image_size": [{"width": 500, "height": 400, "depth": 3}],',
            "",
            r"sample_image1\.json: .*needs \"image_size\"",
        ),
        ('{"class_id": 1, "name": "cat"}', '{"class_id": 1}', r"sample_image1\.json: category .* needs"),
    ],
)
def test_bad_annotation_files(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in DOC_SAMPLE
    _sample(tmp_path, DOC_SAMPLE.replace(old, new))
    with pytest.raises(DatasetError, match=message):
        sd.read(tmp_path)


def test_missing_partners_and_conflicts(tmp_path: Path) -> None:
    annotation = _sample(tmp_path)
    (tmp_path / "train" / "extra.png").write_bytes(b"x")
    with pytest.raises(DatasetError, match=r"extra\.png: no annotation train_annotation/extra\.json"):
        sd.read(tmp_path)
    (tmp_path / "train" / "extra.png").unlink()
    (tmp_path / "train_annotation" / "ghost.json").write_text(DOC_SAMPLE.replace("sample_image1", "ghost"))
    with pytest.raises(DatasetError, match=r"ghost\.json: no image for this annotation"):
        sd.read(tmp_path)
    (tmp_path / "train" / "ghost.png").write_bytes(b"x")
    (tmp_path / "train_annotation" / "ghost.json").write_text(DOC_SAMPLE.replace('"cat"', '"lion"'))
    with pytest.raises(DatasetError, match=r"category 1 is '(lion|cat)' here but '(cat|lion)' in other files"):
        sd.read(tmp_path)
    (tmp_path / "train_annotation" / "ghost.json").write_text(DOC_SAMPLE.replace("your_image_directory/", ""))
    (tmp_path / "train" / "ghost.png").unlink()  # ghost.json now names sample_image1.jpg by "file"
    with pytest.raises(DatasetError, match=r"its image sample_image1\.jpg is already annotated by"):
        sd.read(tmp_path)
    (tmp_path / "train_annotation" / "ghost.json").unlink()
    annotation.write_text(DOC_SAMPLE.replace('{"class_id": 0, "name": "dog"}, ', ""))
    with pytest.raises(DatasetError, match="class_id 0 is not in its categories"):
        sd.read(tmp_path)
    (tmp_path / "validation").mkdir()
    annotation.write_text(DOC_SAMPLE)
    with pytest.raises(DatasetError, match=r"validation has no validation_annotation/"):
        sd.read(tmp_path)
    with pytest.raises(DatasetError, match="has no train_annotation"):
        sd.read(tmp_path / "train")
    with pytest.raises(DatasetError, match="not a folder"):
        sd.read(annotation)


def test_gaps_in_categories_are_refused(tmp_path: Path) -> None:
    _sample(tmp_path, DOC_SAMPLE.replace('"class_id": 1, "name"', '"class_id": 2, "name"').replace(
        '"class_id": 1, "left"', '"class_id": 2, "left"'))  # fmt: skip
    with pytest.raises(DatasetError, match="without gaps; class 1 has no category"):
        sd.read(tmp_path)


def test_write_errors(tmp_path: Path) -> None:
    source = make_multilabel_dataset(tmp_path / "ml", per_split={"train": 1})
    with pytest.raises(DatasetError, match="detection datasets only"):
        sd.write(source, tmp_path / "a")
    with pytest.raises(DatasetError, match="does not hold multilabel"):
        write_dataset(source, tmp_path / "b", FMT)
    remote = Dataset(tmp_path, ["a"], [ImageRecord("s3://b/x.png", split="train")], task="detection")
    with pytest.raises(DatasetError, match="is remote"):
        sd.write(remote, tmp_path / "c")
    missing = Dataset(tmp_path, ["a"], [ImageRecord("gone.png", split="train")], task="detection")
    with pytest.raises(DatasetError, match="does not exist"):
        write_dataset(missing, tmp_path / "d", FMT)
    assert not (tmp_path / "d").exists()  # nothing half-written
