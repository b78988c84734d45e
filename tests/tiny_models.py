"""Tiny models trained for real with :mod:`multicloud_cv.emulation.training`, for the export tests
(imported as ``tiny_models``, like ``support``).

* :func:`train_tiny_classifier`: ``small_cnn`` on 18 drawn 32x32 shapes, one epoch (about 3 s on 2 cores).
* :func:`train_tiny_detector`: the FCOS detector on 8 drawn 64x64 images, two steps (about 5 s).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

CLASSES = ["circle", "square", "triangle"]
COLOURS = [(220, 40, 40), (40, 200, 60), (50, 80, 230)]
DETECTION_CLASSES = ["box", "ball"]


@dataclass(frozen=True)
class TinyModel:
    """A trained model folder (``model.onnx`` under the local engine's contract) and images to try it on."""

    model_dir: Path
    task: str
    labels: list[str]
    images: list[Path]
    image_size: int


def _draw(path: Path, shape: int, shapes: list[int], size: int, rng: random.Random) -> None:
    image = Image.new("RGB", (size, size), tuple(rng.randint(0, 60) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    half = size // 2
    for k, item in enumerate(shapes):
        x0, y0 = (k % 2) * half + 1, (k // 2) * half + 1
        box = (x0, y0, x0 + half - 3, y0 + half - 3) if len(shapes) > 1 else (2, 2, size - 3, size - 3)
        if item == 0:
            draw.ellipse(box, fill=COLOURS[item])
        elif item == 1:
            draw.rectangle(box, fill=COLOURS[item])
        else:
            draw.polygon([((box[0] + box[2]) // 2, box[1]), (box[2], box[3]), (box[0], box[3])], fill=COLOURS[item])
    image.save(path)


def train_tiny_classifier(root: Path, task: str = "classification", size: int = 32) -> TinyModel:
    """Train a 1-epoch classifier (``classification`` or ``multilabel``) into ``root/model``."""
    from multicloud_cv.emulation import training as kit

    rng = random.Random(0)
    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    samples: list[tuple[str, list[int]]] = []
    for index in range(18):
        shape = index % 3
        labels = sorted(rng.sample(range(3), rng.randint(1, 3))) if task == "multilabel" else [shape]
        path = folder / f"{index:03d}.png"
        _draw(path, shape, labels, size, rng)
        samples.append((str(path), labels))
    kit.train_classifier(
        task=task,
        classes=CLASSES,
        train=samples,
        val=[],
        image_size=size,
        epochs=1,
        batch_size=8,
        threads=1,
        patience=1,
        workdir=root / "work",
        model_dir=root / "model",
        model_id=f"tiny-{task}",
        should_stop=lambda: False,
    )
    return TinyModel(root / "model", task, list(CLASSES), [Path(p) for p, _ in samples[:6]], size)


def train_tiny_detector(root: Path, side: int = 64) -> TinyModel:
    """Train a 2-step detector on 8 drawn ``side`` x ``side`` images (one or two shapes each) into ``root/model``."""
    from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
    from multicloud_cv.emulation import training as kit

    rng = random.Random(1)
    folder = root / "data"
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for index in range(8):
        image = Image.new("RGB", (side, side), tuple(rng.randint(0, 60) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        boxes = []
        for k in range(1 + index % 2):
            label = (index + k) % 2
            extent = rng.randint(side // 4, side // 2)
            x0 = rng.randint(0, side // 2 - 1) if k == 0 else side // 2
            y0 = rng.randint(0, side - extent)
            box = (x0, y0, min(side - 1, x0 + extent), y0 + extent)
            if label == 0:
                draw.rectangle(box, fill=COLOURS[1])
            else:
                draw.ellipse(box, fill=COLOURS[2])
            boxes.append(BoxAnnotation(label, *(float(v) for v in box)))
        name = f"{index:03d}.png"
        image.save(folder / name)
        split = "train" if index < 6 else "test"
        records.append(ImageRecord(name, boxes=tuple(boxes), split=split, width=side, height=side))
    dataset = Dataset(root=folder, classes=list(DETECTION_CLASSES), images=records, task="detection")
    kit.train_detector(
        dataset,
        image_size=(side, side),
        epochs=1,
        max_steps=2,
        threads=1,
        pretrained=kit.pretrained_backbone_problem() is None,
        workdir=root / "work",
        onnx_path=root / "model" / "model.onnx",
        model_id="tiny-detection",
        should_stop=lambda: False,
    )
    images = [dataset.absolute(record) for record in records[:4]]
    return TinyModel(root / "model", "detection", list(DETECTION_CLASSES), images, side)
