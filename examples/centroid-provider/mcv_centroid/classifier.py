"""The model itself: nearest class centroid on a small RGB thumbnail of each image.

Every image is reduced to a ``size x size`` RGB thumbnail (area averaging) and flattened to
``size * size * 3`` numbers in 0..1. Training averages the vectors of each class into one
centroid; prediction measures the Euclidean distance to every centroid and turns the
negative distances into confidences with a softmax. Standard library and Pillow only;
Pillow is imported inside :func:`features`, never at module load.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Written into every model file; a reader refuses a file of another format.
MODEL_FORMAT = "mcv-centroid/1"


def features(image: bytes | Path, size: int) -> list[float]:
    """The image as a flattened ``size x size`` RGB thumbnail, ``size * size * 3`` values in 0..1.

    Raises ``OSError`` (Pillow's ``UnidentifiedImageError`` is one) when the image cannot be decoded.
    """
    from PIL import Image

    source = io.BytesIO(image) if isinstance(image, bytes) else image
    with Image.open(source) as opened:
        thumbnail = opened.convert("RGB").resize((size, size), Image.Resampling.BOX)
    return [value / 255.0 for value in thumbnail.tobytes()]


@dataclass(frozen=True)
class CentroidModel:
    """One centroid per class, in the dataset's class order (so a class index is a list position)."""

    classes: list[str]
    centroids: list[list[float]]
    thumbnail_size: int

    def distances(self, vector: Sequence[float]) -> list[float]:
        """Euclidean distance from ``vector`` to each class centroid, in class order."""
        return [math.dist(vector, centroid) for centroid in self.centroids]

    def nearest(self, vector: Sequence[float]) -> int:
        """The index of the class whose centroid is closest to ``vector``."""
        distances = self.distances(vector)
        return distances.index(min(distances))

    def confidences(self, vector: Sequence[float]) -> list[float]:
        """Softmax of the negative distances, in class order: each in 0..1, summing to 1."""
        distances = self.distances(vector)
        nearest = min(distances)
        weights = [math.exp(nearest - d) for d in distances]  # shifted by the minimum: no overflow
        total = sum(weights)
        return [w / total for w in weights]

    def to_json(self) -> dict[str, Any]:
        """The model file's content."""
        return {
            "format": MODEL_FORMAT,
            "thumbnail_size": self.thumbnail_size,
            "classes": self.classes,
            "centroids": self.centroids,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CentroidModel:
        """Read a model file's content; ``ValueError`` when it is not a centroid model."""
        if data.get("format") != MODEL_FORMAT:
            raise ValueError(f"not a {MODEL_FORMAT} model file (format: {data.get('format')!r})")
        return cls(
            classes=list(data["classes"]),
            centroids=[list(c) for c in data["centroids"]],
            thumbnail_size=int(data["thumbnail_size"]),
        )

    @classmethod
    def load(cls, path: Path) -> CentroidModel:
        """Read a model file written by :meth:`save`."""
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))

    def save(self, path: Path) -> None:
        """Write the model file (to a temporary name first, so a reader never sees half a file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(self.to_json()), encoding="utf-8")
        partial.replace(path)


def fit(samples: Iterable[tuple[Sequence[float], int]], classes: Sequence[str], thumbnail_size: int) -> CentroidModel:
    """Average the feature vectors of each class index into its centroid.

    ``samples`` are ``(vector, class index)`` pairs. Raises ``ValueError`` when a class has no sample.
    """
    sums: list[list[float] | None] = [None] * len(classes)
    counts = [0] * len(classes)
    for vector, index in samples:
        current = sums[index]
        sums[index] = list(vector) if current is None else [a + b for a, b in zip(current, vector, strict=True)]
        counts[index] += 1
    empty = [classes[i] for i, count in enumerate(counts) if count == 0]
    if empty:
        raise ValueError(f"no training images for class(es): {', '.join(empty)}")
    centroids = [[value / count for value in total or []] for total, count in zip(sums, counts, strict=True)]
    return CentroidModel(classes=list(classes), centroids=centroids, thumbnail_size=thumbnail_size)
