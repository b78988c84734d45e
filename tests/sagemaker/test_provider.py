"""The SageMaker provider through the real boto3 client against the SageMaker emulator (and moto's S3).

The conformance suite runs first (classification and detection: train, deploy, predict, evaluate,
cancel, undeploy); then the paths only SageMaker has: the image (.lst) and augmented-manifest input
modes, incremental training through the ``model`` channel, batch transform, retries under injected
throttling and 5xx answers without a duplicate job, a failed job's reason kept verbatim, the body
limit checked before sending, and cleanup leaving no model, endpoint config or endpoint behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest

from multicloud_cv.datasets import load_dataset
from multicloud_cv.errors import InvalidImage, JobFailed
from multicloud_cv.interfaces import TrainingSpec
from multicloud_cv.registry import registry
from multicloud_cv.runs import RunStore
from multicloud_cv.states import EndpointState, JobState
from multicloud_cv.testing import ProviderConformance
from multicloud_cv.testing.data import make_tiny_dataset
from multicloud_cv.testing.emulators import patched_environ

pytestmark = pytest.mark.slow

BUCKET = "mcv-test-bucket"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from mcv_sagemaker.emulator import sagemaker_emulator

    with sagemaker_emulator(pace=0.02, state_dir=tmp_path_factory.mktemp("sagemaker-emulator")) as emu:
        emu.create_bucket(BUCKET)
        with patched_environ(dict(emu.environment())):
            yield emu


def settings(emu: Any, **extra: str) -> dict[str, str]:
    return {
        "region": emu.region,
        "bucket": BUCKET,
        "role_arn": emu.role_arn,
        "poll_s": "0.05",
        **extra,
    }


class TestSageMakerConformance(ProviderConformance):
    provider_name: ClassVar[str] = "sagemaker"
    min_accuracy: ClassVar[float] = 0.5
    epochs: ClassVar[int] = 3

    @pytest.fixture(scope="class")
    @classmethod
    def provider_config(cls, emulator: Any) -> dict[str, str]:  # type: ignore[override]
        return settings(emulator)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> RunStore:
    return RunStore(tmp_path_factory.mktemp("mcv-home") / "runs.sqlite")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "ds", train_per_class=8, test_per_class=2, fmt="JPEG")
    return load_dataset(root)


def _roles(emu: Any, store: RunStore, **extra: str) -> tuple[Any, Any, Any]:
    config = settings(emu, **extra)
    get = registry().get
    return (
        get("sagemaker", "trainer", config=config, store=store),
        get("sagemaker", "deployer", config=config, store=store),
        get("sagemaker", "predictor", config=config, store=store),
    )


def _sagemaker(emu: Any) -> Any:
    return boto3.client("sagemaker", region_name=emu.region)


@pytest.fixture(scope="module")
def recordio_job(emulator: Any, store: RunStore, tiny: Any) -> Any:
    trainer, _, _ = _roles(emulator, store)
    return trainer.train(TrainingSpec(dataset=tiny, epochs=2), timeout=300)


@pytest.mark.parametrize("mode", ["images", "manifest"])
def test_input_modes_train_a_real_model(emulator: Any, store: RunStore, tiny: Any, mode: str) -> None:
    trainer, _, _ = _roles(emulator, store, input_mode=mode)
    job = trainer.train(TrainingSpec(dataset=tiny, epochs=1), timeout=300)
    assert job.state is JobState.SUCCEEDED, job.failure_reason
    described = _sagemaker(emulator).describe_training_job(TrainingJobName=job.native_id)
    channels = {c["ChannelName"]: c for c in described["InputDataConfig"]}
    if mode == "images":
        assert sorted(channels) == ["train", "train_lst", "validation", "validation_lst"]
    else:
        assert described["AlgorithmSpecification"]["TrainingInputMode"] == "Pipe"
        assert channels["train"]["DataSource"]["S3DataSource"]["S3DataType"] == "AugmentedManifestFile"
    assert described["FinalMetricDataList"], "the emulator reports the trained model's metrics"


def test_job_record_has_metrics_cost_and_model(recordio_job: Any, store: RunStore, emulator: Any) -> None:
    assert recordio_job.state is JobState.SUCCEEDED
    assert recordio_job.native_state == "Completed/Completed"
    assert recordio_job.cost_usd is not None and recordio_job.cost_usd > 0
    assert any(name.startswith("validation:") for name in recordio_job.metrics)
    model = store.model(recordio_job.model_id)
    assert model.artifact and model.artifact.endswith("/output/model.tar.gz")
    assert model.labels == list(store.job(recordio_job.id).spec["classes"]) and len(model.labels) == 3
    s3 = boto3.client("s3", region_name=emulator.region)
    bucket, _, key = model.artifact.removeprefix("s3://").partition("/")
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0


def test_incremental_training_sends_the_model_channel(
    emulator: Any, store: RunStore, tiny: Any, recordio_job: Any
) -> None:
    trainer, _, _ = _roles(emulator, store)
    job = trainer.train(TrainingSpec(dataset=tiny, epochs=1, base_model=recordio_job.model_id), timeout=300)
    assert job.state is JobState.SUCCEEDED, job.failure_reason
    described = _sagemaker(emulator).describe_training_job(TrainingJobName=job.native_id)
    model_channel = [c for c in described["InputDataConfig"] if c["ChannelName"] == "model"]
    assert model_channel and model_channel[0]["ContentType"] == "application/x-sagemaker-model"
    base_artifact = store.model(recordio_job.model_id).artifact
    assert model_channel[0]["DataSource"]["S3DataSource"]["S3Uri"] == base_artifact


def test_incremental_training_refuses_another_num_layers(
    emulator: Any, store: RunStore, tiny: Any, recordio_job: Any
) -> None:
    from multicloud_cv.errors import BadInput

    trainer, _, _ = _roles(emulator, store)
    spec = TrainingSpec(dataset=tiny, epochs=1, base_model=recordio_job.model_id, hyperparameters={"num_layers": 50})
    before = len(emulator.calls("CreateTrainingJob"))
    with pytest.raises(BadInput, match="num_layers"):
        trainer.submit(spec)
    assert len(emulator.calls("CreateTrainingJob")) == before


def test_batch_transform_reads_outputs_back(emulator: Any, store: RunStore, tiny: Any, recordio_job: Any) -> None:
    _, _, predictor = _roles(emulator, store)
    images = [tiny.absolute(i) for i in tiny.split("test")]
    results = predictor.transform(recordio_job.model_id, images, top_k=2)
    assert [r.image for r in results] == [str(p) for p in images]
    for result in results:
        assert len(result.labels) == 2 and result.labels[0].confidence >= result.labels[1].confidence
        assert result.labels[0].name in tiny.classes
    client = _sagemaker(emulator)
    jobs = client.list_transform_jobs()["TransformJobSummaries"]
    assert jobs and jobs[0]["TransformJobStatus"] == "Completed"
    assert client.list_models()["Models"] == [], "the transform's model is deleted afterwards"


def test_throttled_create_is_retried_without_a_duplicate_job(emulator: Any, store: RunStore, tiny: Any) -> None:
    trainer, _, _ = _roles(emulator, store)
    client = _sagemaker(emulator)
    before = len(client.list_training_jobs(MaxResults=100)["TrainingJobSummaries"])
    emulator.inject(operation="CreateTrainingJob", error="ThrottlingException", times=2)
    job = trainer.submit(TrainingSpec(dataset=tiny, epochs=1))
    emulator.inject(operation="CreateTrainingJob", status=500, times=1, after_effect=True)
    second = trainer.submit(TrainingSpec(dataset=tiny, epochs=1))
    after = client.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
    assert len(after) == before + 2, "one job per submit, whatever the retries"
    assert {job.native_id, second.native_id} <= {j["TrainingJobName"] for j in after}
    for started in (job, second):
        trainer.cancel(started.id)


def test_failed_job_keeps_the_reason_verbatim(emulator: Any, store: RunStore, tiny: Any) -> None:
    trainer, _, _ = _roles(emulator, store)
    reason = "ClientError: Unable to start training. Empty .rec file in train channel., exit code: 2"
    emulator.fail_next_training_job(reason)
    with pytest.raises(JobFailed, match=r"Empty \.rec file in train channel"):
        trainer.train(TrainingSpec(dataset=tiny, epochs=1), timeout=300)
    failed = [j for j in store.jobs() if j.state == JobState.FAILED.value]
    assert failed and failed[-1].failure_reason == reason


def test_endpoint_predicts_then_cleanup_leaves_nothing(
    emulator: Any, store: RunStore, tiny: Any, recordio_job: Any, tmp_path: Path
) -> None:
    from multicloud_cv.cleanup import cleanup

    _, deployer, predictor = _roles(emulator, store)
    endpoint = deployer.deploy(recordio_job.model_id, ttl_s=3600, timeout=120)
    assert endpoint.state is EndpointState.READY and endpoint.emulated
    assert endpoint.cost_per_hour_usd and endpoint.cost_per_hour_usd > 0
    image = tiny.absolute(tiny.split("test")[0])
    prediction = predictor.predict(endpoint.id, image)
    assert prediction.labels and prediction.labels[0].name in tiny.classes and prediction.emulated
    big = tmp_path / "big.jpg"
    big.write_bytes(image.read_bytes() + b"\0" * 6_400_000)
    invokes = len(emulator.calls("InvokeEndpoint"))
    with pytest.raises(InvalidImage, match="6291456"):
        predictor.predict(endpoint.id, big)
    assert len(emulator.calls("InvokeEndpoint")) == invokes, "an oversized image is refused before sending"
    result = cleanup(store, lambda _name: deployer, everything=True)
    assert endpoint.id in result.deleted and not result.failed
    client = _sagemaker(emulator)
    assert client.list_endpoints()["Endpoints"] == []
    assert client.list_endpoint_configs()["EndpointConfigs"] == []
    assert client.list_models()["Models"] == []
    assert deployer.undeploy(endpoint.id).state is EndpointState.DELETED  # idempotent


def test_expired_endpoint_is_cleaned_by_ttl(emulator: Any, store: RunStore, recordio_job: Any) -> None:
    import time

    from multicloud_cv.cleanup import cleanup

    _, deployer, _ = _roles(emulator, store)
    endpoint = deployer.deploy(recordio_job.model_id, ttl_s=1, timeout=120)
    assert cleanup(store, lambda _name: deployer, now=time.time() - 10).deleted == []
    assert endpoint.id in cleanup(store, lambda _name: deployer, now=time.time() + 5).deleted
    assert _sagemaker(emulator).list_endpoints()["Endpoints"] == []


@pytest.fixture(scope="module")
def boxes(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from multicloud_cv.testing.datasets import make_detection_dataset

    return make_detection_dataset(tmp_path_factory.mktemp("boxes"))


@pytest.mark.parametrize("mode", ["images", "manifest"])
def test_detection_input_modes_train_and_answer_boxes(
    emulator: Any, store: RunStore, boxes: Any, mode: str, tmp_path: Path
) -> None:
    from multicloud_cv.capabilities import Task

    trainer, deployer, predictor = _roles(emulator, store, input_mode=mode)
    job = trainer.train(TrainingSpec(dataset=boxes, task=Task.DETECTION, epochs=1), timeout=300)
    assert job.state is JobState.SUCCEEDED, job.failure_reason
    described = _sagemaker(emulator).describe_training_job(TrainingJobName=job.native_id)
    names = sorted(c["ChannelName"] for c in described["InputDataConfig"])
    if mode == "images":
        assert names == ["train", "train_annotation", "validation", "validation_annotation"]
    else:
        attributes = described["InputDataConfig"][0]["DataSource"]["S3DataSource"]["AttributeNames"]
        assert names == ["train", "validation"] and attributes == ["source-ref", "bounding-box"]
    assert int(described["HyperParameters"].get("label_width", "350")) >= 2 + 5 * 3  # the default fits
    endpoint = deployer.deploy(job.model_id, timeout=120)
    try:
        answer = predictor.predict(endpoint.id, boxes.absolute(boxes.split("test")[0]), threshold=0.0, top_k=5)
        assert answer.task == "detection" and 0 < len(answer.detections) <= 5
        for found in answer.detections:
            assert found.name in boxes.classes and found.box.x_min < found.box.x_max <= 1.0
    finally:
        deployer.undeploy(endpoint.id)


def test_multilabel_class_id_manifest(emulator: Any, store: RunStore, tmp_path: Path) -> None:
    from multicloud_cv.capabilities import Task
    from multicloud_cv.testing.datasets import make_multilabel_dataset

    dataset = make_multilabel_dataset(tmp_path / "ml", per_split={"train": 12, "validation": 4, "test": 3})
    trainer, _, _ = _roles(emulator, store, input_mode="manifest", label_format="class-id")
    job = trainer.train(TrainingSpec(dataset=dataset, task=Task.MULTILABEL, epochs=1), timeout=300)
    assert job.state is JobState.SUCCEEDED, job.failure_reason
    described = _sagemaker(emulator).describe_training_job(TrainingJobName=job.native_id)
    assert {c["ContentType"] for c in described["InputDataConfig"]} == {"application/x-recordio; label-format=class-id"}
    assert described["HyperParameters"]["multi_label"] == "1"


def test_zero_quota_is_refused_before_anything_is_uploaded(emulator: Any, store: RunStore, tiny: Any) -> None:
    from multicloud_cv.errors import BadInput

    trainer, _, _ = _roles(emulator, store, prefix="quota-check")
    emulator.set_quota("ml.p3.2xlarge", "training job", 0)
    try:
        before = len(emulator.calls("CreateTrainingJob"))
        with pytest.raises(BadInput, match=r"ml\.p3\.2xlarge for training job usage"):
            trainer.submit(TrainingSpec(dataset=tiny, epochs=1))
    finally:
        emulator.set_quota("ml.p3.2xlarge", "training job", None)
    assert len(emulator.calls("CreateTrainingJob")) == before
    listed = boto3.client("s3", region_name=emulator.region).list_objects_v2(Bucket=BUCKET, Prefix="quota-check/")
    assert listed.get("KeyCount", 0) == 0, "nothing staged for a refused job"


def test_boto3_profiles_keep_working(emulator: Any, store: RunStore, tmp_path: Path) -> None:
    config = tmp_path / "aws-config"
    config.write_text("[profile team]\nregion = us-east-1\n", encoding="utf-8")
    credentials = tmp_path / "aws-credentials"
    credentials.write_text("[team]\naws_access_key_id = teamkey\naws_secret_access_key = teamsecret\n")
    with patched_environ(
        {
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            "AWS_ACCESS_KEY_ID": None,
            "AWS_SECRET_ACCESS_KEY": None,
            "AWS_REGION": None,
            "AWS_DEFAULT_REGION": None,
        }
    ):
        config_values = {k: v for k, v in settings(emulator, profile="team").items() if k != "region"}
        trainer = registry().get("sagemaker", "trainer", config=config_values, store=store)
        assert trainer.problems() == [], "region from the profile, no boto3 import needed"
        assert trainer.aws.region == "us-east-1"
        assert trainer.aws.session.get_credentials().access_key == "teamkey"
        assert "TrainingJobSummaries" in trainer.aws.sagemaker.list_training_jobs()


def test_cancel_racing_the_end_of_the_job_returns_it_as_it_ended(
    emulator: Any, store: RunStore, recordio_job: Any
) -> None:
    from dataclasses import replace as _replace

    from mcv_sagemaker.provider import SageMakerTrainer

    class StaleFirstLook(SageMakerTrainer):
        """Sees the job still running once, as a status call just before the job's last step would."""

        looks = 0

        def _describe(self, native_id: str, record: Any) -> Any:
            native = super()._describe(native_id, record)
            StaleFirstLook.looks += 1
            return _replace(native, state=JobState.RUNNING, model=None) if StaleFirstLook.looks == 1 else native

    store.update_job(recordio_job.id, state=JobState.RUNNING.value)  # as if the last look was mid-training
    trainer = StaleFirstLook(settings(emulator), store=store)
    stops = len(emulator.calls("StopTrainingJob"))
    job = trainer.cancel(recordio_job.id)
    assert len(emulator.calls("StopTrainingJob")) == stops + 1, "the stop was sent and refused (Completed)"
    assert job.state is JobState.SUCCEEDED, "the job is returned as it ended, not as an error"
