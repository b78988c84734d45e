"""Bundled real data: Fashion-MNIST idx files written as image folders, atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

from multicloud_cv import bundled
from multicloud_cv.datasets import load_dataset

needs_fmnist = pytest.mark.skipif(
    not bundled.fashion_mnist_available(), reason="Debian package dataset-fashion-mnist not installed"
)


@needs_fmnist
def test_fashion_mnist_subset_layout(tmp_path: Path) -> None:
    root = bundled.write_fashion_mnist(tmp_path / "fm", train_per_class=3, test_per_class=2)
    dataset = load_dataset(root)
    assert dataset.classes == sorted(bundled.FASHION_CLASSES)
    assert dataset.splits == {"train": 30, "test": 20}
    from PIL import Image

    with Image.open(dataset.absolute(dataset.images[0])) as image:
        assert image.size == (28, 28) and image.mode == "L"


def test_interrupted_write_leaves_nothing(tmp_path: Path) -> None:
    def explode(_tmp: Path) -> None:
        (_tmp / "train").mkdir()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bundled._atomic_write(tmp_path / "ds", explode)
    assert list(tmp_path.iterdir()) == []


def test_digits_fallback(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    dataset = load_dataset(bundled.write_digits(tmp_path / "digits"))
    assert len(dataset.classes) == 10 and sum(dataset.splits.values()) == 1797
