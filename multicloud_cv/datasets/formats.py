"""The registry of dataset formats: one entry per format, one module per format.

Every format module exposes three functions (the format contract)::

    def detect(path: Path) -> bool
        # cheap: looks at names and at most the first few KB of one file; never decodes pixels
    def read(path: Path, **options) -> Dataset
        # raises DatasetError naming the file (and line number for line formats) on bad input
    def write(dataset: Dataset, dest: Path, **options) -> None
        # writes into the empty directory ``dest``; images placed with
        # multicloud_cv.datasets.media.place_images unless the caller maps them to URIs

:func:`write_dataset` gives every writer the same guarantee: it writes into a temporary
sibling directory and renames it into place only when the writer returned, so a failed or
interrupted conversion never leaves a half-written output behind.

Formats are kept as data (:data:`FORMATS`); the modules are imported only when used so
``mcv --help`` and listing stay fast.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from multicloud_cv.datasets.model import Dataset
from multicloud_cv.errors import DatasetError


class FormatModule(Protocol):
    """What a format module provides (see the module docstring)."""

    def detect(self, path: Path) -> bool: ...

    def read(self, path: Path, **options: Any) -> Dataset: ...

    def write(self, dataset: Dataset, dest: Path, **options: Any) -> None: ...


@dataclass(frozen=True)
class DatasetFormat:
    """One format: its name on the command line, what it holds, and the module implementing it."""

    name: str
    summary: str
    tasks: tuple[str, ...]
    module: str

    def load(self) -> FormatModule:
        """Import the module implementing this format."""
        return cast(FormatModule, importlib.import_module(self.module))


_ALL = ("classification", "multilabel", "detection")
_DET = ("detection",)

#: Detection order matters: the most specific formats are tried first, ``folder`` last.
FORMATS: dict[str, DatasetFormat] = {
    fmt.name: fmt
    for fmt in (
        DatasetFormat("recordio", "MXNet indexed RecordIO (.rec + .idx, .lst beside it for names)", _ALL,
                      "multicloud_cv.datasets.recordio"),
        DatasetFormat("lst", "SageMaker/MXNet .lst list files plus an image folder", _ALL,
                      "multicloud_cv.datasets.lst"),
        DatasetFormat("coco", "COCO JSON (instances: categories, images, annotations)", _DET,
                      "multicloud_cv.datasets.coco"),
        DatasetFormat("voc", "Pascal VOC XML (Annotations/, JPEGImages/, ImageSets/Main/)", _DET,
                      "multicloud_cv.datasets.voc"),
        DatasetFormat("sagemaker-manifest", "SageMaker augmented manifest JSON Lines (source-ref + attribute)",
                      _ALL, "multicloud_cv.datasets.augmented_manifest"),
        DatasetFormat("sagemaker-detection-json", "SageMaker object-detection per-image JSON annotations",
                      _DET, "multicloud_cv.datasets.sagemaker_detection"),
        DatasetFormat("groundtruth", "Ground Truth / Rekognition Custom Labels manifest", _ALL,
                      "multicloud_cv.datasets.groundtruth"),
        DatasetFormat("vertex-jsonl", "Vertex AI import JSON Lines (ml_use split labels)", _ALL,
                      "multicloud_cv.datasets.vertex_jsonl"),
        DatasetFormat("customvision", "Azure Custom Vision upload batches (tags, normalised regions)", _ALL,
                      "multicloud_cv.datasets.customvision"),
        DatasetFormat("tfrecord", "TFRecord for the TF Object Detection API, with label_map.pbtxt", _DET,
                      "multicloud_cv.datasets.tfrecord"),
        DatasetFormat("csv", "labels.csv (image, labels split by ';' or spaces, split) plus images", ("multilabel",),
                      "multicloud_cv.datasets.csvlabels"),
        DatasetFormat("folder", "one folder per class, optional train/ valid/ test/ split folders", ("classification",),
                      "multicloud_cv.datasets.folder"),
    )
}  # fmt: skip


def format_names() -> list[str]:
    """Every format name, in detection order."""
    return list(FORMATS)


def get_format(name: str) -> DatasetFormat:
    """The format called ``name``; :class:`DatasetError` listing the known ones otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset format '{name}'; known: {', '.join(FORMATS)}") from None


def detect_format(path: Path) -> str:
    """Name of the first format whose ``detect`` accepts ``path``; :class:`DatasetError` when none does."""
    if not path.exists():
        raise DatasetError(f"dataset path {path} does not exist")
    for fmt in FORMATS.values():
        try:
            module = fmt.load()
        except ImportError:  # a format whose optional library is missing cannot be what this is
            continue
        detect = getattr(module, "detect", None)
        if detect is not None and detect(path):
            return fmt.name
    raise DatasetError(f"cannot tell the format of {path}; pass --format (one of: {', '.join(FORMATS)})")


def read_dataset(path: str | Path, fmt: str = "auto", stored_split: bool = True, **options: Any) -> Dataset:
    """Read ``path`` as format ``fmt`` (``auto``: detected). Options go to the format's reader.

    With ``stored_split`` the split kept beside the dataset by ``mcv dataset split`` is
    applied (:mod:`multicloud_cv.datasets.splitfile`).
    """
    from dataclasses import replace

    from multicloud_cv.datasets.splitfile import apply_split

    root = Path(path).expanduser().resolve()
    if fmt != "auto":
        get_format(fmt)
    if not root.exists():
        raise DatasetError(f"dataset path {root} does not exist")
    name = detect_format(root) if fmt == "auto" else fmt
    dataset = FORMATS[name].load().read(root, **options)
    dataset = replace(dataset, source_format=name)
    if stored_split:
        dataset, used = apply_split(dataset, root)
        if used is not None:
            dataset = replace(dataset, notes=[*dataset.notes, f"split-file:{used}"])
    return dataset


def writable_destination(dest: str | Path, overwrite: bool) -> Path:
    """``dest`` resolved, its parent created; :class:`DatasetError` when it exists and ``overwrite`` is off."""
    target = Path(dest).expanduser().resolve()
    if target.exists() and not overwrite:
        raise DatasetError(f"{target} already exists; choose a new output path or pass --overwrite")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def write_dataset(dataset: Dataset, dest: str | Path, fmt: str, overwrite: bool = False, **options: Any) -> Path:
    """Write ``dataset`` as ``fmt`` into the directory ``dest``, atomically; return ``dest``.

    ``dest`` must not exist unless ``overwrite``. The writer works in a temporary sibling
    directory that is renamed into place on success and removed on any failure.
    """
    spec = get_format(fmt)
    if dataset.task not in spec.tasks:
        raise DatasetError(
            f"format '{fmt}' does not hold {dataset.task} datasets; formats that do: "
            + ", ".join(name for name, f in FORMATS.items() if dataset.task in f.tasks)
        )
    target = writable_destination(dest, overwrite)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        spec.load().write(dataset, staging, **options)
        if target.exists():
            _remove(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
