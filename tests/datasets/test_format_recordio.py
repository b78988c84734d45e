"""MXNet indexed RecordIO: bytes pinned against hand-computed records, continuation parts, errors, round trips."""

from __future__ import annotations

import io
import os
import random
import struct
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from multicloud_cv.datasets import recordio
from multicloud_cv.datasets.folder import read_folder
from multicloud_cv.datasets.formats import detect_format, read_dataset, write_dataset
from multicloud_cv.datasets.lst import write_lst
from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.datasets.recordio import (
    IRHeader,
    check_rec_matches_lst,
    count_records,
    frame,
    iter_records,
    pack,
    read_idx,
    read_recordio,
    resized_size,
    unpack,
    write_recordio,
    write_records,
)
from multicloud_cv.errors import DatasetError
from multicloud_cv.testing import make_tiny_dataset
from multicloud_cv.testing.datasets import assert_same_dataset, make_detection_dataset, make_multilabel_dataset

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


# --- framing at speed: same bytes as dmlc's word-by-word scan -----------------------------------


def frame_reference(data: bytes) -> bytes:
    """dmlc RecordIOWriter::WriteRecord transcribed word by word (the slow, obviously right way)."""
    out, start, size = b"", 0, len(data)
    for i in range(0, (size >> 2) << 2, 4):
        if data[i : i + 4] == MAGIC:
            out += MAGIC + struct.pack("<I", (1 if start == 0 else 2) << 29 | (i - start)) + data[start:i]
            start = i + 4
    out += MAGIC + struct.pack("<I", (3 if start else 0) << 29 | (size - start)) + data[start:]
    return out + b"\0" * ((-size) % 4)


def test_frame_matches_the_word_by_word_writer(tmp_path: Path) -> None:
    rng = random.Random(7)
    for _ in range(200):
        chunks = [rng.choice([MAGIC, MAGIC[:2], b"\x0a\x23", bytes([rng.randrange(256)]), b"abcd"]) for _ in range(40)]
        data = b"".join(chunks)[: rng.randrange(0, 120)]
        assert frame(data) == frame_reference(data), data
    payloads = [(k, MAGIC * k + b"x" * k) for k in range(9)]
    write_records(tmp_path / "m.rec", tmp_path / "m.idx", payloads)
    assert [p for _, p in iter_records(tmp_path / "m.rec")] == [p for _, p in payloads]


def test_packing_writes_the_same_bytes_as_framing_each_payload(tiny: Dataset, tmp_path: Path) -> None:
    magic_image = tmp_path / "data" / "magic.bin"
    magic_image.write_bytes(b"\xff\xd8\xff\xe0" + MAGIC * 3 + b"tail")  # magic words at aligned offsets
    data = replace(tiny, images=[*tiny.images, ImageRecord("magic.bin", labels=(1,))])
    write_recordio(data, tmp_path / "a.rec", tmp_path / "a.idx")
    expected = b"".join(frame(pack(IRHeader(0, float(i.labels[0]), k, 0), data.absolute(i).read_bytes())) for k, i in
                        enumerate(data.images))  # fmt: skip
    assert (tmp_path / "a.rec").read_bytes() == expected
    write_recordio(data, tmp_path / "b.rec", tmp_path / "b.idx", threads=3)
    assert (tmp_path / "b.rec").read_bytes() == expected
    assert (tmp_path / "b.idx").read_text() == (tmp_path / "a.idx").read_text()


# --- streaming and counting -------------------------------------------------------------------


def test_iter_records_and_read_stream_with_bounded_memory(tmp_path: Path) -> None:
    import tracemalloc

    record = 100_000
    write_records(
        tmp_path / "big.rec",
        tmp_path / "big.idx",
        ((k, pack(IRHeader(0, float(k % 3), k, 0), os.urandom(record))) for k in range(200)),
    )
    size = (tmp_path / "big.rec").stat().st_size
    assert size > 20_000_000
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_records(tmp_path / "big.rec"))
        _, peak_iter = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        back = read_recordio(tmp_path / "big.rec", tmp_path / "x", idx_path=tmp_path / "big.idx")
        _, peak_read = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 200 and len(back.images) == 200 and back.task == "classification"
    assert peak_iter < 4 * record, f"iter_records peak {peak_iter} bytes for a {size}-byte file"
    assert peak_read < size // 10, f"read_recordio peak {peak_read} bytes for a {size}-byte file"


