"""Custom Vision's documented limits as data (``data/limits.json``, each number with the sentence that states it).

Contracts:

* :data:`LIMITS` (:func:`customvision_limits`) holds the typed values the provider checks before anything is
  uploaded and the emulator enforces: 64 images and 20 tags a batch, 6 MB per training image, 4 MB per prediction
  image, 256..10,240 px a side (under 256 px the service upscales: a warning, not a refusal), aspect ratio at most
  25:1, 300 regions an image, at least 5 images per tag for classification and 15 for object detection, 20
  iterations, and per tier (:meth:`CustomVisionLimits.tier`) the caps on projects, images per project and tags.
* :func:`capabilities_limits` builds the core's :class:`~multicloud_cv.capabilities.Limits` for ``tier`` so the
  core's preflight (``mcv dataset validate --provider customvision``) checks the same numbers.
* :func:`citation` is one line for an error message: ``Limits and quotas: “Max image size (training): 6 MB”``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from multicloud_cv.capabilities import Limits
from multicloud_cv.errors import ConfigError

TIERS = ("F0", "S0")


@dataclass(frozen=True)
class TierLimits:
    """The caps of one pricing tier."""

    name: str
    projects: int
    images: int
    tags: int
    predictions_per_month: int | None
    training_tps: int
    prediction_tps: int


@dataclass(frozen=True)
class CustomVisionLimits:
    """Every number of ``data/limits.json`` as a typed value."""

    max_images_per_batch: int
    max_tags_per_batch: int
    max_image_bytes: int
    max_predict_image_bytes: int
    min_image_side: int
    max_image_side: int
    max_aspect_ratio: float
    max_regions_per_image: int
    min_images_per_tag_classification: int
    min_images_per_tag_detection: int
    max_iterations: int
    max_metadata_items: int
    tiers: dict[str, TierLimits]

    def tier(self, name: str) -> TierLimits:
        """The caps of ``name`` (``F0`` or ``S0``, any case); :class:`ConfigError` for another name."""
        key = name.strip().upper()
        if key not in self.tiers:
            raise ConfigError(f"tier '{name}' is not a Custom Vision pricing tier: use F0 or S0")
        return self.tiers[key]

    def min_images_per_tag(self, task: str) -> int:
        """5 for classification tasks, 15 for detection."""
        return self.min_images_per_tag_detection if task == "detection" else self.min_images_per_tag_classification


@cache
def _data() -> dict[str, Any]:
    text = resources.files("mcv_customvision").joinpath("data/limits.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


@cache
def customvision_limits() -> CustomVisionLimits:
    """The limits of the data file (cached)."""
    data = _data()
    values = {name: entry["value"] for name, entry in data["limits"].items()}
    tiers = {
        name: TierLimits(
            name=name,
            projects=int(t["projects"]),
            images=int(t["images"]),
            tags=int(t["tags"]),
            predictions_per_month=t["predictions_per_month"],
            training_tps=int(t["training_tps"]),
            prediction_tps=int(t["prediction_tps"]),
        )
        for name, t in data["tiers"].items()
    }
    return CustomVisionLimits(tiers=tiers, **values)


LIMITS = customvision_limits()


def citation(name: str) -> str:
    """``<page>: “<quote>”`` for one limit or tier name."""
    data = _data()
    entry = data["limits"].get(name) or data["tiers"].get(name)
    if entry is None:
        raise KeyError(name)
    return f"{entry['page']}: “{entry['quote']}”"


def capabilities_limits(tier: str = "S0") -> Limits:
    """The core's preflight limits for ``tier``: what the service refuses before training is billed."""
    limits = customvision_limits()
    caps = limits.tier(tier)
    return Limits(
        min_images_per_label=limits.min_images_per_tag_classification,
        min_images_per_label_detection=limits.min_images_per_tag_detection,
        min_labels=2,
        max_labels=caps.tags,
        max_images=caps.images,
        max_image_bytes=limits.max_image_bytes,
        max_predict_image_bytes=limits.max_predict_image_bytes,
        max_image_side=limits.max_image_side,
        max_aspect_ratio=limits.max_aspect_ratio,
        max_boxes_per_image=limits.max_regions_per_image,
    )
