"""One dataset, several providers, one fair report (``mcv compare``; DESIGN.md boundaries 4 and 6).

Contract of :func:`compare`:

* **One split for everyone.** The dataset's own test split is used when it has one (test/ folder,
  a format's split field, or the sidecar of ``mcv dataset split``). Otherwise a seeded, stratified
  split is assigned with :func:`multicloud_cv.datasets.splitfile.make_split` and stored as
  ``$MCV_HOME/compare/<compare id>/mcv-split.json`` (same format as the sidecar), never in the user's
  dataset folder. A dataset too small to split (a class with fewer than 2 images, or one the split
  leaves without a training or test image) is refused with one line (:class:`DatasetError`, exit 2).
  ``validation_fraction`` > 0 also assigns a shared validation split when the dataset has none;
  by default each provider carves its own validation images out of the same training split.
* **Checked before anything starts.** An unknown or uninstalled provider, a provider that is not
  configured, a malformed ``provider.key=value`` pair, or hyperparameters a provider rejects fail
  the whole call at once (:class:`BadInput`, exit 2), before any job is submitted. A provider that
  cannot do the dataset's task (its declared capability, with its reason) or whose declared limits
  the dataset breaks (preflight errors) is *refused*: reported with the reason while the others run.
  When every provider is refused nothing can be compared: :class:`BadInput`.
* **Providers run side by side**, a thread each, so their waits overlap. Each one: train
  (``Trainer.submit(spec, run_id=compare id)`` then ``wait``), deploy (``Deployer.deploy``), score
  with OUR evaluation code (:func:`multicloud_cv.evaluation.evaluate_endpoint`, through its own
  Predictor, the same test images and threshold for everyone), then undeploy unless ``keep`` —
  in a ``finally``, so an endpoint never outlives a failed scoring. Endpoints that did not become
  READY are deleted even with ``keep``. A provider that fails is reported with its reason and
  stage; the others still finish.
* **Resumable.** The compare id hashes what was compared (:func:`compare_key`: the dataset path
  and a fingerprint of its contents, the format, the providers, epochs, hyperparameters, ``-o``
  settings (secret values only as a hash), the split fraction and seed). Jobs and endpoints are
  recorded with ``run_id`` = compare id, so re-running the same comparison finds them in the
  :class:`~multicloud_cv.runs.RunStore`: a provider whose job SUCCEEDED is not trained again (its
  model is reused), one whose job is still running is waited for instead of submitted twice,
  and a READY endpoint kept with ``keep`` is reused. ``retrain=True`` ignores earlier jobs.
  ``mcv cleanup --run <compare id>`` deletes endpoints kept with ``keep``.
* **Exit rule** (:func:`exit_code`): 0 when at least one provider is ok and none failed (refused
  providers were declined before anything was sent and do not count as failures); 1 when any
  provider failed; 2 for bad input (raised before anything started).

Nothing here imports a cloud SDK or torch at module load; providers are loaded through the registry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from multicloud_cv.errors import BadInput, DatasetError, MCVError, UnsupportedFeature
from multicloud_cv.runs import RunStore, mcv_home

if TYPE_CHECKING:
    from multicloud_cv.datasets.model import Dataset
    from multicloud_cv.interfaces import Deployer, Predictor, Trainer, TrainingSpec
    from multicloud_cv.schema import CompareSplit, Comparison, Endpoint, Evaluation, Job, Prediction, ProviderResult

log = logging.getLogger(__name__)

#: Where compare runs keep their split and last result: ``$MCV_HOME/compare/<compare id>/``.
COMPARE_DIR = "compare"
DEFAULT_TEST_FRACTION = 0.2

#: ``on_event(provider, message)``: a short human line whenever a provider moves on.
EventCallback = Callable[[str, str], None]


class _Stopped(Exception):
    """Raised inside a provider's thread when the comparison is being interrupted."""


# -- command-line pairs ----------------------------------------------------------------------------


def parse_provider_pairs(pairs: Iterable[str], providers: Sequence[str], option: str) -> dict[str, dict[str, str]]:
    """``provider.key=value`` pairs (``--hp``, ``-o``) to ``{provider: {key: value}}``.

    A pair without a provider prefix, without ``=``, or naming a provider that is not compared
    is bad input (one line that shows the expected form).
    """
    result: dict[str, dict[str, str]] = {}
    for pair in pairs:
        name_key, sep, value = pair.partition("=")
        provider, dot, key = name_key.partition(".")
        if not sep or not dot or not provider.strip() or not key.strip():
            raise BadInput(
                f"{option} '{pair}' is not provider.key=value; write e.g. {option} local.lr=0.01 "
                "(the provider first, so each provider gets its own values)"
            )
        provider = provider.strip()
        if provider not in providers:
            raise BadInput(
                f"{option} '{pair}' is for provider '{provider}', which is not compared "
                f"(--providers {','.join(providers)})"
            )
        result.setdefault(provider, {})[key.strip()] = value
    return result


