"""The SageMaker provider end to end through the emulator, against a plain boto3 script; and its status calls.

Two parts (``--part e2e``, ``--part waits``, default both), each against
:func:`mcv_sagemaker.emulator.sagemaker_emulator` on 127.0.0.1 (moto for S3 and IAM, the emulated
SageMaker control plane and runtime on one port; the emulator really trains with the local engine).

``e2e``: one run is: train on a tiny JPEG dataset (``make_tiny_dataset``, 3 classes x ``--per-class``
training images, RecordIO channels), deploy, predict ``--images`` images with 4 threads, undeploy.

* ours: ``Trainer.submit`` + ``Trainer.wait`` (what ``Trainer.train`` does), ``Deployer.deploy``,
  ``Predictor.predict_batch(concurrency=4)``, ``Deployer.undeploy``, each provider object from
  ``registry().get("sagemaker", role, config=..., store=RunStore(...))`` with ``poll_s`` = ``--poll``. That
  includes our preflight, hyperparameter checks, the account checks (bucket region, role, quotas), writing
  the RecordIO channels, staging, the run records and the shared prediction schema.
* the peer: a plain boto3 script making the same calls from one new ``boto3.session.Session`` (as a fresh
  script has; boto3's default session would carry its loaded models over from the previous run):
  ``s3.upload_file`` of the same ``.rec`` files (written beforehand, untimed, by the same channel code, so
  the bytes are identical, checked by ETag: a peer user has them from im2rec already),
  ``create_training_job`` with the request our ``plan()`` gives (only the job name differs),
  ``describe_training_job`` polled on the same schedule as ours (the provider's
  ``poll_schedule()``: first ``poll_s``, x1.5, at most 60 s, +-10 % jitter), ``create_model`` /
  ``create_endpoint_config`` / ``create_endpoint``, ``describe_endpoint`` polled the same way,
  ``invoke_endpoint`` on 4 threads with the JSON parsed, then the three deletes and ``describe_endpoint``
  polled until the endpoint is gone.

Each side gets a fresh bucket per run (so our staging never skips objects a previous run left). The
sides alternate, ``--runs`` times each after one untimed warm-up of each (imports, first model load).
Reported per side: total wall time, the emulator's own training time (``TrainingEndTime -
TrainingStartTime`` of DescribeTrainingJob: the billable span, download + training + upload in the
emulator, the same work for both), everything but training (total - training), the time of each phase
and the calls the emulator's port received (SageMaker, runtime, Service Quotas), medians. Target:
ours / peer of "everything but training" <= 1.2. Waiting is on the same schedule for both, so the
overshoot past the job's end is in both figures; it is also why single runs scatter: more ``--runs``
narrows the medians.

``waits``: how many DescribeTrainingJob calls ``Trainer.wait`` makes for a 10-minute job; target <= 30.
The schedule is scale-invariant (waiting T s with intervals (a, a*1.5, ... capped at M) makes as many
calls as waiting T/k s with (a/k, ..., M/k)), so the run is real but scaled by k = 10: an emulator job whose
walk (Starting, Downloading, Training, Uploading, each ``pace`` s at least: emulator/training.py) lasts
~60 s with ``pace`` 15 s, waited on by a ``SageMakerTrainer`` subclass whose ``poll_schedule()`` is the real
class's default (poll_s 10: 10 s, x1.5, at most 60 s) divided by 10. Calls are counted by the emulator
(``calls("DescribeTrainingJob")`` during the wait). Also printed: the analytic count (no jitter) for the
unscaled schedule and T = 600 s, and for the scaled schedule and the measured wait.

Results go to ``.bench/sagemaker.json``. Not part of the test suite; stops by itself (``--max-seconds``).
Run it on a quiet machine::

    python benchmarks/bench_sagemaker.py                       # both parts, 3 runs each side
    python benchmarks/bench_sagemaker.py --part e2e --runs 5 --images 100
    python benchmarks/bench_sagemaker.py --part waits
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from mcv_sagemaker.channels import prepare_input
from mcv_sagemaker.emulator import SageMakerEmulator, sagemaker_emulator
from mcv_sagemaker.provider import SageMakerTrainer
from multicloud_cv.datasets import Dataset, load_dataset
from multicloud_cv.interfaces import TrainingSpec
from multicloud_cv.registry import registry
from multicloud_cv.runs import RunStore
from multicloud_cv.states import EndpointState, JobState
from multicloud_cv.testing.data import make_tiny_dataset
from multicloud_cv.waiting import Backoff

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")

E2E_PACE = 0.05
"""Seconds per emulator state in the e2e part: small, so that waiting does not dominate."""
WAIT_SCALE = 10.0
"""k of the waits part: the schedule and the job are both 10 times shorter than the real ones."""
WAIT_PACE = 15.0
"""Seconds per state in the waits part: Starting, Downloading, Training, Uploading: ~60 s in all."""
REAL_JOB_S = 600.0
"""The job length the waits target is stated for (10 minutes)."""
TARGET_RATIO = 1.2
TARGET_CALLS = 30
CONCURRENCY = 4
ENDPOINT_INSTANCE = ("ml.m5.xlarge", 1)
"""The provider's default endpoint_instance_type and endpoint_instance_count, which the peer uses too."""


