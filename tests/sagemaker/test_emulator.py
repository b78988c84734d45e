"""The SageMaker emulator, through the real boto3 client: wire protocol, validation, state walks, training,
endpoints, batch transform and injected faults.

One real training for the whole module (the ``trained`` fixture: image-classification on a tiny RecordIO
dataset); every other job fails or stops before training starts, so the module stays well under a minute.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import random
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from mcv_sagemaker.emulator import SageMakerEmulator
from multicloud_cv.datasets.formats import read_dataset, write_dataset
from multicloud_cv.testing.data import draw, make_tiny_dataset

EMULATOR_BUCKET = "mcv-emulator-test"  # the bucket of conftest's sagemaker_emulator fixture
IC_IMAGE = "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1"
OD_IMAGE = "811284229777.dkr.ecr.us-east-1.amazonaws.com/object-detection:1"
JOB = "ic-recordio-1"
TERMINAL = ("Completed", "Failed", "Stopped")
NUM_CLASSES = 3


# ------------------------------------------------------------------------------------------------- helpers


def client(emu: SageMakerEmulator, service: str = "sagemaker", **config: Any) -> Any:
    """A boto3 client on the emulator with standard retries (3 attempts in all) unless ``config`` says otherwise.

    botocore's ``max_attempts`` counts retries only (3 means 4 attempts); ``total_max_attempts`` counts all.
    """
    options = {"retries": {"mode": "standard", "total_max_attempts": 3}, **config}
    return emu.client(service, config=Config(**options))


def channel(name: str, uri: str, content_type: str = "application/x-recordio", **extra: Any) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "ContentType": content_type,
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
        },
        **extra,
    }


def job_request(emu: SageMakerEmulator, name: str, **changes: Any) -> dict[str, Any]:
    """A valid image-classification CreateTrainingJob request on the staged RecordIO data."""
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": emu.role_arn,
        "AlgorithmSpecification": {"TrainingImage": IC_IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": {
            "num_classes": str(NUM_CLASSES),
            "num_training_samples": "18",
            "mini_batch_size": "6",
            "epochs": "3",
            "image_shape": "3,32,32",
            "num_layers": "18",
        },
        "InputDataConfig": [
            channel("train", f"s3://{EMULATOR_BUCKET}/data/train/"),
            channel("validation", f"s3://{EMULATOR_BUCKET}/data/validation/"),
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{EMULATOR_BUCKET}/output"},
        "ResourceConfig": {"InstanceType": "ml.p3.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "Tags": [{"Key": "mcv:run", "Value": "test"}],
    }
    request.update(changes)
    return request


def wait_job(
    sm: Any, name: str, timeout: float = 120.0, poll: float = 0.01
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Poll until the job is terminal; return the last description and the (status, secondary) pairs seen."""
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sm.describe_training_job(TrainingJobName=name)
        pair = (described["TrainingJobStatus"], described["SecondaryStatus"])
        if not seen or seen[-1] != pair:
            seen.append(pair)
        if pair[0] in TERMINAL:
            return described, seen
        time.sleep(poll)
    raise AssertionError(f"training job {name} did not finish in {timeout} s; seen {seen}")


def failure_of(emu: SageMakerEmulator, name: str, **changes: Any) -> str:
    """Create a job that must fail; return its FailureReason."""
    sm = client(emu)
    sm.create_training_job(**job_request(emu, name, **changes))
    described, _ = wait_job(sm, name)
    assert described["TrainingJobStatus"] == "Failed", described
    return str(described["FailureReason"])


def jpeg(shape: str = "circle", seed: int = 7) -> bytes:
    buffer = io.BytesIO()
    draw(shape, 32, random.Random(seed)).save(buffer, "JPEG")
    return buffer.getvalue()


