"""The Rekognition Custom Labels provider through boto3 against the Rekognition emulator (and moto's S3).

The conformance suite (classification and detection: train, start, detect, evaluate, stop); then what only
Custom Labels has: the AutoCreate test split, DatasetStats checked against the manifest, a manifest whose
lines the service rejects (the first errors shown with their images), the provider's own evaluation kept
beside ours, start/stop with the accrued cost, throttled calls retried without a duplicate version, and
cleanup removing the version, the datasets and the project.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest

from multicloud_cv.capabilities import Task
from multicloud_cv.datasets import load_dataset
from multicloud_cv.errors import JobFailed
from multicloud_cv.interfaces import TrainingSpec
from multicloud_cv.registry import registry
from multicloud_cv.runs import RunStore
from multicloud_cv.states import EndpointState, JobState
from multicloud_cv.testing import ProviderConformance
from multicloud_cv.testing.data import make_tiny_dataset
from multicloud_cv.testing.emulators import patched_environ

pytestmark = pytest.mark.slow

BUCKET = "mcv-rekognition-provider-test"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from mcv_rekognition.emulator import rekognition_emulator

    with rekognition_emulator(pace=0.02, state_dir=tmp_path_factory.mktemp("rekognition-emulator")) as emu:
        emu.create_bucket(BUCKET)
        with patched_environ(dict(emu.environment())):
            yield emu


def settings(emu: Any, **extra: str) -> dict[str, str]:
    return {"region": emu.region, "bucket": BUCKET, "poll_s": "0.05", **extra}


class TestRekognitionConformance(ProviderConformance):
    provider_name: ClassVar[str] = "rekognition"
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
    root = make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "ds", train_per_class=8, test_per_class=3, fmt="JPEG")
    return load_dataset(root)


def _roles(emu: Any, store: RunStore, **extra: str) -> tuple[Any, Any, Any]:
    config = settings(emu, **extra)
    get = registry().get
    return (
        get("rekognition", "trainer", config=config, store=store),
        get("rekognition", "deployer", config=config, store=store),
        get("rekognition", "predictor", config=config, store=store),
    )


def _client(emu: Any) -> Any:
    return boto3.client("rekognition", region_name=emu.region)


@pytest.fixture(scope="module")
def trained(emulator: Any, store: RunStore, tiny: Any) -> Any:
    trainer, _, _ = _roles(emulator, store)
    return trainer.train(TrainingSpec(dataset=tiny), timeout=300)


def test_datasets_stats_and_provider_metrics(trained: Any, store: RunStore, emulator: Any) -> None:
    assert trained.state is JobState.SUCCEEDED, trained.failure_reason
    state = store.job(trained.id).spec["rekognition"]
    assert set(state["datasets"]) == {"train", "test"}
    client = _client(emulator)
    for kind, arn in state["datasets"].items():
        stats = client.describe_dataset(DatasetArn=arn)["DatasetDescription"]["DatasetStats"]
        assert stats["TotalEntries"] == state["manifests"][kind]["lines"] and stats["ErrorEntries"] == 0
    assert "f1" in trained.metrics, "EvaluationResult.F1Score is kept as a provider-reported metric"
    assert any(key.startswith("label:") and key.endswith(":f1") for key in trained.metrics)
    assert trained.cost_usd is not None and trained.cost_usd > 0
    model = store.model(trained.model_id)
    assert model.native_id and "/version/" in model.native_id
    assert set(model.info["thresholds"]) <= set(model.labels)


def test_no_test_split_uses_auto_create(emulator: Any, store: RunStore, tiny: Any) -> None:
    trainer, _, _ = _roles(emulator, store)
    flat = replace(tiny, images=[replace(i, split=None) for i in tiny.images])
    job = trainer.train(TrainingSpec(dataset=flat), timeout=300)
    assert job.state is JobState.SUCCEEDED, job.failure_reason
    state = store.job(job.id).spec["rekognition"]
    assert state["datasets"] == {}
    assert "test" not in state["manifests"]


def test_start_detect_stop_accrues_cost(emulator: Any, store: RunStore, tiny: Any, trained: Any) -> None:
    _, deployer, predictor = _roles(emulator, store)
    endpoint = deployer.deploy(trained.model_id, ttl_s=3600, timeout=120)
    assert endpoint.state is EndpointState.READY and endpoint.emulated
    assert endpoint.cost_per_hour_usd and endpoint.cost_per_hour_usd > 0
    image = tiny.absolute(tiny.split("test")[0])
    answer = predictor.predict(endpoint.id, image)
    assert answer.labels and answer.labels[0].name in tiny.classes
    assert 0.0 <= answer.labels[0].confidence <= 1.0
    from mcv_rekognition.images import fit_image_bytes

    s3 = boto3.client("s3", region_name=emulator.region)
    s3.put_object(Bucket=BUCKET, Key="probe/one.jpg", Body=fit_image_bytes(image.read_bytes()))
    from_s3 = predictor.predict(endpoint.id, f"s3://{BUCKET}/probe/one.jpg")  # Image.S3Object: no bytes sent
    assert from_s3.image == f"s3://{BUCKET}/probe/one.jpg"
    assert from_s3.labels[0].name == answer.labels[0].name
    strict = predictor.predict(endpoint.id, image, threshold=1.0)
    assert strict.labels == [] or strict.labels[0].confidence >= 1.0, "nothing above the threshold is not an error"
    stopped = deployer.undeploy(endpoint.id)
    assert stopped.state is EndpointState.DELETED
    version = _client(emulator).describe_project_versions(
        ProjectArn=store.model(trained.model_id).info["project_arn"],
        VersionNames=[store.model(trained.model_id).info["version"]],
    )["ProjectVersionDescriptions"][0]
    assert version["Status"] == "STOPPED", "undeploy returns once STOPPED is confirmed"
    record = store.endpoint(endpoint.id)
    assert record.info.get("accrued_usd") is not None and record.info["accrued_usd"] >= 0
    assert deployer.undeploy(endpoint.id).state is EndpointState.DELETED  # idempotent


def test_throttled_create_makes_one_version(emulator: Any, store: RunStore, tiny: Any) -> None:
    trainer, _, _ = _roles(emulator, store)
    emulator.inject(operation="CreateProjectVersion", error="ThrottlingException", times=2)
    emulator.inject(operation="CreateDataset", error="ProvisionedThroughputExceededException", times=1)
    job = trainer.train(TrainingSpec(dataset=tiny), timeout=300)
    assert job.state is JobState.SUCCEEDED, job.failure_reason
    state = store.job(job.id).spec["rekognition"]
    versions = _client(emulator).describe_project_versions(ProjectArn=state["project_arn"])
    assert len(versions["ProjectVersionDescriptions"]) == 1


def test_rejected_manifest_lines_fail_with_the_images_named(emulator: Any, store: RunStore, tmp_path: Path) -> None:
    from multicloud_cv.datasets.model import BoxAnnotation
    from multicloud_cv.testing.datasets import make_detection_dataset

    boxes = make_detection_dataset(tmp_path / "det", per_split={"train": 10, "test": 3})
    # a box of one pixel on most images: the service rejects such lines (ERROR_BOUNDING_BOX_TOO_SMALL)
    tiny_box = (BoxAnnotation(0, 10.0, 10.0, 10.5, 10.5),)
    images = [replace(i, boxes=tiny_box) if n % 4 else i for n, i in enumerate(boxes.images)]
    trainer, _, _ = _roles(emulator, store)
    with pytest.raises(JobFailed) as failure:
        trainer.train(TrainingSpec(dataset=replace(boxes, images=images), task=Task.DETECTION), timeout=300)
    text = str(failure.value)
    assert "rejected lines" in text and "ERROR_" in text and ".png" in text, text


def test_cleanup_removes_version_datasets_and_project(emulator: Any, store: RunStore, tiny: Any) -> None:
    from multicloud_cv.cleanup import cleanup

    trainer, deployer, _ = _roles(emulator, store)
    job = trainer.submit(TrainingSpec(dataset=tiny), run_id="cleanup-run")
    job = trainer.wait(job.id, timeout=300)
    state = store.job(job.id).spec["rekognition"]
    endpoint = deployer.deploy(job.model_id, timeout=120, run_id="cleanup-run")
    result = cleanup(store, lambda _n: deployer, run_id="cleanup-run", trainer_for=lambda _n: trainer)
    assert result.deleted == [endpoint.id] and result.removed_jobs == [job.id], result
    arns = [p["ProjectArn"] for p in _client(emulator).describe_projects()["ProjectDescriptions"]]
    assert state["project_arn"] not in arns, "the project made for the job is gone"


def test_training_validation_output_names_the_bad_lines(emulator: Any, store: RunStore, tmp_path: Path) -> None:
    from multicloud_cv.datasets.model import BoxAnnotation
    from multicloud_cv.testing.datasets import make_detection_dataset

    boxes = make_detection_dataset(tmp_path / "det", per_split={"train": 12})
    tiny_box = (BoxAnnotation(0, 10.0, 10.0, 10.5, 10.5),)
    images = [
        replace(i, boxes=tiny_box, split=None) if n % 4 else replace(i, split=None) for n, i in enumerate(boxes.images)
    ]
    trainer, _, _ = _roles(emulator, store)
    with pytest.raises(JobFailed) as failure:  # no test split: the version trains from the manifest (AutoCreate)
        trainer.train(TrainingSpec(dataset=replace(boxes, images=images), task=Task.DETECTION), timeout=300)
    text = str(failure.value)
    assert "ERROR_BOUNDING_BOX_TOO_SMALL" in text, text  # read back from the validation manifests in S3
    assert ".png" in text, "the first bad lines are shown with the images they name"
