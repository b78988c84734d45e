"""COCO instances JSON (object detection): ``categories``, ``images``, ``annotations``.

What is read
    A single JSON file, or a directory holding ``annotations/instances*.json``. Each file
    gives its images a split from its name: ``instances_train*.json`` is ``train``,
    ``instances_val*.json`` (``val2017``, ``validation``) is ``validation``,
    ``instances_test*.json`` is ``test``, anything else (``instances.json``,
    ``instances_default.json``) is unassigned. Files in one directory must agree on what each
    category id means.

    Image ``file_name`` values are resolved against ``image_root=`` when given, else against
    the first of these folders that holds the first image: for ``annotations/instances_X.json``,
    ``images/X/`` and ``images/`` beside ``annotations/`` (our layout and datumaro's) and
    ``X/`` (the COCO 2017 download: ``val2017/``); then ``images/`` beside the JSON and the
    JSON's own folder. An absolute ``file_name`` or a URI is used as it is. Only that one
    image is looked at: reading never opens, decodes or stats the other images, and sizes
    come from the JSON (``width``/``height``; absent ones stay unknown).

    Boxes are ``bbox: [x, y, w, h]`` in pixels, read as ``x_min=x, x_max=x+w``. Category ids
    may be any integers, with gaps: the class order is the categories sorted by id.
    ``iscrowd: 1`` annotations (crowd regions, ignored by COCO evaluation) are not kept as
    boxes; their number is logged as a warning and recorded in ``Dataset.notes``.
    Segmentations, keypoints, captions and licences are not carried.

    Loading is one ``orjson.loads`` per file and one pass over its lists with dictionary
    lookups (no per-annotation search), so time and memory grow linearly; the garbage
    collector is paused meanwhile (:func:`gc_paused`). pycocotools' ``COCO()`` does the same
    ``json.load`` and then builds indexes the canonical dataset does not use (and prints to
    stdout): measured on 100,000 boxes / 20,000 images, ``COCO()`` alone took about as long
    as this whole reader (0.6 s against ``json.load``'s 0.47 s), and the records would still
    have to be built after it, so it is not used. Our output loads in
    ``pycocotools.coco.COCO`` (tested).

What is written (:func:`write`)
    ``annotations/instances_<split>.json`` for each non-empty split (``train``, ``validation``,
    ``test``) and ``annotations/instances.json`` for unassigned images (also written, empty,
    for a dataset with no images so its classes survive). Category ids are ``1..N`` in class
    order (COCO keeps 0 for the background); image and annotation ids are ``1..`` across all
    files. Images are placed flat under ``images/`` with :func:`~multicloud_cv.datasets.media.place_images`
    (hard links where possible, names made unique) and ``file_name`` is relative to ``images/``.
    ``bbox`` is ``[x_min, y_min, x_max - x_min, y_max - y_min]``; numbers are written with
    12 significant digits (whole numbers without a decimal point): at least 7 decimals for
    any coordinate under 100,000 px, and float noise (``621.32 - 557.28 ==
    64.04000000000008``) does not show. ``iscrowd`` is 0 and ``segmentation`` an empty list.

    ``copy_images=False`` places nothing: ``file_name`` is then each image's absolute path
    (or its URI), which the reader uses as it is. Use it for a conversion whose output stays
    on the same machine as its images (and for the conversion benchmark, "save_media off").
    Images whose size the dataset does not know are measured from their file headers
    (never decoded).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any

import orjson

from multicloud_cv.datasets.media import image_size, is_uri, place_images
from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord, gc_paused
from multicloud_cv.errors import DatasetError

log = logging.getLogger(__name__)

ANNOTATIONS_DIR = "annotations"
IMAGES_DIR = "images"
#: Split name -> the suffix of ``instances_<suffix>.json`` written for it.
SPLIT_FILES = {"train": "train", "validation": "validation", "test": "test"}
_HEAD_BYTES = 8192
_KEY = re.compile(rb'"(images|annotations|categories)"\s*:')


def split_of(stem: str) -> str | None:
    """The split an annotation file's name implies: ``instances_val2017`` -> ``validation``."""
    suffix = stem[len("instances") :].lstrip("_-").lower() if stem.startswith("instances") else stem.lower()
    if suffix.startswith("train"):
        return "train"
    if suffix.startswith("val"):
        return "validation"
    if suffix.startswith("test"):
        return "test"
    return None


