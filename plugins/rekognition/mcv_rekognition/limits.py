"""Rekognition Custom Labels' documented limits, as data with their citations.

``data/limits.json`` holds every number this provider checks, each with the developer guide page it comes from and
the sentence that states it (``page`` + ``quote``), or ``"status": "not found"`` where the guide is silent (colour
modes). The pages are those of the Amazon Rekognition Custom Labels Developer Guide, read from its source repository
``awsdocs/amazon-rekognition-custom-labels-developer-guide``: "Guidelines and quotas in Amazon Rekognition Custom
Labels" (``limits.md``: "Supported file formats are PNG and JPEG image formats.", "Minimum image dimension ... is 64
pixels x 64 pixels.", "Maximum image aspect ratio is 20:1.", "Maximum size of images passed as raw bytes is 4 MB."),
"Validation rules for manifest files" ("The 20% invalidity rules apply cumulatively across all validation rules.",
"Overlaps are (common labels between test and train)/(train labels)."), "Debugging terminal dataset errors" ("The
maximum length is 100,000 characters.") and the others named in the file.

Contracts:

* :func:`rekognition_limits` returns the typed values (cached); :func:`documented` every entry with its citation;
  :func:`citation` one line for an error message or a report ("Guidelines and quotas in Amazon Rekognition Custom
  Labels: “Maximum image aspect ratio is 20:1.”").
* :func:`capabilities_limits` builds the core's :class:`~multicloud_cv.capabilities.Limits` from the same data, so
  the core's preflight checks what the guide states: PNG/JPEG, 64..4096 px a side, aspect at most 20:1, 15 MB per
  image in S3 and 4 MB per DetectCustomLabels request, at most 250 labels, 50 labels and 50 boxes per image, at least
  one image per label, one bucket, test labels overlapping the training labels by half, images without boxes
  ignored (a warning). ``min_labels`` is 2 for classification and 1 for detection (the guide's two numbers; the core
  has one field, hence the ``task`` argument). ``max_images`` is 250,000: the default per-dataset quota of both
  tasks and the per-manifest line limit, applied by the core to the whole dataset (the stricter reading).
* MB and GB are read as 10^6 and 10^9 bytes (the file's ``units`` says why: the stricter reading).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from multicloud_cv.capabilities import Limits

#: The tasks whose label minimum differs (the guide's "Objects, Scenes, and Concepts" and "Object Location").
_DETECTION = "detection"


@dataclass(frozen=True)
class Documented:
    """One documented limit: its value and where the guide states it (``status`` ``"not found"``: it does not)."""

    name: str
    value: Any
    page: str | None
    page_title: str | None
    url: str | None
    quote: str | None
    note: str | None = None
    unit: str | None = None
    status: str = "documented"

    def citation(self) -> str:
        """``<page title>: “<quote>”`` (or a line saying the guide does not state it)."""
        if self.quote is None or self.page_title is None:
            return f"{self.name}: not stated in the Rekognition Custom Labels developer guide"
        return f"{self.page_title}: “{self.quote}”"


@dataclass(frozen=True)
class RekognitionLimits:
    """The documented limits as typed values (see ``data/limits.json`` for each citation)."""

    image_formats: frozenset[str]
    min_image_side: int
    max_image_side: int
    max_aspect_ratio: float
    max_image_bytes: int
    max_predict_image_bytes: int
    api_image_bytes_max: int
    min_labels_classification: int
    min_labels_detection: int
    max_labels: int
    min_images_per_label: int
    recommended_min_training_images: int
    max_test_images_per_label: int
    max_images_detection: int
    max_images_classification: int
    regional_max_images: dict[str, dict[str, int]]
    max_manifest_lines: int
    max_manifest_bytes: int
    max_line_chars: int
    max_labels_per_image: int
    max_boxes_per_image: int
    min_box_side_px: int
    training_resize_px: int
    max_invalid_line_fraction: float
    min_test_label_overlap: float
    single_bucket: bool
    unique_source_ref: bool
    ignores_negative_images: bool
    auto_split_test_fraction: float
    max_running_models: int

    def min_labels(self, task: str) -> int:
        """At least this many labels with training data: 1 for ``detection``, else 2."""
        return self.min_labels_detection if task == _DETECTION else self.min_labels_classification

    def max_images(self, task: str, region: str | None = None, split: str = "train") -> int:
        """Images per dataset for ``task`` (default quota), lower in the regions the guide names."""
        regional = self.regional_max_images.get(region or "", {})
        default = self.max_images_detection if task == _DETECTION else self.max_images_classification
        return min(default, regional.get(split, default))


@cache
def _data() -> dict[str, Any]:
    text = resources.files("mcv_rekognition").joinpath("data/limits.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def documented() -> dict[str, Documented]:
    """Every entry of ``data/limits.json`` by name, with its page title, URL and quote."""
    data = _data()
    pages: dict[str, dict[str, str]] = data["pages"]
    entries: dict[str, Documented] = {}
    for name, entry in data["limits"].items():
        page = entry.get("page")
        info = pages.get(page, {}) if page else {}
        entries[name] = Documented(
            name=name,
            value=entry.get("value"),
            page=page,
            page_title=info.get("title"),
            url=info.get("url"),
            quote=entry.get("quote"),
            note=entry.get("note"),
            unit=entry.get("unit"),
            status=entry.get("status", "documented"),
        )
    return entries


def citation(name: str) -> str:
    """The citation line of one limit (``KeyError`` for a name the data file does not have)."""
    return documented()[name].citation()


def source() -> str:
    """Where the data file's numbers were read, and when (``source``; ``as_of``)."""
    data = _data()
    return f"{data['source']} (as of {data['as_of']})"


