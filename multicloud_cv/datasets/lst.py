"""SageMaker / MXNet ``.lst`` files plus an image folder (the im2rec list format).

One line per image, tab-separated: an integer index (unique), one or more labels written
as numbers, and the image path relative to the image root (the last column)::

    0\t2\tcircle/circle_000.png                 classification: one label column
    1\t1\t0\t1\tmix/img_001.png                 multi-label, multi-hot (one 0/1 column per class)
    2\t0\t2\tmix/img_002.png                    multi-label, class-id list

Label-column rule (cloud-apis.md §1.6 and §1.9):

* exactly one label column on every line: ``classification``; the label must be a
  whole number >= 0 (``3`` and ``3.0`` both read as class 3);
* more than one label column on any line: ``multilabel``. With ``label_format="auto"``
  the labels are read as **multi-hot** (SageMaker's default multi-label format) when every
  line has the same number of label columns and every value is 0 or 1, the column count
  then being the number of classes; otherwise as **class-id** lists (each value a class
  index). Pass ``label_format="multi-hot"`` or ``"class-id"`` to decide it yourself: a
  class-id file in which every line holds exactly the ids 0 and 1 looks multi-hot.

A ``.lst`` carries class indices only. Class names come from the ``classes`` argument (a
list, an ``{index: name}`` mapping or a path to a names file) or else from a
``classes.txt`` beside the ``.lst`` (one name per line, line *i* naming class *i*), or
else are ``"0"`` .. ``"N-1"``. A ``.lst`` describes one channel, so the split is given by
the caller (``split=``), not stored in the file. The original indices are not kept:
:func:`write_lst` numbers images from 0. Detection ``.lst`` files (im2rec's
``[2, 5, cls, xmin, ymin, xmax, ymax, ...]`` label vectors) are not read or written here.

Written by hand: it is a tab-separated text file. Reading checks that each image file
exists (a stat, never a decode).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from multicloud_cv.datasets.model import SPLITS, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError

CLASSES_FILE = "classes.txt"
LABEL_FORMATS = ("auto", "multi-hot", "class-id")

ClassNames = Sequence[str] | Mapping[int, str] | Path | None


def read_class_names(path: Path) -> list[str]:
    """Read a names file: one class name per line, line *i* naming class *i* (trailing blank lines ignored)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read class names file {path}: {exc}") from exc
    while lines and not lines[-1].strip():
        lines.pop()
    names = [line.strip() for line in lines]
    for number, name in enumerate(names, start=1):
        if not name:
            raise DatasetError(f"{path}:{number}: empty class name; write one name per line, line i naming class i")
    if len(set(names)) != len(names):
        raise DatasetError(f"{path}: class names must be unique")
    return names


def _resolve_names(classes: ClassNames, lst_path: Path) -> list[str] | None:
    """The class names given, or those of ``classes.txt`` beside ``lst_path``, or ``None``."""
    if classes is None:
        beside = lst_path.parent / CLASSES_FILE
        return read_class_names(beside) if beside.is_file() else None
    if isinstance(classes, Path):
        return read_class_names(classes)
    if isinstance(classes, Mapping):
        count = max(classes, default=-1) + 1
        if sorted(classes) != list(range(count)):
            raise DatasetError("class names mapping must cover every index 0..N-1 without gaps")
        return [classes[i] for i in range(count)]
    return list(classes)


def _whole(value: float) -> bool:
    return math.isfinite(value) and value >= 0 and value == int(value)


