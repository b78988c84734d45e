"""The format registry, atomic writes, the folder and csv formats, and the stored split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from multicloud_cv.datasets.folder import read_folder
from multicloud_cv.datasets.formats import FORMATS, detect_format, get_format, read_dataset, write_dataset
from multicloud_cv.datasets.model import Dataset
from multicloud_cv.datasets.splitfile import make_split, split_file_for, write_split
from multicloud_cv.errors import DatasetError
from multicloud_cv.testing import make_tiny_dataset
from multicloud_cv.testing.datasets import assert_same_dataset, make_multilabel_dataset


def test_every_registered_format_module_has_the_contract() -> None:
    for fmt in FORMATS.values():
        module = fmt.load()
        for function in ("detect", "read", "write"):
            assert callable(getattr(module, function, None)), f"{fmt.module} lacks {function}()"
        assert fmt.tasks and set(fmt.tasks) <= {"classification", "multilabel", "detection"}


def test_unknown_format_names_the_known_ones() -> None:
    with pytest.raises(DatasetError, match=r"unknown dataset format 'yolo'; known: .*coco"):
        get_format("yolo")


def test_folder_round_trip_keeps_classes_labels_and_splits(tmp_path: Path) -> None:
    source = read_folder(make_tiny_dataset(tmp_path / "src", train_per_class=3, test_per_class=2))
    out = write_dataset(source, tmp_path / "out", "folder")
    again = read_dataset(out)
    assert again.source_format == "folder"
    assert_same_dataset(source, again)


def test_csv_round_trip_multilabel(tmp_path: Path) -> None:
    source = make_multilabel_dataset(tmp_path / "src")
    out = write_dataset(source, tmp_path / "out", "csv")
    again = read_dataset(out)
    assert detect_format(out) == "csv" and again.source_format == "csv"
    assert_same_dataset(source, again)


def test_write_refuses_a_task_the_format_cannot_hold(tmp_path: Path) -> None:
    source = make_multilabel_dataset(tmp_path / "src")
    expected = r"format 'folder' does not hold multilabel datasets; formats that do: .*csv"
    with pytest.raises(DatasetError, match=expected):
        write_dataset(source, tmp_path / "out", "folder")
    assert not (tmp_path / "out").exists()


def test_existing_output_is_refused_unless_overwrite(tmp_path: Path) -> None:
    source = read_folder(make_tiny_dataset(tmp_path / "src", train_per_class=2, test_per_class=1))
    (tmp_path / "out").mkdir()
    with pytest.raises(DatasetError, match="already exists; choose a new output path or pass --overwrite"):
        write_dataset(source, tmp_path / "out", "folder")
    write_dataset(source, tmp_path / "out", "folder", overwrite=True)
    assert len(read_dataset(tmp_path / "out").images) == len(source.images)


def test_a_failing_writer_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = read_folder(make_tiny_dataset(tmp_path / "src", train_per_class=2, test_per_class=1))
    module = get_format("folder").load()
    real_write = module.write

    def half_then_fail(dataset: Dataset, dest: Path, **options: Any) -> None:
        real_write(dataset, dest, **options)
        raise OSError("disk full")

    monkeypatch.setattr(module, "write", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_dataset(source, tmp_path / "out", "folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_stored_split_is_stratified_reproducible_and_applied_on_read(tmp_path: Path) -> None:
    root = make_tiny_dataset(tmp_path / "d", train_per_class=20, test_per_class=0)
    for split_dir in ("test",):
        path = root / split_dir
        if path.exists():
            for child in path.iterdir():
                child.rmdir()
            path.rmdir()
    flat = tmp_path / "flat"
    (root / "train").rename(flat)
    dataset = read_dataset(flat)
    assert dataset.splits == {"unassigned": 60}
    one = make_split(dataset, validation=0.1, test=0.2, seed=7)
    two = make_split(dataset, validation=0.1, test=0.2, seed=7)
    assert [i.split for i in one.images] == [i.split for i in two.images]
    for name in dataset.classes:  # stratified: every class gets its share of test
        index = dataset.classes.index(name)
        assert sum(1 for i in one.images if i.labels == (index,) and i.split == "test") == 4
    target = write_split(one, flat, 7, 0.1, 0.2)
    assert target == split_file_for(flat) and json.loads(target.read_text())["seed"] == 7
    again = read_dataset(flat)
    assert again.splits == {"train": 42, "validation": 6, "test": 12}
    assert read_dataset(flat, stored_split=False).splits == {"unassigned": 60}


def test_split_fractions_are_checked(tmp_path: Path) -> None:
    dataset = read_folder(make_tiny_dataset(tmp_path / "d", train_per_class=2, test_per_class=1))
    with pytest.raises(DatasetError, match="leaves no training images"):
        make_split(dataset, validation=0.5, test=0.5, seed=0)
    with pytest.raises(DatasetError, match="not a fraction"):
        make_split(dataset, validation=-0.1, test=0.1, seed=0)


@pytest.mark.parametrize(
    "path",
    ["a/b.jpg", "b.jpg", "a//b.jpg", "./a/b.jpg", "a/./b.jpg", "a/b/.", "a/b/", ".hidden/x.jpg", "a/.x.jpg",
     "a/../b.jpg", "/abs/a.jpg", "a b/c d.jpg", "ü/é.png"],
)  # fmt: skip
def test_clean_posix_paths_are_what_pathlib_makes_of_them(path: str) -> None:
    from pathlib import Path, PurePosixPath

    from multicloud_cv.datasets.media import is_clean_posix

    if is_clean_posix(path):  # the fast path may only be taken where pathlib would change nothing
        assert Path(path).as_posix() == path
        if not path.startswith("/"):  # place_images(keep_tree=True) joins relative paths only
            assert str(PurePosixPath("images", *PurePosixPath(path).parts)) == f"images/{path}"
    assert is_clean_posix("a/b.jpg") and not is_clean_posix("a//b.jpg") and not is_clean_posix("./a")


def test_normalised_box_clamps_within_the_slack_and_names_what_is_wrong() -> None:
    from multicloud_cv.datasets.media import normalised_box
    from multicloud_cv.datasets.model import BoxAnnotation, ImageRecord

    image = ImageRecord("a/cat.jpg", width=200, height=100)
    assert normalised_box(image, BoxAnnotation(0, 20, 10, 200, 50), 200, 100) == (0.1, 0.1, 1.0, 0.5)
    nudged = BoxAnnotation(0, -0.0001, 0, 200.0001, 100)  # rounding in the source: within 1e-6, clamped
    assert normalised_box(image, nudged, 200, 100) == (0.0, 0.0, 1.0, 1.0)
    with pytest.raises(DatasetError, match=r"a/cat\.jpg: box .*: 130 lies outside the image \(size 100 px\)"):
        normalised_box(image, BoxAnnotation(0, 0, 0, 10, 130), 200, 100)
    with pytest.raises(DatasetError, match="nan lies outside the image"):
        normalised_box(image, BoxAnnotation(0, float("nan"), 0, 10, 10), 200, 100)
    with pytest.raises(DatasetError, match="x_max/y_max below x_min/y_min"):
        normalised_box(image, BoxAnnotation(0, 50, 0, 10, 10), 200, 100)
