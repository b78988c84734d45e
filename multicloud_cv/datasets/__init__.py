"""Datasets: the canonical model, one module per format, preflight validation.

:func:`load_dataset` reads any supported format (:mod:`multicloud_cv.datasets.formats`
lists them), detecting it from what it finds at the path, and applies the stored split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError


def load_dataset(path: str | Path, fmt: str = "auto", **options: Any) -> Dataset:
    """Read a dataset from ``path`` in format ``fmt`` (``auto``: detected); see :func:`formats.read_dataset`."""
    from multicloud_cv.datasets.formats import read_dataset

    return read_dataset(path, fmt, **options)


__all__ = ["BoxAnnotation", "Dataset", "DatasetError", "ImageRecord", "load_dataset"]
