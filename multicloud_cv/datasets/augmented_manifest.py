"""SageMaker augmented manifest JSON Lines for the built-in algorithms (format ``sagemaker-manifest``).

One JSON object per line: the image reference under ``source-ref`` and the label under
one attribute (cloud-apis.md §1.6 and §1.8, SageMaker DG ``augmented-manifest.md``)::

    {"source-ref": "images/a.png", "class": "0"}                      classification
    {"source-ref": "images/a.png", "class": "[1, 0, 1]"}              multi-label, multi-hot (default)
    {"source-ref": "images/a.png", "class": "[0, 2]"}                 multi-label, label_format="class-id"
    {"source-ref": "images/a.png",                                    detection
     "bounding-box": {"image_size": [{"width": 64, "height": 48, "depth": 3}],
                      "annotations": [{"class_id": 0, "left": 3, "top": 4, "width": 20, "height": 10}]},
     "bounding-box-metadata": {"class-map": {"0": "square", "1": "circle"}, "type": "groundtruth/object-detection"}}

Layout written by :func:`write` into ``dest``::

    train.manifest  validation.manifest  test.manifest   one file per split that holds images
    dataset.manifest                                     images whose split is None (unassigned)
    classes.txt                                          class names, line i naming class i
    images/                                              the image files (not written with image_ref=)

Contracts:

* ``source-ref`` is what ``image_ref`` returns for the image (its ``s3://`` URI once staged);
  without ``image_ref`` the images are placed under ``images/`` and referenced by a path
  relative to the manifest, which :func:`read` resolves against the manifest's folder.
  ``file://`` references are read as local paths; local images must exist (a stat, never
  a decode); ``s3://`` and other URIs are not checked.
* The label attribute is ``class`` (classification, multi-label) or ``bounding-box``
  (detection) unless ``attribute=`` names another. The training channel lists
  ``AttributeNames = ["source-ref", <attribute>]``, image first (:func:`attribute_names`),
  with ``RecordWrapperType=RecordIO`` in Pipe mode. A line that lacks an attribute stops
  training with "Got empty batch from pipe" (pains.md S5): :func:`check_attribute_order`
  names the first such line.
* Classification and multi-label values carry class indices only, so the class names go
  to ``classes.txt`` beside the manifests (as :mod:`multicloud_cv.datasets.lst` does) and
  are read back from there (or from ``classes=``), else from a ``class-map``/``class-name``
  in a ``<attribute>-metadata`` object, else they are ``"0"`` .. ``"N-1"``. Detection lines
  also carry the full class map in ``bounding-box-metadata`` (informational for SageMaker).
* Multi-label values are strings holding a JSON list (a JSON list is read too, as Ground
  Truth writes it). ``label_format="auto"`` reads lists as multi-hot when every list is
  0/1 and they all have the class count (or, with no class names known, the same length);
  otherwise as class ids. Pass ``label_format`` when that guess is wrong. The channel's
  ContentType says which: ``application/x-recordio; label-format=multi-hot|class-id``.
* Boxes are pixels ``left, top, width, height``; they are written as whole pixels, as
  Ground Truth and the SageMaker samples write them, by rounding each edge, so every edge
  moves by at most 0.5 px. Image sizes come from the records or the image header.
* Detection keeps only boxes: image-level labels of a detection dataset are not written.

Written by hand (read with :mod:`json`, written with orjson): the format is one JSON object per line and no
maintained library reads or writes it (the SageMaker SDK only passes the S3 URI along).

The JSON Lines helpers here (:func:`iter_json_lines`, :func:`manifest_files`,
:func:`source_path`, :func:`decode_boxes`, :func:`encode_boxes` ...) are shared with
:mod:`multicloud_cv.datasets.groundtruth`, whose manifests have the same skeleton.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from multicloud_cv.datasets.lst import CLASSES_FILE, read_class_names
from multicloud_cv.datasets.media import ImageRef, image_size, is_uri, place_images, resolve_ref
from multicloud_cv.datasets.model import SPLITS, BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError

log = logging.getLogger(__name__)

FORMAT = "sagemaker-manifest"
SOURCE_REF = "source-ref"
SUFFIX = ".manifest"
#: The manifest file written for each split; ``None`` is the unassigned images.
SPLIT_FILES: dict[str | None, str] = {
    "train": "train.manifest",
    "validation": "validation.manifest",
    "test": "test.manifest",
    None: "dataset.manifest",
}
DEFAULT_ATTRIBUTES = {"classification": "class", "multilabel": "class", "detection": "bounding-box"}
LABEL_FORMATS = ("auto", "multi-hot", "class-id")
DETECTION_TYPES = ("groundtruth/object-detection", "groundtruth/object_detection")  # the SageMaker DG uses both
MAX_ATTRIBUTE_NAMES = 16  # botocore S3DataSource.AttributeNames [0..16]
_DETECT_BYTES = 64 * 1024
_BOX_FIELDS = ("class_id", "left", "top", "width", "height")


# --------------------------------------------------------------------------- JSON Lines helpers (shared)


def iter_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for every non-blank line of a JSON Lines file.

    Lines are split on ``\\n`` only (a JSON string may hold U+2028). Raises
    :class:`DatasetError` naming ``file:line`` for a line that is not one JSON object.
    """
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    with handle:
        number = 0
        try:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise DatasetError(
                        f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno}); "
                        "each line must be one complete JSON object"
                    ) from None
                if not isinstance(obj, dict):
                    raise DatasetError(
                        f"{path}:{number}: a JSON {type(obj).__name__}, not an object; write one object per line"
                    )
                yield number, obj
        except UnicodeDecodeError as exc:
            raise DatasetError(
                f"{path}:{number + 1}: not UTF-8 text ({exc.reason}); save the manifest as UTF-8"
            ) from None


