"""The canonical dataset every format is read into and written from.

Lazy by design: a :class:`Dataset` holds paths, class indices and sizes when known, never
pixels. Reading a dataset's annotations never decodes an image; only
:mod:`multicloud_cv.datasets.validate` does, when a check needs it.
"""

from __future__ import annotations

import gc
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

SPLITS = ("train", "validation", "test")


# The two record classes below are frozen dataclasses with a hand-written ``__init__``: the generated
# one of a frozen dataclass sets each field through ``object.__setattr__``, about 2 us a record, and
# readers build hundreds of thousands of them; filling ``__dict__`` directly takes a third of that.
# Everything else (equality, hashing, repr, ``dataclasses.replace``, immutability) is the dataclass's.


@dataclass(frozen=True, init=False)
class BoxAnnotation:
    """An object box in pixels of the original image: ``x_min, y_min, x_max, y_max`` and class index."""

    label: int
    x_min: float
    y_min: float
    x_max: float
    y_max: float

    def __init__(self, label: int, x_min: float, y_min: float, x_max: float, y_max: float) -> None:
        fields = self.__dict__
        fields["label"] = label
        fields["x_min"] = x_min
        fields["y_min"] = y_min
        fields["x_max"] = x_max
        fields["y_max"] = y_max


@dataclass(frozen=True, init=False)
class ImageRecord:
    """One image: where it is, its class indices, its boxes and its split (``None`` = unassigned)."""

    path: str
    labels: tuple[int, ...] = ()
    boxes: tuple[BoxAnnotation, ...] = ()
    split: str | None = None
    width: int | None = None
    height: int | None = None

    def __init__(
        self,
        path: str,
        labels: tuple[int, ...] = (),
        boxes: tuple[BoxAnnotation, ...] = (),
        split: str | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        fields = self.__dict__
        fields["path"] = path
        fields["labels"] = labels
        fields["boxes"] = boxes
        fields["split"] = split
        fields["width"] = width
        fields["height"] = height


@dataclass
class Dataset:
    """Images with classes (stable indices) and splits.

    ``task`` is ``classification`` (one label per image), ``multilabel`` or ``detection``.
    ``root`` is the directory the dataset was read from, ``source_format`` the reader used.
    """

    root: Path
    classes: list[str]
    images: list[ImageRecord]
    task: str = "classification"
    source_format: str = "folder"
    notes: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[ImageRecord]:
        """Images of one split."""
        return [image for image in self.images if image.split == name]

    @property
    def splits(self) -> dict[str, int]:
        """Number of images per split name (``unassigned`` for ``None``)."""
        counts = Counter(image.split or "unassigned" for image in self.images)
        return dict(counts)

    def label_counts(self, images: Iterable[ImageRecord] | None = None) -> dict[str, int]:
        """Images per class name (an image counts once per label it carries)."""
        counts: Counter[int] = Counter()
        for image in self.images if images is None else images:
            counts.update(set(image.labels) | {box.label for box in image.boxes})
        return {name: counts.get(index, 0) for index, name in enumerate(self.classes)}

    def with_split(self, test_fraction: float = 0.2, validation_fraction: float = 0.0, seed: int = 0) -> Dataset:
        """Assign unassigned images to splits, stratified by first label, seeded (reproducible).

        Images that already have a split keep it.
        """
        rng = random.Random(seed)
        by_label: dict[int, list[int]] = {}
        for position, image in enumerate(self.images):
            if image.split is None:
                key = image.labels[0] if image.labels else (image.boxes[0].label if image.boxes else -1)
                by_label.setdefault(key, []).append(position)
        images = list(self.images)
        for positions in by_label.values():
            rng.shuffle(positions)
            n_test = round(len(positions) * test_fraction)
            n_val = round(len(positions) * validation_fraction)
            for rank, position in enumerate(positions):
                split = "test" if rank < n_test else "validation" if rank < n_test + n_val else "train"
                images[position] = replace(images[position], split=split)
        return replace(self, images=images)

    def absolute(self, image: ImageRecord) -> Path:
        """The image's path resolved against the dataset root."""
        path = Path(image.path)
        return path if path.is_absolute() else self.root / path


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects.

    Reading 100,000 boxes allocates a few hundred thousand tuples and records, and each
    700 allocations trigger a collection that walks them all again: pausing it halves the
    time of :func:`read`. Reference counting still frees everything; the collector's
    previous state is restored on exit (it is process-wide, so other threads see the pause).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