def raw_call(emu: SageMakerEmulator, target: str, payload: bytes) -> tuple[int, dict[str, Any]]:
    """A SigV4-signed JSON 1.1 request sent without botocore's serializer (so unknown members get through)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(
        method="POST",
        url=emu.endpoint_url + "/",
        data=payload,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target},
    )
    SigV4Auth(Credentials("testing", "testing"), "sagemaker", emu.region).add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(prepared.url, data=payload, headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(http, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def staged(sagemaker_emulator: SageMakerEmulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 3-class dataset (6 training and 2 validation images per class, 32 px) as RecordIO in S3."""
    assert sagemaker_emulator.bucket == EMULATOR_BUCKET
    root = make_tiny_dataset(tmp_path_factory.mktemp("tiny"), classes=NUM_CLASSES, train_per_class=6, test_per_class=2)
    dataset = read_dataset(root)
    dataset = dataclasses.replace(
        dataset,
        images=[dataclasses.replace(i, split="validation" if i.split == "test" else i.split) for i in dataset.images],
    )
    out = Path(write_dataset(dataset, tmp_path_factory.mktemp("rec") / "rec", "recordio"))
    s3 = sagemaker_emulator.client("s3")
    for split in ("train", "validation"):
        s3.upload_file(str(out / f"{split}.rec"), EMULATOR_BUCKET, f"data/{split}/{split}.rec")
    s3.put_object(Bucket=EMULATOR_BUCKET, Key="empty/train/train.rec", Body=b"")
    return out


@pytest.fixture(scope="module")
def trained(sagemaker_emulator: SageMakerEmulator, staged: Path) -> dict[str, Any]:
    """The module's one real training (its states slowed 5x so a poller sees each one)."""
    emu = sagemaker_emulator
    sm = client(emu)
    emu.inject(operation="CreateTrainingJob", slow=5.0)
    sm.create_training_job(**job_request(emu, JOB))
    described, seen = wait_job(sm, JOB)
    return {"described": described, "seen": seen}


@pytest.fixture(scope="module")
def endpoint(sagemaker_emulator: SageMakerEmulator, trained: dict[str, Any]) -> str:
    """An InService endpoint serving the trained model."""
    emu = sagemaker_emulator
    sm = client(emu)
    artifacts = trained["described"]["ModelArtifacts"]["S3ModelArtifacts"]
    sm.create_model(
        ModelName="ic-model",
        ExecutionRoleArn=emu.role_arn,
        PrimaryContainer={"Image": IC_IMAGE, "ModelDataUrl": artifacts},
        Tags=[{"Key": "mcv:run", "Value": "test"}],
    )
    sm.create_endpoint_config(
        EndpointConfigName="ic-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "ic-model",
                "InstanceType": "ml.m5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName="ic-endpoint", EndpointConfigName="ic-config")
    assert sm.describe_endpoint(EndpointName="ic-endpoint")["EndpointStatus"] == "Creating"
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="ic-endpoint", WaiterConfig={"Delay": 0.05, "MaxAttempts": 600}
    )
    return "ic-endpoint"


@pytest.fixture
def emu(sagemaker_emulator: SageMakerEmulator) -> Iterator[SageMakerEmulator]:
    """The module's emulator; faults a test leaves pending are cleared after it."""
    try:
        yield sagemaker_emulator
    finally:
        sagemaker_emulator.reset_faults()


# ---------------------------------------------------------------------------------------- wire protocol


def test_service_specific_environment_variables_route_boto3(sagemaker_env: SageMakerEmulator) -> None:
    emu = sagemaker_env
    session = boto3.session.Session()
    sm, runtime, s3 = session.client("sagemaker"), session.client("sagemaker-runtime"), session.client("s3")
    assert sm.meta.endpoint_url == emu.endpoint_url
    assert runtime.meta.endpoint_url == emu.endpoint_url
    assert session.client("service-quotas").meta.endpoint_url == emu.endpoint_url
    assert s3.meta.endpoint_url == emu.s3_endpoint_url
    assert "TrainingJobSummaries" in sm.list_training_jobs()
    assert EMULATOR_BUCKET in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert session.client("sts").get_caller_identity()["Account"] == emu.account


def test_unknown_member_is_refused_with_botocores_report(emu: SageMakerEmulator) -> None:
    status, body = raw_call(emu, "SageMaker.ListTrainingJobs", json.dumps({"MaxResults": 5, "Bogus": 1}).encode())
    assert status == 400
    assert body["__type"] == "ValidationException"
    assert 'Unknown parameter in input: "Bogus"' in body["message"]


def test_unknown_operation_and_bad_target(emu: SageMakerEmulator) -> None:
    status, body = raw_call(emu, "SageMaker.MakeMeASandwich", b"{}")
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    status, body = raw_call(emu, "Bogus.ListTrainingJobs", b"{}")
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    status, body = raw_call(emu, "SageMaker.CreateHyperParameterTuningJob", b"{}")
    assert status == 501 and "CreateTrainingJob" in body["message"]


