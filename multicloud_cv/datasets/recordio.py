"""MXNet indexed RecordIO (``.rec`` + ``.idx``), the SageMaker built-in algorithms' packed format.

Written by hand because no maintained library without MXNet reads or writes it (MXNet
itself is retired). The layout follows dmlc-core ``include/dmlc/recordio.h`` /
``src/recordio.cc`` and MXNet ``python/mxnet/recordio.py`` (cloud-apis.md §1.9):

* each record: ``uint32 magic 0xced7230a``, ``uint32 lrecord = cflag << 29 | length``,
  ``length`` data bytes, zero padding to a 4-byte boundary (all little-endian);
* ``cflag`` 0 is a whole record. dmlc's writer splits a record wherever the magic word
  occurs at a 4-byte aligned offset of the data: part one has cflag 1, middle parts 2,
  the last part 3, and the magic word itself is dropped; the reader puts it back between
  parts. :func:`frame` and the writers here do the same, so output is byte-identical to
  MXNet's (``tools/im2rec.py --pass-through`` from the same ``.lst`` gives the same
  ``.rec`` and ``.idx``, checked by ``benchmarks/bench_recordio.py``). Records of 2^29
  bytes or more are rejected by dmlc and here; they are never split.
* ``.idx``: one line ``key\\tbyte_offset\\n`` per record, the offset of its first header.
* payload (``pack``/``unpack``): IRHeader ``struct 'IfQQ'`` = ``flag, label, id, id2``
  (24 bytes); when ``flag > 0``, ``flag`` float32 labels follow and ``label`` is 0; then
  the encoded image bytes.

Labels as written by :func:`write_recordio`: classification ``flag=0, label=class``;
multi-label a float32 array, multi-hot over all classes (default, SageMaker's default
format) or the sorted class ids (``label_format="class-id"``), ``flag`` = its length;
detection the im2rec / ``ImageDetIter`` layout ``[2, 5, cls, xmin, ymin, xmax, ymax, ...]``
with coordinates normalised by the original image size. ``id`` is the record's key, 0..n-1.

Packing (:func:`write_recordio`): ``encode="keep"`` stores each file's bytes unchanged
(im2rec ``--pass-through``), read straight into a 4 MiB buffer of framed records. A
writing thread takes each full buffer, looks for the dmlc magic word at every aligned
offset of it at once (one vectorised numpy compare; a record whose data holds it is
re-framed), and writes it while the calling thread reads the next files: reading and
writing overlap on two cores. The ``.idx`` is built in memory; nothing is flushed per record.
``resize=N`` scales the shorter side to N pixels keeping the aspect ratio, with im2rec's
integer size rule, and re-encodes as JPEG at ``quality`` (95, like im2rec). JPEGs are
decoded at a reduced DCT scale first (Pillow ``Image.draft``: 1/2, 1/4 or 1/8 while
staying at least N on both sides), then area-averaged (Pillow ``BOX``, what OpenCV calls
``INTER_AREA``) when shrinking or bilinear when enlarging, ``reducing_gap=2`` for large
non-JPEG sources. EXIF orientation is not applied (pixels as stored, so pixel boxes stay
valid). ``threads=N`` reads, decodes and encodes in N workers while the calling thread
appends the records in dataset order, so the output is the same for any N: worker
processes from :data:`PROCESSES_FROM` images on (Pillow holds the GIL between its C calls,
so N threads keep only about 1.6 cores busy), threads for fewer images. Pass-through
ignores ``threads``: it reads in the calling thread, because a reader pool only adds GIL
hand-offs around each file's read (measured slower).

Reading keeps the dataset path-based: :func:`read_recordio` extracts each image's bytes
into a folder, one record at a time, and returns a :class:`Dataset` rooted there.
:func:`iter_records` gives the raw ``(offset, payload)`` pairs, :func:`unpack` splits a
payload. The file is memory-mapped, never read whole into memory.

Layout read and written by the format contract (:func:`detect`, :func:`read`, :func:`write`)::

    dest/train.rec  dest/train.idx  dest/train.lst     one triple per split, named for the split
    dest/validation.rec ...  dest/test.rec ...
    dest/dataset.rec  dest/dataset.idx  dest/dataset.lst   images with no split
    dest/classes.txt                                   class names in index order

The ``.lst`` beside each ``.rec`` (im2rec's list format, :mod:`multicloud_cv.datasets.lst`,
same labels) maps each record id to the image's path, kept relative to the dataset root
(file names for absolute paths and URIs; made unique), so reading names the extracted
files as they were. Reading a directory reads every ``*.rec`` at its top level, the split
from the file name (``train``, ``validation``/``val``, ``test``, also as the last ``_``
part: ``x_train.rec``; others unassigned), each with the ``.idx`` and ``.lst`` of the same
stem when present. Reading a single ``.rec`` gives every image ``split`` (default ``None``).
Images are extracted into ``image_dir`` (default: a cache folder under
``$MCV_HOME/datasets/recordio`` keyed by the files' paths, sizes and times).

Task on reading: every ``flag == 0`` gives classification; label arrays that all start
with a detection header (``A >= 2, B >= 5``, see :mod:`~multicloud_cv.datasets.lst`) give
detection (boxes scaled back to pixels by the stored image's size, read from its header);
other arrays give multi-label, multi-hot when all arrays have one length and hold only
0/1, else class ids.

:func:`check_rec_matches_lst` is the preflight for a ``.rec`` out of step with its ``.lst``
(records counted from the ``.idx``, else by walking the record headers).
"""

