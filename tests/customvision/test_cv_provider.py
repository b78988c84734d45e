"""The Custom Vision provider through the real Custom Vision SDK against the Custom Vision emulator.

The conformance suite (classification, multi-label and detection: train, publish, predict, evaluate, unpublish);
then what only Custom Vision has: Multilabel projects on a non-compact domain, image-by-image reading of a partial
(207) upload with the project deleted after a refusal, throttled (429) calls retried after Retry-After, the tier's
project cap checked before anything is created, a failed iteration's details shown verbatim, the iteration's
reported performance kept beside our own evaluation, exports (refused on a non-compact domain; ONNX served by the
local provider with the same answers as the published iteration) and cleanup leaving no project.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from multicloud_cv.capabilities import Task
from multicloud_cv.datasets import Dataset, load_dataset
from multicloud_cv.errors import BadInput, ConfigError, JobFailed
from multicloud_cv.interfaces import TrainingSpec
from multicloud_cv.registry import registry
from multicloud_cv.runs import RunStore
from multicloud_cv.states import EndpointState, JobState
from multicloud_cv.testing import ProviderConformance
from multicloud_cv.testing.data import make_tiny_dataset

pytestmark = pytest.mark.slow


def settings(emu: Any, **extra: str) -> dict[str, str]:
    """The provider settings that point at ``emu`` (what `mcv emulate customvision` prints), plus ``extra``."""
    values = {k.removeprefix("MCV_CUSTOMVISION_").lower(): v for k, v in emu.provider_settings().items()}
    return {**values, "poll_s": "0.05", **extra}


class TestCustomVisionConformance(ProviderConformance):
    provider_name: ClassVar[str] = "customvision"
    min_accuracy: ClassVar[float] = 0.5
    epochs: ClassVar[int] = 3

    @pytest.fixture(scope="class")
    @classmethod
    def provider_config(cls, customvision_emulator: Any) -> dict[str, str]:  # type: ignore[override]
        return settings(customvision_emulator)

    @pytest.fixture(scope="class")
    @classmethod
    def detection_dataset(cls, conformance_home: Path) -> Dataset:
        """Object detection needs 15 images per tag: a larger tiny set than the suite's."""
        from multicloud_cv.testing.datasets import make_detection_dataset

        return make_detection_dataset(
            conformance_home / "detection-cv", per_split={"train": 40, "validation": 4, "test": 6}, size=(128, 96)
        )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> RunStore:
    return RunStore(tmp_path_factory.mktemp("mcv-home") / "runs.sqlite")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    root = make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "ds", train_per_class=8, test_per_class=3)
    return load_dataset(root)


def _roles(emu: Any, store: RunStore, **extra: str) -> tuple[Any, Any, Any]:
    config = settings(emu, **extra)
    get = registry().get
    return (
        get("customvision", "trainer", config=config, store=store),
        get("customvision", "deployer", config=config, store=store),
        get("customvision", "predictor", config=config, store=store),
    )


@pytest.fixture(scope="module")
def trained(customvision_emulator: Any, store: RunStore, tiny: Dataset) -> Iterator[tuple[Any, Any]]:
    """One classification model on the default (compact, exportable) domain; its project removed afterwards."""
    trainer, _, _ = _roles(customvision_emulator, store)
    job = trainer.train(TrainingSpec(dataset=tiny, task=Task.CLASSIFICATION), timeout=300)
    yield trainer, job
    trainer.remove(job.id, timeout=60)


def test_job_reports_the_iterations_performance(customvision_emulator: Any, trained: tuple[Any, Any]) -> None:
    trainer, job = trained
    assert job.state is JobState.SUCCEEDED and job.native_state == "Completed"
    assert {"precision", "recall", "average_precision"} <= set(job.metrics)
    assert any(key.startswith("precision/") for key in job.metrics)  # per tag
    record = trainer.store.job(job.id)
    state = record.spec["customvision"]
    assert state["uploaded"]["images"] == 24  # train only: the test split is held back for our evaluation
    project = _sdk_training(customvision_emulator).get_project(state["project_id"])
    assert project.settings.classification_type == "Multiclass"


def _sdk_training(emu: Any) -> Any:
    from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
    from msrest.authentication import ApiKeyCredentials

    return CustomVisionTrainingClient(emu.endpoint, ApiKeyCredentials(in_headers={"Training-key": emu.training_key}))


def test_throttled_calls_are_retried_after_retry_after(
    customvision_emulator: Any, store: RunStore, trained: tuple[Any, Any], tiny: Dataset
) -> None:
    _trainer, job = trained
    _, deployer, predictor = _roles(customvision_emulator, store)
    endpoint = deployer.deploy(job.model_id)
    try:
        customvision_emulator.inject(operation="ClassifyImageWithNoStore", status=429, times=2, retry_after=0)
        image = tiny.absolute(tiny.split("test")[0])
        prediction = predictor.predict(endpoint.id, image)
        assert prediction.labels
        statuses = [c["status"] for c in customvision_emulator.calls("ClassifyImageWithNoStore")][-3:]
        assert statuses == [429, 429, 200]
    finally:
        deployer.undeploy(endpoint.id)


