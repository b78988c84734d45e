"""The emulated Vertex AI v1 services: resources, long-running operations, state walks and the rules enforced.

:class:`VertexService` serves the RPCs of JobService (custom and batch prediction jobs), PipelineService
(AutoML image training pipelines), DatasetService, ModelService, EndpointService, PredictionService and
GetOperation (see :meth:`VertexService.routes`). Resources are the SDK's proto-plus messages, named
``projects/{p}/locations/{l}/{collection}/{numeric id}``.

Long-running operations: the RPC answers ``{"name": ".../operations/{id}", "metadata", "done": false}``;
the work runs in a thread and the operation turns ``done`` (with ``response`` carrying ``@type``, or ``error``
a ``google.rpc.Status``) no sooner than ``pace`` seconds later. Jobs walk ``JOB_STATE_QUEUED``, ``PENDING``,
``RUNNING`` and end ``SUCCEEDED`` / ``FAILED`` / ``CANCELLED`` (cancel: ``CANCELLING`` first); pipelines the
same ``PIPELINE_STATE_*`` names. Each state lasts at least ``pace``.

Rules (400 INVALID_ARGUMENT unless noted):

* machine specs (custom job pools, dedicated resources) through :func:`mcv_vertex.machines.check_machine`;
* a ``base_output_dir`` / batch output bucket must exist and be in the job's region (FAILED_PRECONDITION,
  pains.md V4's text);
* AutoML: the training definition must be the image classification / object detection schema; its inputs are
  checked with :func:`mcv_vertex.automl.check`; the dataset must exist; a label with fewer than
  :data:`mcv_vertex.automl.MIN_IMAGES_PER_LABEL` images (detection: annotations) fails the pipeline;
* ImportData: an image import schema and gs:// sources; lines read from GCS, every image must exist (else the
  operation ends with an error naming it);
* Predict: body over 1,572,864 bytes refused; an endpoint with nothing deployed is FAILED_PRECONDITION;
* deletes: a running job, an endpoint with deployed models, a model deployed somewhere: FAILED_PRECONDITION;
* custom jobs run ``python -m mcv_vertex.task`` for pool 0's ``python_package_spec`` only (the package URIs must
  exist); the local engine is single-node: only the chief runs, ``CLUSTER_SPEC``/``TF_CONFIG`` describe the rest.
  Each job is forked from a pre-imported parent (:mod:`mcv_vertex.emulator.prefork`), else a fresh interpreter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcv_vertex.emulator import texts
from mcv_vertex.emulator.gcs import Storage, split
from mcv_vertex.emulator.prefork import ForkedJob, Prefork
from mcv_vertex.emulator.rest import Call, RestService, Route, route
from mcv_vertex.emulator.texts import error, invalid, not_found, precondition, rpc_status
from mcv_vertex.emulator.work import AutoMLPredictor, CustomPredictor, Item, Predictor, task_environment, train_automl
from multicloud_cv.emulation.faults import FaultBook
from multicloud_cv.emulation.protocol import ApiError
from multicloud_cv.emulation.training import Limits, TrainingStopped

log = logging.getLogger(__name__)

TYPE_PREFIX = "type.googleapis.com/"
IMAGE_METADATA_SCHEMA = "gs://google-cloud-aiplatform/schema/dataset/metadata/image_1.0.0.yaml"
_DEFINITIONS = "gs://google-cloud-aiplatform/schema/trainingjob/definition/"
AUTOML_DEFINITIONS = {
    _DEFINITIONS + "automl_image_classification_1.0.0.yaml": "classification",
    _DEFINITIONS + "automl_image_object_detection_1.0.0.yaml": "object_detection",
}
AUTOML_INPUT_KEYS = frozenset(
    {"modelType", "budgetMilliNodeHours", "multiLabel", "disableEarlyStopping", "baseModelId", "uptrainBaseModelId"}
)
ML_USE = "aiplatform.googleapis.com/ml_use"
_FILTER = re.compile(r'^\s*labels\.aiplatform\.googleapis\.com/ml_use\s*=\s*"?(training|validation|test)"?\s*$')
KINDS = ("customJobs", "trainingPipelines", "datasets", "models", "endpoints", "batchPredictionJobs")
JOB_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "PAUSED", "EXPIRED")


def v1() -> Any:
    """``google.cloud.aiplatform_v1`` (imported when first needed)."""
    from google.cloud import aiplatform_v1

    return aiplatform_v1


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def dump(message: Any) -> dict[str, Any]:
    """A proto-plus message as the REST JSON the service answers (camelCase, enum names, no empty fields)."""
    text = type(message).to_json(
        message, use_integers_for_enums=False, always_print_fields_with_no_presence=False, indent=None
    )
    return dict(json.loads(text))


def typed(message: Any) -> dict[str, Any]:
    """``dump`` with the ``@type`` an ``Any`` (operation response or metadata) carries."""
    return {"@type": TYPE_PREFIX + type(message).pb(message).DESCRIPTOR.full_name, **dump(message)}


def enum_name(value: Any) -> str | None:
    """An enum field's name (``None`` for the unspecified value)."""
    name = getattr(value, "name", None) or str(value)
    return None if name.endswith("_UNSPECIFIED") or name == "0" else name


@dataclass
class Record:
    """A live resource and what the emulator keeps beside its message."""

    kind: str
    message: Any
    cancel: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen[bytes] | ForkedJob | None = None
    items: dict[str, Item] = field(default_factory=dict)  # datasets: uri -> item
    task: str | None = None  # datasets and models
    classes: list[str] = field(default_factory=list)  # AutoML models
    model_dir: Path | None = None  # AutoML models
    predictors: dict[str, Predictor] = field(default_factory=dict)  # endpoints: deployed model id -> predictor
    deploying: set[str] = field(default_factory=set)  # models: endpoints deploying it


@dataclass
class Operation:
    """A long-running operation's JSON state."""

    name: str
    metadata: dict[str, Any]
    done: bool = False
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    def json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"name": self.name, "metadata": self.metadata, "done": self.done}
        if self.done and self.error is not None:
            answer["error"] = self.error
        elif self.done:
            answer["response"] = self.response or {"@type": TYPE_PREFIX + "google.protobuf.Empty"}
        return answer


