"""Image loading, validation split and augmentation for the local engine.

Every image is read with :func:`mcv_local.preprocess.decode`, so training sees exactly the
pixels serving will see. Batches are ``(x, y)`` with ``x`` ``uint8`` ``[B, H, W, C]`` (the
layout of the exported ONNX input) and ``y`` a ``long`` class index ``[B]`` (single-label)
or a ``float32`` multi-hot ``[B, K]`` (multilabel).

Two loaders share the :class:`Batches` interface:

* :class:`InMemoryBatches` (``image_size <= 64`` and the pixels fit in a quarter of the
  physical memory): every image is decoded once into one ``uint8`` tensor; augmentation
  (random crop with zero padding, horizontal flip) runs on whole batches with tensor ops.
* :class:`StreamingBatches` (larger images): a :class:`torch.utils.data.DataLoader` decodes
  images in worker processes and applies a random-resized crop and flip per image.

Shuffling and augmentation are seeded from ``(seed, epoch, batch)``, so an epoch can be
resumed part-way through (``start`` batch) and replays exactly.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import random
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from multicloud_cv.workers import usable_cpus

from ._decode import decode_chunk, decode_one
from .errors import EngineError

logger = logging.getLogger(__name__)

IN_MEMORY_MAX_SIZE = 64
"""Images of at most this ``image_size`` are decoded once and kept in memory..."""
IN_MEMORY_MAX_FRACTION = 0.25
"""...unless the decoded pixels would take more than this fraction of the physical memory."""

GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
POOL_MIN_IMAGES = 2000
CHUNK = 500

Sample = tuple[str, list[int]]


def physical_memory() -> int:
    """Bytes of physical memory (a large number when the platform cannot tell)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return 1 << 40


