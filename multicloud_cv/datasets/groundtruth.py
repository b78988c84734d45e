"""SageMaker Ground Truth output manifests, as Rekognition Custom Labels imports them (format ``groundtruth``).

One JSON object per line: ``source-ref`` and, per label, an attribute with a
``<attribute>-metadata`` object (SageMaker DG ``sms-data-output.md``; Rekognition Custom
Labels DG "Image-level labels in manifest files", "Object localization in manifest
files"; cloud-apis.md §2)::

    {"source-ref": "s3://bucket/images/a.png",                             image-level label
     "mcv-labels": 1,
     "mcv-labels-metadata": {"confidence": 1, "job-name": "labeling-job/mcv-labels", "class-name": "circle",
                             "human-annotated": "yes", "creation-date": "2026-01-02T03:04:05.000000",
                             "type": "groundtruth/image-classification"}}
    {"source-ref": "...", "mcv-labels": 0, "mcv-labels-metadata": {...},   multi-label, Rekognition style:
     "mcv-labels-1": 2, "mcv-labels-1-metadata": {...}}                   one attribute per label
    {"source-ref": "...",                                                  bounding boxes (pixels)
     "mcv-labels": {"image_size": [{"width": 64, "height": 48, "depth": 3}],
                    "annotations": [{"class_id": 0, "left": 3, "top": 4, "width": 20, "height": 10}]},
     "mcv-labels-metadata": {"objects": [{"confidence": 1}], "class-map": {"0": "square"},
                             "type": "groundtruth/object-detection", "human-annotated": "yes",
                             "creation-date": "...", "job-name": "labeling-job/mcv-labels"}}

Layout written by :func:`write` into ``dest``::

    train.manifest  validation.manifest  test.manifest   one file per split that holds images
    dataset.manifest                                     images whose split is None (unassigned)
    classes.txt                                          class names, line i naming class i (optional on read)
    images/                                              the image files (not written with image_ref=)

Writer contracts (``job`` is the label attribute name, default ``mcv-labels``):

* Every metadata object gets what Rekognition requires: ``confidence`` 1 (per box in
  ``objects`` for detection), ``human-annotated`` ``"yes"``, ``creation-date`` (UTC, ISO
  8601, one timestamp per write unless ``creation_date=`` is given), ``type`` and
  ``job-name`` ``"labeling-job/<job>"``. ``class-map`` keys are strings and hold the classes
  used on the line; a classification value is the class index.
* Multi-label images get one classification attribute per label (``<job>``, ``<job>-1``,
  ``<job>-2``...), the form Rekognition documents and accepts. ``multilabel_style="multilabel"``
  writes Ground Truth's multi-label job output instead (``"<job>": [0, 2]`` with
  ``class-map``, ``confidence-map`` and type ``groundtruth/image-classification-multilabel``),
  which SageMaker reads but Rekognition does not, so it needs ``rekognition=False``.
  Image-level labels of a detection dataset go to ``<job>-1``, ``<job>-2``... beside the boxes.
* With ``rekognition=True`` (default) the writer refuses what Rekognition Custom Labels
  rejects (DG "Validation rules for manifest files", pains.md R1-R3): more than 250,000
  lines or 1 GB per manifest, a line over 100,000 characters, a ``source-ref`` used twice,
  images in more than one S3 bucket, more than 250 classes, more than 50 boxes or 50
  labels on an image, a box outside its image. It logs a warning for ``source-ref`` values
  that are not ``s3://`` URIs (pass ``image_ref=`` with the staged URIs) and for detection
  images without boxes, which Rekognition ignores.
* Boxes are written as whole pixels by rounding each edge (within 0.5 px).

Reader contracts:

* Every attribute that has a ``<name>-metadata`` object of a recognized type is read:
  ``groundtruth/image-classification`` (the value is any integer; the class is
  ``class-name``, so Rekognition's auto-labelled folder manifests, one attribute per image,
  read too), ``groundtruth/image-classification-multilabel`` (ids into ``class-map``) and
  ``groundtruth/object-detection`` (also spelled ``object_detection``; boxes of several
  attributes on a line are all kept, as Rekognition does). Other attributes and types
  (verification, segmentation ...) are skipped and listed in ``dataset.notes``. ``job=``
  reads only ``<job>`` and ``<job>-<n>`` and then requires them.
* Strict on what the labels need: ``source-ref``, ``type``, ``class-name``, ``class-map``
  holding every id used, ``image_size``, complete annotations with width and height > 0.
  With ``strict=True`` (default) also on what Rekognition requires: ``confidence``,
  ``human-annotated``, ``creation-date``, ``depth``, one ``objects`` confidence per box, boxes
  inside the image. Lenient on the rest (``job-name``, ``confidence-map``, extra keys).
* The task is ``detection`` when any box attribute is present, else ``multilabel`` when a
  multi-label attribute or a line with several labels is present, else ``classification``
  (pass ``task=`` to override: a multi-label dataset whose images each carry one label
  reads as classification). A line without labels is an error except in multi-label
  datasets, where it is an image with no labels.
* Classes are matched by name. Order: ``classes.txt`` when present, then the other names
  by class id when every name has one id across the file, else in order of first
  appearance (with a note).

Written by hand (read with :mod:`json`, written with orjson): no maintained library reads or writes these manifests
(the SageMaker and Rekognition SDKs only pass their S3 location). The line-level helpers
are shared with :mod:`multicloud_cv.datasets.augmented_manifest`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from multicloud_cv.datasets.augmented_manifest import (
    DETECTION_TYPES,
    SOURCE_REF,
    SUFFIX,
    as_class_id,
    check_label_attribute,
    decode_boxes,
    encode_boxes,
    first_json_line,
    image_refs,
    is_groundtruth_line,
    iter_json_lines,
    manifest_files,
    pick_manifest,
    size_entry,
    source_path,
    split_of,
    write_classes,
    write_manifests,
)
from multicloud_cv.datasets.lst import CLASSES_FILE, read_class_names
from multicloud_cv.datasets.media import ImageRef
from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError

log = logging.getLogger(__name__)

FORMAT = "groundtruth"
DEFAULT_JOB = "mcv-labels"
CLASSIFICATION_TYPE = "groundtruth/image-classification"
MULTILABEL_TYPE = "groundtruth/image-classification-multilabel"
MULTILABEL_STYLES = ("attributes", "multilabel")
TASKS = ("classification", "multilabel", "detection")

# Rekognition Custom Labels manifest limits (DG "Validation rules for manifest files"; pains.md R1, R3).
MAX_LINES = 250_000
MAX_MANIFEST_BYTES = 1_000_000_000
MAX_LINE_CHARS = 100_000
MAX_CLASSES = 250
MAX_BOXES_PER_IMAGE = 50
MAX_LABELS_PER_IMAGE = 50
REKOGNITION_SUFFIXES = (".png", ".jpg", ".jpeg")


# --------------------------------------------------------------------------- detect


def detect(path: Path) -> bool:
    """True for a ``.manifest`` (or a folder of them) whose first line carries a Ground Truth
    label attribute: ``<name>-metadata`` with a ``groundtruth/...`` type and Ground Truth's
    ``human-annotated`` / ``creation-date``."""
    manifest = pick_manifest(Path(path))
    if manifest is None or (Path(path).is_file() and manifest.suffix not in (SUFFIX, ".jsonl", ".json")):
        return False
    first = first_json_line(manifest)
    return first is not None and SOURCE_REF in first and is_groundtruth_line(first)


# --------------------------------------------------------------------------- read


@dataclass
class _Line:
    where: str
    path: str
    split: str | None
    labels: list[str] = field(default_factory=list)
    boxes: list[tuple[str, BoxAnnotation]] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    kinds: set[str] = field(default_factory=set)


def _label_attributes(obj: Mapping[str, Any], job: str | None, where: str) -> list[str]:
    if job is None:
        return [
            key
            for key in obj
            if key != SOURCE_REF and not key.endswith("-metadata") and isinstance(obj.get(f"{key}-metadata"), dict)
        ]
    pattern = re.compile(re.escape(job) + r"(-\d+)?")
    found = [key for key in obj if pattern.fullmatch(key)]
    for key in found:
        if not isinstance(obj.get(f"{key}-metadata"), dict):
            raise DatasetError(
                f"{where}: attribute '{key}' has no '{key}-metadata' object; Ground Truth writes both "
                "(Rekognition: ERROR_NO_LABEL_ATTRIBUTES)"
            )
    return found


def _require(meta: Mapping[str, Any], where: str, attribute: str, fields: Sequence[str]) -> None:
    for name in fields:
        if name not in meta:
            raise DatasetError(
                f"{where}: '{attribute}-metadata' has no \"{name}\"; Rekognition requires it "
                "(ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT); add it or read with strict=False"
            )
    confidence = meta.get("confidence")
    if "confidence" in fields and (
        isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= confidence <= 1
    ):
        raise DatasetError(f"{where}: confidence of '{attribute}' must be a number from 0 to 1, got {confidence!r}")


def _class_map(meta: Mapping[str, Any], where: str, attribute: str) -> dict[int, str]:
    raw = meta.get("class-map")
    if not isinstance(raw, dict):
        raise DatasetError(
            f"{where}: '{attribute}-metadata' has no \"class-map\" object (class id string -> name, "
            'e.g. {"0": "dog"})'
        )
    result: dict[int, str] = {}
    for key, name in raw.items():
        class_id = as_class_id(key)
        if class_id is None or not isinstance(name, str) or not name:
            raise DatasetError(f'{where}: class-map of \'{attribute}\' maps {key!r} to {name!r}; use "<id>": "<name>"')
        result[class_id] = name
    return result


def _missing_id(where: str, attribute: str, class_id: int, class_map: Mapping[int, str]) -> DatasetError:
    return DatasetError(
        f"{where}: class id {class_id} of '{attribute}' is not in its class-map (ids {sorted(class_map)}); "
        'add it to "class-map" (Rekognition: ERROR_MISSING_CLASS_MAP_ID)'
    )


def _read_attribute(
    obj: Mapping[str, Any], attribute: str, line: _Line, strict: bool, job: str | None, ids: dict[str, set[int]]
) -> str | None:
    """Add one attribute's labels or boxes to ``line``; return the type when it is not one this reader reads."""
    where, value, meta = line.where, obj[attribute], obj[f"{attribute}-metadata"]
    kind = meta.get("type")
    if not isinstance(kind, str) or not kind:
        raise DatasetError(
            f"{where}: '{attribute}-metadata' has no \"type\"; use groundtruth/image-classification "
            "or groundtruth/object-detection"
        )
    if kind == CLASSIFICATION_TYPE:
        class_id = as_class_id(value)
        if class_id is None:
            raise DatasetError(f"{where}: '{attribute}' must be a whole number (the class index), got {value!r}")
        name = meta.get("class-name")
        if not isinstance(name, str) or not name:
            raise DatasetError(f"{where}: '{attribute}-metadata' needs \"class-name\", the label's name")
        if strict:
            _require(meta, where, attribute, ("confidence", "human-annotated", "creation-date"))
        ids.setdefault(name, set()).add(class_id)
        line.labels.append(name)
    elif kind == MULTILABEL_TYPE:
        class_map = _class_map(meta, where, attribute)
        values = [as_class_id(v) for v in value] if isinstance(value, list) else [None]
        if any(v is None for v in values):
            raise DatasetError(f"{where}: '{attribute}' must be a list of class ids such as [1, 0], got {value!r}")
        if strict:
            _require(meta, where, attribute, ("human-annotated", "creation-date"))
        for class_id in (v for v in values if v is not None):
            if class_id not in class_map:
                raise _missing_id(where, attribute, class_id, class_map)
            ids.setdefault(class_map[class_id], set()).add(class_id)
            line.labels.append(class_map[class_id])
    elif kind in DETECTION_TYPES:
        found, width, height = decode_boxes(value, where, attribute, check_frame=strict, require_depth=strict)
        class_map = _class_map(meta, where, attribute)
        if strict:
            _require(meta, where, attribute, ("human-annotated", "creation-date"))
            objects = meta.get("objects")
            if (
                not isinstance(objects, list)
                or len(objects) != len(found)
                or not all(isinstance(o, dict) and "confidence" in o for o in objects)
            ):
                raise DatasetError(
                    f'{where}: \'{attribute}-metadata\' needs "objects" with one {{"confidence": c}} per annotation '
                    f"({len(found)}), got {objects!r} (Rekognition: ERROR_MISSING_BOUNDING_BOX_CONFIDENCE)"
                )
        for box in found:
            if box.label not in class_map:
                raise _missing_id(where, attribute, box.label, class_map)
            ids.setdefault(class_map[box.label], set()).add(box.label)
            line.boxes.append((class_map[box.label], box))
        if line.width is None:
            line.width, line.height = width, height
    else:
        if job is not None:
            raise DatasetError(
                f"{where}: attribute '{attribute}' has type '{kind}'; this reader reads "
                f"{CLASSIFICATION_TYPE}, {MULTILABEL_TYPE} and {DETECTION_TYPES[0]}"
            )
        return kind
    line.kinds.add("detection" if kind in DETECTION_TYPES else "multilabel" if kind == MULTILABEL_TYPE else "class")
    return None