def test_count_records_and_check_rec_matches_lst(tiny: Dataset, tmp_path: Path) -> None:
    from multicloud_cv.datasets import lst

    write_recordio(tiny, tmp_path / "t.rec", tmp_path / "t.idx", split="train")
    write_lst(tiny, tmp_path / "t.lst", split="train")
    assert count_records(tmp_path / "t.rec") == 6
    check_rec_matches_lst(tmp_path / "t.rec", tmp_path / "t.lst")
    lst.check_rec_matches_lst(tmp_path / "t.rec", tmp_path / "t.lst")  # where preflight looks for it
    write_lst(tiny, tmp_path / "all.lst")
    with pytest.raises(DatasetError, match=r"t\.rec holds 6 record\(s\) but .*all\.lst lists 9 image\(s\)"):
        check_rec_matches_lst(tmp_path / "t.rec", tmp_path / "all.lst")
    (tmp_path / "t.idx").unlink()  # no .idx: the record headers are walked
    (tmp_path / "t.rec").write_bytes((tmp_path / "t.rec").read_bytes() + frame(MAGIC + b"split" + MAGIC))
    assert count_records(tmp_path / "t.rec") == 7
    with pytest.raises(DatasetError, match=r"holds 7 record\(s\) but .*t\.lst lists 6"):
        check_rec_matches_lst(tmp_path / "t.rec", tmp_path / "t.lst")
    (tmp_path / "e.rec").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"e\.rec: empty \.rec file"):
        check_rec_matches_lst(tmp_path / "e.rec", tmp_path / "t.lst")
    (tmp_path / "c.rec").write_bytes(frame(b"abcd") + b"\0" * 8)
    with pytest.raises(DatasetError, match=r"c\.rec: bad magic 0x00000000 at byte offset 12"):
        count_records(tmp_path / "c.rec")
    (tmp_path / "c.rec").write_bytes(frame(b"abcdefgh")[:-3])
    with pytest.raises(DatasetError, match=r"c\.rec: truncated record at byte offset 0"):
        count_records(tmp_path / "c.rec")


# --- resize and threads -----------------------------------------------------------------------


