"""Preflight: the dataset and job mistakes that waste a training hour, caught before anything is sent.

Every check returns :class:`Finding` values (severity, a stable ``code``, the problem in
one line, the file it concerns, what to do) instead of stopping at the first, so
``mcv dataset validate`` can list them all and ``--json`` tools can read them.
:func:`preflight` is what every training runs automatically: it raises
:class:`DatasetError` for the first error (saying how many more there are) and logs warnings.

Three levels, from cheap to thorough:

* structure (always): classes, images per label for the task, labels and boxes per image,
  box geometry, negatives a service ignores, images spread over buckets, test labels
  unknown to training, the limits the provider declared (:class:`Limits`);
* job context (when the provider passes a :class:`PreflightContext`): bucket region
  against job region, mini-batch against split sizes, channels and content types,
  incremental-training base model, detection ``label_width``, a ``.rec`` against its
  ``.lst``, augmented-manifest attribute names on every line;
* files (``files=True``): byte sizes and image headers (format, mode, pixel size, aspect
  ratio; boxes against the real size) read without decoding pixels, and content hashes
  to find the same image in train and test. ``decode=True`` also decodes every image to
  find truncated or corrupt files.

The limits are data declared by each provider; the checks live here, in the core.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from multicloud_cv.capabilities import Limits, Task
from multicloud_cv.datasets.media import is_uri
from multicloud_cv.datasets.model import Dataset, ImageRecord
from multicloud_cv.errors import DatasetError

log = logging.getLogger(__name__)


class Severity(StrEnum):
    """An error stops training; a warning is shown and training goes on."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One problem: ``message`` says what is wrong, ``fix`` what to do, ``path`` where (when a file)."""

    severity: Severity
    code: str
    message: str
    fix: str
    path: str | None = None

    def line(self) -> str:
        """The finding as one line: ``<path>: <message>; <fix>``."""
        where = f"{self.path}: " if self.path else ""
        return f"{where}{self.message}; {self.fix}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "fix": self.fix,
            "path": self.path,
        }


@dataclass(frozen=True)
class BaseModel:
    """What an incremental-training base model was trained with (``None``: unknown, not checked)."""

    num_classes: int | None = None
    image_shape: tuple[int, ...] | None = None
    classes: Sequence[str] | None = None


@dataclass
class PreflightContext:
    """What a provider knows about the job it is about to submit; every field is optional.

    ``channels`` maps channel name to content type (``None`` or empty: missing);
    ``accepted_channels`` are the names the algorithm takes. ``image_shape`` and
    ``base_model`` are compared for incremental training. ``label_width`` is the detection
    label width the job will use. ``rec_files`` pairs each ``.rec`` with its ``.lst``;
    ``manifests`` pairs each augmented manifest with the attribute names of its channel.
    """

    provider: str = ""
    region: str | None = None
    bucket: str | None = None
    bucket_region: str | None = None
    mini_batch_size: int | None = None
    channels: Mapping[str, str | None] | None = None
    accepted_channels: Collection[str] | None = None
    image_shape: tuple[int, ...] | None = None
    base_model: BaseModel | None = None
    label_width: int | None = None
    rec_files: Sequence[tuple[Path, Path]] = field(default_factory=list)
    manifests: Sequence[tuple[Path, Sequence[str]]] = field(default_factory=list)


def _error(code: str, message: str, fix: str, path: str | None = None) -> Finding:
    return Finding(Severity.ERROR, code, message, fix, path)


def _warning(code: str, message: str, fix: str, path: str | None = None) -> Finding:
    return Finding(Severity.WARNING, code, message, fix, path)


# -- structure ------------------------------------------------------------------------------------


