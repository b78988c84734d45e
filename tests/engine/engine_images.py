"""Tiny synthetic image sets drawn with Pillow, for the engine tests."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

CLASSES = ["circle", "square", "triangle"]
COLOURS = [(220, 40, 40), (40, 200, 60), (50, 80, 230)]

Samples = list[tuple[str, list[int]]]


def draw_shape(draw: ImageDraw.ImageDraw, shape: int, box: tuple[int, int, int, int], fill: tuple[int, ...]) -> None:
    """Draw shape ``shape`` (0 circle, 1 square, 2 triangle) inside ``box``."""
    x0, y0, x1, y1 = box
    if shape == 0:
        draw.ellipse(box, fill=fill)
    elif shape == 1:
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=fill)


def make_images(
    folder: Path, per_class: int, seed: int, size: int = 32, mode: str = "RGB", multilabel: bool = False
) -> Samples:
    """Write ``per_class`` images per class (PNG) and return ``(path, labels)`` samples.

    Single-label: one coloured shape per image, the class is the shape (colour matches it too).
    Multilabel: each image holds a random non-empty subset of the three shapes, in quadrants.
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    samples: Samples = []
    for index in range(per_class * len(CLASSES)):
        background = tuple(rng.randint(0, 60) for _ in range(3))
        image = Image.new("RGB", (size, size), background)
        draw = ImageDraw.Draw(image)
        if multilabel:
            labels = sorted(rng.sample(range(3), rng.randint(1, 3)))
            cells = rng.sample([(0, 0), (1, 0), (0, 1), (1, 1)], len(labels))
            half = size // 2
            for shape, (cx, cy) in zip(labels, cells, strict=True):
                margin = rng.randint(1, 3)
                box = (cx * half + margin, cy * half + margin, (cx + 1) * half - margin, (cy + 1) * half - margin)
                draw_shape(draw, shape, box, COLOURS[shape])
        else:
            shape = index % len(CLASSES)
            labels = [shape]
            extent = rng.randint(size // 2, size - 4)
            x0, y0 = rng.randint(0, size - extent), rng.randint(0, size - extent)
            draw_shape(draw, shape, (x0, y0, x0 + extent - 1, y0 + extent - 1), COLOURS[shape])
        if mode != "RGB":
            image = image.convert(mode)
        path = folder / f"{index:04d}.png"
        image.save(path)
        samples.append((str(path), labels))
    return samples
