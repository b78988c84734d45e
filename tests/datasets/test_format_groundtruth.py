"""Ground Truth / Rekognition Custom Labels manifests (groundtruth): round trips, documented samples, limits, errors."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from multicloud_cv.datasets import augmented_manifest, groundtruth
from multicloud_cv.datasets.folder import read_folder
from multicloud_cv.datasets.formats import detect_format, read_dataset, write_dataset
from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError
from multicloud_cv.testing import make_tiny_dataset
from multicloud_cv.testing.datasets import assert_same_dataset, make_detection_dataset, make_multilabel_dataset

FMT = "groundtruth"
DATE = "2026-01-02T03:04:05.000006"

# Rekognition Custom Labels DG, md-create-manifest-file-classification.md and -object-detection.md, verbatim.
DOC_CLASSIFICATION = (
    '{"source-ref":"s3://custom-labels-console-us-east-1-nnnnnnnnnn/gt-job/manifest/IMG_1133.png",'
    '"TestCLConsoleBucket":0,"TestCLConsoleBucket-metadata":{"confidence":0.95,"job-name":'
    '"labeling-job/testclconsolebucket","class-name":"Echo Dot","human-annotated":"yes",'
    '"creation-date":"2020-04-15T20:17:23.433061","type":"groundtruth/image-classification"}}'
)
DOC_MULTIPLE = """{"source-ref": "s3://bucket/images/sport.png",
 "sport0":0, "sport0-metadata": {"class-name": "football", "confidence": 0.8,
   "type":"groundtruth/image-classification", "job-name": "identify-sport", "human-annotated": "yes",
   "creation-date": "2018-10-18T22:18:13.527256"},
 "sport1":1, "sport1-metadata": {"class-name": "ball", "confidence": 0.8,
   "type":"groundtruth/image-classification", "job-name": "identify-sport", "human-annotated": "yes",
   "creation-date": "2018-10-18T22:18:13.527256"}}"""
DOC_BOXES = (
    '{"source-ref": "s3://bucket/images/IMG_1186.png", "bounding-box": {"image_size": [{"width": 640, "height": 480, '
    '"depth": 3}], "annotations": [{ "class_id": 1,\t"top": 251,\t"left": 399, "width": 155, "height": 101}, '
    '{"class_id": 0, "top": 65, "left": 86, "width": 220,\t"height": 334}]}, "bounding-box-metadata": {"objects": '
    '[{ "confidence": 1}, {"confidence": 1}],\t"class-map": {"0": "Echo",\t"1": "Echo Dot"}, "type": '
    '"groundtruth/object-detection", "human-annotated": "yes",\t"creation-date": "2013-11-18T02:53:27", '
    '"job-name": "my job"}}'
)
# SageMaker DG sms-data-output.md: multi-label and single-label classification job output.
DOC_MULTILABEL = (
    '{"source-ref": "s3://AWSDOC-EXAMPLE-BUCKET/example_image.jpg", "image-label-attribute-name":[1,0,8], '
    '"image-label-attribute-name-metadata": {"job-name":"labeling-job/image-label-attribute-name", "class-map": '
    '{"1":"bicycle","0":"person","8":"clothing"}, "human-annotated":"yes", "creation-date":'
    '"2020-02-27T21:36:25.000201", "confidence-map": {"1":0.95,"0":0.77,"8":0.2}, '
    '"type":"groundtruth/image-classification-multilabel"}}'
)
DOC_SPECIES = (
    '{"source-ref":"s3://AWSDOC-EXAMPLE-BUCKET/example_image.jpg", "species":"0", "species-metadata": '
    '{"class-name": "dog", "confidence": 0.00, "type": "groundtruth/image-classification", "job-name": '
    '"identify-animal-species", "human-annotated": "yes", "creation-date": "2018-10-18T22:18:13.527256"}}'
)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def round_trip(source: Dataset, out: Path, **options: object) -> Dataset:
    """write, read (detected), compare; write the read dataset again, read, compare; both writes identical."""
    first = write_dataset(source, out / "one", FMT, creation_date=DATE, **options)
    assert detect_format(first) == FMT
    back = read_dataset(first)
    assert back.source_format == FMT and back.notes == []
    assert_same_dataset(source, back)
    second = write_dataset(back, out / "two", FMT, creation_date=DATE, **options)
    assert_same_dataset(source, read_dataset(second, FMT))
    assert (first / "train.manifest").read_text() == (second / "train.manifest").read_text()
    return back


def test_classification_round_trip(tmp_path: Path) -> None:
    source = read_folder(make_tiny_dataset(tmp_path / "src", classes=3, train_per_class=2, test_per_class=1, size=8))
    round_trip(source, tmp_path)
    line = lines(tmp_path / "one" / "train.manifest")[2]
    assert line == {
        "source-ref": "images/square_000-1.png",
        "mcv-labels": 1,
        "mcv-labels-metadata": {
            "confidence": 1,
            "job-name": "labeling-job/mcv-labels",
            "class-name": "square",
            "human-annotated": "yes",
            "creation-date": DATE,
            "type": "groundtruth/image-classification",
        },
    }
    assert (tmp_path / "one" / "classes.txt").read_text() == "circle\nsquare\ntriangle\n"


def test_multilabel_round_trip_one_attribute_per_label(tmp_path: Path) -> None:
    source = make_multilabel_dataset(tmp_path / "src")
    round_trip(source, tmp_path, job="shapes")
    line = lines(tmp_path / "one" / "train.manifest")[1]  # labels circle + triangle
    assert [key for key in line if not key.endswith("-metadata")] == ["source-ref", "shapes", "shapes-1"]
    assert (line["shapes"], line["shapes-1"]) == (1, 2)
    assert line["shapes-1-metadata"]["class-name"] == "triangle"
    assert line["shapes-1-metadata"]["job-name"] == "labeling-job/shapes"


def test_multilabel_round_trip_ground_truth_style(tmp_path: Path) -> None:
    source = make_multilabel_dataset(tmp_path / "src")
    empty = replace(source.images[3], labels=())  # an image without labels survives too
    source = replace(source, images=[*source.images[:3], empty, *source.images[4:]])
    round_trip(source, tmp_path, multilabel_style="multilabel", rekognition=False)
    line = lines(tmp_path / "one" / "train.manifest")[1]
    assert line["mcv-labels"] == [1, 2]
    assert line["mcv-labels-metadata"]["type"] == "groundtruth/image-classification-multilabel"
    assert line["mcv-labels-metadata"]["class-map"] == {"1": "circle", "2": "triangle"}
    with pytest.raises(DatasetError, match=r"Rekognition does not import .*multilabel"):
        groundtruth.write(source, tmp_path / "x", multilabel_style="multilabel")


def test_detection_round_trip_with_image_labels_and_unassigned(tmp_path: Path) -> None:
    source = make_detection_dataset(tmp_path / "src", per_split={"train": 4, "test": 2, None: 2})  # type: ignore[dict-item]
    tagged = replace(source.images[1], labels=(0, 2))
    source = replace(source, images=[source.images[0], tagged, *source.images[2:]])
    round_trip(source, tmp_path)
    out = tmp_path / "one"
    assert {p.name for p in out.glob("*.manifest")} == {"train.manifest", "test.manifest", "dataset.manifest"}
    line = lines(out / "train.manifest")[1]
    meta = line["mcv-labels-metadata"]
    assert meta["objects"] == [{"confidence": 1}] * len(line["mcv-labels"]["annotations"])
    used = sorted({str(a["class_id"]) for a in line["mcv-labels"]["annotations"]})
    assert sorted(meta["class-map"]) == used
    assert (meta["type"], meta["human-annotated"], meta["creation-date"]) == (
        "groundtruth/object-detection",
        "yes",
        DATE,
    )
    assert (line["mcv-labels-1"], line["mcv-labels-2"]) == (0, 2)


def test_reads_documented_samples(tmp_path: Path) -> None:
    (tmp_path / "cls.manifest").write_text(f"{DOC_CLASSIFICATION}\n{DOC_SPECIES}\n")
    data = groundtruth.read(tmp_path / "cls.manifest")
    assert data.task == "classification" and data.classes == ["Echo Dot", "dog"]
    assert [i.labels for i in data.images] == [(0,), (1,)]
    assert data.images[0].path.startswith("s3://custom-labels-console")
    (tmp_path / "sport.manifest").write_text(DOC_MULTIPLE.replace("\n", "") + "\n")
    sport = groundtruth.read(tmp_path / "sport.manifest")
    assert sport.task == "multilabel" and sport.classes == ["football", "ball"] and sport.images[0].labels == (0, 1)
    (tmp_path / "train.manifest").write_text(DOC_BOXES + "\n")
    assert groundtruth.detect(tmp_path / "train.manifest") and not augmented_manifest.detect(
        tmp_path / "train.manifest"
    )
    boxes = groundtruth.read(tmp_path / "train.manifest")
    assert boxes.task == "detection" and boxes.classes == ["Echo", "Echo Dot"]
    (image,) = boxes.images
    assert (image.split, image.width, image.height) == ("train", 640, 480)
    assert image.boxes == (BoxAnnotation(1, 399, 251, 554, 352), BoxAnnotation(0, 86, 65, 306, 399))
    (tmp_path / "ml.manifest").write_text(DOC_MULTILABEL + "\n")
    multi = groundtruth.read(tmp_path / "ml.manifest")
    assert multi.classes == ["person", "bicycle", "clothing"] and multi.images[0].labels == (0, 1, 2)


def test_auto_labelled_folder_manifest_and_mixed_lines(tmp_path: Path) -> None:
    """One attribute per image whose value is not a class index: classes by name, in order of first use."""

    def line(attribute: str, name: str, ref: str) -> str:
        meta = {
            "confidence": 1,
            "job-name": f"labeling-job/{attribute}",
            "class-name": name,
            "human-annotated": "no",
            "creation-date": DATE,
            "type": "groundtruth/image-classification",
        }
        return json.dumps({"source-ref": ref, attribute: 1, f"{attribute}-metadata": meta})

    (tmp_path / "train.manifest").write_text(
        "\n".join(
            [
                line("dog", "dog", "s3://b/dog/1.jpg"),
                line("cat", "cat", "s3://b/cat/1.jpg"),
                line("dog", "dog", "s3://b/dog/2.jpg"),
            ]
        )
        + "\n"
    )
    data = groundtruth.read(tmp_path)
    assert data.classes == ["dog", "cat"] and [i.labels for i in data.images] == [(0,), (1,), (0,)]
    assert data.notes and data.notes[0].startswith("groundtruth-class-order:")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    assert groundtruth.read(tmp_path).classes == ["cat", "dog"]


def test_job_option_other_types_and_strictness(tmp_path: Path) -> None:
    verify = (
        ', "check": "1", "check-metadata": {"class-name": "bad", "confidence": 0.9, "type": '
        '"groundtruth/label-verification", "human-annotated": "yes", "creation-date": "2018-11-20"}'
    )
    (tmp_path / "a.manifest").write_text(DOC_BOXES[:-1] + verify + "}\n")
    data = groundtruth.read(tmp_path / "a.manifest")
    assert len(data.images[0].boxes) == 2 and "check (groundtruth/label-verification)" in data.notes[0]
    assert len(groundtruth.read(tmp_path / "a.manifest", job="bounding-box").images[0].boxes) == 2
    with pytest.raises(DatasetError, match=r"a\.manifest:1: attribute 'check' has type 'groundtruth/label-verif"):
        groundtruth.read(tmp_path / "a.manifest", job="check")
    with pytest.raises(DatasetError, match=r"a\.manifest:1: no label attribute 'other'"):
        groundtruth.read(tmp_path / "a.manifest", job="other")
    (tmp_path / "a.manifest").write_text(DOC_CLASSIFICATION.replace('"confidence":0.95,', "") + "\n")
    with pytest.raises(DatasetError, match=r"a\.manifest:1: 'TestCLConsoleBucket-metadata' has no \"confidence\""):
        groundtruth.read(tmp_path / "a.manifest")
    assert groundtruth.read(tmp_path / "a.manifest", strict=False).classes == ["Echo Dot"]
    (tmp_path / "a.manifest").write_text(DOC_CLASSIFICATION.replace('"confidence":0.95', '"confidence":95') + "\n")
    with pytest.raises(DatasetError, match="confidence of 'TestCLConsoleBucket' must be a number from 0 to 1"):
        groundtruth.read(tmp_path / "a.manifest")
    (tmp_path / "a.manifest").write_text(DOC_BOXES.replace('[{ "confidence": 1}, ', "[") + "\n")
    with pytest.raises(DatasetError, match=r"a\.manifest:1: .*one \{\"confidence\": c\} per annotation \(2\)"):
        groundtruth.read(tmp_path / "a.manifest")
    (tmp_path / "a.manifest").write_text(DOC_BOXES.replace('"left": 399', '"left": 600') + "\n")
    with pytest.raises(DatasetError, match=r"a\.manifest:1: annotation 0 .* lies outside the 640x480 image"):
        groundtruth.read(tmp_path / "a.manifest")
    assert groundtruth.read(tmp_path / "a.manifest", strict=False).images[0].boxes[0].x_max == 755


def test_rekognition_limits_on_write(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = make_detection_dataset(tmp_path / "src", per_split={"train": 3})
    to_s3 = {"image_ref": lambda image: f"s3://bkt/{image.path}"}
    with caplog.at_level(logging.WARNING, logger="multicloud_cv.datasets.groundtruth"):
        out = write_dataset(source, tmp_path / "s3", FMT, **to_s3)
    assert (
        not (out / "images").exists()
        and lines(out / "train.manifest")[0]["source-ref"] == "s3://bkt/images/train_000.png"
    )
    assert "not s3://" not in caplog.text and "1 image(s) have no boxes" in caplog.text
    image = source.images[1]
    many = replace(source, images=[replace(image, boxes=image.boxes[:1] * 51)])
    with pytest.raises(DatasetError, match="51 boxes; Rekognition allows at most 50"):
        write_dataset(many, tmp_path / "a", FMT)
    write_dataset(many, tmp_path / "a", FMT, rekognition=False)
    outside = replace(source, images=[replace(image, boxes=(BoxAnnotation(0, 50, 10, 70, 20),))])
    with pytest.raises(DatasetError, match="lies outside the 64x48 image; Rekognition drops it"):
        write_dataset(outside, tmp_path / "b", FMT)
    with pytest.raises(DatasetError, match="used twice"):
        write_dataset(source, tmp_path / "c", FMT, image_ref=lambda image: "s3://bkt/same.png")
    with pytest.raises(DatasetError, match=r"images are in 3 S3 buckets \(b0, b1, b2\)"):
        write_dataset(source, tmp_path / "d", FMT, image_ref=lambda image: f"s3://b{image.path[-5]}/{image.path}")
    assert not any((tmp_path / name).exists() for name in "bcd")
    many_classes = replace(source, classes=[f"c{i}" for i in range(251)])
    with pytest.raises(DatasetError, match="251 classes; Rekognition Custom Labels allows at most 250"):
        write_dataset(many_classes, tmp_path / "e", FMT)


def test_detect(tmp_path: Path) -> None:
    source = make_multilabel_dataset(tmp_path / "src", per_split={"train": 2, "validation": 1})
    ours = write_dataset(source, tmp_path / "gt", FMT)
    assert groundtruth.detect(ours) and groundtruth.detect(ours / "validation.manifest")
    sm = write_dataset(source, tmp_path / "sm", "sagemaker-manifest")
    assert not groundtruth.detect(sm) and augmented_manifest.detect(sm)
    assert not groundtruth.detect(tmp_path / "src") and not groundtruth.detect(tmp_path / "nope")
    (tmp_path / "x.manifest").write_text("{broken\n")
    assert not groundtruth.detect(tmp_path / "x.manifest")


GOOD = (
    '{"source-ref": "a.png", "job": 0, "job-metadata": {"class-name": "cat", "confidence": 1, "human-annotated": '
    '"yes", "creation-date": "2020-01-01T00:00:00", "type": "groundtruth/image-classification"}}'
)
BOX = (
    '{"source-ref": "a.png", "job": {"image_size": [{"width": 10, "height": 10, "depth": 3}], "annotations": [ANN]}, '
    '"job-metadata": {"objects": [{"confidence": 1}], "class-map": {"0": "cat"}, "human-annotated": "yes", '
    '"creation-date": "2020-01-01T00:00:00", "type": "groundtruth/object-detection"}}'
)


@pytest.mark.parametrize(
    ("second_line", "message"),
    [
        (GOOD[:-3], r"d\.manifest:2: not valid JSON"),
        (GOOD.replace('"source-ref"', '"source"'), r"d\.manifest:2: no 'source-ref'"),
        (GOOD.replace('"a.png"', '"gone.png"'), r"d\.manifest:2: image gone\.png not found"),
        ('{"source-ref": "a.png"}', r"d\.manifest:2: no label attribute; .*ERROR_NO_LABEL_ATTRIBUTES"),
        (GOOD.replace('"job": 0', '"job": "cat"'), r"d\.manifest:2: 'job' must be a whole number"),
        (GOOD.replace('"class-name": "cat", ', ""), r"d\.manifest:2: 'job-metadata' needs \"class-name\""),
        (GOOD.replace('"type": "groundtruth/image-classification"', '"kind": 1'), r"d\.manifest:2: .* no \"type\""),
    ],
)
def test_bad_classification_lines(tmp_path: Path, second_line: str, message: str) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "d.manifest").write_text(GOOD + "\n" + second_line + "\n")
    with pytest.raises(DatasetError, match=message):
        groundtruth.read(tmp_path)


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        ('{"class_id": 3, "left": 1, "top": 1, "width": 5, "height": 5}', r"d\.manifest:2: class id 3 of 'job' is not"),
        ('{"class_id": 0, "left": 1, "top": 1, "width": -5, "height": 5}', r"d\.manifest:2: annotation 0 .*width -5"),
        ('{"class_id": 0, "left": 1, "width": 5, "height": 5}', r"d\.manifest:2: annotation 0 of 'job' lacks top"),
    ],
)
def test_bad_box_lines(tmp_path: Path, annotation: str, message: str) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    good = BOX.replace("ANN", '{"class_id": 0, "left": 1, "top": 1, "width": 5, "height": 5}')
    (tmp_path / "d.manifest").write_text(good + "\n" + BOX.replace("ANN", annotation) + "\n")
    with pytest.raises(DatasetError, match=message):
        groundtruth.read(tmp_path / "d.manifest")


def test_attribute_missing_on_a_line(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    good = BOX.replace("ANN", '{"class_id": 0, "left": 1, "top": 1, "width": 5, "height": 5}')
    (tmp_path / "d.manifest").write_text(good + "\n" + good + "\n" + good.replace('"job"', '"jab"') + "\n")
    with pytest.raises(DatasetError, match=r"d\.manifest:3: no label attribute 'job'"):
        groundtruth.read(tmp_path, job="job")
    with pytest.raises(DatasetError, match=r"d\.manifest:3: no label attribute; .*ERROR_NO_LABEL_ATTRIBUTES"):
        groundtruth.read(tmp_path)  # 'jab' has no 'jab-metadata': not a label attribute
    (tmp_path / "d.manifest").write_text(good + "\n" + good.replace('"job-metadata"', '"job-meta"') + "\n")
    with pytest.raises(DatasetError, match=r"d\.manifest:2: attribute 'job' has no 'job-metadata' object"):
        groundtruth.read(tmp_path, job="job")


def test_write_errors(tmp_path: Path) -> None:
    source = read_folder(make_tiny_dataset(tmp_path / "src", classes=2, train_per_class=1, test_per_class=0, size=8))
    with pytest.raises(DatasetError, match="exactly one label"):
        groundtruth.write(replace(source, images=[replace(source.images[0], labels=(0, 1))]), tmp_path / "a")
    with pytest.raises(DatasetError, match="label attribute 'x-metadata' is not allowed"):
        groundtruth.write(source, tmp_path / "b", job="x-metadata")
    with pytest.raises(DatasetError, match="unknown multilabel_style"):
        groundtruth.write(source, tmp_path / "c", multilabel_style="grouped")
    odd = Dataset(tmp_path, ["a"], [ImageRecord("x.png", labels=(0,), split="holdout")])
    with pytest.raises(DatasetError, match="unknown split 'holdout'"):
        groundtruth.write(odd, tmp_path / "d")
    with pytest.raises(DatasetError, match="unknown task"):
        groundtruth.read(tmp_path, task="segmentation")
