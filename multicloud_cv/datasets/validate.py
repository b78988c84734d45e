"""Image verification before training: decode every image, fill in sizes, drop or refuse bad files.

:func:`verify_images` decodes every image to find unreadable or truncated files, in
parallel threads, and fills in each image's size. ``skip_invalid=True`` drops unreadable
images with a warning instead of failing. The structural and job checks are in
:mod:`multicloud_cv.datasets.preflight` (:func:`preflight` is re-exported here).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from multicloud_cv.capabilities import Limits
from multicloud_cv.datasets.model import Dataset, ImageRecord
from multicloud_cv.datasets.preflight import preflight
from multicloud_cv.errors import DatasetError

log = logging.getLogger(__name__)


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


__all__ = ["preflight", "verify_images"]
