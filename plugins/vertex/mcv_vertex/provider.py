"""Trainer, Deployer and Predictor of the Google Vertex AI provider.

This module is what the entry points load: it imports neither google-cloud-aiplatform nor google-cloud-storage at
module load. Clients are the SDK's GAPIC v1 clients over REST (:mod:`mcv_vertex.settings`); requests are built
once with the SDK's own types (:mod:`mcv_vertex.requests`) for both the plan and the submission.

Two routes (``-o route=``):

* ``custom`` (default): our local engine trains inside Vertex. The dataset is staged to Cloud Storage as Vertex
  import JSON Lines with its images; our training program (:mod:`mcv_vertex.task`) ships as a Python package
  (:mod:`mcv_vertex.package`) to a prebuilt PyTorch training container; a CustomJob runs it on the scale tier's
  worker pools (:mod:`mcv_vertex.machines`: BASIC, BASIC_GPU, BASIC_TPU, STANDARD_1, PREMIUM_1, CUSTOM). The model
  is the same kind as a local one (ONNX), so it is served by our serving container (:mod:`mcv_vertex.serving`) and
  exports as ONNX.
* ``automl``: an image Dataset imported from the same JSON Lines (ml_use labels keep our split), then an AutoML
  image TrainingPipeline with the model type and budget checked against the task's valid values and range.

Before anything is sent: the machine and accelerator against the table of machine families and regions, the
bucket's location against the job's (pains.md V4), AutoML's model type, budget and 10 images per label. A capacity
stock-out ("Resources are insufficient in region", pains.md V2) is retryable: the job is submitted again, up to
``capacity_retries`` times, moving through ``fallback`` (other accelerators or regions) when one is given. The
service's errors are shown verbatim. Waiting is the core's polling, so a job is resumed from a new shell.

Deploying uploads the model (custom route), creates an endpoint and deploys the model on dedicated resources; a
failed deployment deletes the endpoint it created (pains.md V8: orphaned endpoints bill). Undeploying undeploys
every model and deletes the endpoint (idempotent). Predicting sends ``{content: base64, mimeType}`` instances with
``confidenceThreshold`` and ``maxPredictions``; ``bboxes`` come back as ``[xMin, xMax, yMin, yMax]`` (note the
order). Batch prediction is a BatchPredictionJob over the images staged to Cloud Storage.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import random
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mcv_vertex import requests
from mcv_vertex.settings import SETTINGS, TRAINING_IMAGES, Clients, Fallback, Options
from multicloud_cv.capabilities import Capabilities, Limits
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
    from mcv_vertex.machines import Pool
    from multicloud_cv.datasets.model import Dataset
    from multicloud_cv.schema import Prediction

log = logging.getLogger(__name__)
T = TypeVar("T")

PLANNED_JOB_ID = "job-planned"
CAPACITY_TEXT = "Resources are insufficient in region"
COMPUTE_TIERS = {"cpu": "BASIC", "gpu": "BASIC_GPU", "tpu": "BASIC_TPU"}
JOB_STATES: dict[str, JobState] = {
    "JOB_STATE_QUEUED": JobState.QUEUED,
    "JOB_STATE_PENDING": JobState.QUEUED,
    "JOB_STATE_RUNNING": JobState.RUNNING,
    "JOB_STATE_SUCCEEDED": JobState.SUCCEEDED,
    "JOB_STATE_FAILED": JobState.FAILED,
    "JOB_STATE_CANCELLING": JobState.RUNNING,
    "JOB_STATE_CANCELLED": JobState.CANCELLED,
    "JOB_STATE_PAUSED": JobState.RUNNING,
    "JOB_STATE_EXPIRED": JobState.FAILED,
    "JOB_STATE_UPDATING": JobState.RUNNING,
    "JOB_STATE_PARTIALLY_SUCCEEDED": JobState.FAILED,
    "PIPELINE_STATE_QUEUED": JobState.QUEUED,
    "PIPELINE_STATE_PENDING": JobState.QUEUED,
    "PIPELINE_STATE_RUNNING": JobState.RUNNING,
    "PIPELINE_STATE_SUCCEEDED": JobState.SUCCEEDED,
    "PIPELINE_STATE_FAILED": JobState.FAILED,
    "PIPELINE_STATE_CANCELLING": JobState.RUNNING,
    "PIPELINE_STATE_CANCELLED": JobState.CANCELLED,
    "PIPELINE_STATE_PAUSED": JobState.RUNNING,
}
RETRYABLE = ("ResourceExhausted", "ServiceUnavailable", "TooManyRequests", "InternalServerError")
LRO_TIMEOUT_S = 1800.0


def _capabilities() -> Capabilities:
    return Capabilities.declare(
        supported=[
            "task:classification",
            "task:multilabel",
            "task:detection",
            "compute:cpu",
            "compute:gpu",
            "compute:tpu",
            "export:onnx",
            "batch_prediction",
            "endpoint_ttl",
            "cancel",
        ],
        unsupported={
            "export:tflite": "the custom route's model is ONNX; AutoML Edge exports are not wired into mcv yet",
            "export:coreml": "the custom route's model is ONNX; AutoML Edge exports are not wired into mcv yet",
            "export:savedmodel": "the custom route's model is ONNX; AutoML Edge exports are not wired into mcv yet",
            "export:tensorflow": "the custom route's model is ONNX; AutoML Edge exports are not wired into mcv yet",
            "export:docker": "the custom route's model is ONNX; AutoML Edge exports are not wired into mcv yet",
            "incremental_training": "not wired into mcv yet (AutoML's incremental_train_base_model)",
            "resume": "Vertex AI has no call that resumes a custom job; train again",
        },
        limits=Limits(
            min_images_per_label=1,
            max_image_bytes=30 * 1024 * 1024,
            max_predict_image_bytes=1_572_864,
            max_boxes_per_image=500,
        ),
    )


#: google-api-core's DEFAULT_POLLING polls an operation after 1 s, then x1.5 up to 20 s.
SDK_LRO_FIRST_POLL_S = 1.0
SDK_LRO_MAX_POLL_S = 20.0


def _retry(what: str, call: Callable[[], T], attempts: int = 5) -> T:
    """``call()`` retried on 429 / 5xx with jittered backoff (1, 2, 4 ... s); the service's errors translated."""
    from google.api_core import exceptions

    for attempt in range(attempts + 1):
        try:
            return call()
        except exceptions.GoogleAPICallError as exc:
            name = type(exc).__name__
            if name in RETRYABLE and attempt < attempts:
                wait = min(30.0, 2.0**attempt) * (0.5 + random.random() / 2)
                log.info("%s: %s (%s); retrying in %.1f s", what, name, exc.message, wait)
                time.sleep(wait)
                continue
            raise _translate(what, exc) from exc
    raise AssertionError("unreachable")


