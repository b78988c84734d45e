"""Tiny annotated datasets for format tests, and the round-trip comparison every format test uses.

:func:`make_detection_dataset` and :func:`make_multilabel_dataset` write small PNGs with
exact boxes (non-square images, so a swapped x/y shows) and return the canonical
:class:`~multicloud_cv.datasets.Dataset`. :func:`assert_same_dataset` checks that two
datasets hold the same classes (in order), and per image (matched by content hash) the
same labels, boxes (within a tolerance in pixels), split and size: "nothing lost".
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from pathlib import Path

from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.testing.data import COLOURS

DETECTION_CLASSES = ["square", "circle", "triangle"]


def _paint(size: tuple[int, int], shapes: list[tuple[int, tuple[int, int, int, int]]], rng: random.Random) -> object:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, tuple(rng.randint(0, 60) for _ in range(3)))
    pen = ImageDraw.Draw(image)
    for label, (x0, y0, x1, y1) in shapes:
        colour = COLOURS[DETECTION_CLASSES[label]]
        if label == 0:
            pen.rectangle((x0, y0, x1 - 1, y1 - 1), fill=colour)
        elif label == 1:
            pen.ellipse((x0, y0, x1 - 1, y1 - 1), fill=colour)
        else:
            pen.polygon([(x0, y1 - 1), (x1 - 1, y1 - 1), ((x0 + x1) // 2, y0)], fill=colour)
    return image


def make_detection_dataset(
    root: Path, per_split: dict[str, int] | None = None, size: tuple[int, int] = (64, 48), seed: int = 0
) -> Dataset:
    """Write ``root/images/*.png`` with 0-3 shapes each and return the detection dataset.

    The first image of the train split has no boxes (a negative sample). Boxes are in
    pixels, exact, inside the image, ``x_max``/``y_max`` exclusive.
    """
    per_split = per_split or {"train": 8, "validation": 3, "test": 3}
    rng = random.Random(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images: list[ImageRecord] = []
    width, height = size
    for split, count in per_split.items():
        for i in range(count):
            n = 0 if (split == "train" and i == 0) else rng.randint(1, 3)
            shapes = []
            for k in range(n):
                label = (i + k) % len(DETECTION_CLASSES)
                w, h = rng.randint(8, width // 2), rng.randint(8, height // 2)
                x0, y0 = rng.randint(0, width - w), rng.randint(0, height - h)
                shapes.append((label, (x0, y0, x0 + w, y0 + h)))
            name = f"images/{split}_{i:03d}.png"
            _paint(size, shapes, rng).save(root / name)  # type: ignore[attr-defined]
            boxes = tuple(BoxAnnotation(label, *map(float, xyxy)) for label, xyxy in shapes)
            images.append(ImageRecord(name, labels=(), boxes=boxes, split=split, width=width, height=height))
    return Dataset(root=root, classes=list(DETECTION_CLASSES), images=images, task="detection", source_format="test")


def make_multilabel_dataset(
    root: Path, per_split: dict[str, int] | None = None, size: tuple[int, int] = (40, 32), seed: int = 0
) -> Dataset:
    """Write ``root/images/*.png`` with one or two shapes each and return the multi-label dataset."""
    detection = make_detection_dataset(root, per_split, size, seed)
    images = []
    for position, image in enumerate(detection.images):
        labels = tuple(sorted({box.label for box in image.boxes})) or (position % len(DETECTION_CLASSES),)
        images.append(ImageRecord(image.path, labels=labels, split=image.split, width=image.width, height=image.height))
    return Dataset(root=root, classes=list(DETECTION_CLASSES), images=images, task="multilabel", source_format="test")


def _key(dataset: Dataset, image: ImageRecord) -> str:
    path = dataset.absolute(image)
    if path.is_file():
        return hashlib.sha1(path.read_bytes()).hexdigest()
    return Path(image.path).name


def _boxes(image: ImageRecord) -> list[tuple[int, float, float, float, float]]:
    return sorted((b.label, b.x_min, b.y_min, b.x_max, b.y_max) for b in image.boxes)


def assert_same_dataset(
    expected: Dataset, actual: Dataset, *, check_split: bool = True, box_tolerance: float = 0.5
) -> None:
    """Assert ``actual`` holds what ``expected`` holds; the message names the first difference."""
    assert actual.classes == expected.classes, f"classes differ: {actual.classes} != {expected.classes}"
    assert actual.task == expected.task, f"task differs: {actual.task} != {expected.task}"
    assert len(actual.images) == len(expected.images), f"{len(actual.images)} images != {len(expected.images)}"
    by_key = {_key(actual, image): image for image in actual.images}
    counts = Counter(_key(expected, image) for image in expected.images)
    assert len(by_key) == len(counts), "images differ (matched by content)"
    for image in expected.images:
        got = by_key.get(_key(expected, image))
        assert got is not None, f"{image.path} is missing after the round trip"
        assert sorted(set(got.labels)) == sorted(set(image.labels)), (
            f"{image.path}: labels {got.labels} != {image.labels}"
        )
        want, have = _boxes(image), _boxes(got)
        assert len(have) == len(want), f"{image.path}: {len(have)} boxes != {len(want)}"
        for w, h in zip(want, have, strict=True):
            assert w[0] == h[0], f"{image.path}: box label {h[0]} != {w[0]}"
            assert all(abs(a - b) <= box_tolerance for a, b in zip(w[1:], h[1:], strict=True)), (
                f"{image.path}: box {h} != {w}"
            )
        if check_split:
            assert got.split == image.split, f"{image.path}: split {got.split} != {image.split}"
        if image.width and got.width:
            assert (got.width, got.height) == (image.width, image.height), f"{image.path}: size differs"