def test_missing_member_wrong_type_enum_and_pattern(emu: SageMakerEmulator) -> None:
    sm = client(emu, parameter_validation=False)
    request = job_request(emu, "no-role")
    del request["RoleArn"]
    with pytest.raises(ClientError) as excinfo:
        sm.create_training_job(**request)
    code, message = error_of(excinfo)
    assert code == "ValidationException"
    assert 'Missing required parameter in input: "RoleArn"' in message

    with pytest.raises(ClientError) as excinfo:
        sm.list_training_jobs(SortOrder="Upwards", MaxResults=5)
    assert error_of(excinfo)[1] == (
        "1 validation error detected: Value 'Upwards' at 'sortOrder' failed to satisfy constraint: "
        "Member must satisfy enum value set: [Ascending, Descending]"
    )
    with pytest.raises(ClientError) as excinfo:
        sm.create_training_job(**job_request(emu, "bad_name"))
    code, message = error_of(excinfo)
    assert code == "ValidationException"
    assert "Value 'bad_name' at 'trainingJobName' failed to satisfy constraint: Member must satisfy regular" in message
    status, body = raw_call(emu, "SageMaker.ListTrainingJobs", json.dumps({"MaxResults": "five"}).encode())
    assert status == 400 and "Invalid type for parameter MaxResults" in body["message"]


def test_timestamps_travel_as_epoch_seconds(emu: SageMakerEmulator, trained: dict[str, Any]) -> None:
    status, body = raw_call(emu, "SageMaker.DescribeTrainingJob", json.dumps({"TrainingJobName": JOB}).encode())
    assert status == 200
    assert isinstance(body["CreationTime"], float)
    assert body["CreationTime"] == pytest.approx(trained["described"]["CreationTime"].timestamp())


# ------------------------------------------------------------------------------------- create-time refusals


def test_create_time_refusals_use_the_service_text(emu: SageMakerEmulator, staged: Path) -> None:
    sm = client(emu)
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"AlgorithmSpecification": {"TrainingInputMode": "File"}},
            "Value null at 'algorithmSpecification.trainingImage' failed to satisfy constraint: "
            "Member must not be null",
        ),
        (
            {"ResourceConfig": None},
            "Value null at 'resourceConfig' failed to satisfy constraint: Member must not be null",
        ),
        (
            {
                "AlgorithmSpecification": {
                    "TrainingImage": IC_IMAGE.replace("us-east-1", "eu-west-1"),
                    "TrainingInputMode": "File",
                }
            },
            "is in region eu-west-1, but the job runs in us-east-1",
        ),
        (
            {"RoleArn": "arn:aws:iam::123456789012:role/no-such-role"},
            "Could not assume role arn:aws:iam::123456789012:role/no-such-role.",
        ),
        (
            {
                "InputDataConfig": [
                    channel("train", f"s3://{EMULATOR_BUCKET}/nothing-here/"),
                    channel("validation", f"s3://{EMULATOR_BUCKET}/data/validation/"),
                ]
            },
            f'No S3 objects found under S3 URL "s3://{EMULATOR_BUCKET}/nothing-here/" given in input data source. '
            "Please ensure that the bucket exists in the selected region (us-east-1)",
        ),
    ]
    for number, (changes, expected) in enumerate(cases):
        request = job_request(emu, f"refused-{number}", **changes)
        request = {k: v for k, v in request.items() if v is not None}
        with pytest.raises(ClientError) as excinfo:
            sm.create_training_job(**request)
        code, message = error_of(excinfo)
        assert code == "ValidationException", (number, message)
        assert expected in message, (number, message)
    names = [s["TrainingJobName"] for s in sm.list_training_jobs(NameContains="refused-")["TrainingJobSummaries"]]
    assert names == []


# ---------------------------------------------------------------------------------- training, for real


