"""Trainer, Deployer and Predictor: the abstract classes every provider plugin implements.

Public methods do the common work once for every provider (capability checks,
preflight, run records, waiting with backoff, id lookup, idempotence, schema
conversion) and call small abstract hooks that a plugin fills in. A plugin author writes
the hooks (``_submit``, ``_describe``, ``_cancel``, ``_logs``, ``_export``; ``_deploy``,
``_describe_endpoint``, ``_undeploy``, ``_servable``; ``_predict``), nothing else.

Hook contracts:

- Hooks translate; they do not decide. They never sleep-poll, never write run records and
  never print. They raise :class:`~multicloud_cv.errors.MCVError` subclasses.
- A hook that receives a native id the service no longer knows raises
  :class:`~multicloud_cv.errors.NotFound`.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from multicloud_cv.capabilities import Capabilities, Task
from multicloud_cv.config import Setting, missing_required, positive_float
from multicloud_cv.datasets.folder import IMAGE_SUFFIXES
from multicloud_cv.errors import (
    BadInput,
    ConfigError,
    InvalidImage,
    JobFailed,
    MCVError,
    NotFound,
    ProviderNotInstalled,
)
from multicloud_cv.runs import EndpointRecord, JobRecord, ModelRecord, RunStore, new_id, to_datetime
from multicloud_cv.states import EndpointState, JobState
from multicloud_cv.waiting import Backoff, poll

if TYPE_CHECKING:
    from multicloud_cv.datasets.model import Dataset
    from multicloud_cv.datasets.preflight import Finding, PreflightContext
    from multicloud_cv.schema import Endpoint, Export, Job, Plan, Prediction

log = logging.getLogger(__name__)


# -- what plugins return from hooks -------------------------------------------------------------


@dataclass
class NativeModel:
    """A trained model as the provider knows it."""

    native_id: str
    artifact: str | None = None
    labels: list[str] = field(default_factory=list)
    task: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class NativeJob:
    """A job's state in the provider's own words, mapped to the shared state."""

    native_id: str
    state: JobState
    native_state: str
    failure_reason: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    progress: str | None = None
    model: NativeModel | None = None
    cost_usd: float | None = None


@dataclass
class NativeEndpoint:
    """An endpoint's state in the provider's own words, mapped to the shared state."""

    native_id: str
    state: EndpointState
    native_state: str
    url: str | None = None
    failure_reason: str | None = None
    cost_per_hour_usd: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    #: True while the native state is on its way to ``state`` (SageMaker Deleting, Rekognition STOPPING).
    settling: bool = False


@dataclass
class TrainingSpec:
    """What to train: the common spec every provider maps to its native request.

    ``hyperparameters`` are provider-specific extras passed through (each provider
    validates its own names). ``base_model`` (a recorded model id) asks for incremental
    training. ``compute`` ``None`` means the provider's default (:attr:`ProviderPlugin.default_compute`).
    """

    dataset: Dataset
    task: Task = Task.CLASSIFICATION
    epochs: int | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    compute: str | None = None
    base_model: str | None = None
    export_formats: tuple[str, ...] = ()
    name: str | None = None

    def requirements(self) -> list[str]:
        """The capability features this spec needs."""
        needs = [self.task.feature] + ([f"compute:{self.compute}"] if self.compute else [])
        needs += [f"export:{fmt}" for fmt in self.export_formats]
        if self.base_model:
            needs.append("incremental_training")
        return needs


@dataclass(frozen=True)
class PlannedRequest:
    """One native request a plan shows: the service, the operation and its parameters as the SDK takes them."""

    service: str
    operation: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PredictParams:
    """Per-request prediction parameters."""

    top_k: int | None = None
    threshold: float | None = None


# -- the common base ---------------------------------------------------------------------------


class ProviderPlugin(ABC):
    """What every role of a provider shares: name, settings, capabilities, readiness.

    Class attributes are the plugin's metadata; reading them must not import the SDK.
    Instances get their resolved settings (see :mod:`multicloud_cv.config`) and the run store.
    """

    #: The provider name users type (``--provider NAME``).
    name: ClassVar[str]
    #: The plugin API version this class was written against (major must match the core's
    #: :data:`multicloud_cv.PLUGIN_API_VERSION`). Every plugin declares it; there is no default.
    api_version: ClassVar[str]
    #: One line for ``mcv providers``.
    description: ClassVar[str] = ""
    #: The settings this provider reads.
    settings: ClassVar[tuple[Setting, ...]] = ()
    #: What it can and cannot do.
    capabilities: ClassVar[Capabilities]
    #: Importable modules the provider needs at work time (checked without importing them).
    requires: ClassVar[tuple[str, ...]] = ()
    #: The command that installs what ``requires`` names.
    install_hint: ClassVar[str | None] = None
    #: Poll schedule for waiting on this provider's jobs and endpoints.
    backoff: ClassVar[Backoff] = Backoff()
    #: The compute kind a training spec without one gets (``cpu``, ``gpu`` or ``tpu``).
    default_compute: ClassVar[str] = "cpu"
    #: True when the service deletes endpoints asynchronously: :meth:`Deployer.undeploy` then polls
    #: ``_describe_endpoint`` until the endpoint is gone or DELETED and settled (it may bill until then).
    undeploy_waits: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, str] | None = None, store: RunStore | None = None) -> None:
        self.config: dict[str, str] = dict(config or {})
        self._store = store

    @property
    def store(self) -> RunStore:
        """The run store (opened on first use)."""
        if self._store is None:
            self._store = RunStore()
        return self._store

    @property
    def emulated(self) -> bool:
        """True when this instance talks to an emulator rather than the real service."""
        return False

    @classmethod
    def missing_modules(cls) -> list[str]:
        """Modules in :attr:`requires` that cannot be found (found without importing them)."""
        return [module for module in cls.requires if importlib.util.find_spec(module.split(".")[0]) is None]

    def problems(self) -> list[str]:
        """Why this provider cannot work as configured, each with what to do; empty when ready.

        Never contacts the service and never reveals secret values.
        """
        found = []
        missing = self.missing_modules()
        if missing:
            found.append(f"missing {', '.join(missing)}: {self.install_hint or 'pip install ' + ' '.join(missing)}")
        for key in missing_required(self.settings, self.config):
            env = next(s.env_var(self.name) for s in self.settings if s.name == key)
            where = f"mcv.toml [providers.{self.name}]"
            found.append(f"setting '{key}' is not set: add it to {where}, set {env}, or pass -o {key}=...")
        found += self._credential_problems()
        return found

    def _credential_problems(self) -> list[str]:
        """Hook: credential problems found without a network call (e.g. no AWS credentials in the chain)."""
        return []

    def ensure_ready(self) -> None:
        """Raise the first problem as an error before any work starts."""
        missing = self.missing_modules()
        if missing:
            hint = self.install_hint or "pip install " + " ".join(missing)
            raise ProviderNotInstalled(f"provider '{self.name}' needs {', '.join(missing)}: {hint}")
        problems = self.problems()
        if problems:
            raise ConfigError(f"provider '{self.name}' is not ready: {problems[0]}")

    def poll_schedule(self) -> Backoff:
        """The schedule :meth:`Trainer.wait` and :meth:`Deployer.wait` poll with (default: :attr:`backoff`).

        A provider that declares a ``poll_s`` setting starts at that interval instead, and its ceiling scales
        with it, never above the declared one: the default 10 s growing to 60 s becomes 0.5 s growing to 3 s
        against an emulator whose states last a second, so a job that ends is seen within a state or two rather
        than after a minute's interval. A ``poll_s`` above the declared ceiling polls at that fixed interval.
        Override to derive the schedule from other settings.
        """
        if not any(setting.name == "poll_s" for setting in self.settings):
            return self.backoff
        declared = self.backoff
        poll = positive_float(self.config, "poll_s", declared.initial)
        ceiling = min(declared.maximum, declared.maximum * poll / declared.initial)
        return replace(declared, initial=poll, maximum=max(ceiling, poll))

    def access_policy(self) -> dict[str, Any] | None:
        """The least-privilege access policies a run needs, as the cloud writes them (``None``: no cloud access).

        ``mcv iam-policy`` prints it. Built from the settings alone; nothing is sent.
        """
        return None

    def check_capabilities(self, requirements: Iterable[str]) -> None:
        """Refuse at once, with reasons, what this provider declared it cannot do."""
        self.capabilities.check(self.name, requirements)


# -- Trainer -----------------------------------------------------------------------------------


class Trainer(ProviderPlugin):
    """Trains models. Public methods: plan, submit, train, status, wait, cancel, logs, resume, remove, export."""

    def plan(self, spec: TrainingSpec) -> Plan:
        """The native requests :meth:`submit` would send, in order, after the same checks; nothing is sent."""
        from multicloud_cv.schema import NativeRequest, Plan

        spec = self.resolved(spec)
        self.check_capabilities(spec.requirements())
        self._preflight(spec)
        self._validate(spec)
        requests = [NativeRequest(service=r.service, operation=r.operation, params=r.params) for r in self._plan(spec)]
        cost, notes = self._estimate_cost(spec)
        return Plan(provider=self.name, requests=requests, cost_estimate_usd=cost, notes=notes)

    def resolved(self, spec: TrainingSpec) -> TrainingSpec:
        """``spec`` with the provider's defaults filled in (``compute``)."""
        return spec if spec.compute else replace(spec, compute=self.default_compute)

    def check(self, spec: TrainingSpec, files: bool = False, decode: bool = False) -> list[Finding]:
        """Every preflight finding for ``spec`` on this provider: its declared limits and job context.

        Nothing is sent. ``files`` also reads image headers and hashes (sizes, formats,
        train/test duplicates); ``decode`` decodes every image.
        """
        from multicloud_cv.datasets.preflight import PreflightContext, check_dataset

        context = self._preflight_context(spec) or PreflightContext()
        context.provider = context.provider or self.name
        return check_dataset(spec.dataset, spec.task, self.capabilities.limits, context, files=files, decode=decode)

    def _preflight(self, spec: TrainingSpec) -> None:
        from multicloud_cv.datasets.preflight import raise_for_errors

        raise_for_errors(self.check(spec))

    def submit(self, spec: TrainingSpec, run_id: str | None = None) -> Job:
        """Check, record, then start a training job; returns at once with the job QUEUED or RUNNING.

        Capabilities and dataset preflight are checked before anything is sent. The job
        is recorded (state QUEUED, native state SUBMITTING) before the hook runs, so a crash
        leaves a record; a hook failure marks it FAILED with the reason, then re-raises. A hook
        that refuses the request (:class:`BadInput`) must have created nothing: its record is removed.
        """
        self.ensure_ready()
        spec = self.resolved(spec)
        self.check_capabilities(spec.requirements())
        self._preflight(spec)
        self._validate(spec)
        job_id = new_id("job")
        record = JobRecord(
            id=job_id,
            provider=self.name,
            state=JobState.QUEUED.value,
            native_state="SUBMITTING",
            run_id=run_id,
            task=spec.task.value,
            dataset=str(spec.dataset.root.resolve()),
            spec={"epochs": spec.epochs, "hyperparameters": spec.hyperparameters, "compute": spec.compute},
        )
        self.store.add_job(record)
        try:
            native = self._submit(spec, job_id)
        except BadInput:
            self.store.delete("jobs", job_id)  # refused before anything was created: leave no record
            raise
        except BaseException as exc:
            reason = str(exc) if isinstance(exc, MCVError) else f"{type(exc).__name__}: {exc}"
            self.store.update_job(
                job_id,
                state=JobState.FAILED.value,
                native_state="SUBMIT_FAILED",
                failure_reason=reason,
                finished_at=time.time(),
            )
            raise
        return self._record_native(job_id, native)

    def train(
        self, spec: TrainingSpec, timeout: float | None = None, on_update: Callable[[Job], None] | None = None
    ) -> Job:
        """Submit and wait; raises :class:`JobFailed` when the job fails."""
        job = self.submit(spec)
        return self.wait(job.id, timeout=timeout, on_update=on_update)

    def status(self, job_id: str) -> Job:
        """The job's current state, fetched from the provider and recorded."""
        record = self.store.job(job_id)
        if JobState(record.state).is_terminal() or record.native_id is None:
            if record.native_id is None and not JobState(record.state).is_terminal():
                return self._job(record, progress="submission did not complete (the submitting process ended)")
            return self._job(record)
        try:
            native = self._describe(record.native_id, record)
        except NotFound as exc:
            native = NativeJob(
                native_id=record.native_id,
                state=JobState.FAILED,
                native_state="NOT_FOUND",
                failure_reason=f"the provider no longer knows this job ({exc})",
            )
        return self._record_native(job_id, native)

    def wait(self, job_id: str, timeout: float | None = None, on_update: Callable[[Job], None] | None = None) -> Job:
        """Poll with backoff until the job is terminal; raise :class:`JobFailed` if it failed."""
        job = poll(
            lambda: self.status(job_id),
            lambda j: j.state.is_terminal() or j.native_id is None,
            self.poll_schedule(),
            timeout=timeout,
            on_update=on_update,
            what=f"job {job_id}",
            hint=f"it keeps running: `mcv wait {job_id}` later",
        )
        if job.state is JobState.FAILED:
            raise JobFailed(f"job {job_id} failed: {job.failure_reason or 'no reason given'}")
        return job

    def cancel(self, job_id: str) -> Job:
        """Stop a job. Cancelling a finished job changes nothing and returns it as it is, also when it finished
        while the stop request was on its way (the service refuses the stop; the job is returned as it ended)."""
        job = self.status(job_id)
        if job.state.is_terminal() or job.native_id is None:
            return job
        self.check_capabilities(["cancel"])
        try:
            self._cancel(job.native_id)
        except BadInput:
            after = self.status(job_id)  # it may have finished between the status call and the stop request
            if after.state.is_terminal():
                return after
            raise
        return self.status(job_id)

    def logs(self, job_id: str) -> Iterator[str]:
        """The job's log lines so far, oldest first."""
        record = self.store.job(job_id)
        if record.native_id is None:
            return iter(())
        return self._logs(record.native_id)

    def remove(self, job_id: str, timeout: float | None = 1800.0) -> bool:
        """Delete what the job left at the provider (model versions, datasets, projects...); idempotent.

        Polls the :meth:`_remove` hook until it says everything is gone (some services delete
        asynchronously and in a required order). Returns False when the provider keeps nothing to remove.
        """
        record = self.store.job(job_id)
        if record.native_id is None:
            return False
        if not JobState(record.state).is_terminal():
            raise BadInput(f"job {job_id} is still {record.state}; cancel it or wait for it before removing it")
        first = self._remove(record)
        if first is None:
            return False
        if not first:
            poll(
                lambda: bool(self._remove(record)),
                bool,
                self.poll_schedule(),
                timeout=timeout,
                what=f"removal of job {job_id}'s resources",
                hint=f"`mcv cleanup --models --run {record.run_id or '...'}` again finishes it",
            )
        self.store.update_job(job_id, native_state=f"{record.native_state} (removed)")
        return True

    def resume(self, job_id: str) -> Job:
        """Continue an interrupted, failed or cancelled job from its last checkpoint."""
        self.check_capabilities(["resume"])
        record = self.store.job(job_id)
        if record.state == JobState.SUCCEEDED.value:
            raise BadInput(f"job {job_id} already succeeded; nothing to resume")
        if record.native_id is None:
            raise BadInput(f"job {job_id} never started; submit it again with `mcv train`")
        self.store.update_job(job_id, state=JobState.QUEUED.value, failure_reason=None, finished_at=None)
        return self._record_native(job_id, self._resume(record.native_id, record))

    def export(self, model_id: str, fmt: str, out: Path | None = None) -> Export:
        """Export a recorded model to ``fmt`` (``onnx``, ``tflite``, ``coreml``, ``tensorflow``, ``savedmodel``,
        ``docker``) and unpack it into ``out`` (default ``<mcv data dir>/exports/<model_id>/<fmt>/``).

        Refuses at once (:class:`BadInput`, exit 2) an unknown format, another provider's model and a format this
        provider declared it cannot export (``export:<fmt>``). Nothing is half-written when the ``_export`` hook
        or the unpacking fails. The export is recorded in the model's ``info["exports"]``; an ONNX export the
        local provider can serve is also recorded as a ``local`` model (``local_model_id``), see
        :mod:`multicloud_cv.exporting`.
        """
        from multicloud_cv.exporting import check_format, export_model

        fmt = check_format(fmt)
        model = self.store.model(model_id)
        if model.provider != self.name:
            raise BadInput(f"model {model_id} was trained by '{model.provider}'; export it with its own provider")
        self.check_capabilities([f"export:{fmt}"])
        self.ensure_ready()
        return export_model(self, model, fmt, out)

    # hooks ---------------------------------------------------------------------------------------

    def _preflight_context(self, spec: TrainingSpec) -> PreflightContext | None:
        """Hook: what this provider knows about the job (region, bucket, channels, batch size...).

        The core's preflight checks the dataset against it before anything is recorded or
        sent (:mod:`multicloud_cv.datasets.preflight`). Default: no job context.
        """
        return None

    def _validate(self, spec: TrainingSpec) -> None:
        """Hook: provider-specific checks of ``spec`` (hyperparameter names and values); raise :class:`BadInput`.

        Runs before anything is recorded or sent.
        """

    def _plan(self, spec: TrainingSpec) -> list[PlannedRequest]:
        """Hook: the native requests :meth:`_submit` would send for ``spec``, in order (default: none to show).

        Build them with the same code the submission uses, so the plan cannot drift from what is sent.
        """
        return []

    def _estimate_cost(self, spec: TrainingSpec) -> tuple[float | None, list[str]]:
        """Hook: the estimated cost in USD of training ``spec`` and the assumptions behind it (default: unknown)."""
        return None, []

    @abstractmethod
    def _submit(self, spec: TrainingSpec, job_id: str) -> NativeJob:
        """Hook: start the job on the service and return its native id and first state."""

    @abstractmethod
    def _describe(self, native_id: str, record: JobRecord) -> NativeJob:
        """Hook: fetch the job's state; include ``model`` once it succeeded."""

    def _cancel(self, native_id: str) -> None:
        """Hook: ask the service to stop the job (only called for non-terminal jobs)."""
        raise NotImplementedError

    def _logs(self, native_id: str) -> Iterator[str]:
        """Hook: the job's log lines."""
        return iter(())

    def _remove(self, record: JobRecord) -> bool | None:
        """Hook: take one step towards deleting the job's resources; True when all are gone, False to be called
        again later (asynchronous deletes), ``None`` when the provider keeps nothing per job (the default)."""
        return None

    def _resume(self, native_id: str, record: JobRecord) -> NativeJob:
        """Hook: restart the job from its last checkpoint."""
        raise NotImplementedError

    def _export(self, model: ModelRecord, fmt: str, workdir: Path) -> Path:
        """Hook: put ONE archive (zip or tar), file or folder of ``model`` exported as ``fmt`` into ``workdir``
        (an empty folder) and return its path. Only called for formats the capabilities declare supported."""
        raise NotImplementedError

    # bookkeeping ---------------------------------------------------------------------------------

    def _record_native(self, job_id: str, native: NativeJob) -> Job:
        record = self.store.job(job_id)
        changes: dict[str, Any] = {
            "native_id": native.native_id,
            "state": native.state.value,
            "native_state": native.native_state,
            "failure_reason": native.failure_reason,
            "metrics": native.metrics or record.metrics,
            "progress": native.progress,
        }
        if native.cost_usd is not None:
            changes["cost_usd"] = native.cost_usd
        if native.state.is_terminal() and record.finished_at is None:
            changes["finished_at"] = time.time()
        if native.model is not None and record.model_id is None:
            model_id = new_id("model")
            self.store.add_model(
                ModelRecord(
                    id=model_id,
                    provider=self.name,
                    job_id=job_id,
                    native_id=native.model.native_id,
                    task=native.model.task or record.task,
                    labels=native.model.labels,
                    artifact=native.model.artifact,
                    info=native.model.info,
                )
            )
            changes["model_id"] = model_id
        return self._job(self.store.update_job(job_id, **changes))

    def _job(self, record: JobRecord, progress: str | None = None) -> Job:
        return job_from_record(record, progress=progress, emulated=self.emulated)


