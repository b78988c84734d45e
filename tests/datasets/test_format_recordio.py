"""MXNet indexed RecordIO: bytes pinned against hand-computed records, continuation parts, errors, round trips."""

from __future__ import annotations

import struct
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from multicloud_cv.datasets.folder import read_folder
from multicloud_cv.datasets.lst import write_lst
from multicloud_cv.datasets.model import BoxAnnotation, Dataset
from multicloud_cv.datasets.recordio import (
    IRHeader,
    frame,
    iter_records,
    pack,
    read_idx,
    read_recordio,
    unpack,
    write_recordio,
    write_records,
)
from multicloud_cv.errors import DatasetError
from multicloud_cv.testing import make_tiny_dataset

MAGIC = b"\x0a\x23\xd7\xce"  # 0xced7230a little-endian, written out by hand


@pytest.fixture
def tiny(tmp_path: Path) -> Dataset:
    root = make_tiny_dataset(tmp_path / "data", classes=3, train_per_class=2, test_per_class=1, size=8)
    return read_folder(root)


def as_tuples(dataset: Dataset) -> list[tuple[str, tuple[int, ...], str | None]]:
    return sorted((image.path, image.labels, image.split) for image in dataset.images)


# --- byte level -------------------------------------------------------------------------------


def test_pack_matches_mxnet_struct_layout() -> None:
    payload = pack(IRHeader(0, 3.0, 7, 0), b"abcde")
    assert payload == struct.pack("<IfQQ", 0, 3.0, 7, 0) + b"abcde"
    if sys.byteorder == "little":  # MXNet packs with native 'IfQQ'
        assert payload[:24] == struct.pack("IfQQ", 0, 3.0, 7, 0)
    assert payload[:24] == b"\0\0\0\0" + b"\x00\x00\x40\x40" + b"\x07" + b"\0" * 7 + b"\0" * 8
    array = pack(IRHeader(99, (1.0, 0.0, 1.0), 2, 0), b"img")
    assert array == struct.pack("<IfQQ", 3, 0.0, 2, 0) + struct.pack("<3f", 1.0, 0.0, 1.0) + b"img"
    assert unpack(array) == (IRHeader(3, (1.0, 0.0, 1.0), 2, 0), b"img")
    assert unpack(payload) == (IRHeader(0, 3.0, 7, 0), b"abcde")


def test_frame_and_idx_bytes(tmp_path: Path) -> None:
    first = pack(IRHeader(0, 3.0, 0, 0), b"abcde")  # 29 bytes -> 3 bytes of padding
    second = pack(IRHeader(0, 1.0, 1, 0), b"wxyz")  # 28 bytes -> none
    assert frame(first) == MAGIC + b"\x1d\x00\x00\x00" + first + b"\0\0\0"
    assert frame(second) == MAGIC + b"\x1c\x00\x00\x00" + second
    write_records(tmp_path / "a.rec", tmp_path / "a.idx", [(0, first), (1, second)])
    assert (tmp_path / "a.rec").read_bytes() == frame(first) + frame(second)
    assert (tmp_path / "a.idx").read_text() == "0\t0\n1\t40\n"
    assert list(iter_records(tmp_path / "a.rec")) == [(0, first), (40, second)]
    assert read_idx(tmp_path / "a.idx") == [(0, 0), (1, 40)]


def test_magic_inside_data_splits_like_dmlc(tmp_path: Path) -> None:
    data = b"AAAA" + MAGIC + b"BBBBBB"
    expected = MAGIC + struct.pack("<I", 1 << 29 | 4) + b"AAAA" + MAGIC + struct.pack("<I", 3 << 29 | 6) + b"BBBBBB\0\0"
    assert frame(data) == expected
    unaligned = b"AA" + MAGIC + b"BB"  # only 4-byte aligned magic words are split
    assert frame(unaligned) == MAGIC + struct.pack("<I", 8) + unaligned
    (tmp_path / "s.rec").write_bytes(expected + frame(b"next"))
    assert list(iter_records(tmp_path / "s.rec")) == [(0, data), (len(expected), b"next")]