def check_structure(dataset: Dataset, task: Task, limits: Limits, provider: str = "") -> list[Finding]:
    """Checks that need the annotations only: no file is opened."""
    where = f" for provider '{provider}'" if provider else ""
    found: list[Finding] = []
    for note in dataset.notes:
        kind, _, rel = note.partition(":")
        if kind == "not-an-image":
            found.append(
                _error("not-an-image", "not an image file", "remove it or pass --skip-invalid", str(dataset.root / rel))
            )
    compatible = dataset.task == task.value or (task is Task.MULTILABEL and dataset.task == "classification")
    if not compatible:
        found.append(
            _error(
                "task-mismatch",
                f"dataset {dataset.root} is a {dataset.task} dataset; it cannot train --task {task.value}",
                f"pass --task {dataset.task} or give a {task.value} dataset",
            )
        )
        return found
    if not dataset.images:
        return [*found, _error("no-images", f"dataset {dataset.root} holds no images", "add images")]
    training = [image for image in dataset.images if image.split != "test"]
    counts = dataset.label_counts(training)
    for name, count in counts.items():
        if count == 0:
            what = "boxes" if dataset.task == "detection" else "images"
            found.append(
                _error(
                    "class-without-images",
                    f"class '{name}' has no training {what} in {dataset.root}",
                    "add examples of it or remove the class",
                )
            )
    present = [name for name, count in counts.items() if count > 0]
    if len(present) < limits.min_labels:
        found.append(
            _error(
                "too-few-labels",
                f"dataset has {len(present)} class(es) with training data; at least {limits.min_labels} are "
                f"needed{where}",
                "add images of more classes",
            )
        )
    if limits.max_labels is not None and len(present) > limits.max_labels:
        found.append(
            _error(
                "too-many-labels",
                f"dataset has {len(present)} classes; at most {limits.max_labels} are allowed{where}",
                "merge or drop classes",
            )
        )
    minimum = limits.min_per_label(dataset.task)
    few = sorted(((count, name) for name, count in counts.items() if 0 < count < minimum))
    if few:
        count, name = few[0]
        found.append(
            _error(
                "too-few-images-per-label",
                f"class '{name}' has {count} training image(s); at least {minimum} per label are needed{where} "
                f"({len(few)} class(es) too small)",
                "add images to the small classes or remove them",
            )
        )
    if limits.max_images is not None and len(dataset.images) > limits.max_images:
        found.append(
            _error(
                "too-many-images",
                f"dataset has {len(dataset.images)} images; at most {limits.max_images} are allowed{where}",
                "sample the dataset down",
            )
        )
    found += _per_image_checks(dataset, limits, where)
    found += _bucket_checks(dataset, limits, where)
    found += _test_overlap(dataset, limits, where)
    return found


def _per_image_checks(dataset: Dataset, limits: Limits, where: str) -> list[Finding]:
    found: list[Finding] = []
    negatives = 0
    for image in dataset.images:
        labels = set(image.labels) | {box.label for box in image.boxes}
        if limits.max_labels_per_image is not None and len(labels) > limits.max_labels_per_image:
            found.append(
                _error(
                    "too-many-labels-per-image",
                    f"{len(labels)} labels on one image; at most {limits.max_labels_per_image} are allowed{where}",
                    "drop labels from this image",
                    image.path,
                )
            )
        if limits.max_boxes_per_image is not None and len(image.boxes) > limits.max_boxes_per_image:
            found.append(
                _error(
                    "too-many-boxes",
                    f"{len(image.boxes)} boxes on one image; at most {limits.max_boxes_per_image} are allowed{where}",
                    "split the image into tiles or drop small boxes",
                    image.path,
                )
            )
        bad_label = [label for label in labels if not 0 <= label < len(dataset.classes)]
        if bad_label:
            found.append(
                _error(
                    "label-out-of-range",
                    f"label {bad_label[0]} is out of range 0..{len(dataset.classes) - 1}",
                    "fix the annotation",
                    image.path,
                )
            )
        if dataset.task == "detection":
            if not image.boxes:
                negatives += 1
            found += box_findings(image, image.width, image.height)
    if negatives and limits.ignores_negative_images:
        found.append(
            _warning(
                "negatives-ignored",
                f"{negatives} image(s) have no boxes; this service ignores images without boxes{where}",
                "they are not used to learn what is not an object; filter false positives after prediction",
            )
        )
    return found