from __future__ import annotations

import io
import logging
import mmap
import os
import queue
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from functools import lru_cache
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple, TypeVar

from multicloud_cv.datasets.lst import (
    ClassNames,
    _resolve_names,
    _whole,
    boxes_from_label,
    check_labels_named,
    classes_used,
    detection_label,
    is_detection_header,
    list_files,
    split_for_name,
    split_groups,
    split_stem,
    write_class_names,
    write_lst,
)
from multicloud_cv.datasets.media import unique_name
from multicloud_cv.datasets.model import SPLITS, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError
from multicloud_cv.workers import process_map

log = logging.getLogger(__name__)

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
IR_FORMAT = "<IfQQ"
IR_SIZE = struct.calcsize(IR_FORMAT)  # 24, same as native 'IfQQ' on little-endian hosts
LENGTH_MASK = (1 << 29) - 1
MAX_RECORD = 1 << 29
ENCODES = ("keep", "jpeg")
#: Bytes of records gathered before the writing thread writes them (see :class:`_RecordWriter`).
CHUNK_SIZE = 4 << 20
_RECORD_HEAD = struct.Struct("<II")
_PADDING = (b"", b"\0", b"\0\0", b"\0\0\0")
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)

_T = TypeVar("_T")
_R = TypeVar("_R")


class IRHeader(NamedTuple):
    """MXNet's image record header; ``label`` is a float, or a tuple of floats when ``flag > 0``."""

    flag: int
    label: float | tuple[float, ...]
    id: int
    id2: int = 0


# --- payloads and framing ------------------------------------------------------------------------


def _header_bytes(label: float | Sequence[float], key: int, key2: int = 0) -> bytes:
    """IRHeader (and float32 label array) bytes: always a multiple of 4 long."""
    if isinstance(label, int | float):
        return struct.pack(IR_FORMAT, 0, float(label), key, key2)
    values = tuple(float(v) for v in label)
    return struct.pack(IR_FORMAT, len(values), 0.0, key, key2) + struct.pack(f"<{len(values)}f", *values)


def pack(header: IRHeader, image: bytes) -> bytes:
    """Like ``mxnet.recordio.pack``: a scalar label gives ``flag=0``; a sequence gives ``flag=len``, ``label=0``."""
    return _header_bytes(header.label, header.id, header.id2) + image


def unpack(payload: bytes) -> tuple[IRHeader, bytes]:
    """Like ``mxnet.recordio.unpack``: the header (label array as a tuple when ``flag > 0``) and the image bytes."""
    if len(payload) < IR_SIZE:
        raise DatasetError(f"record of {len(payload)} bytes is shorter than the {IR_SIZE}-byte IRHeader")
    flag, label, key, key2 = struct.unpack_from(IR_FORMAT, payload)
    if flag > 0:
        if len(payload) - IR_SIZE < 4 * flag:
            raise DatasetError(
                f"record header announces {flag} float labels but only {len(payload) - IR_SIZE} bytes follow"
            )
        labels = struct.unpack_from(f"<{flag}f", payload, IR_SIZE)
        return IRHeader(flag, labels, key, key2), payload[IR_SIZE + 4 * flag :]
    return IRHeader(flag, label, key, key2), payload[IR_SIZE:]


