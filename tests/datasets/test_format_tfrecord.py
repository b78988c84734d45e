"""TFRecord for the TF OD API: framing checked by an independent parser, label maps, round trips, errors."""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import replace
from pathlib import Path

import pytest

from multicloud_cv.datasets import tfrecord
from multicloud_cv.datasets.formats import detect_format, read_dataset, write_dataset
from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError
from multicloud_cv.testing.datasets import assert_same_dataset, make_detection_dataset

pytest.importorskip("tfrecord")
from tfrecord import example_pb2

SPLITS = {"train": 4, "validation": 2, "test": 2}


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), bit-reflected, written out independently of the module under test."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def parse_records(raw: bytes) -> list[bytes]:
    """A tiny TFRecord reader: uint64 length, masked crc of it, data, masked crc of the data (little-endian)."""
    records, pos = [], 0
    while pos < len(raw):
        (length,) = struct.unpack_from("<Q", raw, pos)
        assert struct.unpack_from("<I", raw, pos + 8)[0] == masked(raw[pos : pos + 8])
        data = raw[pos + 12 : pos + 12 + length]
        assert len(data) == length
        assert struct.unpack_from("<I", raw, pos + 12 + length)[0] == masked(data)
        records.append(data)
        pos += 12 + length + 4
    return records


def frame(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked(length)) + data + struct.pack("<I", masked(data))


@pytest.fixture
def detection(tmp_path: Path) -> Dataset:
    data = make_detection_dataset(tmp_path / "src", per_split=SPLITS)
    return replace(data, images=[*data.images[:-1], replace(data.images[-1], split=None)])


# --- bytes --------------------------------------------------------------------------------------


def test_independent_parser_reads_the_framing_and_the_tf_od_api_features(detection: Dataset, tmp_path: Path) -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert tfrecord.masked_crc32c(b"abc") == masked(b"abc")
    files = tfrecord.write_tfrecord(detection, tmp_path / "out")
    assert [f.name for f in files] == ["train.record", "val.record", "test.record", "dataset.record"]
    payloads = parse_records((tmp_path / "out" / "train.record").read_bytes())
    assert len(payloads) == 4
    assert [payload for _, payload in tfrecord.iter_records(tmp_path / "out" / "train.record")] == payloads
    image = detection.images[1]
    feature = example_pb2.Example.FromString(payloads[1]).features.feature
    encoded = detection.absolute(image).read_bytes()
    assert feature["image/encoded"].bytes_list.value == [encoded]
    assert feature["image/format"].bytes_list.value == [b"png"]
    assert feature["image/filename"].bytes_list.value == [b"train_001.png"]
    assert feature["image/source_id"].bytes_list.value == [b"images/train_001.png"]
    assert feature["image/key/sha256"].bytes_list.value == [hashlib.sha256(encoded).hexdigest().encode()]
    assert (feature["image/width"].int64_list.value, feature["image/height"].int64_list.value) == ([64], [48])
    assert list(feature["image/object/class/label"].int64_list.value) == [b.label + 1 for b in image.boxes]
    texts = [detection.classes[b.label].encode() for b in image.boxes]
    assert list(feature["image/object/class/text"].bytes_list.value) == texts
    assert list(feature["image/object/bbox/xmin"].float_list.value) == pytest.approx(
        [b.x_min / 64 for b in image.boxes]
    )
    assert list(feature["image/object/bbox/ymax"].float_list.value) == pytest.approx(
        [b.y_max / 48 for b in image.boxes]
    )
    negative = example_pb2.Example.FromString(payloads[0]).features.feature
    assert list(negative["image/object/bbox/xmin"].float_list.value) == []


def test_truncated_and_corrupt_files(detection: Dataset, tmp_path: Path) -> None:
    tfrecord.write_tfrecord(detection, tmp_path / "out")
    path = tmp_path / "out" / "train.record"
    raw = path.read_bytes()
    first = 12 + struct.unpack_from("<Q", raw)[0] + 4
    path.write_bytes(raw[: first + 20])
    with pytest.raises(DatasetError, match=rf"train\.record: record 2 at byte offset {first}: truncated"):
        tfrecord.read(tmp_path / "out")
    path.write_bytes(raw[: first + 5])
    with pytest.raises(DatasetError, match=r"train\.record: record 2 .* 5 byte\(s\) where a 12-byte length header"):
        list(tfrecord.iter_records(path))
    path.write_bytes(raw[:100] + bytes([raw[100] ^ 0xFF]) + raw[101:])
    with pytest.raises(DatasetError, match=r"train\.record: record 1 at byte offset 0: data CRC mismatch"):
        list(tfrecord.iter_records(path))
    path.write_bytes(b"\x1f\x8b" + raw)
    with pytest.raises(DatasetError, match=r"train\.record: GZIP-compressed TFRecord"):
        list(tfrecord.iter_records(path))