def test_three_part_record_built_by_hand(tmp_path: Path) -> None:
    raw = (
        MAGIC + struct.pack("<I", 1 << 29 | 0)  # start part, empty: data began with the magic
        + MAGIC + struct.pack("<I", 2 << 29 | 4) + b"mid!"
        + MAGIC + struct.pack("<I", 3 << 29 | 1) + b"z\0\0\0"
    )  # fmt: skip
    (tmp_path / "m.rec").write_bytes(raw)
    assert list(iter_records(tmp_path / "m.rec")) == [(0, MAGIC + b"mid!" + MAGIC + b"z")]
    assert frame(MAGIC + b"mid!" + MAGIC + b"z") == raw


def test_corrupt_and_truncated_files(tmp_path: Path) -> None:
    good = frame(b"abcd") + frame(b"efgh")  # 12 bytes each
    path = tmp_path / "c.rec"
    path.write_bytes(good[:12] + b"\xff" + good[13:])
    with pytest.raises(DatasetError, match=r"bad magic 0x\w+ at byte offset 12"):
        list(iter_records(path))
    path.write_bytes(good[:-2])
    with pytest.raises(DatasetError, match="truncated record at byte offset 12: header says 4 bytes, 2 left"):
        list(iter_records(path))
    path.write_bytes(good[:16])
    with pytest.raises(DatasetError, match="truncated at byte offset 12"):
        list(iter_records(path))
    path.write_bytes(MAGIC + struct.pack("<I", 3 << 29 | 4) + b"abcd")
    with pytest.raises(DatasetError, match="continuation flag 3 at byte offset 0"):
        list(iter_records(path))
    path.write_bytes(MAGIC + struct.pack("<I", 1 << 29 | 4) + b"abcd")
    with pytest.raises(DatasetError, match="truncated at byte offset 12"):
        list(iter_records(path))
    (tmp_path / "c.idx").write_text("0\t0\nzero\n")
    with pytest.raises(DatasetError, match=r"c\.idx:2: expected 'key<TAB>byte_offset'"):
        read_idx(tmp_path / "c.idx")
    with pytest.raises(DatasetError, match="shorter than the 24-byte IRHeader"):
        unpack(b"tiny")


# --- datasets ---------------------------------------------------------------------------------


