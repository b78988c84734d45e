"""The training loop of the local engine.

:func:`train` resolves the automatic settings of a :class:`~.config.TrainConfig`, loads the
images, trains with AdamW and a one-cycle schedule (linear warm-up, cosine decay), validates
every epoch, stops early after ``patience`` epochs in which neither the validation accuracy
rose nor the validation loss fell (by ``MIN_DELTA``), and writes into ``workdir``:

* ``last.pt``  - full state after every epoch (and on interruption), written atomically;
* ``best.pt``  - weights of the best validation epoch (highest accuracy, then lowest loss);
* ``model.onnx``, ``labels.json``, ``metrics.json`` - at the end, from the best weights.

With ``resume=True`` and a compatible ``last.pt`` present, training continues where it
stopped (part-way through an epoch included) and ends with the same number of epochs as an
uninterrupted run. With ``max_train_seconds`` the schedule is planned to fit the budget from
measured batch times, and training stops after the epoch that crosses it at the latest.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from multicloud_cv.workers import usable_cpus

from .checkpoint_io import save_atomic
from .config import TrainConfig
from .data import (
    IN_MEMORY_MAX_SIZE,
    Batches,
    build_loaders,
    crop_padding,
    inspect_images,
    split_validation,
)
from .errors import EngineError, TrainingInterrupted
from .export import export_onnx
from .models import build_model

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
POLL_EVERY = 5
"""``should_stop()`` is polled at the start of every epoch and every this many batches."""
BATCH_EVENTS = 20
PLAN_AFTER = 30
"""Batches timed before the schedule is fitted to ``max_train_seconds``."""
CROP_MAX_IMAGES = 10_000
"""From this many training images on, small images get no random-crop augmentation by default."""
BUDGET_SAFETY = 0.97
"""Fraction of the remaining time budget the epoch plan may fill."""
WARMUP = 0.15
WEIGHT_DECAY = 0.05
MIN_AUTO_BATCH = 8
"""The automatic batch size halves (down to this) until an epoch has about ten batches."""
MIN_DELTA = 1e-4
VOLATILE = frozenset({"num_threads", "max_train_seconds", "epochs", "patience"})
"""Config fields that may change between an interrupted run and its resumption."""

BASE = {  # backbone -> (batch size, learning rate at that batch size)
    "small_cnn": (128, 3e-3),
    "efficientnet_lite0": (32, 1e-3),
    "timm": (32, 5e-4),
}

Event = dict[str, Any]


@dataclass
class TrainResult:
    """What :func:`train` produced. ``seconds`` is the wall time of the call."""

    onnx_path: Path
    best_epoch: int
    epochs_run: int
    metrics: dict[str, Any]
    seconds: float


# ------------------------------------------------------------------------------------------ configuration


def bf16_supported() -> bool:
    """True when the CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_config(cfg: TrainConfig) -> TrainConfig:
    """Fill in every automatic field of ``cfg`` (``val`` must already be non-empty).

    backbone ``auto``: ``small_cnn`` when the median image side is <= 64 px, else
    ``efficientnet_lite0``; image_size: native side rounded up to a multiple of 4 for
    ``small_cnn``, 224 otherwise; channels: 1 when every sampled image is greyscale
    (always 3 for ``efficientnet_lite0``); batch size and learning rate from the backbone,
    halving the batch (down to 8) until an epoch has about ten batches (small datasets need
    steps: 48 images, 4 epochs reached 1.0 test accuracy at batch 8 but 0.6-0.9 at batch 16); crop padding 0 from
    ``CROP_MAX_IMAGES`` training images on; bfloat16 where the CPU supports it.
    """
    stats = inspect_images([path for path, _ in cfg.train], seed=cfg.seed)
    backbone = cfg.backbone
    if backbone == "auto":
        backbone = "small_cnn" if stats.median_side <= IN_MEMORY_MAX_SIZE else "efficientnet_lite0"
    if backbone == "efficientnet_lite0":
        if cfg.channels == 1:
            raise EngineError("efficientnet_lite0 needs 3 channels; use channels=3 or backbone small_cnn")
        channels = 3
    else:
        channels = cfg.channels or (1 if stats.greyscale else 3)
    if cfg.image_size is not None:
        image_size = cfg.image_size
    elif backbone == "small_cnn":
        image_size = max(8, 4 * math.ceil(stats.median_side / 4))
    else:
        image_size = 224
    base_batch, base_lr = BASE[backbone.split(":", 1)[0]]
    batch_size = cfg.batch_size
    if batch_size is None:
        batch_size = base_batch
        while batch_size > MIN_AUTO_BATCH and len(cfg.train) < 10 * batch_size:
            batch_size //= 2
    lr = cfg.lr if cfg.lr is not None else base_lr
    padding = cfg.crop_padding
    if padding is None:
        padding = 0 if len(cfg.train) >= CROP_MAX_IMAGES else crop_padding(image_size)
    precision = cfg.precision
    if precision == "auto":
        precision = "bf16" if bf16_supported() else "fp32"
    return replace(
        cfg,
        backbone=backbone,
        channels=channels,
        image_size=image_size,
        batch_size=batch_size,
        lr=lr,
        precision=precision,
        crop_padding=padding,
        num_threads=cfg.num_threads or usable_cpus(),
    )