def test_training_walks_the_real_states(trained: dict[str, Any]) -> None:
    described, seen = trained["described"], trained["seen"]
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert seen == [
        ("InProgress", "Starting"),
        ("InProgress", "Downloading"),
        ("InProgress", "Training"),
        ("InProgress", "Uploading"),
        ("Completed", "Completed"),
    ]
    transitions = described["SecondaryStatusTransitions"]
    assert [t["Status"] for t in transitions] == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    for before, after in itertools.pairwise(transitions):
        assert before["EndTime"] == after["StartTime"]
        assert before["StartTime"] <= before["EndTime"]
    assert transitions[-1]["StatusMessage"] == "Training job completed"
    assert described["TrainingStartTime"] <= described["TrainingEndTime"]
    assert described["BillableTimeInSeconds"] >= 1
    assert described["TrainingTimeInSeconds"] == described["BillableTimeInSeconds"]
    assert described["HyperParameters"]["num_classes"] == str(NUM_CLASSES)
    metrics = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert set(metrics) == {"train:accuracy", "validation:accuracy"}
    assert all(0.0 <= value <= 1.0 for value in metrics.values())


def test_training_writes_a_real_model_to_s3(emu: SageMakerEmulator, trained: dict[str, Any]) -> None:
    uri = trained["described"]["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri == f"s3://{EMULATOR_BUCKET}/output/{JOB}/output/model.tar.gz"
    data = emu.client("s3").get_object(Bucket=EMULATOR_BUCKET, Key=f"output/{JOB}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = set(tar.getnames())
        shapes = json.loads(tar.extractfile("model-shapes.json").read())  # type: ignore[union-attr]
        hyperparameters = json.loads(tar.extractfile("hyperparameters.json").read())  # type: ignore[union-attr]
        onnx_bytes = tar.extractfile("model.onnx").read()  # type: ignore[union-attr]
    assert {"model.onnx", "model-shapes.json", "hyperparameters.json", "emulator.json"} <= names
    assert shapes == [{"shape": [6, 3, 32, 32], "name": "data"}]
    assert hyperparameters["num_layers"] == "18"
    assert len(onnx_bytes) > 10_000
    log = emu.logs("training-job", JOB)
    assert any("max_epochs" in line for line in log)
    assert any(line.startswith("Epoch[2] Validation-accuracy=") for line in log)
    streams = emu.client("logs").describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs")["logStreams"]
    assert any(s["logStreamName"].startswith(f"{JOB}/algo-1-") for s in streams)


def test_list_filters_pages_and_tags(emu: SageMakerEmulator, trained: dict[str, Any]) -> None:
    sm = client(emu)
    for name in ("listed-a", "listed-b"):
        emu.fail_next_training_job("ClientError: listed on purpose")
        sm.create_training_job(**job_request(emu, name))
        wait_job(sm, name)
    first = sm.list_training_jobs(NameContains="LISTED", MaxResults=1, SortBy="Name", SortOrder="Ascending")
    assert [s["TrainingJobName"] for s in first["TrainingJobSummaries"]] == ["listed-a"]
    second = sm.list_training_jobs(
        NameContains="listed", MaxResults=1, SortBy="Name", SortOrder="Ascending", NextToken=first["NextToken"]
    )
    assert [s["TrainingJobName"] for s in second["TrainingJobSummaries"]] == ["listed-b"]
    assert "NextToken" not in second
    completed = sm.list_training_jobs(StatusEquals="Completed")["TrainingJobSummaries"]
    assert JOB in [s["TrainingJobName"] for s in completed]
    assert all(s["TrainingJobStatus"] == "Completed" for s in completed)
    paginated = [
        s["TrainingJobName"]
        for page in sm.get_paginator("list_training_jobs").paginate(
            NameContains="listed", PaginationConfig={"PageSize": 1}
        )
        for s in page["TrainingJobSummaries"]
    ]
    assert sorted(paginated) == ["listed-a", "listed-b"]
    arn = trained["described"]["TrainingJobArn"]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "mcv:run", "Value": "test"}]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "extra", "Value": "1"}])
    sm.delete_tags(ResourceArn=arn, TagKeys=["mcv:run"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "extra", "Value": "1"}]


# ------------------------------------------------------------------------------ the container's refusals


