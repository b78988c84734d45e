"""The centroid provider: Trainer, Deployer and Predictor of a worked example plugin.

A provider translates between the core's common vocabulary and one service's native
requests and answers. The "service" here is pretend but behaves like a small cloud: it
keeps a JSON document per job and per endpoint under ``$MCV_HOME/centroid/`` (its
console, so to speak), reports jobs in its own status words (``InProgress``,
``Completed``, ``Failed``), and answers NotFound for names it does not know. The model is
real: nearest class centroid on RGB thumbnails (:mod:`mcv_centroid.classifier`).

- Training runs in-process inside ``_submit``; the job is ``Completed`` (or ``Failed``)
  when submit returns, so there is never a running job to wait for, cancel or resume.
- Endpoints are virtual: a document naming the model file, no server, ready at once, free.
- Predictions are computed in-process from the model file and returned in the shared schema.

This module is what the entry points load, so nothing heavy is imported at module load:
Pillow, this provider's "SDK", is imported inside :func:`mcv_centroid.classifier.features`
the first time an image is read, and the shared schema (pydantic) inside ``_predict``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multicloud_cv.capabilities import Capabilities, Limits
from multicloud_cv.config import Setting
from multicloud_cv.errors import BadInput, ConfigError, EndpointUnavailable, InvalidImage, NotFound
from multicloud_cv.interfaces import (
    Deployer,
    NativeEndpoint,
    NativeJob,
    NativeModel,
    PlannedRequest,
    Predictor,
    PredictParams,
    ProviderPlugin,
    Trainer,
    TrainingSpec,
)
from multicloud_cv.runs import EndpointRecord, JobRecord, ModelRecord, mcv_home
from multicloud_cv.states import EndpointState, JobState, map_state
from multicloud_cv.waiting import Backoff

from mcv_centroid.classifier import CentroidModel, features, fit

if TYPE_CHECKING:
    from multicloud_cv.datasets import Dataset, ImageRecord
    from multicloud_cv.schema import Prediction

# -- metadata: read by `mcv providers` without running any hook ----------------------------------

CAPABILITIES = Capabilities.declare(
    supported=["task:classification", "compute:cpu", "batch_prediction"],
    unsupported={
        "task:multilabel": "a nearest-centroid classifier picks exactly one class; use --provider local",
        "task:detection": "a centroid classifier has no notion of object boxes",
        "compute:gpu": "training is a few additions done on the CPU inside `mcv train`; a GPU would not help",
        "compute:tpu": "training is a few additions done on the CPU inside `mcv train`; a TPU would not help",
        "export:onnx": "the model is a JSON file of centroids; there is no network graph to export",
        "export:tflite": "the model is a JSON file of centroids; there is no network graph to export",
        "export:coreml": "the model is a JSON file of centroids; there is no network graph to export",
        "export:savedmodel": "the model is a JSON file of centroids; there is no network graph to export",
        "export:tensorflow": "the model is a JSON file of centroids; there is no network graph to export",
        "export:docker": "the model is a JSON file of centroids; there is no network graph to export",
        "incremental_training": "training from scratch takes seconds; train again on the larger dataset",
        "endpoint_ttl": "endpoints are virtual (no server, no cost), so there is nothing to expire",
        "cancel": "training finishes inside submit, so there is never a running job to cancel",
        "resume": "training finishes inside submit, so there is never an interrupted job to resume",
    },
    limits=Limits(min_images_per_label=1, min_labels=2, max_image_bytes=20 * 1024 * 1024),
)

SETTINGS = (
    Setting("thumbnail_size", "side in pixels of the RGB thumbnail each image is reduced to (1 to 64)", default="8"),
)


class CentroidProvider(ProviderPlugin):
    """What the three roles share: class attributes only, so reading them imports nothing heavy."""

    name = "centroid"
    api_version = "1.0"  # the plugin API this code was written against; pin it, don't inherit the core's
    description = "Worked example: nearest class centroid on RGB thumbnails, trained and served in-process"
    settings = SETTINGS
    capabilities = CAPABILITIES
    requires = ("PIL",)
    install_hint = "pip install pillow"
    backoff = Backoff(initial=0.1, factor=2.0, maximum=1.0)


def thumbnail_size(config: Mapping[str, str]) -> int:
    """The ``thumbnail_size`` setting as a number; :class:`ConfigError` when it is not 1 to 64."""
    raw = config.get("thumbnail_size") or "8"
    size = int(raw) if raw.strip().isdigit() else 0
    if not 1 <= size <= 64:
        raise ConfigError(
            f"setting thumbnail_size={raw!r} for provider 'centroid' must be a whole number "
            "from 1 to 64; pass e.g. -o thumbnail_size=8"
        )
    return size


# -- state tables: the service's own words -> the shared states ----------------------------------

JOB_STATES: dict[str, JobState] = {
    "InProgress": JobState.RUNNING,
    "Completed": JobState.SUCCEEDED,
    "Failed": JobState.FAILED,
}

# This virtual service only ever writes InService; a real service's table lists every word it documents.
ENDPOINT_STATES: dict[str, EndpointState] = {
    "Creating": EndpointState.CREATING,
    "InService": EndpointState.READY,
    "Failed": EndpointState.FAILED,
}


# -- the pretend service's storage ---------------------------------------------------------------


def service_dir() -> Path:
    """Where the pretend service keeps its documents and model files: ``$MCV_HOME/centroid``."""
    return mcv_home() / "centroid"


def _job_file(native_id: str) -> Path:
    return service_dir() / "jobs" / f"{native_id}.json"


def _model_file(native_id: str) -> Path:
    return service_dir() / "models" / f"{native_id}.json"


def _endpoint_file(native_id: str) -> Path:
    return service_dir() / "endpoints" / f"{native_id}.json"


def _save(path: Path, document: dict[str, Any]) -> None:
    """Write a document whole (temporary name, then rename), so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(document, indent=2), encoding="utf-8")
    partial.replace(path)


