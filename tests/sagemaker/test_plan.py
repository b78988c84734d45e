"""`mcv plan train --provider sagemaker`: the exact native requests, botocore-valid, with nothing sent.

Nothing here needs the emulator: AWS_ENDPOINT_URL points at a closed port, so a request that
did go out would fail the command. Bad input must fail with exit code 2, one line, before any upload.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import ParamValidator
from support import run_mcv

from multicloud_cv.datasets.formats import read_dataset, write_dataset
from multicloud_cv.testing.data import make_tiny_dataset
from multicloud_cv.testing.datasets import make_detection_dataset
from multicloud_cv.testing.suite import validate_document

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def offline_env(tmp_path: Path) -> dict[str, str]:
    """Settings and dummy credentials; every AWS endpoint is a closed loopback port."""
    dead = f"http://127.0.0.1:{_closed_port()}"
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": dead,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "MCV_SAGEMAKER_REGION": "eu-west-1",
        "MCV_SAGEMAKER_BUCKET": "my-sagemaker-bucket",
        "MCV_SAGEMAKER_ROLE_ARN": ROLE,
    }


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("shapes") / "ds", train_per_class=8, test_per_class=2)


def _plan(dataset: Path, env: dict[str, str], *extra: str) -> dict:
    out = run_mcv("plan", "train", "-p", "sagemaker", "-d", str(dataset), "--json", *extra, env=env)
    assert out.returncode == 0, out.stderr
    document = json.loads(out.stdout)
    validate_document("plan", document)
    return document


def _check_with_botocore(document: dict) -> dict:
    """Every planned request validates against botocore's own service models; returns CreateTrainingJob's params."""
    session = botocore.session.get_session()
    for request in document["requests"]:
        shape = session.get_service_model(request["service"]).operation_model(request["operation"]).input_shape
        report = ParamValidator().validate(request["params"], shape)
        assert not report.has_errors(), report.generate_report()
    assert document["requests"][-1]["operation"] == "CreateTrainingJob"
    return document["requests"][-1]["params"]


def test_recordio_plan_is_the_exact_request_and_sends_nothing(shapes: Path, offline_env: dict[str, str]) -> None:
    document = _plan(shapes, offline_env, "--epochs", "5", "--hp", "learning_rate=0.01")
    job = _check_with_botocore(document)
    assert job["AlgorithmSpecification"] == {
        "TrainingImage": "685385470294.dkr.ecr.eu-west-1.amazonaws.com/image-classification:1",
        "TrainingInputMode": "File",
    }
    assert job["RoleArn"] == ROLE
    assert [c["ChannelName"] for c in job["InputDataConfig"]] == ["train", "validation"]
    assert {c["ContentType"] for c in job["InputDataConfig"]} == {"application/x-recordio"}
    hp = job["HyperParameters"]
    assert all(isinstance(v, str) for v in hp.values())
    # 24 training images, 3 of them (one per class) carved out for validation; the test split is held out
    assert hp["num_classes"] == "3" and hp["num_training_samples"] == "21" and hp["epochs"] == "5"
    assert hp["learning_rate"] == "0.01" and int(hp["mini_batch_size"]) <= 3
    uploads = [r for r in document["requests"] if r["operation"] == "PutObject"]
    assert sorted(r["params"]["Key"].rsplit("/", 2)[-2] for r in uploads) == ["train", "validation"]
    assert all(r["params"]["Bucket"] == "my-sagemaker-bucket" for r in uploads)
    assert document["cost_estimate_usd"] and document["cost_estimate_usd"] > 0
    assert not list((Path(offline_env["AWS_CONFIG_FILE"]).parent / "mcv-home").glob("**/*.rec"))
    status = run_mcv("status", "--json", env=offline_env)
    assert json.loads(status.stdout)["jobs"] == [], "a plan records no job"


def test_several_instances_train_distributed(shapes: Path, offline_env: dict[str, str]) -> None:
    job = _check_with_botocore(_plan(shapes, offline_env, "-o", "instance_count=2"))
    assert job["ResourceConfig"]["InstanceCount"] == 2
    assert job["HyperParameters"]["kv_store"] == "dist_sync"


def test_image_mode_has_four_channels_and_resize(shapes: Path, offline_env: dict[str, str]) -> None:
    job = _check_with_botocore(_plan(shapes, offline_env, "-o", "input_mode=images"))
    channels = {c["ChannelName"]: c for c in job["InputDataConfig"]}
    assert sorted(channels) == ["train", "train_lst", "validation", "validation_lst"]
    assert {c["ContentType"] for c in channels.values()} == {"application/x-image"}
    assert channels["train"]["DataSource"]["S3DataSource"]["S3Uri"].endswith("/images/train/")
    assert int(job["HyperParameters"]["resize"]) > 224


def test_manifest_mode_is_pipe_with_attribute_names(shapes: Path, offline_env: dict[str, str], tmp_path: Path) -> None:
    job = _check_with_botocore(_plan(shapes, offline_env, "-o", "input_mode=manifest"))
    assert job["AlgorithmSpecification"]["TrainingInputMode"] == "Pipe"
    for channel in job["InputDataConfig"]:
        source = channel["DataSource"]["S3DataSource"]
        assert source["S3DataType"] == "AugmentedManifestFile"
        assert source["AttributeNames"] == ["source-ref", "class"]
        assert channel["RecordWrapperType"] == "RecordIO"
        assert source["S3Uri"].endswith(f"/manifests/{channel['ChannelName']}.manifest")


def test_detection_plan_uses_the_object_detection_image(offline_env: dict[str, str], tmp_path: Path) -> None:
    coco = write_dataset(make_detection_dataset(tmp_path / "det-src"), tmp_path / "det", "coco")
    job = _check_with_botocore(_plan(coco, offline_env, "-o", "input_mode=images"))
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith("/object-detection:1")
    names = sorted(c["ChannelName"] for c in job["InputDataConfig"])
    assert names == ["train", "train_annotation", "validation", "validation_annotation"]
    assert int(job["HyperParameters"]["num_classes"]) == len(read_dataset(coco).classes)


def test_multilabel_recordio_sets_multi_label(offline_env: dict[str, str], tmp_path: Path) -> None:
    from multicloud_cv.testing.datasets import make_multilabel_dataset

    source = make_multilabel_dataset(tmp_path / "ml")
    manifest = write_dataset(source, tmp_path / "ml-manifest", "sagemaker-manifest")
    job = _check_with_botocore(_plan(manifest, offline_env, "-o", "input_mode=manifest"))
    assert job["HyperParameters"]["multi_label"] == "1"
    assert {c["ContentType"] for c in job["InputDataConfig"]} == {"application/x-recordio; label-format=multi-hot"}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--hp", "lerning_rate=0.1"), "did you mean 'learning_rate'"),
        (("--hp", "image_shape=3,416"), "image_shape"),
        (("--hp", "mini_batch_size=64"), "larger than num_training_samples 21"),
        (("--hp", "mini_batch_size=16"), "The number of input images must be bigger or equal to the mini_batch_size"),
        (("-o", "instance_type=ml.m5.xlarge"), "not a GPU type"),
        (("--compute", "cpu"), "compute:cpu"),
        (("-o", "input_mode=parquet"), "input_mode 'parquet'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    shapes: Path, offline_env: dict[str, str], extra: tuple[str, ...], expected: str
) -> None:
    out = run_mcv("train", "-p", "sagemaker", "-d", str(shapes), *extra, env=offline_env)
    assert out.returncode == 2, out.stderr
    assert expected in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    status = run_mcv("status", "--json", env=offline_env)
    assert json.loads(status.stdout)["jobs"] == [], "nothing recorded for refused input"


def test_missing_bucket_names_the_setting(shapes: Path, offline_env: dict[str, str]) -> None:
    env = {**offline_env, "MCV_SAGEMAKER_BUCKET": ""}
    out = run_mcv("train", "-p", "sagemaker", "-d", str(shapes), env=env)
    assert out.returncode == 2 and "bucket" in out.stderr


def test_iam_policy_names_the_bucket_role_and_region(offline_env: dict[str, str]) -> None:
    out = run_mcv("iam-policy", "-p", "sagemaker", env=offline_env)
    assert out.returncode == 0, out.stderr
    policies = json.loads(out.stdout)
    assert set(policies) == {"caller", "execution_role", "execution_role_trust"}
    text = json.dumps(policies)
    assert "arn:aws:s3:::my-sagemaker-bucket" in text and "eu-west-1" in text
    pass_role = [
        s for s in policies["caller"]["Statement"] if "iam:PassRole" in s["Action"] or s["Action"] == "iam:PassRole"
    ]
    assert pass_role and ROLE in json.dumps(pass_role[0]["Resource"])
