"""The Vertex AI provider through google-cloud-aiplatform (REST transport) against the Vertex emulator.

The conformance suite on both routes (custom: our trainer as a package in a CustomJob, served by our serving code;
automl: Dataset, ImportData, AutoML TrainingPipeline), each for classification, multi-label and detection; then
what only Vertex has: a capacity stock-out resubmitted through the fallback list, the bucket's location checked
against the job's, throttled and unavailable calls retried, the ONNX export of a custom model served locally,
batch prediction, and cleanup leaving no job, model, endpoint or dataset.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from multicloud_cv.capabilities import Task
from multicloud_cv.datasets import Dataset, load_dataset
from multicloud_cv.errors import BadInput, JobFailed
from multicloud_cv.interfaces import TrainingSpec
from multicloud_cv.registry import registry
from multicloud_cv.runs import RunStore
from multicloud_cv.states import JobState
from multicloud_cv.testing import ProviderConformance
from multicloud_cv.testing.data import make_tiny_dataset

pytestmark = pytest.mark.slow

CAPACITY = "Resources are insufficient in region: us-central1. Please try a different region."


def settings(emu: Any, **extra: str) -> dict[str, str]:
    """The provider settings that point at ``emu`` (what `mcv emulate vertex` prints), plus ``extra``."""
    values = {k.removeprefix("MCV_VERTEX_").lower(): v for k, v in emu.provider_settings().items()}
    return {**values, "poll_s": "0.05", **extra}


@pytest.fixture(scope="module")
def emulator_env(vertex_emulator: Any) -> Iterator[Any]:
    """The emulator with STORAGE_EMULATOR_HOST set for the whole module (the provider stages through it)."""
    from multicloud_cv.testing.emulators import patched_environ

    with patched_environ(dict(vertex_emulator.environment())):
        yield vertex_emulator


class TestVertexCustomConformance(ProviderConformance):
    provider_name: ClassVar[str] = "vertex"
    min_accuracy: ClassVar[float] = 0.5
    epochs: ClassVar[int] = 2

    @pytest.fixture(scope="class")
    @classmethod
    def provider_config(cls, emulator_env: Any) -> dict[str, str]:  # type: ignore[override]
        return settings(emulator_env)


class TestVertexAutoMLConformance(ProviderConformance):
    provider_name: ClassVar[str] = "vertex"
    min_accuracy: ClassVar[float] = 0.5

    @pytest.fixture(scope="class")
    @classmethod
    def provider_config(cls, emulator_env: Any) -> dict[str, str]:  # type: ignore[override]
        return settings(emulator_env, route="automl")

    @pytest.fixture(scope="class")
    @classmethod
    def detection_dataset(cls, conformance_home: Path) -> Dataset:
        """AutoML needs 10 images per label: a larger tiny set than the suite's."""
        from multicloud_cv.testing.datasets import make_detection_dataset

        return make_detection_dataset(
            conformance_home / "detection-automl", per_split={"train": 30, "validation": 4, "test": 6}, size=(128, 96)
        )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> RunStore:
    return RunStore(tmp_path_factory.mktemp("mcv-home") / "runs.sqlite")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return load_dataset(make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "ds", train_per_class=8, test_per_class=3))


def _roles(emu: Any, store: RunStore, **extra: str) -> tuple[Any, Any, Any]:
    config = settings(emu, **extra)
    get = registry().get
    return (
        get("vertex", "trainer", config=config, store=store),
        get("vertex", "deployer", config=config, store=store),
        get("vertex", "predictor", config=config, store=store),
    )


@pytest.fixture(scope="module")
def trained(emulator_env: Any, store: RunStore, tiny: Dataset) -> Any:
    trainer, _, _ = _roles(emulator_env, store)
    return trainer.train(TrainingSpec(dataset=tiny, task=Task.CLASSIFICATION, epochs=2), timeout=300)


def test_custom_job_runs_our_package_and_reports_its_metrics(emulator_env: Any, trained: Any, store: RunStore) -> None:
    assert trained.state is JobState.SUCCEEDED and trained.native_state == "JOB_STATE_SUCCEEDED"
    state = store.job(trained.id).spec["vertex"]
    assert state["package_uri"].startswith("gs://") and state["package_uri"].endswith(".tar.gz")
    model = store.model(trained.model_id)
    assert model.artifact and model.artifact.endswith("/model") and model.info["route"] == "custom"
    assert trained.metrics, "the task's metrics.json is the provider-reported metrics"


def test_capacity_stock_out_falls_back(emulator_env: Any, store: RunStore, tiny: Dataset) -> None:
    trainer, _, _ = _roles(emulator_env, store, scale_tier="BASIC_GPU", fallback="NVIDIA_L4@us-central1")
    emulator_env.fail_next_job(message=CAPACITY, code=8)
    job = trainer.train(TrainingSpec(dataset=tiny, epochs=1, compute="gpu"), timeout=300)
    assert job.state is JobState.SUCCEEDED
    attempts = store.job(job.id).spec["vertex"]["attempts"]
    assert len(attempts) == 2 and attempts[1]["fallback"] == "NVIDIA_L4@us-central1"