class VertexService(RestService):
    """The emulated services (see the module docstring). Thread-safe."""

    def __init__(
        self,
        *,
        faults: FaultBook,
        project: str,
        location: str,
        storage: Storage,
        state_dir: Path,
        pace: float,
        limits: Limits,
        closing: threading.Event,
        job_timeout: float = 900.0,
    ) -> None:
        super().__init__(faults, project)
        from mcv_vertex.emulator.quotas import QuotaBook

        self.quotas = QuotaBook()
        self.location = location
        self.storage = storage
        self.state_dir = state_dir
        self.pace = pace
        self.limits = limits
        self.closing = closing
        self.job_timeout = job_timeout
        self.lock = threading.RLock()
        self.records: dict[str, dict[str, Record]] = {kind: {} for kind in KINDS}
        self.operations: dict[str, Operation] = {}
        self.failures: list[dict[str, Any]] = []
        self._ids = 1_000_000_000_000 + int(hashlib.sha1(project.encode()).hexdigest()[:6], 16) * 1000
        self._threads: list[threading.Thread] = []
        self.prefork = Prefork()

    # ------------------------------------------------------------------------------------------ plumbing

    def routes(self) -> list[Route]:
        jobs, batch, pipes = "{LOCATION}/customJobs", "{LOCATION}/batchPredictionJobs", "{LOCATION}/trainingPipelines"
        one = r"/(?P<id>[^/:]+)"
        return [
            route(
                "GET",
                r"/(?:ui|v1)/projects/(?P<project>[^/:]+)/locations/(?P<location>[^/:]+)/operations" + one,
                "GetOperation",
                self.get_operation,
            ),
            route(
                "GET",
                r"/v1/projects/(?P<project>[^/:]+)/locations/global/services/aiplatform\.googleapis\.com/quotaInfos",
                "ListQuotaInfos",
                lambda c: {"quotaInfos": self.quotas.quota_infos(c.params["project"])},
            ),
            route("POST", jobs, "CreateCustomJob", self.create_custom_job),
            route("GET", jobs, "ListCustomJobs", self.list_custom_jobs),
            route("GET", jobs + one, "GetCustomJob", lambda c: self.get(c, "customJobs")),
            route("POST", jobs + one + ":cancel", "CancelCustomJob", lambda c: self.cancel(c, "customJobs")),
            route("DELETE", jobs + one, "DeleteCustomJob", lambda c: self.delete_job(c, "customJobs")),
            route("POST", batch, "CreateBatchPredictionJob", self.create_batch_job),
            route("GET", batch + one, "GetBatchPredictionJob", lambda c: self.get(c, "batchPredictionJobs")),
            route(
                "POST",
                batch + one + ":cancel",
                "CancelBatchPredictionJob",
                lambda c: self.cancel(c, "batchPredictionJobs"),
            ),
            route(
                "DELETE", batch + one, "DeleteBatchPredictionJob", lambda c: self.delete_job(c, "batchPredictionJobs")
            ),
            route("POST", pipes, "CreateTrainingPipeline", self.create_pipeline),
            route("GET", pipes + one, "GetTrainingPipeline", lambda c: self.get(c, "trainingPipelines")),
            route(
                "POST", pipes + one + ":cancel", "CancelTrainingPipeline", lambda c: self.cancel(c, "trainingPipelines")
            ),
            route("DELETE", pipes + one, "DeleteTrainingPipeline", lambda c: self.delete_job(c, "trainingPipelines")),
            route("POST", "{LOCATION}/datasets", "CreateDataset", self.create_dataset),
            route("GET", "{LOCATION}/datasets" + one, "GetDataset", lambda c: self.get(c, "datasets")),
            route("DELETE", "{LOCATION}/datasets" + one, "DeleteDataset", self.delete_dataset),
            route("POST", "{LOCATION}/datasets" + one + ":import", "ImportData", self.import_data),
            route("POST", "{LOCATION}/models:upload", "UploadModel", self.upload_model),
            route("GET", "{LOCATION}/models" + one, "GetModel", lambda c: self.get(c, "models")),
            route("DELETE", "{LOCATION}/models" + one, "DeleteModel", self.delete_model),
            route("POST", "{LOCATION}/endpoints", "CreateEndpoint", self.create_endpoint),
            route("GET", "{LOCATION}/endpoints" + one, "GetEndpoint", lambda c: self.get(c, "endpoints")),
            route("DELETE", "{LOCATION}/endpoints" + one, "DeleteEndpoint", self.delete_endpoint),
            route("POST", "{LOCATION}/endpoints" + one + ":deployModel", "DeployModel", self.deploy_model),
            route("POST", "{LOCATION}/endpoints" + one + ":undeployModel", "UndeployModel", self.undeploy_model),
            route("POST", "{LOCATION}/endpoints" + one + ":predict", "Predict", self.predict),
        ]

    def new_id(self) -> str:
        with self.lock:
            self._ids += 1
            return str(self._ids)

    def start_thread(self, name: str, target: Callable[[], None]) -> None:
        """Run ``target`` in a daemon thread that :meth:`join` waits for."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        with self.lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def join(self, timeout: float) -> list[str]:
        """Kill job processes and wait for the worker threads (after ``closing`` is set); those still alive."""
        with self.lock:
            threads = list(self._threads)
            for records in self.records.values():
                for record in records.values():
                    record.cancel.set()
                    if record.process is not None and record.process.poll() is None:
                        record.process.kill()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.prefork.close()
        return [t.name for t in threads if t.is_alive()]

    def resources(self, kind: str) -> list[str]:
        """Names of the live resources of ``kind``."""
        if kind not in self.records:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        with self.lock:
            return list(self.records[kind])

    def fail_next(self, message: str, code: int) -> None:
        """The next custom job, batch job or pipeline created ends FAILED with this status."""
        with self.lock:
            self.failures.append(rpc_status(code, message))

    def _take_failure(self) -> dict[str, Any] | None:
        with self.lock:
            return self.failures.pop(0) if self.failures else None

    def _check_location(self, call: Call) -> None:
        location = call.params["location"]
        if not re.fullmatch(r"[a-z]+-[a-z]+[0-9]+", location):
            raise invalid(f"Location {location} is not a Vertex AI region (e.g. {self.location}).")

    def record(self, kind: str, name: str) -> Record:
        with self.lock:
            found = self.records[kind].get(name)
        if found is None:
            raise not_found(name)
        return found

    def get(self, call: Call, kind: str) -> dict[str, Any]:
        record = self.record(kind, call.name(kind))
        with self.lock:
            return dump(record.message)

    def _sleep(self, seconds: float, record: Record | None = None) -> bool:
        """Wait ``seconds``; True when the record was cancelled or the emulator is closing."""
        deadline = time.monotonic() + seconds
        while True:
            if self.closing.is_set() or (record is not None and record.cancel.is_set()):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            (record.cancel if record is not None else self.closing).wait(min(left, 0.05))

    # -------------------------------------------------------------------------------------- operations

    def operation(
        self, call: Call, metadata_type: str, work: Callable[[], Any], name: str | None = None
    ) -> dict[str, Any]:
        """Start a long-running operation running ``work`` (returns the response message or ``None``)."""
        stamp = now().isoformat().replace("+00:00", "Z")
        op = Operation(
            name=f"{call.parent}/operations/{self.new_id()}",
            metadata={
                "@type": f"{TYPE_PREFIX}google.cloud.aiplatform.v1.{metadata_type}",
                "genericMetadata": {"createTime": stamp, "updateTime": stamp},
            },
        )
        first = op.json()
        with self.lock:
            self.operations[op.name] = op

        def run() -> None:
            started = time.monotonic()
            response: dict[str, Any] | None = None
            failure: dict[str, Any] | None = None
            try:
                result = work()
                response = typed(result) if result is not None else None
            except ApiError as err:
                failure = rpc_status(err.code, err.message)
            except Exception as exc:  # an emulator bug: the operation fails as the service's internal error
                log.exception("operation %s failed inside the emulator", op.name)
                failure = rpc_status("INTERNAL", f"The emulator failed: {exc!r}")
            self._sleep(self.pace - (time.monotonic() - started))
            with self.lock:
                op.response, op.error, op.done = response, failure, True

        self.start_thread(f"vertex-op-{name or metadata_type}", run)
        return first

    def get_operation(self, call: Call) -> dict[str, Any]:
        name = f"projects/{call.params['project']}/locations/{call.params['location']}/operations/{call.params['id']}"
        with self.lock:
            op = self.operations.get(name)
            if op is None:
                raise error("NOT_FOUND", f"Operation {name} not found.")
            return op.json()

    # ------------------------------------------------------------------------------------------- checks

    def check_machine_spec(self, spec: Any, location: str, where: str) -> None:
        """A MachineSpec through :func:`mcv_vertex.machines.check_machine` (400 on the first error)."""
        from mcv_vertex.machines import check_machine

        if not spec.machine_type:
            raise invalid(f"{where}.machine_type must be set.")
        number = int(type(spec).pb(spec).accelerator_type)  # the raw value: unknown numbers stay numbers
        known = {member.value: member.name for member in v1().AcceleratorType}
        accelerator = enum_name(known.get(number, str(number)))
        errors, warnings = check_machine(spec.machine_type, accelerator, int(spec.accelerator_count), location)
        for warning in warnings:
            log.debug("%s: %s", where, warning)
        if errors:
            raise invalid(" ".join(errors))

    def check_bucket(self, uri: str, location: str, where: str) -> None:
        """``uri``'s bucket exists and is in ``location`` (pains.md V4)."""
        try:
            bucket, _ = split(uri)
        except ValueError:
            raise invalid(f"{where} must be a gs:// URI, got {uri!r}.") from None
        bucket_location = self.storage.location(bucket)
        if bucket_location is None:
            raise precondition(f"The Cloud Storage bucket gs://{bucket} does not exist.")
        if bucket_location.lower() != location.lower():
            raise precondition(texts.bucket_region_mismatch(bucket, bucket_location, location))

    # ------------------------------------------------------------------------------------------- states

    def set_state(self, record: Record, state: str, status: dict[str, Any] | None = None) -> None:
        """Move a job or pipeline to ``state`` (a short name: RUNNING ...), stamping its times."""
        message = record.message
        pipeline = record.kind == "trainingPipelines"
        enum = v1().PipelineState if pipeline else v1().JobState
        stamp = now()
        with self.lock:
            message.state = enum[("PIPELINE_STATE_" if pipeline else "JOB_STATE_") + state]
            message.update_time = stamp
            if state == "RUNNING" and not message.start_time:
                message.start_time = stamp
            if state in JOB_TERMINAL:
                message.end_time = stamp
            if status is not None:
                message.error = _status(status)

    def state(self, record: Record) -> str:
        with self.lock:
            return str(record.message.state.name).split("_STATE_")[-1]

    def walk(self, record: Record, work: Callable[[], dict[str, Any] | None]) -> None:
        """QUEUED, PENDING, RUNNING (each >= pace), ``work`` (None: success, else a status), then the end state."""
        failure = self._take_failure()
        try:
            for state in ("PENDING", "RUNNING"):
                if self._sleep(self.pace, record):
                    break
                self.set_state(record, state)
            else:
                started = time.monotonic()
                status = failure if failure is not None else work()
                if not record.cancel.is_set():
                    self._sleep(self.pace - (time.monotonic() - started))
                    if not record.cancel.is_set():
                        self.set_state(record, "FAILED" if status else "SUCCEEDED", status)
                        return
        except Exception as exc:  # an emulator bug: the job fails as the service's internal error would
            log.exception("%s failed inside the emulator", record.message.name)
            self.set_state(record, "FAILED", rpc_status("INTERNAL", f"The emulator failed: {exc!r}"))
            return
        if self.closing.is_set():
            return
        if self.state(record) != "CANCELLING":
            self.set_state(record, "CANCELLING")
        time.sleep(self.pace)
        self.set_state(record, "CANCELLED", rpc_status("CANCELLED", texts.CANCELLED_MESSAGE))

    def cancel(self, call: Call, kind: str) -> dict[str, Any]:
        record = self.record(kind, call.name(kind))
        with self.lock:
            state = self.state(record)
            if state in JOB_TERMINAL or state == "CANCELLING":
                raise precondition(f"Cannot cancel {record.message.name}: it is already in state {state}.")
            record.cancel.set()
            if record.process is not None and record.process.poll() is None:
                record.process.kill()
        self.set_state(record, "CANCELLING")
        return {}

    def delete_job(self, call: Call, kind: str) -> dict[str, Any]:
        name = call.name(kind)
        record = self.record(kind, name)
        with self.lock:
            state = self.state(record)
            if state not in JOB_TERMINAL:
                full = record.message.state.name
                raise precondition(f"{name} is in state {full}; cancel it and wait for it to end before deleting it.")
            del self.records[kind][name]
        return self.operation(call, "DeleteOperationMetadata", lambda: None, "delete")

    # ----------------------------------------------------------------------------------------- custom jobs

    def create_custom_job(self, call: Call) -> dict[str, Any]:
        self._check_location(call)
        location = call.params["location"]
        job = call.message(v1().CustomJob)
        if not job.display_name:
            raise invalid("CustomJob.display_name must be set.")
        pools = list(job.job_spec.worker_pool_specs)
        if not pools:
            raise invalid("CustomJob.job_spec.worker_pool_specs must have at least one worker pool.")
        for i, pool in enumerate(pools):
            if i == 0 and pool.replica_count < 1:
                raise invalid("worker_pool_specs[0].replica_count must be 1 (the chief).")
            if pool.replica_count < 1 and not pool.machine_spec.machine_type:
                continue  # an empty placeholder pool
            self.check_machine_spec(pool.machine_spec, location, f"worker_pool_specs[{i}].machine_spec")
            spec = pool.python_package_spec
            if "python_package_spec" in pool and not list(spec.package_uris):
                raise invalid(f"worker_pool_specs[{i}].python_package_spec.package_uris must not be empty.")
        base = job.job_spec.base_output_directory.output_uri_prefix
        if base:
            self.check_bucket(base, location, "job_spec.base_output_directory.output_uri_prefix")
        job_id = self.new_id()
        job.name = f"{call.parent}/customJobs/{job_id}"
        job.state = v1().JobState.JOB_STATE_QUEUED
        job.create_time = job.update_time = now()
        record = Record("customJobs", job)
        with self.lock:
            self.records["customJobs"][job.name] = record
            answer = dump(job)
        self.start_thread(f"vertex-customjob-{job_id}", lambda: self.walk(record, lambda: self.run_package(record)))
        return answer

    def list_custom_jobs(self, call: Call) -> dict[str, Any]:
        with self.lock:
            jobs = [dump(r.message) for n, r in self.records["customJobs"].items() if n.startswith(call.parent + "/")]
        return {"customJobs": jobs} if jobs else {}

    def run_package(self, record: Record) -> dict[str, Any] | None:
        """Run pool 0's ``mcv_vertex.task`` package; ``None`` on success, else the job's error status."""
        with self.lock:
            job = record.message
            pools = list(job.job_spec.worker_pool_specs)
            chief = pools[0]
            base = job.job_spec.base_output_directory.output_uri_prefix
            job_id = job.name.rsplit("/", 1)[-1]
        if "python_package_spec" not in chief or chief.python_package_spec.python_module != "mcv_vertex.task":
            return rpc_status("INVALID_ARGUMENT", texts.PACKAGES_ONLY)
        spec = chief.python_package_spec
        for uri in spec.package_uris:
            try:
                found = self.storage.exists(uri)
            except ValueError:
                found = False
            if not found:
                return rpc_status("NOT_FOUND", f"The Python package {uri} does not exist or cannot be read.")
        env = task_environment(
            storage_host=self.storage.endpoint,
            project=self.project,
            job_id=job_id,
            base_output_dir=base or None,
            pools=[(f"workerpool{i}", int(p.replica_count)) for i, p in enumerate(pools)],
            limits=self.limits,
            extra={e.name: e.value for e in spec.env},
        )
        workdir = self.state_dir / "customJobs" / job_id
        workdir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "mcv_vertex.task", *spec.args]
        log.info("custom job %s runs %s", job_id, " ".join(command))
        with (workdir / "stdout.log").open("wb") as out, (workdir / "stderr.log").open("wb") as err:
            with self.lock:
                if record.cancel.is_set():
                    return None
            # forked from the pre-imported parent when it runs (a warm container), else a fresh interpreter
            forked = self.prefork.start(spec.args, env, workdir, workdir / "stdout.log", workdir / "stderr.log")
            with self.lock:
                process = forked or subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=err)
                record.process = process
                if record.cancel.is_set():
                    process.kill()
            deadline = time.monotonic() + self.job_timeout
            while process.poll() is None:
                if record.cancel.wait(0.05) or self.closing.is_set() or time.monotonic() > deadline:
                    process.kill()
                    process.wait(10)
                    if time.monotonic() > deadline:
                        return rpc_status(
                            "DEADLINE_EXCEEDED", f"The job exceeded the emulator's {self.job_timeout:g} s."
                        )
                    return None
        code = process.returncode
        if code == 0:
            return None
        lines = [line for line in (workdir / "stderr.log").read_text("utf-8", "replace").splitlines() if line.strip()]
        last = lines[-1].strip() if lines else "(no output on stderr)"
        return rpc_status(
            "INVALID_ARGUMENT", f"The replica workerpool0-0 exited with a non-zero status of {code}. {last}"
        )

    # ------------------------------------------------------------------------------------------ datasets

    def create_dataset(self, call: Call) -> dict[str, Any]:
        self._check_location(call)
        dataset = call.message(v1().Dataset)
        if not dataset.display_name:
            raise invalid("Dataset.display_name must be set.")
        if dataset.metadata_schema_uri != IMAGE_METADATA_SCHEMA:
            raise invalid(
                f"metadata_schema_uri {dataset.metadata_schema_uri!r} is not served by the emulator; it keeps image "
                f"datasets ({IMAGE_METADATA_SCHEMA})."
            )
        dataset.name = f"{call.parent}/datasets/{self.new_id()}"
        dataset.create_time = dataset.update_time = now()
        with self.lock:
            self.records["datasets"][dataset.name] = Record("datasets", dataset)

        def work() -> Any:
            with self.lock:
                return type(dataset)(dataset)

        return self.operation(call, "CreateDatasetOperationMetadata", work, "create-dataset")

    def delete_dataset(self, call: Call) -> dict[str, Any]:
        name = call.name("datasets")
        self.record("datasets", name)
        with self.lock:
            del self.records["datasets"][name]
        shutil.rmtree(self.state_dir / "datasets" / name.rsplit("/", 1)[-1], ignore_errors=True)
        return self.operation(call, "DeleteOperationMetadata", lambda: None, "delete")

    def import_data(self, call: Call) -> dict[str, Any]:
        from multicloud_cv.datasets.vertex_jsonl import IMPORT_SCHEMA_URIS

        record = self.record("datasets", call.name("datasets"))
        request = call.message(v1().ImportDataRequest)
        configs = list(request.import_configs)
        if not configs:
            raise invalid("ImportDataRequest.import_configs must not be empty.")
        tasks = {uri: task for task, uri in IMPORT_SCHEMA_URIS.items()}
        plan: list[tuple[str, str]] = []
        for i, config in enumerate(configs):
            if config.import_schema_uri not in tasks:
                raise invalid(
                    f"import_configs[{i}].import_schema_uri {config.import_schema_uri!r} is not an image import "
                    f"schema; use one of: {', '.join(sorted(tasks))}"
                )
            uris = list(config.gcs_source.uris)
            if not uris:
                raise invalid(f"import_configs[{i}].gcs_source.uris must not be empty.")
            for uri in uris:
                if not uri.startswith("gs://"):
                    raise invalid(f"import_configs[{i}].gcs_source.uris: {uri!r} is not a gs:// URI.")
                plan.append((uri, tasks[config.import_schema_uri]))
            if record.task is not None and record.task != tasks[config.import_schema_uri]:
                raise invalid(
                    f"The dataset holds {record.task} data; import_configs[{i}] imports "
                    f"{tasks[config.import_schema_uri]} data."
                )
        return self.operation(call, "ImportDataOperationMetadata", lambda: self._import(record, plan), "import")

    def _import(self, record: Record, plan: list[tuple[str, str]]) -> Any:
        from google.api_core import exceptions as gexc
        from PIL import Image

        from multicloud_cv.datasets.vertex_jsonl import read_vertex_jsonl
        from multicloud_cv.errors import DatasetError

        dataset_id = record.message.name.rsplit("/", 1)[-1]
        folder = self.state_dir / "datasets" / dataset_id
        imported: dict[str, Item] = {}
        for uri, task in plan:
            try:
                text = self.storage.read(uri).decode("utf-8")
            except gexc.NotFound:
                raise error("NOT_FOUND", f"The import file {uri} does not exist.") from None
            except UnicodeDecodeError:
                raise invalid(f"The import file {uri} is not UTF-8 text.") from None
            local: dict[str, Path] = {}
            for number, line in enumerate(text.splitlines(), start=1):
                try:
                    image_uri = json.loads(line).get("imageGcsUri") if line.strip() else None
                except (ValueError, AttributeError):
                    raise invalid(f"{uri}:{number}: not a JSON object.") from None
                if not isinstance(image_uri, str) or not image_uri.startswith("gs://"):
                    if line.strip():
                        raise invalid(f"{uri}:{number}: imageGcsUri must be a gs:// URI.")
                    continue
                target = (
                    folder / "images" / (hashlib.sha1(image_uri.encode()).hexdigest()[:20] + Path(image_uri).suffix)
                )
                try:
                    if not target.is_file():
                        self.storage.download(image_uri, target)
                except (gexc.NotFound, ValueError):
                    raise error("NOT_FOUND", f"{uri}:{number}: the image {image_uri} does not exist.") from None
                local[image_uri] = target

            def size_of(ref: str, local: dict[str, Path] = local) -> tuple[int, int]:
                with Image.open(local[ref]) as opened:
                    return opened.size

            with tempfile.TemporaryDirectory(dir=self.state_dir) as tmp:
                copy = Path(tmp) / "import.jsonl"
                copy.write_text(text, encoding="utf-8")
                try:
                    data = read_vertex_jsonl(copy, image_size_of=size_of)
                except DatasetError as exc:
                    raise invalid(str(exc).replace(str(copy), uri)) from None
            if data.images and data.task != task and not (task == "multilabel" and data.task == "classification"):
                raise invalid(f"{uri} holds {data.task} annotations but was imported with the {task} schema.")
            for image in data.images:
                width, height = image.width or 0, image.height or 0
                if not width:
                    width, height = size_of(image.path)
                names = [data.classes[i] for i in image.labels]
                boxes = [
                    (data.classes[b.label], b.x_min / width, b.y_min / height, b.x_max / width, b.y_max / height)
                    for b in image.boxes
                ]
                ml_use = {"train": "training", "validation": "validation", "test": "test"}.get(image.split or "")
                imported[image.path] = Item(image.path, local[image.path], names, boxes, ml_use, width, height)
        with self.lock:
            record.items.update(imported)
            record.task = record.task or (plan[0][1] if plan else None)
            record.message.data_item_count = len(record.items)
            record.message.update_time = now()
        return v1().ImportDataResponse()

    # ----------------------------------------------------------------------------------------- pipelines

    def create_pipeline(self, call: Call) -> dict[str, Any]:
        from google.protobuf import json_format

        from mcv_vertex import automl

        self._check_location(call)
        pipeline = call.message(v1().TrainingPipeline)
        if not pipeline.display_name:
            raise invalid("TrainingPipeline.display_name must be set.")
        prediction_type = AUTOML_DEFINITIONS.get(pipeline.training_task_definition)
        if prediction_type is None:
            raise invalid(
                f"training_task_definition {pipeline.training_task_definition!r} is not emulated; the emulator trains "
                f"AutoML image models: {', '.join(sorted(AUTOML_DEFINITIONS))}"
            )
        inputs = json_format.MessageToDict(type(pipeline).pb(pipeline).training_task_inputs)
        if not isinstance(inputs, dict):
            raise invalid("training_task_inputs must be an object.")
        unknown = sorted(set(inputs) - AUTOML_INPUT_KEYS)
        if unknown:
            raise invalid(f"training_task_inputs has unknown fields: {', '.join(unknown)}.")
        task = "detection" if prediction_type == "object_detection" else "classification"
        if task == "classification" and inputs.get("multiLabel"):
            task = "multilabel"
        model_type = str(inputs.get("modelType") or automl.default_model_type(task))
        budget: int | None = None
        if "budgetMilliNodeHours" in inputs:
            try:
                budget = int(inputs["budgetMilliNodeHours"])
            except (TypeError, ValueError):
                raise invalid(
                    f"budgetMilliNodeHours must be an integer, got {inputs['budgetMilliNodeHours']!r}."
                ) from None
        problems = automl.check(task, model_type, budget)
        if problems:
            raise invalid(" ".join(problems))
        config = pipeline.input_data_config
        if not config.dataset_id:
            raise invalid("input_data_config.dataset_id must be set.")
        dataset = self.record("datasets", f"{call.parent}/datasets/{config.dataset_id}")
        if "filter_split" in config:
            for which in ("training_filter", "validation_filter", "test_filter"):
                text = getattr(config.filter_split, which)
                if text and not _FILTER.match(text):
                    raise invalid(
                        f"input_data_config.filter_split.{which} {text!r}: the emulator understands "
                        f"labels.{ML_USE}=training|validation|test only."
                    )
        if "fraction_split" in config:
            fractions = config.fraction_split
            total = fractions.training_fraction + fractions.validation_fraction + fractions.test_fraction
            if total > 1.0 + 1e-6:
                raise invalid(
                    f"input_data_config.fraction_split fractions sum to {total:g}; they must sum to at most 1."
                )
        pipeline_id = self.new_id()
        pipeline.name = f"{call.parent}/trainingPipelines/{pipeline_id}"
        pipeline.state = v1().PipelineState.PIPELINE_STATE_QUEUED
        pipeline.create_time = pipeline.update_time = now()
        if not pipeline.model_to_upload.display_name:
            pipeline.model_to_upload.display_name = pipeline.display_name
        record = Record("trainingPipelines", pipeline, task=task)
        with self.lock:
            self.records["trainingPipelines"][pipeline.name] = record
            answer = dump(pipeline)
        budget_used = budget if budget is not None else automl.BUDGETS[automl.prediction_type(task)][2]
        self.start_thread(
            f"vertex-pipeline-{pipeline_id}",
            lambda: self.walk(record, lambda: self.train_pipeline(record, dataset, budget_used)),
        )
        return answer

    def _split(self, record: Record, items: list[Item]) -> dict[str, list[Item]]:
        config = record.message.input_data_config
        chosen: dict[str, list[Item]] = {"training": [], "validation": [], "test": []}
        if "filter_split" in config:
            wanted = {}
            for which, key in (
                ("training_filter", "training"),
                ("validation_filter", "validation"),
                ("test_filter", "test"),
            ):
                match = _FILTER.match(getattr(config.filter_split, which) or "")
                if match:
                    wanted[match.group(1)] = key
            for item in items:
                if item.ml_use in wanted:
                    chosen[wanted[item.ml_use]].append(item)
            return chosen
        if "fraction_split" not in config and any(item.ml_use for item in items):
            for item in items:
                chosen[item.ml_use or "training"].append(item)
            return chosen
        fractions = config.fraction_split if "fraction_split" in config else None
        train_f = fractions.training_fraction if fractions else 0.8
        val_f = fractions.validation_fraction if fractions else 0.1
        ordered = sorted(items, key=lambda item: hashlib.sha1(item.uri.encode()).hexdigest())
        n_train = round(len(ordered) * train_f)
        n_val = round(len(ordered) * val_f)
        chosen["training"] = ordered[:n_train]
        chosen["validation"] = ordered[n_train : n_train + n_val]
        chosen["test"] = ordered[n_train + n_val :]
        return chosen

    def train_pipeline(self, record: Record, dataset: Record, budget: int) -> dict[str, Any] | None:
        """Check the data, train, create the Model; ``None`` on success, else the pipeline's error status."""
        from mcv_vertex import automl

        task = record.task or "classification"
        with self.lock:
            items = list(dataset.items.values())
            dataset_task = dataset.task
            dataset_name = dataset.message.name
        if not items:
            return rpc_status(
                "FAILED_PRECONDITION", f"The dataset {dataset_name} has no data items; import data first."
            )
        if (dataset_task == "detection") != (task == "detection"):
            return rpc_status(
                "FAILED_PRECONDITION",
                f"The dataset {dataset_name} holds {dataset_task} data; the pipeline trains {task}.",
            )
        counts: dict[str, int] = {}
        for item in items:
            for name in item.labels if task != "detection" else [box[0] for box in item.boxes]:
                counts[name] = counts.get(name, 0) + 1
        few = sorted(name for name, count in counts.items() if count < automl.MIN_IMAGES_PER_LABEL)
        what = "annotations" if task == "detection" else "images"
        if few or len(counts) < (1 if task == "detection" else 2):
            detail = ", ".join(f"{name} ({counts[name]})" for name in few) or f"only {len(counts)} label(s)"
            return rpc_status(
                "FAILED_PRECONDITION",
                f"Not enough data to train: AutoML image training needs at least {automl.MIN_IMAGES_PER_LABEL} "
                f"{what} per label and at least 2 labels; dataset {dataset_name} has too few for: {detail}.",
            )
        parts = self._split(record, items)
        if not parts["training"]:
            return rpc_status("FAILED_PRECONDITION", "The training split selects no data items.")
        classes = sorted(counts)
        pipeline_id = record.message.name.rsplit("/", 1)[-1]
        model_id = self.new_id()
        model_dir = self.state_dir / "models" / model_id
        try:
            trained = train_automl(
                task=task,
                classes=classes,
                train=parts["training"],
                validation=parts["validation"],
                workdir=self.state_dir / "trainingPipelines" / pipeline_id,
                model_dir=model_dir,
                model_id=model_id,
                limits=self.limits,
                should_stop=lambda: record.cancel.is_set() or self.closing.is_set(),
            )
        except TrainingStopped:
            return None
        except Exception as exc:
            log.exception("pipeline %s: training failed", pipeline_id)
            return rpc_status("INTERNAL", f"Training failed: {exc}")
        with self.lock:
            pipeline = record.message
            model = v1().Model(pipeline.model_to_upload)
            model.name = f"{pipeline.name.split('/trainingPipelines/')[0]}/models/{model_id}"
            model.version_id = "1"
            model.training_pipeline = pipeline.name
            model.create_time = model.update_time = now()
            model.supported_deployment_resources_types = [
                v1().Model.DeploymentResourcesType.AUTOMATIC_RESOURCES,
                v1().Model.DeploymentResourcesType.DEDICATED_RESOURCES,
            ]
            model.description = model.description or f"AutoML {task} model trained by the emulator ({trained.summary})"
            self.records["models"][model.name] = Record(
                "models", model, task=task, classes=trained.classes, model_dir=model_dir
            )
            pipeline.model_to_upload = model
            pipeline.model_id = model_id
            pipeline.training_task_metadata = {
                "costMilliNodeHours": str(budget),
                "successfulStopReason": "MODEL_CONVERGED",
            }
        return None

    # -------------------------------------------------------------------------------------------- models

    def upload_model(self, call: Call) -> dict[str, Any]:
        self._check_location(call)
        request = call.message(v1().UploadModelRequest)
        model = request.model
        if not model.display_name:
            raise invalid("Model.display_name must be set.")
        if not model.container_spec.image_uri:
            raise invalid("Model.container_spec.image_uri must be set (the serving container).")
        if model.artifact_uri:
            try:
                found = self.storage.list(model.artifact_uri.rstrip("/") + "/")
            except ValueError:
                raise invalid(f"Model.artifact_uri must be a gs:// URI, got {model.artifact_uri!r}.") from None
            if not found:
                raise precondition(f"Model directory {model.artifact_uri} is empty or does not exist.")
        model.name = f"{call.parent}/models/{request.model_id or self.new_id()}"
        model.version_id = "1"
        model.create_time = model.update_time = now()
        model.supported_deployment_resources_types = [v1().Model.DeploymentResourcesType.DEDICATED_RESOURCES]
        with self.lock:
            if model.name in self.records["models"]:
                raise error("ALREADY_EXISTS", f"Model {model.name} already exists.")
            self.records["models"][model.name] = Record("models", model, task="custom")
        response = v1().UploadModelResponse(model=model.name, model_version_id="1")
        return self.operation(call, "UploadModelOperationMetadata", lambda: response, "upload-model")

    def delete_model(self, call: Call) -> dict[str, Any]:
        name = call.name("models")
        record = self.record("models", name)
        with self.lock:
            where = sorted(
                set(record.deploying)
                | {
                    endpoint.message.name
                    for endpoint in self.records["endpoints"].values()
                    if any(d.model.split("@")[0] == name for d in endpoint.message.deployed_models)
                }
            )
            if where:
                endpoints = ", ".join(where)
                raise precondition(
                    f'The Model "{name}" is deployed or being deployed at the following Endpoint(s): {endpoints}.'
                )
            del self.records["models"][name]
        if record.model_dir is not None:
            shutil.rmtree(record.model_dir, ignore_errors=True)
        return self.operation(call, "DeleteOperationMetadata", lambda: None, "delete")

    def predictor(self, model: Record, key: str) -> Predictor:
        """Load ``model`` for serving (``key`` names the local folder of a custom model's artifacts)."""
        if model.task == "custom":
            folder = self.state_dir / "serving" / key
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            uri = model.message.artifact_uri
            if uri and not self.storage.download_prefix(uri, folder):
                raise precondition(f"Model directory {uri} is empty or does not exist.")
            return CustomPredictor(folder)
        assert model.model_dir is not None and model.task is not None
        return AutoMLPredictor(model.model_dir, model.task, model.classes, threads=self.limits.threads)

    # ----------------------------------------------------------------------------------------- endpoints

    def create_endpoint(self, call: Call) -> dict[str, Any]:
        self._check_location(call)
        endpoint = call.message(v1().Endpoint)
        if not endpoint.display_name:
            raise invalid("Endpoint.display_name must be set.")
        endpoint.name = f"{call.parent}/endpoints/{self.new_id()}"
        endpoint.create_time = endpoint.update_time = now()
        with self.lock:
            self.records["endpoints"][endpoint.name] = Record("endpoints", endpoint)

        def work() -> Any:
            with self.lock:
                return type(endpoint)(endpoint)

        return self.operation(call, "CreateEndpointOperationMetadata", work, "create-endpoint")

    def delete_endpoint(self, call: Call) -> dict[str, Any]:
        name = call.name("endpoints")
        record = self.record("endpoints", name)
        with self.lock:
            deployed = [d.id for d in record.message.deployed_models]
            if deployed:
                raise precondition(
                    f"Endpoint {name} has deployed models ({', '.join(deployed)}); undeploy them before deleting it."
                )
            del self.records["endpoints"][name]
        return self.operation(call, "DeleteOperationMetadata", lambda: None, "delete")

    def check_resources(self, dedicated: Any, location: str, where: str) -> None:
        """DedicatedResources: a checked machine spec and sane replica counts."""
        self.check_machine_spec(dedicated.machine_spec, location, f"{where}.machine_spec")
        if dedicated.min_replica_count < 1:
            raise invalid(f"{where}.min_replica_count must be at least 1.")
        if dedicated.max_replica_count and dedicated.max_replica_count < dedicated.min_replica_count:
            raise invalid(f"{where}.max_replica_count must not be below min_replica_count.")

    def deploy_model(self, call: Call) -> dict[str, Any]:
        name = call.name("endpoints")
        endpoint = self.record("endpoints", name)
        request = call.message(v1().DeployModelRequest)
        deployed = request.deployed_model
        model_name = deployed.model.split("@")[0]
        if not model_name:
            raise invalid("deployed_model.model must be set.")
        model = self.record("models", model_name)
        if model_name.split("/models/")[0] != call.parent:
            raise invalid(f"Model {model_name} is not in the endpoint's location {call.params['location']}.")
        if "dedicated_resources" in deployed:
            self.check_resources(
                deployed.dedicated_resources, call.params["location"], "deployed_model.dedicated_resources"
            )
        elif model.task == "custom":
            raise invalid(
                f"Model {model_name} does not support automatic resources; set deployed_model.dedicated_resources "
                "(machine_spec, min_replica_count)."
            )
        split_given = dict(request.traffic_split)
        if split_given and sum(split_given.values()) != 100:
            raise invalid("traffic_split percentages must sum to 100.")
        deployed_id = self.new_id()
        with self.lock:
            known = {d.id for d in endpoint.message.deployed_models} | {"0"}
            strange = sorted(set(split_given) - known)
            if strange:
                raise invalid(f"traffic_split names unknown deployed model ids: {', '.join(strange)}.")
            model.deploying.add(name)

        def work() -> Any:
            try:
                predictor = self.predictor(model, deployed_id)
                with self.lock:
                    if name not in self.records["endpoints"]:
                        raise not_found(name)
                    deployed.id = deployed_id
                    deployed.model = model_name
                    deployed.model_version_id = "1"
                    deployed.create_time = now()
                    if not deployed.display_name:
                        deployed.display_name = model.message.display_name
                    message = endpoint.message
                    message.deployed_models.append(deployed)
                    endpoint.predictors[deployed_id] = predictor
                    if split_given:
                        traffic = {deployed_id if k == "0" else k: v for k, v in split_given.items()}
                    elif len(message.deployed_models) == 1:
                        traffic = {deployed_id: 100}
                    else:
                        traffic = {**dict(message.traffic_split), deployed_id: 0}
                    message.traffic_split.clear()
                    message.traffic_split.update(traffic)
                    message.update_time = now()
                    return v1().DeployModelResponse(deployed_model=deployed)
            finally:
                with self.lock:
                    model.deploying.discard(name)

        return self.operation(call, "DeployModelOperationMetadata", work, "deploy")

    def undeploy_model(self, call: Call) -> dict[str, Any]:
        name = call.name("endpoints")
        endpoint = self.record("endpoints", name)
        request = call.message(v1().UndeployModelRequest)
        with self.lock:
            ids = [d.id for d in endpoint.message.deployed_models]
        if request.deployed_model_id not in ids:
            raise error("NOT_FOUND", f"Deployed model {request.deployed_model_id!r} not found on endpoint {name}.")
        split_given = dict(request.traffic_split)

        def work() -> Any:
            with self.lock:
                message = endpoint.message
                kept = [d for d in message.deployed_models if d.id != request.deployed_model_id]
                del message.deployed_models[:]
                message.deployed_models.extend(kept)
                endpoint.predictors.pop(request.deployed_model_id, None)
                traffic = split_given or (
                    {kept[0].id: 100}
                    if len(kept) == 1
                    else {k: v for k, v in dict(message.traffic_split).items() if k != request.deployed_model_id}
                )
                message.traffic_split.clear()
                message.traffic_split.update(traffic)
                message.update_time = now()
            return v1().UndeployModelResponse()

        return self.operation(call, "UndeployModelOperationMetadata", work, "undeploy")

    def predict(self, call: Call) -> dict[str, Any]:
        if len(call.body) > texts.PAYLOAD_LIMIT:
            raise invalid(texts.PAYLOAD_TOO_LARGE)
        name = call.name("endpoints")
        endpoint = self.record("endpoints", name)
        call.message(v1().PredictRequest)
        payload = call.json()
        instances = payload.get("instances")
        if not isinstance(instances, list) or not instances:
            raise invalid("Empty instances: send at least one instance.")
        parameters = payload.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise invalid("parameters must be an object.")
        with self.lock:
            message = endpoint.message
            if not message.deployed_models:
                raise precondition(f"Endpoint {name} does not have any deployed models.")
            traffic = dict(message.traffic_split)
            chosen = max(message.deployed_models, key=lambda d: traffic.get(d.id, 0))
            predictor = endpoint.predictors[chosen.id]
            model_name, model_display = chosen.model, chosen.display_name
        predictions = predictor.predict(instances, parameters)
        return {
            "predictions": predictions,
            "deployedModelId": chosen.id,
            "model": model_name,
            "modelDisplayName": model_display,
            "modelVersionId": "1",
        }

    # ---------------------------------------------------------------------------------------- batch jobs

    def create_batch_job(self, call: Call) -> dict[str, Any]:
        self._check_location(call)
        location = call.params["location"]
        job = call.message(v1().BatchPredictionJob)
        if not job.display_name:
            raise invalid("BatchPredictionJob.display_name must be set.")
        model_name = job.model.split("@")[0]
        if not model_name:
            raise invalid("BatchPredictionJob.model must be set.")
        model = self.record("models", model_name)
        if job.input_config.instances_format != "jsonl":
            raise invalid(
                f"input_config.instances_format {job.input_config.instances_format!r}: the emulator reads jsonl."
            )
        uris = list(job.input_config.gcs_source.uris)
        if not uris or not all(uri.startswith("gs://") for uri in uris):
            raise invalid("input_config.gcs_source.uris must list gs:// files.")
        if job.output_config.predictions_format != "jsonl":
            raise invalid(
                f"output_config.predictions_format {job.output_config.predictions_format!r}: the emulator writes jsonl."
            )
        prefix = job.output_config.gcs_destination.output_uri_prefix
        if not prefix:
            raise invalid("output_config.gcs_destination.output_uri_prefix must be set.")
        self.check_bucket(prefix, location, "output_config.gcs_destination.output_uri_prefix")
        if "dedicated_resources" in job:
            self.check_machine_spec(job.dedicated_resources.machine_spec, location, "dedicated_resources.machine_spec")
        elif model.task == "custom":
            raise invalid(
                f"Model {model_name} does not support automatic resources; set dedicated_resources (machine_spec, "
                "starting_replica_count) for its batch prediction."
            )
        job_id = self.new_id()
        job.name = f"{call.parent}/batchPredictionJobs/{job_id}"
        job.state = v1().JobState.JOB_STATE_QUEUED
        job.create_time = job.update_time = now()
        record = Record("batchPredictionJobs", job)
        with self.lock:
            self.records["batchPredictionJobs"][job.name] = record
            answer = dump(job)
        self.start_thread(f"vertex-batch-{job_id}", lambda: self.walk(record, lambda: self.run_batch(record, model)))
        return answer

    def run_batch(self, record: Record, model: Record) -> dict[str, Any] | None:
        """Predict every instance of the input files; write the results; ``None`` on success."""
        import base64

        from google.api_core import exceptions as gexc
        from google.protobuf import json_format

        with self.lock:
            job = record.message
            uris = list(job.input_config.gcs_source.uris)
            prefix = job.output_config.gcs_destination.output_uri_prefix.rstrip("/")
            parameters = (
                json_format.MessageToDict(type(job).pb(job).model_parameters) if "model_parameters" in job else {}
            )
            display = model.message.display_name
            job_id = job.name.rsplit("/", 1)[-1]
        try:
            predictor = self.predictor(model, f"batch-{job_id}")
        except ApiError as err:
            return rpc_status(err.code, err.message)
        results: list[str] = []
        errors: list[str] = []
        for uri in uris:
            try:
                lines = self.storage.read(uri).decode("utf-8").splitlines()
            except gexc.NotFound:
                return rpc_status("NOT_FOUND", f"The input file {uri} does not exist.")
            for number, line in enumerate(lines, start=1):
                if record.cancel.is_set() or self.closing.is_set():
                    return None
                if not line.strip():
                    continue
                try:
                    instance = json.loads(line)
                    sent = instance
                    content = instance.get("content") if isinstance(instance, dict) else None
                    if isinstance(content, str) and content.startswith("gs://"):
                        sent = {**instance, "content": base64.b64encode(self.storage.read(content)).decode()}
                    (prediction,) = predictor.predict([sent], parameters if isinstance(parameters, dict) else {})
                    results.append(json.dumps({"instance": instance, "prediction": prediction}))
                except (ValueError, ApiError, gexc.NotFound) as exc:
                    message = exc.message if isinstance(exc, ApiError) else str(exc)
                    errors.append(
                        json.dumps({"instance": line, "error": {"code": 3, "message": f"{uri}:{number}: {message}"}})
                    )
        stamp = now().strftime("%Y_%m_%dT%H_%M_%S_") + f"{now().microsecond // 1000:03d}Z"
        folder = f"{prefix}/prediction-{re.sub(r'[^A-Za-z0-9_-]', '_', display)}-{stamp}"
        self.storage.write(f"{folder}/prediction.results-00000-of-00001", "".join(r + "\n" for r in results).encode())
        if errors:
            self.storage.write(
                f"{folder}/prediction.errors_stats-00000-of-00001", "".join(e + "\n" for e in errors).encode()
            )
        with self.lock:
            job.output_info.gcs_output_directory = folder
            job.completion_stats.successful_count = len(results)
            job.completion_stats.failed_count = len(errors)
        return None


def _status(status: dict[str, Any]) -> Any:
    """A ``google.rpc.Status`` message from its JSON."""
    from google.rpc import status_pb2

    return status_pb2.Status(code=int(status["code"]), message=str(status["message"]))