def test_bad_hyperparameter_fails_the_job_in_the_containers_words(emu: SageMakerEmulator, staged: Path) -> None:
    request = job_request(emu, "typo-hp")
    request["HyperParameters"] = {**request["HyperParameters"], "lerning_rate": "0.1"}
    sm = client(emu)
    sm.create_training_job(**request)
    described, seen = wait_job(sm, "typo-hp")
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("ClientError: Additional hyperparameters are not allowed")
    assert "lerning_rate" in described["FailureReason"]
    assert [t["Status"] for t in described["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Failed",
    ]
    assert seen[-1] == ("Failed", "Failed")
    assert "FinalMetricDataList" not in described


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {
                "InputDataConfig": [
                    channel("training", f"s3://{EMULATOR_BUCKET}/data/train/"),
                    channel("validation", f"s3://{EMULATOR_BUCKET}/data/validation/"),
                ]
            },
            "Additional properties are not allowed ('training' was unexpected)",
        ),
        (
            {
                "InputDataConfig": [
                    channel("train", f"s3://{EMULATOR_BUCKET}/data/train/", "application/json"),
                    channel("validation", f"s3://{EMULATOR_BUCKET}/data/validation/"),
                ]
            },
            "'application/json' is not one of ['application/x-recordio', 'application/x-image', 'image/png', "
            "'image/jpeg']",
        ),
        (
            {
                "InputDataConfig": [
                    channel("train", f"s3://{EMULATOR_BUCKET}/empty/train/"),
                    channel("validation", f"s3://{EMULATOR_BUCKET}/data/validation/"),
                ]
            },
            "ClientError: Unable to start training. Empty .rec file in train channel.",
        ),
        (
            {"ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10}},
            "trains on GPU instances only",
        ),
    ],
    ids=["channel-name", "content-type", "empty-rec", "cpu-instance"],
)
def test_container_refuses_channels(
    emu: SageMakerEmulator, staged: Path, changes: dict[str, Any], expected: str, request: pytest.FixtureRequest
) -> None:
    name = f"container-{request.node.callspec.id}"
    assert expected in failure_of(emu, name, **changes)


def test_fewer_images_than_mini_batch_size(emu: SageMakerEmulator, staged: Path) -> None:
    request = job_request(emu, "big-batch")
    hyperparameters = {**request["HyperParameters"], "mini_batch_size": "8", "num_training_samples": "18"}
    reason = failure_of(emu, "big-batch", HyperParameters=hyperparameters)
    assert reason == "ClientError: The number of input images must be bigger or equal to the mini_batch_size."
    assert any("validation images 6" in line for line in emu.logs("training-job", "big-batch"))


def manifest_channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "ContentType": "application/x-recordio",
        "RecordWrapperType": "RecordIO",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "AugmentedManifestFile",
                "S3Uri": uri,
                "AttributeNames": ["source-ref", "class"],
            }
        },
    }


def test_manifest_lines_without_the_attribute_give_an_empty_pipe(emu: SageMakerEmulator, staged: Path) -> None:
    lines = [json.dumps({"source-ref": f"s3://{EMULATOR_BUCKET}/data/train/train.rec", "label": "0"})] * 3
    emu.client("s3").put_object(Bucket=EMULATOR_BUCKET, Key="manifests/bad.manifest", Body="\n".join(lines).encode())
    uri = f"s3://{EMULATOR_BUCKET}/manifests/bad.manifest"
    channels = [manifest_channel("train", uri), manifest_channel("validation", uri)]
    with pytest.raises(ClientError) as excinfo:
        client(emu).create_training_job(**job_request(emu, "manifest-file-mode", InputDataConfig=channels))
    assert "only with Pipe input mode" in error_of(excinfo)[1]
    reason = failure_of(
        emu,
        "manifest-no-class",
        InputDataConfig=channels,
        AlgorithmSpecification={"TrainingImage": IC_IMAGE, "TrainingInputMode": "Pipe"},
    )
    assert reason.startswith("ClientError: Got empty batch from pipe. Please check")
    assert "AttributeNames" in reason


def test_invalid_lst_file(emu: SageMakerEmulator, staged: Path) -> None:
    emu.client("s3").put_object(Bucket=EMULATOR_BUCKET, Key="lst/train.lst", Body=b"this is not\ta list file\n")
    image = "application/x-image"
    channels = [
        channel("train", f"s3://{EMULATOR_BUCKET}/data/train/", image),
        channel("validation", f"s3://{EMULATOR_BUCKET}/data/validation/", image),
        channel("train_lst", f"s3://{EMULATOR_BUCKET}/lst/train.lst", image),
        channel("validation_lst", f"s3://{EMULATOR_BUCKET}/lst/train.lst", image),
    ]
    hyperparameters = {**job_request(emu, "x")["HyperParameters"], "resize": "40"}
    reason = failure_of(emu, "bad-lst", InputDataConfig=channels, HyperParameters=hyperparameters)
    assert reason == "ClientError: Invalid lst file in the train channel."


