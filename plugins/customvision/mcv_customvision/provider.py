"""Trainer, Deployer and Predictor of the Azure Custom Vision provider.

This module is what the entry points load: it imports neither the Custom Vision SDK nor msrest at module load.

Training (:class:`CustomVisionTrainer`), as Microsoft's quickstart does it, with the classic mistakes caught first:

1. before anything is created: the settings (:mod:`mcv_customvision.settings`), the domain resolved by name
   against GetDomains for the task's type (an export asked for with a non-compact domain is refused: only compact
   domains export), the tier's caps (F0: 2 projects, 5,000 images, 50 tags) against the resource's projects and
   the dataset, and the core's preflight with the service's limits (:mod:`mcv_customvision.limits`: 5 images per
   tag, 15 for detection, 6 MB, 10,240 px, 300 regions);
2. the project (Multiclass, Multilabel or ObjectDetection), one tag per class, the training and validation images
   uploaded in batches (:mod:`mcv_customvision.uploads`: 64 images, 20 tags and 16 MiB a batch, read image by
   image; the test split is held back for our own evaluation, since the service makes its own split);
3. TrainProject (Regular or Advanced with a budget); the iteration's status is then polled (Training, Completed or
   Failed with trainingErrorDetails shown verbatim). The iteration's performance (precision, recall, average
   precision per tag at ``threshold`` / ``overlap_threshold``) becomes the provider-reported metrics.

A refusal after the project was created (an image the service would not take, a tag cap) deletes the project
before the error is raised, so nothing is left behind. Every call goes through :class:`~mcv_customvision.calls.Caller`
(paced to the tier, 429 retried after Retry-After, errors translated).

Deploying publishes the iteration to the prediction resource under a name; undeploying unpublishes it
(idempotent); a published iteration costs nothing by the hour (predictions are billed per 1,000 transactions).
Predicting sends the image bytes to ClassifyImage / DetectImage (the no-store routes unless ``store_images``):
probability becomes confidence, and boundingBox (left, top, width, height, normalised) becomes x_min, y_min,
x_max, y_max. Exporting (``mcv export``) calls ExportIteration, waits on GetExports and downloads the archive.
Removing a job unpublishes and deletes its iterations and the project it created.
"""

from __future__ import annotations

import functools
import io
import logging
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcv_customvision.settings import SETTINGS, Clients, Options
from multicloud_cv.capabilities import Capabilities
from multicloud_cv.errors import BadInput, ConfigError, InvalidImage, NotFound, ServiceError
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
from multicloud_cv.runs import EndpointRecord, JobRecord, ModelRecord
from multicloud_cv.states import EndpointState, JobState
from multicloud_cv.waiting import Backoff

if TYPE_CHECKING:
    from mcv_customvision.calls import Caller
    from multicloud_cv.datasets.model import Dataset
    from multicloud_cv.schema import Prediction

log = logging.getLogger(__name__)

PLANNED_JOB_ID = "job-planned"
ITERATION_STATES: dict[str, JobState] = {
    "Training": JobState.RUNNING,
    "Completed": JobState.SUCCEEDED,
    "Failed": JobState.FAILED,
}
#: ``mcv export --format`` to Custom Vision's (platform, flavor).
EXPORTS: dict[str, tuple[str, str | None]] = {
    "onnx": ("ONNX", None),
    "tflite": ("TensorFlow", "TensorFlowLite"),
    "tensorflow": ("TensorFlow", "TensorFlowNormal"),
    "coreml": ("CoreML", None),
    "docker": ("DockerFile", "Linux"),
}
EXPORT_TIMEOUT_S = 1800.0


def _capabilities() -> Capabilities:
    from mcv_customvision.limits import capabilities_limits

    return Capabilities.declare(
        supported=[
            "task:classification",
            "task:multilabel",
            "task:detection",
            "compute:gpu",
            "export:onnx",
            "export:tflite",
            "export:coreml",
            "export:tensorflow",
            "export:docker",
            "endpoint_ttl",
        ],
        unsupported={
            "compute:cpu": "Custom Vision chooses its own training hardware",
            "compute:tpu": "TPUs are a Google Cloud feature; use --provider vertex",
            "export:savedmodel": "Custom Vision exports TensorFlow as a frozen graph: use --format tensorflow",
            "incremental_training": "each Custom Vision iteration trains on the project's images from scratch",
            "batch_prediction": "Custom Vision has no batch prediction call; predict image by image",
            "cancel": "Custom Vision has no call that stops a training in progress; remove the job afterwards",
            "resume": "Custom Vision has no call that resumes a training; train again",
        },
        limits=capabilities_limits("S0"),
    )


