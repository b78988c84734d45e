"""MXNet indexed RecordIO (``.rec`` + ``.idx``), the SageMaker built-in algorithms' packed format.

Written by hand because no maintained library without MXNet reads or writes it (MXNet
itself is retired). The layout follows dmlc-core ``include/dmlc/recordio.h`` /
``src/recordio.cc`` and MXNet ``python/mxnet/recordio.py`` (cloud-apis.md §1.9):

* each record: ``uint32 magic 0xced7230a``, ``uint32 lrecord = cflag << 29 | length``,
  ``length`` data bytes, zero padding to a 4-byte boundary (all little-endian);
* ``cflag`` 0 is a whole record. dmlc's writer splits a record wherever the magic word
  occurs at a 4-byte aligned offset of the data: part one has cflag 1, middle parts 2,
  the last part 3, and the magic word itself is dropped; the reader puts it back between
  parts. :func:`write_records` does the same, so output is byte-identical. (Records of
  2^29 bytes or more are rejected by dmlc and here; they are never split.)
* ``.idx``: one line ``key\\tbyte_offset\\n`` per record, the offset of its first header.
* payload (``pack``/``unpack``): IRHeader ``struct 'IfQQ'`` = ``flag, label, id, id2``
  (24 bytes); when ``flag > 0``, ``flag`` float32 labels follow and ``label`` is 0; then
  the encoded image bytes.

Labels as written by :func:`write_recordio`: classification ``flag=0, label=class``;
multi-label a float32 array, multi-hot over all classes (default, SageMaker's default
format) or the sorted class ids (``label_format="class-id"``), ``flag`` = its length;
detection the im2rec / ``ImageDetIter`` layout ``[2, 5, cls, xmin, ymin, xmax, ymax, ...]``
with coordinates normalised by the image size. ``id`` is the record's key, 0..n-1.

Reading keeps the dataset path-based: :func:`read_recordio` extracts each image's bytes
into a folder and returns a :class:`Dataset` rooted there. :func:`iter_records` and
:func:`unpack` give the raw ``(header, image bytes)`` pairs without touching the disk.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from multicloud_cv.datasets.lst import ClassNames, _resolve_names, _whole
from multicloud_cv.datasets.model import SPLITS, BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
IR_FORMAT = "<IfQQ"
IR_SIZE = struct.calcsize(IR_FORMAT)  # 24, same as native 'IfQQ' on little-endian hosts
LENGTH_MASK = (1 << 29) - 1
MAX_RECORD = 1 << 29


class IRHeader(NamedTuple):
    """MXNet's image record header; ``label`` is a float, or a tuple of floats when ``flag > 0``."""

    flag: int
    label: float | tuple[float, ...]
    id: int
    id2: int = 0


def pack(header: IRHeader, image: bytes) -> bytes:
    """Like ``mxnet.recordio.pack``: a scalar label gives ``flag=0``; a sequence gives ``flag=len``, ``label=0``."""
    if isinstance(header.label, int | float):
        return struct.pack(IR_FORMAT, 0, float(header.label), header.id, header.id2) + image
    values = tuple(float(v) for v in header.label)
    labels = struct.pack(f"<{len(values)}f", *values)
    return struct.pack(IR_FORMAT, len(values), 0.0, header.id, header.id2) + labels + image


def unpack(payload: bytes) -> tuple[IRHeader, bytes]:
    """Like ``mxnet.recordio.unpack``: the header (label array as a tuple when ``flag > 0``) and the image bytes."""
    if len(payload) < IR_SIZE:
        raise DatasetError(f"record of {len(payload)} bytes is shorter than the {IR_SIZE}-byte IRHeader")
    flag, label, key, key2 = struct.unpack_from(IR_FORMAT, payload)
    rest = payload[IR_SIZE:]
    if flag > 0:
        if len(rest) < 4 * flag:
            raise DatasetError(f"record header announces {flag} float labels but only {len(rest)} bytes follow")
        return IRHeader(flag, struct.unpack_from(f"<{flag}f", rest), key, key2), rest[4 * flag :]
    return IRHeader(flag, label, key, key2), rest