def job_from_record(record: JobRecord, progress: str | None = None, emulated: bool = False) -> Job:
    """The shared-schema view of a job record."""
    from multicloud_cv.schema import Job

    return Job(
        id=record.id,
        provider=record.provider,
        state=JobState(record.state),
        native_state=record.native_state,
        native_id=record.native_id,
        model_id=record.model_id,
        failure_reason=record.failure_reason,
        metrics=record.metrics,
        cost_usd=record.cost_usd,
        task=record.task,  # type: ignore[arg-type]
        dataset=record.dataset,
        run_id=record.run_id,
        progress=progress or record.progress,
        created_at=to_datetime(record.created_at),
        updated_at=to_datetime(record.updated_at),
        emulated=emulated,
    )


# -- Deployer ----------------------------------------------------------------------------------


class Deployer(ProviderPlugin):
    """Serves models. Public methods: deploy, status, wait, undeploy, endpoints."""

    def deploy(
        self,
        model_id: str,
        ttl_s: float | None = None,
        wait: bool = True,
        timeout: float | None = 600.0,
        run_id: str | None = None,
    ) -> Endpoint:
        """Create an endpoint for a recorded model and (by default) wait until it is READY.

        The endpoint is recorded before the hook runs; if creation fails the record says
        FAILED with the reason and the error is re-raised.
        """
        self.ensure_ready()
        model = self.store.model(model_id)
        if model.provider != self.name:
            model = self._exported_model(model)
            model_id = model.id
        if ttl_s is not None:
            self.check_capabilities(["endpoint_ttl"])
            if ttl_s <= 0:
                raise BadInput(f"--ttl must be positive, got {ttl_s:g} s")
        self.check_capabilities([f"task:{model.task or 'classification'}"])
        endpoint_id = new_id("ep")
        self.store.add_endpoint(
            EndpointRecord(
                id=endpoint_id,
                provider=self.name,
                model_id=model_id,
                state=EndpointState.CREATING.value,
                native_state="CREATING",
                run_id=run_id,
                expires_at=None if ttl_s is None else time.time() + ttl_s,
            )
        )
        try:
            native = self._deploy(model, endpoint_id, ttl_s)
        except BadInput:
            self.store.delete("endpoints", endpoint_id)  # refused before anything was created: leave no record
            raise
        except BaseException as exc:
            reason = str(exc) if isinstance(exc, MCVError) else f"{type(exc).__name__}: {exc}"
            self.store.update_endpoint(
                endpoint_id, state=EndpointState.FAILED.value, native_state="CREATE_FAILED", failure_reason=reason
            )
            raise
        endpoint = self._record_native(endpoint_id, native)
        if wait and endpoint.state is EndpointState.CREATING:
            endpoint = self.wait(endpoint_id, timeout=timeout)
        return endpoint

    def status(self, endpoint_id: str) -> Endpoint:
        """The endpoint's current state, fetched from the provider and recorded."""
        record = self.store.endpoint(endpoint_id)
        if record.state == EndpointState.DELETED.value or record.native_id is None:
            return self._endpoint(record)
        try:
            native = self._describe_endpoint(record)
        except NotFound as exc:
            log.info("endpoint %s is gone at the provider: %s", endpoint_id, exc)
            native = NativeEndpoint(
                native_id=record.native_id,
                state=EndpointState.DELETED,
                native_state="NOT_FOUND",
                failure_reason=f"deleted outside mcv ({exc})",
            )
        return self._record_native(endpoint_id, native)

    def wait(
        self, endpoint_id: str, timeout: float | None = 600.0, on_update: Callable[[Endpoint], None] | None = None
    ) -> Endpoint:
        """Poll until the endpoint is READY, FAILED or DELETED."""
        return poll(
            lambda: self.status(endpoint_id),
            lambda e: e.state.is_terminal(),
            self.poll_schedule(),
            timeout=timeout,
            on_update=on_update,
            what=f"endpoint {endpoint_id}",
            hint=f"check it with `mcv endpoints`; remove it with `mcv undeploy {endpoint_id}`",
        )

    def undeploy(self, endpoint_id: str, timeout: float | None = 900.0) -> Endpoint:
        """Delete the endpoint so it stops costing money. Idempotent: undeploying twice is fine.

        For a provider that deletes asynchronously (:attr:`undeploy_waits`), returns only once the
        service confirms the endpoint is gone.
        """
        record = self.store.endpoint(endpoint_id)
        if record.state == EndpointState.DELETED.value:
            return self._endpoint(record)
        if record.native_id is not None:
            try:
                self._undeploy(record)
            except NotFound:
                log.info("endpoint %s was already gone at the provider", endpoint_id)
            else:
                if self.undeploy_waits:
                    self.store.update_endpoint(endpoint_id, native_state="DELETING")
                    poll(
                        lambda: self._gone(record),
                        bool,
                        self.poll_schedule(),
                        timeout=timeout,
                        what=f"deletion of endpoint {endpoint_id}",
                        hint=f"`mcv undeploy {endpoint_id}` again later confirms it",
                    )
        return self._endpoint(
            self.store.update_endpoint(endpoint_id, state=EndpointState.DELETED.value, native_state="DELETED")
        )

    def _gone(self, record: EndpointRecord) -> bool:
        """True once the endpoint stopped for good: the service no longer knows it (:class:`NotFound`) or its
        state is DELETED and not still settling (a stopped Rekognition model stays listed, STOPPED)."""
        try:
            native = self._describe_endpoint(record)
        except NotFound:
            return True
        return native.state is EndpointState.DELETED and not native.settling

    def endpoints(self, include_deleted: bool = False) -> list[Endpoint]:
        """This provider's recorded endpoints, refreshed from the provider."""
        out = []
        for record in self.store.endpoints(include_deleted=include_deleted):
            if record.provider == self.name:
                out.append(
                    self.status(record.id) if record.state != EndpointState.DELETED.value else self._endpoint(record)
                )
        return out

    def _exported_model(self, model: ModelRecord) -> ModelRecord:
        """The model recorded for this provider from an export of ``model`` (``mcv export``); else :class:`BadInput`."""
        for entry in (model.info.get("exports") or {}).values():
            local_id = entry.get("local_model_id") if isinstance(entry, dict) else None
            if not local_id:
                continue
            try:
                exported = self.store.model(str(local_id))
            except NotFound:
                continue
            if exported.provider == self.name:
                log.info("deploying model %s, the %s export of %s", exported.id, self.name, model.id)
                return exported
        if self.name == "local":
            raise BadInput(f"model {model.id} has no ONNX export: run mcv export {model.id} --format onnx")
        raise BadInput(
            f"model {model.id} was trained by '{model.provider}'; deploy it with --provider {model.provider}"
        )

    # hooks ---------------------------------------------------------------------------------------

    def _servable(self, folder: Path, fmt: str) -> NativeModel | None:
        """Hook: what this provider would serve from an exported ``folder`` of format ``fmt`` (its task and labels
        in a :class:`NativeModel`), ``None`` when it cannot serve it (the default)."""
        return None

    @abstractmethod
    def _deploy(self, model: ModelRecord, endpoint_id: str, ttl_s: float | None) -> NativeEndpoint:
        """Hook: create the endpoint; return its native id and first state."""

    @abstractmethod
    def _describe_endpoint(self, record: EndpointRecord) -> NativeEndpoint:
        """Hook: fetch the endpoint's state."""

    @abstractmethod
    def _undeploy(self, record: EndpointRecord) -> None:
        """Hook: delete the endpoint; raise :class:`NotFound` if it is already gone."""

    # bookkeeping ---------------------------------------------------------------------------------

    def _record_native(self, endpoint_id: str, native: NativeEndpoint) -> Endpoint:
        record = self.store.endpoint(endpoint_id)
        changes: dict[str, Any] = {
            "native_id": native.native_id,
            "state": native.state.value,
            "native_state": native.native_state,
            "url": native.url or record.url,
            "failure_reason": native.failure_reason,
            "info": {**record.info, **native.info},
        }
        if native.cost_per_hour_usd is not None:
            changes["cost_per_hour_usd"] = native.cost_per_hour_usd
        return self._endpoint(self.store.update_endpoint(endpoint_id, **changes))

    def _endpoint(self, record: EndpointRecord) -> Endpoint:
        from multicloud_cv.schema import Endpoint

        return Endpoint(
            id=record.id,
            provider=record.provider,
            model_id=record.model_id,
            state=EndpointState(record.state),
            native_state=record.native_state,
            native_id=record.native_id,
            url=record.url,
            cost_per_hour_usd=record.cost_per_hour_usd,
            created_at=to_datetime(record.created_at),
            expires_at=to_datetime(record.expires_at),
            failure_reason=record.failure_reason,
            emulated=self.emulated,
        )