class _CustomVisionBase(ProviderPlugin):
    name = "customvision"
    api_version = "1.0"
    description = "Azure Custom Vision: projects, tags, tagged images and regions, training, publishing, export"
    settings = SETTINGS
    capabilities = _capabilities()
    requires = ("azure.cognitiveservices.vision.customvision", "msrest", "PIL")
    install_hint = "pip install -e plugins/customvision  (distribution multicloud-cv-customvision)"
    default_compute = "gpu"
    #: Polling starts at ``poll_s`` (default 10 s) and grows by 1.5 up to 60 s (the core's poll_schedule).
    backoff = Backoff(initial=10.0, factor=1.5, maximum=60.0)

    @functools.cached_property
    def options(self) -> Options:
        return Options.parse(self.config)

    @functools.cached_property
    def clients(self) -> Clients:
        return Clients(self.options)

    @property
    def emulated(self) -> bool:
        try:
            return self.clients.emulated()
        except ConfigError:
            return False

    def _credential_problems(self) -> list[str]:
        try:
            return self.options.training_problems()
        except ConfigError as exc:
            return [str(exc)]

    @functools.cached_property
    def training_calls(self) -> Caller:
        return self._caller("training")

    @functools.cached_property
    def prediction_calls(self) -> Caller:
        return self._caller("prediction")

    def _caller(self, api: str) -> Caller:
        from mcv_customvision.calls import Caller, TokenBucket
        from mcv_customvision.limits import LIMITS

        tier = LIMITS.tier(self.options.tier)
        rate = tier.training_tps if api == "training" else tier.prediction_tps
        bucket = None if self.emulated else TokenBucket(rate=float(rate), burst=max(1, rate))
        return Caller(api, bucket, self.options.max_retries)

    def _train(self, operation: str, *args: Any, safe: bool = False, **kwargs: Any) -> Any:
        """One training-API call by operation name (the SDK method is its snake_case)."""
        client = self.clients.training
        return self.training_calls(operation, getattr(client, _snake(operation)), *args, safe=safe, **kwargs)


def _snake(operation: str) -> str:
    out = []
    for n, char in enumerate(operation):
        if char.isupper() and n:
            out.append("_")
        out.append(char.lower())
    return "".join(out)


# -- training ------------------------------------------------------------------------------------