def _translate(what: str, exc: Any) -> Exception:
    from google.api_core import exceptions

    text = f"{what}: {exc.message}" if getattr(exc, "message", None) else f"{what}: {exc}"
    if isinstance(exc, exceptions.NotFound):
        return NotFound(text)
    # over REST, google-api-core picks the class by HTTP status: INVALID_ARGUMENT and FAILED_PRECONDITION both
    # arrive as BadRequest (400), ALREADY_EXISTS as Conflict (409), PERMISSION_DENIED as Forbidden (403)
    if isinstance(exc, exceptions.Unauthorized | exceptions.Forbidden):
        return ConfigError(f"{text} (check the credentials and the project's IAM roles)")
    if isinstance(exc, exceptions.BadRequest | exceptions.Conflict):
        return BadInput(text)
    return ServiceError(text)


class _VertexBase(ProviderPlugin):
    name = "vertex"
    api_version = "1.0"
    description = "Google Vertex AI: custom training on CPU/GPU/TPU scale tiers, AutoML image, endpoints, batch"
    settings = SETTINGS
    capabilities = _capabilities()
    requires = ("google.cloud.aiplatform_v1", "google.cloud.storage", "PIL")
    install_hint = "pip install -e plugins/vertex  (distribution multicloud-cv-vertex)"
    default_compute = "cpu"
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
            return self.options.emulated()
        except ConfigError:
            return False

    def _credential_problems(self) -> list[str]:
        """Settings and a credentials file that does not exist; found without a network call (the metadata
        server is not asked: the application default credentials are looked up when work starts)."""
        import os

        try:
            self.options  # noqa: B018 - parsing is the check
        except ConfigError as exc:
            return [str(exc)]
        path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if path and not Path(path).is_file():
            return [f"GOOGLE_APPLICATION_CREDENTIALS names {path}, which does not exist"]
        return []

    def _wait_operation(self, what: str, operation: Any) -> Any:
        """The result of a long-running operation, errors translated.

        The SDK polls it with its own schedule (first after 1 s, then x1.5 up to 20 s), sooner and with a lower
        ceiling when :meth:`poll_schedule` has them (a ``poll_s`` under 1 s, against the emulator): an operation
        of a few seconds is then not waited on for a whole extra interval.
        """
        from google.api_core import exceptions
        from google.api_core.future.polling import DEFAULT_POLLING

        schedule = self.poll_schedule()
        polling = DEFAULT_POLLING.with_delay(
            initial=min(SDK_LRO_FIRST_POLL_S, schedule.initial), maximum=min(SDK_LRO_MAX_POLL_S, schedule.maximum)
        )
        try:
            return operation.result(timeout=LRO_TIMEOUT_S, polling=polling)
        except exceptions.GoogleAPICallError as exc:
            raise _translate(what, exc) from exc

    def _serving_image(self) -> str:
        from mcv_vertex.package import package_version

        options = self.options
        return options.serving_image or (
            f"{options.location}-docker.pkg.dev/{self.clients.project}/mcv/mcv-vertex-serve:{package_version()}"
        )

    def _vertex_model(self, model: ModelRecord) -> str:
        """The Vertex Model resource of ``model``: AutoML's, or uploaded now for the custom route (once)."""
        if model.info.get("route") == "automl":
            return str(model.info["model_name"])
        if model.info.get("uploaded_model"):
            return str(model.info["uploaded_model"])
        upload = requests.uploaded_model(
            f"mcv-{model.id}", model.artifact or "", self._serving_image(), {"mcv-model": model.id}
        )
        operation = _retry(
            "UploadModel", lambda: self.clients.models().upload_model(parent=self.clients.parent(), model=upload)
        )
        name = str(self._wait_operation("UploadModel", operation).model)
        self.store.update_model(model.id, info={**model.info, "uploaded_model": name})
        return name

    def _price(self, item: str, count: int, seconds: float, location: str) -> float | None:
        from multicloud_cv.cost import training_cost

        return training_cost(self.name, item, count, seconds, location)


# -- training ------------------------------------------------------------------------------------


