"""The stored split: one seeded, stratified train/validation/test assignment kept beside a dataset.

``mcv dataset split`` writes it; every reader applies it (:func:`apply_split`), so every
provider and every comparison trains and scores on the same images. It never changes the
user's files: it is a sidecar, ``mcv-split.json`` in a dataset directory, or
``<file>.mcv-split.json`` beside a dataset file::

    {"version": 1, "seed": 0, "validation": 0.1, "test": 0.1,
     "images": {"train/cat/1.jpg": "train", "train/cat/2.jpg": "test", ...}}

Keys are image paths as the reader reports them (relative to the dataset root).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from multicloud_cv.datasets.model import SPLITS, Dataset
from multicloud_cv.errors import DatasetError

log = logging.getLogger(__name__)

SPLIT_FILE = "mcv-split.json"


def split_file_for(path: Path) -> Path:
    """Where the stored split of the dataset at ``path`` lives."""
    return path / SPLIT_FILE if path.is_dir() else path.with_name(path.name + "." + SPLIT_FILE)


def make_split(dataset: Dataset, validation: float, test: float, seed: int, resplit: bool = False) -> Dataset:
    """Assign splits, stratified by label, reproducible for a seed.

    Images that already have a split keep it unless ``resplit``. Fractions must be in
    [0, 1) and leave something to train on.
    """
    for name, value in (("validation", validation), ("test", test)):
        if not 0 <= value < 1:
            raise DatasetError(f"--{'val' if name == 'validation' else name} {value} is not a fraction in [0, 1)")
    if validation + test >= 1:
        raise DatasetError(f"validation {validation} + test {test} leaves no training images; keep the sum under 1")
    base = replace(dataset, images=[replace(i, split=None) for i in dataset.images]) if resplit else dataset
    return base.with_split(test_fraction=test, validation_fraction=validation, seed=seed)


def write_split(dataset: Dataset, path: Path, seed: int, validation: float, test: float) -> Path:
    """Store the dataset's splits beside ``path`` (atomically); return the file written."""
    target = split_file_for(path)
    document: dict[str, Any] = {
        "version": 1,
        "seed": seed,
        "validation": validation,
        "test": test,
        "images": {image.path: image.split for image in dataset.images if image.split},
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1, sort_keys=True)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def apply_split(dataset: Dataset, path: Path) -> tuple[Dataset, Path | None]:
    """The dataset with the stored split applied, and the split file used (``None`` when there is none)."""
    source = split_file_for(path)
    if not source.is_file():
        return dataset, None
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
        assigned = document["images"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{source}: not a readable split file ({exc}); delete it and run mcv dataset split") from exc
    bad = {split for split in assigned.values() if split not in SPLITS}
    if bad:
        raise DatasetError(f"{source}: unknown split '{sorted(bad)[0]}'; use train, validation or test")
    images = [replace(image, split=assigned.get(image.path, image.split)) for image in dataset.images]
    missing = len(set(assigned) - {image.path for image in dataset.images})
    if missing:
        log.warning("%s names %d image(s) the dataset no longer has; they are ignored", source, missing)
    return replace(dataset, images=images), source
