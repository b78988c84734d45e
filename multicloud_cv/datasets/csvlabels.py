"""Multi-label datasets as a CSV file of image paths and labels (the Planet / Kaggle layout).

``labels.csv`` beside the images, header ``image,labels`` (optional third column
``split``), labels separated by spaces or ``;``; an optional ``classes.txt`` beside it
fixes the class order (one name per line), else classes are sorted by name::

    image,labels,split
    img/0001.jpg,cloudy primary,train
    img/0002.jpg,clear;water,test

Written by hand: it is a two-column CSV read with the standard library's csv module.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from multicloud_cv.datasets.folder import IMAGE_SUFFIXES, SPLIT_FOLDERS
from multicloud_cv.datasets.model import Dataset, ImageRecord
from multicloud_cv.errors import DatasetError

MANIFEST = "labels.csv"
CLASSES_FILE = "classes.txt"


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
    names_file = root / CLASSES_FILE
    if names_file.is_file():  # the class order written by write(); it must name every label used
        from multicloud_cv.datasets.lst import read_class_names

        named = read_class_names(names_file)
        unknown = sorted(set(classes) - set(named))
        if unknown:
            raise DatasetError(f"{csv_path}: label '{unknown[0]}' is not in {names_file}; add it there")
        classes = named
    index = {name: i for i, name in enumerate(classes)}
    images = [
        ImageRecord(path=image, labels=tuple(sorted(index[lab] for lab in set(labels))), split=split)
        for image, labels, split in rows
    ]
    return Dataset(root=root, classes=classes, images=images, task="multilabel", source_format="csv")


# -- the format contract (multicloud_cv.datasets.formats) ----------------------------------------


def detect(path: Path) -> bool:
    """A ``.csv`` file whose header names ``image`` and ``labels``, or a directory holding ``labels.csv``."""
    csv_path = path / MANIFEST if path.is_dir() else path
    if csv_path.suffix.lower() != ".csv" or not csv_path.is_file():
        return False
    with csv_path.open(encoding="utf-8", errors="replace") as handle:
        header = handle.readline()
    return {"image", "labels"} <= {cell.strip() for cell in header.split(",")}


def read(path: Path, **options: Any) -> Dataset:
    """Read ``labels.csv`` (no options)."""
    if options:
        raise DatasetError(f"the csv format takes no options; got {', '.join(options)}")
    return read_csv_labels(path)


def write(dataset: Dataset, dest: Path, **options: Any) -> None:
    """Write ``dest/labels.csv`` (image, labels joined by ';', split) and the images under ``dest/images/``.

    Class names containing ';' or whitespace cannot be written (they would split). The
    class order goes to ``classes.txt`` beside, which the reader honours.
    """
    from multicloud_cv.datasets.media import place_images

    if options:
        raise DatasetError(f"the csv format takes no options; got {', '.join(options)}")
    bad = [name for name in dataset.classes if re.search(r"[;\s]", name)]
    if bad:
        raise DatasetError(f"class name '{bad[0]}' contains ';' or whitespace; labels.csv cannot hold it")
    placed = place_images(dataset, dest, keep_tree=True)
    (dest / CLASSES_FILE).write_text("".join(f"{name}\n" for name in dataset.classes), encoding="utf-8")
    with (dest / MANIFEST).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "labels", "split"])
        for image in dataset.images:
            labels = ";".join(dataset.classes[label] for label in sorted(set(image.labels)))
            writer.writerow([placed[id(image)], labels, image.split or ""])
