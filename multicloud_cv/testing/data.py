"""Tiny, learnable image datasets for tests: coloured shapes drawn with Pillow, deterministic."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

SHAPES = ("square", "circle", "triangle", "cross")
COLOURS = {"square": (220, 40, 40), "circle": (40, 180, 60), "triangle": (40, 80, 220), "cross": (230, 200, 30)}


def draw(shape: str, size: int, rng: random.Random) -> Image.Image:
    """One image of ``shape`` at a random position and scale on a noisy background."""
    from PIL import ImageDraw

    background = tuple(rng.randint(0, 60) for _ in range(3))
    from PIL import Image

    image = Image.new("RGB", (size, size), background)
    pen = ImageDraw.Draw(image)
    extent = rng.randint(size // 3, size // 2)
    x0 = rng.randint(0, size - extent - 1)
    y0 = rng.randint(0, size - extent - 1)
    x1, y1 = x0 + extent, y0 + extent
    colour = tuple(min(255, max(0, c + rng.randint(-25, 25))) for c in COLOURS[shape])
    if shape == "square":
        pen.rectangle((x0, y0, x1, y1), fill=colour)
    elif shape == "circle":
        pen.ellipse((x0, y0, x1, y1), fill=colour)
    elif shape == "triangle":
        pen.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=colour)
    else:
        width = max(2, extent // 4)
        pen.rectangle((x0, (y0 + y1) // 2 - width, x1, (y0 + y1) // 2 + width), fill=colour)
        pen.rectangle(((x0 + x1) // 2 - width, y0, (x0 + x1) // 2 + width, y1), fill=colour)
    return image


def make_tiny_dataset(
    root: Path,
    classes: int = 3,
    train_per_class: int = 16,
    test_per_class: int = 6,
    size: int = 32,
    seed: int = 0,
    fmt: str = "PNG",
) -> Path:
    """Write ``root/{train,test}/<shape>/*.png`` and return ``root``."""
    rng = random.Random(seed)
    suffix = ".png" if fmt == "PNG" else ".jpg"
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for shape in SHAPES[:classes]:
            folder = root / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                draw(shape, size, rng).save(folder / f"{shape}_{i:03d}{suffix}", fmt)
    return root