@cache
def rekognition_limits() -> RekognitionLimits:
    """The documented limits as typed values (read once)."""
    values = {name: entry.value for name, entry in documented().items()}
    return RekognitionLimits(
        image_formats=frozenset(values["image_formats"]),
        min_image_side=int(values["min_image_side"]),
        max_image_side=int(values["max_image_side"]),
        max_aspect_ratio=float(values["max_aspect_ratio"]),
        max_image_bytes=int(values["max_image_bytes"]),
        max_predict_image_bytes=int(values["max_predict_image_bytes"]),
        api_image_bytes_max=int(values["api_image_bytes_max"]),
        min_labels_classification=int(values["min_labels_classification"]),
        min_labels_detection=int(values["min_labels_detection"]),
        max_labels=int(values["max_labels"]),
        min_images_per_label=int(values["min_images_per_label"]),
        recommended_min_training_images=int(values["recommended_min_training_images"]),
        max_test_images_per_label=int(values["max_test_images_per_label"]),
        max_images_detection=int(values["max_images_detection"]),
        max_images_classification=int(values["max_images_classification"]),
        regional_max_images={
            region: {split: int(n) for split, n in splits.items()}
            for region, splits in values["regional_max_images"].items()
        },
        max_manifest_lines=int(values["max_manifest_lines"]),
        max_manifest_bytes=int(values["max_manifest_bytes"]),
        max_line_chars=int(values["max_line_chars"]),
        max_labels_per_image=int(values["max_labels_per_image"]),
        max_boxes_per_image=int(values["max_boxes_per_image"]),
        min_box_side_px=int(values["min_box_side_px"]),
        training_resize_px=int(values["training_resize_px"]),
        max_invalid_line_fraction=float(values["max_invalid_line_fraction"]),
        min_test_label_overlap=float(values["min_test_label_overlap"]),
        single_bucket=bool(values["single_bucket"]),
        unique_source_ref=bool(values["unique_source_ref"]),
        ignores_negative_images=bool(values["ignores_negative_images"]),
        auto_split_test_fraction=float(values["auto_split_test_fraction"]),
        max_running_models=int(values["max_running_models"]),
    )


def capabilities_limits(task: str = "classification", region: str | None = None) -> Limits:
    """The core's :class:`Limits` for ``task`` (``classification``, ``multilabel`` or ``detection``).

    ``region`` lowers ``max_images`` where the guide gives a regional limit (Mumbai, London).
    """
    limits = rekognition_limits()
    return Limits(
        min_images_per_label=limits.min_images_per_label,
        min_labels=limits.min_labels(task),
        max_labels=limits.max_labels,
        max_image_bytes=limits.max_image_bytes,
        min_image_side=limits.min_image_side,
        max_image_side=limits.max_image_side,
        max_images=min(limits.max_images(task, region), limits.max_manifest_lines),
        max_labels_per_image=limits.max_labels_per_image,
        max_boxes_per_image=limits.max_boxes_per_image,
        max_predict_image_bytes=limits.max_predict_image_bytes,
        max_aspect_ratio=limits.max_aspect_ratio,
        image_formats=limits.image_formats,
        requires_rgb=False,
        single_bucket=limits.single_bucket,
        ignores_negative_images=limits.ignores_negative_images,
        min_test_label_overlap=limits.min_test_label_overlap,
    )