def first_json_line(path: Path) -> dict[str, Any] | None:
    """The first JSON object of a JSON Lines file, reading at most 64 KB; ``None`` when there is none."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_DETECT_BYTES)
    except OSError:
        return None
    for raw in head.split(b"\n"):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None
        return obj if isinstance(obj, dict) else None
    return None


def manifest_files(path: Path) -> tuple[Path, list[tuple[Path, str | None]]]:
    """The dataset root and the ``(manifest, split)`` pairs to read at ``path`` (a file or a folder).

    A folder gives every ``*.manifest`` in it; a file gives itself. The split is the file's
    stem when it is ``train``, ``validation`` or ``test``, else ``None``.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset path {path} does not exist")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == SUFFIX and p.is_file())
        if not files:
            raise DatasetError(f"{path} holds no {SUFFIX} files; expected {', '.join(SPLIT_FILES.values())}")
        root = path
    else:
        files, root = [path], path.parent
    return root, [(file, file.stem if file.stem in SPLITS else None) for file in files]


def pick_manifest(path: Path) -> Path | None:
    """The manifest ``detect`` looks at: ``path`` itself, or the first split file (else ``*.manifest``) in it."""
    if path.is_file():
        return path
    if not path.is_dir():
        return None
    for name in SPLIT_FILES.values():
        if (path / name).is_file():
            return path / name
    return next((p for p in sorted(path.glob(f"*{SUFFIX}")) if p.is_file()), None)


def is_groundtruth_line(obj: Mapping[str, Any]) -> bool:
    """True when a line carries a Ground Truth label attribute: ``<name>-metadata`` with a
    ``groundtruth/...`` type and the metadata Ground Truth always writes (``human-annotated``
    or ``creation-date``)."""
    for key, value in obj.items():
        if not key.endswith("-metadata") or not isinstance(value, dict) or key[: -len("-metadata")] not in obj:
            continue
        kind = value.get("type")
        groundtruth = isinstance(kind, str) and kind.startswith("groundtruth/")
        if groundtruth and ("human-annotated" in value or "creation-date" in value):
            return True
    return False


def source_path(obj: Mapping[str, Any], root: Path, where: str) -> str:
    """The image path of a line's ``source-ref`` as an :class:`ImageRecord` path.

    Raises :class:`DatasetError` (``where`` is ``file:line``) when ``source-ref`` is missing or
    not a string, or names a local file that does not exist.
    """
    if SOURCE_REF not in obj:
        raise DatasetError(
            f"{where}: no '{SOURCE_REF}'; every line needs the image's location, "
            f'e.g. "{SOURCE_REF}": "s3://bucket/images/a.jpg"'
        )
    ref = obj[SOURCE_REF]
    if not isinstance(ref, str) or not ref.strip():
        raise DatasetError(f"{where}: '{SOURCE_REF}' must be a non-empty string (an s3:// URI or a path), got {ref!r}")
    path = resolve_ref(ref.strip())
    if is_uri(path):
        return path
    local = Path(path) if Path(path).is_absolute() else root / path
    if not local.is_file():
        raise DatasetError(f"{where}: image {ref} not found (looked at {local}); fix '{SOURCE_REF}' or add the file")
    return path