def _aligned_magic(data: bytes) -> list[int]:
    """Offsets of the magic word at 4-byte aligned offsets of ``data`` (vectorised: one compare per word)."""
    np, word, magic = _numpy_magic()
    words = np.frombuffer(data, dtype=word, count=len(data) // 4)
    return [4 * int(position) for position in np.flatnonzero(words == magic)]


@lru_cache(maxsize=1)
def _numpy_magic() -> tuple[Any, Any, Any]:
    """numpy, the little-endian uint32 dtype and the magic as its scalar (numpy is imported when first needed)."""
    import numpy as np

    return np, np.dtype("<u4"), np.uint32(MAGIC)


def frame(data: bytes) -> bytes:
    """Frame one record exactly as dmlc ``RecordIOWriter::WriteRecord`` does (splitting on aligned magic)."""
    size = len(data)
    if size >= MAX_RECORD:
        raise DatasetError(f"record of {size} bytes is too large; RecordIO records must be under 2^29 bytes")
    out = bytearray()
    start = 0
    for position in _aligned_magic(data):
        out += MAGIC_BYTES + struct.pack("<I", (1 if start == 0 else 2) << 29 | (position - start))
        out += data[start:position]
        start = position + 4
    out += MAGIC_BYTES + struct.pack("<I", (3 if start else 0) << 29 | (size - start)) + data[start:]
    out += b"\0" * ((-size) % 4)
    return bytes(out)


# --- reading records -----------------------------------------------------------------------------


@contextmanager
def _mapped(rec_path: Path) -> Iterator[mmap.mmap | bytes]:
    """The ``.rec`` memory-mapped read-only (``b""`` when empty); pages are read as touched, never all at once."""
    try:
        handle = open(rec_path, "rb")  # noqa: SIM115 - closed below, after the caller's block
    except OSError as exc:
        raise DatasetError(f"cannot read {rec_path}: {exc}") from exc
    with handle:
        if os.fstat(handle.fileno()).st_size == 0:
            yield b""
            return
        try:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot map {rec_path} into memory: {exc}") from exc
        with mapped:
            yield mapped


def iter_records(rec_path: Path, offset: int = 0, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield ``(byte offset, payload)`` for each record from ``offset``, reassembling cflag 1/2/3 parts.

    Streams: the file is memory-mapped and only the current record is copied out. Stops
    after ``limit`` records when given. Raises :class:`DatasetError` naming the byte
    offset for a bad magic word, a truncated record or a broken continuation sequence.
    """
    with _mapped(Path(rec_path)) as data:
        yield from _records(data, Path(rec_path), offset, limit)


def _records(data: mmap.mmap | bytes, rec_path: Path, offset: int, limit: int | None) -> Iterator[tuple[int, bytes]]:
    position = offset
    count = 0
    end = len(data)
    while position < end and (limit is None or count < limit):
        start = position
        parts: list[bytes] = []
        while True:
            if end - position < 8:
                raise DatasetError(
                    f"{rec_path}: truncated at byte offset {position}: {end - position} byte(s) where an "
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
            if body + length > end:
                raise DatasetError(
                    f"{rec_path}: truncated record at byte offset {position}: header says {length} bytes, "
                    f"{end - body} left; the file was cut short, write it again"
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
        yield start, parts[0] if len(parts) == 1 else MAGIC_BYTES.join(parts)
        count += 1


def read_idx(idx_path: Path) -> list[tuple[int, int]]:
    """Read an ``.idx`` file as ``(key, byte offset)`` pairs in file order; errors name ``file:line``."""
    try:
        text = Path(idx_path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
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


def count_records(rec_path: Path, idx_path: Path | None = None) -> int:
    """How many records ``rec_path`` holds: the ``.idx`` lines when there is one, else by walking the headers.

    The walk reads 8 bytes per record part and seeks over the payloads (nothing is read
    into memory); it raises :class:`DatasetError` naming the byte offset of a bad magic
    word or a truncated record. ``idx_path`` defaults to the ``.idx`` beside ``rec_path``.
    """
    rec_path = Path(rec_path)
    idx = Path(idx_path) if idx_path is not None else rec_path.with_suffix(".idx")
    if idx.is_file():
        return len(read_idx(idx))
    try:
        with open(rec_path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            position = count = 0
            while position < size:
                head = handle.read(8)
                if len(head) < 8:
                    raise DatasetError(f"{rec_path}: truncated at byte offset {position}; write the file again")
                magic, lrecord = struct.unpack("<II", head)
                if magic != MAGIC:
                    raise DatasetError(
                        f"{rec_path}: bad magic 0x{magic:08x} at byte offset {position}; not RecordIO or corrupt"
                    )
                length = lrecord & LENGTH_MASK
                position += 8 + length + (-length) % 4
                if position > size + (-length) % 4:
                    raise DatasetError(f"{rec_path}: truncated record at byte offset {position - 8 - length}")
                count += (lrecord >> 29) in (0, 3)
                handle.seek(position)
    except OSError as exc:
        raise DatasetError(f"cannot read {rec_path}: {exc}") from exc
    return count


def check_rec_matches_lst(rec: Path, lst: Path) -> None:
    """Preflight: raise :class:`DatasetError` when ``rec`` is empty or its record count differs from ``lst``'s lines.

    Records are counted with :func:`count_records` (the ``.idx`` beside ``rec`` when there
    is one); ``.lst`` lines are the non-blank ones.
    """
    rec, lst = Path(rec), Path(lst)
    records = count_records(rec)
    try:
        with open(lst, encoding="utf-8") as handle:
            lines = sum(1 for line in handle if line.strip())
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {lst}: {exc}") from exc
    if records == 0:
        raise DatasetError(
            f"{rec}: empty .rec file (no records); SageMaker refuses it ('Empty .rec file'): pack the images again"
        )
    if records != lines:
        raise DatasetError(
            f"{rec} holds {records} record(s) but {lst} lists {lines} image(s); the .rec and its .lst are out of "
            "step: pack the .rec again from this .lst"
        )


# --- writing -------------------------------------------------------------------------------------


class _RecordWriter:
    """Appends framed records to a ``.rec`` through a writing thread; the ``.idx`` lines stay in memory.

    Records are laid out in :data:`CHUNK_SIZE` buffers in this thread: a file's bytes are read
    straight into the buffer (:meth:`append_file`, one copy) or copied there (:meth:`append`).
    A full buffer goes to a writing thread that looks for the magic word at every aligned
    offset of the buffer at once (one vectorised compare; dmlc splits a record wherever its
    data holds the word, about once in 2^32 words), re-frames such a record with
    :func:`frame`, and writes the buffer with ``os.write`` while this thread fills the next:
    both threads spend their time in system calls or numpy, which release the GIL, so
    reading and writing overlap on two cores. Three buffers at most are in use.

    Use as a context manager. The ``.idx`` is written when the block ends without an
    exception; when it ends with one (or the writing failed) the partial ``.rec`` is removed,
    and an earlier ``.idx`` of that name too (it would not match), so a failed packing leaves
    nothing half-written. A writing error is raised in this thread at the next full buffer
    or at the end.
    """

    def __init__(self, rec_path: Path, idx_path: Path) -> None:
        self.rec_path, self.idx_path = Path(rec_path), Path(idx_path)
        self.rec_path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.rec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666)
        self.index: list[str] = []  # written by the writing thread, read after it is joined
        self.offset = 0  # bytes written to the .rec (idem)
        self._buffer = bytearray(CHUNK_SIZE)
        self._view = memoryview(self._buffer)
        self._used = 0
        self._records: list[tuple[int, int]] = []  # (key, start in the buffer) of the buffer's records
        self._spare: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._spares = 0
        self._parked: bytearray | None = None
        self._full: queue.SimpleQueue[tuple[bytearray, int, list[tuple[int, int]]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._appended = 0

    def __enter__(self) -> _RecordWriter:
        return self

    def _reserve(self, total: int) -> int:
        """Room for ``total`` bytes in the current buffer (handing the full one over first); return its start."""
        if self._used + total > len(self._buffer):
            self._hand_over()
            if total > len(self._buffer):  # a record larger than a buffer gets one of its own
                self._parked = self._buffer  # empty; back in use once the large record is handed over
                self._buffer = bytearray(total)
                self._view = memoryview(self._buffer)
        start = self._used
        self._used += total
        return start

    def append(self, key: int, head: bytes, data: bytes | memoryview) -> None:
        """Append one record (``head`` a multiple of 4 bytes long, then ``data``) under ``key``."""
        size = len(head) + len(data)
        if size >= MAX_RECORD:
            raise DatasetError(f"record of {size} bytes is too large; RecordIO records must be under 2^29 bytes")
        pad = -size % 4
        start = self._reserve(8 + size + pad)
        _RECORD_HEAD.pack_into(self._buffer, start, MAGIC, size)
        body = start + 8 + len(head)
        self._view[start + 8 : body] = head
        self._view[body : body + len(data)] = data
        self._view[body + len(data) : body + len(data) + pad] = _PADDING[pad]
        self._records.append((key, start))
        self._appended += 1

    def append_file(self, key: int, head: bytes, path: str) -> None:
        """Append one record of ``head`` and the bytes of the file at ``path``, read straight into the buffer.

        The file's size is taken from ``fstat``; a file that shrinks meanwhile gives the bytes it had.
        """
        try:
            fd = os.open(path, _READ_FLAGS)
        except OSError as exc:
            raise DatasetError(f"cannot read image {path}: {exc}") from exc
        try:
            length = os.fstat(fd).st_size
            size = len(head) + length
            if size >= MAX_RECORD:
                raise DatasetError(f"{path}: {length} bytes is too large; RecordIO records must be under 2^29 bytes")
            start = self._reserve(8 + size + (-size % 4))
            view = self._view
            body = start + 8 + len(head)
            view[start + 8 : body] = head
            got = os.readv(fd, [view[body : body + length]])
            while got < length and (more := os.readv(fd, [view[body + got : body + length]])):
                got += more
        except OSError as exc:
            raise DatasetError(f"cannot read image {path}: {exc}") from exc
        finally:
            os.close(fd)
        if got < length:
            size = len(head) + got
            self._used = body + got + (-size % 4)
        _RECORD_HEAD.pack_into(self._buffer, start, MAGIC, size)
        view[body + got : self._used] = _PADDING[-size % 4]
        self._records.append((key, start))
        self._appended += 1

    def _hand_over(self) -> None:
        """Give the current buffer to the writing thread (started on first use) and take a free one."""
        if self._error is not None:
            raise self._error
        if not self._records:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, name="mcv-recordio-writer", daemon=True)
            self._thread.start()
        self._full.put((self._buffer, self._used, self._records))
        if self._parked is not None:
            self._buffer, self._parked = self._parked, None
        elif self._spares < 2:  # three buffers in all: one filling, one writing, one ready
            self._spares += 1
            self._buffer = bytearray(CHUNK_SIZE)
        else:
            self._buffer = self._spare.get()
        self._view = memoryview(self._buffer)
        self._used = 0
        self._records = []

    def _drain(self) -> None:
        """The writing thread: write each handed-over buffer until ``None``; keep the first error."""
        while (item := self._full.get()) is not None:
            buffer, used, records = item
            if self._error is None:
                try:
                    self._write(buffer, used, records)
                except BaseException as exc:  # raised again in the appending thread
                    self._error = (
                        exc if isinstance(exc, DatasetError) else DatasetError(f"cannot write {self.rec_path}: {exc}")
                    )
            if len(buffer) == CHUNK_SIZE:
                self._spare.put(buffer)

    def _write(self, buffer: bytearray, used: int, records: list[tuple[int, int]]) -> None:
        """Write one buffer's records, re-framing any whose data holds the magic word at an aligned offset."""
        np, word, magic = _numpy_magic()
        hits = np.flatnonzero(np.frombuffer(buffer, dtype=word, count=used // 4) == magic)
        view = memoryview(buffer)
        if len(hits) == len(records):  # only the record heads: every record starts with the word
            self.index.extend(f"{key}\t{self.offset + start}\n" for key, start in records)
            self._write_all(view[:used])
            return
        inside = sorted(set((4 * hits).tolist()) - {start for _, start in records})
        ends = [start for _, start in records[1:]] + [used]
        for (key, start), end in zip(records, ends, strict=True):
            self.index.append(f"{key}\t{self.offset}\n")
            if any(start < position < end for position in inside):
                size = _RECORD_HEAD.unpack_from(buffer, start)[1] & LENGTH_MASK
                self._write_all(memoryview(frame(bytes(view[start + 8 : start + 8 + size]))))
            else:
                self._write_all(view[start:end])

    def _write_all(self, data: memoryview) -> None:
        written = 0
        while written < len(data):
            written += os.write(self.fd, data[written:])
        self.offset += len(data)

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        problem: BaseException | None = None
        try:
            if error is None:
                if self._thread is None:  # everything fitted in one buffer: write it here
                    self._write(self._buffer, self._used, self._records)
                else:
                    self._hand_over()
        except OSError as exc:
            problem = DatasetError(f"cannot write {self.rec_path}: {exc}")
        except BaseException as exc:
            problem = exc
        finally:
            if self._thread is not None:
                self._full.put(None)
                self._thread.join()
            os.close(self.fd)
        problem = problem or self._error
        if error is None and problem is None:
            self.idx_path.write_text("".join(self.index), encoding="utf-8")
            return
        self.rec_path.unlink(missing_ok=True)
        self.idx_path.unlink(missing_ok=True)
        if error is None and problem is not None:
            raise problem

    @property
    def count(self) -> int:
        """Records appended so far."""
        return self._appended


def write_records(rec_path: Path, idx_path: Path, payloads: Iterable[tuple[int, bytes]]) -> int:
    """Write ``(key, payload)`` records like ``MXIndexedRecordIO.write_idx``: ``.rec`` plus ``key\\toffset`` lines.

    Streams through one buffered file; returns how many records were written.
    """
    with _RecordWriter(rec_path, idx_path) as writer:
        for key, payload in payloads:
            writer.append(key, b"", payload)
    return writer.count


def resized_size(width: int, height: int, shorter: int) -> tuple[int, int]:
    """im2rec's ``--resize`` rule: the shorter side becomes ``shorter``, the other scales (integer division)."""
    if height > width:
        return shorter, height * shorter // width
    return width * shorter // height, shorter


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb", buffering=0) as handle:
            return handle.readall()
    except OSError as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from exc


def _transcode(path: str, quality: int, resize: int | None) -> tuple[bytes, tuple[int, int]]:
    """Decode ``path`` (at a reduced JPEG scale when resizing), resize, encode RGB JPEG; return bytes, source size."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            source = image.size
            if resize:
                target = resized_size(*source, resize)
                if image.format == "JPEG":
                    image.draft("RGB", target)  # DCT-domain downscale while decoding, never below target
                out = image.convert("RGB") if image.mode != "RGB" else image
                if out.size != target:
                    shrink = target[0] <= out.width and target[1] <= out.height
                    resample = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
                    out = out.resize(target, resample, reducing_gap=2.0)
            else:
                out = image.convert("RGB") if image.mode != "RGB" else image
            buffer = io.BytesIO()
            out.save(buffer, "JPEG", quality=quality)
    except FileNotFoundError as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from exc
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot decode the image ({exc}); fix or remove the file") from exc
    return buffer.getvalue(), source


def _transcode_task(task: tuple[str, int, int | None]) -> tuple[bytes, tuple[int, int]]:
    """:func:`_transcode` of ``(path, quality, resize)``: what a worker process runs."""
    return _transcode(*task)


def _image_size(data: bytes, where: str) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:  # reads the header only, no decode
            return im.size
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"{where}: cannot read the image size: {exc}") from exc


def _ordered_map(function: Callable[[_T], _R], items: Sequence[_T], threads: int) -> Iterator[_R]:
    """``map(function, items)`` in order, computed by ``threads`` threads with a bounded look-ahead.

    At most 4 items a thread are in flight, which bounds the memory held when the
    consumer is slower than the workers.
    """
    if threads <= 1:
        yield from map(function, items)
        return
    ahead = threads * 4
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="recordio") as pool:
        pending: deque[Future[_R]] = deque(pool.submit(function, item) for item in islice(items, ahead))
        following = islice(items, ahead, None)
        try:
            while pending:
                result = pending.popleft().result()
                for item in islice(following, 1):
                    pending.append(pool.submit(function, item))
                yield result
        finally:
            for future in pending:
                future.cancel()


def _label(dataset: Dataset, image: ImageRecord, label_format: str) -> float | tuple[float, ...] | None:
    """The record label of a classification or multi-label image (detection: ``None``, needs the size)."""
    if dataset.task == "classification":
        if len(image.labels) != 1:
            raise DatasetError(f"{image.path}: a classification image needs exactly one label, has {image.labels}")
        return float(image.labels[0])
    if dataset.task == "multilabel":
        if label_format == "multi-hot":
            return tuple(1.0 if i in image.labels else 0.0 for i in range(len(dataset.classes)))
        if not image.labels:
            raise DatasetError(f"{image.path}: no labels; an empty class-id list reads back as class 0, use multi-hot")
        return tuple(float(i) for i in sorted(set(image.labels)))
    if dataset.task == "detection":
        return None
    raise DatasetError(f"unknown dataset task '{dataset.task}'")


#: Re-encoding this many images or more with ``threads`` > 1 runs in worker processes (each starts in ~0.2 s).
PROCESSES_FROM = 256


def _detection_label(image: ImageRecord, source: tuple[int, int] | None) -> tuple[float, ...]:
    """The im2rec detection label of ``image``, normalised by its stored size, else by ``source`` (its pixels)."""
    if image.width and image.height:
        return tuple(detection_label(image, image.width, image.height))
    assert source is not None, "an image without a stored size needs the size of its pixels"
    return tuple(detection_label(image, *source))


def write_recordio(
    dataset: Dataset,
    rec_path: Path,
    idx_path: Path,
    split: str | None = None,
    encode: str = "keep",
    quality: int = 95,
    label_format: str = "multi-hot",
    resize: int | None = None,
    threads: int = 1,
) -> int:
    """Write the images of ``split`` (all when ``None``) as indexed RecordIO; return how many records.

    ``encode="keep"`` stores each file's bytes unchanged; ``"jpeg"`` re-encodes to RGB JPEG
    at ``quality``. ``resize=N`` scales the shorter side to N px (im2rec's rule, aspect
    kept) and re-encodes as JPEG at ``quality`` whatever ``encode`` says. ``threads`` > 1
    decodes and encodes in that many workers when re-encoding: worker processes
    (:func:`multicloud_cv.workers.process_map`) from :data:`PROCESSES_FROM` images on, since
    Pillow holds the GIL between its C calls and threads keep about 1.6 cores busy whatever
    their number; threads below that. Pass-through reads each file straight into the
    record buffer in the calling thread, while a writing thread writes the previous buffer.
    Records are written in dataset order either way, from this process.
    Keys and IRHeader ids are 0..n-1 in dataset order. Paths, class names and splits are
    not stored in RecordIO: :func:`write` puts a ``.lst`` (same stem) and ``classes.txt``
    beside it for :func:`read_recordio`.
    """
    if encode not in ENCODES:
        raise DatasetError(f"unknown encode '{encode}'; use keep or jpeg")
    if label_format not in ("multi-hot", "class-id"):
        raise DatasetError(f"unknown label format '{label_format}'; use multi-hot or class-id")
    if resize is not None and resize < 1:
        raise DatasetError(f"resize {resize} is not a positive number of pixels")
    if not 1 <= quality <= 100:
        raise DatasetError(f"JPEG quality {quality} is outside 1..100")
    if threads < 1:
        raise DatasetError(f"threads {threads} must be at least 1")
    images = dataset.images if split is None else dataset.split(split)
    from multicloud_cv.datasets.media import is_uri

    remote = next((image for image in images if is_uri(image.path)), None)
    if remote is not None:
        raise DatasetError(f"{remote.path}: RecordIO packs the image bytes; download the images before packing")
    labels = [_label(dataset, image, label_format) for image in images]  # label errors before any work
    root = str(dataset.root)
    paths = [os.path.join(root, image.path) for image in images]  # absolute stays absolute; pathlib: ~20 us each

    with _RecordWriter(rec_path, idx_path) as writer:
        if encode == "keep" and resize is None:  # pass-through, in this thread: file bytes straight into the .rec
            for key, (image, label, path) in enumerate(zip(images, labels, paths, strict=True)):
                if label is not None or (image.width and image.height):
                    head = _header_bytes(_detection_label(image, None) if label is None else label, key)
                    writer.append_file(key, head, path)
                else:  # detection without a stored size: the bytes are needed first, for the header
                    data = _read_file(path)
                    head = _header_bytes(_detection_label(image, _image_size(data, image.path)), key)
                    writer.append(key, head, data)
            log.debug("packed %d records (%d bytes) into %s", writer.count, writer.offset, rec_path)
            return writer.count
        loaded: Iterable[tuple[bytes, tuple[int, int]]]
        if threads > 1 and len(images) >= PROCESSES_FROM:
            loaded = process_map(_transcode_task, ((path, quality, resize) for path in paths), processes=threads)
        else:
            loaded = _ordered_map(lambda path: _transcode(path, quality, resize), paths, threads)
        for key, (image, label, (data, source)) in enumerate(zip(images, labels, loaded, strict=True)):
            if label is None:  # detection: normalise by the original image size
                label = _detection_label(image, source)
            writer.append(key, _header_bytes(label, key), data)
    log.debug("packed %d records (%d bytes) into %s", writer.count, writer.offset, rec_path)
    return writer.count


# --- reading datasets ------------------------------------------------------------------------------


class _Entry(NamedTuple):
    where: str
    header: IRHeader
    path: str
    split: str | None
    size: tuple[int, int] | None


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


def _lst_names(lst: Path) -> dict[int, str]:
    """``{index: path}`` from a ``.lst``, streamed line by line."""
    names: dict[int, str] = {}
    try:
        with open(lst, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                cells = line.rstrip("\r\n").split("\t")
                if len(cells) < 3 or not cells[0].strip().lstrip("-").isdigit():
                    raise DatasetError(f"{lst}:{number}: expected 'index<TAB>label...<TAB>path'")
                names[int(cells[0])] = cells[-1].strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {lst}: {exc}") from exc
    return names


def _unpack_at(payload: bytes, rec_path: Path, position: int) -> tuple[IRHeader, bytes]:
    try:
        return unpack(payload)
    except DatasetError as exc:
        raise DatasetError(f"{rec_path}: record at byte offset {position}: {exc}") from None


def _extract(
    rec_path: Path,
    image_dir: Path,
    idx_path: Path | None,
    lst_path: Path | None,
    split: str | None,
    taken: set[str],
    prefix: str,
) -> list[_Entry]:
    """Write each record's image under ``image_dir`` as it is read; return the headers and paths."""
    names = _lst_names(lst_path) if lst_path is not None else {}
    base = image_dir.resolve()
    entries: list[_Entry] = []
    with _mapped(rec_path) as data:
        if idx_path is not None:
            where_from: Iterable[tuple[int, bytes]] = (
                record
                for key, offset in read_idx(idx_path)
                for record in _records(data, rec_path, _check_offset(idx_path, key, offset, len(data), rec_path), 1)
            )
        else:
            where_from = _records(data, rec_path, 0, None)
        for position, payload in where_from:
            header, image = _unpack_at(payload, rec_path, position)
            where = f"{rec_path} record id {header.id} at byte offset {position}"
            relative = names.get(header.id) or f"{prefix}{header.id}{_suffix(image)}"
            target = (image_dir / relative).resolve()
            if not target.is_relative_to(base) or target == base:
                raise DatasetError(f"{where}: image path {relative} leaves {image_dir}; fix the .lst")
            relative = unique_name(target.relative_to(base).as_posix(), taken)
            target = base / relative
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(image)
            except OSError as exc:
                raise DatasetError(f"{where}: cannot write the image to {target}: {exc}") from exc
            size = None
            if isinstance(header.label, tuple) and is_detection_header(header.label):
                size = _image_size(image, where)
            entries.append(_Entry(where, header, relative, split, size))
    return entries


def _check_offset(idx_path: Path, key: int, offset: int, size: int, rec_path: Path) -> int:
    if not 0 <= offset < size:
        raise DatasetError(f"{idx_path}: key {key} points at byte offset {offset}, outside {rec_path}")
    return offset


def _decode(entries: list[_Entry], names: list[str] | None, source: Path, root: Path) -> Dataset:
    """The dataset of extracted records, by the task rule of the module docstring."""
    arrays = [entry.header.label for entry in entries if isinstance(entry.header.label, tuple)]
    if not arrays:
        task = "classification"
    elif len(arrays) == len(entries) and all(is_detection_header(array) for array in arrays):
        task = "detection"
    else:
        task = "multilabel"
    multi_hot = (
        task == "multilabel"
        and len(arrays) == len(entries)
        and len({len(array) for array in arrays}) == 1
        and all(value in (0.0, 1.0) for array in arrays for value in array)
    )
    images: list[ImageRecord] = []
    for entry in entries:
        label, where = entry.header.label, entry.where
        if task == "classification":
            if isinstance(label, tuple) or not _whole(label):
                raise DatasetError(f"{where}: class label {label} is not a whole number >= 0")
            images.append(ImageRecord(path=entry.path, labels=(int(label),), split=entry.split))
        elif task == "multilabel":
            values = label if isinstance(label, tuple) else (label,)
            if multi_hot:
                ids = tuple(i for i, v in enumerate(values) if v == 1.0)
            else:
                if not all(_whole(v) for v in values):
                    raise DatasetError(f"{where}: class ids {values} are not whole numbers >= 0")
                ids = tuple(sorted({int(v) for v in values}))
            images.append(ImageRecord(path=entry.path, labels=ids, split=entry.split))
        else:
            assert isinstance(label, tuple) and entry.size is not None
            width, height = entry.size
            boxes = boxes_from_label(label, width, height, where)
            images.append(ImageRecord(entry.path, boxes=boxes, split=entry.split, width=width, height=height))

    if multi_hot:
        count = len(arrays[0])
        if names is not None and count != len(names):
            raise DatasetError(
                f"{source}: labels need {count} classes but {len(names)} class names were given; "
                "multi-hot labels need one value per class: fix classes.txt"
            )
    elif names is not None:
        check_labels_named(((entry.where, image) for entry, image in zip(entries, images, strict=True)), names)
    if names is None:
        names = [str(i) for i in range(len(arrays[0]) if multi_hot else classes_used(images))]
    return Dataset(root=root, classes=names, images=images, task=task, source_format="recordio")


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
    ``rec_path``, else ``"0"``..``"N-1"``. The task follows the rule of the module
    docstring. Every image gets ``split``. Records are streamed: memory stays bounded by
    the largest record, whatever the file size.
    """
    rec_path, image_dir = Path(rec_path), Path(image_dir)
    if split is not None and split not in SPLITS:
        raise DatasetError(f"unknown split '{split}'; use {', '.join(SPLITS)} or None")
    lst = Path(lst_path) if lst_path is not None else rec_path.with_suffix(".lst")
    if lst_path is not None and not lst.is_file():
        raise DatasetError(f"list file {lst} does not exist")
    image_dir.mkdir(parents=True, exist_ok=True)
    entries = _extract(
        rec_path,
        image_dir,
        Path(idx_path) if idx_path is not None else None,
        lst if lst.is_file() else None,
        split,
        set(),
        "",
    )
    return _decode(entries, _resolve_names(classes, rec_path), rec_path, image_dir)


def read_recordio_dir(directory: Path, image_dir: Path, classes: ClassNames = None) -> Dataset:
    """Read every ``*.rec`` at the top of ``directory`` as one dataset (layout of the module docstring)."""
    directory, image_dir = Path(directory), Path(image_dir)
    files = list_files(directory, ".rec")
    if not files:
        raise DatasetError(f"{directory} holds no .rec file; write train.rec, validation.rec, ... or pass the file")
    image_dir.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    entries: list[_Entry] = []
    for rec in files:
        idx, lst = rec.with_suffix(".idx"), rec.with_suffix(".lst")
        entries += _extract(
            rec,
            image_dir,
            idx if idx.is_file() else None,
            lst if lst.is_file() else None,
            split_for_name(rec),
            taken,
            f"{rec.stem}/",
        )
    return _decode(entries, _resolve_names(classes, directory / "classes.txt"), directory, image_dir)


def _cache_dir(path: Path) -> Path:
    """A cache folder for the images of ``path``, keyed by its ``.rec`` files' paths, sizes and times."""
    import hashlib

    from multicloud_cv.runs import mcv_home

    digest = hashlib.sha256()
    for rec in [path] if path.is_file() else list_files(path, ".rec"):
        stat = rec.stat()
        digest.update(f"{rec.resolve()}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return mcv_home() / "datasets" / "recordio" / f"{path.stem}-{digest.hexdigest()[:12]}"


# --- the format contract ---------------------------------------------------------------------------


def detect(path: Path) -> bool:
    """A ``.rec`` file, or a directory with ``*.rec`` at its top level."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() == ".rec"
    return path.is_dir() and any(child.suffix.lower() == ".rec" for child in path.iterdir())


def read(
    path: Path,
    *,
    image_dir: Path | None = None,
    classes: ClassNames = None,
    split: str | None = None,
) -> Dataset:
    """Read a ``.rec`` file (with its ``.idx`` and ``.lst`` beside it when present) or a directory of them.

    Images are extracted into ``image_dir`` (default: a cache folder under
    ``$MCV_HOME/datasets/recordio``). ``split`` applies to a single file only.
    """
    path = Path(path)
    target = Path(image_dir) if image_dir is not None else _cache_dir(path)
    if path.is_dir():
        if split is not None:
            raise DatasetError(f"{path}: split= applies to one .rec file; a directory's splits come from file names")
        return read_recordio_dir(path, target, classes)
    idx = path.with_suffix(".idx")
    return read_recordio(path, target, idx_path=idx if idx.is_file() else None, split=split, classes=classes)


def _record_names(dataset: Dataset) -> dict[int, str]:
    """``{id(image): name}``: relative paths kept, absolute paths and URIs by file name; made unique."""
    from multicloud_cv.datasets.media import is_uri

    taken: set[str] = set()
    names: dict[int, str] = {}
    for image in dataset.images:
        path = PurePosixPath(Path(image.path).as_posix())
        keep = not is_uri(image.path) and not path.is_absolute() and ".." not in path.parts
        names[id(image)] = unique_name(str(path) if keep else path.name, taken)
    return names


def write(
    dataset: Dataset,
    dest: Path,
    *,
    encode: str = "keep",
    quality: int = 95,
    resize: int | None = None,
    threads: int = 1,
    label_format: str = "multi-hot",
) -> None:
    """Write the layout of the module docstring into ``dest``; options as :func:`write_recordio`."""
    from multicloud_cv.datasets.media import image_size

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    names = _record_names(dataset)
    for split, images in split_groups(dataset) or [(None, [])]:
        stem = split_stem(split)
        part = replace(dataset, images=images)
        write_recordio(
            part,
            dest / f"{stem}.rec",
            dest / f"{stem}.idx",
            encode=encode,
            quality=quality,
            label_format=label_format,
            resize=resize,
            threads=threads,
        )
        listed: list[ImageRecord] = []
        for image in images:
            named = replace(image, path=names[id(image)])
            if dataset.task == "detection" and not (image.width and image.height):
                width, height = image_size(dataset, image)
                named = replace(named, width=width, height=height)
            listed.append(named)
        write_lst(replace(part, images=listed), dest / f"{stem}.lst", label_format=label_format, write_classes=False)
    write_class_names(dataset, dest)


__all__ = [
    "IRHeader",
    "check_rec_matches_lst",
    "count_records",
    "detect",
    "frame",
    "iter_records",
    "pack",
    "read",
    "read_idx",
    "read_recordio",
    "read_recordio_dir",
    "resized_size",
    "unpack",
    "write",
    "write_recordio",
    "write_records",
]
