"""TFRecord files for the TensorFlow Object Detection API, without TensorFlow (format ``tfrecord``).

Detection only. Each record is a serialised ``tf.train.Example`` with the features the
TF OD API's ``create_*_tf_record`` tools write and its ``TfExampleDecoder`` reads::

    image/encoded            bytes    the image file's bytes, unchanged (embedded)
    image/format             bytes    b"jpeg" | b"png" | b"gif" | b"bmp"
    image/filename           bytes    the file name
    image/source_id          bytes    the image's path in the source dataset (unique per image)
    image/key/sha256         bytes    hex SHA-256 of image/encoded
    image/height, image/width int64
    image/object/bbox/xmin, xmax, ymin, ymax   float  normalised 0..1, one per object
    image/object/class/text  bytes    class name, one per object
    image/object/class/label int64    class id, 1-based (the label map's ids; 0 is background)

Layout written by :func:`write` into ``dest`` (the TF OD API's naming, ``val`` for validation)::

    label_map.pbtxt    item { name: "cat" id: 1 } ...   class i has id i + 1 (class order kept)
    train.record       images with split train
    val.record         images with split validation
    test.record        images with split test
    dataset.record     images with no split (unassigned)

Only the files of splits that have images are written (``dataset.record``, empty, when
there are none at all). Reading a folder reads every ``*.record`` / ``*.tfrecord`` file in
it (sharded ``name.record-00000-of-00010`` too); the split comes from the file name
(``train``; ``val``, ``valid``, ``validation``, ``eval``; ``test``; anything else is
unassigned). Reading a single file gives every image that file's split.

Images are embedded, so reading extracts each ``image/encoded`` into a folder (option
``extract_to``, default ``<name>-images`` beside the records, ``<name>`` being the folder's
or the file's name) as ``<record>/<image/filename>`` (``<record>``: the file name without
``.record``: ``train``, ``val``, ``coco_train-00000-of-00010``), bytes only, never decoded; the
dataset is rooted there. Sizes come from ``image/height``/``image/width`` (the header when
absent). Class names: ``label_map.pbtxt`` beside the records (or option ``label_map``),
classes in id order; without one, from ``class/text`` by ``class/label``.

Libraries and hand-written parts: records are built and parsed with the ``tfrecord``
package's ``example_pb2`` messages, and framed (``uint64 length``, masked CRC-32C of the
length, data, masked CRC-32C of the data, little endian; ``crc32c`` computes the CRCs) by a
few lines here, both ways. Its ``TFRecordWriter`` builds each feature through a lambda and
masks each CRC with numpy, 40 % of a conversion's time, for the same messages (a test
compares them); its reader skips both CRC checks and reports a cut file as a bare
``RuntimeError``, where a corrupt or truncated file is here a :class:`DatasetError` naming
the file, the record and the byte offset. ``label_map.pbtxt`` is parsed and written
with protobuf's ``text_format`` against the TF OD API's ``StringIntLabelMap`` message,
declared here (same fields and numbers as ``string_int_label_map.proto``), so quotes,
escapes, comments and separators follow protobuf's rules and an unknown field is an error,
as in TensorFlow. Needs the ``tfrecord`` extra (``tfrecord``, ``protobuf``, ``crc32c``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from multicloud_cv.datasets.media import NORMALISED_SLACK, image_size, is_clean_posix, is_uri, normalised_box
from multicloud_cv.datasets.model import SPLITS, BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError

log = logging.getLogger(__name__)

LABEL_MAP = "label_map.pbtxt"
#: Record file written for each split (``None``: unassigned images).
RECORD_FOR_SPLIT: dict[str | None, str] = {
    "train": "train.record",
    "validation": "val.record",
    "test": "test.record",
    None: "dataset.record",
}
_SPLIT_WORDS = {
    "train": "train",
    "training": "train",
    "val": "validation",
    "valid": "validation",
    "validation": "validation",
    "eval": "validation",
    "test": "test",
    "testing": "test",
}
_RECORD_NAME = re.compile(r"^(?P<stem>.+?)\.(?:record|tfrecord|tfrecords)(?P<shard>-\d+-of-\d+)?$", re.IGNORECASE)
_MASK_DELTA = 0xA282EAD8
_EPS = NORMALISED_SLACK
_FORMATS = ((b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF8", "gif"), (b"BM", "bmp"))
_SUFFIX = {"jpeg": ".jpg", "png": ".png", "gif": ".gif", "bmp": ".bmp"}


# --- framing ------------------------------------------------------------------------------------


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C of ``data``: ``((crc >> 15 | crc << 17) + 0xa282ead8) mod 2**32``."""
    import crc32c

    crc = crc32c.crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def iter_records(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(byte offset, data)`` for each record of a TFRecord file, checking both CRCs.

    Raises :class:`DatasetError` naming the file, the record number and the byte offset for
    a truncated file, a CRC mismatch or a compressed file.
    """
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    with handle:
        offset, number = 0, 0
        while True:
            header = handle.read(12)
            if not header:
                return
            number += 1
            where = f"{path}: record {number} at byte offset {offset}"
            if number == 1 and header[:2] == b"\x1f\x8b":
                raise DatasetError(f"{path}: GZIP-compressed TFRecord; decompress it (gunzip) and read it again")
            if len(header) < 12:
                raise DatasetError(
                    f"{where}: truncated: {len(header)} byte(s) where a 12-byte length header belongs; "
                    "the file was cut short, write it again"
                )
            (length,) = struct.unpack("<Q", header[:8])
            (length_crc,) = struct.unpack("<I", header[8:])
            if masked_crc32c(header[:8]) != length_crc:
                raise DatasetError(f"{where}: length CRC mismatch; the file is not a TFRecord file or is corrupt")
            data = handle.read(length)
            footer = handle.read(4)
            if len(data) < length or len(footer) < 4:
                raise DatasetError(
                    f"{where}: truncated: the header announces {length} bytes and a 4-byte CRC, "
                    f"{len(data) + len(footer)} byte(s) left; the file was cut short, write it again"
                )
            if masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                raise DatasetError(f"{where}: data CRC mismatch; the record is corrupt, write the file again")
            yield offset, data
            offset += 12 + length + 4


# --- label map ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _label_map_class() -> Any:
    """The TF OD API's ``StringIntLabelMap`` message class, declared from its .proto fields."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="mcv/string_int_label_map.proto", package="object_detection.protos", syntax="proto2"
    )
    frequency = proto.enum_type.add(name="LVISFrequency")
    for number, name in enumerate(("UNSPECIFIED", "FREQUENT", "COMMON", "RARE")):
        frequency.value.add(name=name, number=number)
    item = proto.message_type.add(name="StringIntLabelMapItem")
    keypoint = item.nested_type.add(name="KeypointMap")
    keypoint.field.add(name="id", number=1, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    keypoint.field.add(name="label", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    item.field.add(name="name", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    item.field.add(name="id", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    item.field.add(name="display_name", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    item.field.add(
        name="keypoints",
        number=4,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_REPEATED,
        type_name=".object_detection.protos.StringIntLabelMapItem.KeypointMap",
    )
    item.field.add(name="ancestor_ids", number=5, type=F.TYPE_INT32, label=F.LABEL_REPEATED)
    item.field.add(name="descendant_ids", number=6, type=F.TYPE_INT32, label=F.LABEL_REPEATED)
    item.field.add(
        name="frequency",
        number=7,
        type=F.TYPE_ENUM,
        label=F.LABEL_OPTIONAL,
        type_name=".object_detection.protos.LVISFrequency",
    )
    item.field.add(name="instance_count", number=8, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    label_map = proto.message_type.add(name="StringIntLabelMap")
    label_map.field.add(
        name="item",
        number=1,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_REPEATED,
        type_name=".object_detection.protos.StringIntLabelMapItem",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("object_detection.protos.StringIntLabelMap"))


@dataclass(frozen=True)
class LabelMapItem:
    """One ``item`` of a label map: its id, ``name`` and ``display_name`` (empty when absent)."""

    id: int
    name: str
    display_name: str = ""


def read_label_map(path: Path) -> list[LabelMapItem]:
    """Parse a ``label_map.pbtxt``; return its items in id order, without the id-0 background item.

    Items need an ``id`` >= 1 (0 only for an item named ``background``) and a ``name`` or
    ``display_name``; ids and names must be unique. Errors name ``file:line:column``.
    """
    from google.protobuf import text_format

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read label map {path}: {exc}") from exc
    message = _label_map_class()()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise DatasetError(f"{path}:{exc}; write items as: item {{ id: 1 name: 'cat' }}") from None
    items: list[LabelMapItem] = []
    for number, item in enumerate(message.item, start=1):
        name = item.name or item.display_name
        if not item.HasField("id"):
            raise DatasetError(f"{path}: item {number} ({name!r}) has no id; give every item an id from 1")
        if item.id == 0 and "background" in (item.name, item.display_name):
            continue
        if item.id < 1:
            raise DatasetError(f"{path}: item {number} ({name!r}) has id {item.id}; ids start at 1 (0 is background)")
        if not name:
            raise DatasetError(f"{path}: item {number} (id {item.id}) has no name")
        items.append(LabelMapItem(item.id, name, item.display_name))
    ids = [item.id for item in items]
    names = [item.name for item in items]
    for values, what in ((ids, "id"), (names, "name")):
        duplicate = next((v for i, v in enumerate(values) if v in values[:i]), None)
        if duplicate is not None:
            raise DatasetError(f"{path}: {what} {duplicate!r} appears in two items; {what}s must be unique")
    return sorted(items, key=lambda item: item.id)


def write_label_map(classes: list[str], path: Path) -> None:
    """Write ``label_map.pbtxt`` with class *i* as ``item { name: "<class i>" id: i + 1 }``."""
    from google.protobuf import text_format

    message = _label_map_class()()
    for index, name in enumerate(classes):
        message.item.add(name=name, id=index + 1)
    Path(path).write_text(text_format.MessageToString(message, as_utf8=True), encoding="utf-8")


# --- writing ------------------------------------------------------------------------------------


def _image_format(data: bytes, where: str) -> str:
    for signature, name in _FORMATS:
        if data.startswith(signature):
            return name
    raise DatasetError(f"{where}: not a JPEG, PNG, GIF or BMP file; the TF OD API decodes those only: convert it")


def _example(dataset: Dataset, image: ImageRecord) -> dict[str, tuple[Any, str]]:
    """The ``tfrecord`` writer's datum (feature -> (value, dtype)) for one image."""
    if is_uri(image.path):
        raise DatasetError(f"{image.path}: TFRecords embed the image bytes; download remote images first")
    source = os.path.join(dataset.root, image.path)  # an absolute path stays; strings: pathlib cost 35 us an image
    try:
        with open(source, "rb") as handle:
            data = handle.read()
    except OSError:
        raise DatasetError(
            f"image {source} does not exist or cannot be read; the dataset names a missing file"
        ) from None
    fmt = _image_format(data, source)
    width, height = image_size(dataset, image)
    xmin: list[float] = []
    xmax: list[float] = []
    ymin: list[float] = []
    ymax: list[float] = []
    texts: list[bytes] = []
    labels: list[int] = []
    for box in image.boxes:
        if not 0 <= box.label < len(dataset.classes):
            raise DatasetError(f"{image.path}: box label {box.label} is outside the {len(dataset.classes)} classes")
        x0, y0, x1, y1 = normalised_box(image, box, width, height)
        xmin.append(x0)
        xmax.append(x1)
        ymin.append(y0)
        ymax.append(y1)
        texts.append(dataset.classes[box.label].encode("utf-8"))
        labels.append(box.label + 1)
    name = os.path.basename(source)
    if is_clean_posix(image.path) and not image.path.startswith("/"):
        source_id = image.path  # what the pathlib test below gives for such a path, without pathlib
    else:
        relative = PurePosixPath(Path(image.path).as_posix())
        source_id = image.path if not relative.is_absolute() and ".." not in relative.parts else name
    return {
        "image/encoded": (data, "byte"),
        "image/format": (fmt.encode(), "byte"),
        "image/filename": (name.encode("utf-8"), "byte"),
        "image/source_id": (str(source_id).encode("utf-8"), "byte"),
        "image/key/sha256": (hashlib.sha256(data).hexdigest().encode(), "byte"),
        "image/height": (height, "int"),
        "image/width": (width, "int"),
        "image/object/bbox/xmin": (xmin, "float"),
        "image/object/bbox/xmax": (xmax, "float"),
        "image/object/bbox/ymin": (ymin, "float"),
        "image/object/bbox/ymax": (ymax, "float"),
        "image/object/class/text": (texts, "byte"),
        "image/object/class/label": (labels, "int"),
    }


@lru_cache(maxsize=1)
def _tfrecord_package() -> Any:
    """The ``tfrecord`` package, imported without the ``tfrecord.torch`` that its ``__init__`` tries first.

    ``tfrecord/__init__.py`` runs ``from tfrecord import torch`` (its PyTorch ``Dataset``)
    inside ``try/except ImportError``, which imports PyTorch itself where it is installed:
    2.5 s before the first record of a conversion that needs none of it. While the package
    loads, ``sys.modules["tfrecord.torch"]`` is ``None``, which makes that import raise
    ``ImportError`` (skipped by the package); the entry is removed afterwards, so a caller can
    still ``import tfrecord.torch`` later. Where PyTorch is already imported nothing is
    blocked: the submodule then costs little. Cached: the reader asks for it once a record.
    """
    import sys

    if "tfrecord" in sys.modules or "torch" in sys.modules:
        import tfrecord

        return tfrecord
    blocked = "tfrecord.torch" not in sys.modules
    if blocked:
        sys.modules["tfrecord.torch"] = None  # type: ignore[assignment]
    try:
        import tfrecord
    finally:
        if blocked and sys.modules.get("tfrecord.torch", 0) is None:
            del sys.modules["tfrecord.torch"]
    return tfrecord


def write_tfrecord(dataset: Dataset, dest: Path) -> list[Path]:
    """Write ``label_map.pbtxt`` and one record file per split present into ``dest``; return the record files.

    Raises :class:`DatasetError` for a non-detection dataset, a missing or non-JPEG/PNG/GIF/BMP
    image, a remote image, a box outside its image or a label outside the classes.
    """
    example_pb2 = _tfrecord_package().example_pb2

    dest = Path(dest)
    if dataset.task != "detection":
        raise DatasetError(f"the tfrecord format holds detection datasets only, not {dataset.task}")
    for name in dataset.classes:
        if not name:
            raise DatasetError("a class has an empty name; the label map needs a name for every class")
    if len(set(dataset.classes)) != len(dataset.classes):
        raise DatasetError("class names must be unique for the label map")
    for image in dataset.images:
        if image.split not in RECORD_FOR_SPLIT:
            raise DatasetError(f"{image.path}: unknown split '{image.split}'; use {', '.join(SPLITS)} or None")
    dest.mkdir(parents=True, exist_ok=True)
    write_label_map(list(dataset.classes), dest / LABEL_MAP)
    written: list[Path] = []
    for split, filename in RECORD_FOR_SPLIT.items():
        images = [image for image in dataset.images if image.split == split]
        if not images and (split is not None or dataset.images):
            continue
        target = dest / filename
        with open(target, "wb") as handle:
            for image in images:
                handle.write(_framed(_serialise(example_pb2, _example(dataset, image))))
        written.append(target)
    return written


#: The ``tf.train.Feature`` list that holds each of the ``tfrecord`` package's datum kinds.
_LIST_FOR_KIND = {"byte": "bytes_list", "float": "float_list", "int": "int64_list"}


def _serialise(example_pb2: Any, datum: dict[str, tuple[Any, str]]) -> bytes:
    """``datum`` (feature -> (value, dtype)) as a serialised ``tf.train.Example``: the message the ``tfrecord``
    package's ``TFRecordWriter.serialize_tf_example`` makes of it (a test compares them), built without its
    lambda and dictionary per feature (40 % of a COCO -> TFRecord conversion), and serialised deterministically
    (features in key order; protobuf leaves a map's order open), so the same dataset gives the same bytes."""
    example = example_pb2.Example()
    features = example.features.feature
    for key, (value, kind) in datum.items():
        values = value if isinstance(value, list | tuple) else [value]
        holder = getattr(features[key], _LIST_FOR_KIND[kind])
        holder.SetInParent()  # an empty list is still a present list, as the library writes it
        holder.value.extend(values)
    data: bytes = example.SerializeToString(deterministic=True)
    return data


def _framed(record: bytes) -> bytes:
    """One TFRecord: ``uint64 length``, masked CRC-32C of the length, the record, masked CRC-32C of the record."""
    length = struct.pack("<Q", len(record))
    head_crc, data_crc = struct.pack("<I", masked_crc32c(length)), struct.pack("<I", masked_crc32c(record))
    return b"".join((length, head_crc, record, data_crc))


# --- reading ------------------------------------------------------------------------------------


@dataclass
class _Parsed:
    where: str
    path: str
    split: str | None
    width: int
    height: int
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    label_ids: list[int] | None = None
    texts: list[str] | None = None


def _values(features: Any, key: str, kind: str, where: str) -> list[Any] | None:
    if key not in features.feature:
        return None
    feature = features.feature[key]
    present = feature.WhichOneof("kind")
    if present is None:
        return []
    if present != kind:
        raise DatasetError(f"{where}: feature {key} is a {present}; the TF OD API writes it as a {kind}")
    return list(getattr(feature, kind).value)


def _split_of(stem: str) -> str | None:
    words = re.split(r"[._\-]+", stem.lower())
    for word in (stem.lower(), words[-1], words[0]):
        if word in _SPLIT_WORDS:
            return _SPLIT_WORDS[word]
    return None


def _record_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DatasetError(f"{path} does not exist")
    files = [child for child in path.iterdir() if child.is_file() and _RECORD_NAME.match(child.name)]
    if not files:
        raise DatasetError(f"{path}: no .record or .tfrecord files here")
    order = {name: rank for rank, name in enumerate(RECORD_FOR_SPLIT.values())}
    return sorted(files, key=lambda file: (order.get(file.name, len(order)), file.name))


def _unique_name(raw: str, fallback: str, data: bytes, taken: set[str]) -> str:
    name = PurePosixPath(raw.replace("\\", "/")).name.strip() if raw else ""
    if not name or name in (".", ".."):
        name = fallback
    if not PurePosixPath(name).suffix:
        fmt = next((f for signature, f in _FORMATS if data.startswith(signature)), None)
        name += _SUFFIX[fmt] if fmt else ".bin"
    stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
    candidate, n = name, 0
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}{suffix}"
    taken.add(candidate)
    return candidate


def _parse_record(payload: bytes, where: str, number: int, folder: Path, subdir: str, taken: set[str]) -> _Parsed:
    from google.protobuf.message import DecodeError

    example_pb2 = _tfrecord_package().example_pb2
    try:
        example = example_pb2.Example.FromString(payload)
    except DecodeError as exc:
        raise DatasetError(f"{where}: not a tf.train.Example ({exc})") from None
    features = example.features
    encoded = _values(features, "image/encoded", "bytes_list", where)
    if not encoded:
        raise DatasetError(f"{where}: missing required feature image/encoded (the image bytes)")
    data = encoded[0]
    filename = (_values(features, "image/filename", "bytes_list", where) or [b""])[0]
    source_id = (_values(features, "image/source_id", "bytes_list", where) or [b""])[0]
    fallback = PurePosixPath(source_id.decode("utf-8", "replace").replace("\\", "/")).name or f"{number:06d}"
    name = _unique_name(filename.decode("utf-8", "replace"), fallback, data, taken)
    target = folder / subdir / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    heights = _values(features, "image/height", "int64_list", where) or []
    widths = _values(features, "image/width", "int64_list", where) or []
    if heights and widths and heights[0] > 0 and widths[0] > 0:
        width, height = int(widths[0]), int(heights[0])
    else:
        width, height = image_size(Dataset(root=folder, classes=[], images=[]), ImageRecord(path=f"{subdir}/{name}"))
    coords = [
        _values(features, f"image/object/bbox/{k}", "float_list", where) for k in ("xmin", "ymin", "xmax", "ymax")
    ]
    label_ids = _values(features, "image/object/class/label", "int64_list", where)
    raw_texts = _values(features, "image/object/class/text", "bytes_list", where)
    texts = [t.decode("utf-8", "replace") for t in raw_texts] if raw_texts is not None else None
    counts = {len(c) for c in coords if c is not None}
    if len(counts) > 1 or (counts and any(c is None for c in coords)):
        raise DatasetError(f"{where}: image/object/bbox/xmin, ymin, xmax, ymax must hold one value per object each")
    count = counts.pop() if counts else 0
    for key, values in (("class/label", label_ids), ("class/text", texts)):
        if values is not None and len(values) != count:
            raise DatasetError(f"{where}: {count} boxes but {len(values)} image/object/{key} values")
    if count and label_ids is None and texts is None:
        raise DatasetError(f"{where}: boxes without image/object/class/label or class/text; each object needs a class")
    boxes = []
    for i in range(count):
        x0, y0, x1, y1 = (float(c[i]) for c in coords if c is not None)
        if not (-_EPS <= x0 <= x1 <= 1 + _EPS and -_EPS <= y0 <= y1 <= 1 + _EPS):
            raise DatasetError(
                f"{where}: object {i + 1} box xmin={x0} ymin={y0} xmax={x1} ymax={y1} is not normalised "
                "(need 0 <= min <= max <= 1)"
            )
        boxes.append((x0, y0, x1, y1))
    return _Parsed(where, f"{subdir}/{name}", None, width, height, boxes, label_ids, texts)


def _classes(parsed: list[_Parsed], label_map: list[LabelMapItem] | None, source: str) -> tuple[list[str], Any]:
    """Class names and a function ``(record, object index) -> class index``."""
    if label_map is not None:
        by_id = {item.id: index for index, item in enumerate(label_map)}
        by_name = {n: index for index, item in enumerate(label_map) for n in (item.name, item.display_name) if n}
        ids = f"ids {', '.join(str(item.id) for item in label_map)}" if label_map else "no ids"

        def from_map(record: _Parsed, i: int) -> int:
            text = record.texts[i] if record.texts is not None else None
            if record.label_ids is not None:
                label = record.label_ids[i]
                if label not in by_id:
                    raise DatasetError(f"{record.where}: class label {label} is not in {source} ({ids})")
                index = by_id[label]
                item = label_map[index]
                if text is not None and text not in (item.name, item.display_name):
                    raise DatasetError(
                        f"{record.where}: class text {text!r} disagrees with {source}, "
                        f"where id {label} is {item.name!r}"
                    )
                return index
            assert text is not None
            if text not in by_name:
                raise DatasetError(f"{record.where}: class text {text!r} is not a name in {source}")
            return by_name[text]

        return [item.name for item in label_map], from_map

    if all(record.label_ids is not None for record in parsed if record.boxes):
        names: dict[int, str] = {}
        for record in parsed:
            for i, label in enumerate(record.label_ids or []):
                text = record.texts[i] if record.texts is not None else str(label)
                if names.setdefault(label, text) != text:
                    raise DatasetError(
                        f"{record.where}: class label {label} is {text!r} here but {names[label]!r} earlier; "
                        f"give a {LABEL_MAP}"
                    )
        order = {label: index for index, label in enumerate(sorted(names))}
        return [names[label] for label in sorted(names)], lambda r, i: order[r.label_ids[i]]
    mixed = next((record for record in parsed if record.boxes and record.texts is None), None)
    if mixed is not None:
        raise DatasetError(
            f"{mixed.where}: objects with a class/label but no class/text, in files where other records have no "
            f"class/label; give a {LABEL_MAP}"
        )
    sorted_names = sorted({t for record in parsed for t in (record.texts or [])})
    index_of = {name: index for index, name in enumerate(sorted_names)}
    return sorted_names, lambda r, i: index_of[r.texts[i]]


def _default_extract(path: Path) -> Path:
    if path.is_dir():
        return path / f"{path.name}-images"
    match = _RECORD_NAME.match(path.name)
    stem = match.group("stem") if match else path.stem
    return path.parent / f"{stem}-images"


def read_tfrecord(path: Path, extract_to: Path | None = None, label_map: Path | None = None) -> Dataset:
    """Read a TFRecord file or a folder of them; extract the images; return the dataset rooted at the images.

    See the module docstring for the split rule, the extraction layout and class names.
    Raises :class:`DatasetError` naming the file and record for a corrupt or truncated
    file, a missing ``image/encoded``, inconsistent object lists, a box that is not
    normalised, or a class label that the label map does not hold.
    """
    path = Path(path)
    files = _record_files(path)
    records_dir = files[0].parent
    folder = Path(extract_to) if extract_to is not None else _default_extract(path)
    map_file = Path(label_map) if label_map is not None else records_dir / LABEL_MAP
    if label_map is not None and not map_file.is_file():
        raise DatasetError(f"label map {map_file} does not exist")
    items = read_label_map(map_file) if map_file.is_file() else None
    parsed: list[_Parsed] = []
    for file in files:
        match = _RECORD_NAME.match(file.name)
        stem = match.group("stem") if match else file.stem
        shard = match.group("shard") if match else None
        subdir = stem + (shard or "")
        split = _split_of(stem)
        taken: set[str] = set()
        for number, (offset, payload) in enumerate(iter_records(file), start=1):
            where = f"{file}: record {number} at byte offset {offset}"
            record = _parse_record(payload, where, number, folder, subdir, taken)
            record.split = split
            parsed.append(record)
    names, class_of = _classes(parsed, items, str(map_file) if items is not None else LABEL_MAP)
    images = [
        ImageRecord(
            path=record.path,
            boxes=tuple(
                BoxAnnotation(
                    class_of(record, i), x0 * record.width, y0 * record.height, x1 * record.width, y1 * record.height
                )
                for i, (x0, y0, x1, y1) in enumerate(record.boxes)
            ),
            split=record.split,
            width=record.width,
            height=record.height,
        )
        for record in parsed
    ]
    log.debug("extracted %d image(s) from %d record file(s) into %s", len(images), len(files), folder)
    return Dataset(root=folder, classes=names, images=images, task="detection", source_format="tfrecord")


# -- the format contract (multicloud_cv.datasets.formats) ----------------------------------------

_READ_OPTIONS = ("extract_to", "label_map")


def _looks_like_tfrecord(file: Path) -> bool:
    try:
        with file.open("rb") as handle:
            header = handle.read(12)
    except OSError:
        return False
    if not header:
        return True
    if len(header) < 12:
        return False
    try:
        return masked_crc32c(header[:8]) == struct.unpack("<I", header[8:])[0]
    except ImportError:  # without the crc32c library, trust the name
        return True


def detect(path: Path) -> bool:
    """A ``*.record`` / ``*.tfrecord`` file whose first length CRC checks, or a folder of them."""
    if path.is_file():
        return bool(_RECORD_NAME.match(path.name)) and _looks_like_tfrecord(path)
    if not path.is_dir():
        return False
    files = sorted(child for child in path.iterdir() if child.is_file() and _RECORD_NAME.match(child.name))
    return bool(files) and ((path / LABEL_MAP).is_file() or _looks_like_tfrecord(files[0]))


def read(path: Path, **options: Any) -> Dataset:
    """Read TFRecords for the TF OD API; options: ``extract_to`` (folder), ``label_map`` (file)."""
    unknown = sorted(set(options) - set(_READ_OPTIONS))
    if unknown:
        raise DatasetError(f"the tfrecord reader takes {', '.join(_READ_OPTIONS)}; got {', '.join(unknown)}")
    extract_to, label_map = options.get("extract_to"), options.get("label_map")
    return read_tfrecord(
        path,
        extract_to=Path(extract_to) if extract_to is not None else None,
        label_map=Path(label_map) if label_map is not None else None,
    )


def write(dataset: Dataset, dest: Path, **options: Any) -> None:
    """Write TFRecords and ``label_map.pbtxt`` into ``dest`` (no options)."""
    if options:
        raise DatasetError(f"the tfrecord writer takes no options; got {', '.join(sorted(options))}")
    write_tfrecord(dataset, dest)


__all__ = [
    "LABEL_MAP",
    "RECORD_FOR_SPLIT",
    "LabelMapItem",
    "detect",
    "iter_records",
    "masked_crc32c",
    "read",
    "read_label_map",
    "read_tfrecord",
    "write",
    "write_label_map",
    "write_tfrecord",
]
