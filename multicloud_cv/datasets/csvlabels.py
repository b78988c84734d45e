"""Multi-label datasets as a CSV file of image paths and labels (the Planet / Kaggle layout).

``labels.csv`` beside the images, header ``image,labels`` (optional third column
``split``), labels separated by spaces or ``;``::

    image,labels,split
    img/0001.jpg,cloudy primary,train
    img/0002.jpg,clear;water,test

Written by hand: it is a two-column CSV read with the standard library's csv module.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from multicloud_cv.datasets.folder import IMAGE_SUFFIXES, SPLIT_FOLDERS
from multicloud_cv.datasets.model import Dataset, ImageRecord
from multicloud_cv.errors import DatasetError

MANIFEST = "labels.csv"


def read_csv_labels(path: Path) -> Dataset:
    """Read ``labels.csv`` (or the given CSV file); raises :class:`DatasetError` with the line at fault."""
    csv_path = path / MANIFEST if path.is_dir() else path
    root = csv_path.parent
    try:
        handle = csv_path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read {csv_path}: {exc}") from exc
    rows: list[tuple[str, list[str], str | None]] = []
    with handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"image", "labels"} <= set(reader.fieldnames):
            raise DatasetError(
                f"{csv_path}: header must name the columns 'image' and 'labels' (and optionally 'split')"
            )
        for line, row in enumerate(reader, start=2):
            image = (row.get("image") or "").strip()
            if not image:
                raise DatasetError(f"{csv_path}:{line}: empty image path")
            if Path(image).suffix.lower() not in IMAGE_SUFFIXES:
                raise DatasetError(f"{csv_path}:{line}: {image} is not an image file name")
            labels = [lab for lab in re.split(r"[;\s]+", row.get("labels") or "") if lab]
            split_raw = (row.get("split") or "").strip().lower()
            if split_raw and split_raw not in SPLIT_FOLDERS:
                raise DatasetError(f"{csv_path}:{line}: unknown split '{split_raw}'; use train, validation or test")
            rows.append((image, labels, SPLIT_FOLDERS.get(split_raw) if split_raw else None))
    classes = sorted({label for _, labels, _ in rows for label in labels})
    index = {name: i for i, name in enumerate(classes)}
    images = [
        ImageRecord(path=image, labels=tuple(sorted(index[lab] for lab in set(labels))), split=split)
        for image, labels, split in rows
    ]
    return Dataset(root=root, classes=classes, images=images, task="multilabel", source_format="csv")