# -- data ----------------------------------------------------------------------------------------


def tiny_dataset(root: Path, per_class: int) -> Dataset:
    """3 classes x ``per_class`` training JPEGs (+ 4 test images a class) at 32 px."""
    return load_dataset(make_tiny_dataset(root, train_per_class=per_class, test_per_class=4, fmt="JPEG"))


def predict_paths(dataset: Dataset, count: int) -> list[Path]:
    """``count`` image files of the dataset, cycling through it."""
    files = [dataset.absolute(image) for image in dataset.images]
    return [files[n % len(files)] for n in range(count)]


def settings(emu: SageMakerEmulator, bucket: str, poll_s: float) -> dict[str, str]:
    return {"region": emu.region, "bucket": bucket, "role_arn": emu.role_arn, "poll_s": str(poll_s)}


# -- one run of each side ------------------------------------------------------------------------


@dataclass
class Run:
    """One end-to-end run of one side."""

    side: str
    total_s: float
    training_s: float
    phases: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    job: str = ""

    @property
    def rest_s(self) -> float:
        return self.total_s - self.training_s


def emulator_training_seconds(emu: SageMakerEmulator, job_name: str) -> float:
    """``TrainingEndTime - TrainingStartTime`` of the job, as the emulator reports it."""
    answer = emu.client("sagemaker").describe_training_job(TrainingJobName=job_name)
    return float((answer["TrainingEndTime"] - answer["TrainingStartTime"]).total_seconds())