def _load(path: Path) -> dict[str, Any] | None:
    """A document, or ``None`` when the service has no such name."""
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return document


# -- Trainer ----------------------------------------------------------------------------------------


class CentroidTrainer(CentroidProvider, Trainer):
    """Trains in-process inside submit: the job is Completed (or Failed) when submit returns."""

    def _validate(self, spec: TrainingSpec) -> None:
        """Refuse hyperparameters (there are none) and a bad ``thumbnail_size``, before anything is recorded."""
        if spec.hyperparameters:
            names = ", ".join(sorted(spec.hyperparameters))
            raise BadInput(f"provider 'centroid' takes no hyperparameters (got {names}); remove the --hp options")
        thumbnail_size(self.config)

    def _plan(self, spec: TrainingSpec) -> list[PlannedRequest]:
        """The request :meth:`_submit` would send, for ``--dry-run``; sends nothing."""
        request = self._request(spec, "<job id>")
        return [PlannedRequest(service="centroid", operation="CreateCentroidJob", params=request)]

    def _request(self, spec: TrainingSpec, job_id: str) -> dict[str, Any]:
        """The native request: one builder, so the plan and the real submission cannot drift apart."""
        return {
            "JobName": job_id,
            "DatasetRoot": str(spec.dataset.root),
            "Classes": spec.dataset.classes,
            "TrainImages": len(_training_images(spec.dataset)),
            "ThumbnailSize": thumbnail_size(self.config),
        }

    def _submit(self, spec: TrainingSpec, job_id: str) -> NativeJob:
        """Create the job at the service and train it here and now; returns it Completed or Failed.

        The job name is our job id (the service lets the caller choose names, as SageMaker does).
        An unreadable image fails the job, with the file named, rather than raising: the job
        existed at the service, so it is recorded FAILED with the service's reason.
        """
        request = self._request(spec, job_id)
        size = request["ThumbnailSize"]
        job: dict[str, Any] = {**request, "JobStatus": "InProgress", "Log": []}
        job["Log"].append(f"training on {request['TrainImages']} images, {size}x{size} RGB thumbnails")
        _save(_job_file(job_id), job)
        try:
            samples = _vectors(spec.dataset, _training_images(spec.dataset), size)
        except ValueError as exc:
            job.update(JobStatus="Failed", FailureReason=str(exc))
        else:
            model = fit(samples, spec.dataset.classes, size)
            model.save(_model_file(job_id))
            accuracy = sum(model.nearest(vector) == index for vector, index in samples) / len(samples)
            job.update(
                JobStatus="Completed", ModelArtifact=str(_model_file(job_id)), Metrics={"train_accuracy": accuracy}
            )
            job["Log"].append(f"train accuracy {accuracy:.3f}; model written to {_model_file(job_id)}")
        _save(_job_file(job_id), job)
        return _native_job(job, spec.task.value)

    def _describe(self, native_id: str, record: JobRecord) -> NativeJob:
        """The job as the service reports it now; :class:`NotFound` for a name it does not know."""
        job = _load(_job_file(native_id))
        if job is None:
            raise NotFound(f"the centroid service knows no job '{native_id}' ({_job_file(native_id)} is gone)")
        return _native_job(job, record.task)

    def _logs(self, native_id: str) -> Iterator[str]:
        """The job's log lines, oldest first."""
        job = _load(_job_file(native_id))
        if job is None:
            raise NotFound(f"the centroid service knows no job '{native_id}' ({_job_file(native_id)} is gone)")
        return iter(job.get("Log", []))


def _training_images(dataset: Dataset) -> list[ImageRecord]:
    """The images to train on: the train split and unassigned images, never validation or test."""
    return [image for image in dataset.images if image.split in (None, "train")]


def _vectors(dataset: Dataset, images: list[ImageRecord], size: int) -> list[tuple[list[float], int]]:
    """Each image's feature vector and class index; ``ValueError`` naming the first file that cannot be read."""
    samples = []
    for image in images:
        path = dataset.absolute(image)
        try:
            samples.append((features(path, size), image.labels[0]))
        except OSError as exc:
            raise ValueError(f"{path}: not a readable image ({exc})") from exc
    return samples


