"""Real datasets that ship with this machine's packages, written out as image folders.

Fashion-MNIST comes from the Debian package ``dataset-fashion-mnist`` (idx files under
``/usr/share/datasets/fashion-mnist``); when it is absent, scikit-learn's digits are used.
Nothing is downloaded. A dataset is written to a temporary folder and renamed into
place when complete, so an interrupted run never leaves a partial dataset.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

from multicloud_cv.errors import DatasetError

log = logging.getLogger(__name__)

FASHION_MNIST_DIR = Path(os.environ.get("MCV_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_CLASSES = [
    "t-shirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
]


def fashion_mnist_available() -> bool:
    """True when the Debian package's idx files are present."""
    return (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file()


def read_idx(images_gz: Path, labels_gz: Path) -> tuple[list[bytes], list[int], int, int]:
    """Read an idx image/label pair: raw 8-bit pixel rows per image, labels, height, width."""
    with gzip.open(images_gz, "rb") as handle:
        magic, count, rows, cols = struct.unpack(">IIII", handle.read(16))
        if magic != 2051:
            raise DatasetError(f"{images_gz} is not an idx3 image file (magic {magic})")
        raw = handle.read(count * rows * cols)
    with gzip.open(labels_gz, "rb") as handle:
        magic, n_labels = struct.unpack(">II", handle.read(8))
        if magic != 2049 or n_labels != count:
            raise DatasetError(f"{labels_gz} does not match {images_gz}")
        labels = list(handle.read(n_labels))
    size = rows * cols
    return [raw[i * size : (i + 1) * size] for i in range(count)], labels, rows, cols


def _write_split(
    dest: Path,
    split: str,
    classes: list[str],
    pixels: list[bytes],
    labels: list[int],
    size: tuple[int, int],
    per_class: int | None,
    on_file: Callable[[], None] | None,
) -> int:
    from PIL import Image

    counts = dict.fromkeys(range(len(classes)), 0)
    written = 0
    for position, (raw, label) in enumerate(zip(pixels, labels, strict=True)):
        if per_class is not None and counts[label] >= per_class:
            continue
        counts[label] += 1
        folder = dest / split / classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.frombytes("L", size, raw).save(folder / f"{split}_{position:05d}.png", optimize=False)
        written += 1
        if on_file is not None:
            on_file()
    return written


def write_fashion_mnist(
    dest: Path,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    on_file: Callable[[], None] | None = None,
) -> Path:
    """Write Fashion-MNIST as ``dest/{train,test}/<class>/*.png``; return ``dest``. Reused when complete."""
    if (dest / ".complete").exists():
        return dest
    if not fashion_mnist_available():
        raise DatasetError(
            f"Fashion-MNIST is not installed at {FASHION_MNIST_DIR}; "
            "install it with: apt-get install dataset-fashion-mnist"
        )
    train = read_idx(FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz", FASHION_MNIST_DIR / "train-labels-idx1-ubyte.gz")
    test = read_idx(FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz", FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    return _atomic_write(
        dest,
        lambda tmp: (
            _write_split(
                tmp, "train", FASHION_CLASSES, train[0], train[1], (train[3], train[2]), train_per_class, on_file
            ),
            _write_split(tmp, "test", FASHION_CLASSES, test[0], test[1], (test[3], test[2]), test_per_class, on_file),
        ),
    )


def write_digits(dest: Path, on_file: Callable[[], None] | None = None) -> Path:
    """Write scikit-learn's 8x8 digits (1,797 images) as ``dest/{train,test}/<digit>/*.png``, 20% test."""
    if (dest / ".complete").exists():
        return dest
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise DatasetError(
            "no bundled dataset found: install the Debian package dataset-fashion-mnist or scikit-learn"
        ) from exc
    digits = load_digits()
    pixels = [bytes(int(v * 255 / 16) for v in row) for row in digits.data]
    labels = [int(t) for t in digits.target]
    classes = [str(i) for i in range(10)]
    test_idx = set(range(0, len(labels), 5))

    def write(tmp: Path) -> None:
        _write_split(
            tmp,
            "train",
            classes,
            [p for i, p in enumerate(pixels) if i not in test_idx],
            [t for i, t in enumerate(labels) if i not in test_idx],
            (8, 8),
            None,
            on_file,
        )
        _write_split(
            tmp,
            "test",
            classes,
            [p for i, p in enumerate(pixels) if i in test_idx],
            [t for i, t in enumerate(labels) if i in test_idx],
            (8, 8),
            None,
            on_file,
        )

    return _atomic_write(dest, write)


def _atomic_write(dest: Path, write: Callable[[Path], object]) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        write(tmp)
        (tmp / ".complete").touch()
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def demo_dataset(
    home: Path, train_per_class: int = 500, test_per_class: int = 100, on_file: Callable[[], None] | None = None
) -> tuple[Path, str]:
    """The demo's dataset folder and its name: a Fashion-MNIST subset, else scikit-learn digits."""
    if fashion_mnist_available():
        dest = home / "datasets" / f"fashion-mnist-{train_per_class}-{test_per_class}"
        return write_fashion_mnist(dest, train_per_class, test_per_class, on_file), "fashion-mnist"
    log.info("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist); using scikit-learn digits")
    return write_digits(home / "datasets" / "digits", on_file), "digits"
