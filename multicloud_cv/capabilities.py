"""Capabilities declared as data, every gap with its reason.

A provider declares, as a :class:`Capabilities` value, which features it supports and,
for every feature it does not support, why. The core checks a request's requirements
against the declaration before anything is uploaded, started or billed
(:meth:`Capabilities.check`), and the docs' support matrix is generated from the same
data, so the table cannot lie.

Feature names are plain strings of the form ``"<kind>:<value>"`` or a bare name:

- ``task:classification`` (single-label), ``task:multilabel``, ``task:detection``
- ``compute:cpu``, ``compute:gpu``, ``compute:tpu``
- ``export:onnx``, ``export:tflite``, ``export:coreml``, ``export:savedmodel``, ``export:tensorflow`` (a frozen
  graph), ``export:docker`` (a container build context)
- ``incremental_training``, ``batch_prediction``, ``endpoint_ttl``, ``cancel``, ``resume``
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from multicloud_cv.errors import UnsupportedFeature


class Task(StrEnum):
    """What a model predicts."""

    CLASSIFICATION = "classification"
    MULTILABEL = "multilabel"
    DETECTION = "detection"

    @property
    def feature(self) -> str:
        """The capability feature name of this task."""
        return f"task:{self.value}"


ALL_FEATURES: tuple[str, ...] = (
    "task:classification",
    "task:multilabel",
    "task:detection",
    "compute:cpu",
    "compute:gpu",
    "compute:tpu",
    "export:onnx",
    "export:tflite",
    "export:coreml",
    "export:savedmodel",
    "export:tensorflow",
    "export:docker",
    "incremental_training",
    "batch_prediction",
    "endpoint_ttl",
    "cancel",
    "resume",
)


@dataclass(frozen=True)
class Limits:
    """Service limits, declared as data by each provider and checked in preflight before any upload.

    ``None`` means no limit. The checks themselves live in the core
    (:mod:`multicloud_cv.datasets.preflight`); a provider only states its numbers:

    * ``min_images_per_label`` (classification) / ``min_images_per_label_detection``
      (detection; ``None``: same as classification), ``min_labels``, ``max_labels``,
      ``max_images``, ``max_labels_per_image``, ``max_boxes_per_image``;
    * ``max_image_bytes`` (training uploads), ``max_predict_image_bytes`` (one prediction
      request), ``min_image_side`` / ``max_image_side`` in pixels, ``max_aspect_ratio``,
      ``image_formats`` (Pillow format names such as ``"JPEG"``; ``None``: any),
      ``requires_rgb`` (3-channel images only);
    * ``single_bucket`` (every image in one bucket), ``ignores_negative_images`` (images
      without boxes are dropped by the service: a warning), ``min_test_label_overlap``
      (share of test labels that must also be training labels).
    """

    min_images_per_label: int = 1
    min_labels: int = 2
    max_labels: int | None = None
    max_image_bytes: int | None = None
    min_image_side: int | None = None
    max_image_side: int | None = None
    max_images: int | None = None
    min_images_per_label_detection: int | None = None
    max_labels_per_image: int | None = None
    max_boxes_per_image: int | None = None
    max_predict_image_bytes: int | None = None
    max_aspect_ratio: float | None = None
    image_formats: frozenset[str] | None = None
    requires_rgb: bool = False
    single_bucket: bool = False
    ignores_negative_images: bool = False
    min_test_label_overlap: float | None = None

    def min_per_label(self, task: str) -> int:
        """Minimum images per label for ``task`` (``detection`` may differ)."""
        if task == "detection" and self.min_images_per_label_detection is not None:
            return self.min_images_per_label_detection
        return self.min_images_per_label

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready mapping for reports (sets as sorted lists)."""
        return {key: sorted(value) if isinstance(value, frozenset) else value for key, value in self.__dict__.items()}


@dataclass(frozen=True)
class Capabilities:
    """What a provider can and cannot do.

    ``supported`` lists features; ``unsupported`` maps every other feature in
    :data:`ALL_FEATURES` to a reason a user can act on. Construction fails when a feature
    is in neither or in both, so a declaration is always complete.
    """

    supported: frozenset[str]
    unsupported: Mapping[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        both = self.supported & set(self.unsupported)
        if both:
            raise ValueError(f"features declared both supported and unsupported: {sorted(both)}")
        unknown = (self.supported | set(self.unsupported)) - set(ALL_FEATURES)
        if unknown:
            raise ValueError(f"unknown features: {sorted(unknown)}; known: {', '.join(ALL_FEATURES)}")
        missing = set(ALL_FEATURES) - self.supported - set(self.unsupported)
        if missing:
            raise ValueError(f"features with no declaration (give a reason when unsupported): {sorted(missing)}")
        empty = [name for name, reason in self.unsupported.items() if not reason.strip()]
        if empty:
            raise ValueError(f"unsupported features need a reason: {sorted(empty)}")

    @classmethod
    def declare(
        cls, supported: Iterable[str], unsupported: Mapping[str, str], limits: Limits | None = None
    ) -> Capabilities:
        """Build a declaration from any iterables (convenience for plugins)."""
        return cls(frozenset(supported), dict(unsupported), limits or Limits())

    def supports(self, feature: str) -> bool:
        """True when ``feature`` is supported."""
        return feature in self.supported

    @property
    def tasks(self) -> list[Task]:
        """The tasks this provider can train and serve."""
        return [task for task in Task if task.feature in self.supported]

    def gaps(self, requirements: Iterable[str]) -> dict[str, str]:
        """The requirements this provider cannot serve, each with its reason."""
        return {req: self.unsupported.get(req, "not declared") for req in requirements if req not in self.supported}

    def check(self, provider: str, requirements: Iterable[str]) -> None:
        """Raise :class:`UnsupportedFeature` listing every unmet requirement with its reason."""
        gaps = self.gaps(requirements)
        if gaps:
            raise UnsupportedFeature(provider, gaps)

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping (for ``mcv providers --json`` and the docs' support matrix)."""
        return {
            "supported": sorted(self.supported),
            "unsupported": dict(sorted(self.unsupported.items())),
            "limits": self.limits.as_dict(),
        }