def _order_classes(base: list[str], first_seen: list[str], ids: Mapping[str, set[int]]) -> tuple[list[str], bool]:
    """Class names: ``base`` (classes.txt), then the rest by id when ids are consistent; second value: were they."""
    extra = [name for name in first_seen if name not in base]
    single = [next(iter(ids[name])) for name in extra if len(ids.get(name, ())) == 1]
    consistent = len(single) == len(extra) and len(set(single)) == len(single)
    if consistent:
        extra.sort(key=lambda name: next(iter(ids[name])))
    return [*base, *extra], consistent


def read(path: Path, job: str | None = None, strict: bool = True, task: str | None = None) -> Dataset:
    """Read a Ground Truth manifest, or every ``*.manifest`` of a folder (split from the file name).

    ``job`` limits reading to the attributes ``<job>`` / ``<job>-<n>`` and requires them on
    every line; ``strict`` checks Rekognition's required metadata; ``task`` forces the task.
    Raises :class:`DatasetError` naming ``file:line`` for malformed JSON, a missing
    ``source-ref`` or label attribute, a class id missing from the class-map, a bad box, or
    a local image that does not exist.
    """
    if task is not None and task not in TASKS:
        raise DatasetError(f"unknown task '{task}'; use {', '.join(TASKS)}")
    if job is not None:
        check_label_attribute(job)
    root, files = manifest_files(Path(path))
    base = read_class_names(root / CLASSES_FILE) if (root / CLASSES_FILE).is_file() else []
    lines: list[_Line] = []
    ids: dict[str, set[int]] = {}
    first_seen: dict[str, None] = {}
    skipped: dict[str, str] = {}
    for file, split in files:
        for number, obj in iter_json_lines(file):
            line = _Line(where=f"{file}:{number}", path="", split=split)
            line.path = source_path(obj, root, line.where)
            for attribute in _label_attributes(obj, job, line.where):
                other = _read_attribute(obj, attribute, line, strict, job, ids)
                if other is not None:
                    skipped.setdefault(attribute, other)
            first_seen.update(dict.fromkeys([*line.labels, *(name for name, _ in line.boxes)]))
            lines.append(line)

    kinds = set().union(*(line.kinds for line in lines))
    if task is None:
        several = any(len(line.labels) > 1 for line in lines)
        if "detection" in kinds:
            task = "detection"
        else:
            task = "multilabel" if "multilabel" in kinds or several else "classification"
    for line in lines:
        if not line.kinds and task != "multilabel":
            wanted = f"label attribute '{job}'" if job else "label attribute"
            raise DatasetError(
                f"{line.where}: no {wanted}; each line needs '<name>' and '<name>-metadata' of type "
                f"{CLASSIFICATION_TYPE} or {DETECTION_TYPES[0]} (Rekognition: ERROR_NO_LABEL_ATTRIBUTES)"
            )
        if task == "classification" and len(line.labels) != 1:
            raise DatasetError(
                f"{line.where}: {len(line.labels)} labels on a line of a classification dataset; "
                "read with task='multilabel'"
            )

    classes, consistent = _order_classes(base, list(first_seen), ids)
    notes: list[str] = []
    if not consistent:
        notes.append("groundtruth-class-order: class ids differ between lines; classes are in order of first use")
    if skipped:
        listed = ", ".join(f"{name} ({kind})" for name, kind in skipped.items())
        notes.append(f"groundtruth-skipped: attributes of types this reader does not read: {listed}")
        log.info("skipped Ground Truth attributes: %s", listed)
    index = {name: position for position, name in enumerate(classes)}
    images = [
        ImageRecord(
            path=line.path,
            labels=tuple(sorted({index[name] for name in line.labels})),
            boxes=tuple(replace(box, label=index[name]) for name, box in line.boxes),
            split=line.split,
            width=line.width,
            height=line.height,
        )
        for line in lines
    ]
    return Dataset(root=root, classes=classes, images=images, task=task, source_format=FORMAT, notes=notes)