def box_findings(image: ImageRecord, width: int | None, height: int | None) -> list[Finding]:
    """Zero-area or inverted boxes, and (when the size is known) boxes outside the image."""
    found: list[Finding] = []
    for box in image.boxes:
        corners = f"({box.x_min:g}, {box.y_min:g}, {box.x_max:g}, {box.y_max:g})"
        if box.x_max <= box.x_min or box.y_max <= box.y_min:
            found.append(
                _error(
                    "box-zero-area",
                    f"box {corners} has zero area or is inverted",
                    "fix or remove the box (x_max must exceed x_min, y_max y_min)",
                    image.path,
                )
            )
        elif width and height and (box.x_min < 0 or box.y_min < 0 or box.x_max > width or box.y_max > height):
            found.append(
                _error(
                    "box-outside-image",
                    f"box {corners} lies outside the {width}x{height} image",
                    "clip the box to the image or fix its coordinates",
                    image.path,
                )
            )
    return found


def _bucket_checks(dataset: Dataset, limits: Limits, where: str) -> list[Finding]:
    if not limits.single_bucket:
        return []
    buckets = Counter(image.path.split("/")[2] for image in dataset.images if is_uri(image.path) and "//" in image.path)
    if len(buckets) <= 1:
        return []
    listed = ", ".join(f"{name} ({count})" for name, count in buckets.most_common(3))
    return [
        _error(
            "images-in-several-buckets",
            f"images are spread over {len(buckets)} buckets ({listed}); all images must be in one bucket{where}",
            "copy the images into one bucket (mcv stages local images into one)",
        )
    ]


def _test_overlap(dataset: Dataset, limits: Limits, where: str) -> list[Finding]:
    if limits.min_test_label_overlap is None:
        return []
    test = set(dataset.label_counts(dataset.split("test")).items())
    test_labels = {name for name, count in test if count}
    train_labels = {name for name, count in dataset.label_counts(dataset.split("train")).items() if count}
    if not test_labels or not train_labels:
        return []
    # Rekognition Custom Labels DG: "Overlaps are (common labels between test and train)/(train labels)"
    overlap = len(test_labels & train_labels) / len(train_labels)
    if overlap >= limits.min_test_label_overlap:
        return []
    return [
        _error(
            "test-labels-unknown",
            f"the test split shares only {overlap:.0%} of the training labels; at least "
            f"{limits.min_test_label_overlap:.0%} must also be in the test split{where}",
            "re-split the dataset so the test split covers the training labels (mcv dataset split)",
        )
    ]


# -- job context ---------------------------------------------------------------------------------


def check_context(dataset: Dataset, context: PreflightContext) -> list[Finding]:
    """Checks of the planned job against the dataset (see :class:`PreflightContext`)."""
    found: list[Finding] = []
    if context.region and context.bucket_region and context.region != context.bucket_region:
        found.append(
            _error(
                "bucket-region",
                f"bucket {context.bucket or ''} is in {context.bucket_region} but the job runs in {context.region}",
                f"use a bucket in {context.region} or run the job in {context.bucket_region}",
            )
        )
    if context.mini_batch_size:
        for split in ("train", "validation"):
            count = len(dataset.split(split))
            if 0 < count < context.mini_batch_size:
                found.append(
                    _error(
                        "mini-batch-too-large",
                        f"{split} has {count} image(s), fewer than mini_batch_size {context.mini_batch_size} "
                        "(The number of input images must be bigger or equal to the mini_batch_size.)",
                        f"set mini_batch_size to at most {count} or add {split} images",
                    )
                )
    for name, content_type in (context.channels or {}).items():
        if not content_type:
            found.append(_error("channel-content-type", f"channel '{name}' has no content type", "set ContentType"))
        if context.accepted_channels is not None and name not in context.accepted_channels:
            found.append(
                _error(
                    "channel-name",
                    f"channel '{name}' is not accepted by the algorithm",
                    f"use the channels {', '.join(sorted(context.accepted_channels))}",
                )
            )
    found += _base_model_checks(dataset, context)
    if context.label_width is not None and dataset.task == "detection":
        from multicloud_cv.datasets.lst import label_width_needed

        needed = label_width_needed(dataset)
        most = (needed - 2) // 5
        if context.label_width < needed:
            found.append(
                _error(
                    "label-width",
                    f"label_width {context.label_width} is too small: one image has {most} boxes, which needs "
                    f"2 + 5 x {most} = {needed}",
                    f"set label_width to at least {needed}",
                )
            )
    for rec, lst in context.rec_files:
        found += _call_check("rec-lst-count", "multicloud_cv.datasets.lst", "check_rec_matches_lst", rec, lst)
    for manifest, names in context.manifests:
        found += _call_check(
            "manifest-attributes", "multicloud_cv.datasets.augmented_manifest", "check_attribute_order", manifest, names
        )
    return found