def read_lst(
    lst_path: Path,
    image_root: Path | None = None,
    split: str | None = None,
    classes: ClassNames = None,
    label_format: str = "auto",
) -> Dataset:
    """Read a ``.lst`` file; images are looked up under ``image_root`` (default: the ``.lst``'s folder).

    Every image gets ``split`` (``train``, ``validation``, ``test`` or ``None``). Raises
    :class:`DatasetError` naming ``file:line`` for a malformed line, a duplicate index, a
    non-integer class label, an image that does not exist, or a label outside the classes.
    """
    lst_path = Path(lst_path)
    root = Path(image_root) if image_root is not None else lst_path.parent
    if split is not None and split not in SPLITS:
        raise DatasetError(f"unknown split '{split}'; use {', '.join(SPLITS)} or None")
    if label_format not in LABEL_FORMATS:
        raise DatasetError(f"unknown label format '{label_format}'; use {', '.join(LABEL_FORMATS)}")
    try:
        text = lst_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read {lst_path}: {exc}") from exc
    rows: list[tuple[int, list[float], str]] = []
    seen: dict[int, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{lst_path}:{number}"
        columns = raw.rstrip("\r").split("\t")
        if len(columns) < 3:
            raise DatasetError(
                f"{where}: expected 'index<TAB>label[<TAB>label...]<TAB>path', "
                f"got {len(columns)} tab-separated column(s)"
            )
        try:
            index = int(columns[0])
        except ValueError:
            raise DatasetError(f"{where}: index '{columns[0]}' is not an integer") from None
        if index in seen:
            raise DatasetError(f"{where}: index {index} already used on line {seen[index]}; indices must be unique")
        seen[index] = number
        labels: list[float] = []
        for cell in columns[1:-1]:
            try:
                labels.append(float(cell))
            except ValueError:
                raise DatasetError(f"{where}: label '{cell}' is not a number") from None
        path = columns[-1].strip()
        if not path:
            raise DatasetError(f"{where}: empty image path in the last column")
        if not (root / path).is_file():
            raise DatasetError(f"{where}: image {path} not found under {root}; fix the path or pass image_root=")
        rows.append((number, labels, path))

    widths = {len(labels) for _, labels, _ in rows}
    multilabel = label_format != "auto" or widths - {1} != set()
    if multilabel and label_format == "auto":
        binary = all(value in (0.0, 1.0) for _, labels, _ in rows for value in labels)
        label_format = "multi-hot" if binary and len(widths) == 1 else "class-id"
    if label_format == "multi-hot" and len(widths) > 1:
        raise DatasetError(f"{lst_path}: multi-hot lines must all have the same number of label columns")

    images: list[ImageRecord] = []
    for number, labels, path in rows:
        where = f"{lst_path}:{number}"
        if label_format == "multi-hot":
            if any(value not in (0.0, 1.0) for value in labels):
                raise DatasetError(f"{where}: multi-hot labels must be 0 or 1, got {labels}")
            ids = tuple(i for i, value in enumerate(labels) if value == 1.0)
        else:
            for value in labels:
                if not _whole(value):
                    raise DatasetError(f"{where}: class label {value:g} is not a whole number >= 0")
            ids = tuple(sorted({int(value) for value in labels}))
        images.append(ImageRecord(path=path, labels=ids, split=split))

    names = _resolve_names(classes, lst_path)
    if label_format == "multi-hot":
        count = widths.pop() if widths else 0
    else:
        count = max((label for image in images for label in image.labels), default=-1) + 1
    if names is None:
        names = [str(i) for i in range(count)]
    elif count > len(names) or (label_format == "multi-hot" and count != len(names)):
        raise DatasetError(
            f"{lst_path}: labels need {count} classes but {len(names)} class names were given; fix {CLASSES_FILE}"
        )
    task = "multilabel" if multilabel else "classification"
    return Dataset(root=root, classes=names, images=images, task=task, source_format="lst")


def write_lst(
    dataset: Dataset,
    path: Path,
    split: str | None = None,
    label_format: str = "multi-hot",
    write_classes: bool = True,
) -> int:
    """Write the images of ``split`` (all images when ``None``) as a ``.lst``; return how many lines.

    Indices are 0..n-1 in dataset order; paths are written as stored (relative to
    ``dataset.root``, with ``/``). Classification writes one label column; multi-label
    writes multi-hot columns (default) or class-id lists (``label_format="class-id"``).
    With ``write_classes`` the class names go to ``classes.txt`` beside ``path``. Raises
    :class:`DatasetError` for detection datasets, images without exactly one label in a
    classification dataset, and paths containing a tab or a newline.
    """
    path = Path(path)
    if dataset.task == "detection":
        raise DatasetError("write_lst does not write detection datasets; use write_recordio for detection")
    if label_format not in ("multi-hot", "class-id"):
        raise DatasetError(f"unknown label format '{label_format}'; use multi-hot or class-id")
    images = dataset.images if split is None else dataset.split(split)
    lines: list[str] = []
    for index, image in enumerate(images):
        image_path = Path(image.path).as_posix()
        if any(char in image_path for char in "\t\r\n"):
            raise DatasetError(f"image path {image.path!r} contains a tab or newline; a .lst cannot hold it")
        if dataset.task == "classification":
            if len(image.labels) != 1:
                raise DatasetError(f"{image.path}: a classification image needs exactly one label, has {image.labels}")
            cells = [str(image.labels[0])]
        elif label_format == "multi-hot":
            cells = ["1" if i in image.labels else "0" for i in range(len(dataset.classes))]
        else:
            if not image.labels:
                raise DatasetError(f"{image.path}: no labels; class-id lists cannot be empty, use multi-hot")
            cells = [str(label) for label in sorted(image.labels)]
        lines.append("\t".join([str(index), *cells, image_path]) + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")
    if write_classes:
        (path.parent / CLASSES_FILE).write_text("".join(f"{name}\n" for name in dataset.classes), encoding="utf-8")
    return len(lines)