class Phases:
    """Wall seconds per named phase, in order."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._mark = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self._mark
        self._mark = now


def run_ours(
    emu: SageMakerEmulator, dataset: Dataset, images: list[Path], bucket: str, work: Path, poll_s: float, epochs: int
) -> Run:
    """Train, deploy, predict, undeploy through the provider; the store is new for the run."""
    start = time.perf_counter()
    phases = Phases()
    store = RunStore(work / "runs.sqlite")
    config = settings(emu, bucket, poll_s)
    get = registry().get
    trainer = get("sagemaker", "trainer", config=config, store=store)
    deployer = get("sagemaker", "deployer", config=config, store=store)
    predictor = get("sagemaker", "predictor", config=config, store=store)
    submitted = trainer.submit(TrainingSpec(dataset=dataset, epochs=epochs))
    phases.done("stage + create")
    job = trainer.wait(submitted.id, timeout=600)
    phases.done("wait for training")
    if job.state is not JobState.SUCCEEDED or not job.model_id:
        raise SystemExit(f"ours: training ended {job.state.value}: {job.failure_reason}")
    endpoint = deployer.deploy(job.model_id, timeout=600)
    if endpoint.state is not EndpointState.READY:
        raise SystemExit(f"ours: endpoint {endpoint.id} is {endpoint.state.value}: {endpoint.failure_reason}")
    phases.done("deploy")
    predictions = predictor.predict_batch(endpoint.id, images, concurrency=CONCURRENCY)
    if len(predictions) != len(images) or not all(p.labels for p in predictions):
        raise SystemExit("ours: a prediction came back without labels")
    phases.done("predict")
    gone = deployer.undeploy(endpoint.id)
    if gone.state is not EndpointState.DELETED:
        raise SystemExit(f"ours: undeploy left the endpoint {gone.state.value}")
    phases.done("undeploy")
    total = time.perf_counter() - start
    name = str(job.native_id)
    return Run("ours", total, emulator_training_seconds(emu, name), phases.seconds, job=name)


@dataclass(frozen=True)
class PeerInput:
    """What the peer script has before it starts: its .rec files and the request to send."""

    files: dict[Path, str]  # local file -> key under the input prefix
    request: dict[str, Any]


def peer_input(
    emu: SageMakerEmulator, dataset: Dataset, bucket: str, work: Path, poll_s: float, epochs: int
) -> PeerInput:
    """The ``.rec`` files (our channel code, so the bytes are ours) and our plan's CreateTrainingJob request."""
    store = RunStore(work / "plan.sqlite")
    trainer = registry().get("sagemaker", "trainer", config=settings(emu, bucket, poll_s), store=store)
    plan = trainer.plan(TrainingSpec(dataset=dataset, epochs=epochs))
    request = next(r.params for r in plan.requests if r.operation == "CreateTrainingJob")
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    input_uri = channels["train"].removesuffix("/").removesuffix("/train")
    prepared = prepare_input(dataset, "classification", "recordio", work / "channels", lambda _fp: input_uri)
    planned_keys = {r.params["Key"] for r in plan.requests if r.operation == "PutObject"}
    prefix = input_uri.removeprefix("s3://").partition("/")[2]
    keys = {path: f"{prefix}/{key}" for path, key in prepared.files.items()}
    if set(keys.values()) != planned_keys:
        raise SystemExit(f"peer files {sorted(keys.values())} differ from our plan's {sorted(planned_keys)}")
    return PeerInput(files=keys, request=request)


def peer_poll(fetch: Callable[[], T], done: Callable[[T], bool], schedule: Backoff, timeout: float = 600.0) -> T:
    """A plain polling loop: the numbers of ``schedule`` (first interval, x factor, ceiling, +-jitter)."""
    deadline = time.monotonic() + timeout
    interval = schedule.initial
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"peer: still waiting after {timeout:.0f} s")
        time.sleep(interval * (1 + random.uniform(-schedule.jitter, schedule.jitter)))
        interval = min(schedule.maximum, interval * schedule.factor)


