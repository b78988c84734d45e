"""Preflight: catch the dataset mistakes that would waste a training run, before anything is sent.

:func:`preflight` checks structure (classes, images per label, limits the provider
declared) without decoding pixels; :func:`verify_images` decodes every image to find
unreadable or truncated files, in parallel threads. Problems are reported with the file
they concern. ``skip_invalid=True`` drops unreadable images with a warning instead of failing.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from multicloud_cv.capabilities import Limits, Task
from multicloud_cv.datasets.model import Dataset, ImageRecord
from multicloud_cv.errors import DatasetError

log = logging.getLogger(__name__)


def preflight(dataset: Dataset, task: Task, limits: Limits, provider: str = "") -> None:
    """Raise :class:`DatasetError` (one line, naming the problem and the fix) for a dataset this task can't use."""
    where = f" for provider '{provider}'" if provider else ""
    for note in dataset.notes:
        kind, _, rel = note.partition(":")
        if kind == "not-an-image":
            raise DatasetError(f"{dataset.root / rel} is not an image file; remove it or pass --skip-invalid")
    if dataset.task != task.value and not (task is Task.CLASSIFICATION and dataset.task == "classification"):
        if task is Task.MULTILABEL and dataset.task == "classification":
            pass  # single-label data is valid multi-label data
        else:
            raise DatasetError(
                f"dataset {dataset.root} is a {dataset.task} dataset; it cannot train --task {task.value}"
            )
    if not dataset.images:
        raise DatasetError(f"dataset {dataset.root} holds no images")
    training = [img for img in dataset.images if img.split != "test"]
    counts = dataset.label_counts(training)
    empty = [name for name, count in counts.items() if count == 0]
    if empty:
        raise DatasetError(
            f"class '{empty[0]}' has no training images in {dataset.root}; add images or remove the class folder"
        )
    present = [name for name, count in counts.items() if count > 0]
    if len(present) < limits.min_labels:
        raise DatasetError(
            f"dataset {dataset.root} has {len(present)} class(es) ({', '.join(present)}); "
            f"a classifier needs at least {limits.min_labels}{where}"
        )
    if limits.max_labels is not None and len(present) > limits.max_labels:
        raise DatasetError(f"dataset has {len(present)} classes; at most {limits.max_labels} are allowed{where}")
    few = {name: count for name, count in counts.items() if count < limits.min_images_per_label}
    if few:
        name, count = sorted(few.items(), key=lambda kv: kv[1])[0]
        raise DatasetError(
            f"class '{name}' has {count} training image(s); at least {limits.min_images_per_label} per label "
            f"are needed{where} ({len(few)} class(es) too small)"
        )
    if limits.max_images is not None and len(dataset.images) > limits.max_images:
        raise DatasetError(f"dataset has {len(dataset.images)} images; at most {limits.max_images} allowed{where}")


def _check_one(dataset: Dataset, image: ImageRecord, limits: Limits) -> tuple[ImageRecord, str | None]:
    from PIL import Image

    path = dataset.absolute(image)
    try:
        size = path.stat().st_size
        if limits.max_image_bytes is not None and size > limits.max_image_bytes:
            return image, f"{path}: {size} bytes is over the limit of {limits.max_image_bytes} bytes"
        with Image.open(path) as opened:
            opened.load()
            width, height = opened.size
    except (OSError, SyntaxError, ValueError) as exc:
        return image, f"{path}: not a readable image ({exc})"
    if limits.min_image_side is not None and min(width, height) < limits.min_image_side:
        return image, f"{path}: {width}x{height} is smaller than the minimum side of {limits.min_image_side} px"
    if limits.max_image_side is not None and max(width, height) > limits.max_image_side:
        return image, f"{path}: {width}x{height} is larger than the maximum side of {limits.max_image_side} px"
    return replace(image, width=width, height=height), None


def verify_images(
    dataset: Dataset, limits: Limits | None = None, skip_invalid: bool = False, workers: int = 4
) -> Dataset:
    """Decode every image; return the dataset with sizes filled in.

    An unreadable, truncated or out-of-limit image raises :class:`DatasetError` naming the
    file (and how many more are bad), unless ``skip_invalid``: then it is dropped with a
    warning. The dataset's non-image files are errors too unless ``skip_invalid``.
    """
    limits = limits or Limits()
    bad_files = [dataset.root / n.partition(":")[2] for n in dataset.notes if n.startswith("not-an-image:")]
    if bad_files and not skip_invalid:
        raise DatasetError(
            f"{bad_files[0]} is not an image file ({len(bad_files)} such file(s)); remove them or pass --skip-invalid"
        )
    for file in bad_files:
        log.warning("skipping %s: not an image file", file)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda img: _check_one(dataset, img, limits), dataset.images))
    problems = [problem for _, problem in results if problem]
    if problems and not skip_invalid:
        more = f" ({len(problems) - 1} more bad image(s))" if len(problems) > 1 else ""
        raise DatasetError(f"{problems[0]}{more}; fix or remove it, or pass --skip-invalid to leave such files out")
    for problem in problems:
        log.warning("skipping %s", problem)
    kept = [image for image, problem in results if problem is None]
    notes = [n for n in dataset.notes if not n.startswith("not-an-image:")]
    return replace(dataset, images=kept, notes=notes)