class VertexTrainer(_VertexBase, Trainer):
    """CustomJobs running our package (route custom) or AutoML image TrainingPipelines (route automl)."""

    def _pools(self, spec: TrainingSpec) -> list[Pool]:
        from mcv_vertex.machines import worker_pools

        options = self.options
        tier = options.scale_tier or COMPUTE_TIERS.get(spec.compute or "cpu", "BASIC")
        accelerator = options.accelerator_type
        return worker_pools(
            tier,
            machine_type=options.machine_type,
            accelerator_type=accelerator,
            accelerator_count=options.accelerator_count if accelerator else 0,
            replica_count=options.replica_count,
        )

    def _validate(self, spec: TrainingSpec) -> None:
        from mcv_vertex import automl
        from mcv_vertex.machines import check_machine

        options = self.options
        if not options.bucket:
            raise ConfigError("setting 'bucket' is not set: pass -o bucket=NAME or set MCV_VERTEX_BUCKET")
        if options.route == "automl":
            if spec.hyperparameters:
                names = ", ".join(sorted(spec.hyperparameters))
                raise BadInput(f"AutoML takes no hyperparameters (got {names}); use -o model_type= and -o budget_...")
            problems = automl.check(
                spec.task.value,
                options.model_type or automl.default_model_type(spec.task.value),
                options.budget_milli_node_hours,
            )
            if problems:
                raise BadInput(problems[0])
            self._check_automl_counts(spec.dataset)
            return
        errors: list[str] = []
        for pool in self._pools(spec):
            found, warnings = check_machine(
                pool.machine_type, pool.accelerator_type, pool.accelerator_count, options.location
            )
            errors += found
            for warning in warnings:
                log.warning("%s", warning)
        if errors:
            raise BadInput(f"{errors[0]} (machine table: mcv_vertex/data/machines.json)")

    def _check_automl_counts(self, dataset: Dataset) -> None:
        from mcv_vertex.automl import MIN_IMAGES_PER_LABEL

        counts = {name: 0 for name in dataset.classes}
        for image in dataset.images:
            if image.split == "test":
                continue
            for label in {*image.labels, *(box.label for box in image.boxes)}:
                counts[dataset.classes[label]] += 1
        few = sorted(name for name, count in counts.items() if count < MIN_IMAGES_PER_LABEL)
        if few:
            raise BadInput(
                f"AutoML image training needs at least {MIN_IMAGES_PER_LABEL} images per label outside the test "
                f"split; {', '.join(few[:5])} {'has' if len(few) == 1 else 'have'} fewer: add images or use "
                "-o route=custom"
            )

    # -- staging ------------------------------------------------------------------------------

    def _root(self) -> str:
        options = self.options
        return f"gs://{options.bucket}/{options.prefix}" if options.prefix else f"gs://{options.bucket}"

    def _write_jsonl(self, dataset: Dataset, workdir: Path) -> tuple[Path, dict[Path, str], str]:
        """(JSON Lines folder, {local image: object key under the dataset}, fingerprint); nothing sent."""
        from multicloud_cv.datasets.vertex_jsonl import write_vertex_jsonl
        from multicloud_cv.staging import dataset_files

        keys = dataset_files(dataset)
        digest = hashlib.sha256()
        for path in sorted(keys):
            digest.update(keys[path].encode())
            digest.update(str(path.stat().st_size).encode())
        digest.update(json.dumps([i.split for i in dataset.images]).encode())
        fingerprint = digest.hexdigest()[:16]
        base = f"{self._root()}/datasets/{fingerprint}"
        refs = {dataset.absolute(image): f"{base}/images/{keys[dataset.absolute(image)]}" for image in dataset.images}
        folder = workdir / "jsonl"
        write_vertex_jsonl(dataset, folder, image_ref=lambda image: refs[dataset.absolute(image)])
        return folder, keys, fingerprint

    def _stage(self, dataset: Dataset, workdir: Path) -> str:
        """Images, dataset.jsonl and classes.txt under ``datasets/<fingerprint>/``; returns the JSON Lines URI."""
        from multicloud_cv.staging import stage

        folder, keys, fingerprint = self._write_jsonl(dataset, workdir)
        base = f"{self._root()}/datasets/{fingerprint}"
        stage(keys, f"{base}/images")
        bucket = self.clients.storage().bucket(self.options.bucket)
        prefix = f"{self.options.prefix}/" if self.options.prefix else ""
        for name in ("dataset.jsonl", "classes.txt"):
            bucket.blob(f"{prefix}datasets/{fingerprint}/{name}").upload_from_filename(str(folder / name))
        return f"{base}/dataset.jsonl"

    def _package_uri(self) -> str:
        """The training package in the bucket, uploaded when missing (its name carries its content hash)."""
        from mcv_vertex.package import build_package

        with tempfile.TemporaryDirectory(prefix="mcv-vertex-package-") as tmp:
            tarball = build_package(Path(tmp))
            prefix = f"{self.options.prefix}/" if self.options.prefix else ""
            key = f"{prefix}code/{tarball.name}"
            blob = self.clients.storage().bucket(self.options.bucket).blob(key)
            if not blob.exists():
                blob.upload_from_filename(str(tarball))
        return f"gs://{self.options.bucket}/{key}"

    def _check_bucket(self, location: str) -> None:
        """The bucket's location against the job's (pains.md V4); skipped with a note when not allowed to read it."""
        from google.api_core import exceptions

        try:
            bucket = self.clients.storage().get_bucket(self.options.bucket)
        except exceptions.NotFound:
            raise BadInput(f"bucket {self.options.bucket} does not exist; create it in {location}") from None
        except exceptions.Forbidden as exc:
            log.info("bucket location check skipped: %s", exc.message)
            return
        where = str(bucket.location or "").lower()
        if where and where != location.lower():
            raise BadInput(
                f"The Cloud Storage bucket of gs://{self.options.bucket} is in location {where}. It must be in the "
                f"same regional location as the service location {location}: use a bucket in {location} or "
                f"-o location={where}"
            )

    def _check_access(self) -> None:
        """The caller's and the service agents' access to the bucket (:mod:`mcv_vertex.checks`)."""
        from mcv_vertex.checks import bucket_access

        options = self.options
        found = bucket_access(
            self.clients.storage(), options.bucket or "", self._project_number(), options.route, options.service_account
        )
        for note in found.notes:
            log.info("%s", note)
        for warning in found.warnings:
            log.warning("%s", warning)
        if found.errors:
            raise BadInput(found.errors[0])

    def _check_quota(self, spec: TrainingSpec) -> None:
        """The accelerators' regional quota limits against what the pools need (:mod:`mcv_vertex.checks`)."""
        from mcv_vertex.checks import accelerator_quota
        from mcv_vertex.machines import quota_metric

        needed: dict[str, int] = {}
        for pool in self._pools(spec):
            metric = quota_metric(pool.accelerator_type)
            if metric:
                needed[metric] = needed.get(metric, 0) + pool.replica_count * pool.accelerator_count
        found = accelerator_quota(
            self.clients.credentials(), self.clients.project, self.options.location, needed, self.options.api_endpoint
        )
        for note in found.notes:
            log.info("%s", note)
        if found.errors:
            raise BadInput(found.errors[0])

    def _project_number(self) -> str | None:
        """The setting, else Resource Manager's answer; None (the check is skipped) when it cannot be known."""
        options = self.options
        if options.project_number or options.emulated():
            return options.project_number
        try:
            from google.cloud import resourcemanager_v3

            client = resourcemanager_v3.ProjectsClient(credentials=self.clients.credentials())
            return str(client.get_project(name=f"projects/{self.clients.project}").name).rsplit("/", 1)[-1]
        except Exception as exc:  # no permission, API disabled: skip the check, say why
            log.info("the project number could not be looked up (%s); set -o project_number=", exc)
            return None

    # -- the plan -----------------------------------------------------------------------------

    def _args(self, spec: TrainingSpec, dataset_uri: str) -> list[str]:
        args = ["--dataset", dataset_uri, "--task", spec.task.value]
        if spec.epochs is not None:
            args += ["--epochs", str(spec.epochs)]
        for key, value in sorted(spec.hyperparameters.items()):
            args += ["--hp", f"{key}={value}"]
        return args

    def _executor_image(self, pools: list[Pool]) -> str:
        from mcv_vertex.machines import compute_kind

        return self.options.training_image or TRAINING_IMAGES[compute_kind(pools)]

    def _custom_job(
        self, spec: TrainingSpec, job_id: str, dataset_uri: str, package_uri: str, fallback: Fallback | None = None
    ) -> Any:
        from mcv_vertex.machines import with_accelerator

        pools = self._pools(spec)
        if fallback is not None and fallback.accelerator_type:
            pools = [with_accelerator(p, fallback.accelerator_type) for p in pools]
        return requests.custom_job(
            display_name=f"mcv-{job_id}",
            pools=pools,
            executor_image=self._executor_image(pools),
            package_uri=package_uri,
            args=self._args(spec, dataset_uri),
            base_output_dir=f"{self._root()}/jobs/{job_id}",
            service_account=self.options.service_account,
            labels={"mcv-job": job_id, "mcv-provider": self.name},
        )

    def _plan(self, spec: TrainingSpec) -> list[PlannedRequest]:
        from mcv_vertex import automl

        with tempfile.TemporaryDirectory(prefix="mcv-vertex-plan-") as tmp:
            _, keys, fingerprint = self._write_jsonl(spec.dataset, Path(tmp))
        base = f"{self._root()}/datasets/{fingerprint}"
        parent = f"projects/{self.options.project or '<project>'}/locations/{self.options.location}"
        planned = [
            PlannedRequest(service="storage", operation="upload", params={"uri": f"{base}/images/{key}"})
            for key in sorted(keys.values())
        ]
        planned += [
            PlannedRequest(service="storage", operation="upload", params={"uri": f"{base}/{name}"})
            for name in ("dataset.jsonl", "classes.txt")
        ]
        labels = {"mcv-job": PLANNED_JOB_ID, "mcv-provider": self.name}
        if self.options.route == "automl":
            settings = automl.settings_for(
                spec.task.value, self.options.model_type, self.options.budget_milli_node_hours
            )
            planned.append(_planned("CreateDataset", parent, requests.image_dataset(f"mcv-{PLANNED_JOB_ID}", labels)))
            planned.append(
                _planned("ImportData", "<dataset>", requests.import_config(f"{base}/dataset.jsonl", spec.task.value))
            )
            pipeline = requests.training_pipeline(f"mcv-{PLANNED_JOB_ID}", "<dataset id>", settings, labels)
            planned.append(_planned("CreateTrainingPipeline", parent, pipeline))
            return planned
        package = f"gs://{self.options.bucket}/{self.options.prefix}/code/<package>.tar.gz"
        planned.append(PlannedRequest(service="storage", operation="upload", params={"uri": package}))
        job = self._custom_job(spec, PLANNED_JOB_ID, f"{base}/dataset.jsonl", package)
        planned.append(_planned("CreateCustomJob", parent, job))
        return planned

    def _estimate_cost(self, spec: TrainingSpec) -> tuple[float | None, list[str]]:
        from mcv_vertex import automl

        location = self.options.location
        if self.options.route == "automl":
            settings = automl.settings_for(
                spec.task.value, self.options.model_type, self.options.budget_milli_node_hours
            )
            hours = settings.budget_milli_node_hours / 1000.0
            cost = self._price("automl_image_training", 1, hours * 3600.0, location)
            return cost, [f"the whole budget of {hours:g} node hours (AutoML may stop earlier when it converges)"]
        total: float | None = 0.0
        notes = ["one hour of the worker pools (our trainer usually takes minutes)"]
        for pool in self._pools(spec):
            for item, count in (
                (pool.machine_type, pool.replica_count),
                (pool.accelerator_type, pool.replica_count * pool.accelerator_count),
            ):
                if not item:
                    continue
                price = self._price(item, count, 3600.0, location)
                if price is None:
                    notes.append(f"no price known for {item} in {location}")
                    total = None
                elif total is not None:
                    total += price
        return (round(total, 6) if total is not None else None), notes

    # -- hooks --------------------------------------------------------------------------------

    def _submit(self, spec: TrainingSpec, job_id: str) -> NativeJob:
        options = self.options
        self._check_bucket(options.location)
        self._check_access()
        state: dict[str, Any] = {
            "route": options.route,
            "classes": list(spec.dataset.classes),
            "location": options.location,
            "task": spec.task.value,
        }
        with tempfile.TemporaryDirectory(prefix="mcv-vertex-") as tmp:
            state["dataset_uri"] = self._stage(spec.dataset, Path(tmp))
        if options.route != "automl":
            self._check_quota(spec)
        if options.route == "automl":
            operation = _retry(
                "CreateDataset",
                lambda: self.clients.datasets().create_dataset(
                    parent=self.clients.parent(),
                    dataset=requests.image_dataset(f"mcv-{job_id}", {"mcv-job": job_id, "mcv-provider": self.name}),
                ),
            )
            state["step"] = "dataset"
            state["operation"] = operation.operation.name
        else:
            state["package_uri"] = self._package_uri()
            state["attempts"] = []
            self._start_custom(spec_dict(spec), job_id, state, None)
        self._save(job_id, spec, state)
        return self._describe(job_id, self.store.job(job_id))

    def _start_custom(
        self, spec: Mapping[str, Any], job_id: str, state: dict[str, Any], fallback: Fallback | None
    ) -> None:
        location = (fallback.location if fallback and fallback.location else None) or state["location"]
        training = spec_from_dict(spec, state)
        job = self._custom_job(training, job_id, state["dataset_uri"], state["package_uri"], fallback)
        created = _retry(
            "CreateCustomJob",
            lambda: self.clients.jobs(location).create_custom_job(parent=self.clients.parent(location), custom_job=job),
        )
        state["job_name"] = created.name
        state["job_location"] = location
        state["attempts"].append(
            {"name": created.name, "location": location, "fallback": fallback.describe() if fallback else None}
        )

    def _save(self, job_id: str, spec: TrainingSpec | None, state: Mapping[str, Any]) -> None:
        record = self.store.job(job_id)
        base = dict(record.spec)
        if spec is not None:
            base.update(spec_dict(spec))
        base["vertex"] = dict(state)
        self.store.update_job(job_id, spec=base)

    def _describe(self, native_id: str, record: JobRecord) -> NativeJob:
        state = dict(record.spec.get("vertex") or {})
        if not state:
            raise NotFound(f"job {record.id} has no Vertex AI state recorded")
        if state.get("route") == "automl":
            return self._describe_automl(record, state)
        return self._describe_custom(record, state)

    def _describe_custom(self, record: JobRecord, state: dict[str, Any]) -> NativeJob:
        location = state.get("job_location") or state["location"]
        job = _retry("GetCustomJob", lambda: self.clients.jobs(location).get_custom_job(name=state["job_name"]))
        native_state = job.state.name
        job_state = JOB_STATES.get(native_state, JobState.RUNNING)
        message = job.error.message if job.error and job.error.message else None
        if job_state is JobState.FAILED and message and CAPACITY_TEXT in message:
            retried = self._capacity_retry(record, state, message)
            if retried is not None:
                return retried
        native = NativeJob(
            native_id=state["job_name"],
            state=job_state,
            native_state=native_state,
            progress=native_state if not message else f"{native_state}: {message}",
            cost_usd=self._custom_cost(job, location),
        )
        if job_state is JobState.FAILED:
            native.failure_reason = message or native_state
        if job_state is JobState.SUCCEEDED:
            artifact = f"{job.job_spec.base_output_directory.output_uri_prefix.rstrip('/')}/model"
            native.metrics = self._task_metrics(artifact)
            native.model = NativeModel(
                native_id=artifact,
                artifact=artifact,
                labels=list(state["classes"]),
                task=record.task,
                info={"route": "custom", "artifact_uri": artifact, "location": state["location"]},
            )
        return native

    def _capacity_retry(self, record: JobRecord, state: dict[str, Any], message: str) -> NativeJob | None:
        """Submit the job again after a stock-out: the next fallback, else the same spec; None when out of tries."""
        attempts = len(state.get("attempts") or [])
        options = self.options
        fallbacks = options.fallback
        if attempts > max(options.capacity_retries, len(fallbacks)):
            return None
        fallback = fallbacks[attempts - 1] if attempts - 1 < len(fallbacks) else None
        log.warning("%s; submitting again (%s)", message, fallback.describe() if fallback else "same spec")
        self._start_custom(record.spec, record.id, state, fallback)
        self._save(record.id, None, state)
        where = fallback.describe() if fallback else state["job_location"]
        return NativeJob(
            native_id=state["job_name"],
            state=JobState.QUEUED,
            native_state="CAPACITY_RETRY",
            progress=f"capacity stock-out; submitted again ({where}), attempt {attempts + 1}",
        )

    def _custom_cost(self, job: Any, location: str) -> float | None:
        start, end = job.start_time, job.end_time
        if not start or not end:
            return None
        seconds = max(0.0, (end - start).total_seconds())
        total = 0.0
        for pool in job.job_spec.worker_pool_specs:
            spec = pool.machine_spec
            for item, count in (
                (spec.machine_type, pool.replica_count),
                (
                    spec.accelerator_type.name if spec.accelerator_count else None,
                    pool.replica_count * spec.accelerator_count,
                ),
            ):
                if not item:
                    continue
                price = self._price(item, count, seconds, location)
                if price is None:
                    return None
                total += price
        return round(total, 6)

    def _task_metrics(self, artifact: str) -> dict[str, float]:
        """The metrics our task wrote beside the model (metrics.json), as the provider-reported metrics."""
        from mcv_vertex.task import read_uri

        try:
            data = json.loads(read_uri(f"{artifact}/metrics.json", self.clients.storage()))
        except Exception as exc:
            log.info("no metrics.json beside the model: %s", exc)
            return {}
        return {k: float(v) for k, v in data.items() if isinstance(v, int | float) and not isinstance(v, bool)}

    def _operation(self, name: str) -> Any:
        from google.longrunning import operations_pb2

        client = self.clients.datasets()
        return _retry(
            "GetOperation", lambda: client.get_operation(request=operations_pb2.GetOperationRequest(name=name))
        )

    def _describe_automl(self, record: JobRecord, state: dict[str, Any]) -> NativeJob:
        from google.cloud import aiplatform_v1

        step = state.get("step")
        if state.get("cancelled") and step != "pipeline":
            return NativeJob(native_id=record.id, state=JobState.CANCELLED, native_state="CANCELLED")
        if step in ("dataset", "import"):
            operation = self._operation(state["operation"])
            if not operation.done:
                what = "creating the dataset" if step == "dataset" else "importing the images"
                return NativeJob(native_id=record.id, state=JobState.QUEUED, native_state=step.upper(), progress=what)
            if operation.error and operation.error.code:
                return NativeJob(
                    native_id=record.id,
                    state=JobState.FAILED,
                    native_state=f"{step.upper()}_FAILED",
                    failure_reason=f"{'CreateDataset' if step == 'dataset' else 'ImportData'}: "
                    f"{operation.error.message}",
                )
            if step == "dataset":
                dataset = aiplatform_v1.Dataset.deserialize(operation.response.value)
                state["dataset_name"] = dataset.name
                imported = _retry(
                    "ImportData",
                    lambda: self.clients.datasets().import_data(
                        name=dataset.name,
                        import_configs=[requests.import_config(state["dataset_uri"], state["task"])],
                    ),
                )
                state["step"], state["operation"] = "import", imported.operation.name
                self._save(record.id, None, state)
                return NativeJob(
                    native_id=record.id, state=JobState.QUEUED, native_state="IMPORT", progress="importing the images"
                )
            self._start_pipeline(record, state)
        pipeline = _retry(
            "GetTrainingPipeline", lambda: self.clients.pipelines().get_training_pipeline(name=state["pipeline_name"])
        )
        native_state = pipeline.state.name
        job_state = JOB_STATES.get(native_state, JobState.RUNNING)
        message = pipeline.error.message if pipeline.error and pipeline.error.message else None
        native = NativeJob(
            native_id=pipeline.name,
            state=job_state,
            native_state=native_state,
            progress=native_state if not message else f"{native_state}: {message}",
            cost_usd=self._automl_cost(pipeline),
        )
        if job_state is JobState.FAILED:
            native.failure_reason = message or native_state
        if job_state is JobState.SUCCEEDED:
            model_name = pipeline.model_to_upload.name
            native.model = NativeModel(
                native_id=model_name,
                labels=list(state["classes"]),
                task=record.task,
                info={
                    "route": "automl",
                    "model_name": model_name,
                    "dataset_name": state.get("dataset_name"),
                    "location": state["location"],
                },
            )
        return native

    def _start_pipeline(self, record: JobRecord, state: dict[str, Any]) -> None:
        from mcv_vertex import automl

        options = self.options
        settings = automl.settings_for(state["task"], options.model_type, options.budget_milli_node_hours)
        dataset_id = state["dataset_name"].rsplit("/", 1)[-1]
        pipeline = requests.training_pipeline(
            f"mcv-{record.id}", dataset_id, settings, {"mcv-job": record.id, "mcv-provider": self.name}
        )
        created = _retry(
            "CreateTrainingPipeline",
            lambda: self.clients.pipelines().create_training_pipeline(
                parent=self.clients.parent(), training_pipeline=pipeline
            ),
        )
        state["step"], state["pipeline_name"] = "pipeline", created.name
        self._save(record.id, None, state)

    def _automl_cost(self, pipeline: Any) -> float | None:
        from google.protobuf import json_format

        try:
            metadata = json_format.MessageToDict(pipeline._pb.training_task_metadata)
        except Exception:
            return None
        milli = metadata.get("costMilliNodeHours") if isinstance(metadata, dict) else None
        if milli is None:
            return None
        return self._price("automl_image_training", 1, float(milli) / 1000.0 * 3600.0, self.options.location)

    def _cancel(self, native_id: str) -> None:
        record = next((r for r in self.store.jobs() if r.native_id == native_id), None)
        state = dict(record.spec.get("vertex") or {}) if record else {}
        if state.get("route") == "automl":
            if state.get("pipeline_name"):
                name = state["pipeline_name"]
                _retry("CancelTrainingPipeline", lambda: self.clients.pipelines().cancel_training_pipeline(name=name))
            elif record is not None:
                state["cancelled"] = True
                self._save(record.id, None, state)
            return
        location = state.get("job_location") or self.options.location
        name = state.get("job_name") or native_id
        _retry("CancelCustomJob", lambda: self.clients.jobs(location).cancel_custom_job(name=name))

    def _remove(self, record: JobRecord) -> bool | None:
        """One step of removal: the custom jobs or the pipeline, the Vertex models not deployed, the dataset."""
        state = dict(record.spec.get("vertex") or {})
        if not state:
            return None
        done = True
        for attempt in state.get("attempts") or []:
            done &= self._delete(
                functools.partial(self.clients.jobs(attempt["location"]).delete_custom_job, name=attempt["name"]),
                "DeleteCustomJob",
            )
        if state.get("pipeline_name"):
            done &= self._delete(
                lambda: self.clients.pipelines().delete_training_pipeline(name=state["pipeline_name"]),
                "DeleteTrainingPipeline",
            )
        for model in self.store.models():
            if model.job_id != record.id:
                continue
            names = {str(n) for n in (model.info.get("model_name"), model.info.get("uploaded_model")) if n}
            for name in sorted(names):
                done &= self._delete(functools.partial(self.clients.models().delete_model, name=name), "DeleteModel")
        if state.get("dataset_name"):
            done &= self._delete(
                lambda: self.clients.datasets().delete_dataset(name=state["dataset_name"]), "DeleteDataset"
            )
        return done

    def _delete(self, call: Callable[[], Any], what: str) -> bool:
        """True when the resource is gone (deleted now or already); False while the service refuses (in use)."""
        try:
            operation = _retry(what, call)
        except NotFound:
            return True
        except BadInput as exc:
            log.info("%s refused for now: %s", what, exc)
            return False
        try:
            self._wait_operation(what, operation)
        except NotFound:
            return True
        return True

    def _export(self, model: ModelRecord, fmt: str, workdir: Path) -> Path:
        """The custom route's model folder (ONNX) downloaded from Cloud Storage."""
        if model.info.get("route") != "custom" or not model.artifact:
            raise BadInput(
                f"model {model.id} is an AutoML model: only the custom route's models export as ONNX "
                "(train with -o route=custom)"
            )
        from mcv_vertex.task import download_folder

        return download_folder(model.artifact, workdir / "model", self.clients.storage())