def run_peer(
    emu: SageMakerEmulator, given: PeerInput, images: list[Path], bucket: str, schedule: Backoff, run: str
) -> Run:
    """The same work as :func:`run_ours` written as a user would with boto3 alone."""
    import boto3

    start = time.perf_counter()
    phases = Phases()
    session = boto3.session.Session()  # what a fresh script starts with (boto3's default session would be reused)
    s3 = session.client("s3")
    sagemaker = session.client("sagemaker")
    runtime = session.client("sagemaker-runtime")
    for path, key in given.files.items():
        s3.upload_file(str(path), bucket, key)
    name = f"peer-{run}-{int(time.time() * 1000) % 10**9}"
    request = {**given.request, "TrainingJobName": name}
    sagemaker.create_training_job(**request)
    phases.done("stage + create")
    job = peer_poll(
        lambda: sagemaker.describe_training_job(TrainingJobName=name),
        lambda answer: answer["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"),
        schedule,
    )
    phases.done("wait for training")
    if job["TrainingJobStatus"] != "Completed":
        raise SystemExit(f"peer: training ended {job['TrainingJobStatus']}: {job.get('FailureReason')}")
    sagemaker.create_model(
        ModelName=name,
        PrimaryContainer={
            "Image": request["AlgorithmSpecification"]["TrainingImage"],
            "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"],
        },
        ExecutionRoleArn=request["RoleArn"],
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InitialInstanceCount": ENDPOINT_INSTANCE[1],
                "InstanceType": ENDPOINT_INSTANCE[0],
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    endpoint = peer_poll(
        lambda: sagemaker.describe_endpoint(EndpointName=name),
        lambda answer: answer["EndpointStatus"] in ("InService", "Failed"),
        schedule,
    )
    if endpoint["EndpointStatus"] != "InService":
        raise SystemExit(f"peer: endpoint {name} is {endpoint['EndpointStatus']}: {endpoint.get('FailureReason')}")
    phases.done("deploy")

    def invoke(path: Path) -> dict[str, Any]:
        answer = runtime.invoke_endpoint(
            EndpointName=name, ContentType="image/jpeg", Accept="application/json", Body=path.read_bytes()
        )
        result: dict[str, Any] = json.loads(answer["Body"].read())
        return result

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = list(pool.map(invoke, images))
    if len(answers) != len(images) or not all(isinstance(a.get("prediction"), list) for a in answers):
        raise SystemExit("peer: an answer came back without a prediction list")
    phases.done("predict")
    sagemaker.delete_endpoint(EndpointName=name)
    sagemaker.delete_endpoint_config(EndpointConfigName=name)
    sagemaker.delete_model(ModelName=name)

    def gone() -> bool:
        try:
            sagemaker.describe_endpoint(EndpointName=name)
        except sagemaker.exceptions.ClientError as exc:
            if "Could not find" in str(exc):
                return True
            raise
        return False

    peer_poll(gone, bool, schedule)
    phases.done("undeploy")
    total = time.perf_counter() - start
    return Run("peer", total, emulator_training_seconds(emu, name), phases.seconds, job=name)


def same_objects(emu: SageMakerEmulator, ours_bucket: str, peer_bucket: str, keys: list[str]) -> None:
    """The staged channel objects of both sides have the same ETags (single-part uploads: the MD5)."""
    s3 = emu.client("s3")
    for key in keys:
        a = s3.head_object(Bucket=ours_bucket, Key=key)["ETag"]
        b = s3.head_object(Bucket=peer_bucket, Key=key)["ETag"]
        if a != b:
            raise SystemExit(f"{key}: ours {a} and the peer's {b} differ: the sides did not send the same bytes")


def counted(emu: SageMakerEmulator, action: Callable[[], Run]) -> Run:
    """``action()`` with the emulator's calls made during it, by operation."""
    before = len(emu.calls())
    run = action()
    run.calls = dict(Counter(emu.calls()[before:]))
    return run