# --------------------------------------------------------------------------- write


def _classification_metadata(job: str, class_name: str, created: str) -> dict[str, Any]:
    return {
        "confidence": 1,
        "job-name": f"labeling-job/{job}",
        "class-name": class_name,
        "human-annotated": "yes",
        "creation-date": created,
        "type": CLASSIFICATION_TYPE,
    }


def _check_rekognition_lines(lines: Mapping[str | None, Sequence[str]], refs: Sequence[str]) -> None:
    for split, split_lines in lines.items():
        name = split or "unassigned"
        if len(split_lines) > MAX_LINES:
            raise DatasetError(
                f"the {name} manifest would have {len(split_lines)} lines; Rekognition reads at most {MAX_LINES}"
            )
        size = sum(len(line.encode("utf-8")) + 1 for line in split_lines)
        if size > MAX_MANIFEST_BYTES:
            raise DatasetError(f"the {name} manifest would be {size} bytes; Rekognition reads at most 1 GB")
    seen: set[str] = set()
    for ref in refs:
        if ref in seen:
            raise DatasetError(f"source-ref {ref} is used twice; Rekognition does not allow duplicate images")
        seen.add(ref)
    buckets = sorted({ref[len("s3://") :].split("/", 1)[0] for ref in refs if ref.startswith("s3://")})
    if len(buckets) > 1:
        raise DatasetError(
            f"images are in {len(buckets)} S3 buckets ({', '.join(buckets[:3])}); Rekognition needs them in one "
            "(ERROR_IMAGES_IN_MULTIPLE_S3_BUCKETS)"
        )
    local = [ref for ref in refs if not ref.startswith("s3://")]
    if local:
        log.warning(
            "%d source-ref value(s) are not s3:// URIs (e.g. %s); Rekognition needs the staged S3 URIs: "
            "pass image_ref= or stage the dataset first",
            len(local),
            local[0],
        )