# -- Predictor ---------------------------------------------------------------------------------


def read_image_bytes(image: str | Path | bytes, max_bytes: int | None = None) -> tuple[bytes, str | None]:
    """Read and sanity-check an image; return its bytes and its file name (if any).

    Raises :class:`InvalidImage` naming the file when it is missing, empty, over
    ``max_bytes`` or not an image format Pillow recognises. Pixels are not decoded here.
    """
    from PIL import Image, UnidentifiedImageError

    name: str | None = None
    if isinstance(image, bytes):
        data = image
    else:
        path = Path(image)
        name = str(path)
        if not path.is_file():
            raise InvalidImage(f"{path}: no such file")
        data = path.read_bytes()
    label = name or "image payload"
    if not data:
        raise InvalidImage(f"{label}: empty file, not an image")
    if max_bytes is not None and len(data) > max_bytes:
        raise InvalidImage(f"{label}: {len(data)} bytes is over this provider's limit of {max_bytes} bytes")
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"{label}: not a readable image ({exc})") from exc
    return data, name


class Predictor(ProviderPlugin):
    """Answers predictions from an endpoint in the shared schema. Public: predict, predict_batch."""

    def predict(
        self, endpoint_id: str, image: str | Path | bytes, top_k: int | None = None, threshold: float | None = None
    ) -> Prediction:
        """One image's prediction; labels and detections sorted by confidence, 0..1."""
        endpoint, model = self._ready_endpoint(endpoint_id)
        return self._predict_one(endpoint, model, image, PredictParams(top_k, threshold))

    def predict_batch(
        self,
        endpoint_id: str,
        images: Iterable[str | Path] | str | Path,
        top_k: int | None = None,
        threshold: float | None = None,
        concurrency: int = 4,
    ) -> list[Prediction]:
        """Predictions for many images (a list of files or a folder, searched recursively), in input order.

        Every file is checked before the first request, so a bad file fails the batch at once.
        """
        paths = expand_images(images)
        endpoint, model = self._ready_endpoint(endpoint_id)
        payloads: list[tuple[str | bytes, str | None]] = [
            (str(p), str(p)) if _is_uri(p) else read_image_bytes(p, self._max_bytes()) for p in paths
        ]
        params = PredictParams(top_k, threshold)
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            return list(pool.map(lambda item: self._predict_one(endpoint, model, item[0], params, item[1]), payloads))

    def transform(
        self,
        model_id: str,
        images: Iterable[str | Path] | str | Path,
        top_k: int | None = None,
        threshold: float | None = None,
        timeout: float | None = None,
    ) -> list[Prediction]:
        """Batch prediction without an endpoint (SageMaker batch transform...): one prediction per image, in order.

        Every file is checked before anything is sent. Providers without an offline batch path refuse
        with the reason they declared for ``batch_prediction`` or say to use an endpoint.
        """
        self.ensure_ready()
        self.check_capabilities(["batch_prediction"])
        model = self.store.model(model_id)
        if model.provider != self.name:
            raise BadInput(f"model {model_id} was trained by '{model.provider}'; use --provider {model.provider}")
        paths = [Path(p) for p in expand_images(images) if not _is_uri(p) or _refuse_uri(str(p))]
        for path in paths:
            read_image_bytes(path, self._max_bytes())
        predictions = self._transform(model, paths, PredictParams(top_k, threshold), timeout)
        return [p.model_copy(update={"emulated": self.emulated}) for p in predictions]

    def _transform(
        self, model: ModelRecord, images: list[Path], params: PredictParams, timeout: float | None
    ) -> list[Prediction]:
        """Hook: run a batch job over ``images`` and return their predictions in input order."""
        raise BadInput(f"provider '{self.name}' predicts in batches through an endpoint: deploy, then mcv predict")

    def _max_bytes(self) -> int | None:
        limits = self.capabilities.limits
        return limits.max_predict_image_bytes or limits.max_image_bytes

    def _ready_endpoint(self, endpoint_id: str) -> tuple[EndpointRecord, ModelRecord]:
        record = self.store.endpoint(endpoint_id)
        if record.provider != self.name:
            raise BadInput(f"endpoint {endpoint_id} belongs to provider '{record.provider}', not '{self.name}'")
        if record.state != EndpointState.READY.value:
            raise BadInput(f"endpoint {endpoint_id} is {record.state}, not READY; see `mcv endpoints`")
        return record, self.store.model(record.model_id)

    def _predict_one(
        self,
        endpoint: EndpointRecord,
        model: ModelRecord,
        image: str | Path | bytes,
        params: PredictParams,
        name: str | None = None,
    ) -> Prediction:
        started = time.perf_counter()
        found_name: str | None
        if _is_uri(image):
            found_name = str(image)
            prediction = self._predict_uri(endpoint, model, found_name, params)
        else:
            data, found_name = (
                (image, name) if isinstance(image, bytes) and name else read_image_bytes(image, self._max_bytes())
            )
            started = time.perf_counter()
            prediction = self._predict(endpoint, model, data, params)
        elapsed = (time.perf_counter() - started) * 1000.0
        return prediction.model_copy(
            update={
                "latency_ms": prediction.latency_ms or elapsed,
                "image": found_name or name,
                "endpoint_id": endpoint.id,
                "emulated": self.emulated,
            }
        )

    @abstractmethod
    def _predict(self, endpoint: EndpointRecord, model: ModelRecord, image: bytes, params: PredictParams) -> Prediction:
        """Hook: send one image and convert the answer to the shared schema."""

    def _predict_uri(self, endpoint: EndpointRecord, model: ModelRecord, uri: str, params: PredictParams) -> Prediction:
        """Hook: predict an image the service reads from object storage itself (``s3://...``); default: refused."""
        raise BadInput(f"provider '{self.name}' predicts from image files only, not {uri}: download it first")


def _refuse_uri(uri: str) -> bool:
    raise BadInput(f"batch prediction stages local image files; {uri} is remote: download it first")


def _is_uri(image: object) -> bool:
    """``s3://``, ``gs://``... given as a string (a :class:`Path` would have collapsed the ``//``)."""
    return isinstance(image, str) and "://" in image and not image.startswith("file://")


def expand_images(images: Iterable[str | Path] | str | Path) -> list[Path | str]:
    """A folder becomes its image files (recursive, sorted); a list stays in order; ``s3://`` URIs stay strings."""
    if _is_uri(images):
        return [str(images)]
    if isinstance(images, (str, Path)):
        root = Path(images)
        if root.is_dir():
            found: list[Path | str] = sorted(
                p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise BadInput(f"{root}: folder holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            return found
        return [root]
    return [str(p) if _is_uri(p) else Path(p) for p in images]