def spec_dict(spec: TrainingSpec) -> dict[str, Any]:
    """What of a spec the record keeps (to submit the job again after a stock-out)."""
    return {"epochs": spec.epochs, "hyperparameters": dict(spec.hyperparameters), "compute": spec.compute}


def spec_from_dict(values: Mapping[str, Any], state: Mapping[str, Any]) -> TrainingSpec:
    """A spec for :meth:`VertexTrainer._custom_job` from the record (the dataset is already staged)."""
    from multicloud_cv.capabilities import Task
    from multicloud_cv.datasets.model import Dataset

    placeholder = Dataset(root=Path("."), classes=list(state["classes"]), images=[], task=state["task"])
    return TrainingSpec(
        dataset=placeholder,
        task=Task(state["task"]),
        epochs=values.get("epochs"),
        hyperparameters=dict(values.get("hyperparameters") or {}),
        compute=values.get("compute"),
    )


def _planned(operation: str, parent: str, message: Any) -> PlannedRequest:
    return PlannedRequest(
        service="aiplatform", operation=operation, params={"parent": parent, "body": requests.as_params(message)}
    )


# -- deploying -----------------------------------------------------------------------------------


class VertexDeployer(_VertexBase, Deployer):
    """Model upload (custom route), endpoint, DeployModel; undeploy and delete."""

    def _deploy(self, model: ModelRecord, endpoint_id: str, ttl_s: float | None) -> NativeEndpoint:
        from mcv_vertex.machines import check_machine

        options = self.options
        errors, _ = check_machine(
            options.deploy_machine_type,
            options.deploy_accelerator_type,
            1 if options.deploy_accelerator_type else 0,
            options.location,
        )
        if errors:
            raise BadInput(errors[0])
        model_name = self._vertex_model(model)
        labels = {"mcv-endpoint": endpoint_id, "mcv-model": model.id}
        operation = _retry(
            "CreateEndpoint",
            lambda: self.clients.endpoints().create_endpoint(
                parent=self.clients.parent(), endpoint=requests.endpoint(f"mcv-{endpoint_id}", labels)
            ),
        )
        endpoint_name = str(self._wait_operation("CreateEndpoint", operation).name)
        deployed = requests.deployed_model(
            model_name,
            f"mcv-{model.id}",
            options.deploy_machine_type,
            options.deploy_accelerator_type,
            options.min_replica_count,
            options.max_replica_count,
        )
        try:
            deploying = _retry(
                "DeployModel",
                lambda: self.clients.endpoints().deploy_model(
                    endpoint=endpoint_name, deployed_model=deployed, traffic_split={"0": 100}
                ),
            )
            self._wait_operation("DeployModel", deploying)
        except BaseException:
            self._delete_endpoint_quietly(endpoint_name)
            raise
        return self._describe_named(endpoint_name, model)

    def _delete_endpoint_quietly(self, name: str) -> None:
        try:
            self._wait_operation("DeleteEndpoint", self.clients.endpoints().delete_endpoint(name=name))
        except Exception as exc:  # the deployment's error matters more; say what is left
            log.warning("could not delete endpoint %s after the failed deployment: %s; delete it by hand", name, exc)

    def _hourly(self, model: ModelRecord) -> float | None:
        from multicloud_cv.cost import hosting_cost_per_hour

        options = self.options
        if model.info.get("route") == "automl":
            item = (
                "automl_image_object_detection_prediction"
                if model.task == "detection"
                else "automl_image_classification_prediction"
            )
        else:
            item = options.deploy_machine_type
        return hosting_cost_per_hour(self.name, item, options.min_replica_count, options.location)

    def _describe_named(self, name: str, model: ModelRecord) -> NativeEndpoint:
        endpoint = _retry("GetEndpoint", lambda: self.clients.endpoints().get_endpoint(name=name))
        deployed = list(endpoint.deployed_models)
        state = EndpointState.READY if deployed else EndpointState.CREATING
        host = self.options.api_endpoint or f"https://{self.options.location}-aiplatform.googleapis.com"
        return NativeEndpoint(
            native_id=endpoint.name,
            state=state,
            native_state="DEPLOYED" if deployed else "NO_MODEL",
            url=f"{host}/v1/{endpoint.name}:predict",
            cost_per_hour_usd=self._hourly(model),
            info={"deployed_model_ids": [d.id for d in deployed]},
        )

    def _describe_endpoint(self, record: EndpointRecord) -> NativeEndpoint:
        return self._describe_named(record.native_id or "", self.store.model(record.model_id))

    def _undeploy(self, record: EndpointRecord) -> None:
        name = record.native_id or ""
        endpoint = _retry("GetEndpoint", lambda: self.clients.endpoints().get_endpoint(name=name))
        for deployed in endpoint.deployed_models:
            operation = _retry(
                "UndeployModel",
                functools.partial(
                    self.clients.endpoints().undeploy_model, endpoint=name, deployed_model_id=deployed.id
                ),
            )
            self._wait_operation("UndeployModel", operation)
        self._wait_operation(
            "DeleteEndpoint", _retry("DeleteEndpoint", lambda: self.clients.endpoints().delete_endpoint(name=name))
        )


