"""Folder-per-class datasets (the ImageNet / Rekognition auto-labelling layout).

Layouts read::

    root/<class>/<image>                      no split: every image unassigned
    root/train/<class>/<image>                split folders: train/, valid/ or validation/, test/
    root/test/<class>/<image>

Class names are the folder names, indexed in sorted order (stable across splits). Files
that are not images by extension are listed as problems for preflight rather than
silently dropped. Pixels are never decoded here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from multicloud_cv.datasets.model import Dataset, ImageRecord
from multicloud_cv.errors import DatasetError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
SPLIT_FOLDERS = {
    "train": "train",
    "valid": "validation",
    "validation": "validation",
    "val": "validation",
    "test": "test",
}
IGNORED_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def is_folder_dataset(root: Path) -> bool:
    """True when ``root`` looks like a folder-per-class dataset."""
    return root.is_dir() and any(child.is_dir() and not child.name.startswith(".") for child in root.iterdir())


def read_folder(root: Path) -> Dataset:
    """Read a folder-per-class dataset.

    Raises :class:`DatasetError` when ``root`` is missing, is not a directory or has no
    class folders. Non-image files are recorded in ``dataset.notes`` as
    ``"not-an-image:<relative path>"`` and left out; empty class folders are kept as
    classes with no images, for preflight to report.
    """
    if not root.exists():
        raise DatasetError(f"dataset path {root} does not exist")
    if not root.is_dir():
        raise DatasetError(f"dataset path {root} is not a directory; give the folder that holds one folder per class")
    children = sorted(c for c in root.iterdir() if c.is_dir() and not c.name.startswith("."))
    split_dirs = {c.name.lower(): c for c in children if c.name.lower() in SPLIT_FOLDERS}
    sources: list[tuple[str | None, Path]]
    if split_dirs and len(split_dirs) == len(children):
        sources = [(SPLIT_FOLDERS[name], folder) for name, folder in sorted(split_dirs.items())]
    else:
        sources = [(None, root)]
    class_names: set[str] = set()
    entries: list[tuple[str | None, str, Path]] = []
    notes: list[str] = []
    for split, base in sources:
        class_dirs = sorted(c for c in base.iterdir() if c.is_dir() and not c.name.startswith("."))
        for stray in sorted(c for c in base.iterdir() if c.is_file() and c.name not in IGNORED_NAMES):
            notes.append(f"outside-class-folder:{stray.relative_to(root)}")
        for class_dir in class_dirs:
            class_names.add(class_dir.name)
            for file in sorted(class_dir.rglob("*")):
                if not file.is_file() or file.name in IGNORED_NAMES or file.name.startswith("."):
                    continue
                if file.suffix.lower() not in IMAGE_SUFFIXES:
                    notes.append(f"not-an-image:{file.relative_to(root)}")
                    continue
                entries.append((split, class_dir.name, file))
    if not class_names:
        raise DatasetError(f"dataset {root} has no class folders; put the images of each class in root/<class>/")
    classes = sorted(class_names)
    index = {name: i for i, name in enumerate(classes)}
    images = [
        ImageRecord(path=str(file.relative_to(root)), labels=(index[name],), split=split)
        for split, name, file in entries
    ]
    return Dataset(
        root=root, classes=classes, images=images, task="classification", source_format="folder", notes=notes
    )


# -- the format contract (multicloud_cv.datasets.formats) ----------------------------------------

FOLDER_FOR_SPLIT = {"train": "train", "validation": "validation", "test": "test"}


def detect(path: Path) -> bool:
    """A directory with at least one sub-folder (class or split folders)."""
    return is_folder_dataset(path)


def read(path: Path, **options: Any) -> Dataset:
    """Read a folder-per-class dataset (no options)."""
    if options:
        raise DatasetError(f"the folder format takes no options; got {', '.join(options)}")
    return read_folder(path)


def write(dataset: Dataset, dest: Path, **options: Any) -> None:
    """Write ``dest/[<split>/]<class>/<file>``: split folders when images have splits.

    Classification only (an image sits in exactly one class folder). A dataset mixing
    split and unsplit images cannot be laid out as folders: split it first.
    """
    from multicloud_cv.datasets.media import link_or_copy

    if options:
        raise DatasetError(f"the folder format takes no options; got {', '.join(options)}")
    if dataset.task != "classification":
        raise DatasetError(f"the folder format holds single-label classification only, not {dataset.task}")
    has_split = {image.split is not None for image in dataset.images}
    if len(has_split) > 1:
        raise DatasetError(
            "some images have a split and some do not; folders cannot hold both: run mcv dataset split first"
        )
    taken: set[Path] = set()
    for image in dataset.images:
        if len(image.labels) != 1:
            raise DatasetError(f"{image.path}: a folder dataset needs exactly one label per image, has {image.labels}")
        base = dest / FOLDER_FOR_SPLIT[image.split] if image.split else dest
        source = dataset.absolute(image)
        target = base / dataset.classes[image.labels[0]] / source.name
        n = 0
        while target in taken:
            n += 1
            target = target.with_name(f"{source.stem}-{n}{source.suffix}")
        taken.add(target)
        if not source.is_file():
            raise DatasetError(f"image {source} does not exist; the dataset names a missing file")
        link_or_copy(source, target)