# --- round trips --------------------------------------------------------------------------------


def test_round_trip_through_the_registry_extracts_images(detection: Dataset, tmp_path: Path) -> None:
    out = write_dataset(detection, tmp_path / "out", "tfrecord")
    assert sorted(p.name for p in out.iterdir()) == [
        "dataset.record",
        "label_map.pbtxt",
        "test.record",
        "train.record",
        "val.record",
    ]
    assert detect_format(out) == "tfrecord"
    assert tfrecord.read_label_map(out / "label_map.pbtxt") == [
        tfrecord.LabelMapItem(1, "square"),
        tfrecord.LabelMapItem(2, "circle"),
        tfrecord.LabelMapItem(3, "triangle"),
    ]
    back = read_dataset(out, "tfrecord")
    assert back.root == out / "out-images" and back.source_format == "tfrecord"
    assert back.images[0].path == "train/train_000.png"
    assert (back.root / "val" / "validation_000.png").read_bytes() == (
        detection.root / "images" / "validation_000.png"
    ).read_bytes()
    assert_same_dataset(detection, back)
    again = write_dataset(back, tmp_path / "again", "tfrecord")
    assert_same_dataset(detection, tfrecord.read(again, extract_to=tmp_path / "cache"))
    assert (tmp_path / "cache" / "dataset" / "test_001.png").is_file()


def test_reading_one_file_gives_its_split(detection: Dataset, tmp_path: Path) -> None:
    tfrecord.write_tfrecord(detection, tmp_path / "out")
    val = tfrecord.read(tmp_path / "out" / "val.record")
    assert val.root == tmp_path / "out" / "val-images"
    assert [(i.path, i.split) for i in val.images] == [
        ("val/validation_000.png", "validation"),
        ("val/validation_001.png", "validation"),
    ]
    assert val.classes == detection.classes  # label_map.pbtxt beside the file
    unassigned = tfrecord.read(tmp_path / "out" / "dataset.record")
    assert [i.split for i in unassigned.images] == [None]


# --- label maps ---------------------------------------------------------------------------------

LABEL_MAP = """\
# written by hand, as in the TF OD API's data/ folder
item {
  name: "background"
  id: 0
}
item {
  id: 3
  name: 'scissors'   # single quotes
  display_name: "Scissors"
  frequency: RARE
}
item: { name: "/m/fork", id: 1, display_name: 'fork "table"' ; keypoints { id: 1 label: "tip" } }
"""


def test_label_map_quotes_comments_and_fields(tmp_path: Path) -> None:
    path = tmp_path / "label_map.pbtxt"
    path.write_text(LABEL_MAP)
    assert tfrecord.read_label_map(path) == [
        tfrecord.LabelMapItem(1, "/m/fork", 'fork "table"'),
        tfrecord.LabelMapItem(3, "scissors", "Scissors"),
    ]
    tfrecord.write_label_map(["it's", 'say "hi"', "é"], path)
    assert [item.name for item in tfrecord.read_label_map(path)] == ["it's", 'say "hi"', "é"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("item {\n  id: 1\n  nmae: 'cat'\n}\n", r"label_map\.pbtxt:3:3 : .*nmae"),
        ("item {\n  id: 1\n  name: 'cat\n}\n", r"label_map\.pbtxt:3:\d+ : .*String missing ending quote"),
        ("item { id: 1 name: 'a' }\nitem { id: 1 name: 'b' }\n", r"id 1 appears in two items"),
        ("item { name: 'a' }\n", r"item 1 \('a'\) has no id"),
        ("item { id: 0 name: 'cat' }\n", r"item 1 \('cat'\) has id 0; ids start at 1"),
    ],
)
def test_bad_label_maps(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "label_map.pbtxt").write_text(text)
    with pytest.raises(DatasetError, match=message):
        tfrecord.read_label_map(tmp_path / "label_map.pbtxt")


# --- records the TF OD API tools write ----------------------------------------------------------