# --------------------------------------------------------------------------------------------- schedule


class OneCycle:
    """Learning rate: linear warm-up from ``max_lr/25`` over the first ``WARMUP`` of the steps,
    then cosine decay to ``max_lr/1e4`` at ``total`` steps. ``total`` may be shortened while
    training (time budget); the state round-trips through :meth:`state_dict`.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, max_lr: float, total: int) -> None:
        self.optimizer, self.max_lr = optimizer, max_lr
        self.step_count = 0
        self.total = max(1, total)
        self.warmup = max(1, round(WARMUP * self.total))
        self._apply()

    def lr(self, step: int) -> float:
        """Learning rate at ``step``."""
        start, end = self.max_lr / 25, self.max_lr / 1e4
        if step < self.warmup:
            return start + (self.max_lr - start) * step / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return end + (self.max_lr - end) * 0.5 * (1 + math.cos(math.pi * progress))

    def set_total(self, total: int) -> None:
        """Re-plan the schedule to end at ``total`` steps (the warm-up never grows)."""
        self.total = max(1, total)
        self.warmup = min(self.warmup, max(1, round(WARMUP * self.total)))
        self._apply()

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr(self.step_count)

    def state_dict(self) -> dict[str, Any]:
        return {"step_count": self.step_count, "total": self.total, "warmup": self.warmup, "max_lr": self.max_lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count, self.total = int(state["step_count"]), int(state["total"])
        self.warmup, self.max_lr = int(state["warmup"]), float(state["max_lr"])
        self._apply()


# ---------------------------------------------------------------------------------------------- metrics


def evaluate(model: nn.Module, batches: Batches, task: str) -> dict[str, float]:
    """Validation loss (plain cross-entropy / BCE), accuracy (exact match at 0.5 for multilabel)
    and, for multilabel, macro F1 over the classes that occur in labels or predictions."""
    model.eval()
    loss_sum, correct, count = 0.0, 0.0, 0
    tp = fp = fn = None
    with torch.no_grad():
        for x, y in batches.epoch(0):
            logits = model(x.permute(0, 3, 1, 2).float()).float()
            if task == "multilabel":
                loss_sum += float(F.binary_cross_entropy_with_logits(logits, y, reduction="sum")) / y.shape[1]
                predicted = (logits > 0).float()
                correct += float((predicted == y).all(dim=1).sum())
                batch_tp, batch_fp = (predicted * y).sum(0), (predicted * (1 - y)).sum(0)
                batch_fn = ((1 - predicted) * y).sum(0)
                tp = batch_tp if tp is None else tp + batch_tp
                fp = batch_fp if fp is None else fp + batch_fp
                fn = batch_fn if fn is None else fn + batch_fn
            else:
                loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
                correct += float((logits.argmax(1) == y).sum())
            count += len(y)
    result = {"val_loss": loss_sum / max(1, count), "val_accuracy": correct / max(1, count)}
    if task == "multilabel" and tp is not None and fp is not None and fn is not None:
        denominator = 2 * tp + fp + fn
        present = denominator > 0
        f1 = (2 * tp[present] / denominator[present]).mean() if bool(present.any()) else torch.tensor(0.0)
        result["val_macro_f1"] = float(f1)
    return result


# --------------------------------------------------------------------------------------------- checkpoint


def _load(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign file
        raise EngineError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise EngineError(f"{path} is not a checkpoint of this engine")
    return state


def _comparable(cfg_dict: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in cfg_dict.items() if key not in VOLATILE}


@dataclass
class _State:
    """Everything of a run that goes into ``last.pt`` besides model/optimizer/schedule."""

    epoch: int = 0  # epochs completed
    planned_epochs: int = 0
    partial: dict[str, Any] | None = None  # an epoch interrupted part-way
    best_epoch: int = 0
    best_score: tuple[float, float] = (-1.0, -math.inf)  # (val accuracy, -val loss)
    best_accuracy: float = -1.0
    best_loss: float = math.inf
    bad_epochs: int = 0
    train_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "planned_epochs": self.planned_epochs,
            "partial": self.partial,
            "best_epoch": self.best_epoch,
            "best_score": list(self.best_score),
            "best_accuracy": self.best_accuracy,
            "best_loss": self.best_loss,
            "bad_epochs": self.bad_epochs,
            "train_seconds": self.train_seconds,
            "history": self.history,
            "stop_reason": self.stop_reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _State:
        state = cls(**{k: v for k, v in data.items() if k != "best_score"})
        accuracy, negative_loss = data["best_score"]
        state.best_score = (float(accuracy), float(negative_loss))
        return state


# ------------------------------------------------------------------------------------------------- train


def train(
    cfg: TrainConfig,
    workdir: Path,
    on_event: Callable[[Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: bool = True,
    *,
    model_id: str | None = None,
) -> TrainResult:
    """Train ``cfg`` in ``workdir`` and export ``workdir/model.onnx`` (see the module docstring).

    ``on_event`` receives progress dicts (``epoch_start``, ``batch`` - at most about 20 per
    epoch -, ``epoch_end``, ``early_stop``, ``done``); exceptions it raises propagate.
    ``should_stop`` is polled at the start of each epoch and every few batches; when it
    returns True, ``last.pt`` is saved and :class:`TrainingInterrupted` is raised.
    ``model_id`` goes into the ONNX metadata; by default the name of ``workdir``, or of its
    parent when ``workdir`` is called ``model`` (the local provider's ``JOB_DIR/model`` layout).
    Raises :class:`EngineError` for unusable configurations or data.
    """
    started = time.perf_counter()
    cfg.check()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.num_threads or usable_cpus())
    try:
        if model_id is None:
            named = workdir.resolve()
            model_id = named.parent.name if named.name == "model" else named.name
        return _Run(cfg, workdir, on_event, should_stop, resume, model_id, started).run()
    finally:
        torch.set_num_threads(previous_threads)


class _Run:
    """One call of :func:`train`."""

    def __init__(
        self,
        cfg: TrainConfig,
        workdir: Path,
        on_event: Callable[[Event], None] | None,
        should_stop: Callable[[], bool] | None,
        resume: bool,
        model_id: str,
        started: float,
    ) -> None:
        self.workdir, self.on_event, self.should_stop = workdir, on_event, should_stop
        self.model_id, self.started = model_id, started
        self.last_path, self.best_path = workdir / "last.pt", workdir / "best.pt"
        train_samples, val_samples = list(cfg.train), list(cfg.val)
        if not val_samples:
            train_samples, val_samples = split_validation(train_samples, cfg.seed)
            logger.info(
                "no validation set given: carved %d of %d training images out", len(val_samples), len(cfg.train)
            )
        self.cfg = resolve_config(replace(cfg, train=train_samples, val=val_samples))
        self.checkpoint = self._resumable() if resume else None
        logger.info(
            "training %s: backbone %s, %dpx x%d, batch %d, lr %.2g, %s, %d threads, %d train / %d val",
            self.cfg.task,
            self.cfg.backbone,
            self.cfg.image_size,
            self.cfg.channels,
            self.cfg.batch_size,
            self.cfg.lr,
            self.cfg.precision,
            torch.get_num_threads(),
            len(train_samples),
            len(val_samples),
        )

    def _resumable(self) -> dict[str, Any] | None:
        if not self.last_path.exists():
            return None
        checkpoint = _load(self.last_path)
        if checkpoint.get("format") != CHECKPOINT_FORMAT or not isinstance(checkpoint.get("config"), dict):
            logger.warning("%s is from another engine version: starting afresh", self.last_path)
            return None
        if _comparable(checkpoint["config"]) != _comparable(self.cfg.to_dict()):
            logger.warning("%s was written for another configuration or dataset: starting afresh", self.last_path)
            return None
        return checkpoint

    def emit(self, event: Event) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def run(self) -> TrainResult:
        cfg = self.cfg
        assert cfg.image_size is not None and cfg.channels is not None and cfg.batch_size is not None
        assert cfg.lr is not None
        torch.manual_seed(cfg.seed)
        self.loaders = build_loaders(
            cfg.train,
            cfg.val,
            task=cfg.task,
            num_classes=len(cfg.classes),
            image_size=cfg.image_size,
            channels=cfg.channels,
            batch_size=cfg.batch_size,
            augment=cfg.augment,
            hflip=cfg.hflip,
            seed=cfg.seed,
            crop_padding=cfg.crop_padding or 0,
        )
        self.model = build_model(cfg).to(memory_format=torch.channels_last)
        decay = [p for p in self.model.parameters() if p.ndim > 1]
        no_decay = [p for p in self.model.parameters() if p.ndim <= 1]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr
        )
        self.batches = len(self.loaders.train)
        self.schedule = OneCycle(self.optimizer, cfg.lr, cfg.epochs * self.batches)
        self.state = _State(planned_epochs=cfg.epochs)
        if self.checkpoint is not None:
            self._restore(self.checkpoint)
        else:  # a fresh start: nothing of an earlier run may leak into this one
            for name in ("last.pt", "best.pt", "model.onnx", "labels.json", "metrics.json"):
                (self.workdir / name).unlink(missing_ok=True)
        self.session_epoch_seconds: list[float] = []
        while self.state.epoch < self.state.planned_epochs and not self.state.stop_reason:
            self._epoch(self.state.epoch + 1)
        if not self.state.stop_reason:
            self.state.stop_reason = "completed"
        return self._finish()

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.schedule.load_state_dict(checkpoint["scheduler"])
        self.state = _State.from_dict(checkpoint["state"])
        torch.set_rng_state(checkpoint["rng"])
        if self.state.planned_epochs != self.cfg.epochs and self.cfg.max_train_seconds is None:
            self.state.planned_epochs = self.cfg.epochs
            self.schedule.set_total(self.cfg.epochs * self.batches)
        where = self.state.partial["batch"] if self.state.partial else 0
        logger.info(
            "resuming from %s: %d epoch(s) done%s",
            self.last_path,
            self.state.epoch,
            f", epoch {self.state.epoch + 1} at batch {where}" if where else "",
        )

    def _save_last(self) -> None:
        save_atomic(
            {
                "format": CHECKPOINT_FORMAT,
                "config": self.cfg.to_dict(),
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.schedule.state_dict(),
                "state": self.state.to_dict(),
                "rng": torch.get_rng_state(),
            },
            self.last_path,
        )

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.cfg.task == "multilabel":
            return F.binary_cross_entropy_with_logits(logits, y)
        return F.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing)

    def _epoch(self, epoch: int) -> None:
        cfg, state = self.cfg, self.state
        partial = state.partial if state.partial and state.partial["epoch"] == epoch else None
        start = int(partial["batch"]) if partial else 0
        loss_sum = float(partial["loss_sum"]) if partial else 0.0
        seen = int(partial["seen"]) if partial else 0
        carried = float(partial["seconds"]) if partial else 0.0
        self.emit({"event": "epoch_start", "epoch": epoch, "epochs": state.planned_epochs})
        every = max(1, math.ceil(self.batches / BATCH_EVENTS))
        self.model.train()
        epoch_start = time.perf_counter()
        timer: float | None = None
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
        for b, (x, y) in enumerate(self.loaders.train.epoch(epoch, start), start=start):
            if self.should_stop is not None and (b - start) % POLL_EVERY == 0 and self.should_stop():
                self._interrupt(epoch, b, loss_sum, seen, carried + time.perf_counter() - epoch_start)
            with autocast:
                logits = self.model(x.permute(0, 3, 1, 2).float())
            loss = self._loss(logits.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.schedule.step()
            loss_sum += loss.item() * len(y)
            seen += len(y)
            if (b + 1) % every == 0 or b + 1 == self.batches:
                self.emit({"event": "batch", "epoch": epoch, "batch": b + 1, "batches": self.batches})
            if b - start == 2:
                timer = time.perf_counter()
            elif timer is not None and b - start == PLAN_AFTER and not self.session_epoch_seconds:
                self._plan_from_batches(
                    (time.perf_counter() - timer) / (PLAN_AFTER - 2),
                    epoch,
                    b + 1,
                    carried + time.perf_counter() - epoch_start,
                )
        if self.should_stop is not None and self.should_stop():
            self._interrupt(epoch, self.batches, loss_sum, seen, carried + time.perf_counter() - epoch_start)
        metrics = evaluate(self.model, self.loaders.val, cfg.task)
        self._end_epoch(epoch, loss_sum / max(1, seen), metrics, carried + time.perf_counter() - epoch_start)

    def _interrupt(self, epoch: int, batch: int, loss_sum: float, seen: int, seconds: float) -> None:
        self.state.partial = {"epoch": epoch, "batch": batch, "loss_sum": loss_sum, "seen": seen, "seconds": seconds}
        self._save_last()
        logger.info("interrupted in epoch %d at batch %d; state saved to %s", epoch, batch, self.last_path)
        raise TrainingInterrupted(
            f"training interrupted in epoch {epoch} at batch {batch}; call train again with resume=True to continue"
        )

    def _plan_from_batches(self, seconds_per_batch: float, epoch: int, done: int, elapsed: float) -> None:
        """Fit the schedule to the time budget from the first timed batches of this session.

        ``done`` batches of ``epoch`` took ``elapsed`` seconds so far.
        """
        budget = self.cfg.max_train_seconds
        if budget is None:
            return
        val_batches = len(self.cfg.val) / max(1, self.cfg.batch_size or 1)
        epoch_seconds = seconds_per_batch * (self.batches + val_batches / 3)
        remaining = budget - self.state.train_seconds - elapsed
        self._replan(epoch - 1 + done / self.batches, remaining, epoch_seconds)

    def _replan(self, epochs_done: float, remaining: float, epoch_seconds: float) -> None:
        """Plan the epochs of ``epoch_seconds`` that fit in ``remaining`` seconds (with a small
        safety margin): fewer at any time, more (up to ``cfg.epochs``) only in the first half
        of the schedule, where stretching the cosine barely changes the learning rate."""
        fits = math.floor(epochs_done + max(0.0, remaining) * BUDGET_SAFETY / max(1e-9, epoch_seconds))
        may_grow = self.schedule.step_count < self.schedule.total / 2
        ceiling = self.cfg.epochs if may_grow else self.state.planned_epochs
        planned = max(math.ceil(epochs_done), min(ceiling, fits), 1)
        if planned != self.state.planned_epochs:
            logger.info(
                "time budget %.0fs: planning %d epoch(s) of %.1fs instead of %d",
                self.cfg.max_train_seconds,
                planned,
                epoch_seconds,
                self.state.planned_epochs,
            )
            self.state.planned_epochs = planned
            self.schedule.set_total(planned * self.batches)

    def _end_epoch(self, epoch: int, train_loss: float, metrics: dict[str, float], seconds: float) -> None:
        cfg, state = self.cfg, self.state
        state.partial = None
        state.epoch = epoch
        state.train_seconds += seconds
        self.session_epoch_seconds.append(seconds)
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            **metrics,
            "seconds": seconds,
            "lr": self.schedule.lr(self.schedule.step_count),
        }
        state.history.append(record)
        improved = False
        if metrics["val_accuracy"] > state.best_accuracy + 1e-12:
            state.best_accuracy, improved = metrics["val_accuracy"], True
        if metrics["val_loss"] < state.best_loss - MIN_DELTA:
            state.best_loss, improved = metrics["val_loss"], True
        state.bad_epochs = 0 if improved else state.bad_epochs + 1
        score = (metrics["val_accuracy"], -metrics["val_loss"])
        if score > state.best_score:
            state.best_score, state.best_epoch = score, epoch
            save_atomic({"model": self.model.state_dict(), "epoch": epoch, "metrics": metrics}, self.best_path)
        if state.bad_epochs >= cfg.patience and epoch < state.planned_epochs:
            state.stop_reason = "early_stop"
        elif cfg.max_train_seconds is not None and epoch < state.planned_epochs:
            if state.train_seconds >= cfg.max_train_seconds:
                state.stop_reason = "time_budget"
            else:
                typical = statistics.median(self.session_epoch_seconds)
                self._replan(epoch, cfg.max_train_seconds - state.train_seconds, typical)
                if state.planned_epochs <= epoch:
                    state.stop_reason = "time_budget"
        self._save_last()
        logger.info(
            "epoch %d/%d: train loss %.4f, val loss %.4f, val accuracy %.4f (%.1fs)",
            epoch,
            state.planned_epochs,
            train_loss,
            metrics["val_loss"],
            metrics["val_accuracy"],
            seconds,
        )
        self.emit(
            {
                "event": "epoch_end",
                "epoch": epoch,
                "epochs": state.planned_epochs,
                "train_loss": train_loss,
                "val_loss": metrics["val_loss"],
                "val_accuracy": metrics["val_accuracy"],
                "seconds": seconds,
            }
        )
        if state.stop_reason == "early_stop":
            logger.info("early stop after epoch %d: no validation improvement for %d epochs", epoch, cfg.patience)
            self.emit({"event": "early_stop", "epoch": epoch})

    def _finish(self) -> TrainResult:
        cfg, state = self.cfg, self.state
        if self.best_path.exists():
            self.model.load_state_dict(_load(self.best_path)["model"])
        self.model.eval()
        best = next((h for h in state.history if h["epoch"] == state.best_epoch), state.history[-1])
        sample = next(iter(self.loaders.val.epoch(0)))[0][:8]
        onnx_path = export_onnx(self.model, cfg, self.workdir / "model.onnx", self.model_id, sample=sample)
        labels_path = self.workdir / "labels.json"
        labels_path.write_text(json.dumps(list(cfg.classes), indent=1) + "\n", encoding="utf-8")
        seconds = time.perf_counter() - self.started
        settings = {k: v for k, v in cfg.to_dict().items() if k not in ("train", "val", "classes")}
        metrics: dict[str, Any] = {
            "task": cfg.task,
            "backbone": cfg.backbone,
            "image_size": cfg.image_size,
            "channels": cfg.channels,
            "best_epoch": state.best_epoch,
            "epochs_run": state.epoch,
            "planned_epochs": state.planned_epochs,
            "stop_reason": state.stop_reason,
            **{k: v for k, v in best.items() if k.startswith("val_")},
            "train_images": len(cfg.train),
            "val_images": len(cfg.val),
            "train_seconds": state.train_seconds,
            "data_seconds": self.loaders.seconds,
            "seconds": seconds,
            "in_memory": self.loaders.in_memory,
            "settings": settings,
            "history": state.history,
        }
        (self.workdir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
        self.emit({"event": "done", "best_epoch": state.best_epoch, "val_accuracy": best["val_accuracy"]})
        logger.info(
            "done: best epoch %d, val accuracy %.4f, %d epoch(s), %.1fs training",
            state.best_epoch,
            best["val_accuracy"],
            state.epoch,
            state.train_seconds,
        )
        return TrainResult(
            onnx_path=onnx_path, best_epoch=state.best_epoch, epochs_run=state.epoch, metrics=metrics, seconds=seconds
        )
