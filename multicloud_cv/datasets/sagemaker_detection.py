"""SageMaker object-detection image format: one JSON annotation per image (format ``sagemaker-detection-json``).

The layout mirrors the built-in object-detection algorithm's image-format channels
(cloud-apis.md §1.8; SageMaker DG ``object-detection.md``): each split is an image folder
and an annotation folder, which become the ``<split>`` and ``<split>_annotation`` channels
(content type ``image/png``, ``image/jpeg`` or ``application/x-image``)::

    train/<name>.png                    channel "train": the images
    train_annotation/<name>.json        channel "train_annotation": one JSON per image, same base name
    validation/  validation_annotation/ channels "validation" and "validation_annotation"
    test/        test_annotation/       the held-out split (not a training channel; kept for evaluation)
    images/      annotation/            images whose split is None (unassigned)

Each annotation file::

    {"file": "<name>.png",
     "image_size": [{"width": 500, "height": 400, "depth": 3}],
     "annotations": [{"class_id": 0, "left": 111, "top": 134, "width": 61, "height": 128}],
     "categories": [{"class_id": 0, "name": "dog"}, {"class_id": 1, "name": "cat"}]}

Contracts:

* Boxes are pixels, origin top-left; the writer writes whole pixels by rounding each edge
  (within 0.5 px), as the SageMaker samples do. ``image_size`` comes from the record or the
  image header (never a decode); ``depth`` is 3, the only depth the algorithm trains on.
* ``categories`` lists every class in index order in every file (so class order and
  classes without boxes survive); SageMaker numbers classes 0..N-1 without gaps and treats
  ``categories`` as optional. On read, files without ``categories`` are fine; names come
  from the files that have them (they must agree), else are ``"0"`` .. ``"N-1"``.
* ``file`` is the image's path relative to its channel folder. The reader finds an
  annotation's image by the annotation's base name (any image suffix), then by ``file``,
  then by the file name in ``file``; an annotation without an image, or an image without an
  annotation, is an error (SageMaker needs one JSON per image). An image without boxes
  has ``"annotations": []``.
* The writer copies (hard-links when it can) each image into its channel folder, with
  unique base names per channel (``a.png`` and ``a.jpg`` would share ``a.json``:
  the second becomes ``a-1.jpg``). Remote images (``s3://``) cannot be placed: download
  them first. Image-level labels of a detection dataset are not written.

Written by hand: small per-image JSON files that no maintained library handles (parsed with
:mod:`json`, written with orjson, which is 5x faster on 20,000 files and writes UTF-8 without escapes).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from multicloud_cv.datasets.augmented_manifest import as_class_id, decode_boxes, encode_boxes, size_entry, split_of
from multicloud_cv.datasets.folder import IMAGE_SUFFIXES
from multicloud_cv.datasets.media import is_uri, link_or_copy
from multicloud_cv.datasets.model import Dataset, ImageRecord
from multicloud_cv.errors import DatasetError

log = logging.getLogger(__name__)

FORMAT = "sagemaker-detection-json"
#: ``split -> (image folder, annotation folder)``; ``None`` is the unassigned images.
CHANNELS: dict[str | None, tuple[str, str]] = {
    "train": ("train", "train_annotation"),
    "validation": ("validation", "validation_annotation"),
    "test": ("test", "test_annotation"),
    None: ("images", "annotation"),
}
_DETECT_BYTES = 4096


def detect(path: Path) -> bool:
    """True for a folder with a ``<split>_annotation/`` folder (or ``annotation/`` beside ``images/``)
    whose first ``.json`` holds ``"annotations"`` in its first 4 KB."""
    path = Path(path)
    if not path.is_dir():
        return False
    for split, (image_dir, annotation_dir) in CHANNELS.items():
        folder = path / annotation_dir
        if not folder.is_dir() or (split is None and not (path / image_dir).is_dir()):
            continue
        first = next((p for p in sorted(folder.glob("*.json")) if p.is_file()), None)
        if first is None:
            continue
        try:
            with first.open("rb") as handle:
                head = handle.read(_DETECT_BYTES)
        except OSError:
            return False
        return b'"annotations"' in head
    return False


def _load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc}); fix or remove the file") from None
    if not isinstance(doc, dict):
        raise DatasetError(f"{path}: a JSON {type(doc).__name__}, not an object with file, image_size, annotations")
    return doc


def _categories(doc: dict[str, Any], where: Path, names: dict[int, str]) -> set[int] | None:
    """Merge a file's ``categories`` into ``names``; return its class ids (``None`` when it has none)."""
    categories = doc.get("categories")
    if categories is None:
        return None
    if not isinstance(categories, list):
        raise DatasetError(f'{where}: "categories" must be a list of {{"class_id", "name"}}')
    ids: set[int] = set()
    for entry in categories:
        class_id = as_class_id(entry.get("class_id")) if isinstance(entry, dict) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        if class_id is None or not isinstance(name, str) or not name:
            raise DatasetError(f'{where}: category {entry!r} needs a whole "class_id" >= 0 and a "name"')
        if names.setdefault(class_id, name) != name:
            raise DatasetError(f"{where}: category {class_id} is '{name}' here but '{names[class_id]}' in other files")
        ids.add(class_id)
    return ids


