"""`mcv plan train --provider rekognition`: uploads, project, datasets and version, botocore-valid, nothing sent."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import ParamValidator
from support import run_mcv

from multicloud_cv.datasets.formats import write_dataset
from multicloud_cv.testing.data import make_tiny_dataset
from multicloud_cv.testing.datasets import make_detection_dataset
from multicloud_cv.testing.suite import validate_document


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def offline_env(tmp_path: Path) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "MCV_REKOGNITION_REGION": "us-west-2",
        "MCV_REKOGNITION_BUCKET": "cl-bucket",
    }


def _plan(dataset: Path, env: dict[str, str], *extra: str) -> dict:
    out = run_mcv("plan", "train", "-p", "rekognition", "-d", str(dataset), "--json", *extra, env=env)
    assert out.returncode == 0, out.stderr
    document = json.loads(out.stdout)
    validate_document("plan", document)
    session = botocore.session.get_session()
    for request in document["requests"]:
        shape = session.get_service_model(request["service"]).operation_model(request["operation"]).input_shape
        report = ParamValidator().validate(request["params"], shape)
        assert not report.has_errors(), report.generate_report()
    return document


def test_plan_with_a_test_split_creates_two_datasets(tmp_path: Path, offline_env: dict[str, str]) -> None:
    shapes = make_tiny_dataset(tmp_path / "ds", train_per_class=4, test_per_class=2)
    document = _plan(shapes, offline_env)
    operations = [r["operation"] for r in document["requests"]]
    assert operations.count("PutObject") == 3 * 6 + 2, "every image and both manifests are uploaded"
    assert operations[-4:] == ["CreateProject", "CreateDataset", "CreateDataset", "CreateProjectVersion"]
    datasets = [r["params"] for r in document["requests"] if r["operation"] == "CreateDataset"]
    assert [d["DatasetType"] for d in datasets] == ["TRAIN", "TEST"]
    source = datasets[0]["DatasetSource"]["GroundTruthManifest"]["S3Object"]
    assert source["Bucket"] == "cl-bucket" and source["Name"].endswith("/train.manifest")
    version = document["requests"][-1]["params"]
    assert version["OutputConfig"] == {"S3Bucket": "cl-bucket", "S3KeyPrefix": "mcv/output"}
    assert "TrainingData" not in version, "a project with datasets trains from them"
    assert document["cost_estimate_usd"] and document["cost_estimate_usd"] > 0


def test_plan_without_a_test_split_auto_creates_it(tmp_path: Path, offline_env: dict[str, str]) -> None:
    from multicloud_cv.datasets import load_dataset

    flat = tmp_path / "flat"
    make_tiny_dataset(tmp_path / "src", train_per_class=5, test_per_class=0)
    write_dataset(load_dataset(tmp_path / "src" / "train"), flat, "folder")
    document = _plan(flat, offline_env)
    assert "CreateDataset" not in [r["operation"] for r in document["requests"]]
    version = document["requests"][-1]["params"]
    assert version["TestingData"] == {"AutoCreate": True}
    assert version["TrainingData"]["Assets"][0]["GroundTruthManifest"]["S3Object"]["Name"].endswith("train.manifest")


def test_detection_plan(tmp_path: Path, offline_env: dict[str, str]) -> None:
    coco = write_dataset(make_detection_dataset(tmp_path / "det-src"), tmp_path / "det", "coco")
    document = _plan(coco, offline_env)
    assert document["requests"][-1]["operation"] == "CreateProjectVersion"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--hp", "epochs=3"), "takes no hyperparameters"),
        (("--compute", "cpu"), "compute:cpu"),
        (("-o", "min_inference_units=0"), "min_inference_units"),
        (("-o", "project=bad name!"), "project 'bad name!'"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    tmp_path: Path, offline_env: dict[str, str], extra: tuple[str, ...], expected: str
) -> None:
    shapes = make_tiny_dataset(tmp_path / "ds", train_per_class=3, test_per_class=1)
    out = run_mcv("train", "-p", "rekognition", "-d", str(shapes), *extra, env=offline_env)
    assert out.returncode == 2, out.stderr
    assert expected in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_iam_policy_has_the_user_and_the_bucket_policy(offline_env: dict[str, str]) -> None:
    out = run_mcv("iam-policy", "-p", "rekognition", env=offline_env)
    assert out.returncode == 0, out.stderr
    policies = json.loads(out.stdout)
    assert set(policies) == {"caller", "bucket_policy"}
    text = json.dumps(policies)
    assert "arn:aws:s3:::cl-bucket" in text and "rekognition.amazonaws.com" in text