def test_incremental_training_needs_the_base_models_shape(emu: SageMakerEmulator, trained: dict[str, Any]) -> None:
    request = job_request(emu, "incremental")
    base = channel("model", trained["described"]["ModelArtifacts"]["S3ModelArtifacts"], "application/x-sagemaker-model")
    hyperparameters = {**request["HyperParameters"], "num_classes": "4"}
    reason = failure_of(
        emu, "incremental", InputDataConfig=[*request["InputDataConfig"], base], HyperParameters=hyperparameters
    )
    assert reason.startswith("ClientError: Incremental training: the hyperparameter 'num_classes' (4) does not match")


# --------------------------------------------------------------------------------------- stop and faults


def test_stop_training_job(emu: SageMakerEmulator, staged: Path) -> None:
    sm = client(emu)
    emu.inject(operation="CreateTrainingJob", slow=50.0)  # one second per state
    sm.create_training_job(**job_request(emu, "to-stop"))
    sm.stop_training_job(TrainingJobName="to-stop")
    assert sm.describe_training_job(TrainingJobName="to-stop")["TrainingJobStatus"] == "Stopping"
    described, seen = wait_job(sm, "to-stop", timeout=30)
    assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert [t["Status"] for t in described["SecondaryStatusTransitions"]][-2:] == ["Stopping", "Stopped"]
    assert seen[-1] == ("Stopped", "Stopped")
    with pytest.raises(ClientError) as excinfo:
        sm.stop_training_job(TrainingJobName="to-stop")
    assert error_of(excinfo) == (
        "ValidationException",
        "The request was rejected because the training job is in status Stopped.",
    )


def test_duplicate_name_is_resource_in_use(emu: SageMakerEmulator, trained: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as excinfo:
        client(emu).create_training_job(**job_request(emu, JOB))
    assert error_of(excinfo) == (
        "ResourceInUse",
        "Training job names must be unique within an AWS account and region, and a training job with this name "
        f"already exists (arn:aws:sagemaker:us-east-1:123456789012:training-job/{JOB})",
    )


def test_throttling_is_absorbed_by_botocore_retries(emu: SageMakerEmulator) -> None:
    sm = client(emu)
    before = len(emu.calls("ListTrainingJobs"))
    emu.inject(operation="ListTrainingJobs", error="ThrottlingException", times=2)
    response = sm.list_training_jobs()
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert len(emu.calls("ListTrainingJobs")) - before == 3
    emu.inject(
        operation="ListTrainingJobs", error="ThrottlingException", times=2
    )  # more faults than attempts: the error surfaces
    single = client(emu, retries={"mode": "standard", "total_max_attempts": 1})
    with pytest.raises(ClientError) as excinfo:
        single.list_training_jobs()
    assert error_of(excinfo) == ("ThrottlingException", "Rate exceeded")


def test_server_error_after_the_effect_meets_resource_in_use_on_retry(emu: SageMakerEmulator, staged: Path) -> None:
    sm = client(emu)
    before = len(emu.calls("CreateTrainingJob"))
    emu.fail_next_training_job("ClientError: injected by the test")
    emu.inject(operation="CreateTrainingJob", status=500, after_effect=True)
    with pytest.raises(ClientError) as excinfo:
        sm.create_training_job(**job_request(emu, "after-effect"))
    assert error_of(excinfo)[0] == "ResourceInUse"
    assert len(emu.calls("CreateTrainingJob")) - before == 2
    described, _ = wait_job(sm, "after-effect")
    assert (described["TrainingJobStatus"], described["FailureReason"]) == (
        "Failed",
        "ClientError: injected by the test",
    )


def test_quota_and_admin_route(emu: SageMakerEmulator, staged: Path) -> None:
    sm = client(emu, retries={"mode": "standard", "total_max_attempts": 1})
    quotas = emu.client("service-quotas")

    def applied(name: str) -> float:
        pages = quotas.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker")
        return next(q["Value"] for page in pages for q in page["Quotas"] if q["QuotaName"] == name)

    assert applied("ml.p3.2xlarge for training job usage") == 20.0
    emu.set_quota("ml.p3.2xlarge", "training job", 0)
    try:
        assert applied("ml.p3.2xlarge for training job usage") == 0.0
        with pytest.raises(ClientError) as excinfo:
            sm.create_training_job(**job_request(emu, "over-quota"))
    finally:
        emu.set_quota("ml.p3.2xlarge", "training job", None)
    code, message = error_of(excinfo)
    assert code == "ResourceLimitExceeded"
    assert message.startswith(
        "The account-level service limit 'ml.p3.2xlarge for training job usage' is 0 Instances, with current "
        "utilization of 0 Instances and a request delta of 1 Instances."
    )
    request = urllib.request.Request(
        f"{emu.endpoint_url}/_emulator/faults",
        data=json.dumps({"operation": "DescribeEndpoint", "error": "ServiceUnavailable"}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["pending"] == 1
    with pytest.raises(ClientError) as excinfo:
        sm.describe_endpoint(EndpointName="anything")
    assert error_of(excinfo)[0] == "ServiceUnavailable"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


# ---------------------------------------------------------------------------------- endpoints and runtime


def test_invoke_endpoint_with_a_real_jpeg(emu: SageMakerEmulator, endpoint: str) -> None:
    runtime = client(emu, "sagemaker-runtime")
    response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="image/jpeg", Body=jpeg())
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    prediction = json.loads(response["Body"].read())["prediction"]
    assert len(prediction) == NUM_CLASSES
    assert sum(prediction) == pytest.approx(1.0, abs=1e-4)
    lines = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="application/x-image", Accept="application/jsonlines", Body=jpeg()
    )["Body"].read()
    assert lines.endswith(b"\n") and json.loads(lines)["prediction"] == pytest.approx(prediction)
    described = client(emu).describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "InService"
    assert described["ProductionVariants"][0]["DeployedImages"][0]["SpecifiedImage"] == IC_IMAGE


def test_invoke_endpoint_errors(emu: SageMakerEmulator, endpoint: str) -> None:
    runtime = client(emu, "sagemaker-runtime", retries={"mode": "standard", "total_max_attempts": 1})
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="image/jpeg", Body=b"not an image at all")
    code, message = error_of(excinfo)
    assert code == "ModelError"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert message.startswith("Received client error (400) from primary with message")
    assert excinfo.value.response["OriginalStatusCode"] == 400
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", ContentType="image/jpeg", Body=jpeg())
    assert error_of(excinfo) == ("ValidationError", "Endpoint no-such-endpoint of account 123456789012 not found.")
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="image/jpeg", Body=b"\xff" * (6_291_456 + 1))
    assert error_of(excinfo) == ("413", "HTTP content length exceeded 6291456 bytes.")