class CustomVisionTrainer(_CustomVisionBase, Trainer):
    """Projects, tags, tagged images and regions, iterations."""

    def _validate(self, spec: TrainingSpec) -> None:
        options = self.options
        if spec.hyperparameters:
            names = ", ".join(sorted(spec.hyperparameters))
            raise BadInput(
                f"Custom Vision takes no hyperparameters (got {names}): choose -o domain=, -o training_type= and "
                "-o budget_hours= instead"
            )
        if spec.epochs is not None:
            log.info("--epochs is ignored: Custom Vision decides how long it trains (-o budget_hours for Advanced)")
        from mcv_customvision.domains import pick
        from mcv_customvision.limits import LIMITS

        domain = pick(options.domain, spec.task.value)  # the data file's list: a typo fails before any call
        wanted = [fmt for fmt in spec.export_formats if fmt in EXPORTS]
        if wanted and not domain.get("exportable"):
            raise BadInput(
                f"domain '{options.domain}' cannot export ({', '.join(wanted)}): only compact domains export; "
                "use -o domain='General (compact)'"
            )
        small = [image for image in spec.dataset.images if _short_side(spec.dataset, image) < LIMITS.min_image_side]
        if small:  # accepted: the service upscales them (cloud-apis.md 8), which can cost accuracy
            log.warning(
                "%d image(s) have a side under %d px (e.g. %s): Custom Vision upscales them",
                len(small),
                LIMITS.min_image_side,
                small[0].path,
            )
        tier = LIMITS.tier(options.tier)
        images = len([i for i in spec.dataset.images if i.split != "test"])
        if images > tier.images:
            raise BadInput(f"{images} training images is over the {tier.name} tier's {tier.images} a project")
        if len(spec.dataset.classes) > tier.tags:
            raise BadInput(f"{len(spec.dataset.classes)} tags is over the {tier.name} tier's {tier.tags} a project")

    def _parts(self, dataset: Dataset) -> Dataset:
        """The images uploaded: every split but test (the service makes its own validation split)."""
        return replace(dataset, images=[i for i in dataset.images if i.split != "test"])

    def _project_name(self, job_id: str) -> str:
        return self.options.project or f"mcv-{job_id}"

    def _plan(self, spec: TrainingSpec) -> list[PlannedRequest]:
        from mcv_customvision import requests
        from mcv_customvision.domains import domain_type, pick
        from mcv_customvision.uploads import plan_batches

        options = self.options
        domain = pick(options.domain, spec.task.value)
        planned = [PlannedRequest(service="customvision.training", operation="GetDomains", params={})]
        project = requests.create_project(
            self._project_name(PLANNED_JOB_ID), str(domain["id"]), spec.task.value, domain_type(spec.task.value)
        )
        planned.append(_planned("CreateProject", project))
        for name in spec.dataset.classes:
            planned.append(_planned("CreateTag", requests.create_tag("<project id>", name)))
        for batch in plan_batches(self._parts(spec.dataset)):
            planned.append(_planned("CreateImagesFromFiles", requests.batch_summary("<project id>", batch)))
        planned.append(
            _planned(
                "TrainProject", requests.train_project("<project id>", options.training_type, options.budget_hours)
            )
        )
        return planned

    def _estimate_cost(self, spec: TrainingSpec) -> tuple[float | None, list[str]]:
        from multicloud_cv.cost import training_cost

        if self.options.tier == "F0":
            return 0.0, ["F0 tier: training is free within its caps (2 projects, 5,000 images a project)"]
        hours = max(1, self.options.budget_hours)
        cost = training_cost(self.name, "training", 1, hours * 3600.0, "*")
        return cost, [f"{hours} training hour(s) at the S0 rate (Regular training usually takes minutes)"]

    # -- hooks ----------------------------------------------------------------------------------

    def _submit(self, spec: TrainingSpec, job_id: str) -> NativeJob:
        from mcv_customvision.domains import pick
        from mcv_customvision.limits import LIMITS
        from mcv_customvision.uploads import plan_batches, upload

        options = self.options
        domains = [d.as_dict() for d in self._train("GetDomains", safe=True)]
        domain = pick(options.domain, spec.task.value, domains)
        tier = LIMITS.tier(options.tier)
        projects = self._train("GetProjects", safe=True)
        if len(projects) >= tier.projects:
            raise BadInput(
                f"the training resource has {len(projects)} projects, the {tier.name} tier's cap is {tier.projects}: "
                "delete a project (mcv cleanup) or use an S0 resource"
            )
        name = self._project_name(job_id)
        params = _project_params(name, str(domain["id"]), spec.task.value)
        project = self._train("CreateProject", **params)
        state: dict[str, Any] = {
            "project_id": project.id,
            "project": name,
            "created_project": True,
            "domain": domain.get("name"),
            "domain_id": domain["id"],
            "exportable": bool(domain.get("exportable")),
            "classes": list(spec.dataset.classes),
        }
        try:
            tag_ids = {}
            for tag_name in spec.dataset.classes:
                tag_ids[tag_name] = self._train("CreateTag", project.id, tag_name).id
            state["tags"] = tag_ids
            batches = plan_batches(self._parts(spec.dataset), LIMITS.max_images_per_batch, LIMITS.max_tags_per_batch)
            report = upload(lambda batch: self._train("CreateImagesFromFiles", project.id, batch), batches, tag_ids)
            state["uploaded"] = {"images": report.uploaded, "duplicates": report.duplicates, "batches": report.batches}
            iteration = self._train(
                "TrainProject",
                project.id,
                training_type=options.training_type,
                reserved_budget_in_hours=options.budget_hours,
            )
        except BaseException:
            self._delete_project_quietly(project.id)
            raise
        state["iteration_id"] = iteration.id
        self._save(job_id, spec, state)
        return self._describe(iteration.id, self.store.job(job_id))

    def _delete_project_quietly(self, project_id: str) -> None:
        try:
            self._train("DeleteProject", project_id, safe=True)
        except Exception as exc:  # the original error matters more; say what is left behind
            log.warning("could not delete project %s after the failure: %s; delete it by hand", project_id, exc)

    def _save(self, job_id: str, spec: TrainingSpec | None, state: Mapping[str, Any]) -> None:
        record = self.store.job(job_id)
        base = dict(record.spec)
        if spec is not None:
            base.update({"epochs": spec.epochs, "hyperparameters": spec.hyperparameters, "compute": spec.compute})
        base["customvision"] = dict(state)
        self.store.update_job(job_id, spec=base)

    def _describe(self, native_id: str, record: JobRecord) -> NativeJob:
        state = dict(record.spec.get("customvision") or {})
        if not state:
            raise NotFound(f"job {record.id} has no Custom Vision state recorded")
        iteration = self._train("GetIteration", state["project_id"], state["iteration_id"], safe=True)
        status = str(iteration.status)
        job_state = ITERATION_STATES.get(status, JobState.RUNNING)
        native = NativeJob(
            native_id=str(iteration.id),
            state=job_state,
            native_state=status,
            progress=status,
            cost_usd=self._training_cost(iteration),
        )
        if job_state is JobState.FAILED:
            native.failure_reason = str(iteration.training_error_details or "the iteration failed (no details given)")
        if job_state is JobState.SUCCEEDED:
            native.metrics = self._performance(state, str(iteration.id), record.task or "classification")
            native.model = NativeModel(
                native_id=str(iteration.id),
                labels=list(state["classes"]),
                task=record.task,
                info={
                    "project_id": state["project_id"],
                    "iteration_id": str(iteration.id),
                    "domain": state.get("domain"),
                    "exportable": bool(iteration.exportable),
                    "tags": state.get("tags", {}),
                },
            )
        return native

    def _performance(self, state: Mapping[str, Any], iteration_id: str, task: str) -> dict[str, float]:
        """The iteration's reported precision, recall and average precision, overall and per tag."""
        options = self.options
        kwargs: dict[str, Any] = {"threshold": options.threshold}
        if task == "detection":
            kwargs["overlap_threshold"] = options.overlap_threshold
        try:
            perf = self._train("GetIterationPerformance", state["project_id"], iteration_id, safe=True, **kwargs)
        except (BadInput, ServiceError) as exc:
            log.warning("the iteration's performance could not be read: %s", exc)
            return {}
        metrics: dict[str, float] = {}
        for key, value in (
            ("precision", perf.precision),
            ("recall", perf.recall),
            ("average_precision", perf.average_precision),
        ):
            if value is not None:
                metrics[key] = float(value)
        for tag in perf.per_tag_performance or []:
            for key in ("precision", "recall", "average_precision"):
                value = getattr(tag, key, None)
                if value is not None:
                    metrics[f"{key}/{tag.name}"] = float(value)
        metrics["threshold"] = options.threshold
        return metrics

    def _training_cost(self, iteration: Any) -> float | None:
        from multicloud_cv.cost import training_cost

        minutes = getattr(iteration, "training_time_in_minutes", None)
        if minutes is None or self.options.tier == "F0":
            return 0.0 if self.options.tier == "F0" else None
        return training_cost(self.name, "training", 1, float(minutes) * 60.0, "*")

    def _remove(self, record: JobRecord) -> bool | None:
        """One step of removal: unpublish and delete the iterations, then the project this job created."""
        state = dict(record.spec.get("customvision") or {})
        if not state:
            return None
        project_id = state["project_id"]
        try:
            iterations = self._train("GetIterations", project_id, safe=True)
        except NotFound:
            return True
        for iteration in iterations:
            if iteration.publish_name:
                self._train("UnpublishIteration", project_id, iteration.id, safe=True)
                return False
            if str(iteration.status) == "Training":
                return False  # the service refuses to delete an iteration in training; wait for it
        if state.get("created_project"):
            self._train("DeleteProject", project_id, safe=True)
            return True
        for iteration in iterations:
            self._train("DeleteIteration", project_id, iteration.id, safe=True)
        return True

    def _export(self, model: ModelRecord, fmt: str, workdir: Path) -> Path:
        """ExportIteration (or the export already there), GetExports until Done, then the archive downloaded."""
        platform, flavor = EXPORTS[fmt]
        project_id, iteration_id = str(model.info["project_id"]), str(model.info["iteration_id"])
        if not model.info.get("exportable", True):
            raise BadInput(
                f"model {model.id} was trained on domain '{model.info.get('domain')}', which cannot export: only "
                "compact domains export; train again with -o domain='General (compact)'"
            )
        found = self._matching_export(project_id, iteration_id, platform, flavor)
        if found is None or str(found.status) == "Failed":
            try:
                self._train("ExportIteration", project_id, iteration_id, platform, flavor=flavor)
            except BadInput as exc:
                if "Export" not in str(exc) or "already" not in str(exc).lower():
                    raise
        deadline = time.monotonic() + EXPORT_TIMEOUT_S
        interval = self.poll_schedule().intervals()
        while True:
            found = self._matching_export(project_id, iteration_id, platform, flavor)
            status = str(getattr(found, "status", "Exporting"))
            if status == "Done" and found is not None and found.download_uri:
                break
            if status == "Failed":
                raise ServiceError(
                    f"the service failed to export iteration {iteration_id} as {platform} {flavor or ''}"
                )
            if time.monotonic() > deadline:
                raise ServiceError(f"the {platform} export of iteration {iteration_id} did not finish in time")
            time.sleep(interval())
        target = workdir / f"{model.id}-{fmt}.zip"
        with urllib.request.urlopen(found.download_uri, timeout=300) as answer, target.open("wb") as out:
            while chunk := answer.read(1 << 20):
                out.write(chunk)
        return target

    def _matching_export(self, project_id: str, iteration_id: str, platform: str, flavor: str | None) -> Any:
        for export in self._train("GetExports", project_id, iteration_id, safe=True) or []:
            if str(export.platform) == platform and (export.flavor or None) == flavor:
                return export
        return None