def parse_providers(text: str | Sequence[str]) -> list[str]:
    """``"a,b,c"`` (or a list) to provider names; empty or repeated names are bad input."""
    raw = text.split(",") if isinstance(text, str) else list(text)
    names = [name.strip() for name in raw if name.strip()]
    if not names:
        raise BadInput("--providers names no provider; write e.g. --providers local,sagemaker")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise BadInput(f"provider '{name}' is listed twice in --providers; name each provider once")
        seen.add(name)
    return names


# -- the key ---------------------------------------------------------------------------------------


def dataset_fingerprint(dataset: Dataset) -> str:
    """sha256 of what the dataset holds: task, classes, and every image's path, labels, boxes and split."""
    rows = sorted(
        (image.path, list(image.labels), [list(map(float, _box(b))) for b in image.boxes], image.split or "")
        for image in dataset.images
    )
    text = json.dumps([dataset.task, dataset.classes, rows], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _box(box: Any) -> tuple[float, float, float, float, float]:
    return (box.label, box.x_min, box.y_min, box.x_max, box.y_max)


def compare_key(
    dataset: Dataset,
    fmt: str,
    providers: Sequence[str],
    epochs: int | None,
    hyperparameters: Mapping[str, Mapping[str, str]],
    settings: Mapping[str, Mapping[str, str]],
    test_fraction: float,
    validation_fraction: float,
    seed: int,
    secret_settings: Mapping[str, Iterable[str]] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The compare id and the document it hashes; the same comparison always gets the same id.

    Provider order does not matter. Secret settings (``secret_settings[provider]`` names them)
    enter the document only as a hash, so the stored key never holds a credential.
    """
    secrets = {name: set(keys) for name, keys in (secret_settings or {}).items()}

    def shown(provider: str, key: str, value: str) -> str:
        if key in secrets.get(provider, set()):
            return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
        return value

    document = {
        "version": 1,
        "dataset": str(dataset.root.resolve()),
        "dataset_fingerprint": dataset_fingerprint(dataset),
        "format": fmt,
        "providers": sorted(providers),
        "epochs": epochs,
        "hyperparameters": {p: dict(sorted(v.items())) for p, v in sorted(hyperparameters.items()) if v},
        "settings": {
            p: {k: shown(p, k, str(val)) for k, val in sorted(v.items())} for p, v in sorted(settings.items()) if v
        },
        "test_fraction": test_fraction,
        "validation_fraction": validation_fraction,
        "seed": seed,
    }
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    return f"cmp-{digest[:12]}", document


def compare_dir(compare_id: str) -> Path:
    """The folder of one comparison: ``$MCV_HOME/compare/<compare id>``."""
    return mcv_home() / COMPARE_DIR / compare_id


# -- the split -------------------------------------------------------------------------------------


def images_fingerprint(paths: Iterable[str]) -> str:
    """sha256 of a set of image paths (sorted, one a line): equal fingerprints, equal image sets."""
    return hashlib.sha256("\n".join(sorted(paths)).encode()).hexdigest()


def _min_images(fraction: float) -> int:
    """Fewest images of a class for which the stratified split keeps one to test and one to train."""
    n = 2
    while n < 10_000 and not (round(n * fraction) >= 1 and n - round(n * fraction) >= 1):
        n += 1
    return n


def shared_split(
    dataset: Dataset,
    folder: Path,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    validation_fraction: float = 0.0,
    seed: int = 0,
) -> tuple[Dataset, CompareSplit, list[str]]:
    """The dataset with the split every provider uses, its description, and notes.

    Uses the dataset's own test split when it has one; otherwise assigns one (and a validation split
    when ``validation_fraction`` > 0 and there is none) and stores it in ``folder`` (created), or
    applies the one already stored there. Raises :class:`DatasetError` for a dataset too small to split.
    """
    from multicloud_cv.datasets.splitfile import SPLIT_FILE, apply_split, make_split, write_split
    from multicloud_cv.schema import CompareSplit

    notes: list[str] = []
    need_test = not dataset.split("test")
    need_val = validation_fraction > 0 and not dataset.split("validation")
    source: Literal["dataset", "assigned"] = "assigned" if need_test or need_val else "dataset"
    file: str | None = next((n.split(":", 1)[1] for n in dataset.notes if n.startswith("split-file:")), None)
    if source == "assigned":
        if need_test:
            small = {name: n for name, n in dataset.label_counts().items() if n < 2}
            if small:
                name, count = next(iter(small.items()))
                more = f" (and {len(small) - 1} more class(es))" if len(small) > 1 else ""
                raise DatasetError(
                    f"dataset {dataset.root} is too small to split: class '{name}' has {count} image(s){more}; "
                    "every class needs at least 2 (one to train on, one to test): add images, or give the "
                    "dataset a test split (a test/ folder, or mcv dataset split)"
                )
        pool = [replace(image, split=None) if image.split in (None, "train") else image for image in dataset.images]
        stored = folder / SPLIT_FILE
        if stored.is_file():
            dataset, _ = apply_split(replace(dataset, images=pool), folder)
            dataset = replace(dataset, images=[i if i.split else replace(i, split="train") for i in dataset.images])
            _check_split(dataset, test_fraction, need_test, notes)
            notes.append(f"split reused from {stored}")
        else:
            dataset = make_split(
                replace(dataset, images=pool),
                validation=validation_fraction if need_val else 0.0,
                test=test_fraction if need_test else 0.0,
                seed=seed,
            )
            _check_split(dataset, test_fraction, need_test, notes)  # before writing: a refused split leaves no file
            folder.mkdir(parents=True, exist_ok=True)
            write_split(dataset, folder, seed=seed, validation=validation_fraction, test=test_fraction)
        file = str(stored)
    test = dataset.split("test")
    train = [image for image in dataset.images if image.split in (None, "train")]
    if not test:
        raise DatasetError(f"dataset {dataset.root} has no test images to score the providers on")
    if not train:
        raise DatasetError(f"dataset {dataset.root} has no training images (only {', '.join(dataset.splits)})")
    description = CompareSplit(
        source=source,
        file=file,
        seed=seed if source == "assigned" else None,
        test_fraction=test_fraction if need_test else None,
        validation_fraction=validation_fraction if need_val else None,
        train_images=len(train),
        validation_images=len(dataset.split("validation")),
        test_images=len(test),
        test_fingerprint=images_fingerprint(image.path for image in test),
    )
    return dataset, description, notes


def _check_split(dataset: Dataset, test_fraction: float, need_test: bool, notes: list[str]) -> None:
    """Every class must keep a training image; a single-label class must also have a test image."""
    train_counts = dataset.label_counts(i for i in dataset.images if i.split in (None, "train"))
    test_counts = dataset.label_counts(dataset.split("test"))
    total = dataset.label_counts()
    for name, count in train_counts.items():
        if count == 0:
            raise DatasetError(
                f"dataset {dataset.root} is too small to split: class '{name}' ({total[name]} image(s)) has no "
                "training image left; add images or lower --test-fraction / --val"
            )
    missing = [name for name, count in test_counts.items() if count == 0]
    if not (missing and need_test):
        return
    if dataset.task == "classification":
        name = missing[0]
        raise DatasetError(
            f"dataset {dataset.root} is too small to split: class '{name}' ({total[name]} images) gets no test image "
            f"at --test-fraction {test_fraction:g}; each class needs at least {_min_images(test_fraction)} images: "
            "add images, raise --test-fraction, or give the dataset a test split"
        )
    notes.append(f"no test image carries class(es) {', '.join(missing)}: their scores are not measured")


# -- one provider ----------------------------------------------------------------------------------


@dataclass
class _Lane:
    """One runnable provider: its three roles, its spec and what preflight warned about."""

    name: str
    trainer: Trainer
    deployer: Deployer
    predictor: Predictor
    spec: TrainingSpec
    hyperparameters: dict[str, str]
    warnings: list[str] = field(default_factory=list)


class _Recorder:
    """Passes every call through to a provider's Predictor and remembers which images were sent.

    The fingerprint of what it saw (``ProviderResult.test_fingerprint``) shows that every provider
    was asked about exactly the same test images.
    """

    def __init__(self, predictor: Predictor, root: Path, stop: threading.Event) -> None:
        self.predictor = predictor
        self.root = root
        self.stop = stop
        self.images: list[str] = []
        self._lock = threading.Lock()

    def predict(
        self, endpoint_id: str, image: str | Path | bytes, top_k: int | None = None, threshold: float | None = None
    ) -> Prediction:
        if self.stop.is_set():
            raise _Stopped()
        if not isinstance(image, bytes):
            path = Path(image)
            try:
                shown = str(path.relative_to(self.root))
            except ValueError:
                shown = str(path)
            with self._lock:
                self.images.append(shown)
        return self.predictor.predict(endpoint_id, image, top_k=top_k, threshold=threshold)


@dataclass
class _Options:
    """What every lane shares."""

    compare_id: str
    dataset: Dataset
    threshold: float
    keep: bool
    retrain: bool
    train_timeout: float | None
    deploy_timeout: float | None
    store: RunStore
    stop: threading.Event
    on_event: EventCallback | None


def _say(options: _Options, provider: str, message: str) -> None:
    if options.on_event is not None:
        try:
            options.on_event(provider, message)
        except Exception:  # a display problem never stops a comparison
            log.debug("progress callback failed", exc_info=True)


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, MCVError) else f"{type(exc).__name__}: {exc}"


def _run_lane(lane: _Lane, options: _Options) -> ProviderResult:
    """Train (or reuse), deploy, score and undeploy one provider; its own failures are reported, not raised."""
    from multicloud_cv.schema import ProviderResult

    result = ProviderResult(
        provider=lane.name,
        state="failed",
        stage="train",  # moves on with the work, so a failure names where it happened
        hyperparameters=lane.hyperparameters,
        warnings=list(lane.warnings),
    )
    try:
        job = _trained_job(lane, options, result)
        result.job_id, result.model_id = job.id, job.model_id
        result.train_cost_usd = job.cost_usd
        result.provider_reported = dict(job.metrics)
        result.emulated = result.emulated or job.emulated or lane.trainer.emulated
        record = options.store.job(job.id)
        if record.finished_at is not None:
            result.train_seconds = max(0.0, record.finished_at - record.created_at)
        if not job.model_id:
            raise MCVError(f"job {job.id} succeeded but recorded no model")
        result.stage = "deploy"
        evaluation = _serve_and_score(lane, options, job.model_id, result)
        result.evaluation = evaluation.model_copy(update={"provider_reported": result.provider_reported or None})
        result.emulated = result.emulated or evaluation.emulated
        _prediction_cost(result)
        if result.stage == "undeploy":  # scored, but an endpoint could not be deleted: it keeps costing money
            raise MCVError(result.reason or "an endpoint could not be deleted")
        result.state, result.reason, result.stage = "ok", None, None
        _say(options, lane.name, "done: " + _headline(evaluation))
    except _Stopped:
        result.reason = "interrupted"
    except Exception as exc:  # MCVError, or a plugin bug: reported for this provider, the others go on
        if not isinstance(exc, MCVError):
            log.exception("provider %s failed during %s", lane.name, result.stage)
        result.reason = _reason(exc)
        _say(options, lane.name, f"failed ({result.stage}): {result.reason}")
    return result


def _headline(evaluation: Evaluation) -> str:
    if evaluation.task == "detection":
        return f"mAP@.5 {evaluation.map50 or 0:.4f}, mAP {evaluation.map or 0:.4f}"
    return f"accuracy {evaluation.accuracy or 0:.4f}, macro F1 {evaluation.macro_f1 or 0:.4f}"


def _trained_job(lane: _Lane, options: _Options, result: ProviderResult) -> Job:
    """The job whose model this comparison scores: an earlier success, one still running, or a new one."""
    from multicloud_cv.interfaces import job_from_record
    from multicloud_cv.states import JobState

    earlier = [] if options.retrain else [r for r in options.store.jobs(lane.name) if r.run_id == options.compare_id]
    succeeded = [r for r in earlier if r.state == JobState.SUCCEEDED.value and r.model_id]
    if succeeded:
        found = succeeded[-1]
        result.reused = True
        _say(options, lane.name, f"reusing model {found.model_id} of job {found.id} (trained by an earlier run)")
        return job_from_record(found, emulated=lane.trainer.emulated)
    running = [r for r in earlier if not JobState(r.state).is_terminal() and r.native_id is not None]
    if running:
        _say(options, lane.name, f"waiting for job {running[-1].id}, started by an earlier run")
        result.reused, result.job_id = True, running[-1].id
        return _wait_job(lane, options, running[-1].id)
    if options.stop.is_set():
        raise _Stopped()
    job = lane.trainer.submit(lane.spec, run_id=options.compare_id)
    result.job_id = job.id
    _say(options, lane.name, f"submitted {job.id}")
    return _wait_job(lane, options, job.id)


def _wait_job(lane: _Lane, options: _Options, job_id: str) -> Job:
    shown: list[str] = []

    def update(job: Job) -> None:
        words = f"{job.native_state or job.state.value} {job.progress or ''}".strip()
        if not shown or shown[-1] != words:
            shown.append(words)
            _say(options, lane.name, f"training {job_id}: {words}")
        if options.stop.is_set() and not job.state.is_terminal():
            raise _Stopped()

    return lane.trainer.wait(job_id, timeout=options.train_timeout, on_update=update)


def _stop_check(options: _Options) -> Callable[[Endpoint], None]:
    def check(endpoint: Endpoint) -> None:
        if options.stop.is_set() and not endpoint.state.is_terminal():
            raise _Stopped()

    return check


def _serve_and_score(lane: _Lane, options: _Options, model_id: str, result: ProviderResult) -> Evaluation:
    """Deploy (or reuse an endpoint kept earlier), evaluate, and undeploy in a ``finally`` unless ``keep``.

    Keeps ``result.stage`` current (``deploy``, ``evaluate``); after a successful evaluation it is
    ``undeploy`` when deleting an endpoint failed, and ``result.reason`` says which one and how to
    delete it by hand.
    """
    from multicloud_cv.evaluation import evaluate_endpoint
    from multicloud_cv.states import EndpointState

    kept = [
        r
        for r in options.store.endpoints()
        if r.run_id == options.compare_id and r.provider == lane.name and r.model_id == model_id and r.state == "READY"
    ]
    endpoint: Endpoint | None = None
    evaluation: Evaluation | None = None
    failed = True
    try:
        for record in reversed(kept):
            current = lane.deployer.status(record.id)
            if current.state is EndpointState.READY:
                endpoint = current
                _say(options, lane.name, f"reusing endpoint {endpoint.id} (kept by an earlier run)")
                break
        if endpoint is None:
            if options.stop.is_set():
                raise _Stopped()
            _say(options, lane.name, f"deploying model {model_id}")
            endpoint = lane.deployer.deploy(model_id, wait=False, run_id=options.compare_id)
            result.endpoint_id = endpoint.id
            if endpoint.state is EndpointState.CREATING:
                endpoint = lane.deployer.wait(
                    endpoint.id, timeout=options.deploy_timeout, on_update=_stop_check(options)
                )
        result.endpoint_id = endpoint.id
        result.endpoint_state = endpoint.state
        result.hosting_cost_per_hour_usd = endpoint.cost_per_hour_usd
        result.emulated = result.emulated or endpoint.emulated
        if endpoint.state is not EndpointState.READY:
            raise MCVError(
                f"endpoint {endpoint.id} is {endpoint.state.value}: {endpoint.failure_reason or 'no reason given'}"
            )
        result.stage = "evaluate"
        _say(options, lane.name, f"evaluating on {endpoint.id}")
        recorder = _Recorder(lane.predictor, options.dataset.root, options.stop)
        evaluation = evaluate_endpoint(
            recorder,  # type: ignore[arg-type]  # every call goes through to the provider's own Predictor
            endpoint.id,
            options.dataset,
            split="test",
            threshold=options.threshold,
        )
        result.test_fingerprint = images_fingerprint(recorder.images)
        failed = False
    finally:
        problems = _undeploy_ours(lane, options, result)
        if problems and failed:
            result.warnings.extend(problems)
        elif problems:
            result.reason = "; ".join(problems)
            result.stage = "undeploy"
    assert evaluation is not None
    return evaluation


def _undeploy_ours(lane: _Lane, options: _Options, result: ProviderResult) -> list[str]:
    """Delete this provider's live endpoints of the comparison; with ``keep``, only those not READY.

    Covers an endpoint whose creation failed or timed out (its record exists). Returns one line per
    endpoint that could not be deleted.
    """
    from multicloud_cv.states import EndpointState

    problems = []
    for record in options.store.endpoints():
        if record.run_id != options.compare_id or record.provider != lane.name:
            continue
        if options.keep and record.state == EndpointState.READY.value:
            continue
        try:
            gone = lane.deployer.undeploy(record.id)
        except Exception as exc:
            log.warning("could not delete endpoint %s of %s: %s", record.id, lane.name, _reason(exc))
            problems.append(
                f"endpoint {record.id} could not be deleted ({_reason(exc)}); delete it with `mcv undeploy {record.id}`"
            )
            continue
        _say(options, lane.name, f"undeployed {record.id}")
        if record.id == result.endpoint_id:
            result.endpoint_state = gone.state
    return problems


# -- the comparison --------------------------------------------------------------------------------


def _load(dataset: str | Path | Dataset, fmt: str) -> Dataset:
    from multicloud_cv.datasets.model import Dataset as DatasetClass

    if isinstance(dataset, DatasetClass):
        return dataset
    from multicloud_cv.datasets.formats import read_dataset

    return read_dataset(dataset, fmt)


def _prepare(
    names: Sequence[str],
    dataset: Dataset,
    epochs: int | None,
    hyperparameters: Mapping[str, Mapping[str, str]],
    settings: Mapping[str, Mapping[str, str]],
    store: RunStore,
) -> tuple[list[_Lane], dict[str, ProviderResult]]:
    """Every provider checked before anything starts: the lanes that run, and the refused providers.

    Not installed, not configured or hyperparameters it rejects: :class:`BadInput` raised. A task it
    declared it cannot do, a missing role, or the dataset breaking its declared limits: refused.
    """
    from multicloud_cv.capabilities import Task
    from multicloud_cv.datasets.preflight import Severity
    from multicloud_cv.interfaces import TrainingSpec
    from multicloud_cv.registry import registry
    from multicloud_cv.schema import ProviderResult

    task = Task(dataset.task)
    lanes: list[_Lane] = []
    refused: dict[str, ProviderResult] = {}

    def refuse(name: str, reason: str, warnings: list[str] | None = None) -> None:
        refused[name] = ProviderResult(
            provider=name,
            state="refused",
            reason=reason,
            stage="check",
            hyperparameters=dict(hyperparameters.get(name, {})),
            warnings=warnings or [],
        )

    for name in names:
        entry = registry().entry(name)
        hp = dict(hyperparameters.get(name, {}))
        overrides = dict(settings.get(name, {}))
        missing = [role for role in ("trainer", "deployer", "predictor") if role not in entry.classes]
        if missing:
            refuse(name, f"provider '{name}' has no {' or '.join(missing)} (it provides: {', '.join(entry.roles)})")
            continue
        gaps = entry.classes["trainer"].capabilities.gaps([task.feature])
        if gaps:
            refuse(name, str(UnsupportedFeature(name, gaps)))
            continue
        trainer = registry().get(name, "trainer", overrides=overrides, store=store)
        spec = trainer.resolved(TrainingSpec(dataset=dataset, task=task, epochs=epochs, hyperparameters=hp))
        gaps = trainer.capabilities.gaps(spec.requirements())
        if gaps:
            refuse(name, str(UnsupportedFeature(name, gaps)))
            continue
        deployer = registry().get(name, "deployer", overrides=overrides, store=store)
        predictor = registry().get(name, "predictor", overrides=overrides, store=store)
        for role in (trainer, deployer, predictor):
            role.ensure_ready()
        findings = trainer.check(spec, files=True)
        warnings = [f.line() for f in findings if f.severity is Severity.WARNING]
        errors = [f for f in findings if f.severity is Severity.ERROR]
        if errors:
            more = f" ({len(errors) - 1} more: mcv dataset validate lists them)" if len(errors) > 1 else ""
            refuse(name, errors[0].line() + more, warnings)
            continue
        trainer._validate(spec)  # the provider's own hyperparameter checks: BadInput before anything is sent
        lanes.append(_Lane(name, trainer, deployer, predictor, spec, hp, warnings))
    return lanes, refused


def compare(
    dataset: str | Path | Dataset,
    providers: str | Sequence[str],
    *,
    fmt: str = "auto",
    epochs: int | None = None,
    hyperparameters: Mapping[str, Mapping[str, str]] | None = None,
    settings: Mapping[str, Mapping[str, str]] | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    validation_fraction: float = 0.0,
    seed: int = 0,
    threshold: float = 0.5,
    keep: bool = False,
    retrain: bool = False,
    train_timeout: float | None = None,
    deploy_timeout: float | None = 600.0,
    store: RunStore | None = None,
    on_event: EventCallback | None = None,
) -> Comparison:
    """Train every provider on the same split and score each with our evaluation code (see the module docstring).

    ``dataset`` is a path (read as ``fmt``) or a loaded :class:`Dataset`. ``hyperparameters`` and
    ``settings`` map a provider name to its own ``--hp`` and ``-o`` values. Raises :class:`BadInput`
    for anything wrong before work starts; a provider's own failure is reported in the result, never
    raised. On ``KeyboardInterrupt`` every provider stops at its next step and deletes the endpoints
    it made (unless ``keep``), then the interrupt is re-raised; training jobs keep running and running
    the same comparison again picks them up.
    """
    from multicloud_cv.registry import registry
    from multicloud_cv.schema import Comparison

    started = time.time()
    names = parse_providers(providers)
    hp_given = {k: dict(v) for k, v in (hyperparameters or {}).items() if v}
    settings_given = {k: dict(v) for k, v in (settings or {}).items() if v}
    for option, given in (("--hp", hp_given), ("-o", settings_given)):
        stray = sorted(set(given) - set(names))
        if stray:
            raise BadInput(f"{option} values for provider '{stray[0]}', which is not compared ({', '.join(names)})")
    if not 0 < test_fraction < 1:
        raise BadInput(f"--test-fraction {test_fraction:g} is not a fraction in (0, 1)")
    if not 0 <= validation_fraction < 1 or test_fraction + validation_fraction >= 1:
        raise BadInput(f"--val {validation_fraction:g} with --test-fraction {test_fraction:g} leaves nothing to train")
    if not 0 <= threshold <= 1:
        raise BadInput(f"--threshold {threshold:g} is not in 0..1")
    if epochs is not None and epochs < 1:
        raise BadInput(f"--epochs {epochs} must be at least 1")
    for name in names:  # an unknown provider fails the whole comparison at once, naming the installed ones
        registry().entry(name)
    store = store or RunStore()
    data = _load(dataset, fmt)
    secret = {name: [s.name for s in registry().entry(name).primary.settings if s.secret] for name in names}
    compare_id, key = compare_key(
        data,
        data.source_format,
        names,
        epochs,
        hp_given,
        settings_given,
        test_fraction,
        validation_fraction,
        seed,
        secret,
    )
    folder = compare_dir(compare_id)
    data, split, notes = shared_split(data, folder, test_fraction, validation_fraction, seed)
    lanes, results = _prepare(names, data, epochs, hp_given, settings_given, store)
    if not lanes:
        reasons = "; ".join(f"{r.reason}" for r in results.values())
        raise BadInput(f"no provider can run this comparison: {reasons}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "key.json").write_text(json.dumps({"compare_id": compare_id, **key}, indent=1), encoding="utf-8")
    stop = threading.Event()
    options = _Options(compare_id, data, threshold, keep, retrain, train_timeout, deploy_timeout, store, stop, on_event)
    for result in results.values():
        _say(options, result.provider, f"refused: {result.reason}")
    with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="mcv-compare") as pool:
        futures = {pool.submit(_run_lane, lane, options): lane.name for lane in lanes}
        try:
            wait_futures(futures)
        except BaseException:
            stop.set()
            log.warning(
                "comparison %s interrupted: providers stop at their next step and delete their endpoints; "
                "training jobs keep running and the same mcv compare picks them up",
                compare_id,
            )
            raise
        for future, name in futures.items():
            results[name] = future.result()
    ordered = [results[name] for name in names]
    comparison = Comparison(
        compare_id=compare_id,
        dataset=str(data.root),
        format=data.source_format,
        task=data.task,  # type: ignore[arg-type]
        classes=list(data.classes),
        split=split,
        epochs=epochs,
        threshold=threshold,
        keep=keep,
        providers=ordered,
        started_at=datetime.fromtimestamp(started, tz=UTC),
        finished_at=datetime.now(tz=UTC),
        emulated=any(r.emulated for r in ordered),
        notes=notes,
    )
    (folder / "result.json").write_text(comparison.model_dump_json(indent=1), encoding="utf-8")
    return comparison


def exit_code(comparison: Comparison) -> int:
    """0: at least one provider ok and none failed (refused ones don't count); 1: any provider failed."""
    states = [result.state for result in comparison.providers]
    if "failed" in states or "ok" not in states:
        return 1
    return 0


def primary_metric(comparison: Comparison) -> tuple[str, Callable[[Evaluation], float | None]]:
    """The headline column: accuracy (classification, multi-label exact match) or mAP@.5 (detection)."""
    if comparison.task == "detection":
        return "mAP@.5", lambda e: e.map50
    return "accuracy", lambda e: e.accuracy


# -- reports ---------------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {seconds:02d}s"


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _money(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:.4f}" if 0 < value < 0.01 else f"${value:,.2f}"


def summary_rows(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    """The table's header and one row per provider, as text (terminal, Markdown and HTML share it)."""
    metric, read = primary_metric(comparison)
    header = ["provider", "state", metric, "macro F1", "train time", "train cost", "p50 latency", "emulated"]
    rows = []
    for result in comparison.providers:
        evaluation = result.evaluation
        latency = evaluation.latency_ms_p50 if evaluation else None
        rows.append(
            [
                result.provider,
                result.state,
                _number(read(evaluation)) if evaluation else "-",
                _number(evaluation.macro_f1) if evaluation else "-",
                _seconds(result.train_seconds) + (" (reused)" if result.reused and result.train_seconds else ""),
                _money(result.train_cost_usd),
                "-" if latency is None else f"{latency:.1f} ms",
                "yes" if result.emulated else "no",
            ]
        )
    return header, rows


def _heading(comparison: Comparison) -> list[str]:
    split = comparison.split
    how = (
        f"assigned by mcv compare (seed {split.seed}, test {split.test_fraction or 0:g}), stored in {split.file}"
        if split.source == "assigned"
        else "the dataset's own" + (f" ({split.file})" if split.file else "")
    )
    return [
        f"comparison {comparison.compare_id}: {comparison.dataset} ({comparison.format}, {comparison.task}, "
        f"{len(comparison.classes)} classes)",
        f"split: {split.train_images} train / {split.validation_images} validation / {split.test_images} test "
        f"images, {how}; the same for every provider; threshold {comparison.threshold:g}",
    ]


def _afterword(comparison: Comparison) -> list[str]:
    lines = []
    for result in comparison.providers:
        if result.state != "ok":
            where = f" ({result.stage})" if result.stage and result.state == "failed" else ""
            lines.append(f"{result.provider} {result.state}{where}: {result.reason or 'no reason given'}")
    kept = [r for r in comparison.providers if r.endpoint_id and r.endpoint_state and r.endpoint_state.value == "READY"]
    if kept:
        names = ", ".join(f"{r.endpoint_id} ({r.provider})" for r in kept)
        lines.append(
            f"endpoints left running (--keep): {names}; delete them: mcv cleanup --run {comparison.compare_id}"
        )
    if comparison.emulated:
        lines.append("EMULATED: some results come from a provider's emulator, not the real service")
    lines += comparison.notes
    return lines


def report_markdown(comparison: Comparison, details: bool = True) -> str:
    """The comparison as Markdown: heading, the table, a line per failed/refused provider; ``details`` adds
    each provider's per-label scores, confusion matrix, own reported metrics and ids."""
    header, rows = summary_rows(comparison)
    out = [*_heading(comparison), ""] if not details else [f"# mcv compare {comparison.compare_id}", ""]
    if details:
        out += [f"- {line}" for line in _heading(comparison)] + [""]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "|".join("---" for _ in header) + "|")
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    after = _afterword(comparison)
    if after:
        out += ["", *after]
    if details:
        for result in comparison.providers:
            out += ["", f"## {result.provider}", ""]
            out += _detail_lines(result)
    return "\n".join(out) + "\n"


def _prediction_cost(result: ProviderResult) -> None:
    """Fill the result's prediction cost per 1,000 images (the report's rule: price row, else hourly x latency)."""
    from multicloud_cv.report import prediction_cost_per_1000

    cost = prediction_cost_per_1000(result)
    result.prediction_cost_per_1000_usd = cost.usd
    result.prediction_cost_basis = cost.basis


def _detail_lines(result: ProviderResult) -> list[str]:
    out = [
        f"- state: {result.state}" + (f" ({result.stage}): {result.reason}" if result.reason else ""),
        f"- job {result.job_id or '-'}, model {result.model_id or '-'}, endpoint {result.endpoint_id or '-'}"
        + (f" ({result.endpoint_state.value})" if result.endpoint_state else ""),
        f"- hosting cost per hour: {_money(result.hosting_cost_per_hour_usd)}",
        f"- prediction cost per 1,000 images: {_money(result.prediction_cost_per_1000_usd)}"
        + (f" ({result.prediction_cost_basis})" if result.prediction_cost_basis else ""),
    ]
    if result.hyperparameters:
        out.append("- hyperparameters: " + ", ".join(f"{k}={v}" for k, v in sorted(result.hyperparameters.items())))
    if result.provider_reported:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(result.provider_reported.items()))
        out.append(f"- the provider's own metrics (not ours, shown beside them): {shown}")
    out += [f"- warning: {line}" for line in result.warnings]
    evaluation = result.evaluation
    if evaluation is None:
        return out
    if evaluation.latency_ms_p50 is not None:
        out.append(f"- latency p50 {evaluation.latency_ms_p50:.1f} ms, p95 {evaluation.latency_ms_p95 or 0:.1f} ms")
    if evaluation.per_label:
        out += ["", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        out += [
            f"| {row.name} | {row.precision:.3f} | {row.recall:.3f} | {row.f1:.3f} | {row.support} |"
            for row in evaluation.per_label
        ]
    if evaluation.confusion:
        labels = evaluation.labels
        out += ["", "confusion (rows: true, columns: predicted)", ""]
        out += ["| | " + " | ".join(labels) + " |", "|---|" + "|".join("---" for _ in labels) + "|"]
        out += [
            f"| {labels[i]} | " + " | ".join(str(v) for v in counts) + " |"
            for i, counts in enumerate(evaluation.confusion)
        ]
    return out


def report_html(comparison: Comparison) -> str:
    """The comparison as one self-contained HTML page with charts: see :func:`multicloud_cv.report.report_html`.

    Needs plotly (the ``report`` extra); without it raises :class:`multicloud_cv.report.ReportDependencyMissing`.
    """
    from multicloud_cv.report import report_html as html_report

    return html_report(comparison)


def _slim(result: ProviderResult) -> ProviderResult:
    """``result`` without its evaluation tables (the HTML report draws them itself)."""
    if result.evaluation is None:
        return result
    slim = result.evaluation.model_copy(update={"per_label": [], "confusion": None})
    return result.model_copy(update={"evaluation": slim})