def test_transform_job_writes_one_output_per_input(emu: SageMakerEmulator, endpoint: str) -> None:
    s3 = emu.client("s3")
    inputs = {"batch/in/a.jpg": jpeg("circle", 1), "batch/in/sub/b.jpg": jpeg("square", 2)}
    for key, body in inputs.items():
        s3.put_object(Bucket=EMULATOR_BUCKET, Key=key, Body=body)
    sm = client(emu)
    sm.create_transform_job(
        TransformJobName="batch-1",
        ModelName="ic-model",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{EMULATOR_BUCKET}/batch/in/"}},
            "ContentType": "image/jpeg",
        },
        TransformOutput={"S3OutputPath": f"s3://{EMULATOR_BUCKET}/batch/out"},
        TransformResources={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
    )
    assert sm.describe_transform_job(TransformJobName="batch-1")["TransformJobStatus"] == "InProgress"
    sm.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName="batch-1", WaiterConfig={"Delay": 0.05, "MaxAttempts": 600}
    )
    described = sm.describe_transform_job(TransformJobName="batch-1")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert described["TransformStartTime"] <= described["TransformEndTime"]
    runtime = client(emu, "sagemaker-runtime")
    for key, body in inputs.items():
        relative = key.removeprefix("batch/in/")
        written = json.loads(s3.get_object(Bucket=EMULATOR_BUCKET, Key=f"batch/out/{relative}.out")["Body"].read())
        answered = json.loads(
            runtime.invoke_endpoint(EndpointName=endpoint, ContentType="image/jpeg", Body=body)["Body"].read()
        )
        assert written["prediction"] == pytest.approx(answered["prediction"])


