"""Trainer, Deployer and Predictor of the local provider.

Training runs in a detached worker process (``mcv_local.worker``), so ``mcv train``
returns at once and ``mcv status/wait/cancel`` work from any later shell. Endpoints are
real HTTP servers on 127.0.0.1 (``mcv_local.serving.server``) in their own processes,
serving the exported ONNX model with onnxruntime.

This module is what entry points load: it imports neither torch nor onnxruntime.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcv_local import processes
from mcv_local.jobfiles import (
    SERVER_MODULE,
    WORKER_MODULE,
    endpoints_dir,
    jobs_dir,
    read_json,
    update_status,
    write_json,
)
from multicloud_cv.capabilities import Capabilities, Limits, Task
from multicloud_cv.config import Setting
from multicloud_cv.errors import BadInput, EndpointUnavailable, InvalidImage, NotFound, PortInUse, ServiceError
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
    from multicloud_cv.schema import Prediction

log = logging.getLogger(__name__)

#: The worker's status words mapped to the shared job states.
JOB_STATES: dict[str, JobState] = {
    "PENDING": JobState.QUEUED,
    "LOADING_DATA": JobState.RUNNING,
    "TRAINING": JobState.RUNNING,
    "EXPORTING": JobState.RUNNING,
    "COMPLETED": JobState.SUCCEEDED,
    "FAILED": JobState.FAILED,
    "INTERRUPTED": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
}

#: What ``mcv export MODEL --format onnx`` copies out of a local model folder.
EXPORTED_SUFFIXES = (".onnx", ".json", ".txt", ".manifest")

#: Hyperparameters the local trainer accepts (``-o`` is for settings; these come from ``--hp key=value``).
HYPERPARAMETERS: dict[str, type] = {
    "backbone": str,
    "image_size": int,
    "channels": int,
    "batch_size": int,
    "lr": float,
    "patience": int,
    "seed": int,
    "augment": bool,
    "hflip": bool,
    "crop_padding": int,
    "label_smoothing": float,
    "precision": str,
    "max_train_seconds": float,
    "pretrained": bool,
    "num_threads": int,
}

#: Detection (FCOS on MobileNetV2, :mod:`mcv_local.engine.detection`) takes its own, smaller set.
DETECTION_HYPERPARAMETERS: dict[str, type] = {
    "batch_size": int,
    "lr": float,
    "weight_decay": float,
    "seed": int,
    "hflip": bool,
    "pretrained": bool,
    "max_steps": int,
    "num_threads": int,
}

CAPABILITIES = Capabilities.declare(
    supported=[
        "task:classification",
        "task:multilabel",
        "task:detection",
        "compute:cpu",
        "export:onnx",
        "batch_prediction",
        "endpoint_ttl",
        "cancel",
        "resume",
    ],
    unsupported={
        "compute:gpu": "the local provider trains on this machine's CPU; use a cloud provider for GPUs",
        "compute:tpu": "TPUs are a Vertex AI feature; use --provider vertex",
        "export:tflite": "the local provider exports ONNX only",
        "export:coreml": "the local provider exports ONNX only",
        "export:savedmodel": "the local provider exports ONNX only",
        "export:tensorflow": "the local provider exports ONNX only",
        "export:docker": "the local provider exports ONNX only; its server is `mcv deploy`",
        "incremental_training": "the local provider trains from ImageNet weights; resume an interrupted job instead",
    },
    limits=Limits(min_images_per_label=2, min_labels=2, max_image_bytes=20 * 1024 * 1024),
)

SETTINGS = (
    Setting("port", "TCP port of local endpoints on 127.0.0.1 (0 picks a free one)", default="0"),
    Setting("threads", "CPU threads for training (0 uses every core)", default="0"),
    Setting("startup_timeout_s", "seconds to wait for a local endpoint to answer", default="60"),
)


class _LocalBase(ProviderPlugin):
    name = "local"
    api_version = "1.0"
    description = "PyTorch training, ONNX export and onnxruntime serving on this machine (no cloud account)"
    settings = SETTINGS
    capabilities = CAPABILITIES
    requires = ("torch", "onnxruntime", "onnx", "efficientnet_lite_pytorch", "starlette", "uvicorn", "httpx")
    install_hint = "pip install -e plugins/local  (distribution multicloud-cv-local)"
    backoff = Backoff(initial=0.25, factor=1.5, maximum=2.0)


def parse_hyperparameters(values: dict[str, Any], task: str = "classification") -> dict[str, Any]:
    """Check and convert hyperparameters; an unknown name is an error listing the valid ones for the task."""
    table = DETECTION_HYPERPARAMETERS if task == "detection" else HYPERPARAMETERS
    parsed: dict[str, Any] = {}
    for key, raw in values.items():
        kind = table.get(key)
        if kind is None:
            raise BadInput(
                f"unknown hyperparameter '{key}' for provider 'local' ({task}); valid: {', '.join(sorted(table))}"
            )
        try:
            if kind is bool:
                parsed[key] = raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
            else:
                parsed[key] = kind(raw)
        except ValueError as exc:
            raise BadInput(f"hyperparameter {key}={raw!r} is not a valid {kind.__name__}") from exc
    return parsed


class LocalTrainer(_LocalBase, Trainer):
    """Trains on this machine in a detached worker process."""

    def _validate(self, spec: TrainingSpec) -> None:
        from mcv_local.engine.config import TrainConfig
        from mcv_local.engine.errors import EngineError

        config = self._worker_config(spec)
        try:
            if spec.task is Task.DETECTION:
                from mcv_local.worker import detection_config

                detection_config(config).check()
            else:
                TrainConfig.from_dict(config).check()
        except EngineError as exc:
            raise BadInput(f"local training cannot start: {exc}") from exc

    def _plan(self, spec: TrainingSpec) -> list[PlannedRequest]:
        config = self._worker_config(spec)
        params = {
            "module": WORKER_MODULE,
            "config": {
                **{k: v for k, v in config.items() if k not in ("train", "val")},
                "train_images": len(config["train"]),
                "validation_images": len(config["val"]),
            },
        }
        return [PlannedRequest(service="local", operation="StartWorker", params=params)]

    def _estimate_cost(self, spec: TrainingSpec) -> tuple[float | None, list[str]]:
        return 0.0, ["the local provider trains on this machine: no charge"]

    def _worker_config(self, spec: TrainingSpec) -> dict[str, Any]:
        hp = parse_hyperparameters(spec.hyperparameters, spec.task.value)
        dataset = spec.dataset
        train = [img for img in dataset.images if img.split in (None, "train")]
        val = dataset.split("validation")
        threads = int(self.config.get("threads") or 0)

        def row(img: Any) -> Any:
            if spec.task is Task.DETECTION:
                boxes = [[b.label, b.x_min, b.y_min, b.x_max, b.y_max] for b in img.boxes]
                return (str(dataset.absolute(img)), boxes, img.width, img.height)
            return (str(dataset.absolute(img)), list(img.labels))

        config = {
            "task": spec.task.value,
            "classes": dataset.classes,
            "train": [row(img) for img in train],
            "val": [row(img) for img in val],
            **({"epochs": spec.epochs} if spec.epochs else {}),
            **({"num_threads": threads} if threads > 0 else {}),
            **hp,
        }
        return config

    def _submit(self, spec: TrainingSpec, job_id: str) -> NativeJob:
        config = self._worker_config(spec)
        job_dir = jobs_dir() / job_id
        job_dir.mkdir(parents=True, exist_ok=False)
        write_json(job_dir / "spec.json", {"job_id": job_id, "config": config})
        update_status(job_dir, native_state="PENDING")
        pid = processes.spawn(WORKER_MODULE, [str(job_dir)], job_dir / "worker.log")
        update_status(job_dir, pid=pid)
        return NativeJob(native_id=job_id, state=JobState.QUEUED, native_state="PENDING")

    def _describe(self, native_id: str, record: JobRecord) -> NativeJob:
        job_dir = jobs_dir() / native_id
        status = read_json(job_dir / "status.json")
        if status is None:
            raise NotFound(f"local job files of {record.id} are gone ({job_dir})")
        native_state = str(status.get("native_state", "PENDING"))
        state = JOB_STATES.get(native_state, JobState.RUNNING)
        failure = status.get("failure_reason")
        if not state.is_terminal() and not processes.is_alive(status.get("pid"), WORKER_MODULE):
            time.sleep(0.2)  # the worker may have just written its last status
            status = read_json(job_dir / "status.json") or status
            native_state = str(status.get("native_state", native_state))
            state = JOB_STATES.get(native_state, JobState.RUNNING)
            if not state.is_terminal():
                code = processes.exit_code(int(status.get("pid") or 0))
                native_state, state = "WORKER_DIED", JobState.FAILED
                failure = (
                    f"the training worker process ended unexpectedly"
                    f"{'' if code is None else f' (exit code {code})'}; see `mcv logs {record.id}`, "
                    f"`mcv resume {record.id}` continues from the last checkpoint"
                )
        progress = None
        if status.get("epoch"):
            progress = f"epoch {status['epoch']}/{status.get('epochs', '?')}"
        elif status.get("step"):
            progress = f"step {status['step']}/{status.get('steps', '?')}"
        model = None
        if state is JobState.SUCCEEDED:
            spec = read_json(job_dir / "spec.json") or {}
            model = NativeModel(
                native_id=native_id,
                artifact=str(job_dir / "model"),
                labels=list(spec.get("config", {}).get("classes", [])),
                task=record.task,
                info={"onnx": status.get("onnx"), "best_epoch": status.get("best_epoch")},
            )
        metrics = {k: float(v) for k, v in (status.get("metrics") or {}).items()}
        return NativeJob(
            native_id=native_id,
            state=state,
            native_state=native_state,
            failure_reason=failure,
            metrics=metrics,
            progress=progress,
            model=model,
            cost_usd=0.0 if state.is_terminal() else None,
        )

    def _cancel(self, native_id: str) -> None:
        job_dir = jobs_dir() / native_id
        (job_dir / "cancel").touch()
        status = read_json(job_dir / "status.json") or {}
        pid = status.get("pid")
        if not processes.is_alive(pid, WORKER_MODULE):
            update_status(job_dir, native_state="CANCELLED")
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and processes.is_alive(pid, WORKER_MODULE):
            time.sleep(0.1)
        if processes.is_alive(pid, WORKER_MODULE):
            processes.terminate(int(str(pid)), WORKER_MODULE)
            update_status(job_dir, native_state="CANCELLED")

    def _logs(self, native_id: str) -> Iterator[str]:
        path = jobs_dir() / native_id / "worker.log"
        if not path.exists():
            return iter(())
        return iter(path.read_text(encoding="utf-8", errors="replace").splitlines())

    def _export(self, model: ModelRecord, fmt: str, workdir: Path) -> Path:
        """ONNX only: the model folder as it is (``model.onnx`` with its metadata, ``labels.json``, metrics), without
        training checkpoints."""
        source = Path(model.artifact or "")
        if not (source / "model.onnx").is_file():
            raise NotFound(f"model {model.id} has no ONNX file at {source / 'model.onnx'}")
        target = workdir / "model"
        target.mkdir()
        for path in sorted(source.iterdir()):
            if path.is_file() and path.suffix in EXPORTED_SUFFIXES:
                shutil.copy2(path, target / path.name)
        return target

    def _resume(self, native_id: str, record: JobRecord) -> NativeJob:
        job_dir = jobs_dir() / native_id
        status = read_json(job_dir / "status.json") or {}
        if processes.is_alive(status.get("pid"), WORKER_MODULE):
            raise BadInput(f"job {record.id} is still running; nothing to resume")
        (job_dir / "cancel").unlink(missing_ok=True)
        update_status(job_dir, native_state="PENDING", failure_reason=None)
        pid = processes.spawn(WORKER_MODULE, [str(job_dir)], job_dir / "worker.log")
        update_status(job_dir, pid=pid)
        return NativeJob(native_id=native_id, state=JobState.QUEUED, native_state="PENDING")


class LocalDeployer(_LocalBase, Deployer):
    """Serves a model on 127.0.0.1 from a detached onnxruntime HTTP server: a local engine export, or a Custom
    Vision ONNX export folder (:mod:`mcv_local.serving.customvision_onnx`) recorded by ``mcv export``."""

    def _servable(self, folder: Path, fmt: str) -> NativeModel | None:
        if fmt != "onnx":
            return None
        from mcv_local.serving.customvision_onnx import describe

        found = describe(folder)
        if found is None:
            return None
        task, labels = found
        return NativeModel(native_id=str(folder), labels=labels, task=task)

    def _deploy(self, model: ModelRecord, endpoint_id: str, ttl_s: float | None) -> NativeEndpoint:
        model_dir = Path(model.artifact or "")
        if not (model_dir / "model.onnx").is_file():
            raise NotFound(f"model {model.id} has no ONNX file at {model_dir / 'model.onnx'}")
        try:
            port = int(self.config.get("port") or 0)
        except ValueError as exc:
            raise BadInput(f"setting port={self.config.get('port')!r} is not a number") from exc
        ep_dir = endpoints_dir() / endpoint_id
        ep_dir.mkdir(parents=True, exist_ok=True)
        ready = ep_dir / "ready.json"
        args = ["--model-dir", str(model_dir), "--port", str(port), "--host", "127.0.0.1", "--ready-file", str(ready)]
        if ttl_s is not None:
            args += ["--ttl", str(ttl_s)]
        log_path = ep_dir / "server.log"
        pid = processes.spawn(SERVER_MODULE, args, log_path, env={"MCV_ENDPOINT_ID": endpoint_id})
        deadline = time.monotonic() + float(self.config.get("startup_timeout_s") or 60)
        while time.monotonic() < deadline:
            info = read_json(ready)
            if info is not None:
                return NativeEndpoint(
                    native_id=endpoint_id,
                    state=EndpointState.READY,
                    native_state="SERVING",
                    url=str(info["url"]),
                    cost_per_hour_usd=0.0,
                    info={"pid": pid, "port": info["port"], "log": str(log_path)},
                )
            code = processes.exit_code(pid)
            if code is not None:
                last = _last_line(log_path)
                if code == 3:
                    shutil.rmtree(ep_dir, ignore_errors=True)
                    log.debug("server said: %s", last)
                    raise PortInUse(
                        f"port {port} on 127.0.0.1 is already in use; choose another with -o port=N "
                        "(-o port=0 picks a free one)"
                    )
                raise ServiceError(f"local endpoint server exited with code {code}: {last}")
            time.sleep(0.05)
        processes.terminate(pid, SERVER_MODULE)
        raise ServiceError(f"local endpoint did not become ready in time; see {log_path}")

    def _describe_endpoint(self, record: EndpointRecord) -> NativeEndpoint:
        pid = record.info.get("pid")
        if processes.is_alive(pid, SERVER_MODULE):
            return NativeEndpoint(
                native_id=record.native_id or record.id,
                state=EndpointState.READY,
                native_state="SERVING",
                url=record.url,
            )
        if record.expires_at is not None and time.time() >= record.expires_at - 1:
            return NativeEndpoint(
                native_id=record.native_id or record.id, state=EndpointState.DELETED, native_state="EXPIRED"
            )
        return NativeEndpoint(
            native_id=record.native_id or record.id,
            state=EndpointState.FAILED,
            native_state="EXITED",
            failure_reason=f"the server process ended; see {record.info.get('log')}",
        )

    def _undeploy(self, record: EndpointRecord) -> None:
        pid = record.info.get("pid")
        if not pid or not processes.terminate(int(str(pid)), SERVER_MODULE):
            raise NotFound(f"endpoint {record.id} is not running")


class LocalPredictor(_LocalBase, Predictor):
    """Sends images to a local endpoint over HTTP and reads the shared schema back."""

    def _predict(self, endpoint: EndpointRecord, model: ModelRecord, image: bytes, params: PredictParams) -> Prediction:
        from mcv_local.serving import errors as serving_errors
        from multicloud_cv.schema import Prediction

        client = _client(endpoint.url or "")
        try:
            answer = client.predict(image, top_k=params.top_k, threshold=params.threshold)
        except serving_errors.InvalidImage as exc:
            raise InvalidImage(str(exc)) from exc
        except serving_errors.EndpointUnreachable as exc:
            raise EndpointUnavailable(
                f"endpoint {endpoint.id} at {endpoint.url} does not answer; see `mcv endpoints` ({exc})"
            ) from exc
        answer["model_id"] = model.id
        return Prediction.model_validate(answer)


_CLIENTS: dict[tuple[int, str], Any] = {}


def _client(url: str) -> Any:
    from mcv_local.serving.client import EndpointClient

    key = (os.getpid(), url)
    if key not in _CLIENTS:
        _CLIENTS[key] = EndpointClient(url, timeout=30.0)
    return _CLIENTS[key]


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


__all__ = ["CAPABILITIES", "JOB_STATES", "LocalDeployer", "LocalPredictor", "LocalTrainer", "Task"]