def pascal_example(jpeg: bytes, **override: object) -> bytes:
    """A tf.train.Example shaped like create_pascal_tf_record.py's dict_to_tf_example (difficult, truncated, ...)."""
    feature: dict[str, object] = {
        "image/height": [300],
        "image/width": [400],
        "image/filename": [b"2008_000008.jpg"],
        "image/source_id": [b"2008_000008.jpg"],
        "image/key/sha256": [hashlib.sha256(jpeg).hexdigest().encode()],
        "image/encoded": [jpeg],
        "image/format": [b"jpeg"],
        "image/object/bbox/xmin": [0.25, 0.0],
        "image/object/bbox/xmax": [0.75, 1.0],
        "image/object/bbox/ymin": [0.5, 0.0],
        "image/object/bbox/ymax": [1.0, 0.5],
        "image/object/class/text": [b"scissors", b"/m/fork"],
        "image/object/class/label": [3, 1],
        "image/object/difficult": [0, 1],
        "image/object/truncated": [0, 0],
        "image/object/view": [b"Frontal", b"Left"],
    }
    feature.update(override)
    example = example_pb2.Example()
    for key, values in feature.items():
        target = example.features.feature[key]
        assert isinstance(values, list)
        if values and isinstance(values[0], bytes):
            target.bytes_list.value.extend(values)
        elif values and isinstance(values[0], float):
            target.float_list.value.extend(values)
        elif values:
            target.int64_list.value.extend(values)
    return example.SerializeToString()


@pytest.fixture
def jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), (200, 10, 10)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_reads_a_record_made_like_the_tf_od_api_tools(tmp_path: Path, jpeg: bytes) -> None:
    folder = tmp_path / "voc"
    folder.mkdir()
    (folder / "pascal_train.record-00000-of-00002").write_bytes(frame(pascal_example(jpeg)))
    (folder / "pascal_train.record-00001-of-00002").write_bytes(b"")
    (folder / "label_map.pbtxt").write_text(LABEL_MAP)
    assert tfrecord.detect(folder) and detect_format(folder) == "tfrecord"
    data = tfrecord.read(folder)
    assert data.classes == ["/m/fork", "scissors"]  # id order, ids 1 and 3
    (image,) = data.images
    assert image == ImageRecord(
        "pascal_train-00000-of-00002/2008_000008.jpg",
        boxes=(BoxAnnotation(1, 100.0, 150.0, 300.0, 300.0), BoxAnnotation(0, 0.0, 0.0, 400.0, 150.0)),
        split="train",
        width=400,
        height=300,
    )
    assert (data.root / image.path).read_bytes() == jpeg
    (folder / "label_map.pbtxt").unlink()
    without_map = tfrecord.read(folder, extract_to=tmp_path / "x")
    assert without_map.classes == ["/m/fork", "scissors"]  # class/text by class/label
    assert [b.label for b in without_map.images[0].boxes] == [1, 0]


def test_detect(detection: Dataset, tmp_path: Path) -> None:
    tfrecord.write_tfrecord(detection, tmp_path / "out")
    assert tfrecord.detect(tmp_path / "out") and tfrecord.detect(tmp_path / "out" / "train.record")
    assert not tfrecord.detect(tmp_path / "out" / "label_map.pbtxt")
    assert not tfrecord.detect(detection.root)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "data.record").write_bytes(b"not a tfrecord at all")
    assert not tfrecord.detect(tmp_path / "junk") and not tfrecord.detect(tmp_path / "junk" / "data.record")


# --- bad records --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"image/encoded": []}, r"record 1 at byte offset 0: missing required feature image/encoded"),
        ({"image/object/class/label": [7, 1]}, r"record 1 .*: class label 7 is not in .*label_map\.pbtxt \(ids 1, 3\)"),
        ({"image/object/bbox/ymax": [1.0]}, r"record 1 .*: image/object/bbox/xmin, ymin, xmax, ymax must hold one"),
        ({"image/object/bbox/xmax": [1.5, 1.0]}, r"record 1 .*: object 1 box .* is not normalised"),
        ({"image/object/class/text": [b"fork", b"/m/fork"]}, r"class text 'fork' disagrees with .*id 3 is 'scissors'"),
        ({"image/height": [1.0]}, r"feature image/height is a float_list; the TF OD API writes it as a int64_list"),
    ],
)
def test_bad_records_name_file_and_record(tmp_path: Path, jpeg: bytes, override: dict, message: str) -> None:
    (tmp_path / "train.record").write_bytes(frame(pascal_example(jpeg, **override)))
    (tmp_path / "label_map.pbtxt").write_text(LABEL_MAP)
    with pytest.raises(DatasetError, match=message):
        tfrecord.read(tmp_path / "train.record")


