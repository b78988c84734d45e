"""Bad input: one clear line on stderr, exit code 2, nothing recorded or written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import run_mcv

from multicloud_cv.testing import make_tiny_dataset, validate_document


def _no_jobs(mcv_home: Path) -> None:
    out = run_mcv("status", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["jobs"] == []
    assert not (mcv_home / "local" / "jobs").exists() or not any((mcv_home / "local" / "jobs").iterdir())


def _one_error_line(out: object, *fragments: str) -> str:
    stderr = out.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert out.returncode == 2, out.stderr  # type: ignore[attr-defined]
    assert len(stderr) == 1, stderr
    for fragment in fragments:
        assert fragment in stderr[0]
    return stderr[0]


def test_missing_dataset_path(tmp_path: Path, mcv_home: Path) -> None:
    out = run_mcv("train", "--dataset", str(tmp_path / "nope"))
    _one_error_line(out, "dataset path", "does not exist")
    _no_jobs(mcv_home)


def test_non_image_file_is_named_and_skippable(tmp_path: Path, mcv_home: Path) -> None:
    root = make_tiny_dataset(tmp_path / "d", train_per_class=3, test_per_class=1)
    (root / "train" / "circle" / "readme.txt").write_text("not an image")
    out = run_mcv("train", "--dataset", str(root), "--dry-run")
    _one_error_line(out, "readme.txt", "is not an image file", "--skip-invalid")
    _no_jobs(mcv_home)
    out = run_mcv("train", "--dataset", str(root), "--dry-run", "--skip-invalid", "--json")
    assert out.returncode == 0, out.stderr
    assert "readme.txt" in out.stderr  # the warning names the skipped file
    validate_document("plan", json.loads(out.stdout))


def test_truncated_jpeg_is_named_and_skippable(tmp_path: Path, mcv_home: Path) -> None:
    root = make_tiny_dataset(tmp_path / "d", train_per_class=3, test_per_class=1, fmt="JPEG")
    victim = root / "train" / "square" / "square_000.jpg"
    victim.write_bytes(victim.read_bytes()[: len(victim.read_bytes()) // 2])
    out = run_mcv("train", "--dataset", str(root), "--dry-run")
    _one_error_line(out, "square_000.jpg", "not a readable image")
    out = run_mcv("-v", "train", "--dataset", str(root), "--dry-run", "--skip-invalid", "--json")
    assert out.returncode == 0 and "square_000.jpg" in out.stderr
    plan = json.loads(out.stdout)
    assert plan["requests"][0]["params"]["config"]["train_images"] == 3 * 3 - 1


def test_class_folder_without_images(tmp_path: Path, mcv_home: Path) -> None:
    root = make_tiny_dataset(tmp_path / "d", train_per_class=3, test_per_class=1)
    (root / "train" / "hexagon").mkdir()
    out = run_mcv("train", "--dataset", str(root))
    _one_error_line(out, "class 'hexagon' has no training images")
    _no_jobs(mcv_home)


def test_single_class(tmp_path: Path, mcv_home: Path) -> None:
    root = make_tiny_dataset(tmp_path / "d", classes=1, train_per_class=3, test_per_class=1)
    out = run_mcv("train", "--dataset", str(root))
    _one_error_line(out, "1 class(es)", "at least 2")
    _no_jobs(mcv_home)


def test_unknown_hyperparameter(tmp_path: Path, mcv_home: Path) -> None:
    root = make_tiny_dataset(tmp_path / "d", train_per_class=3, test_per_class=1)
    out = run_mcv("train", "--dataset", str(root), "--hp", "lerning_rate=0.1")
    _one_error_line(out, "unknown hyperparameter 'lerning_rate'", "valid:")
    _no_jobs(mcv_home)


def test_unsupported_task_refused_before_work(tmp_path: Path, mcv_home: Path) -> None:
    root = make_tiny_dataset(tmp_path / "d", train_per_class=3, test_per_class=1)
    out = run_mcv("train", "--dataset", str(root), "--compute", "tpu")
    _one_error_line(out, "provider 'local' cannot do this", "compute:tpu")
    _no_jobs(mcv_home)


@pytest.mark.parametrize(
    "args",
    [
        ["status", "job-20260101-abcdef"],
        ["wait", "job-20260101-abcdef"],
        ["cancel", "job-20260101-abcdef"],
        ["logs", "job-20260101-abcdef"],
        ["undeploy", "ep-20260101-abcdef"],
        ["deploy", "model-20260101-abcdef"],
        ["evaluate", "ep-20260101-abcdef", "--dataset", "."],
    ],
)
def test_unknown_ids(args: list[str]) -> None:
    out = run_mcv(*args)
    _one_error_line(out, "no ", "20260101-abcdef")


def test_json_error_document(tmp_path: Path) -> None:
    out = run_mcv("status", "job-20260101-abcdef", "--json")
    assert out.returncode == 2
    document = json.loads(out.stdout)
    validate_document("error", document)
    assert document["type"] == "NotFound" and document["exit_code"] == 2


def test_bad_ttl_and_bad_option(tmp_path: Path) -> None:
    out = run_mcv("deploy", "model-x", "--ttl", "soon")
    assert out.returncode == 2 and "not a duration" in out.stderr
    out = run_mcv("train", "--dataset", str(tmp_path), "-o", "portt=1")
    _one_error_line(out, "unknown setting 'portt'", "valid keys: port")
