"""Synthetic detection data: exact boxes, reproducible bytes, negatives, splits, classes, speed."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from multicloud_cv.bundled import fashion_mnist_available
from multicloud_cv.datasets.model import Dataset
from multicloud_cv.datasets.synthetic_detection import DEFAULT_CLASSES, generate_detection_dataset
from multicloud_cv.errors import DatasetError
from multicloud_cv.testing.datasets import assert_same_dataset

needs_fashion = pytest.mark.skipif(
    not fashion_mnist_available(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"
)
BLACK = (0, 0, 0)


def hashes(dataset: Dataset) -> list[str]:
    return [hashlib.sha256(dataset.absolute(image).read_bytes()).hexdigest() for image in dataset.images]


@needs_fashion
def test_boxes_are_exact_on_a_flat_background(tmp_path: Path) -> None:
    ds = generate_detection_dataset(tmp_path / "flat", images=40, seed=5, background=BLACK, image_format="png")
    singles = 0
    for image in ds.images:
        pixels = np.asarray(Image.open(ds.absolute(image)).convert("RGB"))
        assert pixels.shape == (240, 320, 3)
        painted = pixels.any(axis=2)
        inside = np.zeros_like(painted)
        for box in image.boxes:
            x0, y0, x1, y1 = int(box.x_min), int(box.y_min), int(box.x_max), int(box.y_max)
            assert (x0, y0, x1, y1) == (box.x_min, box.y_min, box.x_max, box.y_max)  # whole pixels
            assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240
            inside[y0:y1, x0:x1] = True
            # tight: each edge row/column of the box holds a pasted pixel
            region = painted[y0:y1, x0:x1]
            assert region[0].any() and region[-1].any() and region[:, 0].any() and region[:, -1].any(), image.path
        assert not (painted & ~inside).any(), f"{image.path}: object pixels outside every box"
        if len(image.boxes) == 1:
            singles += 1
            ys, xs = np.nonzero(painted)
            box = image.boxes[0]
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (box.x_min, box.y_min, box.x_max, box.y_max)
        if not image.boxes:
            assert not painted.any(), f"{image.path}: a negative image holds an object"
    assert singles > 0


@needs_fashion
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = generate_detection_dataset(tmp_path / "a", images=20, seed=11)
    b = generate_detection_dataset(tmp_path / "b", images=20, seed=11)
    c = generate_detection_dataset(tmp_path / "c", images=20, seed=12)
    assert hashes(a) == hashes(b)
    assert [(i.path, i.boxes, i.split) for i in a.images] == [(i.path, i.boxes, i.split) for i in b.images]
    assert hashes(a) != hashes(c)
    assert all(image.path.endswith(".jpg") for image in a.images)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["images"]  # no temporary folder left


@needs_fashion
def test_negatives_splits_and_default_classes(tmp_path: Path) -> None:
    ds = generate_detection_dataset(tmp_path / "d", images=60, seed=2, max_objects=3)
    assert ds.task == "detection" and ds.classes == DEFAULT_CLASSES and ds.root == tmp_path / "d"
    assert ds.splits == {"train": 42, "validation": 9, "test": 9}
    negatives = [image for image in ds.images if not image.boxes]
    assert len(negatives) == 3  # 5 % of 60
    assert all(1 <= len(image.boxes) <= 3 for image in ds.images if image.boxes)
    assert all((image.width, image.height) == (320, 240) for image in ds.images)
    used = {box.label for image in ds.images for box in image.boxes}
    assert used == set(range(len(DEFAULT_CLASSES)))
    # objects reasonably large: longer side 15..45 % of the shorter image side
    sides = [max(b.x_max - b.x_min, b.y_max - b.y_min) for image in ds.images for b in image.boxes]
    assert min(sides) >= 0.15 * 240 - 1 and max(sides) <= 0.45 * 240


@needs_fashion
def test_chosen_classes_size_and_unassigned_split(tmp_path: Path) -> None:
    ds = generate_detection_dataset(
        tmp_path / "c", classes=["Bag", "ankle boot"], images=12, seed=0, size=(200, 120), splits=None
    )
    assert ds.classes == ["bag", "ankle_boot"]
    assert ds.splits == {"unassigned": 12}
    assert {box.label for image in ds.images for box in image.boxes} <= {0, 1}
    assert Image.open(ds.absolute(ds.images[0])).size == (200, 120)


@needs_fashion
def test_overlap_stays_small(tmp_path: Path) -> None:
    ds = generate_detection_dataset(tmp_path / "o", images=40, seed=9, max_objects=6, background=BLACK)
    for image in ds.images:
        boxes = image.boxes
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                iw = max(0.0, min(a.x_max, b.x_max) - max(a.x_min, b.x_min))
                ih = max(0.0, min(a.y_max, b.y_max) - max(a.y_min, b.y_min))
                smaller = min((a.x_max - a.x_min) * (a.y_max - a.y_min), (b.x_max - b.x_min) * (b.y_max - b.y_min))
                assert iw * ih / smaller <= 0.15


@needs_fashion
def test_round_trip_through_recordio(tmp_path: Path) -> None:
    from multicloud_cv.datasets.recordio import read_recordio, write_recordio

    ds = generate_detection_dataset(tmp_path / "gen", images=20, seed=4, negative_fraction=0.2)
    train = replace(ds, images=ds.split("train"))
    assert any(not image.boxes for image in train.images)  # negatives survive too
    write_recordio(ds, tmp_path / "train.rec", tmp_path / "train.idx", split="train")
    back = read_recordio(tmp_path / "train.rec", tmp_path / "out", tmp_path / "train.idx", "train", ds.classes)
    assert_same_dataset(train, back)


@needs_fashion
def test_fast_enough(tmp_path: Path) -> None:
    generate_detection_dataset(tmp_path / "warm", images=1, seed=0)  # loads and caches Fashion-MNIST
    start = time.perf_counter()
    generate_detection_dataset(tmp_path / "t", images=100, seed=0)
    assert time.perf_counter() - start < 6.0  # ~0.3 s here: 500 images stay well under 30 s


@needs_fashion
def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"unknown object class.*wolf.*choose among.*ankle_boot"):
        generate_detection_dataset(tmp_path / "x", classes=["bag", "wolf"], images=2)
    with pytest.raises(DatasetError, match=r"splits .* summing to 1"):
        generate_detection_dataset(tmp_path / "x", images=2, splits=(0.5, 0.2, 0.2))
    with pytest.raises(DatasetError, match="classes repeat"):
        generate_detection_dataset(tmp_path / "x", classes=["bag", "Bag"], images=2)
    generate_detection_dataset(tmp_path / "full", images=2, seed=0)
    with pytest.raises(DatasetError, match="already holds files"):
        generate_detection_dataset(tmp_path / "full", images=2, seed=0)


def test_missing_fashion_mnist_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import multicloud_cv.bundled

    monkeypatch.setattr(multicloud_cv.bundled, "FASHION_MNIST_DIR", tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        generate_detection_dataset(tmp_path / "x", images=2)
    assert not (tmp_path / "x").exists()
