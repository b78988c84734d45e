"""Datasets: the canonical model, one module per format, preflight validation.

:func:`load_dataset` picks the reader from what it finds at the path.
"""

from __future__ import annotations

from pathlib import Path

from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError

FORMATS = ("auto", "folder", "csv", "lst", "recordio")


def load_dataset(path: str | Path, fmt: str = "auto") -> Dataset:
    """Read a dataset from ``path``.

    ``fmt`` is ``auto`` (a ``.lst`` file is SageMaker's list format, a ``.rec`` file MXNet
    RecordIO, a ``labels.csv`` multi-label CSV, else folder-per-class), ``folder``, ``csv``,
    ``lst`` or ``recordio``. RecordIO images are extracted once into a cache folder under
    ``$MCV_HOME/datasets/recordio`` so the dataset stays path-based. Raises
    :class:`DatasetError` for a missing path or an unknown format.
    """
    from multicloud_cv.datasets.csvlabels import MANIFEST, read_csv_labels
    from multicloud_cv.datasets.folder import read_folder

    root = Path(path).expanduser().resolve()
    if fmt not in FORMATS:
        raise DatasetError(f"unknown dataset format '{fmt}'; known: {', '.join(FORMATS)}")
    if not root.exists():
        raise DatasetError(f"dataset path {root} does not exist")
    if fmt == "lst" or (fmt == "auto" and root.suffix == ".lst"):
        from multicloud_cv.datasets.lst import read_lst

        return read_lst(root)
    if fmt == "recordio" or (fmt == "auto" and root.suffix == ".rec"):
        return _load_recordio(root)
    if fmt == "csv" or (fmt == "auto" and (root.suffix == ".csv" or (root / MANIFEST).is_file())):
        return read_csv_labels(root)
    return read_folder(root)


def _load_recordio(rec: Path) -> Dataset:
    import hashlib

    from multicloud_cv.datasets.recordio import read_recordio
    from multicloud_cv.runs import mcv_home

    stat = rec.stat()
    key = hashlib.sha256(f"{rec}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    idx = rec.with_suffix(".idx")
    return read_recordio(
        rec, mcv_home() / "datasets" / "recordio" / f"{rec.stem}-{key}", idx_path=idx if idx.is_file() else None
    )


__all__ = ["BoxAnnotation", "Dataset", "DatasetError", "ImageRecord", "load_dataset"]