def mix_seed(*parts: int) -> int:
    """Combine integers into one 63-bit seed (stable across processes and runs)."""
    value = 0x9E3779B97F4A7C15
    for part in parts:
        value = (value ^ (part & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        value ^= value >> 31
    return value & 0x7FFFFFFFFFFFFFFF


def generator(*parts: int) -> torch.Generator:
    """A CPU :class:`torch.Generator` seeded with :func:`mix_seed` of ``parts``."""
    return torch.Generator().manual_seed(mix_seed(*parts))


# --------------------------------------------------------------------------------------------- inspection


@dataclass(frozen=True)
class ImageStats:
    """What the engine learns from a sample of the training images (headers only)."""

    sampled: int
    median_side: int
    greyscale: bool


def inspect_images(paths: Sequence[str], sample: int = 256, seed: int = 0) -> ImageStats:
    """Read the headers of up to ``sample`` seeded-random images.

    ``median_side`` is the median of each image's longer side; ``greyscale`` is true when
    every sampled image has a grey mode (``L`` and friends).
    """
    if not paths:
        raise EngineError("no images to inspect")
    chosen = list(paths) if len(paths) <= sample else random.Random(seed).sample(list(paths), sample)
    sides: list[int] = []
    grey = True
    for path in chosen:
        try:
            with Image.open(path) as image:
                sides.append(max(image.size))
                grey = grey and image.mode in GREY_MODES
        except (OSError, UnidentifiedImageError) as exc:
            raise EngineError(f"cannot read image {path}: {exc}") from None
    return ImageStats(sampled=len(chosen), median_side=int(statistics.median(sides)), greyscale=grey)


# ---------------------------------------------------------------------------------------------- splitting


def split_validation(samples: Sequence[Sample], seed: int, fraction: float = 0.1) -> tuple[list[Sample], list[Sample]]:
    """Carve a seeded, stratified ``fraction`` of ``samples`` out as validation.

    Strata are the sorted label tuples. Each stratum gives ``round(fraction * n)`` images but
    always keeps one for training; the validation set gets at least one image whenever
    ``samples`` has two or more. Returns ``(train, val)``, each in the original order.
    """
    if len(samples) < 2:
        raise EngineError("need at least 2 training images to carve out a validation set")
    rng = random.Random(mix_seed(seed, 0x5A1))
    strata: dict[tuple[int, ...], list[int]] = {}
    for index, (_, labels) in enumerate(samples):
        strata.setdefault(tuple(sorted(labels)), []).append(index)
    val_indices: set[int] = set()
    for key in sorted(strata):
        members = strata[key]
        rng.shuffle(members)
        take = min(int(len(members) * fraction + 0.5), len(members) - 1)
        val_indices.update(members[:take])
    if not val_indices:
        largest = max(strata.values(), key=len)
        val_indices.add(largest[0])
    train = [s for i, s in enumerate(samples) if i not in val_indices]
    val = [s for i, s in enumerate(samples) if i in val_indices]
    return train, val


def encode_labels(samples: Sequence[Sample], task: str, num_classes: int) -> torch.Tensor:
    """``long [N]`` class indices for classification, ``float32 [N, K]`` multi-hot for multilabel."""
    if task == "multilabel":
        target = torch.zeros(len(samples), num_classes, dtype=torch.float32)
        for row, (_, labels) in enumerate(samples):
            target[row, list(labels)] = 1.0
        return target
    return torch.tensor([labels[0] for _, labels in samples], dtype=torch.long)


# ---------------------------------------------------------------------------------------------- decoding


def decode_all(paths: Sequence[str], image_size: int, channels: int, workers: int | None = None) -> torch.Tensor:
    """Decode every image once into ``uint8 [N, image_size, image_size, channels]``.

    Uses a process pool of ``workers`` (default: the CPU count, at most 8) when there are
    at least ``POOL_MIN_IMAGES`` images, serial decoding otherwise or when no pool can be
    started.
    """
    start = time.perf_counter()
    out = torch.empty((len(paths), image_size, image_size, channels), dtype=torch.uint8)
    array = out.numpy()
    workers = min(8, usable_cpus()) if workers is None else workers
    jobs = [(list(paths[i : i + CHUNK]), image_size, channels) for i in range(0, len(paths), CHUNK)]
    pooled = False
    if workers > 1 and len(paths) >= POOL_MIN_IMAGES:
        try:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
            with context.Pool(processes=workers) as pool:
                for job_index, chunk in enumerate(pool.imap(decode_chunk, jobs)):
                    array[job_index * CHUNK : job_index * CHUNK + len(chunk)] = chunk
            pooled = True
        except (OSError, RuntimeError) as exc:  # no pool on this platform/sandbox: decode serially
            logger.warning("decoding pool unavailable (%s); decoding serially", exc)
    if not pooled:
        for index, path in enumerate(paths):
            array[index] = decode_one(path, image_size, channels)
    logger.info(
        "decoded %d images at %dpx in %.1fs%s",
        len(paths),
        image_size,
        time.perf_counter() - start,
        f" with {workers} processes" if pooled else "",
    )
    return out


# ------------------------------------------------------------------------------------------- augmentation


def crop_padding(image_size: int) -> int:
    """Default zero padding of the random-crop augmentation of small images (2 px at 28 px)."""
    return max(1, round(image_size / 14))


def augment_batch(x: torch.Tensor, gen: torch.Generator, pad: int, hflip: bool) -> torch.Tensor:
    """Random crop with ``pad`` px zero padding and optional horizontal flip of a ``uint8 [B,H,W,C]`` batch."""
    batch, height, width, _ = x.shape
    if pad > 0:
        padded = F.pad(x, (0, 0, pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (batch,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (batch,), generator=gen)
        rows = (dy[:, None] + torch.arange(height))[:, :, None]
        cols = (dx[:, None] + torch.arange(width))[:, None, :]
        x = padded[torch.arange(batch)[:, None, None], rows, cols]
    if hflip:
        flip = torch.rand(batch, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(2), x)
    return x


def random_resized_crop(
    image: torch.Tensor,
    gen: torch.Generator,
    scale: tuple[float, float] = (0.25, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> torch.Tensor:
    """Crop a random area/aspect ratio of a ``uint8 [H,W,C]`` image and resize it back to ``[H,W]`` (bilinear)."""
    height, width, _ = image.shape
    area = height * width
    for _ in range(10):
        u = torch.rand(3, generator=gen).tolist()
        target = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        aspect = math.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[1])
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            break
    else:
        h, w = height, width
    top = int(torch.randint(0, height - h + 1, (1,), generator=gen))
    left = int(torch.randint(0, width - w + 1, (1,), generator=gen))
    crop = image[top : top + h, left : left + w].permute(2, 0, 1)[None].float()
    resized = F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False)
    return resized[0].permute(1, 2, 0).round_().clamp_(0, 255).to(torch.uint8)


# ----------------------------------------------------------------------------------------------- loaders


class Batches(Protocol):
    """An epoch-seeded source of ``(uint8 [B,H,W,C], labels)`` batches."""

    def __len__(self) -> int: ...

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


def _batch_count(n: int, batch_size: int, train: bool) -> int:
    """Batches in an epoch; training drops a last partial batch smaller than half a batch."""
    if train and n > batch_size and n % batch_size < batch_size // 2:
        return n // batch_size
    return max(1, math.ceil(n / batch_size))


class InMemoryBatches:
    """Batches from images decoded once into memory, augmented per batch with tensor ops."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        train: bool,
        augment: bool,
        hflip: bool,
        seed: int,
        pad: int = 0,
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.train, self.augment, self.hflip, self.seed = batch_size, train, augment, hflip, seed
        self.pad = pad

    def __len__(self) -> int:
        return _batch_count(len(self.images), self.batch_size, self.train)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the batches of ``epoch`` from batch index ``start`` on."""
        n = len(self.images)
        order = torch.randperm(n, generator=generator(self.seed, epoch)) if self.train else torch.arange(n)
        for b in range(start, len(self)):
            index = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = self.images[index]
            if self.train and self.augment:
                x = augment_batch(x, generator(self.seed, epoch, b, 1), self.pad, self.hflip)
            yield x, self.labels[index]


class StreamingImages(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Decodes one image per item; in training mode applies a random-resized crop and flip."""

    def __init__(
        self,
        paths: Sequence[str],
        labels: torch.Tensor,
        image_size: int,
        channels: int,
        *,
        augment: bool,
        hflip: bool,
        seed: int,
    ) -> None:
        self.paths, self.labels = list(paths), labels
        self.image_size, self.channels = image_size, channels
        self.augment, self.hflip, self.seed = augment, hflip, seed
        self.current_epoch = 0

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = torch.from_numpy(decode_one(self.paths[index], self.image_size, self.channels).copy())
        if self.augment:
            gen = generator(self.seed, self.current_epoch, index, 2)
            image = random_resized_crop(image, gen)
            if self.hflip and float(torch.rand(1, generator=gen)) < 0.5:
                image = image.flip(1)
        return image, self.labels[index]


class StreamingBatches:
    """Batches from a :class:`~torch.utils.data.DataLoader` over :class:`StreamingImages`."""

    def __init__(
        self,
        paths: Sequence[str],
        labels: torch.Tensor,
        image_size: int,
        channels: int,
        batch_size: int,
        *,
        train: bool,
        augment: bool,
        hflip: bool,
        seed: int,
        workers: int,
    ) -> None:
        self.dataset = StreamingImages(
            paths, labels, image_size, channels, augment=train and augment, hflip=hflip, seed=seed
        )
        self.batch_size, self.train, self.seed, self.workers = batch_size, train, seed, workers

    def __len__(self) -> int:
        return _batch_count(len(self.dataset), self.batch_size, self.train)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the batches of ``epoch`` from batch index ``start`` on."""
        n = len(self.dataset)
        order = torch.randperm(n, generator=generator(self.seed, epoch)) if self.train else torch.arange(n)
        order = order[start * self.batch_size : len(self) * self.batch_size]
        self.dataset.current_epoch = epoch
        workers = self.workers if len(order) >= 4 * self.batch_size else 0
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch_size, sampler=order.tolist(), num_workers=workers
        )
        yield from loader


@dataclass
class Loaders:
    """Training and validation batches plus what the engine needs to report."""

    train: Batches
    val: Batches
    in_memory: bool
    seconds: float


def build_loaders(
    train: Sequence[Sample],
    val: Sequence[Sample],
    *,
    task: str,
    num_classes: int,
    image_size: int,
    channels: int,
    batch_size: int,
    augment: bool,
    hflip: bool,
    seed: int,
    crop_padding: int = 0,
    workers: int | None = None,
) -> Loaders:
    """Build the training and validation loaders (see the module docstring for which kind).

    ``crop_padding`` applies to in-memory images only; streamed images get a random-resized crop.
    """
    start = time.perf_counter()
    train_labels = encode_labels(train, task, num_classes)
    val_labels = encode_labels(val, task, num_classes)
    workers = min(8, usable_cpus()) if workers is None else workers
    eval_batch = max(batch_size, 256 if image_size <= IN_MEMORY_MAX_SIZE else batch_size)
    train_batches: Batches
    val_batches: Batches
    pixels = (len(train) + len(val)) * image_size * image_size * channels
    in_memory = image_size <= IN_MEMORY_MAX_SIZE and pixels <= IN_MEMORY_MAX_FRACTION * physical_memory()
    if in_memory:
        images = decode_all([p for p, _ in list(train) + list(val)], image_size, channels, workers)
        train_batches = InMemoryBatches(
            images[: len(train)],
            train_labels,
            batch_size,
            train=True,
            augment=augment,
            hflip=hflip,
            seed=seed,
            pad=crop_padding,
        )
        val_batches = InMemoryBatches(
            images[len(train) :], val_labels, eval_batch, train=False, augment=False, hflip=False, seed=seed
        )
    else:
        train_batches = StreamingBatches(
            [p for p, _ in train],
            train_labels,
            image_size,
            channels,
            batch_size,
            train=True,
            augment=augment,
            hflip=hflip,
            seed=seed,
            workers=workers,
        )
        val_batches = StreamingBatches(
            [p for p, _ in val],
            val_labels,
            image_size,
            channels,
            eval_batch,
            train=False,
            augment=False,
            hflip=False,
            seed=seed,
            workers=workers,
        )
    return Loaders(train=train_batches, val=val_batches, in_memory=in_memory, seconds=time.perf_counter() - start)