def as_class_id(value: Any) -> int | None:
    """``value`` as a class index (an int, a whole float or a digit string, >= 0); ``None`` otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value >= 0 and value == int(value) else None
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            return as_class_id(float(text))
        except ValueError:
            return None
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def parse_image_size(value: Any, where: str, attribute: str, require_depth: bool = False) -> tuple[int, int]:
    """``(width, height)`` of an ``image_size`` field: a one-element list ``[{"width", "height", "depth"}]``."""
    entry = value[0] if isinstance(value, list) and value else None
    if not isinstance(entry, dict):
        raise DatasetError(
            f'{where}: \'{attribute}\' needs "image_size": [{{"width": W, "height": H, "depth": 3}}], got {value!r}'
        )
    sizes = []
    for field in ("width", "height", "depth") if require_depth else ("width", "height"):
        size = as_class_id(entry.get(field)) if not isinstance(entry.get(field), str) else None
        if not size:
            raise DatasetError(
                f"{where}: image_size of '{attribute}' needs a positive whole '{field}', got {entry.get(field)!r}"
            )
        sizes.append(size)
    return sizes[0], sizes[1]


def decode_boxes(
    value: Any, where: str, attribute: str, check_frame: bool = False, require_depth: bool = False
) -> tuple[list[BoxAnnotation], int, int]:
    """Boxes (``label`` = the raw ``class_id``), width and height of a bounding-box attribute value.

    Raises :class:`DatasetError` for a value that is not ``{"image_size", "annotations"}``, an
    annotation lacking a field, a width or height <= 0, and with ``check_frame`` a box
    outside the image (Rekognition's ERROR_INVALID_BOUNDING_BOX).
    """
    if not isinstance(value, dict):
        raise DatasetError(f"{where}: '{attribute}' must be an object with image_size and annotations, got {value!r}")
    width, height = parse_image_size(value.get("image_size"), where, attribute, require_depth)
    annotations = value.get("annotations")
    if not isinstance(annotations, list):
        raise DatasetError(f"{where}: '{attribute}' has no \"annotations\" list; write [] for an image without boxes")
    boxes: list[BoxAnnotation] = []
    for index, annotation in enumerate(annotations):
        if not isinstance(annotation, dict):
            raise DatasetError(f"{where}: annotation {index} of '{attribute}' is not an object")
        missing = [field for field in _BOX_FIELDS if field not in annotation]
        if missing:
            raise DatasetError(
                f"{where}: annotation {index} of '{attribute}' lacks {', '.join(missing)}; "
                f"each needs {', '.join(_BOX_FIELDS)}"
            )
        class_id = as_class_id(annotation["class_id"])
        if class_id is None:
            raise DatasetError(
                f"{where}: annotation {index} of '{attribute}': class_id {annotation['class_id']!r} "
                "is not a whole number >= 0"
            )
        left, top, w, h = (_number(annotation[field]) for field in _BOX_FIELDS[1:])
        if left is None or top is None or w is None or h is None:
            raise DatasetError(
                f"{where}: annotation {index} of '{attribute}': left, top, width, height must be numbers"
            )
        if w <= 0 or h <= 0:
            raise DatasetError(
                f"{where}: annotation {index} of '{attribute}' has width {w:g} and height {h:g}; "
                "both must be > 0 pixels (left/top is the corner, width/height the size)"
            )
        if check_frame and (left < 0 or top < 0 or left + w > width + 1e-6 or top + h > height + 1e-6):
            raise DatasetError(
                f"{where}: annotation {index} of '{attribute}' (left {left:g}, top {top:g}, width {w:g}, "
                f"height {h:g}) lies outside the {width}x{height} image; fix the box or image_size"
            )
        boxes.append(BoxAnnotation(class_id, left, top, left + w, top + h))
    return boxes, width, height


def encode_boxes(image: ImageRecord, classes: Sequence[str]) -> list[dict[str, int]]:
    """An image's boxes as ``{"class_id", "left", "top", "width", "height"}`` in whole pixels.

    Each edge is rounded, so ``left + width`` is the rounded right edge (within 0.5 px).
    Raises :class:`DatasetError` for a class index outside ``classes`` or a box that is
    less than one pixel wide or high once rounded.
    """
    encoded = []
    for box in image.boxes:
        if not 0 <= box.label < len(classes):
            raise DatasetError(f"{image.path}: box label {box.label} is outside the {len(classes)} classes")
        left, top, right, bottom = (round(v) for v in (box.x_min, box.y_min, box.x_max, box.y_max))
        if right <= left or bottom <= top:
            raise DatasetError(
                f"{image.path}: box ({box.x_min:g}, {box.y_min:g}, {box.x_max:g}, {box.y_max:g}) is under one "
                "pixel wide or high; remove it or fix its coordinates"
            )
        encoded.append({"class_id": box.label, "left": left, "top": top, "width": right - left, "height": bottom - top})
    return encoded


def size_entry(dataset: Dataset, image: ImageRecord) -> list[dict[str, int]]:
    """The ``image_size`` value for an image (from the record, else its header; depth 3 as SageMaker requires)."""
    width, height = image_size(dataset, image)
    return [{"width": width, "height": height, "depth": 3}]


def image_refs(dataset: Dataset, dest: Path, image_ref: ImageRef | None) -> dict[int, str]:
    """``{id(image): source-ref}``: ``image_ref``'s URIs, or images placed under ``dest/images``."""
    if image_ref is None:
        return place_images(dataset, dest)
    refs: dict[int, str] = {}
    for image in dataset.images:
        ref = image_ref(image)
        if not isinstance(ref, str) or not ref:
            raise DatasetError(f"image_ref returned {ref!r} for {image.path}; it must return the image's URI")
        refs[id(image)] = ref
    return refs


def write_manifests(dest: Path, lines: Mapping[str | None, Sequence[str]]) -> dict[str | None, Path]:
    """Write each split's lines to its :data:`SPLIT_FILES` name in ``dest``; return the files written.

    Splits without lines get no file, except that an empty dataset gets an empty ``dataset.manifest``.
    """
    written: dict[str | None, Path] = {}
    dest.mkdir(parents=True, exist_ok=True)
    for split, name in SPLIT_FILES.items():
        split_lines = lines.get(split, ())
        if split_lines or (split is None and not any(lines.values())):
            (dest / name).write_text("".join(line + "\n" for line in split_lines), encoding="utf-8")
            written[split] = dest / name
    return written


def write_classes(dest: Path, classes: Sequence[str]) -> None:
    """Write ``classes.txt``: one class name per line, line *i* naming class *i*."""
    for name in classes:
        if not name or "\n" in name or "\r" in name or name != name.strip():
            raise DatasetError(f"class name {name!r} cannot be written to {CLASSES_FILE}; use a name on one line")
    (dest / CLASSES_FILE).write_text("".join(f"{name}\n" for name in classes), encoding="utf-8")


def split_of(image: ImageRecord) -> str | None:
    """The image's split, checked: ``train``, ``validation``, ``test`` or ``None``."""
    if image.split is not None and image.split not in SPLITS:
        raise DatasetError(f"{image.path}: unknown split '{image.split}'; use {', '.join(SPLITS)} or None")
    return image.split


# --------------------------------------------------------------------------- SageMaker channel helpers


def attribute_names(task: str, attribute: str | None = None) -> list[str]:
    """The channel's ``AttributeNames`` for a manifest written by :func:`write`: ``["source-ref", <label>]``.

    The built-in image-classification and object-detection algorithms read the image first,
    then its annotation, so the order matters.
    """
    if task not in DEFAULT_ATTRIBUTES:
        raise DatasetError(f"unknown task '{task}'; use {', '.join(DEFAULT_ATTRIBUTES)}")
    return [SOURCE_REF, check_label_attribute(attribute or DEFAULT_ATTRIBUTES[task])]


def check_attribute_order(path: Path, attribute_names: Sequence[str]) -> int:
    """Check a manifest against a channel's ``AttributeNames``; return the number of lines checked.

    ``AttributeNames`` must hold 1..16 unique names, the image reference (a ``-ref`` name)
    first, as the built-in algorithms expect it before the label. Every line must hold every
    name. Raises :class:`DatasetError` for a bad list, or naming ``file:line`` and the
    attribute for the first line that lacks one (SageMaker would stop Pipe-mode training
    with "Got empty batch from pipe").
    """
    names = list(attribute_names)
    if not 1 <= len(names) <= MAX_ATTRIBUTE_NAMES:
        raise DatasetError(f"AttributeNames must list 1 to {MAX_ATTRIBUTE_NAMES} names, got {len(names)}")
    if len(set(names)) != len(names):
        raise DatasetError(f"AttributeNames {names} lists a name twice")
    if not names[0].endswith("-ref"):
        raise DatasetError(
            f"AttributeNames {names} must start with the image reference ('{SOURCE_REF}'); "
            "the built-in algorithms read the image first, then its label"
        )
    count = 0
    for number, obj in iter_json_lines(Path(path)):
        count += 1
        for position, name in enumerate(names):
            if name not in obj:
                raise DatasetError(
                    f"{path}:{number}: attribute '{name}' (AttributeNames[{position}] of {names}) is missing; "
                    "every line needs every listed attribute, or Pipe-mode training fails with "
                    "'Got empty batch from pipe'"
                )
            if name.endswith("-ref") and not isinstance(obj[name], str):
                raise DatasetError(f"{path}:{number}: '{name}' must be a string URI, got {obj[name]!r}")
    if not count:
        raise DatasetError(f"{path} holds no lines; SageMaker would train on an empty channel")
    return count


def check_label_attribute(attribute: str) -> str:
    """``attribute`` when it can name a label attribute; :class:`DatasetError` otherwise."""
    if not attribute or attribute == SOURCE_REF or attribute.endswith(("-metadata", "-ref")):
        raise DatasetError(
            f"label attribute '{attribute}' is not allowed: it must be non-empty, not '{SOURCE_REF}', "
            "and not end with '-metadata' or '-ref' (SageMaker fetches '-ref' attributes from S3)"
        )
    return attribute


# --------------------------------------------------------------------------- format contract


def detect(path: Path) -> bool:
    """True for a ``.manifest`` (or a folder of them) whose first line has ``source-ref`` and
    is not a Ground Truth output line (those are the ``groundtruth`` format)."""
    manifest = pick_manifest(Path(path))
    if manifest is None or (Path(path).is_file() and manifest.suffix not in (SUFFIX, ".jsonl", ".json")):
        return False
    first = first_json_line(manifest)
    if first is None:
        return manifest.suffix == SUFFIX and (manifest.parent / CLASSES_FILE).is_file()
    return SOURCE_REF in first and len(first) > 1 and not is_groundtruth_line(first)


def _value_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "detection"
    if isinstance(value, list) or (isinstance(value, str) and value.strip().startswith("[")):
        return "multilabel"
    return "classification"


def _class_list(value: Any, where: str, attribute: str) -> list[float]:
    parsed = value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = None
    numbers = [_number(v) for v in parsed] if isinstance(parsed, list) else [None]
    if any(n is None for n in numbers):
        raise DatasetError(f"{where}: '{attribute}' must be a list of numbers such as \"[1, 0, 1]\", got {value!r}")
    return [n for n in numbers if n is not None]


def _names_from_metadata(meta: Any, value: Any, where: str, known: dict[int, str]) -> None:
    """Collect ``{class id: name}`` from a metadata ``class-map``, or its ``class-name`` for a scalar value."""
    if not isinstance(meta, dict):
        return
    pairs: list[tuple[int | None, Any]] = []
    if isinstance(meta.get("class-map"), dict):
        pairs = [(as_class_id(key), name) for key, name in meta["class-map"].items()]
    elif isinstance(meta.get("class-name"), str) and not isinstance(value, dict | list):
        pairs = [(as_class_id(value), meta["class-name"])]
    for class_id, name in pairs:
        if class_id is None or not isinstance(name, str) or not name:
            raise DatasetError(f"{where}: metadata must map class ids to names, got {meta!r}")
        if known.setdefault(class_id, name) != name:
            raise DatasetError(f"{where}: metadata names class {class_id} '{name}', earlier lines '{known[class_id]}'")


def read(
    path: Path,
    attribute: str | None = None,
    label_format: str = "auto",
    classes: Sequence[str] | Path | None = None,
) -> Dataset:
    """Read an augmented manifest, or every ``*.manifest`` of a folder (split from the file name).

    ``attribute`` is the label attribute (default: ``class`` or ``bounding-box`` when the first
    line has it, else its only other attribute). ``classes`` gives the class names (a list or
    a names file) instead of ``classes.txt``. Raises :class:`DatasetError` naming ``file:line``
    for malformed JSON, a missing ``source-ref`` or label attribute, a local image that does
    not exist, a label that is not a class index or is out of range, and a bad box.
    """
    if label_format not in LABEL_FORMATS:
        raise DatasetError(f"unknown label format '{label_format}'; use {', '.join(LABEL_FORMATS)}")
    root, files = manifest_files(Path(path))
    if classes is None and (root / CLASSES_FILE).is_file():
        classes = root / CLASSES_FILE
    names = read_class_names(classes) if isinstance(classes, Path) else (list(classes) if classes else None)
    names_source = str(classes) if isinstance(classes, Path) else "classes="

    rows: list[tuple[str, str, str | None, Any]] = []  # where, image path, split, value
    metadata_names: dict[int, str] = {}
    kind: str | None = None
    for file, split in files:
        for number, obj in iter_json_lines(file):
            where = f"{file}:{number}"
            if attribute is None:
                attribute = _guess_attribute(obj, where)
            image = source_path(obj, root, where)
            if attribute not in obj:
                raise DatasetError(
                    f"{where}: attribute '{attribute}' is missing; every line needs it "
                    f"(AttributeNames {[SOURCE_REF, attribute]}), or Pipe-mode training fails "
                    "with 'Got empty batch from pipe'"
                )
            value = obj[attribute]
            line_kind = _value_kind(value)
            if kind is None:
                kind = line_kind
            elif line_kind != kind:
                raise DatasetError(
                    f"{where}: '{attribute}' holds a {line_kind} label but earlier lines hold {kind} ones"
                )
            _names_from_metadata(obj.get(f"{attribute}-metadata"), value, where, metadata_names)
            rows.append((where, image, split, value))

    task = kind or "classification"
    label_sets: list[tuple[int, ...]] = []
    hot_width: int | None = None
    if task == "multilabel":
        label_sets, hot_width = _multilabel(rows, str(attribute), label_format, None if names is None else len(names))
    images: list[ImageRecord] = []
    for position, (where, image, split, value) in enumerate(rows):
        if task == "detection":
            found, width, height = decode_boxes(value, where, str(attribute))
            for box in found:
                if metadata_names and box.label not in metadata_names:
                    raise DatasetError(
                        f"{where}: class_id {box.label} is not in the class-map of '{attribute}-metadata'; "
                        "add it to the class-map or fix the class_id"
                    )
            images.append(ImageRecord(image, boxes=tuple(found), split=split, width=width, height=height))
        elif task == "classification":
            class_id = as_class_id(value)
            if class_id is None:
                raise DatasetError(f"{where}: '{attribute}' must be a class index such as \"0\", got {value!r}")
            images.append(ImageRecord(image, labels=(class_id,), split=split))
        else:
            images.append(ImageRecord(image, labels=label_sets[position], split=split))
        if names is not None:
            used = [*images[-1].labels, *(box.label for box in images[-1].boxes)]
            for label in used:
                if label >= len(names):
                    raise DatasetError(
                        f"{where}: class {label} is out of range; {names_source} names {len(names)} "
                        f"classes (0..{len(names) - 1})"
                    )

    if names is None:
        used = [label for image in images for label in (*image.labels, *(box.label for box in image.boxes))]
        used_max = max(used, default=-1)
        count = max(used_max + 1, hot_width or 0, max(metadata_names, default=-1) + 1)
        names = [metadata_names.get(i, str(i)) for i in range(count)]
    else:
        for class_id, name in sorted(metadata_names.items()):
            if class_id >= len(names) or names[class_id] != name:
                known = f"'{names[class_id]}'" if class_id < len(names) else "no such class"
                raise DatasetError(
                    f"{root}: the manifest's class-map names class {class_id} '{name}' but {names_source} has "
                    f"{known}; make them agree"
                )
    return Dataset(root=root, classes=names, images=images, task=task, source_format=FORMAT)


def _guess_attribute(obj: Mapping[str, Any], where: str) -> str:
    for name in ("class", "bounding-box"):
        if name in obj:
            return name
    candidates = [key for key in obj if key != SOURCE_REF and not key.endswith("-metadata")]
    if len(candidates) != 1:
        found = ", ".join(candidates) if candidates else f"nothing besides '{SOURCE_REF}'"
        raise DatasetError(f"{where}: cannot tell the label attribute (found {found}); pass attribute=")
    return candidates[0]


def _multilabel(
    rows: Sequence[tuple[str, str, str | None, Any]], attribute: str, label_format: str, class_count: int | None
) -> tuple[list[tuple[int, ...]], int | None]:
    """Class-index tuples of multi-label values and, for multi-hot, the list width."""
    lists = [(where, _class_list(value, where, attribute)) for where, _, _, value in rows]
    if label_format == "auto":
        binary = all(v in (0.0, 1.0) for _, values in lists for v in values)
        widths = {len(values) for _, values in lists}
        same = widths == {class_count} if class_count is not None else len(widths) == 1 and widths != {0}
        label_format = "multi-hot" if binary and same else "class-id"
    result: list[tuple[int, ...]] = []
    if label_format == "multi-hot":
        width = class_count if class_count is not None else len(lists[0][1])
        for where, values in lists:
            if len(values) != width:
                raise DatasetError(
                    f"{where}: multi-hot '{attribute}' has {len(values)} values but {width} are expected "
                    "(one 0/1 per class)"
                )
            if any(v not in (0.0, 1.0) for v in values):
                raise DatasetError(f"{where}: multi-hot '{attribute}' values must be 0 or 1, got {values}")
            result.append(tuple(i for i, v in enumerate(values) if v == 1.0))
        return result, width
    for where, values in lists:
        ids = [as_class_id(v) for v in values]
        if any(class_id is None for class_id in ids):
            raise DatasetError(f"{where}: '{attribute}' class ids must be whole numbers >= 0, got {values}")
        result.append(tuple(sorted({class_id for class_id in ids if class_id is not None})))
    return result, None


def write(
    dataset: Dataset,
    dest: Path,
    attribute: str | None = None,
    image_ref: ImageRef | None = None,
    label_format: str = "multi-hot",
) -> None:
    """Write ``dataset`` as augmented manifests into ``dest`` (layout in the module docstring).

    ``attribute`` names the label attribute (default ``class`` / ``bounding-box``);
    ``image_ref`` maps each image to its URI (images are then not copied); ``label_format``
    is ``multi-hot`` (SageMaker's default) or ``class-id`` for multi-label datasets. Raises
    :class:`DatasetError` for a classification image without exactly one label, an empty
    class-id list, a label outside the classes, or a box under one pixel.
    """
    task = dataset.task
    if label_format not in ("multi-hot", "class-id"):
        raise DatasetError(f"unknown label format '{label_format}'; use multi-hot or class-id")
    name = attribute_names(task, attribute)[1]
    dest = Path(dest)
    classes = list(dataset.classes)
    lines: dict[str | None, list[str]] = {}
    for image in dataset.images:
        split_of(image)
        for label in image.labels:
            if not 0 <= label < len(classes):
                raise DatasetError(f"{image.path}: label {label} is outside the {len(classes)} classes")
    refs = image_refs(dataset, dest, image_ref)
    class_map = {str(index): class_name for index, class_name in enumerate(classes)}
    for image in dataset.images:
        obj: dict[str, Any] = {SOURCE_REF: refs[id(image)]}
        if task == "classification":
            if len(image.labels) != 1:
                raise DatasetError(f"{image.path}: a classification image needs exactly one label, has {image.labels}")
            obj[name] = str(image.labels[0])
        elif task == "multilabel":
            if label_format == "multi-hot":
                obj[name] = json.dumps([1 if index in image.labels else 0 for index in range(len(classes))])
            elif image.labels:
                obj[name] = json.dumps(sorted(set(image.labels)))
            else:
                raise DatasetError(f"{image.path}: no labels; class-id lists cannot be empty, use multi-hot")
        else:
            obj[name] = {"image_size": size_entry(dataset, image), "annotations": encode_boxes(image, classes)}
            obj[f"{name}-metadata"] = {"class-map": class_map, "type": DETECTION_TYPES[0]}
        lines.setdefault(image.split, []).append(orjson.dumps(obj).decode())
    written = write_manifests(dest, lines)
    write_classes(dest, classes)
    log.info("wrote %d images as %s: %s", len(dataset.images), FORMAT, ", ".join(p.name for p in written.values()))
