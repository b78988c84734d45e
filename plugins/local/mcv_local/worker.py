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
    except Exception as exc:  # the worker's last word: record the reason, then exit non-zero
        log.error("training failed: %s\n%s", exc, traceback.format_exc())
        update_status(job_dir, native_state="FAILED", failure_reason=f"{type(exc).__name__}: {exc}")
        return 1
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


def main() -> None:
    """Entry point of ``python -m mcv_local.worker JOB_DIR``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    if len(sys.argv) != 2:
        sys.stderr.write("usage: python -m mcv_local.worker JOB_DIR\n")
        raise SystemExit(2)
    raise SystemExit(run(Path(sys.argv[1])))


if __name__ == "__main__":
    main()