def _native_job(job: dict[str, Any], task: str | None) -> NativeJob:
    """The service's job document in the shared terms; the state goes through :data:`JOB_STATES`."""
    status = str(job["JobStatus"])
    state = map_state(JOB_STATES, status)
    model = None
    if state is JobState.SUCCEEDED:
        model = NativeModel(
            native_id=job["JobName"],
            artifact=job["ModelArtifact"],
            labels=list(job["Classes"]),
            task=task,
            info={"thumbnail_size": job["ThumbnailSize"]},
        )
    return NativeJob(
        native_id=job["JobName"],
        state=state,
        native_state=status,
        failure_reason=job.get("FailureReason"),
        metrics=dict(job.get("Metrics", {})),
        model=model,
        cost_usd=0.0 if state.is_terminal() else None,
    )


# -- Deployer ---------------------------------------------------------------------------------------


class CentroidDeployer(CentroidProvider, Deployer):
    """Virtual endpoints: a document at the service naming the model file; no server, READY at once, free."""

    def _deploy(self, model: ModelRecord, endpoint_id: str, ttl_s: float | None) -> NativeEndpoint:
        """Create the endpoint document, InService at once.

        ``ttl_s`` is always ``None`` here: the core refuses ``--ttl`` before this hook runs,
        because ``endpoint_ttl`` is declared unsupported.
        """
        if not model.artifact or not Path(model.artifact).is_file():
            raise NotFound(f"model {model.id} has no centroid file at {model.artifact}; train it again")
        endpoint = {"EndpointName": endpoint_id, "EndpointStatus": "InService", "ModelArtifact": model.artifact}
        _save(_endpoint_file(endpoint_id), endpoint)
        return _native_endpoint(endpoint)

    def _describe_endpoint(self, record: EndpointRecord) -> NativeEndpoint:
        """The endpoint as the service reports it now; :class:`NotFound` for a name it does not know."""
        native_id = record.native_id or record.id
        endpoint = _load(_endpoint_file(native_id))
        if endpoint is None:
            raise NotFound(f"the centroid service knows no endpoint '{native_id}'")
        return _native_endpoint(endpoint)

    def _undeploy(self, record: EndpointRecord) -> None:
        """Delete the endpoint document; :class:`NotFound` when it is already gone.

        On NotFound the core records the endpoint DELETED all the same: ``undeploy`` is idempotent.
        """
        native_id = record.native_id or record.id
        try:
            _endpoint_file(native_id).unlink()
        except FileNotFoundError:
            raise NotFound(f"the centroid service knows no endpoint '{native_id}'; it is already deleted") from None


def _native_endpoint(endpoint: dict[str, Any]) -> NativeEndpoint:
    """The service's endpoint document in the shared terms; the state goes through :data:`ENDPOINT_STATES`."""
    status = str(endpoint["EndpointStatus"])
    state = ENDPOINT_STATES.get(status, EndpointState.CREATING)
    return NativeEndpoint(
        native_id=endpoint["EndpointName"],
        state=state,
        native_state=status,
        cost_per_hour_usd=0.0,
        info={"model_artifact": endpoint["ModelArtifact"]},
    )


# -- Predictor --------------------------------------------------------------------------------------


class CentroidPredictor(CentroidProvider, Predictor):
    """Scores an image against the endpoint's model in-process and answers in the shared schema."""

    def _predict(self, endpoint: EndpointRecord, model: ModelRecord, image: bytes, params: PredictParams) -> Prediction:
        """Score one image against every class: confidences 0..1, sorted, with the dataset's class indices.

        ``latency_ms`` is left at 0: the core fills in the wall time it measured around this hook.
        The distances ride along in ``raw`` for debugging, never instead of the labels.
        """
        from multicloud_cv.schema import LabelScore, Prediction

        centroids = _centroid_model(model.artifact or "")
        try:
            vector = features(image, centroids.thumbnail_size)
        except OSError as exc:
            raise InvalidImage(f"image payload: not a readable image ({exc})") from exc
        confidences = centroids.confidences(vector)
        labels = [
            LabelScore(name=name, index=index, confidence=confidence)
            for index, (name, confidence) in enumerate(zip(centroids.classes, confidences, strict=True))
        ]
        labels.sort(key=lambda label: label.confidence, reverse=True)
        if params.threshold is not None:
            labels = [label for label in labels if label.confidence >= params.threshold]
        if params.top_k is not None:
            labels = labels[: params.top_k]
        distances = dict(zip(centroids.classes, centroids.distances(vector), strict=True))
        return Prediction(
            provider=self.name,
            model_id=model.id,
            task="classification",
            labels=labels,
            latency_ms=0.0,
            raw={"distances": distances},
        )


@functools.lru_cache(maxsize=16)
def _centroid_model(path: str) -> CentroidModel:
    """The model file at ``path``, read once per process (model files never change once written)."""
    try:
        return CentroidModel.load(Path(path))
    except (OSError, ValueError) as exc:
        raise EndpointUnavailable(f"the centroid model file {path} cannot be read ({exc}); train again") from exc


__all__ = ["CAPABILITIES", "ENDPOINT_STATES", "JOB_STATES", "CentroidDeployer", "CentroidPredictor", "CentroidTrainer"]