def annotation_files(root: Path) -> list[Path]:
    """The ``annotations/instances*.json`` files of a COCO directory, sorted by name."""
    folder = root / ANNOTATIONS_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith("instances") and p.suffix == ".json")


def detect(path: Path) -> bool:
    """True for a COCO directory or file; looks at names and at most 16 KB of one file.

    A directory qualifies with ``annotations/instances*.json``; a ``.json`` file when its
    first and last 8 KB name the keys ``images`` and ``annotations`` or ``categories`` (COCO
    2017's files put ``annotations`` and ``categories`` after the long ``images`` list).
    """
    if path.is_dir():
        return bool(annotation_files(path))
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
            size = handle.seek(0, os.SEEK_END)
            tail = b""
            if size > _HEAD_BYTES:
                handle.seek(max(_HEAD_BYTES, size - _HEAD_BYTES))
                tail = handle.read()
    except OSError:
        return False
    if not head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{"):  # a UTF-8 BOM is allowed
        return False
    keys = {match.group(1) for match in _KEY.finditer(head + b"\n" + tail)}
    return b"images" in keys and bool(keys & {b"annotations", b"categories"})


def read(path: Path, image_root: str | Path | None = None) -> Dataset:
    """Read a COCO JSON file or a COCO directory (see the module docstring).

    Raises :class:`DatasetError` naming the file for unreadable JSON, a missing list, an
    annotation whose image or category does not exist, a missing or malformed ``bbox``,
    duplicate ids, or category ids that two files give different names.
    """
    with gc_paused():
        return _read(Path(path), image_root)


def _read(path: Path, image_root: str | Path | None) -> Dataset:
    if path.is_dir():
        files = annotation_files(path)
        if not files:
            raise DatasetError(f"{path}: no {ANNOTATIONS_DIR}/instances*.json; is this a COCO dataset?")
        root = path
    else:
        files = [path]
        root = path.parent.parent if path.parent.name == ANNOTATIONS_DIR else path.parent
    explicit_root = Path(image_root).expanduser().resolve() if image_root is not None else None

    categories: dict[int, str] = {}
    loaded: list[tuple[Path, dict[str, Any]]] = []
    for file in files:
        data = _load(file)
        for cid, name in _categories(data, file).items():
            if categories.setdefault(cid, name) != name:
                raise DatasetError(
                    f"{file}: category id {cid} is '{name}' here but '{categories[cid]}' in another file; "
                    "files of one dataset must share their categories"
                )
        loaded.append((file, data))
    ids = sorted(categories)
    classes = [categories[cid] for cid in ids]
    if len(set(classes)) != len(classes):
        dup = sorted({name for name in classes if classes.count(name) > 1})
        raise DatasetError(f"{files[0]}: category names must be unique; repeated: {', '.join(dup)}")
    label_of = {cid: index for index, cid in enumerate(ids)}

    images: list[ImageRecord] = []
    notes: list[str] = []
    crowd_total = 0
    for file, data in loaded:
        split = split_of(file.stem)
        prefix = _image_prefix(file, data, root, explicit_root)
        records, crowd = _records(file, data, label_of, prefix, split)
        images.extend(records)
        crowd_total += crowd
    if crowd_total:
        message = f"{crowd_total} iscrowd=1 annotation(s) skipped: crowd regions are not object boxes"
        log.warning("%s: %s", path, message)
        notes.append(message)
    return Dataset(root=root, classes=classes, images=images, task="detection", source_format="coco", notes=notes)


def _load(file: Path) -> dict[str, Any]:
    """The file's JSON object: orjson (1.5x json's speed on COCO), then :mod:`json` for what orjson refuses.

    orjson reads UTF-8 only and refuses a byte-order mark; the standard library also reads
    UTF-16 and UTF-32 and skips the mark, so a file orjson refuses is given to it before it
    is called invalid (with the standard library's message, which names line and column).
    """
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {file}: {exc}") from exc
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{file}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise DatasetError(f"{file}: expected a JSON object with images, annotations and categories")
    for key in ("images", "annotations", "categories"):
        value = data.get(key, [])
        if not isinstance(value, list):
            raise DatasetError(f"{file}: '{key}' must be a list, got {type(value).__name__}")
    if "images" not in data:
        raise DatasetError(f"{file}: no 'images' list; a COCO instances file needs images, annotations, categories")
    return data


def _categories(data: dict[str, Any], file: Path) -> dict[int, str]:
    found: dict[int, str] = {}
    for position, category in enumerate(data.get("categories", [])):
        try:
            cid, name = category["id"], category["name"]
        except (KeyError, TypeError):
            raise DatasetError(f"{file}: categories[{position}] needs 'id' and 'name'") from None
        if not isinstance(cid, int) or isinstance(cid, bool) or not isinstance(name, str) or not name:
            raise DatasetError(f"{file}: categories[{position}]: id must be an integer and name a non-empty string")
        if cid in found:
            raise DatasetError(f"{file}: category id {cid} appears twice")
        found[cid] = name
    return found


def _image_prefix(file: Path, data: dict[str, Any], root: Path, explicit: Path | None) -> str:
    """What to put before a relative ``file_name``: a folder relative to ``root`` (``images/``) or absolute."""
    if explicit is not None:
        return _prefix(explicit, root)
    candidates: list[Path] = []
    default = file.parent
    if file.parent.name == ANNOTATIONS_DIR:
        base = file.parent.parent
        suffix = file.stem[len("instances") :].lstrip("_-") if file.stem.startswith("instances") else ""
        if suffix:
            candidates.append(base / IMAGES_DIR / suffix)
        candidates.append(base / IMAGES_DIR)
        default = base / IMAGES_DIR
        if suffix:
            candidates.append(base / suffix)
    candidates += [file.parent / IMAGES_DIR, file.parent]
    probe = next(
        (
            img.get("file_name")
            for img in data["images"]
            if isinstance(img, dict)
            and isinstance(img.get("file_name"), str)
            and not (is_uri(img["file_name"]) or os.path.isabs(img["file_name"]))
        ),
        None,
    )
    chosen = next((c for c in candidates if probe is not None and (c / probe).is_file()), None)
    if chosen is None:  # no image on disk to tell: a candidate folder that exists, else our layout's
        chosen = next((c for c in candidates[:-1] if c.is_dir()), default)
    return _prefix(chosen, root)


def _prefix(folder: Path, root: Path) -> str:
    try:
        text = folder.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:  # outside the dataset root: absolute paths
        return folder.resolve().as_posix() + "/"
    return "" if text == "." else text + "/"


def _records(
    file: Path, data: dict[str, Any], label_of: dict[int, int], prefix: str, split: str | None
) -> tuple[list[ImageRecord], int]:
    """The image records of one file and how many crowd annotations it skipped."""
    boxes_of: dict[Any, list[BoxAnnotation]] = {}
    entries: list[tuple[Any, str, int | None, int | None]] = []
    for position, image in enumerate(data["images"]):
        try:
            image_id, name = image["id"], image["file_name"]
        except (KeyError, TypeError):
            raise DatasetError(f"{file}: images[{position}] needs 'id' and 'file_name'") from None
        if image_id in boxes_of:
            raise DatasetError(f"{file}: image id {image_id} appears twice (images[{position}])")
        if not isinstance(name, str) or not name:
            raise DatasetError(f"{file}: images[{position}]: file_name must be a non-empty string")
        boxes_of[image_id] = []
        width, height = image.get("width"), image.get("height")
        entries.append((image_id, name, width if width else None, height if height else None))

    crowd = 0
    box = BoxAnnotation
    for position, ann in enumerate(data.get("annotations", [])):
        try:
            image_id, cid = ann["image_id"], ann["category_id"]
            x, y, w, h = ann["bbox"]
            x, y, w, h = float(x), float(y), float(w), float(h)
        except KeyError as exc:
            raise DatasetError(f"{file}: annotations[{position}] has no '{exc.args[0]}'") from None
        except (TypeError, ValueError):
            where = f"annotations[{position}] (id {ann.get('id') if isinstance(ann, dict) else '?'})"
            raise DatasetError(f"{file}: {where}: bbox must be [x, y, width, height] numbers") from None
        if ann.get("iscrowd"):
            crowd += 1
            continue
        target = boxes_of.get(image_id)
        if target is None:
            raise DatasetError(
                f"{file}: annotations[{position}] (id {ann.get('id')}) names image {image_id}, not listed"
            )
        label = label_of.get(cid)
        if label is None:
            raise DatasetError(f"{file}: annotations[{position}] (id {ann.get('id')}) names category {cid}, not listed")
        if w < 0 or h < 0:
            raise DatasetError(f"{file}: annotations[{position}] (id {ann.get('id')}): negative bbox width or height")
        target.append(box(label, x, y, x + w, y + h))

    records = []
    for image_id, name, width, height in entries:
        path = name if is_uri(name) or os.path.isabs(name) else prefix + name
        records.append(ImageRecord(path, (), tuple(boxes_of[image_id]), split, width, height))
    return records, crowd


def _bad_box(image: ImageRecord, box: BoxAnnotation, count: int) -> DatasetError:
    if not 0 <= box.label < count:
        return DatasetError(f"{image.path}: box label {box.label} is not a class index (0..{count - 1})")
    return DatasetError(f"{image.path}: box {box} is not finite with min <= max; COCO cannot hold it")


def write(dataset: Dataset, dest: Path, copy_images: bool = True) -> None:
    """Write ``dataset`` as COCO into ``dest`` (see the module docstring for the layout and ``copy_images``)."""
    dest = Path(dest)
    (dest / ANNOTATIONS_DIR).mkdir(parents=True, exist_ok=True)
    if dataset.task != "detection":
        raise DatasetError(f"COCO instances hold detection datasets, not {dataset.task}")
    if copy_images:
        placed = place_images(dataset, dest, IMAGES_DIR)
        cut = len(IMAGES_DIR) + 1
        names = {key: value if is_uri(value) else value[cut:] for key, value in placed.items()}
    else:
        base = str(dataset.root)  # os.path.join keeps an absolute image path as it is; pathlib costs 20 us an image
        names = {
            id(image): image.path if is_uri(image.path) else os.path.join(base, image.path) for image in dataset.images
        }
    categories = [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(dataset.classes)]
    groups: dict[str | None, list[ImageRecord]] = {}
    for image in dataset.images:
        groups.setdefault(image.split, []).append(image)
    if not groups:
        groups[None] = []
    unknown = sorted(str(s) for s in groups if s is not None and s not in SPLIT_FILES)
    if unknown:
        raise DatasetError(f"splits {', '.join(unknown)} have no COCO file name; use train, validation or test")
    count = len(dataset.classes)
    # The JSON is built as text, row by row (json.dumps only for strings): 3x faster than building
    # 100,000 dictionaries for json.dumps, and byte for byte what json.dumps would write.
    string = json.JSONEncoder(ensure_ascii=False).encode
    head = json.dumps(
        {"info": {"description": "written by multicloud-cv"}, "licenses": [], "categories": categories},
        ensure_ascii=False,
        separators=(",", ":"),
    )[:-1]
    image_row = '{"id":%d,"file_name":%s,"width":%d,"height":%d}'
    box_row = (
        '{"id":%d,"image_id":%d,"category_id":%d,"bbox":[%.12g,%.12g,%.12g,%.12g],"area":%.12g,'
        '"iscrowd":0,"segmentation":[]}'
    )
    inf = math.inf
    image_id = annotation_id = 0
    for split in [*SPLIT_FILES, None]:
        if split not in groups:
            continue
        image_rows: list[str] = []
        box_rows: list[str] = []
        for image in groups[split]:
            image_id += 1
            width, height = (image.width, image.height) if image.width and image.height else image_size(dataset, image)
            image_rows.append(image_row % (image_id, string(names[id(image)]), width, height))
            for b in image.boxes:
                x, y = b.x_min, b.y_min
                w, h = b.x_max - x, b.y_max - y
                if not (0 <= b.label < count and 0 <= w < inf and 0 <= h < inf and -inf < x < inf and -inf < y < inf):
                    raise _bad_box(image, b, count)
                annotation_id += 1
                box_rows.append(box_row % (annotation_id, image_id, b.label + 1, x, y, w, h, w * h))
        name = f"instances_{SPLIT_FILES[split]}.json" if split is not None else "instances.json"
        text = f'{head},"images":[{",".join(image_rows)}],"annotations":[{",".join(box_rows)}]}}'
        (dest / ANNOTATIONS_DIR / name).write_text(text, encoding="utf-8")