def _base_model_checks(dataset: Dataset, context: PreflightContext) -> list[Finding]:
    base = context.base_model
    if base is None:
        return []
    found: list[Finding] = []
    if base.num_classes is not None and base.num_classes != len(dataset.classes):
        found.append(
            _error(
                "base-model-classes",
                f"the base model has {base.num_classes} classes, the dataset {len(dataset.classes)}",
                "incremental training needs the same classes; train from scratch or fix the classes",
            )
        )
    elif base.classes is not None and list(base.classes) != list(dataset.classes):
        found.append(
            _error(
                "base-model-classes",
                "the dataset's classes differ from the base model's (names or order)",
                "use the base model's class order",
            )
        )
    if base.image_shape is not None and context.image_shape is not None and base.image_shape != context.image_shape:
        found.append(
            _error(
                "base-model-image-shape",
                f"image_shape {','.join(map(str, context.image_shape))} differs from the base model's "
                f"{','.join(map(str, base.image_shape))}",
                "incremental training needs the base model's image_shape",
            )
        )
    return found


def _call_check(code: str, module: str, function: str, *args: Any) -> list[Finding]:
    import importlib

    try:
        check = getattr(importlib.import_module(module), function)
        check(*args)
    except DatasetError as exc:
        return [_error(code, str(exc), "fix the file or rewrite it with mcv dataset convert")]
    return []


# -- files ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FileFacts:
    image: ImageRecord
    findings: tuple[Finding, ...]
    digest: str | None


def _inspect_file(dataset: Dataset, image: ImageRecord, limits: Limits, decode: bool) -> _FileFacts:
    from PIL import Image, UnidentifiedImageError

    if is_uri(image.path):
        return _FileFacts(image, (), None)
    path = dataset.absolute(image)
    found: list[Finding] = []
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _FileFacts(image, (_error("missing-image", f"cannot read the image ({exc})", "fix the path"),), None)
    where = str(path)
    if limits.max_image_bytes is not None and len(data) > limits.max_image_bytes:
        found.append(
            _error(
                "image-too-large",
                f"{len(data)} bytes is over the limit of {limits.max_image_bytes} bytes",
                "resize or recompress it",
                where,
            )
        )
    import io

    try:
        with Image.open(io.BytesIO(data)) as opened:
            fmt, mode, (width, height) = opened.format, opened.mode, opened.size
            if decode:
                opened.load()
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as exc:
        found.append(_error("corrupt-image", f"not a readable image ({exc})", "fix or remove it", where))
        return _FileFacts(image, tuple(found), hashlib.sha256(data).hexdigest())
    if limits.image_formats is not None and fmt not in limits.image_formats:
        found.append(
            _error(
                "image-format",
                f"{fmt} images are not accepted; accepted: {', '.join(sorted(limits.image_formats))}",
                "convert it to JPEG or PNG",
                where,
            )
        )
    if limits.requires_rgb and mode != "RGB":
        found.append(_error("not-rgb", f"image mode is {mode}, not 3-channel RGB", "convert it to RGB", where))
    if limits.min_image_side is not None and min(width, height) < limits.min_image_side:
        found.append(
            _error(
                "image-too-small",
                f"{width}x{height} is smaller than the minimum side of {limits.min_image_side} px",
                "use a larger image",
                where,
            )
        )
    if limits.max_image_side is not None and max(width, height) > limits.max_image_side:
        found.append(
            _error(
                "image-too-big",
                f"{width}x{height} is larger than the maximum side of {limits.max_image_side} px",
                f"resize it to at most {limits.max_image_side} px",
                where,
            )
        )
    if limits.max_aspect_ratio is not None and max(width, height) > limits.max_aspect_ratio * min(width, height):
        found.append(
            _error(
                "aspect-ratio",
                f"{width}x{height} has an aspect ratio over {limits.max_aspect_ratio:g}:1",
                "crop it",
                where,
            )
        )
    if (image.width, image.height) not in ((None, None), (width, height)):
        found.append(
            _error(
                "image-size-mismatch",
                f"the annotation says {image.width}x{image.height} but the image is {width}x{height}",
                "fix the image size in the annotation",
                where,
            )
        )
    if dataset.task == "detection":
        found += [
            Finding(f.severity, f.code, f.message, f.fix, where)
            for f in box_findings(image, width, height)
            if f.code == "box-outside-image" and not (image.width and image.height)
        ]
    return _FileFacts(image, tuple(found), hashlib.sha256(data).hexdigest())


