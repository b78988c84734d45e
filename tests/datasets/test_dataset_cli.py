"""`mcv dataset inspect|validate|convert|split|formats` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

from support import run_mcv

from multicloud_cv.datasets.formats import write_dataset
from multicloud_cv.testing import make_tiny_dataset
from multicloud_cv.testing.datasets import make_detection_dataset, make_multilabel_dataset
from multicloud_cv.testing.suite import validate_document


def _json(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_inspect_json_has_the_documented_fields(tmp_path: Path) -> None:
    root = make_tiny_dataset(tmp_path / "d", classes=3, train_per_class=4, test_per_class=2)
    doc = _json(run_mcv("dataset", "inspect", str(root), "--json"))
    validate_document("dataset_report", doc)
    assert doc["format"] == "folder" and doc["task"] == "classification"
    assert doc["num_images"] == 18 and doc["classes"] == ["circle", "square", "triangle"]
    assert doc["per_class"] == {"circle": 6, "square": 6, "triangle": 6}
    assert doc["splits"] == {"train": 12, "test": 6} and doc["num_boxes"] == 0
    assert doc["image_sizes"] == {"min_width": 32, "max_width": 32, "min_height": 32, "max_height": 32}


def test_inspect_detection_counts_boxes_and_negatives(tmp_path: Path) -> None:
    dataset = make_detection_dataset(tmp_path / "det")
    out = write_dataset(dataset, tmp_path / "coco", "coco")
    doc = _json(run_mcv("dataset", "inspect", str(out), "--json"))
    validate_document("dataset_report", doc)
    assert doc["format"] == "coco" and doc["task"] == "detection"
    assert doc["num_boxes"] == sum(len(i.boxes) for i in dataset.images)
    assert doc["negatives"] == 1 and sum(doc["boxes_per_class"].values()) == doc["num_boxes"]
    human = run_mcv("dataset", "inspect", str(out))
    assert human.returncode == 0 and "boxes" in human.stdout and "square" in human.stdout


def test_convert_then_inspect_and_unknown_format_is_one_line(tmp_path: Path) -> None:
    source = make_multilabel_dataset(tmp_path / "ml")
    csv_dir = write_dataset(source, tmp_path / "csv", "csv")
    doc = _json(run_mcv("dataset", "convert", str(csv_dir), str(tmp_path / "again"), "--to", "csv", "--json"))
    validate_document("conversion_report", doc)
    assert doc["num_images"] == len(source.images) and doc["source_format"] == "csv"
    bad = run_mcv("dataset", "convert", str(csv_dir), str(tmp_path / "x"), "--to", "yolo")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown dataset format 'yolo'" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_split_is_stored_and_used_by_inspect(tmp_path: Path) -> None:
    root = make_tiny_dataset(tmp_path / "d", classes=2, train_per_class=10, test_per_class=0) / "train"
    doc = _json(run_mcv("dataset", "split", str(root), "--val", "0.2", "--test", "0.2", "--seed", "3", "--json"))
    validate_document("conversion_report", doc)
    assert doc["splits"] == {"train": 12, "validation": 4, "test": 4}
    report = _json(run_mcv("dataset", "inspect", str(root), "--json"))
    assert report["splits"] == {"train": 12, "validation": 4, "test": 4}
    assert report["split_file"].endswith("mcv-split.json")


def test_validate_reports_every_finding_and_exits_2_on_errors(tmp_path: Path) -> None:
    root = make_tiny_dataset(tmp_path / "d", classes=2, train_per_class=3, test_per_class=1)
    ok = _json(run_mcv("dataset", "validate", str(root), "--provider", "local", "--json"))
    validate_document("validation_report", ok)
    assert ok["ok"] is True and ok["errors"] == 0
    (root / "train" / "square" / "broken.png").write_bytes(b"not a png")
    bad = run_mcv("dataset", "validate", str(root), "--provider", "local", "--json")
    assert bad.returncode == 2
    doc = json.loads(bad.stdout)
    validate_document("validation_report", doc)
    corrupt = [f for f in doc["findings"] if f["code"] == "corrupt-image"]
    assert doc["ok"] is False and corrupt and "broken.png" in corrupt[0]["path"]


def test_formats_lists_every_format() -> None:
    doc = _json(run_mcv("dataset", "formats", "--json"))
    names = {row["name"] for row in doc["formats"]}
    assert {"folder", "coco", "voc", "lst", "recordio", "tfrecord", "vertex-jsonl", "groundtruth"} <= names


def test_stage_to_s3_then_rerun_skips_everything(tmp_path: Path) -> None:
    from multicloud_cv.testing.emulators import moto_server

    root = make_tiny_dataset(tmp_path / "d", classes=2, train_per_class=3, test_per_class=1)
    with moto_server() as server:
        server.create_bucket("stage-cli")
        env = {"AWS_ENDPOINT_URL": server.endpoint_url, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
               "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
        first = _json(run_mcv("dataset", "stage", str(root), "s3://stage-cli/run1", "--json", env=env))
        validate_document("stage_report", first)
        assert first["uploaded"] == 8 and first["skipped"] == 0
        again = _json(run_mcv("dataset", "stage", str(root), "s3://stage-cli/run1", "--json", env=env))
        assert again["uploaded"] == 0 and again["skipped"] == 8
        keys = {o["Key"] for o in server.client("s3").list_objects_v2(Bucket="stage-cli")["Contents"]}
        assert "run1/train/square/square_000.png" in keys and len(keys) == 8


def test_generate_detection_data_in_a_format_and_inspect_it(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    doc = _json(run_mcv("dataset", "generate", str(out), "--to", "voc", "--images", "20", "--seed", "1", "--json"))
    validate_document("conversion_report", doc)
    assert doc["num_images"] == 20 and doc["format"] == "voc"
    report = _json(run_mcv("dataset", "inspect", str(out), "--json"))
    assert report["format"] == "voc" and report["task"] == "detection" and report["num_boxes"] > 20
    assert set(report["splits"]) == {"train", "validation", "test"}
    assert [p.name for p in tmp_path.iterdir()] == ["gen"]  # no scratch left behind
    bad = run_mcv("dataset", "generate", str(tmp_path / "x"), "--to", "folder")
    assert bad.returncode == 2 and "does not hold detection datasets" in bad.stderr


def test_train_refuses_the_same_image_in_train_and_test_before_anything_starts(tmp_path: Path) -> None:
    import shutil

    root = make_tiny_dataset(tmp_path / "d", classes=2, train_per_class=3, test_per_class=1)
    leaked = root / "test" / "square" / "leaked.png"
    shutil.copy(root / "train" / "square" / "square_000.png", leaked)
    result = run_mcv("train", "--dataset", str(root), "--epochs", "1", "--json")
    assert result.returncode == 2
    assert "both training and test" in result.stderr and "leaked.png" in result.stderr
    status = _json(run_mcv("status", "--json"))
    assert status["jobs"] == []


def test_validate_says_when_the_provider_cannot_train_the_task(tmp_path: Path) -> None:
    dataset = make_detection_dataset(tmp_path / "det")
    out = write_dataset(dataset, tmp_path / "coco", "coco")
    result = run_mcv("dataset", "validate", str(out), "--provider", "centroid", "--json")
    assert result.returncode == 2
    doc = json.loads(result.stdout)
    validate_document("validation_report", doc)
    assert doc["findings"][0]["code"] == "unsupported-task" and "detection" in doc["findings"][0]["message"]
