"""SageMaker / MXNet .lst reader and writer: round trips, the label-column rule, errors with file:line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from multicloud_cv.datasets import lst
from multicloud_cv.datasets.folder import read_folder
from multicloud_cv.datasets.formats import detect_format, read_dataset, write_dataset
from multicloud_cv.datasets.lst import read_lst, write_lst
from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError
from multicloud_cv.testing import make_tiny_dataset
from multicloud_cv.testing.datasets import assert_same_dataset, make_detection_dataset, make_multilabel_dataset


@pytest.fixture
def tiny(tmp_path: Path) -> Dataset:
    root = make_tiny_dataset(tmp_path / "data", classes=3, train_per_class=2, test_per_class=1, size=8)
    return read_folder(root)


def as_tuples(dataset: Dataset) -> list[tuple[str, tuple[int, ...], str | None]]:
    return sorted((image.path, image.labels, image.split) for image in dataset.images)


def multilabel(dataset: Dataset) -> Dataset:
    """The tiny images with label sets of every shape, including an empty one."""
    sets = [(0, 2), (1,), (), (0, 1, 2), (2,), (0,), (1, 2), (0, 1), (2,)]
    images = [replace(image, labels=sets[i % len(sets)], split=None) for i, image in enumerate(dataset.images)]
    return replace(dataset, images=images, task="multilabel")


def test_classification_round_trip(tiny: Dataset) -> None:
    for split in ("train", "test"):
        assert write_lst(tiny, tiny.root / f"{split}.lst", split=split) == len(tiny.split(split))
    assert (tiny.root / "classes.txt").read_text() == "circle\nsquare\ntriangle\n"
    train = read_lst(tiny.root / "train.lst", split="train")
    test = read_lst(tiny.root / "test.lst", split="test")
    assert train.task == test.task == "classification"
    assert train.classes == test.classes == tiny.classes
    assert train.source_format == "lst" and train.root == tiny.root
    merged = replace(train, images=train.images + test.images)
    assert as_tuples(merged) == as_tuples(tiny)
    first = (tiny.root / "train.lst").read_text()
    write_lst(train, tiny.root / "again.lst")
    assert (tiny.root / "again.lst").read_text() == first
    assert first.splitlines()[0].split("\t") == ["0", "0", "train/circle/circle_000.png"]


@pytest.mark.parametrize("label_format", ["multi-hot", "class-id"])
def test_multilabel_round_trip(tiny: Dataset, label_format: str) -> None:
    data = multilabel(tiny)
    if label_format == "class-id":  # class-id lists cannot be empty
        data = replace(data, images=[i for i in data.images if i.labels])
    write_lst(data, tiny.root / "all.lst", label_format=label_format)
    back = read_lst(tiny.root / "all.lst", label_format=label_format)
    assert back.task == "multilabel" and back.classes == tiny.classes
    assert as_tuples(back) == as_tuples(data)
    auto = read_lst(tiny.root / "all.lst")
    assert as_tuples(auto) == as_tuples(data)


def test_auto_rule_multi_hot_vs_class_id(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b.png").write_bytes(b"x")
    (tmp_path / "hot.lst").write_text("0\t1\t0\t1\ta.png\n1\t0\t1\t0\tb.png\n")
    hot = read_lst(tmp_path / "hot.lst")
    assert hot.task == "multilabel" and hot.classes == ["0", "1", "2"]
    assert [i.labels for i in hot.images] == [(0, 2), (1,)]
    (tmp_path / "ids.lst").write_text("0\t4\t2\ta.png\n1\t3\tb.png\n")
    ids = read_lst(tmp_path / "ids.lst")
    assert ids.task == "multilabel" and len(ids.classes) == 5
    assert [i.labels for i in ids.images] == [(2, 4), (3,)]
    forced = read_lst(tmp_path / "hot.lst", label_format="class-id")
    assert [i.labels for i in forced.images] == [(0, 1), (0, 1)]


def test_class_names_sources(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "l.lst").write_text("7\t1.0\ta.png\n")
    assert read_lst(tmp_path / "l.lst").classes == ["0", "1"]
    assert read_lst(tmp_path / "l.lst", classes={0: "cat", 1: "dog"}).classes == ["cat", "dog"]
    assert read_lst(tmp_path / "l.lst", classes=["cat", "dog", "owl"]).classes == ["cat", "dog", "owl"]
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\n\n")
    assert read_lst(tmp_path / "l.lst", classes=names).classes == ["cat", "dog"]
    (tmp_path / "classes.txt").write_text("x\ny\n")
    assert read_lst(tmp_path / "l.lst", image_root=tmp_path).classes == ["x", "y"]
    with pytest.raises(DatasetError, match="need 2 classes but 1"):
        read_lst(tmp_path / "l.lst", classes=["cat"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1\ta.png", r"l\.lst:2: expected 'index<TAB>label"),
        ("x\t1\ta.png", r"l\.lst:2: index 'x' is not an integer"),
        ("1\tcat\ta.png", r"l\.lst:2: label 'cat' is not a number"),
        ("1\t1.5\ta.png", r"l\.lst:2: class label 1.5 is not a whole number"),
        ("1\t-1\ta.png", r"l\.lst:2: class label -1 is not a whole number"),
        ("0\t1\ta.png", r"l\.lst:2: index 0 already used on line 1"),
        ("1\t1\tmissing.png", r"l\.lst:2: image missing.png not found under"),
        ("1\t1\t ", r"l\.lst:2: empty image path"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "l.lst").write_text(f"0\t0\ta.png\n{line}\n")
    with pytest.raises(DatasetError, match=message):
        read_lst(tmp_path / "l.lst")


def test_other_errors(tiny: Dataset, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read"):
        read_lst(tmp_path / "nope.lst")
    with pytest.raises(DatasetError, match="unknown split"):
        read_lst(tmp_path / "nope.lst", split="holdout")
    outside = replace(tiny.images[0], labels=(), boxes=(BoxAnnotation(0, 0.0, 0.0, 20.0, 4.0),))
    with pytest.raises(DatasetError, match=r"box \(0, 0, 20, 4\) lies outside the 8x8 image"):
        write_lst(replace(tiny, task="detection", images=[outside]), tmp_path / "d.lst")
    bad = replace(tiny, images=[replace(tiny.images[0], labels=(0, 1))])
    with pytest.raises(DatasetError, match="exactly one label"):
        write_lst(bad, tmp_path / "d.lst")
    tabbed = replace(tiny, images=[replace(tiny.images[0], path="a\tb.png")])
    with pytest.raises(DatasetError, match="tab or newline"):
        write_lst(tabbed, tmp_path / "d.lst")


def test_load_dataset_detects_lst_and_recordio(tmp_path: Path) -> None:
    from multicloud_cv.datasets import load_dataset
    from multicloud_cv.datasets.recordio import write_recordio

    source = load_dataset(make_tiny_dataset(tmp_path / "src", train_per_class=2, test_per_class=1))
    write_lst(source, tmp_path / "src" / "train.lst", split="train")  # paths are relative to the .lst's folder
    from_lst = load_dataset(tmp_path / "src" / "train.lst")
    assert from_lst.classes == source.classes and len(from_lst.images) == 6
    write_recordio(source, tmp_path / "train.rec", tmp_path / "train.idx", split="train")
    from_rec = load_dataset(tmp_path / "train.rec")
    assert len(from_rec.images) == 6 and all(from_rec.absolute(img).is_file() for img in from_rec.images)


# --- the format contract: layout, round trips, detection, detect(), preflight ------------------

SPLIT_SIZES = {"train": 3, "validation": 2, "test": 2}


def unassign_last(dataset: Dataset) -> Dataset:
    """The dataset with its last image unassigned (split None), so that case round-trips too."""
    return replace(dataset, images=[*dataset.images[:-1], replace(dataset.images[-1], split=None)])


def source_dataset(root: Path, task: str) -> Dataset:
    if task == "classification":
        return unassign_last(read_folder(make_tiny_dataset(root, classes=3, train_per_class=2, test_per_class=1)))
    if task == "multilabel":
        return unassign_last(make_multilabel_dataset(root, per_split=SPLIT_SIZES))
    return unassign_last(make_detection_dataset(root, per_split=SPLIT_SIZES))


@pytest.mark.parametrize("task", ["classification", "multilabel", "detection"])
def test_contract_round_trip_every_task(tmp_path: Path, task: str) -> None:
    source = source_dataset(tmp_path / "src", task)
    out = write_dataset(source, tmp_path / "out", "lst")
    files = sorted(p.name for p in out.iterdir())
    splits = sorted({f"{image.split or 'dataset'}.lst" for image in source.images})
    assert files == sorted(["classes.txt", "images", *splits])
    assert (out / "classes.txt").read_text().splitlines() == source.classes
    assert lst.detect(out) and detect_format(out) == "lst"
    back = read_dataset(out)
    assert back.source_format == "lst" and back.root == out
    assert_same_dataset(source, back)
    again = read_dataset(write_dataset(back, tmp_path / "again", "lst"))
    assert_same_dataset(source, again)
    first = (out / "train.lst").read_text().splitlines()[0].split("\t")
    assert first[0] == "0" and first[-1].startswith("images/") and (out / first[-1]).is_file()


def test_detection_lines_are_normalised_im2rec_vectors(tmp_path: Path) -> None:
    source = make_detection_dataset(tmp_path / "src", per_split={"train": 3}, size=(64, 48))
    out = write_dataset(source, tmp_path / "out", "lst")
    lines = [line.split("\t") for line in (out / "train.lst").read_text().splitlines()]
    assert lines[0][1:-1] == ["2", "5"]  # the negative sample: header only
    for cells, image in zip(lines[1:], source.images[1:], strict=True):
        values = [float(v) for v in cells[1:-1]]
        assert values[:2] == [2.0, 5.0] and len(values) == 2 + 5 * len(image.boxes)
        for k, box in enumerate(image.boxes):
            cls, x0, y0, x1, y1 = values[2 + 5 * k : 7 + 5 * k]
            assert cls == box.label
            assert (x0, y0, x1, y1) == pytest.approx((box.x_min / 64, box.y_min / 48, box.x_max / 64, box.y_max / 48))


def test_reads_the_tools_own_lines(tmp_path: Path) -> None:
    """im2rec's write_list ('%f' labels) and detection lists as MXNet's tools write them (cloud-apis.md §1.9)."""
    from PIL import Image

    (tmp_path / "img").mkdir()
    Image.new("RGB", (500, 400)).save(tmp_path / "img" / "a.jpg")
    Image.new("RGB", (320, 240)).save(tmp_path / "img" / "b.png")
    (tmp_path / "cls.lst").write_text("0\t1.000000\timg/a.jpg\n1\t0.000000\timg/b.png\n")
    classes = read_lst(tmp_path / "cls.lst")
    assert classes.task == "classification" and [i.labels for i in classes.images] == [(1,), (0,)]
    # header width 4 (extra header: width, height), object width 6 (an extra 'difficult' value): both skipped
    (tmp_path / "det.lst").write_text(
        "0\t4\t6\t500\t400\t1\t0.1\t0.2\t0.5\t0.9\t0\t0\t0.0\t0.0\t1.0\t1.0\t1\timg/a.jpg\n"
        "1\t2\t5\t2\t0.25\t0.5\t0.75\t1\timg/b.png\n"
        "2\t2\t5\timg/b.png\n"
    )
    det = read_lst(tmp_path / "det.lst", split="train")
    assert det.task == "detection" and det.classes == ["0", "1", "2"]
    a, b, empty = det.images
    assert (a.width, a.height, b.width, b.height) == (500, 400, 320, 240)
    assert [astuple_box(box) for box in a.boxes] == [
        pytest.approx((1, 50, 80, 250, 360)),
        pytest.approx((0, 0, 0, 500, 400)),
    ]
    assert [astuple_box(box) for box in b.boxes] == [pytest.approx((2, 80, 120, 240, 240))]
    assert empty.boxes == () and empty.split == "train"


def astuple_box(box: BoxAnnotation) -> tuple[float, ...]:
    return (box.label, box.x_min, box.y_min, box.x_max, box.y_max)


def test_directory_split_from_file_names(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    for name in ("data_train.lst", "data_val.lst", "test.lst", "extra.lst", "validation.lst"):
        (tmp_path / name).write_text("0\t1\ta.png\n")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    read_back = lst.read(tmp_path)
    assert read_back.classes == ["cat", "dog"] and read_back.task == "classification"
    assert [image.split for image in read_back.images] == ["train", "validation", "validation", "test", None]
    assert lst.split_for_name(Path("prefix_0_train.lst")) == "train"
    with pytest.raises(DatasetError, match=r"split= applies to one \.lst file"):
        lst.read(tmp_path, split="train")


def test_detect(tmp_path: Path) -> None:
    (tmp_path / "a.lst").write_text("")
    (tmp_path / "a.txt").write_text("")
    assert lst.detect(tmp_path / "a.lst") and lst.detect(tmp_path)
    assert not lst.detect(tmp_path / "a.txt") and not lst.detect(tmp_path / "missing.lst")
    (tmp_path / "empty").mkdir()
    assert not lst.detect(tmp_path / "empty")
    (tmp_path / "a.rec").write_bytes(b"")  # .lst beside .rec: that directory is RecordIO
    assert not lst.detect(tmp_path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1\t2\t5\t0\t42.4\t10\t100\t200\ta.png", r"l\.lst:2: box 42.4 10 100 200 is not normalised to 0\.\.1"),
        ("1\t2\t5\t0\t0.1\t0.2\ta.png", r"l\.lst:2: 3 object value\(s\) after the 2-value header .* not enough"),
        ("1\t2\t5\t0.5\t0.1\t0.2\t0.3\t0.4\ta.png", r"l\.lst:2: object class 0\.5 is not a whole number"),
        ("1\t2\t5\t0\t0.5\t0.2\t0.1\t0.4\ta.png", r"l\.lst:2: box 0\.5 0\.2 0\.1 0\.4 has min > max"),
        ("1\t2\t5\t3\t0.1\t0.1\t0.2\t0.2\ta.png", r"l\.lst:2: class 3 is out of range: .* 2 class names"),
        ("1\t2\t5\tmissing.png", r"l\.lst:2: image missing\.png not found under"),
    ],
)
def test_detection_errors_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    from PIL import Image

    Image.new("RGB", (40, 30)).save(tmp_path / "a.png")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    (tmp_path / "l.lst").write_text(f"0\t2\t5\t1\t0\t0\t1\t1\ta.png\n{line}\n")
    with pytest.raises(DatasetError, match=message):
        read_lst(tmp_path / "l.lst")


def test_forced_detection_and_other_contract_errors(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"not an image")
    (tmp_path / "l.lst").write_text("0\t1\ta.png\n")
    with pytest.raises(DatasetError, match=r"l\.lst:1: detection labels must start with 'header_width object_width'"):
        read_lst(tmp_path / "l.lst", label_format="detection")
    (tmp_path / "d.lst").write_text("0\t2\t5\t0\t0\t0\t1\t1\ta.png\n")
    with pytest.raises(DatasetError, match=r"d\.lst:1: .*cannot read the image size"):
        read_lst(tmp_path / "d.lst")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"holds no \.lst file"):
        lst.read(tmp_path / "empty")
    remote = Dataset(root=tmp_path, classes=["a"], images=[ImageRecord("s3://bucket/a.jpg", labels=(0,))])
    with pytest.raises(DatasetError, match=r"download the images before writing \.lst"):
        write_dataset(remote, tmp_path / "out", "lst")
    assert not (tmp_path / "out").exists()


def test_label_width_preflight(tmp_path: Path) -> None:
    detection = make_detection_dataset(tmp_path / "src", per_split={"train": 6})
    most = max(len(image.boxes) for image in detection.images)
    assert lst.label_width_needed(detection) == 2 + 5 * most
    lst.check_label_width(detection)  # SageMaker's default 350 is plenty
    lst.check_label_width(detection, 2 + 5 * most)
    with pytest.raises(
        DatasetError,
        match=rf"detection label width {1 + 5 * most} too small for the most boxes in one image \({most} boxes in "
        rf".*\): set label_width to at least {2 + 5 * most} \(2 \+ 5 x boxes\)",
    ):
        lst.check_label_width(detection, 1 + 5 * most)
    assert lst.label_width_needed(replace(detection, images=[])) == 2
