"""The training worker: ``python -m mcv_local.worker JOB_DIR``.

Runs one local training job in its own process (started detached by the trainer), writes
``status.json`` as it goes and stops cleanly, checkpoint saved, on SIGTERM or when the
``cancel`` flag file appears. A job dir with a checkpoint is resumed where it stopped.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from mcv_local.jobfiles import read_json, update_status

log = logging.getLogger("mcv_local.worker")


def run(job_dir: Path) -> int:
    """Train the job in ``job_dir``; return the process exit code (0 done, 1 failed, 130 stopped)."""
    from mcv_local.engine.config import TrainConfig
    from mcv_local.engine.errors import TrainingInterrupted
    from mcv_local.engine.train import train

    spec = read_json(job_dir / "spec.json")
    if spec is None:
        log.error("no spec.json in %s", job_dir)
        return 1
    stop = {"signal": False}

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received signal %d: stopping after saving a checkpoint", signum)
        stop["signal"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def should_stop() -> bool:
        return stop["signal"] or (job_dir / "cancel").exists()

    def on_event(event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "epoch_start":
            update_status(job_dir, native_state="TRAINING", epoch=event["epoch"], epochs=event["epochs"])
        elif kind == "epoch_end":
            metrics = {
                k: float(v)
                for k, v in event.items()
                if k not in ("event", "epoch", "epochs") and isinstance(v, int | float)
            }
            update_status(
                job_dir, native_state="TRAINING", epoch=event["epoch"], epochs=event["epochs"], metrics=metrics
            )
            log.info(
                "epoch %s/%s %s", event["epoch"], event["epochs"], " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
            )
        elif kind == "early_stop":
            log.info("early stopping after epoch %s", event["epoch"])
        elif kind == "done":
            update_status(job_dir, native_state="EXPORTING")

    update_status(job_dir, native_state="LOADING_DATA", pid=os.getpid(), failure_reason=None)
    if spec["config"].get("task") == "detection":
        return _run_detection(job_dir, spec, should_stop)
    try:
        config = TrainConfig.from_dict(spec["config"])
        result = train(
            config,
            job_dir / "model",
            on_event=on_event,
            should_stop=should_stop,
            resume=True,
            model_id=spec.get("job_id"),
        )
    except TrainingInterrupted:
        return _record_stop(job_dir)
    except Exception as exc:  # the worker's last word: record the reason, then exit non-zero
        return _record_failure(job_dir, exc)
    metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)}
    update_status(
        job_dir,
        native_state="COMPLETED",
        metrics=metrics,
        onnx=str(result.onnx_path),
        best_epoch=result.best_epoch,
        epochs_run=result.epochs_run,
        seconds=result.seconds,
    )
    log.info("done: %s", result.onnx_path)
    return 0


def _record_stop(job_dir: Path) -> int:
    """Record a stop asked by ``mcv cancel`` (CANCELLED) or by a signal (INTERRUPTED, resumable); exit 130."""
    if (job_dir / "cancel").exists():
        update_status(job_dir, native_state="CANCELLED", failure_reason=None)
        log.info("cancelled; checkpoint kept in %s", job_dir / "model")
    else:
        update_status(
            job_dir,
            native_state="INTERRUPTED",
            failure_reason="training was interrupted by a signal; `mcv resume JOB` continues it "
            "from the last checkpoint",
        )
    return 130


def _record_failure(job_dir: Path, exc: Exception) -> int:
    """Record a failed training with its reason (the traceback goes to the log); exit 1."""
    log.error("training failed: %s\n%s", exc, traceback.format_exc())
    update_status(job_dir, native_state="FAILED", failure_reason=f"{type(exc).__name__}: {exc}")
    return 1


DETECTION_KEYS = ("batch_size", "lr", "weight_decay", "seed", "hflip", "pretrained", "max_steps")


def detection_dataset(config: dict[str, Any]) -> Any:
    """The canonical detection dataset a worker spec describes (absolute paths, pixel boxes)."""
    from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord

    images = []
    for split, rows in (("train", config["train"]), ("validation", config["val"])):
        for path, boxes, width, height in rows:
            annotations = tuple(BoxAnnotation(int(b[0]), *(float(v) for v in b[1:5])) for b in boxes)
            images.append(ImageRecord(path, boxes=annotations, split=split, width=width, height=height))
    return Dataset(root=Path("/"), classes=list(config["classes"]), images=images, task="detection")


def detection_config(config: dict[str, Any], checkpoint: Path | None = None) -> Any:
    """The engine's :class:`DetectionConfig` for a worker spec (hyperparameters already checked)."""
    from mcv_local.engine.detection import DetectionConfig

    return DetectionConfig(
        epochs=int(config.get("epochs") or 10),
        threads=int(config["num_threads"]) if config.get("num_threads") else None,
        checkpoint=checkpoint,
        **{key: config[key] for key in DETECTION_KEYS if key in config},
    )


def _run_detection(job_dir: Path, spec: dict[str, Any], should_stop: Any) -> int:
    """Train, export and record a detector; the same states, cancel and resume as classification."""
    from mcv_local.engine.detection import train_detector
    from mcv_local.engine.detection_export import export_detector
    from mcv_local.engine.errors import TrainingInterrupted

    config = spec["config"]
    out = job_dir / "model"

    def on_progress(event: dict[str, Any]) -> None:
        if event.get("event") == "step":
            update_status(
                job_dir,
                native_state="TRAINING",
                step=event.get("step"),
                steps=event.get("total"),
                metrics={"loss": float(event["loss"])} if isinstance(event.get("loss"), int | float) else {},
            )
        if should_stop():
            raise TrainingInterrupted("stop requested")

    try:
        result = train_detector(detection_dataset(config), detection_config(config), out, on_progress=on_progress)
        update_status(job_dir, native_state="EXPORTING")
        onnx_path = export_detector(
            result.model, out / "model.onnx", result.classes, result.image_size, model_id=spec.get("job_id", "")
        )
    except TrainingInterrupted:
        return _record_stop(job_dir)
    except Exception as exc:  # the worker's last word: record the reason, then exit non-zero
        return _record_failure(job_dir, exc)
    metrics = {"final_loss": result.final_loss or 0.0, "steps_per_second": result.steps_per_second}
    if result.val_loss is not None:
        metrics["val_loss"] = result.val_loss
    update_status(job_dir, native_state="COMPLETED", metrics=metrics, onnx=str(onnx_path), seconds=result.train_seconds)
    log.info("done: %s", onnx_path)
    return 0


def main() -> None:
    """Entry point of ``python -m mcv_local.worker JOB_DIR``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    if len(sys.argv) != 2:
        sys.stderr.write("usage: python -m mcv_local.worker JOB_DIR\n")
        raise SystemExit(2)
    raise SystemExit(run(Path(sys.argv[1])))


if __name__ == "__main__":
    main()