def test_endpoint_on_corrupt_model_fails_and_missing_model_is_refused(emu: SageMakerEmulator, endpoint: str) -> None:
    sm = client(emu)
    with pytest.raises(ClientError) as excinfo:
        sm.create_model(
            ModelName="ghost",
            ExecutionRoleArn=emu.role_arn,
            PrimaryContainer={"Image": IC_IMAGE, "ModelDataUrl": f"s3://{EMULATOR_BUCKET}/nope/model.tar.gz"},
        )
    assert error_of(excinfo) == (
        "ValidationException",
        f"Could not find model data at s3://{EMULATOR_BUCKET}/nope/model.tar.gz.",
    )
    emu.client("s3").put_object(Bucket=EMULATOR_BUCKET, Key="corrupt/model.tar.gz", Body=b"this is no tarball")
    sm.create_model(
        ModelName="corrupt",
        ExecutionRoleArn=emu.role_arn,
        PrimaryContainer={"Image": IC_IMAGE, "ModelDataUrl": f"s3://{EMULATOR_BUCKET}/corrupt/model.tar.gz"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="corrupt",
        ProductionVariants=[
            {"VariantName": "Main", "ModelName": "corrupt", "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1}
        ],
    )
    sm.create_endpoint(EndpointName="corrupt", EndpointConfigName="corrupt")
    with pytest.raises(Exception, match="Failed"):
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName="corrupt", WaiterConfig={"Delay": 0.05, "MaxAttempts": 200}
        )
    described = sm.describe_endpoint(EndpointName="corrupt")
    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"] == (
        "The primary container for production variant Main did not pass the ping health check. "
        "Please check CloudWatch logs for this endpoint."
    )
    with pytest.raises(ClientError) as excinfo:
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName="ic-config")
    assert error_of(excinfo) == (
        "ValidationException",
        f'Cannot create already existing endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/{endpoint}".',
    )


def test_delete_endpoint_walks_deleting_then_gone(emu: SageMakerEmulator, endpoint: str) -> None:
    sm = client(emu)
    sm.create_endpoint(EndpointName="short-lived", EndpointConfigName="ic-config")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="short-lived", WaiterConfig={"Delay": 0.05, "MaxAttempts": 600}
    )
    sm.delete_endpoint(EndpointName="short-lived")
    assert sm.describe_endpoint(EndpointName="short-lived")["EndpointStatus"] == "Deleting"
    sm.get_waiter("endpoint_deleted").wait(EndpointName="short-lived", WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})
    with pytest.raises(ClientError) as excinfo:
        sm.describe_endpoint(EndpointName="short-lived")
    assert error_of(excinfo) == (
        "ValidationException",
        'Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/short-lived".',
    )
    names = [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
    assert "short-lived" not in names and endpoint in names


# ----------------------------------------------------------------------------------- stopping real work


def test_stop_interrupts_real_training_and_shutdown_is_prompt(staged: Path, tmp_path: Path) -> None:
    """A second emulator whose cap allows long trainings: StopTrainingJob and stop() end them mid-epoch."""
    from mcv_sagemaker.emulator import sagemaker_emulator

    with sagemaker_emulator(pace=0.02, state_dir=tmp_path / "state", bucket="mcv-long", max_epochs=500) as other:
        s3 = other.client("s3")
        for split in ("train", "validation"):
            s3.upload_file(str(staged / f"{split}.rec"), "mcv-long", f"data/{split}/{split}.rec")
        sm = client(other)

        def long_job(name: str) -> None:
            request = job_request(other, name)
            request["HyperParameters"] = {**request["HyperParameters"], "epochs": "500"}
            request["InputDataConfig"] = [
                channel("train", "s3://mcv-long/data/train/"),
                channel("validation", "s3://mcv-long/data/validation/"),
            ]
            request["OutputDataConfig"] = {"S3OutputPath": "s3://mcv-long/output"}
            sm.create_training_job(**request)
            deadline = time.monotonic() + 60
            while not any(line.startswith("Epoch[1] ") for line in other.logs("training-job", name)):
                assert time.monotonic() < deadline, other.logs("training-job", name)
                time.sleep(0.02)

        long_job("long-1")
        sm.stop_training_job(TrainingJobName="long-1")
        described, _ = wait_job(sm, "long-1", timeout=30)
        assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == ("Stopped", "Stopped")
        epochs = [line for line in other.logs("training-job", "long-1") if "Validation-accuracy" in line]
        assert 2 <= len(epochs) < 100
        assert not any("completed" in line for line in other.logs("training-job", "long-1"))

        long_job("long-2")
        started = time.monotonic()
    assert time.monotonic() - started < 10
    assert other.control.join(0) == []
