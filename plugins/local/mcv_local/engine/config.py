"""Training configuration of the local engine.

:class:`TrainConfig` is what the provider hands to :func:`mcv_local.engine.train.train`.
Fields left at ``None`` (or ``backbone="auto"``) are chosen by the engine from the data
and the machine; the resolved configuration (every field filled in) is stored in the
checkpoints and in ``metrics.json``. ``to_dict``/``from_dict`` round-trip through JSON.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import EngineError

TASKS = ("classification", "multilabel")
BACKBONES = ("auto", "small_cnn", "efficientnet_lite0")
PRECISIONS = ("auto", "fp32", "bf16")

Sample = tuple[str, list[int]]


@dataclass
class TrainConfig:
    """Everything one training run needs.

    ``train``/``val`` hold ``(image path, class indices)`` pairs; a single-label
    (``task="classification"``) sample has exactly one index, a multilabel sample zero or
    more. An empty ``val`` makes the engine carve a seeded, stratified 10 % of ``train``
    out as validation (at least one image).

    ``max_train_seconds`` is a time budget for the epochs (training plus validation; loading
    the images is not counted): from measured batch times the engine plans as many whole
    epochs as fit (at most ``epochs``) and fits the learning-rate schedule to them, and in
    any case stops after the epoch that crosses it.

    ``hflip`` enables horizontal flips when ``augment`` is on (turn it off for data where left
    and right differ, such as text or digits). ``crop_padding`` is the zero padding of the
    random-crop augmentation of small (in-memory) images; ``None`` means 0 for 10,000
    training images or more (about ten epochs of so much data underfit rather than overfit:
    on Fashion-MNIST the crop cost 1 point of accuracy at 10 epochs) and ``image_size / 14``
    (2 px at 28 px) below that. ``precision="auto"`` trains with bfloat16 autocast on CPUs
    with native bfloat16 support and float32 elsewhere; validation and export are always
    float32.
    """

    task: str
    classes: list[str]
    train: list[Sample]
    val: list[Sample] = field(default_factory=list)
    backbone: str = "auto"
    image_size: int | None = None
    channels: int | None = None
    epochs: int = 10
    batch_size: int | None = None
    lr: float | None = None
    patience: int = 3
    seed: int = 0
    augment: bool = True
    num_threads: int | None = None
    max_train_seconds: float | None = None
    pretrained: bool = True
    hflip: bool = True
    crop_padding: int | None = None
    label_smoothing: float = 0.1
    precision: str = "auto"

    def check(self) -> None:
        """Raise :class:`EngineError` when the configuration cannot be trained."""
        if self.task not in TASKS:
            raise EngineError(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")
        if len(self.classes) < 1 or (self.task == "classification" and len(self.classes) < 2):
            raise EngineError(
                f"task {self.task} needs at least {2 if self.task == 'classification' else 1} "
                f"classes, got {len(self.classes)}"
            )
        if len(set(self.classes)) != len(self.classes):
            raise EngineError("class names must be unique")
        if not self.train:
            raise EngineError("no training images")
        if not (self.backbone in BACKBONES or (self.backbone.startswith("timm:") and len(self.backbone) > 5)):
            raise EngineError(
                f"unknown backbone {self.backbone!r}: use auto, small_cnn, efficientnet_lite0 or timm:<model name>"
            )
        if self.precision not in PRECISIONS:
            raise EngineError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.image_size is not None and not 8 <= self.image_size <= 1024:
            raise EngineError(f"image_size must be between 8 and 1024, not {self.image_size}")
        if self.channels not in (None, 1, 3):
            raise EngineError(f"channels must be 1 or 3, not {self.channels}")
        if self.epochs < 1:
            raise EngineError("epochs must be at least 1")
        if self.batch_size is not None and self.batch_size < 1:
            raise EngineError("batch_size must be at least 1")
        if self.lr is not None and self.lr < 0:
            raise EngineError("lr must not be negative")
        if self.patience < 1:
            raise EngineError("patience must be at least 1")
        if self.max_train_seconds is not None and self.max_train_seconds <= 0:
            raise EngineError("max_train_seconds must be positive")
        if self.crop_padding is not None and not 0 <= self.crop_padding <= 64:
            raise EngineError("crop_padding must be between 0 and 64")
        if not 0 <= self.label_smoothing < 1:
            raise EngineError("label_smoothing must be in [0, 1)")
        for split, samples in (("train", self.train), ("val", self.val)):
            for path, labels in samples:
                if any(not 0 <= label < len(self.classes) for label in labels):
                    raise EngineError(f"{split} image {path} has a class index outside 0..{len(self.classes) - 1}")
                if self.task == "classification" and len(labels) != 1:
                    raise EngineError(
                        f"{split} image {path} needs exactly one class for task classification, has {len(labels)}"
                    )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (samples become ``[path, [indices]]`` lists)."""
        data = dataclasses.asdict(self)
        data["train"] = [[str(path), list(labels)] for path, labels in self.train]
        data["val"] = [[str(path), list(labels)] for path, labels in self.val]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; raises :class:`EngineError` on unknown keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise EngineError(f"unknown TrainConfig field(s): {', '.join(unknown)}")
        values = dict(data)
        for split in ("train", "val"):
            if split in values:
                values[split] = [(str(path), [int(i) for i in labels]) for path, labels in values[split]]
        values["classes"] = [str(name) for name in values.get("classes", [])]
        try:
            return cls(**values)
        except TypeError as exc:
            raise EngineError(f"incomplete TrainConfig: {exc}") from exc