def test_classification_round_trip_keeps_bytes_paths_and_labels(tiny: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "rec"
    for split in ("train", "test"):
        write_recordio(tiny, out / f"{split}.rec", out / f"{split}.idx", split=split)
        write_lst(tiny, out / f"{split}.lst", split=split)
    parts = [
        read_recordio(out / f"{split}.rec", tmp_path / "x", idx_path=out / f"{split}.idx", split=split)
        for split in ("train", "test")
    ]
    back = replace(parts[0], images=parts[0].images + parts[1].images)
    assert back.task == "classification" and back.classes == tiny.classes and back.source_format == "recordio"
    assert as_tuples(back) == as_tuples(tiny)
    for image in tiny.images:
        assert (tmp_path / "x" / image.path).read_bytes() == tiny.absolute(image).read_bytes()
    write_recordio(parts[0], tmp_path / "again.rec", tmp_path / "again.idx")
    assert (tmp_path / "again.rec").read_bytes() == (out / "train.rec").read_bytes()
    assert (tmp_path / "again.idx").read_text() == (out / "train.idx").read_text()
    header, data = unpack(next(iter_records(out / "train.rec"))[1])
    assert header == IRHeader(0, 0.0, 0, 0) and data == tiny.absolute(tiny.split("train")[0]).read_bytes()


def test_without_lst_names_by_id_and_jpeg_reencode(tiny: Dataset, tmp_path: Path) -> None:
    write_recordio(tiny, tmp_path / "t.rec", tmp_path / "t.idx", split="train", encode="jpeg", quality=80)
    back = read_recordio(tmp_path / "t.rec", tmp_path / "x")
    assert [image.path for image in back.images] == [f"{i}.jpg" for i in range(6)]
    assert [image.labels for image in back.images] == [image.labels for image in tiny.split("train")]
    assert back.classes == ["0", "1", "2"]
    assert (tmp_path / "x" / "0.jpg").read_bytes()[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize("label_format", ["multi-hot", "class-id"])
def test_multilabel_round_trip(tiny: Dataset, tmp_path: Path, label_format: str) -> None:
    sets = [(0, 2), (1,), (0, 1, 2), (2,), (0,), (1, 2)]
    if label_format == "multi-hot":
        sets.append(())
    images = [replace(image, labels=sets[i % len(sets)], split=None) for i, image in enumerate(tiny.images)]
    data = replace(tiny, images=images, task="multilabel")
    write_recordio(data, tmp_path / "m.rec", tmp_path / "m.idx", label_format=label_format)
    write_lst(data, tmp_path / "m.lst")
    header, _ = unpack(next(iter_records(tmp_path / "m.rec"))[1])
    assert header.label == ((1.0, 0.0, 1.0) if label_format == "multi-hot" else (0.0, 2.0))
    assert header.flag == len(header.label)
    back = read_recordio(tmp_path / "m.rec", tmp_path / "x", idx_path=tmp_path / "m.idx")
    assert back.task == "multilabel" and back.classes == tiny.classes
    assert as_tuples(back) == as_tuples(data)


def test_detection_round_trip(tiny: Dataset, tmp_path: Path) -> None:
    boxes = (BoxAnnotation(1, 1.0, 2.0, 5.0, 6.0), BoxAnnotation(2, 0.0, 0.0, 8.0, 4.0))
    images = [replace(image, labels=(), boxes=boxes[: 1 + i % 2]) for i, image in enumerate(tiny.images)]
    data = replace(tiny, images=images, task="detection")
    write_recordio(data, tmp_path / "d.rec", tmp_path / "d.idx")
    header, _ = unpack(next(iter_records(tmp_path / "d.rec"))[1])
    assert header.flag == 7
    assert header.label == pytest.approx((2, 5, 1, 1 / 8, 2 / 8, 5 / 8, 6 / 8))
    back = read_recordio(tmp_path / "d.rec", tmp_path / "x")
    assert back.task == "detection" and back.classes == ["0", "1", "2"]
    for original, read in zip(images, back.images, strict=True):
        assert (read.width, read.height) == (8, 8)
        assert [b.label for b in read.boxes] == [b.label for b in original.boxes]
        for a, b in zip(original.boxes, read.boxes, strict=True):
            assert (b.x_min, b.y_min, b.x_max, b.y_max) == pytest.approx((a.x_min, a.y_min, a.x_max, a.y_max))


def test_dataset_errors(tiny: Dataset, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown encode"):
        write_recordio(tiny, tmp_path / "a.rec", tmp_path / "a.idx", encode="png")
    empty = replace(tiny, images=[replace(tiny.images[0], labels=())], task="multilabel")
    with pytest.raises(DatasetError, match="use multi-hot"):
        write_recordio(empty, tmp_path / "a.rec", tmp_path / "a.idx", label_format="class-id")
    write_recordio(tiny, tmp_path / "a.rec", tmp_path / "a.idx")
    (tmp_path / "a.lst").write_text("0\t0\t../../escape.png\n")
    with pytest.raises(DatasetError, match="leaves"):
        read_recordio(tmp_path / "a.rec", tmp_path / "x")
    (tmp_path / "a.lst").unlink()
    (tmp_path / "a.idx").write_text("0\t4\n")
    with pytest.raises(DatasetError, match=r"bad magic \w+ at byte offset 4"):
        read_recordio(tmp_path / "a.rec", tmp_path / "x", idx_path=tmp_path / "a.idx")
