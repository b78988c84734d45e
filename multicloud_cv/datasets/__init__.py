"""Datasets: the canonical model, one module per format, preflight validation.

:func:`load_dataset` picks the reader from what it finds at the path.
"""

from __future__ import annotations

from pathlib import Path

from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError

FORMATS = ("auto", "folder", "csv")


def load_dataset(path: str | Path, fmt: str = "auto") -> Dataset:
    """Read a dataset from ``path``.

    ``fmt`` is ``auto`` (a ``labels.csv`` makes it multi-label CSV, else folder-per-class),
    ``folder`` or ``csv``. Raises :class:`DatasetError` for a missing path or an unknown format.
    """
    from multicloud_cv.datasets.csvlabels import MANIFEST, read_csv_labels
    from multicloud_cv.datasets.folder import read_folder

    root = Path(path).expanduser().resolve()
    if fmt not in FORMATS:
        raise DatasetError(f"unknown dataset format '{fmt}'; known: {', '.join(FORMATS)}")
    if not root.exists():
        raise DatasetError(f"dataset path {root} does not exist")
    if fmt == "csv" or (fmt == "auto" and (root.suffix == ".csv" or (root / MANIFEST).is_file())):
        return read_csv_labels(root)
    return read_folder(root)


__all__ = ["BoxAnnotation", "Dataset", "DatasetError", "ImageRecord", "load_dataset"]