@pytest.fixture
def photos(tmp_path: Path) -> Dataset:
    """Noisy JPEGs and a PNG of landscape and portrait shapes, one box each."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    root.mkdir()
    images = []
    for k, (size, suffix) in enumerate([((200, 150), ".jpg"), ((90, 160), ".jpg"), ((64, 48), ".png")]):
        width, height = size
        base = np.linspace(0, 255, width * height * 3).reshape(height, width, 3)
        pixels = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype("uint8")
        Image.fromarray(pixels).save(root / f"p{k}{suffix}", quality=90)
        box = BoxAnnotation(k % 2, width * 0.1, height * 0.2, width * 0.6, height * 0.9)
        images.append(ImageRecord(f"p{k}{suffix}", boxes=(box,), split="train"))
    return Dataset(root=root, classes=["a", "b"], images=images, task="detection")


def test_resize_follows_im2rec_and_keeps_normalised_boxes(photos: Dataset, tmp_path: Path) -> None:
    from PIL import Image

    assert resized_size(200, 150, 24) == (32, 24) and resized_size(90, 160, 24) == (24, 42)
    write_recordio(photos, tmp_path / "r.rec", tmp_path / "r.idx", resize=24, quality=90)
    records = [unpack(payload) for _, payload in iter_records(tmp_path / "r.rec")]
    sizes = []
    for (header, data), image in zip(records, photos.images, strict=True):
        with Image.open(io.BytesIO(data)) as opened:
            assert opened.format == "JPEG" and opened.mode == "RGB"
            sizes.append(opened.size)
        with Image.open(photos.absolute(image)) as original:
            width, height = original.size
        box = image.boxes[0]
        expected = (2, 5, box.label, box.x_min / width, box.y_min / height, box.x_max / width, box.y_max / height)
        assert header.label == pytest.approx(expected)
    assert sizes == [(32, 24), (24, 42), (32, 24)]
    back = read_recordio(tmp_path / "r.rec", tmp_path / "x")
    assert back.task == "detection" and (back.images[0].width, back.images[0].height) == (32, 24)
    assert back.images[0].boxes[0].x_max == pytest.approx(0.6 * 32, abs=1e-4)
    write_recordio(photos, tmp_path / "t.rec", tmp_path / "t.idx", resize=24, quality=90, threads=2)
    assert (tmp_path / "t.rec").read_bytes() == (tmp_path / "r.rec").read_bytes()


def test_draft_decoding_stays_close_to_a_full_decode(photos: Dataset, tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    write_recordio(photos, tmp_path / "r.rec", tmp_path / "r.idx", resize=60, quality=95)
    _, data = unpack(next(iter_records(tmp_path / "r.rec"))[1])
    with Image.open(io.BytesIO(data)) as ours, Image.open(photos.absolute(photos.images[0])) as original:
        assert ours.size == (80, 60)
        full = original.convert("RGB").resize((80, 60), Image.Resampling.BILINEAR)
        difference = np.abs(np.asarray(ours, dtype=float) - np.asarray(full, dtype=float)).mean()
    assert difference < 6.0


def test_packing_errors(photos: Dataset, tmp_path: Path) -> None:
    for options, message in [
        ({"resize": 0}, "resize 0 is not a positive"),
        ({"quality": 101}, "JPEG quality 101 is outside"),
        ({"threads": 0}, "threads 0 must be at least 1"),
    ]:
        with pytest.raises(DatasetError, match=message):
            write_recordio(photos, tmp_path / "a.rec", tmp_path / "a.idx", **options)  # type: ignore[arg-type]
    (photos.root / "p0.jpg").write_bytes(b"\xff\xd8\xff broken")
    with pytest.raises(DatasetError, match=r"p0\.jpg: cannot decode the image"):
        write_recordio(photos, tmp_path / "a.rec", tmp_path / "a.idx", resize=24, threads=2)
    (photos.root / "p0.jpg").unlink()
    with pytest.raises(DatasetError, match=r"cannot read image .*p0\.jpg"):
        write_recordio(photos, tmp_path / "a.rec", tmp_path / "a.idx")
    remote = replace(photos, images=[replace(photos.images[1], path="gs://bucket/p1.jpg")])
    with pytest.raises(DatasetError, match="download the images before packing"):
        write_recordio(remote, tmp_path / "a.rec", tmp_path / "a.idx")
    far = replace(photos.images[1], boxes=(BoxAnnotation(0, 0, 0, 500, 10),))
    with pytest.raises(DatasetError, match=r"p1\.jpg: box .* lies outside the 90x160 image"):
        write_recordio(replace(photos, images=[far]), tmp_path / "a.rec", tmp_path / "a.idx")


# --- the format contract ----------------------------------------------------------------------

SPLIT_SIZES = {"train": 3, "validation": 2, "test": 2}


def unassign_last(dataset: Dataset) -> Dataset:
    return replace(dataset, images=[*dataset.images[:-1], replace(dataset.images[-1], split=None)])


def source_dataset(root: Path, task: str) -> Dataset:
    if task == "classification":
        return unassign_last(read_folder(make_tiny_dataset(root, classes=3, train_per_class=2, test_per_class=1)))
    if task == "multilabel":
        return unassign_last(make_multilabel_dataset(root, per_split=SPLIT_SIZES))
    return unassign_last(make_detection_dataset(root, per_split=SPLIT_SIZES))


@pytest.mark.parametrize("task", ["classification", "multilabel", "detection"])
def test_contract_round_trip_every_task(tmp_path: Path, task: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCV_HOME", str(tmp_path / "home"))
    source = source_dataset(tmp_path / "src", task)
    out = write_dataset(source, tmp_path / "out", "recordio")
    stems = sorted({image.split or "dataset" for image in source.images})
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["classes.txt", *(f"{stem}{suffix}" for stem in stems for suffix in (".rec", ".idx", ".lst"))]
    )
    assert recordio.detect(out) and detect_format(out) == "recordio"
    back = read_dataset(out)  # images extracted into the cache under $MCV_HOME
    assert back.source_format == "recordio" and back.root.is_relative_to(tmp_path / "home" / "datasets" / "recordio")
    assert_same_dataset(source, back)
    assert sorted(image.path for image in back.images) == sorted(image.path for image in source.images)
    again = recordio.read(write_dataset(back, tmp_path / "again", "recordio"), image_dir=tmp_path / "x")
    assert again.root == tmp_path / "x"
    assert_same_dataset(source, again)
    for stem in stems:
        check_rec_matches_lst(out / f"{stem}.rec", out / f"{stem}.lst")


def test_contract_single_file_and_names_without_lst(tmp_path: Path) -> None:
    source = source_dataset(tmp_path / "src", "classification")
    out = write_dataset(source, tmp_path / "out", "recordio")
    one = recordio.read(out / "test.rec", image_dir=tmp_path / "one", split="test")
    assert len(one.images) == len(source.split("test")) and {i.split for i in one.images} == {"test"}
    for name in ("train.lst", "test.lst", "dataset.lst"):
        (out / name).unlink()
    (out / "test.rec").rename(out / "fashion_val.rec")
    (out / "test.idx").rename(out / "fashion_val.idx")
    back = recordio.read(out, image_dir=tmp_path / "ids")
    assert {(i.path.split("/")[0], i.split) for i in back.images} == {
        ("train", "train"),
        ("fashion_val", "validation"),
        ("dataset", None),
    }
    assert back.classes == source.classes  # classes.txt still there
    with pytest.raises(DatasetError, match=r"split= applies to one \.rec file"):
        recordio.read(out, split="train")


def test_detect(tmp_path: Path) -> None:
    (tmp_path / "a.rec").write_bytes(b"")
    (tmp_path / "a.lst").write_text("")
    assert recordio.detect(tmp_path / "a.rec") and recordio.detect(tmp_path)
    assert not recordio.detect(tmp_path / "a.lst") and not recordio.detect(tmp_path / "nope.rec")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "train.lst").write_text("")
    assert not recordio.detect(tmp_path / "lists")


def test_reads_a_detection_record_as_mxnet_tools_pack_it(tmp_path: Path) -> None:
    """A record built byte by byte as mx.recordio.pack does for an ImageDetIter label with extra header values."""
    from PIL import Image

    image = io.BytesIO()
    Image.new("RGB", (500, 400), (9, 9, 9)).save(image, "JPEG")
    label = [4, 6, 500, 400, 1, 0.1, 0.2, 0.5, 0.9, 0]  # header width 4 (w, h), object width 6 (difficult)
    payload = struct.pack("IfQQ", len(label), 0.0, 42, 0) + struct.pack(f"{len(label)}f", *label) + image.getvalue()
    raw = MAGIC + struct.pack("<I", len(payload)) + payload + b"\0" * (-len(payload) % 4)
    (tmp_path / "d.rec").write_bytes(raw)
    (tmp_path / "d.idx").write_text("42\t0\n")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    back = recordio.read(tmp_path / "d.rec", image_dir=tmp_path / "x")
    assert back.task == "detection" and back.classes == ["cat", "dog"]
    (only,) = back.images
    assert only.path == "42.jpg" and (only.width, only.height) == (500, 400)
    box = only.boxes[0]
    assert (box.label, box.x_min, box.y_min, box.x_max, box.y_max) == pytest.approx((1, 50, 80, 250, 360))


def test_label_out_of_range_and_pixel_boxes(tmp_path: Path) -> None:
    write_records(tmp_path / "c.rec", tmp_path / "c.idx", [(0, pack(IRHeader(0, 1.0, 0, 0), b"a")),
                                                          (1, pack(IRHeader(0, 4.0, 1, 0), b"b"))])  # fmt: skip
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    with pytest.raises(DatasetError, match=r"c\.rec record id 1 at byte offset 36: class 4 is out of range"):
        recordio.read(tmp_path / "c.rec", image_dir=tmp_path / "x")
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (40, 30)).save(png, "PNG")
    pixels = pack(IRHeader(0, (2, 5, 0, 4, 3, 20, 15), 0, 0), png.getvalue())
    write_records(tmp_path / "p.rec", tmp_path / "p.idx", [(0, pixels)])
    with pytest.raises(DatasetError, match=r"p\.rec record id 0 at byte offset 0: box 4 3 20 15 is not normalised"):
        recordio.read(tmp_path / "p.rec", image_dir=tmp_path / "y")


def test_worker_processes_write_the_same_records_and_report_a_bad_image(
    photos: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from multicloud_cv.datasets import recordio

    write_recordio(photos, tmp_path / "one.rec", tmp_path / "one.idx", resize=24, quality=90, threads=1)
    monkeypatch.setattr(recordio, "PROCESSES_FROM", 1)  # worker processes even for these few images
    write_recordio(photos, tmp_path / "two.rec", tmp_path / "two.idx", resize=24, quality=90, threads=2)
    assert (tmp_path / "two.rec").read_bytes() == (tmp_path / "one.rec").read_bytes()
    assert (tmp_path / "two.idx").read_bytes() == (tmp_path / "one.idx").read_bytes()
    (photos.root / "p1.jpg").write_bytes(b"\xff\xd8\xff broken")
    with pytest.raises(DatasetError, match=r"p1\.jpg: cannot decode the image"):
        write_recordio(photos, tmp_path / "bad.rec", tmp_path / "bad.idx", resize=24, threads=2)
    assert not (tmp_path / "bad.rec").exists() and not (tmp_path / "bad.idx").exists()


def _expected_rec(payloads: list[tuple[int, bytes]]) -> tuple[bytes, str]:
    """The .rec and .idx a one-record-at-a-time writer produces: each payload framed, offsets summed."""
    rec, idx = b"", ""
    for key, payload in payloads:
        idx += f"{key}\t{len(rec)}\n"
        rec += frame(payload)
    return rec, idx


def test_writing_thread_gives_the_same_bytes_over_many_buffers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recordio, "CHUNK_SIZE", 256)  # many hand-overs, the writing thread busy
    rng = random.Random(3)
    payloads = [(k, bytes(rng.randrange(256) for _ in range(rng.randrange(0, 90)))) for k in range(300)]
    payloads[150] = (150, b"abcd" + MAGIC + b"efgh" + MAGIC)  # split by dmlc: re-framed by the writing thread
    payloads[151] = (151, b"ab" + MAGIC + b"cd")  # the word at an unaligned offset: not split
    payloads[200] = (200, b"big!" * 300 + MAGIC)  # larger than a buffer: one of its own, then back to the pool
    payloads[201] = (201, b"z" * 900)
    write_records(tmp_path / "w.rec", tmp_path / "w.idx", payloads)
    rec, idx = _expected_rec(payloads)
    assert (tmp_path / "w.rec").read_bytes() == rec
    assert (tmp_path / "w.idx").read_text() == idx
    assert [p for _, p in iter_records(tmp_path / "w.rec")] == [p for _, p in payloads]


def test_pass_through_reads_files_into_the_buffer(
    tiny: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recordio, "CHUNK_SIZE", 1024)  # smaller than the images: buffers of their own too
    (tmp_path / "data" / "magic.bin").write_bytes(MAGIC * 5 + b"x")
    (tmp_path / "data" / "empty.bin").write_bytes(b"")
    extra = [ImageRecord("magic.bin", labels=(1,)), ImageRecord("empty.bin", labels=(0,))]
    data = replace(tiny, images=[*extra, *tiny.images, *extra])
    assert write_recordio(data, tmp_path / "a.rec", tmp_path / "a.idx") == len(data.images)
    payloads = [(k, pack(IRHeader(0, float(i.labels[0]), k, 0), data.absolute(i).read_bytes())) for k, i in
                enumerate(data.images)]  # fmt: skip
    rec, idx = _expected_rec(payloads)
    assert (tmp_path / "a.rec").read_bytes() == rec
    assert (tmp_path / "a.idx").read_text() == idx


def test_a_failed_write_is_raised_and_leaves_nothing(
    tiny: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recordio, "CHUNK_SIZE", 512)
    calls = []

    def disk_full(self: object, data: memoryview) -> None:
        calls.append(len(data))
        if len(calls) == 3:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(recordio._RecordWriter, "_write_all", disk_full)
    (tmp_path / "old.idx").write_text("0\t0\n")
    with pytest.raises(DatasetError, match=r"cannot write .*old\.rec: \[Errno 28\] No space left on device"):
        write_recordio(tiny, tmp_path / "old.rec", tmp_path / "old.idx")
    assert not (tmp_path / "old.rec").exists() and not (tmp_path / "old.idx").exists()
    missing = replace(tiny, images=[*tiny.images, ImageRecord("gone.png", labels=(0,))])
    monkeypatch.undo()
    with pytest.raises(DatasetError, match=r"cannot read image .*gone\.png"):
        write_recordio(missing, tmp_path / "m.rec", tmp_path / "m.idx")
    assert not (tmp_path / "m.rec").exists()
