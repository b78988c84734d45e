"""Vertex AI image import files: JSON Lines, one object per image (format ``vertex-jsonl``).

The line shapes are those of the Vertex import schemas (cloud-apis.md §3.2; Vertex docs
"Prepare image training data"), one per task::

    classification  {"imageGcsUri": "gs://b/cat/1.jpg",
                     "classificationAnnotation": {"displayName": "cat"},
                     "dataItemResourceLabels": {"aiplatform.googleapis.com/ml_use": "training"}}
    multilabel      {"imageGcsUri": "...", "classificationAnnotations": [{"displayName": "cat"}, ...], ...}
    detection       {"imageGcsUri": "...", "boundingBoxAnnotations": [{"displayName": "cat",
                     "xMin": 0.1, "xMax": 0.5, "yMin": 0.2, "yMax": 0.6}], ...}

Box coordinates are relative (0..1, origin top-left) in the order Vertex writes them;
:class:`~multicloud_cv.datasets.model.BoxAnnotation` keeps pixels, so both directions need
the image size: the record's ``width``/``height``, else the image header
(:func:`~multicloud_cv.datasets.media.image_size`, never a decode). ``imageGcsUri`` is the
only required field; ``annotationResourceLabels`` and other fields are ignored on reading.

Splits: ``dataItemResourceLabels["aiplatform.googleapis.com/ml_use"]`` is ``training``,
``validation`` or ``test`` (our ``train``, ``validation``, ``test``); no label means the
image is unassigned (split ``None``) and Vertex splits it itself. All splits live in one
file.

Layout written by :func:`write` into ``dest``::

    dataset.jsonl     every image, one line each, in dataset order (name: option ``filename``)
    classes.txt       class names, line i naming class i
    images/...        the image files, only when no ``image_ref`` is given

Vertex knows labels by display name only, so the class order lives in ``classes.txt``;
without one the reader indexes the names in sorted order. Without ``image_ref`` the images
are placed under ``images/`` and referenced by relative path (fine for inspection and for
staging later; Vertex itself needs ``gs://`` URIs: pass ``image_ref`` mapping each image to
the URI it will have). An image without annotations is written as a bare line
(classification), with ``"classificationAnnotations": []`` (multi-label) or with
``"boundingBoxAnnotations": []`` (detection, a negative image), so the task survives.

Limits enforced by the writer: at most 500 boxes per image. Reading a relative box needs
the image's size: local images are read by header; for a ``gs://`` image pass
``image_size=`` (a callable ``reference -> (width, height)``) or the reader raises.

Written by hand: JSON Lines, parsed with :mod:`json` and written one ``orjson.dumps`` a line (5x faster
than ``json.dumps``); no library covers these schemas.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from multicloud_cv.datasets.lst import read_class_names
from multicloud_cv.datasets.media import (
    NORMALISED_SLACK,
    ImageRef,
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

MANIFEST = "dataset.jsonl"
CLASSES_FILE = "classes.txt"
ML_USE = "aiplatform.googleapis.com/ml_use"
#: Vertex ``ml_use`` value for each of our splits, and back.
ML_USE_FOR_SPLIT = {"train": "training", "validation": "validation", "test": "test"}
SPLIT_FOR_ML_USE = {value: key for key, value in ML_USE_FOR_SPLIT.items()}
MAX_BOXES_PER_IMAGE = 500

_SCHEMA = "gs://google-cloud-aiplatform/schema/dataset/ioformat/"
#: ``import_schema_uri`` for ``ImageDataset.create`` / ``import_data``, per task (cloud-apis.md §3.1).
IMPORT_SCHEMA_URIS = {
    "classification": _SCHEMA + "image_classification_single_label_io_format_1.0.0.yaml",
    "multilabel": _SCHEMA + "image_classification_multi_label_io_format_1.0.0.yaml",
    "detection": _SCHEMA + "image_bounding_box_io_format_1.0.0.yaml",
}

ImageSize = Callable[[str], tuple[int, int]]

_KINDS = {
    "classificationAnnotation": "single",
    "classificationAnnotations": "multi",
    "boundingBoxAnnotations": "box",
}
_COORDS = ("xMin", "xMax", "yMin", "yMax")
_EPS = NORMALISED_SLACK


def import_schema_uri(task: str) -> str:
    """The Vertex import schema URI for a dataset task; :class:`DatasetError` for an unknown task."""
    try:
        return IMPORT_SCHEMA_URIS[task]
    except KeyError:
        raise DatasetError(f"unknown task '{task}'; Vertex imports {', '.join(IMPORT_SCHEMA_URIS)}") from None


@dataclass
class _Line:
    where: str
    ref: str
    kind: str | None
    names: list[str]
    boxes: list[tuple[str, float, float, float, float]]  # name, xMin, yMin, xMax, yMax (relative)
    split: str | None


def _manifests(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DatasetError(f"{path} does not exist")
    if (path / MANIFEST).is_file():
        return [path / MANIFEST]
    found = sorted(path.glob("*.jsonl"))
    if not found:
        raise DatasetError(f"{path}: no {MANIFEST} (or other .jsonl file) in this folder; is it a Vertex import file?")
    return found


def _display_name(value: Any, where: str, field: str) -> str:
    if not isinstance(value, dict):
        raise DatasetError(f"{where}: {field} must be an object with a displayName, got {type(value).__name__}")
    name = value.get("displayName")
    if not isinstance(name, str) or not name:
        raise DatasetError(f"{where}: {field} has no displayName (required, a non-empty string)")
    return name


def _parse_line(raw: str, where: str) -> _Line:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); write one object per line"
        ) from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    uri = obj.get("imageGcsUri")
    if not isinstance(uri, str) or not uri.strip():
        raise DatasetError(f"{where}: missing required field imageGcsUri (the image's gs:// URI)")
    present = [key for key in _KINDS if key in obj]
    if len(present) > 1:
        raise DatasetError(f"{where}: both {present[0]} and {present[1]}; one annotation kind per line")
    kind = _KINDS[present[0]] if present else None
    names: list[str] = []
    boxes: list[tuple[str, float, float, float, float]] = []
    if kind == "single":
        names.append(_display_name(obj["classificationAnnotation"], where, "classificationAnnotation"))
    elif kind in ("multi", "box"):
        key = present[0]
        items = obj[key]
        if not isinstance(items, list):
            raise DatasetError(f"{where}: {key} must be a list, got {type(items).__name__}")
        for number, item in enumerate(items, start=1):
            name = _display_name(item, where, f"{key}[{number}]")
            if kind == "multi":
                names.append(name)
                continue
            values: list[float] = []
            for coord in _COORDS:
                value = item.get(coord)
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise DatasetError(f"{where}: {key}[{number}] has no numeric {coord} (required, relative 0..1)")
                values.append(float(value))
            x_min, x_max, y_min, y_max = values
            if not (-_EPS <= x_min <= x_max <= 1 + _EPS and -_EPS <= y_min <= y_max <= 1 + _EPS):
                raise DatasetError(
                    f"{where}: {key}[{number}] xMin={x_min} xMax={x_max} yMin={y_min} yMax={y_max} is not a relative "
                    "box; need 0 <= xMin <= xMax <= 1 and 0 <= yMin <= yMax <= 1"
                )
            boxes.append((name, x_min, y_min, x_max, y_max))
    labels = obj.get("dataItemResourceLabels") or {}
    if not isinstance(labels, dict):
        raise DatasetError(f"{where}: dataItemResourceLabels must be an object")
    split: str | None = None
    if ML_USE in labels:
        ml_use = labels[ML_USE]
        if ml_use not in SPLIT_FOR_ML_USE:
            raise DatasetError(f"{where}: {ML_USE} is {ml_use!r}; use training, validation or test (or leave it out)")
        split = SPLIT_FOR_ML_USE[ml_use]
    return _Line(where, resolve_ref(uri.strip()), kind, names, boxes, split)


def _task(lines: list[_Line]) -> str:
    kinds = {line.kind for line in lines} - {None}
    if "box" in kinds and kinds != {"box"}:
        first = next(line for line in lines if line.kind not in ("box", None))
        raise DatasetError(
            f"{first.where}: classification annotation in a file of bounding boxes; one task per import file"
        )
    if "box" in kinds:
        return "detection"
    return "multilabel" if "multi" in kinds else "classification"


def read_vertex_jsonl(
    path: Path, image_size_of: ImageSize | None = None, classes: Sequence[str] | Path | None = None
) -> Dataset:
    """Read a Vertex import file (or a folder holding ``dataset.jsonl``, else its ``*.jsonl`` files).

    The dataset is rooted at the file's folder; ``gs://`` references stay URIs, relative
    ones are resolved there and must exist. Class order: ``classes`` (names or a names
    file), else ``classes.txt`` beside the file, else sorted display names. Relative boxes
    become pixels using the image size (header of a local image, ``image_size_of(ref)`` for
    a URI). Raises :class:`DatasetError` naming ``file:line`` for bad JSON, a missing
    ``imageGcsUri`` or ``displayName``, an unknown ``ml_use``, a label not in the classes,
    a missing local image, a duplicate image or an image whose size cannot be known.
    """
    path = Path(path)
    files = _manifests(path)
    root = files[0].parent
    lines: list[_Line] = []
    seen: dict[str, str] = {}
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"cannot read {file}: {exc}") from exc
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            line = _parse_line(raw, f"{file}:{number}")
            if line.ref in seen:
                raise DatasetError(
                    f"{line.where}: image {line.ref} already listed at {seen[line.ref]}; one line per image"
                )
            seen[line.ref] = line.where
            if not is_uri(line.ref) and not (root / line.ref).is_file():
                raise DatasetError(f"{line.where}: image {line.ref} not found under {root}; fix the reference")
            lines.append(line)
    task = _task(lines)

    source = str(classes) if isinstance(classes, Path) else "the classes given" if classes is not None else CLASSES_FILE
    if isinstance(classes, Path):
        names = read_class_names(classes)
    elif classes is not None:
        names = list(classes)
    elif (root / CLASSES_FILE).is_file():
        names = read_class_names(root / CLASSES_FILE)
    else:
        names = sorted(
            {name for line in lines for name in line.names} | {box[0] for line in lines for box in line.boxes}
        )
    index = {name: i for i, name in enumerate(names)}
    probe = Dataset(root=root, classes=names, images=[])

    def label_of(name: str, where: str) -> int:
        if name not in index:
            raise DatasetError(
                f"{where}: label '{name}' is not one of the {len(names)} classes in {source}; add it there"
            )
        return index[name]

    images: list[ImageRecord] = []
    notes: list[str] = []
    for line in lines:
        labels = tuple(sorted({label_of(name, line.where) for name in line.names}))
        if task == "classification" and len(labels) > 1:
            raise DatasetError(f"{line.where}: {len(labels)} labels in a single-label file")
        width = height = None
        boxes: list[BoxAnnotation] = []
        if line.boxes:
            if is_uri(line.ref):
                if image_size_of is None:
                    raise DatasetError(
                        f"{line.where}: boxes are relative but the size of {line.ref} is unknown and cannot be read "
                        "here; pass image_size= (a callable returning (width, height) for a reference)"
                    )
                width, height = image_size_of(line.ref)
            else:
                width, height = image_size(probe, ImageRecord(path=line.ref))
            for name, x_min, y_min, x_max, y_max in line.boxes:
                boxes.append(
                    BoxAnnotation(
                        label_of(name, line.where), x_min * width, y_min * height, x_max * width, y_max * height
                    )
                )
            if len(boxes) > MAX_BOXES_PER_IMAGE:
                notes.append(f"too-many-boxes:{line.ref}")
        images.append(
            ImageRecord(path=line.ref, labels=labels, boxes=tuple(boxes), split=line.split, width=width, height=height)
        )
    return Dataset(root=root, classes=names, images=images, task=task, source_format="vertex-jsonl", notes=notes)


def write_vertex_jsonl(
    dataset: Dataset, dest: Path, image_ref: ImageRef | None = None, filename: str = MANIFEST
) -> Path:
    """Write ``dest/<filename>`` and ``dest/classes.txt`` (and ``dest/images/`` without ``image_ref``).

    Returns the JSON Lines file. Raises :class:`DatasetError` for a classification image
    with several labels, a label outside the classes, more than 500 boxes on an image, a
    box outside its image, or a box on an image whose size is unknown and unreadable.
    """
    dest = Path(dest)
    if dataset.task not in IMPORT_SCHEMA_URIS:
        raise DatasetError(f"unknown dataset task '{dataset.task}'")
    for name in dataset.classes:
        if not name or "\n" in name or "\r" in name:
            raise DatasetError(f"class name {name!r} cannot be written to {CLASSES_FILE}; rename the class")
    if not filename or Path(filename).name != filename:
        raise DatasetError(f"filename {filename!r} must be a plain file name such as {MANIFEST}")
    dest.mkdir(parents=True, exist_ok=True)
    refs = {id(image): image_ref(image) for image in dataset.images} if image_ref else place_images(dataset, dest)
    lines: list[str] = []
    written: dict[str, str] = {}
    for image in dataset.images:
        ref = refs[id(image)]
        if ref in written:
            raise DatasetError(f"{image.path} and {written[ref]} both map to {ref}; Vertex keeps one line per image")
        written[ref] = image.path
        if image_ref is not None and not ref.startswith("gs://"):
            log.warning("%s: Vertex imports gs:// URIs only; %s will not import", image.path, ref)
        for label in (*image.labels, *(box.label for box in image.boxes)):
            if not 0 <= label < len(dataset.classes):
                raise DatasetError(f"{image.path}: label {label} is outside the {len(dataset.classes)} classes")
        obj: dict[str, Any] = {"imageGcsUri": ref}
        if dataset.task == "classification":
            if len(image.labels) > 1:
                raise DatasetError(
                    f"{image.path}: {len(image.labels)} labels in a single-label dataset; use multilabel"
                )
            if image.labels:
                obj["classificationAnnotation"] = {"displayName": dataset.classes[image.labels[0]]}
        elif dataset.task == "multilabel":
            obj["classificationAnnotations"] = [{"displayName": dataset.classes[i]} for i in sorted(set(image.labels))]
        else:
            if len(image.boxes) > MAX_BOXES_PER_IMAGE:
                raise DatasetError(
                    f"{image.path}: {len(image.boxes)} boxes; Vertex takes at most {MAX_BOXES_PER_IMAGE} per image"
                )
            annotations = []
            if image.boxes:
                width, height = size_for_normalising(dataset, image)
            for box in image.boxes:
                x0, y0, x1, y1 = normalised_box(image, box, width, height)
                annotations.append(
                    {
                        "displayName": dataset.classes[box.label],
                        "xMin": round(x0, 6),
                        "xMax": round(x1, 6),
                        "yMin": round(y0, 6),
                        "yMax": round(y1, 6),
                    }
                )
            obj["boundingBoxAnnotations"] = annotations
        if image.split is not None:
            if image.split not in ML_USE_FOR_SPLIT:
                raise DatasetError(f"{image.path}: unknown split '{image.split}'; use {', '.join(SPLITS)} or None")
            obj["dataItemResourceLabels"] = {ML_USE: ML_USE_FOR_SPLIT[image.split]}
        lines.append(orjson.dumps(obj).decode() + "\n")
    target = dest / filename
    target.write_text("".join(lines), encoding="utf-8")
    (dest / CLASSES_FILE).write_text("".join(f"{name}\n" for name in dataset.classes), encoding="utf-8")
    return target


# -- the format contract (multicloud_cv.datasets.formats) ----------------------------------------

_READ_OPTIONS = ("image_size", "classes")
_WRITE_OPTIONS = ("image_ref", "filename")


def _first_object(file: Path) -> dict[str, Any] | None:
    try:
        with file.open("rb") as handle:
            head = handle.read(65536)
    except OSError:
        return None
    for raw in head.split(b"\n"):
        if raw.strip():
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return None
            return obj if isinstance(obj, dict) else None
    return None


def detect(path: Path) -> bool:
    """A ``.jsonl`` file (or a folder with ``dataset.jsonl`` / ``*.jsonl``) whose first object has ``imageGcsUri``."""
    if path.is_dir():
        candidates = [path / MANIFEST] if (path / MANIFEST).is_file() else sorted(path.glob("*.jsonl"))[:1]
    elif path.suffix.lower() in (".jsonl", ".json") and path.is_file():
        candidates = [path]
    else:
        return False
    return any("imageGcsUri" in (_first_object(file) or {}) for file in candidates)


def read(path: Path, **options: Any) -> Dataset:
    """Read a Vertex import file; options: ``image_size`` (callable ref -> (w, h)), ``classes``."""
    unknown = sorted(set(options) - set(_READ_OPTIONS))
    if unknown:
        raise DatasetError(f"the vertex-jsonl reader takes {', '.join(_READ_OPTIONS)}; got {', '.join(unknown)}")
    classes = options.get("classes")
    if isinstance(classes, str):  # a names file given on the command line, not a sequence of letters
        classes = Path(classes)
    return read_vertex_jsonl(path, image_size_of=options.get("image_size"), classes=classes)


def write(dataset: Dataset, dest: Path, **options: Any) -> None:
    """Write a Vertex import file into ``dest``; options: ``image_ref`` (gs:// URIs), ``filename``."""
    unknown = sorted(set(options) - set(_WRITE_OPTIONS))
    if unknown:
        raise DatasetError(f"the vertex-jsonl writer takes {', '.join(_WRITE_OPTIONS)}; got {', '.join(unknown)}")
    write_vertex_jsonl(dataset, dest, image_ref=options.get("image_ref"), filename=options.get("filename", MANIFEST))


__all__ = [
    "IMPORT_SCHEMA_URIS",
    "MAX_BOXES_PER_IMAGE",
    "detect",
    "import_schema_uri",
    "read",
    "read_vertex_jsonl",
    "write",
    "write_vertex_jsonl",
]
