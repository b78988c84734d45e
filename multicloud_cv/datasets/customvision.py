"""Azure Custom Vision upload batches as files on disk (format ``customvision``).

Custom Vision takes training images in batches (``ImageFileCreateBatch``) of
``ImageFileCreateEntry(name, contents, tag_ids, regions)``, each region
``Region(tag_id, left, top, width, height)`` normalised to 0..1 (cloud-apis.md §4.2, the
SDK 3.1.1 models). This format keeps those batches as JSON on disk, so they can be
inspected, validated and uploaded again later; tags are kept by name (ids exist only
once a project has them) and ``contents`` by file path (the bytes are read at upload).

Layout written by :func:`write` into ``dest``::

    tags.json                  {"domain_type": "Classification" | "ObjectDetection",
                                "classification_type": "Multiclass" | "Multilabel" | null,
                                "tags": ["cat", "dog", ...]}          tag names in class order
    batches/batch-0001.json    {"images": [entry, ...]}              at most 64 entries a file
    batches/batch-0002.json    ...
    images/...                 the image files (placed, never re-encoded)

    entry = {"name": "1.jpg", "path": "images/1.jpg", "tag_names": ["cat"],
             "regions": [{"tag_name": "cat", "left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4}],
             "split": "train"}

``domain_type`` is the project's domain type (the SDK's ``DomainType``) and
``classification_type`` its ``Classifier`` (``null`` for object detection): together they
give the task (Multiclass = classification, Multilabel = multi-label, ObjectDetection =
detection). Classification entries carry ``tag_names`` and no regions; detection entries
carry ``regions`` (tags come from the regions) and an empty ``tag_names``. ``path`` is
relative to the directory (a URI stays a URI: upload those with ``create_images_from_urls``).

``split`` is OUR extension: Custom Vision has no split field and does its own, so the
entry keeps ours (``train``, ``validation``, ``test`` or ``null``) for nothing to be lost;
it is never sent to the service.

Limits enforced on writing (cloud-apis.md §4.2 and §4.4, pains.md A1): at most 64 images a
batch (``batch_size`` option, 1..64; ``max_batch_bytes`` also cuts batches by total file
size, since large batches time out), at most 300 regions per image, at most 6 MB
(6 x 1024 x 1024 bytes) per image file. The service's 20-tags-per-batch limit applies to
the batch-level ``tagIds``, which these batches do not use.

:func:`iter_batches` yields the same entries straight from a dataset (paths absolute) for
the Custom Vision provider plugin to turn into SDK objects; nothing here imports the SDK.

Written by hand: plain JSON documents, read and written with the standard library.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypedDict

import orjson

from multicloud_cv.datasets.media import (
    NORMALISED_SLACK,
    image_size,
    is_uri,
    normalised_box,
    place_images,
    resolve_ref,
    size_for_normalising,
)
from multicloud_cv.datasets.model import SPLITS, BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError

log = logging.getLogger(__name__)

TAGS_FILE = "tags.json"
BATCH_DIR = "batches"
MAX_BATCH_IMAGES = 64
MAX_REGIONS_PER_IMAGE = 300
MAX_IMAGE_BYTES = 6 * 1024 * 1024

#: ``(domain_type, classification_type)`` for each task, and back.
PROJECT_TYPES: dict[str, tuple[str, str | None]] = {
    "classification": ("Classification", "Multiclass"),
    "multilabel": ("Classification", "Multilabel"),
    "detection": ("ObjectDetection", None),
}
_TASK_FOR_TYPE = {value: key for key, value in PROJECT_TYPES.items()}
_EPS = NORMALISED_SLACK
#: Batch files as json.dumps(indent=2) lays them out, with a final newline; orjson writes them 10x faster.
_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE


class UploadRegion(TypedDict):
    """One region of an entry: a tag name and a box normalised to 0..1 (``Region`` in the SDK)."""

    tag_name: str
    left: float
    top: float
    width: float
    height: float


class UploadEntry(TypedDict):
    """One image to upload (``ImageFileCreateEntry`` in the SDK, by tag name and path); ``split`` is ours."""

    name: str
    path: str
    tag_names: list[str]
    regions: list[UploadRegion]
    split: str | None


def project_settings(task: str) -> dict[str, str | None]:
    """``{"domain_type", "classification_type"}`` of the Custom Vision project that holds a ``task`` dataset."""
    try:
        domain_type, classification_type = PROJECT_TYPES[task]
    except KeyError:
        raise DatasetError(f"unknown dataset task '{task}'; Custom Vision holds {', '.join(PROJECT_TYPES)}") from None
    return {"domain_type": domain_type, "classification_type": classification_type}


def _entry(dataset: Dataset, image: ImageRecord, path: str) -> tuple[UploadEntry, int]:
    """The entry for one image and its file size in bytes (0 for a URI); enforces the per-image limits."""
    for label in (*image.labels, *(box.label for box in image.boxes)):
        if not 0 <= label < len(dataset.classes):
            raise DatasetError(f"{image.path}: label {label} is outside the {len(dataset.classes)} classes")
    if image.split is not None and image.split not in SPLITS:
        raise DatasetError(f"{image.path}: unknown split '{image.split}'; use {', '.join(SPLITS)} or None")
    size = 0
    if not is_uri(image.path):
        source = dataset.absolute(image)
        try:
            size = source.stat().st_size
        except OSError:
            raise DatasetError(f"image {source} does not exist; the dataset names a missing file") from None
        if size > MAX_IMAGE_BYTES:
            raise DatasetError(
                f"{source}: {size} bytes; Custom Vision takes training images up to 6 MB ({MAX_IMAGE_BYTES} bytes): "
                "resize or re-encode it"
            )
    tag_names: list[str] = []
    regions: list[UploadRegion] = []
    if dataset.task == "detection":
        if len(image.boxes) > MAX_REGIONS_PER_IMAGE:
            raise DatasetError(
                f"{image.path}: {len(image.boxes)} boxes; Custom Vision takes at most {MAX_REGIONS_PER_IMAGE} "
                "regions per image"
            )
        if image.boxes:
            width, height = size_for_normalising(dataset, image)
        for box in image.boxes:
            left, top, right, bottom = normalised_box(image, box, width, height)
            regions.append(
                UploadRegion(
                    tag_name=dataset.classes[box.label],
                    left=round(left, 6),
                    top=round(top, 6),
                    width=round(right - left, 6),
                    height=round(bottom - top, 6),
                )
            )
    else:
        if dataset.task == "classification" and len(image.labels) > 1:
            raise DatasetError(
                f"{image.path}: {len(image.labels)} labels in a Multiclass project; use a multilabel dataset"
            )
        tag_names = [dataset.classes[i] for i in sorted(set(image.labels))]
    entry = UploadEntry(name="", path="", tag_names=tag_names, regions=regions, split=image.split)
    return _with_path(entry, path), size


def _with_path(entry: UploadEntry, path: str) -> UploadEntry:
    """The entry pointing at ``path``, named for the file."""
    name = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return UploadEntry(
        name=name, path=path, tag_names=entry["tag_names"], regions=entry["regions"], split=entry["split"]
    )


def _batches(
    entries: Iterator[tuple[UploadEntry, int]], batch_size: int, max_batch_bytes: int | None
) -> Iterator[list[UploadEntry]]:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH_IMAGES:
        raise DatasetError(f"batch_size {batch_size!r} must be a whole number from 1 to {MAX_BATCH_IMAGES}")
    if max_batch_bytes is not None and max_batch_bytes <= 0:
        raise DatasetError(f"max_batch_bytes {max_batch_bytes} must be positive (or None for no byte limit)")
    batch: list[UploadEntry] = []
    total = 0
    for entry, size in entries:
        if batch and (len(batch) >= batch_size or (max_batch_bytes is not None and total + size > max_batch_bytes)):
            yield batch
            batch, total = [], 0
        batch.append(entry)
        total += size
    if batch:
        yield batch


def iter_batches(
    dataset: Dataset, batch_size: int = MAX_BATCH_IMAGES, max_batch_bytes: int | None = None
) -> Iterator[list[UploadEntry]]:
    """Yield the dataset's images as upload batches of at most ``batch_size`` (<= 64) entries.

    Each entry's ``path`` is the image's absolute local path (or its URI), ``name`` its
    file name, ``tag_names``/``regions`` by tag name; the plugin maps names to tag ids and
    reads the bytes. With ``max_batch_bytes`` a batch is also cut before its files' total
    size would pass it (an image larger than that goes alone). Raises
    :class:`DatasetError` for a bad batch size, a missing file, an image over 6 MB, more
    than 300 regions on an image, a label outside the classes or a box outside its image.
    """
    entries = (
        _entry(dataset, image, image.path if is_uri(image.path) else str(dataset.absolute(image)))
        for image in dataset.images
    )
    yield from _batches(entries, batch_size, max_batch_bytes)


def write_customvision(
    dataset: Dataset, dest: Path, batch_size: int = MAX_BATCH_IMAGES, max_batch_bytes: int | None = None
) -> list[Path]:
    """Write ``tags.json``, ``batches/batch-NNNN.json`` and ``images/`` into ``dest``; return the batch files.

    Limits and errors as :func:`iter_batches`; tag names must be unique, non-empty strings.
    """
    dest = Path(dest)
    settings = project_settings(dataset.task)
    if any(not name.strip() for name in dataset.classes) or len(set(dataset.classes)) != len(dataset.classes):
        raise DatasetError("Custom Vision tag names must be unique and non-empty; rename the classes")
    list(_batches(iter(()), batch_size, max_batch_bytes))  # a bad batch size fails before anything is copied
    checked = [_entry(dataset, image, image.path) for image in dataset.images]
    placed = place_images(dataset, dest)
    entries = (
        (_with_path(entry, placed[id(image)]), size)
        for image, (entry, size) in zip(dataset.images, checked, strict=True)
    )
    (dest / BATCH_DIR).mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for number, batch in enumerate(_batches(entries, batch_size, max_batch_bytes), start=1):
        target = dest / BATCH_DIR / f"batch-{number:04d}.json"
        target.write_bytes(orjson.dumps({"images": batch}, option=_JSON_OPTIONS))
        written.append(target)
    tags = {**settings, "tags": list(dataset.classes)}
    (dest / TAGS_FILE).write_bytes(orjson.dumps(tags, option=_JSON_OPTIONS))
    log.debug("wrote %d Custom Vision batch file(s) under %s", len(written), dest / BATCH_DIR)
    return written


def _load_json(file: Path) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {file}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{file}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None


def _read_tags(file: Path) -> tuple[str, list[str]]:
    doc = _load_json(file)
    if not isinstance(doc, dict):
        raise DatasetError(f"{file}: expected an object with domain_type, classification_type and tags")
    key = (doc.get("domain_type"), doc.get("classification_type"))
    if key not in _TASK_FOR_TYPE:
        raise DatasetError(
            f"{file}: domain_type {key[0]!r} with classification_type {key[1]!r} is not a project type; use "
            "Classification with Multiclass or Multilabel, or ObjectDetection with null"
        )
    tags = doc.get("tags")
    if not isinstance(tags, list) or not all(isinstance(tag, str) and tag.strip() for tag in tags):
        raise DatasetError(f"{file}: 'tags' must be a list of tag names (non-empty strings), in class order")
    if len(set(tags)) != len(tags):
        raise DatasetError(f"{file}: tag names must be unique")
    return _TASK_FOR_TYPE[key], list(tags)


def _number(region: Mapping[str, Any], field: str, where: str) -> float:
    value = region.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DatasetError(f"{where}: region has no numeric '{field}' (all of tag_name, left, top, width, height)")
    if not -_EPS <= value <= 1 + _EPS:
        raise DatasetError(f"{where}: region {field}={value} is not normalised to 0..1")
    return float(value)


def read_customvision(path: Path) -> Dataset:
    """Read a directory written by :func:`write_customvision` (or its ``tags.json``).

    The dataset is rooted at the directory; regions become pixel boxes using the image
    header. Raises :class:`DatasetError` naming the file (``file:line`` for bad JSON, the
    entry number otherwise) for a missing field, an unknown tag, a region outside 0..1, a
    missing image, an unknown split or more than 64 entries in a batch.
    """
    root = Path(path)
    if root.is_file():
        root = root.parent
    tags_file = root / TAGS_FILE
    if not tags_file.is_file():
        raise DatasetError(f"{root}: no {TAGS_FILE}; not a Custom Vision upload folder")
    task, tags = _read_tags(tags_file)
    index = {tag: i for i, tag in enumerate(tags)}
    batch_dir = root / BATCH_DIR
    if not batch_dir.is_dir():
        raise DatasetError(f"{root}: no {BATCH_DIR}/ folder beside {TAGS_FILE}")
    probe = Dataset(root=root, classes=tags, images=[])
    images: list[ImageRecord] = []
    seen: dict[str, str] = {}
    for file in sorted(batch_dir.glob("*.json")):
        doc = _load_json(file)
        entries = doc.get("images") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise DatasetError(f'{file}: expected an object {{"images": [entry, ...]}}')
        if len(entries) > MAX_BATCH_IMAGES:
            raise DatasetError(
                f"{file}: {len(entries)} entries; Custom Vision takes at most {MAX_BATCH_IMAGES} per batch, split it"
            )
        for number, entry in enumerate(entries, start=1):
            where = f"{file} entry {number}"
            images.append(_read_entry(entry, where, task, index, probe, seen))
    return Dataset(root=root, classes=tags, images=images, task=task, source_format="customvision")


def _read_entry(
    entry: Any, where: str, task: str, index: dict[str, int], probe: Dataset, seen: dict[str, str]
) -> ImageRecord:
    if not isinstance(entry, dict):
        raise DatasetError(f"{where}: expected an object with name, path, tag_names, regions")
    for field in ("name", "path"):
        if not isinstance(entry.get(field), str) or not entry[field].strip():
            raise DatasetError(f"{where}: missing required field '{field}' (a non-empty string)")
    ref = resolve_ref(entry["path"].strip())
    if ref in seen:
        raise DatasetError(f"{where}: image {ref} already listed in {seen[ref]}")
    seen[ref] = where
    if not is_uri(ref) and not (probe.root / ref).is_file():
        raise DatasetError(f"{where}: image {ref} not found under {probe.root}; fix the path")
    split = entry.get("split")
    if split is not None and split not in SPLITS:
        raise DatasetError(f"{where}: unknown split {split!r}; use {', '.join(SPLITS)} or null")
    tag_names = entry.get("tag_names", [])
    regions = entry.get("regions", [])
    if not isinstance(tag_names, list) or not isinstance(regions, list):
        raise DatasetError(f"{where}: 'tag_names' and 'regions' must be lists")

    def label_of(tag: Any) -> int:
        if tag not in index:
            raise DatasetError(f"{where}: tag {tag!r} is not one of the {len(index)} tags in {TAGS_FILE}; add it there")
        return index[tag]

    labels = tuple(sorted({label_of(tag) for tag in tag_names}))
    if task == "classification" and len(labels) > 1:
        raise DatasetError(f"{where}: {len(labels)} tags in a Multiclass project; one tag per image")
    if task != "detection":
        if regions:
            raise DatasetError(f"{where}: regions in a Classification project; regions belong to ObjectDetection")
        return ImageRecord(path=ref, labels=labels, split=split)
    if len(regions) > MAX_REGIONS_PER_IMAGE:
        raise DatasetError(f"{where}: {len(regions)} regions; Custom Vision takes at most {MAX_REGIONS_PER_IMAGE}")
    boxes: list[BoxAnnotation] = []
    width = height = None
    for region in regions:
        if not isinstance(region, dict):
            raise DatasetError(f"{where}: a region must be an object with tag_name, left, top, width, height")
        if "tag_name" not in region:
            raise DatasetError(f"{where}: region has no 'tag_name' (all of tag_name, left, top, width, height)")
        label = label_of(region["tag_name"])
        left, top = _number(region, "left", where), _number(region, "top", where)
        w, h = _number(region, "width", where), _number(region, "height", where)
        if left + w > 1 + _EPS or top + h > 1 + _EPS:
            raise DatasetError(f"{where}: region {region} reaches past the image (left+width or top+height > 1)")
        if width is None or height is None:
            if is_uri(ref):
                raise DatasetError(f"{where}: the size of {ref} is unknown and cannot be read here; use a local copy")
            width, height = image_size(probe, ImageRecord(path=ref))
        boxes.append(BoxAnnotation(label, left * width, top * height, (left + w) * width, (top + h) * height))
    return ImageRecord(path=ref, labels=labels, boxes=tuple(boxes), split=split, width=width, height=height)


# -- the format contract (multicloud_cv.datasets.formats) ----------------------------------------

_WRITE_OPTIONS = ("batch_size", "max_batch_bytes")


def detect(path: Path) -> bool:
    """A directory holding ``tags.json`` and a ``batches/`` folder (or that ``tags.json`` itself)."""
    root = path.parent if path.is_file() and path.name == TAGS_FILE else path
    return root.is_dir() and (root / TAGS_FILE).is_file() and (root / BATCH_DIR).is_dir()


def read(path: Path, **options: Any) -> Dataset:
    """Read Custom Vision upload batches (no options)."""
    if options:
        raise DatasetError(f"the customvision reader takes no options; got {', '.join(sorted(options))}")
    return read_customvision(path)


def write(dataset: Dataset, dest: Path, **options: Any) -> None:
    """Write Custom Vision upload batches into ``dest``; options: ``batch_size`` (1..64), ``max_batch_bytes``."""
    unknown = sorted(set(options) - set(_WRITE_OPTIONS))
    if unknown:
        raise DatasetError(f"the customvision writer takes {', '.join(_WRITE_OPTIONS)}; got {', '.join(unknown)}")
    batch_size, max_batch_bytes = options.get("batch_size", MAX_BATCH_IMAGES), options.get("max_batch_bytes")
    write_customvision(dataset, dest, batch_size=_whole(batch_size), max_batch_bytes=_whole(max_batch_bytes))


def _whole(value: Any) -> Any:
    """An option given as text on the command line (``-o batch_size=32``) as a number; anything else unchanged."""
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


__all__ = [
    "MAX_BATCH_IMAGES",
    "MAX_IMAGE_BYTES",
    "MAX_REGIONS_PER_IMAGE",
    "UploadEntry",
    "UploadRegion",
    "detect",
    "iter_batches",
    "project_settings",
    "read",
    "read_customvision",
    "write",
    "write_customvision",
]