def bench_e2e(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    dataset = tiny_dataset(work / "dataset", args.per_class)
    images = predict_paths(dataset, args.images)
    runs: dict[str, list[Run]] = {"ours": [], "peer": []}
    with sagemaker_emulator(pace=args.pace, state_dir=work / "emulator") as emu, emu.patched_environment():
        schedule = registry().get("sagemaker", "trainer", config=settings(emu, "x", args.poll)).poll_schedule()
        peer_files: PeerInput | None = None
        for round_ in range(args.runs + 1):
            warm = round_ == 0
            label = "warm-up" if warm else f"run {round_}"
            order = ("ours", "peer") if round_ % 2 else ("peer", "ours")
            buckets = {side: f"bench-{side}-{round_}-{os.getpid()}" for side in order}
            for side in order:
                emu.create_bucket(buckets[side])
                folder = work / f"{side}-{round_}"
                folder.mkdir(parents=True, exist_ok=True)
                if side == "ours":
                    action = partial(run_ours, emu, dataset, images, buckets[side], folder, args.poll, args.epochs)
                else:
                    given = peer_input(emu, dataset, buckets[side], folder, args.poll, args.epochs)
                    peer_files = peer_files or given
                    action = partial(run_peer, emu, given, images, buckets[side], schedule, str(round_))
                run = counted(emu, action)
                phases = ", ".join(f"{k} {v:.2f}" for k, v in run.phases.items())
                print(
                    f"  {label}: {side}: total {run.total_s:.2f} s, training {run.training_s:.2f} s, "
                    f"rest {run.rest_s:.2f} s ({phases}); {sum(run.calls.values())} calls",
                    file=sys.stderr,
                )
                if not warm:
                    runs[side].append(run)
            if warm and peer_files is not None:
                same_objects(emu, buckets["ours"], buckets["peer"], sorted(peer_files.files.values()))

    summary: dict[str, dict[str, Any]] = {
        side: {
            "total_s": statistics.median(r.total_s for r in values),
            "training_s": statistics.median(r.training_s for r in values),
            "rest_s": statistics.median(r.rest_s for r in values),
            "phases_s": {p: statistics.median(r.phases[p] for r in values) for p in values[0].phases},
            "calls": statistics.median(sum(r.calls.values()) for r in values),
        }
        for side, values in runs.items()
    }
    ratio = summary["ours"]["rest_s"] / summary["peer"]["rest_s"]
    print(
        f"\nEnd to end through the SageMaker emulator (pace {args.pace} s, poll_s {args.poll} s): "
        f"{len(dataset.images)} images, train {args.epochs} epoch(s), {args.images} predictions on "
        f"{CONCURRENCY} threads; medians of {args.runs} alternating runs\n"
    )
    phase_names = list(summary["ours"]["phases_s"])
    print(
        "| side | total s | emulator training s | everything but training s | "
        + " | ".join(phase_names)
        + " | emulator calls |"
    )
    print("|---|---|---|---|" + "---|" * len(phase_names) + "---|")
    for side, row in summary.items():
        cells = " | ".join(f"{row['phases_s'][p]:.2f}" for p in phase_names)
        print(
            f"| {side} | {row['total_s']:.2f} | {row['training_s']:.2f} | {row['rest_s']:.2f} | {cells} | "
            f"{row['calls']:.0f} |"
        )
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print(f"\nours / peer, everything but training: {ratio:.2f}, {verdict} the target (<= {TARGET_RATIO})")
    return {
        "pace_s": args.pace,
        "poll_s": args.poll,
        "schedule": asdict(schedule),
        "dataset_images": len(dataset.images),
        "epochs": args.epochs,
        "predictions": args.images,
        "runs": {side: [{**asdict(r), "rest_s": r.rest_s} for r in values] for side, values in runs.items()},
        "median": summary,
        "ratio_rest_ours_to_peer": ratio,
        "target": TARGET_RATIO,
    }


# -- waits ---------------------------------------------------------------------------------------


class ScaledTrainer(SageMakerTrainer):
    """The real trainer with its poll schedule divided by :data:`WAIT_SCALE` (the benchmark's, not the provider's)."""

    def poll_schedule(self) -> Backoff:
        default = super().poll_schedule()
        return Backoff(
            initial=default.initial / WAIT_SCALE,
            factor=default.factor,
            maximum=default.maximum / WAIT_SCALE,
            jitter=default.jitter,
        )


def analytic_calls(schedule: Backoff, seconds: float) -> int:
    """Status calls (no jitter) until one sees a job that ends ``seconds`` after the first: calls at 0, a, a+af ..."""
    calls, at, interval = 1, 0.0, schedule.initial
    while at < seconds:
        at += interval
        interval = min(schedule.maximum, interval * schedule.factor)
        calls += 1
    return calls


def bench_waits(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    dataset = tiny_dataset(work / "dataset", args.per_class)
    bucket = f"bench-waits-{os.getpid()}"
    with (
        sagemaker_emulator(pace=args.wait_pace, state_dir=work / "emulator-waits", bucket=bucket) as emu,
        emu.patched_environment(),
    ):
        store = RunStore(work / "waits.sqlite")
        real = registry().get("sagemaker", "trainer", config=settings(emu, bucket, 10.0), store=store)
        unscaled = real.poll_schedule()
        trainer = ScaledTrainer(real.config, store=store)
        scaled = trainer.poll_schedule()
        job = trainer.submit(TrainingSpec(dataset=dataset, epochs=1))
        before = len(emu.calls("DescribeTrainingJob"))
        started = time.time()
        done = trainer.wait(job.id, timeout=4 * 4 * args.wait_pace + 60)
        waited = time.time() - started
        calls = len(emu.calls("DescribeTrainingJob")) - before
        answer = emu.client("sagemaker").describe_training_job(TrainingJobName=done.native_id)
        walk = (answer["TrainingEndTime"] - answer["CreationTime"]).total_seconds()
        job_left = answer["TrainingEndTime"].timestamp() - started
    analytic_real = analytic_calls(unscaled, REAL_JOB_S)
    analytic_scaled = analytic_calls(scaled, job_left)
    print(
        f"\nWaiting for a training job: the emulator's walk took {walk:.1f} s (pace {args.wait_pace} s), "
        f"Trainer.wait polled with the provider's schedule / {WAIT_SCALE:g}: {scaled.initial:g} s x{scaled.factor:g} "
        f"up to {scaled.maximum:g} s (+-{scaled.jitter:.0%})\n"
    )
    print("| what | job length | DescribeTrainingJob calls | target |")
    print("|---|---|---|---|")
    print(
        f"| measured, scaled by {WAIT_SCALE:g} | {job_left:.1f} s waited for "
        f"(= {job_left * WAIT_SCALE:.0f} s unscaled) | {calls} | <= {TARGET_CALLS} |"
    )
    print(f"| analytic, scaled schedule, no jitter | {job_left:.1f} s | {analytic_scaled} | |")
    print(
        f"| analytic, unscaled ({unscaled.initial:g} s x{unscaled.factor:g} up to {unscaled.maximum:g} s), no jitter "
        f"| {REAL_JOB_S:.0f} s | {analytic_real} | <= {TARGET_CALLS} |"
    )
    verdict = "meets" if calls <= TARGET_CALLS and analytic_real <= TARGET_CALLS else "MISSES"
    print(f"\nstatus calls while waiting: {calls} measured, {analytic_real} analytic: {verdict} the target")
    return {
        "scale": WAIT_SCALE,
        "pace_s": args.wait_pace,
        "walk_s": walk,
        "waited_s": waited,
        "job_left_at_wait_start_s": job_left,
        "schedule_unscaled": asdict(unscaled),
        "schedule_scaled": asdict(scaled),
        "describe_calls": calls,
        "analytic_calls_scaled": analytic_scaled,
        "analytic_calls_600s_unscaled": analytic_real,
        "target": TARGET_CALLS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("e2e", "waits", "both"), default="both", help="which part (default both)")
    parser.add_argument("--runs", type=int, default=3, help="e2e timed runs per side, after a warm-up (default 3)")
    parser.add_argument("--per-class", type=int, default=20, help="training images per class, 3 classes (default 20)")
    parser.add_argument("--images", type=int, default=100, help="images to predict per run (default 100)")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs asked for (the emulator caps at 3)")
    parser.add_argument("--pace", type=float, default=E2E_PACE, help=f"e2e emulator pace, s (default {E2E_PACE})")
    parser.add_argument("--poll", type=float, default=E2E_PACE, help="e2e poll_s setting, s (default 0.05)")
    parser.add_argument("--wait-pace", type=float, default=WAIT_PACE, help="waits emulator pace, s (default 15)")
    parser.add_argument("--json", type=Path, default=ROOT / ".bench" / "sagemaker.json", help="results file")
    parser.add_argument("--max-seconds", type=int, default=1800, help="abort the whole run after this long")
    args = parser.parse_args()
    signal.alarm(args.max_seconds)  # stops by itself whatever happens
    logging.basicConfig(level=logging.WARNING)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    report: dict[str, Any] = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()}}
    with tempfile.TemporaryDirectory(prefix="mcv-bench-sagemaker-") as tmp:
        if args.part in ("e2e", "both"):
            report["e2e"] = bench_e2e(args, Path(tmp) / "e2e")
        if args.part in ("waits", "both"):
            report["waits"] = bench_waits(args, Path(tmp) / "waits")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
