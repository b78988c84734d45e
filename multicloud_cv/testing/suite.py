"""The provider conformance suite (pytest).

Every test here holds for every provider. The suite trains ONE small model per test class
(class-scoped fixtures) and reuses it, so a provider's suite costs one training run plus a
cancelled one.

Contract for subclasses: set ``provider_name``; optionally ``min_accuracy``, ``epochs``,
``cancel_epochs`` and override the fixtures ``provider_config`` (settings mapping, e.g.
emulator endpoints), ``train_hyperparameters`` and ``detection_hyperparameters``.

Multi-label path: a provider that declares ``task:multilabel`` also trains one multi-label model on a
tiny set of images holding one to three shapes, deploys it, and must answer labels in the shared
schema (names matching indices, confidences 0..1 sorted) and be scored by the common evaluation
code; a provider that declares it unsupported must refuse such a job before recording anything.

Detection path: a provider that declares ``task:detection`` also trains one detector on a
tiny detection set (exact boxes, a negative image), deploys it, and must answer boxes in the
shared schema (class names matching indices, boxes normalised, ``top_k`` capping the count)
and be scored with mAP by the common evaluation code. A provider that declares it
unsupported must refuse a detection job before recording or sending anything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from multicloud_cv.capabilities import ALL_FEATURES, Task
from multicloud_cv.datasets import Dataset, load_dataset
from multicloud_cv.errors import InvalidImage, NotFound, UnsupportedFeature
from multicloud_cv.evaluation import evaluate_endpoint
from multicloud_cv.interfaces import Deployer, Predictor, Trainer, TrainingSpec
from multicloud_cv.registry import Role, registry, reset
from multicloud_cv.runs import RunStore
from multicloud_cv.schema import SCHEMAS, json_schemas
from multicloud_cv.states import EndpointState, JobState
from multicloud_cv.testing.data import make_tiny_dataset


def validate_document(name: str, document: Any) -> None:
    """Validate a result (pydantic model or plain data) against the exported JSON Schema ``name``."""
    import jsonschema

    data = json.loads(document.model_dump_json()) if hasattr(document, "model_dump_json") else document
    jsonschema.validate(data, json_schemas()[name])


class ProviderConformance:
    """Subclass me in a provider's tests. See the module docstring for the contract."""

    provider_name: ClassVar[str]
    min_accuracy: ClassVar[float] = 0.6
    epochs: ClassVar[int] = 3
    cancel_epochs: ClassVar[int] = 50

    # -- fixtures a provider may override --------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def provider_config(cls) -> dict[str, str] | None:
        """Settings for the provider; ``None`` resolves them the usual way (file, environment)."""
        return None

    @pytest.fixture(scope="class")
    @classmethod
    def train_hyperparameters(cls) -> dict[str, Any]:
        """Provider hyperparameters for the conformance training run."""
        return {}

    @pytest.fixture(scope="class")
    @classmethod
    def detection_hyperparameters(cls) -> dict[str, Any]:
        """Provider hyperparameters for the conformance detection run (keep it to a few steps)."""
        return {}

    # -- shared fixtures ---------------------------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_home(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
        home = tmp_path_factory.mktemp(f"mcv-home-{cls.provider_name}")
        previous = os.environ.get("MCV_HOME")
        os.environ["MCV_HOME"] = str(home)
        reset()
        yield home
        if previous is None:
            os.environ.pop("MCV_HOME", None)
        else:
            os.environ["MCV_HOME"] = previous

    @pytest.fixture(autouse=True)
    def _conformance_env(self, conformance_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Every test body sees the class's MCV_HOME, whatever the surrounding suite sets per test."""
        monkeypatch.setenv("MCV_HOME", str(conformance_home))

    @pytest.fixture(scope="class")
    @classmethod
    def store(cls, conformance_home: Path) -> RunStore:
        return RunStore(conformance_home / "runs.sqlite")

    @pytest.fixture(scope="class")
    @classmethod
    def dataset(cls, conformance_home: Path) -> Dataset:
        return load_dataset(
            make_tiny_dataset(conformance_home / "tiny", classes=3, train_per_class=16, test_per_class=6)
        )

    @classmethod
    def _get(cls, role: Role, store: RunStore, config: dict[str, str] | None) -> Any:
        return registry().get(cls.provider_name, role, config=config, store=store)

    @pytest.fixture(scope="class")
    @classmethod
    def trainer(cls, store: RunStore, provider_config: dict[str, str] | None) -> Trainer:
        return cls._get("trainer", store, provider_config)

    @pytest.fixture(scope="class")
    @classmethod
    def deployer(cls, store: RunStore, provider_config: dict[str, str] | None) -> Deployer:
        return cls._get("deployer", store, provider_config)

    @pytest.fixture(scope="class")
    @classmethod
    def predictor(cls, store: RunStore, provider_config: dict[str, str] | None) -> Predictor:
        return cls._get("predictor", store, provider_config)

    @pytest.fixture(scope="class")
    @classmethod
    def trained(cls, trainer: Trainer, dataset: Dataset, train_hyperparameters: dict[str, Any]) -> Any:
        spec = TrainingSpec(
            dataset=dataset, task=Task.CLASSIFICATION, epochs=cls.epochs, hyperparameters=dict(train_hyperparameters)
        )
        return trainer.train(spec, timeout=600)

    @pytest.fixture(scope="class")
    @classmethod
    def endpoint(cls, deployer: Deployer, trained: Any) -> Iterator[Any]:
        endpoint = deployer.deploy(trained.model_id, timeout=300)
        yield endpoint
        deployer.undeploy(endpoint.id)

    @pytest.fixture(scope="class")
    @classmethod
    def detection_dataset(cls, conformance_home: Path) -> Dataset:
        from multicloud_cv.testing.datasets import make_detection_dataset

        return make_detection_dataset(
            conformance_home / "detection", per_split={"train": 12, "validation": 3, "test": 4}, size=(128, 96)
        )

    @pytest.fixture(scope="class")
    @classmethod
    def detection_endpoint(
        cls,
        trainer: Trainer,
        deployer: Deployer,
        detection_dataset: Dataset,
        detection_hyperparameters: dict[str, Any],
    ) -> Iterator[Any]:
        """A deployed detector, or ``None`` when the provider declares detection unsupported."""
        spec = TrainingSpec(
            dataset=detection_dataset, task=Task.DETECTION, hyperparameters=dict(detection_hyperparameters)
        )
        yield from _served(trainer, deployer, spec)

    @pytest.fixture(scope="class")
    @classmethod
    def multilabel_dataset(cls, conformance_home: Path) -> Dataset:
        from multicloud_cv.testing.datasets import make_multilabel_dataset

        return make_multilabel_dataset(
            conformance_home / "multilabel", per_split={"train": 30, "validation": 4, "test": 6}, size=(64, 48)
        )

    @pytest.fixture(scope="class")
    @classmethod
    def multilabel_endpoint(
        cls,
        trainer: Trainer,
        deployer: Deployer,
        multilabel_dataset: Dataset,
        train_hyperparameters: dict[str, Any],
    ) -> Iterator[Any]:
        """A deployed multi-label model, or ``None`` when the provider declares multi-label unsupported."""
        spec = TrainingSpec(
            dataset=multilabel_dataset,
            task=Task.MULTILABEL,
            epochs=cls.epochs,
            hyperparameters=dict(train_hyperparameters),
        )
        yield from _served(trainer, deployer, spec)

    # -- the checks --------------------------------------------------------------------------------

    def test_multilabel_answers_labels_or_is_refused(
        self,
        trainer: Trainer,
        predictor: Predictor,
        multilabel_endpoint: Any,
        multilabel_dataset: Dataset,
        store: RunStore,
    ) -> None:
        if multilabel_endpoint is None:  # declared unsupported: refused before anything is recorded
            before = len(store.jobs())
            with pytest.raises(UnsupportedFeature, match="task:multilabel"):
                trainer.submit(TrainingSpec(dataset=multilabel_dataset, task=Task.MULTILABEL))
            assert len(store.jobs()) == before
            return
        image = multilabel_dataset.absolute(multilabel_dataset.split("test")[0])
        prediction = predictor.predict(multilabel_endpoint.id, image, threshold=0.0)
        validate_document("prediction", prediction)
        assert prediction.task == "multilabel" and prediction.labels and not prediction.detections
        for found in prediction.labels:
            assert multilabel_dataset.classes[found.index] == found.name and 0.0 <= found.confidence <= 1.0
        confidences = [found.confidence for found in prediction.labels]
        assert confidences == sorted(confidences, reverse=True)
        evaluation = evaluate_endpoint(predictor, multilabel_endpoint.id, multilabel_dataset, split="test")
        validate_document("evaluation", evaluation)
        assert evaluation.task == "multilabel" and evaluation.num_images == len(multilabel_dataset.split("test"))
        assert evaluation.macro_f1 is not None

    def test_detection_answers_boxes_or_is_refused(
        self,
        trainer: Trainer,
        predictor: Predictor,
        detection_endpoint: Any,
        detection_dataset: Dataset,
        store: RunStore,
    ) -> None:
        if detection_endpoint is None:  # declared unsupported: refused before anything is recorded
            before = len(store.jobs())
            with pytest.raises(UnsupportedFeature, match="task:detection"):
                trainer.submit(TrainingSpec(dataset=detection_dataset, task=Task.DETECTION))
            assert len(store.jobs()) == before
            return
        image = detection_dataset.absolute(detection_dataset.split("test")[0])
        prediction = predictor.predict(detection_endpoint.id, image, threshold=0.0)
        validate_document("prediction", prediction)
        assert prediction.task == "detection" and prediction.detections
        for found in prediction.detections:
            assert detection_dataset.classes[found.index] == found.name
            assert 0.0 <= found.box.x_min <= found.box.x_max <= 1.0
            assert 0.0 <= found.box.y_min <= found.box.y_max <= 1.0
        confidences = [found.confidence for found in prediction.detections]
        assert confidences == sorted(confidences, reverse=True)
        capped = predictor.predict(detection_endpoint.id, image, threshold=0.0, top_k=2)
        assert len(capped.detections) <= 2

    def test_detection_is_scored_with_map(
        self, predictor: Predictor, detection_endpoint: Any, detection_dataset: Dataset
    ) -> None:
        if detection_endpoint is None:
            return  # refusal is checked above; there is no detector to score
        evaluation = evaluate_endpoint(predictor, detection_endpoint.id, detection_dataset, split="test")
        validate_document("evaluation", evaluation)
        assert evaluation.task == "detection" and evaluation.map50 is not None and evaluation.map is not None
        assert evaluation.num_boxes == sum(len(image.boxes) for image in detection_dataset.split("test"))

    def test_capabilities_are_complete(self, trainer: Trainer) -> None:
        caps = trainer.capabilities
        assert set(caps.supported) | set(caps.unsupported) == set(ALL_FEATURES)
        assert all(reason.strip() for reason in caps.unsupported.values())
        assert caps.tasks, "a provider supports at least one task"

    def test_provider_is_ready(self, trainer: Trainer) -> None:
        assert trainer.problems() == []

    def test_train_job_valid_and_succeeded(self, trained: Any, store: RunStore) -> None:
        validate_document("job", trained)
        assert trained.state is JobState.SUCCEEDED
        assert trained.model_id is not None
        assert store.model(trained.model_id).labels == ["circle", "square", "triangle"]

    def test_status_from_record(self, trainer: Trainer, trained: Any) -> None:
        again = trainer.status(trained.id)
        assert again.state is JobState.SUCCEEDED and again.model_id == trained.model_id

    def test_deploy_ready_and_valid(self, endpoint: Any) -> None:
        validate_document("endpoint", endpoint)
        assert endpoint.state is EndpointState.READY

    def test_predict_valid_schema(self, predictor: Predictor, endpoint: Any, dataset: Dataset) -> None:
        image = dataset.absolute(dataset.split("test")[0])
        prediction = predictor.predict(endpoint.id, image)
        validate_document("prediction", prediction)
        assert prediction.provider == self.provider_name
        assert prediction.labels, "a classifier answers at least one label"
        confidences = [label.confidence for label in prediction.labels]
        assert confidences == sorted(confidences, reverse=True)
        assert all(0.0 <= c <= 1.0 for c in confidences)
        assert {label.name for label in prediction.labels} <= set(dataset.classes)
        for label in prediction.labels:
            assert dataset.classes[label.index] == label.name

    def test_predict_batch_keeps_order(self, predictor: Predictor, endpoint: Any, dataset: Dataset) -> None:
        paths = [dataset.absolute(img) for img in dataset.split("test")[:4]]
        results = predictor.predict_batch(endpoint.id, paths)
        assert [r.image for r in results] == [str(p) for p in paths]

    def test_evaluate_beats_chance(self, predictor: Predictor, endpoint: Any, dataset: Dataset) -> None:
        evaluation = evaluate_endpoint(predictor, endpoint.id, dataset, split="test")
        validate_document("evaluation", evaluation)
        assert evaluation.num_images == len(dataset.split("test"))
        assert evaluation.accuracy is not None and evaluation.accuracy >= self.min_accuracy
        assert evaluation.confusion is not None and sum(map(sum, evaluation.confusion)) == evaluation.num_images

    def test_predict_rejects_non_image(self, predictor: Predictor, endpoint: Any, tmp_path: Path) -> None:
        bogus = tmp_path / "notes.jpg"
        bogus.write_text("this is not an image")
        with pytest.raises(InvalidImage, match=r"notes\.jpg"):
            predictor.predict(endpoint.id, bogus)

    def test_undeploy_is_idempotent(self, deployer: Deployer, trained: Any) -> None:
        endpoint = deployer.deploy(trained.model_id, timeout=300)
        first = deployer.undeploy(endpoint.id)
        second = deployer.undeploy(endpoint.id)
        assert first.state is EndpointState.DELETED and second.state is EndpointState.DELETED
        validate_document("endpoint", second)

    def test_unsupported_request_refused_before_work(self, trainer: Trainer, dataset: Dataset, store: RunStore) -> None:
        gaps = [f for f in trainer.capabilities.unsupported if f.startswith(("task:", "compute:"))]
        if not gaps:
            pytest.skip("this provider supports every task and compute kind")
        feature = gaps[0]
        kind, _, value = feature.partition(":")
        spec = TrainingSpec(
            dataset=dataset,
            task=Task(value) if kind == "task" else Task.CLASSIFICATION,
            compute=value if kind == "compute" else None,
            epochs=1,
        )
        before = len(store.jobs())
        with pytest.raises(UnsupportedFeature, match=feature):
            trainer.submit(spec)
        assert len(store.jobs()) == before, "nothing is recorded or sent for a refused request"

    def test_cancel(self, trainer: Trainer, dataset: Dataset, train_hyperparameters: dict[str, Any]) -> None:
        if not trainer.capabilities.supports("cancel"):
            pytest.skip(trainer.capabilities.unsupported["cancel"])
        job = trainer.submit(
            TrainingSpec(dataset=dataset, epochs=self.cancel_epochs, hyperparameters=dict(train_hyperparameters))
        )
        cancelled = trainer.cancel(job.id)
        final = trainer.wait(job.id, timeout=120) if not cancelled.state.is_terminal() else cancelled
        assert final.state is JobState.CANCELLED
        assert trainer.cancel(job.id).state is JobState.CANCELLED  # cancelling again changes nothing

    def test_unknown_ids_raise_not_found(
        self, trainer: Trainer, deployer: Deployer, predictor: Predictor, tmp_path: Path
    ) -> None:
        with pytest.raises(NotFound):
            trainer.status("job-00000000-ffffff")
        with pytest.raises(NotFound):
            deployer.undeploy("ep-00000000-ffffff")
        with pytest.raises(NotFound):
            deployer.deploy("model-00000000-ffffff")
        with pytest.raises(NotFound):
            predictor.predict("ep-00000000-ffffff", b"\x89PNG")

    def test_schemas_cover_documents(self) -> None:
        assert {"prediction", "evaluation", "job", "endpoint"} <= set(SCHEMAS)


def _served(trainer: Trainer, deployer: Deployer, spec: TrainingSpec) -> Iterator[Any]:
    """Yield an endpoint serving a model trained on ``spec`` (undeployed afterwards), or ``None`` when the provider
    declares the spec's task unsupported."""
    if not trainer.capabilities.supports(spec.task.feature):
        yield None
        return
    job = trainer.train(spec, timeout=600)
    assert job.state is JobState.SUCCEEDED and job.model_id is not None, job.failure_reason
    endpoint = deployer.deploy(job.model_id, timeout=300)
    yield endpoint
    deployer.undeploy(endpoint.id)