# -- predicting ----------------------------------------------------------------------------------


class VertexPredictor(_VertexBase, Predictor):
    """Endpoint predict with ``{content, mimeType}`` instances; BatchPredictionJob for batches."""

    def _predict(self, endpoint: EndpointRecord, model: ModelRecord, image: bytes, params: PredictParams) -> Prediction:
        from google.protobuf import json_format, struct_pb2

        mime = _mime(image)
        instance = json_format.ParseDict(
            {"content": base64.b64encode(image).decode(), "mimeType": mime}, struct_pb2.Value()
        )
        parameters = json_format.ParseDict(
            {
                "confidenceThreshold": params.threshold if params.threshold is not None else 0.0,
                "maxPredictions": params.top_k or (5 if (model.task or "classification") != "detection" else 100),
            },
            struct_pb2.Value(),
        )
        name = endpoint.native_id or ""
        started = time.perf_counter()
        try:
            answer = _retry(
                "Predict",
                lambda: self.clients.predictions().predict(endpoint=name, instances=[instance], parameters=parameters),
            )
        except BadInput as exc:
            if "payload size" in str(exc).lower():
                raise InvalidImage(str(exc)) from exc
            raise
        latency = (time.perf_counter() - started) * 1000.0
        found = [json_format.MessageToDict(p) for p in answer._pb.predictions]
        if not found:
            raise ServiceError(f"endpoint {endpoint.id} answered no prediction")
        return to_prediction(found[0], model, self.name, params, latency)

    def _transform(
        self, model: ModelRecord, images: list[Path], params: PredictParams, timeout: float | None
    ) -> list[Prediction]:
        """A BatchPredictionJob over the images staged to Cloud Storage; its JSON Lines output read back in order."""
        from multicloud_cv.runs import new_id
        from multicloud_cv.staging import stage
        from multicloud_cv.waiting import poll

        options = self.options
        if not options.bucket:
            raise ConfigError("setting 'bucket' is not set: pass -o bucket=NAME")
        batch_id = new_id("batch")
        root = f"gs://{options.bucket}/{options.prefix}/batch/{batch_id}"
        keys = {path: f"{n:06d}{path.suffix.lower()}" for n, path in enumerate(images)}
        stage(keys, f"{root}/input")
        uris = [f"{root}/input/{keys[path]}" for path in images]
        lines = [
            json.dumps({"content": uri, "mimeType": _mime(path.read_bytes()[:16])})
            for uri, path in zip(uris, images, strict=True)
        ]
        prefix = f"{options.prefix}/" if options.prefix else ""
        bucket = self.clients.storage().bucket(options.bucket)
        bucket.blob(f"{prefix}batch/{batch_id}/instances.jsonl").upload_from_string("\n".join(lines) + "\n")
        job = requests.batch_prediction_job(
            f"mcv-{batch_id}",
            self._vertex_model(model),
            f"{root}/instances.jsonl",
            f"{root}/output",
            options.deploy_machine_type,
        )
        created = _retry(
            "CreateBatchPredictionJob",
            lambda: self.clients.jobs().create_batch_prediction_job(
                parent=self.clients.parent(), batch_prediction_job=job
            ),
        )
        final = poll(
            lambda: _retry(
                "GetBatchPredictionJob", lambda: self.clients.jobs().get_batch_prediction_job(name=created.name)
            ),
            lambda j: JOB_STATES.get(j.state.name, JobState.RUNNING).is_terminal(),
            self.poll_schedule(),
            timeout=timeout,
            what=f"batch prediction {created.name}",
            hint="it keeps running at Vertex AI; cancel it in the console if it is no longer wanted",
        )
        if JOB_STATES.get(final.state.name) is not JobState.SUCCEEDED:
            raise ServiceError(f"batch prediction {created.name} ended {final.state.name}: {final.error.message}")
        out_dir = final.output_info.gcs_output_directory
        out_bucket, _, out_prefix = out_dir.removeprefix("gs://").partition("/")
        answers: dict[str, dict[str, Any]] = {}
        for blob in self.clients.storage().list_blobs(out_bucket, prefix=out_prefix):
            for line in blob.download_as_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    answers[str(row["instance"]["content"])] = row["prediction"]
        missing = [uri for uri in uris if uri not in answers]
        if missing:
            raise ServiceError(
                f"batch prediction {created.name} has no answer for {len(missing)} image(s), e.g. {missing[0]}"
            )
        return [to_prediction(answers[uri], model, self.name, params, 0.0) for uri in uris]