def frame(data: bytes) -> bytes:
    """Frame one record exactly as dmlc ``RecordIOWriter::WriteRecord`` does (splitting on aligned magic)."""
    size = len(data)
    if size >= MAX_RECORD:
        raise DatasetError(f"record of {size} bytes is too large; RecordIO records must be under 2^29 bytes")
    out = bytearray()
    start = 0
    for i in range(0, (size >> 2) << 2, 4):
        if data[i : i + 4] == MAGIC_BYTES:
            out += MAGIC_BYTES + struct.pack("<I", (1 if start == 0 else 2) << 29 | (i - start)) + data[start:i]
            start = i + 4
    out += MAGIC_BYTES + struct.pack("<I", (3 if start else 0) << 29 | (size - start)) + data[start:]
    out += b"\0" * ((-size) % 4)
    return bytes(out)


def iter_records(rec_path: Path, offset: int = 0, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield ``(byte offset, payload)`` for each record from ``offset``, reassembling cflag 1/2/3 parts.

    Stops after ``limit`` records when given. Raises :class:`DatasetError` naming the byte
    offset for a bad magic word, a truncated record or a broken continuation sequence.
    """
    yield from _records(_read(rec_path), rec_path, offset, limit)


def _read(rec_path: Path) -> bytes:
    try:
        return Path(rec_path).read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {rec_path}: {exc}") from exc


def _records(data: bytes, rec_path: Path, offset: int, limit: int | None) -> Iterator[tuple[int, bytes]]:
    position = offset
    count = 0
    while position < len(data) and (limit is None or count < limit):
        start = position
        parts: list[bytes] = []
        while True:
            if len(data) - position < 8:
                raise DatasetError(
                    f"{rec_path}: truncated at byte offset {position}: {len(data) - position} byte(s) where an "
                    "8-byte record header belongs; the file was cut short, write it again"
                )
            magic, lrecord = struct.unpack_from("<II", data, position)
            if magic != MAGIC:
                raise DatasetError(
                    f"{rec_path}: bad magic 0x{magic:08x} at byte offset {position} (expected 0x{MAGIC:08x}); "
                    "the file is not MXNet RecordIO or is corrupt"
                )
            cflag, length = lrecord >> 29, lrecord & LENGTH_MASK
            body = position + 8
            if body + length > len(data):
                raise DatasetError(
                    f"{rec_path}: truncated record at byte offset {position}: header says {length} bytes, "
                    f"{len(data) - body} left; the file was cut short, write it again"
                )
            expected = (0, 1) if not parts else (2, 3)
            if cflag not in expected:
                raise DatasetError(
                    f"{rec_path}: continuation flag {cflag} at byte offset {position} where "
                    f"{' or '.join(map(str, expected))} belongs; the file is corrupt"
                )
            parts.append(data[body : body + length])
            position = body + length + (-length) % 4
            if cflag in (0, 3):
                break
        yield start, MAGIC_BYTES.join(parts)
        count += 1


def read_idx(idx_path: Path) -> list[tuple[int, int]]:
    """Read an ``.idx`` file as ``(key, byte offset)`` pairs in file order; errors name ``file:line``."""
    try:
        text = Path(idx_path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read {idx_path}: {exc}") from exc
    entries: list[tuple[int, int]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.split("\t")
        try:
            if len(cells) != 2:
                raise ValueError
            entries.append((int(cells[0]), int(cells[1])))
        except ValueError:
            raise DatasetError(f"{idx_path}:{number}: expected 'key<TAB>byte_offset', got {line!r}") from None
    return entries


def write_records(rec_path: Path, idx_path: Path, payloads: Sequence[tuple[int, bytes]]) -> None:
    """Write ``(key, payload)`` records like ``MXIndexedRecordIO.write_idx``: ``.rec`` plus ``key\\toffset`` lines."""
    rec = bytearray()
    index: list[str] = []
    for key, payload in payloads:
        index.append(f"{key}\t{len(rec)}\n")
        rec += frame(payload)
    Path(rec_path).parent.mkdir(parents=True, exist_ok=True)
    Path(rec_path).write_bytes(bytes(rec))
    Path(idx_path).write_text("".join(index), encoding="utf-8")


def _image_bytes(dataset: Dataset, image: ImageRecord, encode: str, quality: int) -> bytes:
    path = dataset.absolute(image)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from exc
    if encode == "keep":
        return raw
    from PIL import Image

    with Image.open(io.BytesIO(raw)) as im:
        out = io.BytesIO()
        im.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def _image_size(data: bytes, where: str) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:  # reads the header only, no decode
            return im.size
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"{where}: cannot read the image size: {exc}") from exc


def write_recordio(
    dataset: Dataset,
    rec_path: Path,
    idx_path: Path,
    split: str | None = None,
    encode: str = "keep",
    quality: int = 95,
    label_format: str = "multi-hot",
) -> int:
    """Write the images of ``split`` (all when ``None``) as indexed RecordIO; return how many records.

    ``encode="keep"`` stores each file's bytes unchanged; ``"jpeg"`` re-encodes to RGB JPEG
    at ``quality``. Keys and IRHeader ids are 0..n-1 in dataset order. Paths, class names
    and splits are not stored in RecordIO; write a ``.lst`` beside it (same stem) with
    :func:`multicloud_cv.datasets.lst.write_lst` to keep them for :func:`read_recordio`.
    """
    if encode not in ("keep", "jpeg"):
        raise DatasetError(f"unknown encode '{encode}'; use keep or jpeg")
    if label_format not in ("multi-hot", "class-id"):
        raise DatasetError(f"unknown label format '{label_format}'; use multi-hot or class-id")
    images = dataset.images if split is None else dataset.split(split)
    payloads: list[tuple[int, bytes]] = []
    for key, image in enumerate(images):
        data = _image_bytes(dataset, image, encode, quality)
        label: float | tuple[float, ...]
        if dataset.task == "classification":
            if len(image.labels) != 1:
                raise DatasetError(f"{image.path}: a classification image needs exactly one label, has {image.labels}")
            label = float(image.labels[0])
        elif dataset.task == "multilabel":
            if label_format == "multi-hot":
                label = tuple(1.0 if i in image.labels else 0.0 for i in range(len(dataset.classes)))
            else:
                label = tuple(float(i) for i in sorted(set(image.labels)))
            if not label:
                raise DatasetError(
                    f"{image.path}: no labels; an empty class-id list reads back as class 0, use multi-hot"
                )
        elif dataset.task == "detection":
            width, height = (
                (image.width, image.height) if image.width and image.height else _image_size(data, image.path)
            )
            values = [2.0, 5.0]
            for box in image.boxes:
                values += [
                    float(box.label),
                    box.x_min / width,
                    box.y_min / height,
                    box.x_max / width,
                    box.y_max / height,
                ]
            label = tuple(values)
        else:
            raise DatasetError(f"unknown dataset task '{dataset.task}'")
        payloads.append((key, pack(IRHeader(0, label, key, 0), data)))
    write_records(rec_path, idx_path, payloads)
    return len(payloads)


def _suffix(data: bytes) -> str:
    """File suffix from the image's magic bytes ('.bin' when unknown)."""
    signatures = (
        (b"\xff\xd8\xff", ".jpg"),
        (b"\x89PNG\r\n\x1a\n", ".png"),
        (b"GIF8", ".gif"),
        (b"BM", ".bmp"),
        (b"II*\0", ".tif"),
        (b"MM\0*", ".tif"),
    )
    for signature, suffix in signatures:
        if data.startswith(signature):
            return suffix
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".bin"


def _is_detection(label: tuple[float, ...]) -> bool:
    if len(label) < 2 or label[0] < 2 or label[1] < 5 or label[0] != int(label[0]) or label[1] != int(label[1]):
        return False
    head, width = int(label[0]), int(label[1])
    if (len(label) - head) % width:
        return False
    for start in range(head, len(label), width):
        x0, y0, x1, y1 = label[start + 1 : start + 5]
        if not (0 <= x0 <= x1 <= 1 and 0 <= y0 <= y1 <= 1):
            return False
    return True


def read_recordio(
    rec_path: Path,
    image_dir: Path,
    idx_path: Path | None = None,
    split: str | None = None,
    classes: ClassNames = None,
    lst_path: Path | None = None,
) -> Dataset:
    """Extract a ``.rec`` into ``image_dir`` and return the path-based :class:`Dataset` rooted there.

    With ``idx_path`` records are read in ``.idx`` order at the offsets it gives, else in
    file order. Image file names come from the ``.lst`` (``lst_path``, or the ``.lst`` of the
    same stem beside ``rec_path``) matching the IRHeader id to the list index, else are
    ``<id><suffix by magic bytes>``. Class names: ``classes``, else ``classes.txt`` beside
    ``rec_path``, else ``"0"``..``"N-1"``. Task: every ``flag == 0`` gives classification;
    label arrays shaped ``[2, 5, cls, x0, y0, x1, y1, ...]`` with coordinates in [0, 1]
    give detection (boxes scaled back to pixels by the image size, read from the image
    header); other arrays give multi-label, multi-hot when all arrays have one length and
    hold only 0/1, else class ids. Every image gets ``split``.
    """
    rec_path, image_dir = Path(rec_path), Path(image_dir)
    if split is not None and split not in SPLITS:
        raise DatasetError(f"unknown split '{split}'; use {', '.join(SPLITS)} or None")
    records: list[tuple[int, IRHeader, bytes]] = []
    data_all = _read(rec_path)
    if idx_path is not None:
        for key, offset in read_idx(Path(idx_path)):
            if not 0 <= offset < len(data_all):
                raise DatasetError(f"{idx_path}: key {key} points at byte offset {offset}, outside {rec_path}")
            for position, payload in _records(data_all, rec_path, offset, 1):
                header, data = _unpack_at(payload, rec_path, position)
                records.append((key, header, data))
    else:
        for position, payload in _records(data_all, rec_path, 0, None):
            header, data = _unpack_at(payload, rec_path, position)
            records.append((header.id, header, data))

    names_by_id: dict[int, str] = {}
    lst = Path(lst_path) if lst_path is not None else rec_path.with_suffix(".lst")
    if lst_path is not None or lst.is_file():
        if not lst.is_file():
            raise DatasetError(f"list file {lst} does not exist")
        text = lst.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), start=1):
            cells = line.split("\t")
            if line.strip() and (len(cells) < 3 or not cells[0].strip().lstrip("-").isdigit()):
                raise DatasetError(f"{lst}:{number}: expected 'index<TAB>label...<TAB>path'")
            if line.strip():
                names_by_id[int(cells[0])] = cells[-1].strip()

    arrays = [h.label for _, h, _ in records if isinstance(h.label, tuple)]
    if not arrays:
        task = "classification"
    elif len(arrays) == len(records) and all(_is_detection(a) for a in arrays):
        task = "detection"
    else:
        task = "multilabel"
    multi_hot = (
        task == "multilabel"
        and len({len(a) for a in arrays}) == 1
        and all(v in (0.0, 1.0) for a in arrays for v in a)
        and len(arrays) == len(records)
    )

    images: list[ImageRecord] = []
    for key, header, data in records:
        where = f"{rec_path} record id {header.id}"
        relative = names_by_id.get(header.id, f"{header.id}{_suffix(data)}")
        target = (image_dir / relative).resolve()
        if not target.is_relative_to(image_dir.resolve()):
            raise DatasetError(f"{where}: image path {relative} leaves {image_dir}; fix the .lst")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        label = header.label
        if task == "classification":
            if isinstance(label, tuple) or not _whole(label):
                raise DatasetError(f"{where} (key {key}): class label {label} is not a whole number >= 0")
            images.append(ImageRecord(path=relative, labels=(int(label),), split=split))
        elif task == "multilabel":
            values = label if isinstance(label, tuple) else (label,)
            if multi_hot:
                ids = tuple(i for i, v in enumerate(values) if v == 1.0)
            else:
                if not all(_whole(v) for v in values):
                    raise DatasetError(f"{where} (key {key}): class ids {values} are not whole numbers >= 0")
                ids = tuple(sorted({int(v) for v in values}))
            images.append(ImageRecord(path=relative, labels=ids, split=split))
        else:
            assert isinstance(label, tuple)
            width, height = _image_size(data, where)
            head, step = int(label[0]), int(label[1])
            boxes = tuple(
                BoxAnnotation(
                    label=int(label[i]),
                    x_min=label[i + 1] * width,
                    y_min=label[i + 2] * height,
                    x_max=label[i + 3] * width,
                    y_max=label[i + 4] * height,
                )
                for i in range(head, len(label), step)
            )
            images.append(ImageRecord(path=relative, boxes=boxes, split=split, width=width, height=height))

    if multi_hot:
        count = len(arrays[0])
    else:
        used = [b.label for image in images for b in image.boxes] + [i for image in images for i in image.labels]
        count = max(used, default=-1) + 1
    names = _resolve_names(classes, rec_path)
    if names is None:
        names = [str(i) for i in range(count)]
    elif count > len(names) or (multi_hot and count != len(names)):
        raise DatasetError(f"{rec_path}: labels need {count} classes but {len(names)} class names were given")
    return Dataset(root=image_dir, classes=names, images=images, task=task, source_format="recordio")


def _unpack_at(payload: bytes, rec_path: Path, position: int) -> tuple[IRHeader, bytes]:
    try:
        return unpack(payload)
    except DatasetError as exc:
        raise DatasetError(f"{rec_path}: record at byte offset {position}: {exc}") from None


__all__ = [
    "IRHeader",
    "frame",
    "iter_records",
    "pack",
    "read_idx",
    "read_recordio",
    "unpack",
    "write_recordio",
    "write_records",
]