def _short_side(dataset: Dataset, image: Any) -> int:
    """The image's shorter side in pixels (its record, else its header; a large number when unknown)."""
    from multicloud_cv.datasets.media import image_size, is_uri

    if is_uri(image.path) and not (image.width and image.height):
        return 1 << 30
    try:
        width, height = image_size(dataset, image)
    except Exception:  # unreadable files are the preflight's to report
        return 1 << 30
    return int(min(width, height))


def _project_params(name: str, domain_id: str, task: str) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "domain_id": domain_id, "description": "created by mcv"}
    if task == "classification":
        params["classification_type"] = "Multiclass"
    elif task == "multilabel":
        params["classification_type"] = "Multilabel"
    return params


def _planned(operation: str, params: dict[str, Any]) -> PlannedRequest:
    return PlannedRequest(service="customvision.training", operation=operation, params=params)


# -- deploying -----------------------------------------------------------------------------------


class CustomVisionDeployer(_CustomVisionBase, Deployer):
    """PublishIteration / UnpublishIteration to the prediction resource."""

    def _publish_name(self, model: ModelRecord) -> str:
        return self.options.publish_name or f"mcv-{model.id}"

    def _deploy(self, model: ModelRecord, endpoint_id: str, ttl_s: float | None) -> NativeEndpoint:
        options = self.options
        problems = options.prediction_problems()
        if problems:
            raise ConfigError(problems[0])
        name = self._publish_name(model)
        project_id, iteration_id = str(model.info["project_id"]), str(model.info["iteration_id"])
        iteration = self._train("GetIteration", project_id, iteration_id, safe=True)
        if iteration.publish_name and iteration.publish_name != name:
            name = str(iteration.publish_name)
            log.info("iteration %s is already published as %s: using it", iteration_id, name)
        elif not iteration.publish_name:
            self._train("PublishIteration", project_id, iteration_id, name, options.prediction_resource_id)
        self.store.update_endpoint(endpoint_id, info={"project_id": project_id, "iteration_id": iteration_id})
        return self._native(project_id, iteration_id, name)

    def _native(self, project_id: str, iteration_id: str, name: str) -> NativeEndpoint:
        base = (self.options.prediction_endpoint or "").rstrip("/")
        return NativeEndpoint(
            native_id=name,
            state=EndpointState.READY,
            native_state="Published",
            url=f"{base}/customvision/v3.1/prediction/{project_id}/classify/iterations/{name}/image",
            cost_per_hour_usd=0.0,
            info={"project_id": project_id, "iteration_id": iteration_id, "publish_name": name},
        )

    def _describe_endpoint(self, record: EndpointRecord) -> NativeEndpoint:
        project_id, iteration_id = str(record.info["project_id"]), str(record.info["iteration_id"])
        iteration = self._train("GetIteration", project_id, iteration_id, safe=True)
        if iteration.publish_name and iteration.publish_name == record.native_id:
            native = self._native(project_id, iteration_id, str(iteration.publish_name))
            native.url = record.url or native.url
            return native
        return NativeEndpoint(native_id=record.native_id or "", state=EndpointState.DELETED, native_state="Unpublished")

    def _undeploy(self, record: EndpointRecord) -> None:
        project_id, iteration_id = str(record.info["project_id"]), str(record.info["iteration_id"])
        iteration = self._train("GetIteration", project_id, iteration_id, safe=True)
        if not iteration.publish_name:
            raise NotFound(f"iteration {iteration_id} is not published")
        self._train("UnpublishIteration", project_id, iteration_id, safe=True)