def _find_image(doc: dict[str, Any], where: Path, folder: Path, by_stem: dict[str, list[Path]]) -> Path:
    file = doc.get("file")
    candidates = list(by_stem.get(where.stem, []))
    if isinstance(file, str) and file.strip() and not is_uri(file):
        relative = PurePosixPath(file.strip().replace("\\", "/"))
        if not relative.is_absolute() and ".." not in relative.parts:
            candidates += [folder / relative, folder / relative.name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DatasetError(
        f"{where}: no image for this annotation in {folder} (looked for {where.stem}.* and file {file!r}); "
        "each annotation needs its image, with the same base name"
    )


def read(path: Path) -> Dataset:
    """Read a folder laid out as the object-detection channels (see the module docstring).

    Raises :class:`DatasetError` naming the file for invalid JSON, a missing image or
    annotation, a box without ``class_id``/``left``/``top``/``width``/``height`` or with a width
    or height <= 0, a ``class_id`` missing from the file's ``categories``, and categories that
    disagree between files or leave gaps.
    """
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; give the folder holding train/ and train_annotation/")
    found = False
    names: dict[int, str] = {}
    images: list[ImageRecord] = []
    for split, (image_dir, annotation_dir) in CHANNELS.items():
        folder, annotation_folder = root / image_dir, root / annotation_dir
        if not annotation_folder.is_dir():
            if split is not None and folder.is_dir():
                raise DatasetError(f"{folder} has no {annotation_dir}/ beside it; each image needs a JSON annotation")
            continue
        found = True
        pictures = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
        by_stem: dict[str, list[Path]] = {}
        for picture in pictures:
            by_stem.setdefault(picture.stem, []).append(picture)
        used: dict[Path, Path] = {}
        for file in sorted(annotation_folder.glob("*.json")):
            doc = _load(file)
            image = _find_image(doc, file, folder, by_stem)
            boxes, width, height = decode_boxes(doc, str(file), "annotations")
            ids = _categories(doc, file, names)
            for box in boxes:
                if ids is not None and box.label not in ids:
                    raise DatasetError(
                        f"{file}: class_id {box.label} is not in its categories ({sorted(ids)}); add it or fix the id"
                    )
            if image in used:
                raise DatasetError(f"{file}: its image {image.name} is already annotated by {used[image].name}")
            used[image] = file
            images.append(
                ImageRecord(
                    path=image.relative_to(root).as_posix(),
                    boxes=tuple(boxes),
                    split=split,
                    width=width,
                    height=height,
                )
            )
        for picture in pictures:
            if picture not in used:
                raise DatasetError(
                    f"{picture}: no annotation {annotation_dir}/{picture.stem}.json; SageMaker needs one JSON per image"
                )
    if not found:
        raise DatasetError(
            f"{root} has no {', '.join(a for _, a in CHANNELS.values())} folder; "
            "expected train/ + train_annotation/ (and validation/ + validation_annotation/)"
        )
    top = max([*names, *(box.label for image in images for box in image.boxes)], default=-1)
    if names:
        missing = [i for i in range(top + 1) if i not in names]
        if missing:
            raise DatasetError(
                f"{root}: categories must number classes 0..N-1 without gaps; class {missing[0]} has no category"
            )
    classes = [names.get(i, str(i)) for i in range(top + 1)]
    return Dataset(root=root, classes=classes, images=images, task="detection", source_format=FORMAT)


def write(dataset: Dataset, dest: Path) -> None:
    """Write a detection dataset as channel folders with one JSON annotation per image (module docstring).

    Raises :class:`DatasetError` for a dataset that is not detection, a remote or missing
    image, a box label outside the classes, or a box under one pixel.
    """
    if dataset.task != "detection":
        raise DatasetError(f"{FORMAT} holds detection datasets only; this one is {dataset.task}")
    dest = Path(dest)
    classes = list(dataset.classes)
    categories = [{"class_id": index, "name": name} for index, name in enumerate(classes)]
    taken: dict[str | None, set[str]] = {}
    root, out = str(dataset.root), str(dest)  # strings: pathlib cost more than the files on 20,000 images
    made: set[str] = set()
    for image in dataset.images:
        split = split_of(image)
        image_dir, annotation_dir = CHANNELS[split]
        if is_uri(image.path):
            raise DatasetError(f"image {image.path} is remote; {FORMAT} needs local files (download it first)")
        src = os.path.join(root, image.path)  # an absolute image path stays as it is
        base, suffix = os.path.splitext(os.path.basename(src))
        stems = taken.setdefault(split, set())
        stem, n = base, 0
        while stem.lower() in stems:
            n += 1
            stem = f"{base}-{n}"
        stems.add(stem.lower())
        name = f"{stem}{suffix}"
        for folder in (image_dir, annotation_dir):
            if folder not in made:
                os.makedirs(os.path.join(out, folder), exist_ok=True)
                made.add(folder)
        link_or_copy(src, os.path.join(out, image_dir, name), make_folder=False)  # a missing image: DatasetError
        doc = {
            "file": name,
            "image_size": size_entry(dataset, image),
            "annotations": encode_boxes(image, classes),
            "categories": categories,
        }
        with open(os.path.join(out, annotation_dir, f"{stem}.json"), "wb") as handle:
            handle.write(orjson.dumps(doc))
    dest.mkdir(parents=True, exist_ok=True)
    log.info("wrote %d images as %s", len(dataset.images), FORMAT)