def write(
    dataset: Dataset,
    dest: Path,
    job: str = DEFAULT_JOB,
    image_ref: ImageRef | None = None,
    multilabel_style: str = "attributes",
    creation_date: str | None = None,
    rekognition: bool = True,
) -> None:
    """Write ``dataset`` as Ground Truth manifests into ``dest`` (layout and contracts in the module docstring).

    ``job`` is the label attribute name; ``image_ref`` maps each image to its URI (images are
    then not copied); ``multilabel_style`` is ``attributes`` (one attribute per label,
    Rekognition) or ``multilabel`` (Ground Truth's multi-label output); ``creation_date``
    fixes the timestamp; ``rekognition`` enforces Rekognition's limits. Raises
    :class:`DatasetError` for what the format or Rekognition cannot hold.
    """
    task = dataset.task
    if task not in TASKS:
        raise DatasetError(f"unknown task '{task}'; use {', '.join(TASKS)}")
    if multilabel_style not in MULTILABEL_STYLES:
        raise DatasetError(f"unknown multilabel_style '{multilabel_style}'; use {', '.join(MULTILABEL_STYLES)}")
    grouped = task == "multilabel" and multilabel_style == "multilabel"
    if grouped and rekognition:
        raise DatasetError(
            "Rekognition does not import groundtruth/image-classification-multilabel lines; "
            "use multilabel_style='attributes' or pass rekognition=False"
        )
    check_label_attribute(job)
    classes = list(dataset.classes)
    if rekognition and len(classes) > MAX_CLASSES:
        raise DatasetError(
            f"dataset has {len(classes)} classes; Rekognition Custom Labels allows at most {MAX_CLASSES}"
        )
    created = creation_date or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    job_name = f"labeling-job/{job}"
    for image in dataset.images:
        split_of(image)
        for label in image.labels:
            if not 0 <= label < len(classes):
                raise DatasetError(f"{image.path}: label {label} is outside the {len(classes)} classes")
        if task == "classification" and len(set(image.labels)) != 1:
            raise DatasetError(f"{image.path}: a classification image needs exactly one label, has {image.labels}")
        if rekognition and len(image.boxes) > MAX_BOXES_PER_IMAGE:
            raise DatasetError(
                f"{image.path}: {len(image.boxes)} boxes; Rekognition allows at most {MAX_BOXES_PER_IMAGE} per image"
            )
        if rekognition and len(set(image.labels)) > MAX_LABELS_PER_IMAGE:
            raise DatasetError(f"{image.path}: {len(set(image.labels))} labels; Rekognition allows at most 50")

    refs = image_refs(dataset, Path(dest), image_ref)
    lines: dict[str | None, list[str]] = {}
    negatives = 0
    for image in dataset.images:
        obj: dict[str, Any] = {SOURCE_REF: refs[id(image)]}
        labels = sorted(set(image.labels))
        if task == "detection":
            size = size_entry(dataset, image)
            annotations = encode_boxes(image, classes)
            if rekognition:
                _check_frame(image.path, annotations, size[0]["width"], size[0]["height"])
            negatives += not annotations
            obj[job] = {"image_size": size, "annotations": annotations}
            obj[f"{job}-metadata"] = {
                "objects": [{"confidence": 1} for _ in annotations],
                "class-map": {str(i): classes[i] for i in sorted({a["class_id"] for a in annotations})},
                "type": DETECTION_TYPES[0],
                "human-annotated": "yes",
                "creation-date": created,
                "job-name": job_name,
            }
            names = [f"{job}-{k}" for k in range(1, len(labels) + 1)]
        elif grouped:
            obj[job] = labels
            obj[f"{job}-metadata"] = {
                "job-name": job_name,
                "class-map": {str(i): classes[i] for i in labels},
                "human-annotated": "yes",
                "creation-date": created,
                "confidence-map": {str(i): 1 for i in labels},
                "type": MULTILABEL_TYPE,
            }
            names = []
        else:
            names = [job if k == 0 else f"{job}-{k}" for k in range(len(labels))]
        for name, label in zip(names, labels, strict=False):
            obj[name] = label
            obj[f"{name}-metadata"] = _classification_metadata(job, classes[label], created)
        line = orjson.dumps(obj).decode()
        if rekognition and len(line) > MAX_LINE_CHARS:
            raise DatasetError(f"{image.path}: its manifest line has {len(line)} characters; Rekognition reads 100,000")
        lines.setdefault(image.split, []).append(line)

    if rekognition:
        _check_rekognition_lines(lines, [refs[id(image)] for image in dataset.images])
        odd = [image.path for image in dataset.images if not image.path.lower().endswith(REKOGNITION_SUFFIXES)]
        if odd:
            log.warning(
                "%d image(s) are not .png/.jpg (e.g. %s); Rekognition reads PNG and JPEG only", len(odd), odd[0]
            )
        if negatives:
            log.warning("%d image(s) have no boxes; Rekognition ignores such images for training", negatives)
    written = write_manifests(Path(dest), lines)
    write_classes(Path(dest), classes)
    log.info("wrote %d images as %s: %s", len(dataset.images), FORMAT, ", ".join(p.name for p in written.values()))


def _check_frame(path: str, annotations: Sequence[Mapping[str, int]], width: int, height: int) -> None:
    for box in annotations:
        if (
            box["left"] < 0
            or box["top"] < 0
            or box["left"] + box["width"] > width
            or box["top"] + box["height"] > height
        ):
            raise DatasetError(
                f"{path}: box (left {box['left']}, top {box['top']}, width {box['width']}, height {box['height']}) "
                f"lies outside the {width}x{height} image; Rekognition drops it (ERROR_INVALID_BOUNDING_BOX); "
                "fix the box or pass rekognition=False"
            )