def _mime(image: bytes) -> str:
    if image[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if image[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if image[:2] == b"BM":
        return "image/bmp"
    if image[:4] == b"GIF8":
        return "image/gif"
    raise InvalidImage("not a JPEG, PNG, BMP or GIF image: Vertex AI image models take those")


def to_prediction(
    found: Mapping[str, Any], model: ModelRecord, provider: str, params: PredictParams, latency_ms: float
) -> Prediction:
    """One AutoML-format prediction (``ids``, ``displayNames``, ``confidences``, ``bboxes`` as ``[xMin, xMax, yMin,
    yMax]``) in the shared schema."""
    from multicloud_cv.schema import Box, Detection, LabelScore, Prediction

    task = model.task or "classification"
    index = {name: n for n, name in enumerate(model.labels)}
    names = list(found.get("displayNames") or [])
    confidences = [float(c) for c in found.get("confidences") or []]
    boxes = list(found.get("bboxes") or [])
    labels: list[LabelScore] = []
    detections: list[Detection] = []
    for n, name in enumerate(names):
        if name not in index:
            raise ServiceError(f"the endpoint answered label '{name}', which model {model.id} does not have")
        confidence = min(1.0, max(0.0, confidences[n] if n < len(confidences) else 0.0))
        if params.threshold is not None and confidence < params.threshold:
            continue
        if task == "detection":
            if n >= len(boxes):
                continue
            x_min, x_max, y_min, y_max = (float(v) for v in boxes[n])
            x0, x1 = max(0.0, x_min), min(1.0, x_max)
            y0, y1 = max(0.0, y_min), min(1.0, y_max)
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
        raw=dict(found),
    )


__all__ = ["VertexDeployer", "VertexPredictor", "VertexTrainer", "to_prediction"]