def check_files(dataset: Dataset, limits: Limits, decode: bool = False, workers: int = 8) -> list[Finding]:
    """Stat, read headers and hash every local image; ``decode`` also decodes pixels."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        facts = list(pool.map(lambda image: _inspect_file(dataset, image, limits, decode), dataset.images))
    found = [finding for fact in facts for finding in fact.findings]
    by_digest: dict[str, set[str]] = defaultdict(set)
    first: dict[tuple[str, str], str] = {}
    for fact in facts:
        if fact.digest:
            split = fact.image.split or "unassigned"
            by_digest[fact.digest].add(split)
            first.setdefault((fact.digest, split), fact.image.path)
    leaks = [digest for digest, splits in by_digest.items() if "test" in splits and splits & {"train", "validation"}]
    if leaks:
        train_path = first.get((leaks[0], "train")) or first.get((leaks[0], "validation"))
        found.append(
            _error(
                "train-test-duplicate",
                f"{len(leaks)} image(s) are in both training and test (same content), e.g. "
                f"{first[(leaks[0], 'test')]} and {train_path}",
                "remove the duplicates from one side, or re-split (mcv dataset split)",
            )
        )
    return found


# -- entry points --------------------------------------------------------------------------------


def check_dataset(
    dataset: Dataset,
    task: Task,
    limits: Limits,
    context: PreflightContext | None = None,
    files: bool = False,
    decode: bool = False,
) -> list[Finding]:
    """Every applicable check; errors first, then warnings."""
    context = context or PreflightContext()
    found = check_structure(dataset, task, limits, context.provider)
    found += check_context(dataset, context)
    if files:
        found += check_files(dataset, limits, decode=decode)
    return sorted(found, key=lambda f: f.severity is not Severity.ERROR)


def raise_for_errors(findings: Sequence[Finding]) -> None:
    """Log the warnings; raise :class:`DatasetError` for the first error, counting the rest."""
    for finding in findings:
        if finding.severity is Severity.WARNING:
            log.warning("%s", finding.line())
    errors = [finding for finding in findings if finding.severity is Severity.ERROR]
    if errors:
        more = f" ({len(errors) - 1} more problem(s): mcv dataset validate lists them)" if len(errors) > 1 else ""
        raise DatasetError(errors[0].line() + more)


def preflight(
    dataset: Dataset, task: Task, limits: Limits, provider: str = "", context: PreflightContext | None = None
) -> None:
    """Raise :class:`DatasetError` (one line, naming the problem and the fix) for a dataset this job can't use."""
    context = context or PreflightContext(provider=provider)
    if not context.provider:
        context.provider = provider
    raise_for_errors(check_dataset(dataset, task, limits, context))