def test_upload_throttling_is_absorbed(customvision_emulator: Any, store: RunStore, tmp_path: Path) -> None:
    root = make_tiny_dataset(tmp_path / "ds", classes=2, train_per_class=6, test_per_class=0, seed=3)
    trainer, _, _ = _roles(customvision_emulator, store)
    customvision_emulator.inject(operation="CreateImagesFromFiles", status=429, times=2, retry_after=0)
    job = trainer.train(TrainingSpec(dataset=load_dataset(root)), timeout=300)
    try:
        assert job.state is JobState.SUCCEEDED
        uploads = [c["status"] for c in customvision_emulator.calls("CreateImagesFromFiles")]
        assert uploads[-3:] == [429, 429, 200]
    finally:
        trainer.remove(job.id, timeout=60)


def test_refused_images_are_named_and_the_project_deleted(
    customvision_emulator: Any, store: RunStore, tmp_path: Path
) -> None:
    root = make_tiny_dataset(tmp_path / "ds", classes=2, train_per_class=6, test_per_class=0, seed=4)
    broken = next((root / "train").rglob("*.png"))
    broken.write_bytes(b"not an image at all")
    duplicate = sorted((root / "train").rglob("*.png"))[-1]
    (duplicate.parent / "copy.png").write_bytes(duplicate.read_bytes())  # OKDuplicate: fine
    trainer, _, _ = _roles(customvision_emulator, store)
    before_projects = set(customvision_emulator.project_ids())
    before_jobs = len(store.jobs())
    with pytest.raises(BadInput, match=rf"refused 1 of 13 images \(.*{broken.name}: ErrorImageFormat"):
        trainer.submit(TrainingSpec(dataset=load_dataset(root)))
    assert set(customvision_emulator.project_ids()) == before_projects, "the project created is deleted again"
    assert len(store.jobs()) == before_jobs, "a refused job leaves no record"


def test_too_few_images_per_tag_refused_before_any_call(
    customvision_emulator: Any, store: RunStore, tmp_path: Path
) -> None:
    root = make_tiny_dataset(tmp_path / "ds", classes=2, train_per_class=4, test_per_class=0)
    trainer, _, _ = _roles(customvision_emulator, store)
    calls = len(customvision_emulator.calls())
    with pytest.raises(BadInput, match="5"):
        trainer.submit(TrainingSpec(dataset=load_dataset(root)))
    assert len(customvision_emulator.calls()) == calls


def test_f0_project_cap_checked_before_creating(customvision_emulator: Any, store: RunStore, tiny: Dataset) -> None:
    client = _sdk_training(customvision_emulator)
    made = [client.create_project(f"cap-{n}").id for n in range(2)]
    try:
        trainer, _, _ = _roles(customvision_emulator, store, tier="F0")
        before = set(customvision_emulator.project_ids())
        with pytest.raises(BadInput, match="F0 tier's cap is 2"):
            trainer.submit(TrainingSpec(dataset=tiny))
        assert set(customvision_emulator.project_ids()) == before
    finally:
        for project_id in made:
            client.delete_project(project_id)


def test_wrong_key_is_a_config_error(customvision_emulator: Any, store: RunStore, tiny: Dataset) -> None:
    trainer, _, _ = _roles(customvision_emulator, store, training_key="0" * 32)
    with pytest.raises(ConfigError, match="training_key belongs to the resource"):
        trainer.submit(TrainingSpec(dataset=tiny))


def test_failed_iteration_shows_the_service_details(
    customvision_emulator: Any, store: RunStore, tmp_path: Path
) -> None:
    root = make_tiny_dataset(tmp_path / "ds", classes=2, train_per_class=5, test_per_class=0, seed=5)
    trainer, _, _ = _roles(customvision_emulator, store)
    customvision_emulator.fail_next_iteration(reason="Training failed: injected by the test")
    job = trainer.submit(TrainingSpec(dataset=load_dataset(root)))
    with pytest.raises(JobFailed, match="injected by the test"):
        trainer.wait(job.id, timeout=120)
    assert trainer.status(job.id).native_state == "Failed"
    trainer.remove(job.id, timeout=60)