# -- predicting ----------------------------------------------------------------------------------


class CustomVisionPredictor(_CustomVisionBase, Predictor):
    """ClassifyImage / DetectImage with the image bytes; the answer in the shared schema."""

    def _predict(self, endpoint: EndpointRecord, model: ModelRecord, image: bytes, params: PredictParams) -> Prediction:
        _check_decodes(image)
        task = model.task or "classification"
        verb = "Detect" if task == "detection" else "Classify"
        operation = f"{verb}Image" if self.options.store_images else f"{verb}ImageWithNoStore"
        client = self.clients.prediction
        method = getattr(client, _snake(operation))
        started = time.perf_counter()
        project_id, name = str(endpoint.info["project_id"]), endpoint.native_id
        # a fresh stream for every attempt: a retried call after a 429 must send the image again
        answer = self.prediction_calls(operation, lambda: method(project_id, name, io.BytesIO(image)), safe=True)
        latency = (time.perf_counter() - started) * 1000.0
        return to_prediction(answer, model, self.name, params, latency)

    def _predict_uri(self, endpoint: EndpointRecord, model: ModelRecord, uri: str, params: PredictParams) -> Prediction:
        """An image the service fetches itself (``/url`` routes): http(s) URLs only."""
        if not uri.startswith(("https://", "http://")):
            raise InvalidImage(f"{uri}: Custom Vision fetches http(s) URLs only; pass a local file instead")
        task = model.task or "classification"
        verb = "Detect" if task == "detection" else "Classify"
        operation = f"{verb}ImageUrl" if self.options.store_images else f"{verb}ImageUrlWithNoStore"
        method = getattr(self.clients.prediction, _snake(operation))
        started = time.perf_counter()
        answer = self.prediction_calls(
            operation, method, str(endpoint.info["project_id"]), endpoint.native_id, uri, safe=True
        )
        return to_prediction(answer, model, self.name, params, (time.perf_counter() - started) * 1000.0)