def test_writer_refusals(detection: Dataset, tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (64, 48)).save(tmp_path / "pic.webp")
    webp = replace(detection, images=[ImageRecord(str(tmp_path / "pic.webp"), split="train")])
    with pytest.raises(DatasetError, match=r"pic\.webp: not a JPEG, PNG, GIF or BMP file"):
        tfrecord.write_tfrecord(webp, tmp_path / "a")
    outside = replace(detection.images[1], boxes=(BoxAnnotation(0, 1, 1, 5, 49),))
    with pytest.raises(DatasetError, match=r"49.* lies outside the image \(size 48 px\)"):
        tfrecord.write_tfrecord(replace(detection, images=[outside]), tmp_path / "b")
    with pytest.raises(DatasetError, match="holds detection datasets only, not multilabel"):
        tfrecord.write_tfrecord(replace(detection, task="multilabel"), tmp_path / "c")
    remote = replace(detection, images=[ImageRecord("gs://b/x.png")])
    with pytest.raises(DatasetError, match=r"gs://b/x\.png: TFRecords embed the image bytes"):
        tfrecord.write_tfrecord(remote, tmp_path / "d")


def test_writing_and_reading_do_not_import_pytorch(detection: Dataset, tmp_path: Path) -> None:
    """tfrecord's package __init__ imports its PyTorch Dataset (2.5 s); a conversion must not pay for it."""
    import subprocess
    import sys

    from multicloud_cv.datasets.formats import write_dataset as write_any

    src = tmp_path / "voc"
    write_any(detection, src, "voc")
    script = (
        "import sys\n"
        "from multicloud_cv.datasets.formats import read_dataset, write_dataset\n"
        f"write_dataset(read_dataset({str(src)!r}, 'voc'), {str(tmp_path / 'out')!r}, 'tfrecord')\n"
        f"back = read_dataset({str(tmp_path / 'out')!r}, 'tfrecord')\n"
        "print(len(back.images), 'torch' in sys.modules)\n"
        "import tfrecord.torch\n"  # still importable afterwards, on request
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(len(detection.images)), "False", "True"]


def test_records_hold_what_the_tfrecord_package_writes_in_a_fixed_order(detection: Dataset, tmp_path: Path) -> None:
    """Our Example building and framing against the library's TFRecordWriter, boxes and no boxes alike."""
    from tfrecord.writer import TFRecordWriter

    images = [*detection.images, replace(detection.images[0], boxes=())]  # an image without boxes: empty lists
    assert any(image.boxes for image in images) and not images[-1].boxes
    ours = tmp_path / "ours.record"
    theirs = tmp_path / "theirs.record"
    with ours.open("wb") as handle:
        for image in images:
            handle.write(tfrecord._framed(tfrecord._serialise(example_pb2, tfrecord._example(detection, image))))
    writer = TFRecordWriter(str(theirs))
    for image in images:
        writer.write(tfrecord._example(detection, image))
    writer.close()
    mine, library = parse_records(ours.read_bytes()), parse_records(theirs.read_bytes())
    assert len(mine) == len(library) == len(images)
    for a, b in zip(mine, library, strict=True):  # equal messages (a map's serialised order is left open)
        assert example_pb2.Example.FromString(a) == example_pb2.Example.FromString(b)
        empty = example_pb2.Example.FromString(a).features.feature["image/object/bbox/xmin"]
        assert empty.WhichOneof("kind") == "float_list"  # present even when empty, as the library writes it
    for record in mine:  # features in key order: the same dataset always gives the same bytes
        keys = [key for key, _ in sorted(example_pb2.Example.FromString(record).features.feature.items())]
        assert record == tfrecord._serialise(example_pb2, {k: _datum_of(record, k) for k in reversed(keys)})


def _datum_of(record: bytes, key: str) -> tuple[list, str]:
    feature = example_pb2.Example.FromString(record).features.feature[key]
    kind = feature.WhichOneof("kind")
    return list(getattr(feature, kind).value), {"bytes_list": "byte", "float_list": "float"}.get(kind, "int")