def test_a_job_failure_is_shown_verbatim(emulator_env: Any, store: RunStore, tiny: Dataset) -> None:
    trainer, _, _ = _roles(emulator_env, store, capacity_retries="0")
    emulator_env.fail_next_job(message="The replica workerpool0-0 exited with a non-zero status of 1.", code=3)
    job = trainer.submit(TrainingSpec(dataset=tiny, epochs=1))
    with pytest.raises(JobFailed, match="non-zero status of 1"):
        trainer.wait(job.id, timeout=120)


def test_bucket_in_another_location_is_refused_before_the_job(
    emulator_env: Any, store: RunStore, tiny: Dataset
) -> None:
    emulator_env.create_bucket("mcv-vertex-us-multiregion", location="US")
    trainer, _, _ = _roles(emulator_env, store, bucket="mcv-vertex-us-multiregion")
    before = len(emulator_env.calls("CreateCustomJob"))
    with pytest.raises(BadInput, match="must be in the same regional location as the service location us-central1"):
        trainer.submit(TrainingSpec(dataset=tiny, epochs=1))
    assert len(emulator_env.calls("CreateCustomJob")) == before


def test_accelerator_quota_checked_before_the_job(emulator_env: Any, store: RunStore, tiny: Dataset) -> None:
    from mcv_vertex.machines import quota_metric

    metric = quota_metric("NVIDIA_TESLA_T4")
    assert metric == "aiplatform.googleapis.com/custom_model_training_nvidia_t4_gpus"
    trainer, _, _ = _roles(emulator_env, store, scale_tier="BASIC_GPU")
    emulator_env.set_quota(metric, "us-central1", 0)
    before = len(emulator_env.calls("CreateCustomJob"))
    try:
        with pytest.raises(
            BadInput, match=r"exceed quota limits: .*t4_gpus \(limit 0 in us-central1, the job needs 1\)"
        ):
            trainer.submit(TrainingSpec(dataset=tiny, epochs=1))
    finally:
        emulator_env.set_quota(metric, "us-central1", 8)
    assert len(emulator_env.calls("CreateCustomJob")) == before
    assert emulator_env.calls("ListQuotaInfos")


def test_throttled_and_unavailable_calls_are_retried(
    emulator_env: Any, store: RunStore, trained: Any, tiny: Dataset
) -> None:
    _, deployer, predictor = _roles(emulator_env, store)
    endpoint = deployer.deploy(trained.model_id)
    try:
        emulator_env.inject(operation="Predict", status=429, times=1)
        emulator_env.inject(operation="Predict", status=503, times=1)
        assert predictor.predict(endpoint.id, tiny.absolute(tiny.split("test")[0])).labels
        assert [c["status"] for c in emulator_env.calls("Predict")][-3:] == [429, 503, 200]
    finally:
        deployer.undeploy(endpoint.id)


def test_export_onnx_and_serve_locally(
    emulator_env: Any, store: RunStore, trained: Any, tiny: Dataset, tmp_path: Path
) -> None:
    trainer, deployer, predictor = _roles(emulator_env, store)
    exported = trainer.export(trained.model_id, "onnx", tmp_path / "onnx")
    assert "model.onnx" in {Path(f).name for f in exported.files} and exported.local_model_id
    cloud = deployer.deploy(trained.model_id)
    local = registry().get("local", "deployer", store=store)
    served = local.deploy(exported.local_model_id)
    try:
        image = tiny.absolute(tiny.split("test")[0])
        a = predictor.predict(cloud.id, image)
        b = registry().get("local", "predictor", store=store).predict(served.id, image)
        assert a.labels[0].name == b.labels[0].name
        assert a.labels[0].confidence == pytest.approx(b.labels[0].confidence, abs=1e-3)
    finally:
        local.undeploy(served.id)
        deployer.undeploy(cloud.id)


def test_batch_prediction_answers_in_order(emulator_env: Any, store: RunStore, trained: Any, tiny: Dataset) -> None:
    _, deployer, predictor = _roles(emulator_env, store)
    images = [tiny.absolute(image) for image in tiny.split("test")]
    batch = predictor.transform(trained.model_id, images, timeout=120)
    endpoint = deployer.deploy(trained.model_id)
    try:
        online = [predictor.predict(endpoint.id, image) for image in images]
    finally:
        deployer.undeploy(endpoint.id)
    assert [p.labels[0].name for p in batch] == [p.labels[0].name for p in online]


def test_cleanup_leaves_nothing(emulator_env: Any, store: RunStore, tmp_path: Path) -> None:
    dataset = load_dataset(make_tiny_dataset(tmp_path / "ds", train_per_class=10, test_per_class=2, seed=9))
    trainer, deployer, _ = _roles(emulator_env, store, route="automl")
    job = trainer.train(TrainingSpec(dataset=dataset), timeout=300)
    endpoint = deployer.deploy(job.model_id)
    state = store.job(job.id).spec["vertex"]
    assert state["dataset_name"] in emulator_env.resources("datasets")
    deployer.undeploy(endpoint.id)
    assert deployer.undeploy(endpoint.id).state.value == "DELETED"  # idempotent
    assert trainer.remove(job.id, timeout=60)
    assert state["dataset_name"] not in emulator_env.resources("datasets")
    assert state["pipeline_name"] not in emulator_env.resources("trainingPipelines")
    model = store.model(job.model_id).info["model_name"]
    assert model not in emulator_env.resources("models")
    assert endpoint.id not in str(emulator_env.resources("endpoints"))
