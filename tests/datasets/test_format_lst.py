"""SageMaker / MXNet .lst reader and writer: round trips, the label-column rule, errors with file:line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from multicloud_cv.datasets.folder import read_folder
from multicloud_cv.datasets.lst import read_lst, write_lst
from multicloud_cv.datasets.model import Dataset
from multicloud_cv.errors import DatasetError
from multicloud_cv.testing import make_tiny_dataset


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
    with pytest.raises(DatasetError, match="detection"):
        write_lst(replace(tiny, task="detection"), tmp_path / "d.lst")
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