def _check_decodes(image: bytes) -> None:
    """Pillow must identify the bytes as an image (pains.md A2: BadRequestImageFormat otherwise)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image)) as opened:
            opened.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"the image does not decode ({exc}); Custom Vision takes JPEG, PNG, BMP or GIF") from exc


def to_prediction(
    answer: Any, model: ModelRecord, provider: str, params: PredictParams, latency_ms: float
) -> Prediction:
    """An SDK ``ImagePrediction`` in the shared schema (probability -> confidence; boxes to corners)."""
    from multicloud_cv.schema import Box, Detection, LabelScore, Prediction

    task = model.task or "classification"
    index = {name: n for n, name in enumerate(model.labels)}
    labels: list[LabelScore] = []
    detections: list[Detection] = []
    threshold = params.threshold
    raw = []
    for found in getattr(answer, "predictions", None) or []:
        name = str(found.tag_name)
        confidence = min(1.0, max(0.0, float(found.probability)))
        raw.append({"tagName": name, "probability": confidence})
        if name not in index:
            raise ServiceError(f"the published iteration answered tag '{name}', which model {model.id} does not have")
        if threshold is not None and confidence < threshold:
            continue
        box = getattr(found, "bounding_box", None)
        if task == "detection":
            if box is None:
                continue
            x0, y0 = max(0.0, float(box.left)), max(0.0, float(box.top))
            x1, y1 = min(1.0, float(box.left) + float(box.width)), min(1.0, float(box.top) + float(box.height))
            if x1 > x0 and y1 > y0:
                detections.append(
                    Detection(
                        name=name,
                        index=index[name],
                        confidence=confidence,
                        box=Box(x_min=x0, y_min=y0, x_max=x1, y_max=y1),
                    )
                )
        else:
            labels.append(LabelScore(name=name, index=index[name], confidence=confidence))
    labels.sort(key=lambda item: -item.confidence)
    detections.sort(key=lambda item: -item.confidence)
    cap = params.top_k or (5 if task != "detection" else None)
    return Prediction(
        provider=provider,
        model_id=model.id,
        task=task,  # type: ignore[arg-type]
        labels=labels[:cap] if cap else labels,
        detections=detections[: params.top_k] if params.top_k else detections,
        latency_ms=latency_ms,
        raw={"predictions": raw},
    )


__all__ = ["CustomVisionDeployer", "CustomVisionPredictor", "CustomVisionTrainer", "to_prediction"]