def test_multilabel_project_on_a_non_compact_domain(
    customvision_emulator: Any, store: RunStore, tmp_path: Path
) -> None:
    from PIL import Image

    from multicloud_cv.datasets.model import Dataset as DatasetModel
    from multicloud_cv.datasets.model import ImageRecord

    root = tmp_path / "ml"
    root.mkdir()
    records = []
    for n in range(12):  # red, blue, or both halves: each tag on 8 images
        image = Image.new("RGB", (32, 32), (0, 0, 0))
        labels = (0,) if n % 3 == 0 else (1,) if n % 3 == 1 else (0, 1)
        for label in labels:
            colour = (255, 0, 0) if label == 0 else (0, 0, 255)
            box = (0, 0, 16, 32) if label == 0 else (16, 0, 32, 32)
            image.paste(colour, box)
        image.putpixel((n, 31), (n * 10, n * 10, n * 10))  # distinct bytes: duplicates are merged by the service
        image.save(root / f"{n:02d}.png")
        records.append(ImageRecord(f"{n:02d}.png", labels=labels, split="train", width=32, height=32))
    dataset = DatasetModel(root=root, classes=["red", "blue"], images=records, task="multilabel")
    trainer, deployer, predictor = _roles(customvision_emulator, store, domain="General")
    job = trainer.train(TrainingSpec(dataset=dataset, task=Task.MULTILABEL), timeout=300)
    try:
        state = trainer.store.job(job.id).spec["customvision"]
        project = _sdk_training(customvision_emulator).get_project(state["project_id"])
        assert project.settings.classification_type == "Multilabel" and state["domain"] == "General"
        endpoint = deployer.deploy(job.model_id)
        prediction = predictor.predict(endpoint.id, root / "02.png")
        assert {label.name for label in prediction.labels} == {"red", "blue"}
        deployer.undeploy(endpoint.id)
        with pytest.raises(BadInput, match="only compact domains export"):
            trainer.export(job.model_id, "onnx", tmp_path / "export")
        assert not (tmp_path / "export").exists()
    finally:
        trainer.remove(job.id, timeout=60)


def test_export_onnx_served_locally_answers_like_the_published_iteration(
    customvision_emulator: Any, store: RunStore, trained: tuple[Any, Any], tiny: Dataset, tmp_path: Path
) -> None:
    trainer, job = trained
    _, deployer, predictor = _roles(customvision_emulator, store)
    exported = trainer.export(job.model_id, "onnx", tmp_path / "onnx")
    assert {"model.onnx", "labels.txt"} <= {Path(f).name for f in exported.files}
    assert exported.local_model_id is not None
    local = registry().get("local", "deployer", store=store)
    local_predictor = registry().get("local", "predictor", store=store)
    cloud_endpoint = deployer.deploy(job.model_id)
    local_endpoint = local.deploy(exported.local_model_id)
    try:
        images = [tiny.absolute(image) for image in tiny.split("test")]
        cloud = [predictor.predict(cloud_endpoint.id, image) for image in images]
        served = [local_predictor.predict(local_endpoint.id, image) for image in images]
        assert [p.labels[0].name for p in cloud] == [p.labels[0].name for p in served]
        for a, b in zip(cloud, served, strict=True):
            assert a.labels[0].confidence == pytest.approx(b.labels[0].confidence, abs=1e-3)
    finally:
        local.undeploy(local_endpoint.id)
        deployer.undeploy(cloud_endpoint.id)


def test_export_tflite_downloads_the_archive(trained: tuple[Any, Any], tmp_path: Path) -> None:
    trainer, job = trained
    exported = trainer.export(job.model_id, "tflite", tmp_path / "tflite")
    names = {Path(f).name for f in exported.files}
    assert "labels.txt" in names and any(name.endswith(".tflite") for name in names)
    assert exported.local_model_id is None


def test_plan_sends_nothing_and_shows_every_request(
    customvision_emulator: Any, store: RunStore, tiny: Dataset, caplog: pytest.LogCaptureFixture
) -> None:
    trainer, _, _ = _roles(customvision_emulator, store)
    calls = len(customvision_emulator.calls())
    with caplog.at_level("WARNING", logger="mcv_customvision.provider"):
        plan = trainer.plan(TrainingSpec(dataset=tiny))
    assert "have a side under 256 px" in caplog.text  # 32 px images: accepted, upscaled by the service
    operations = [r.operation for r in plan.requests]
    assert operations[:2] == ["GetDomains", "CreateProject"] and operations[-1] == "TrainProject"
    assert operations.count("CreateTag") == 3
    batches = [r.params for r in plan.requests if r.operation == "CreateImagesFromFiles"]
    assert sum(len(b["images"]) for b in batches) == 24 and all(len(b["images"]) <= 64 for b in batches)
    assert len(customvision_emulator.calls()) == calls


def test_cleanup_leaves_no_project(customvision_emulator: Any, store: RunStore, tmp_path: Path) -> None:
    root = make_tiny_dataset(tmp_path / "ds", classes=2, train_per_class=5, test_per_class=0, seed=6)
    trainer, deployer, _ = _roles(customvision_emulator, store)
    job = trainer.train(TrainingSpec(dataset=load_dataset(root)), timeout=300)
    project_id = trainer.store.job(job.id).spec["customvision"]["project_id"]
    endpoint = deployer.deploy(job.model_id)
    assert endpoint.state is EndpointState.READY
    assert project_id in customvision_emulator.project_ids()
    assert trainer.remove(job.id, timeout=60)  # unpublishes, then deletes the project
    assert project_id not in customvision_emulator.project_ids()
    assert deployer.status(endpoint.id).state is EndpointState.DELETED
    assert trainer.remove(job.id, timeout=60)  # idempotent
