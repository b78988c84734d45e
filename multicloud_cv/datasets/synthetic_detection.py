"""Real detection data made offline and reproducibly: real object crops pasted on real photos, exact boxes.

Objects are Fashion-MNIST items (the Debian package ``dataset-fashion-mnist``, idx files
under :data:`multicloud_cv.bundled.FASHION_MNIST_DIR`) and backgrounds are the photos
bundled with scikit-learn (``china.jpg``, ``flower.jpg``; plus scikit-image's
``astronaut``, ``coffee``, ``chelsea``, ``rocket``... with ``extra_backgrounds=True``
when scikit-image is importable). Nothing is downloaded and no image is committed.

Layout written by :func:`generate_detection_dataset`::

    dest/images/00000.jpg ... dest/images/NNNNN.jpg     (.png with image_format="png")

and nothing else: the canonical :class:`~multicloud_cv.datasets.model.Dataset` is returned
(task ``detection``, splits assigned, sizes set, ``root = dest``, paths relative to it)
and the caller writes it in any format with
:func:`multicloud_cv.datasets.formats.write_dataset`. The images are written into a
temporary folder beside it (``dest/.images.*``) renamed to ``dest/images`` when complete.

How an image is made (all choices from one ``numpy`` generator seeded with ``seed``, so
the same arguments give the same bytes with the same numpy, Pillow and libjpeg):

* background: a random crop (35-100 % of the largest crop with the output's aspect ratio)
  of a random photo, resized to ``size``, maybe mirrored, brightness jittered; or a flat
  ``background`` colour (used by the tests to check the boxes pixel by pixel);
* 1..``max_objects`` objects of random classes; train-split objects come from the
  Fashion-MNIST training file, validation/test objects from the t10k file, so test
  objects are items never seen in training. An item is mirrored at random, cropped to its
  pixels above :data:`MASK_THRESHOLD`, scaled (aspect kept) so its longer side is a random
  fraction ``object_scale`` of the image's shorter side (15-45 %: 36-108 px at 320x240),
  colourised (random hue, the item's intensity as shading) and pasted with its
  silhouette as alpha: the item's intensity (items are on black), zero below
  :data:`MASK_THRESHOLD`, at least 0.35 above it. The box is the tight bounding box of the
  non-zero alpha after scaling (``x_max``/``y_max`` exclusive, in pixels): exact, every
  pixel outside the boxes is background;
* an object is placed only where its overlap with every earlier box (intersection over
  the smaller box, hence IoU too) is at most ``max_overlap``; after 30 failed positions
  it is dropped, so an image may hold fewer objects than drawn;
* ``negative_fraction`` of the images (5 %, at least one when there are two images or
  more) hold no object: negatives;
* splits: the images are shuffled and cut by ``splits`` (train, validation, test
  fractions), rounded; ``splits=None`` leaves every image unassigned.

Generation is fast (a few ms an image: Pillow resizes, numpy blends): 500 images at
320x240 take about two seconds on one core.
"""

from __future__ import annotations

import colorsys
import functools
import gzip
import importlib.util
import logging
import os
import shutil
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from multicloud_cv.datasets.model import SPLITS, BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError

if TYPE_CHECKING:
    import numpy.typing as npt
    from PIL import Image as PILImage

log = logging.getLogger(__name__)

#: Visually distinct Fashion-MNIST classes used when ``classes`` is not given.
DEFAULT_CLASSES = ["t-shirt_top", "trouser", "sneaker", "bag", "ankle_boot"]
#: Item intensity (0..1) below which a Fashion-MNIST pixel is background.
MASK_THRESHOLD = 0.1
#: Alpha of the faintest pasted pixel; the item is opaque from intensity ~0.32 up.
MIN_ALPHA = 0.35
SKIMAGE_BACKGROUNDS = ("astronaut", "coffee", "chelsea", "rocket")
SOURCE_FORMAT = "synthetic-detection"


def _canonical(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("/", "_")


def resolve_classes(classes: Sequence[str] | None) -> list[str]:
    """Fashion-MNIST class names for ``classes`` (``None``: :data:`DEFAULT_CLASSES`).

    Names are case-insensitive; spaces and ``/`` read as ``_`` (``ankle boot`` is ``ankle_boot``).
    """
    from multicloud_cv.bundled import FASHION_CLASSES

    if classes is None:
        return list(DEFAULT_CLASSES)
    names = [_canonical(name) for name in classes]
    unknown = [name for name in names if name not in FASHION_CLASSES]
    if unknown:
        raise DatasetError(
            f"unknown object class(es) {', '.join(unknown)}; choose among the Fashion-MNIST classes: "
            + ", ".join(FASHION_CLASSES)
        )
    if not names:
        raise DatasetError("no object class given; choose at least one of: " + ", ".join(FASHION_CLASSES))
    if len(set(names)) != len(names):
        raise DatasetError(f"object classes repeat: {', '.join(names)}; give each class once")
    return names


@functools.lru_cache(maxsize=2)
def _fashion_items(directory: str, prefix: str) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Items ``(N, 28, 28)`` and labels ``(N,)`` of one idx file pair (``train`` or ``t10k``)."""
    images_gz = Path(directory) / f"{prefix}-images-idx3-ubyte.gz"
    labels_gz = Path(directory) / f"{prefix}-labels-idx1-ubyte.gz"
    try:
        with gzip.open(images_gz, "rb") as handle:
            raw = handle.read()
        with gzip.open(labels_gz, "rb") as handle:
            raw_labels = handle.read()
    except OSError as exc:
        raise DatasetError(
            f"cannot read Fashion-MNIST ({exc}); install it with: apt-get install dataset-fashion-mnist"
        ) from exc
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != 2051 or len(raw) < 16 + count * rows * cols:
        raise DatasetError(f"{images_gz} is not a complete idx3 image file; reinstall dataset-fashion-mnist")
    magic_labels, n_labels = struct.unpack(">II", raw_labels[:8])
    if magic_labels != 2049 or n_labels != count:
        raise DatasetError(f"{labels_gz} does not match {images_gz}; reinstall dataset-fashion-mnist")
    items = np.frombuffer(raw, dtype=np.uint8, count=count * rows * cols, offset=16).reshape(count, rows, cols)
    labels = np.frombuffer(raw_labels, dtype=np.uint8, count=count, offset=8)
    return items, labels


def _photo_paths() -> list[Path]:
    """scikit-learn's bundled sample photos, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return []
    folder = Path(spec.origin).parent / "datasets" / "images"
    return [path for path in (folder / "china.jpg", folder / "flower.jpg") if path.is_file()]


def _load_photos(extra_backgrounds: bool) -> list[PILImage.Image]:
    from PIL import Image

    photos = []
    for path in _photo_paths():
        with Image.open(path) as opened:
            photos.append(opened.convert("RGB"))
    if extra_backgrounds:
        if importlib.util.find_spec("skimage") is None:
            raise DatasetError("extra_backgrounds needs scikit-image: pip install scikit-image")
        from skimage import data as skdata

        for name in SKIMAGE_BACKGROUNDS:
            array = np.asarray(getattr(skdata, name)())
            if array.ndim == 2:
                array = np.stack([array] * 3, axis=-1)
            photos.append(Image.fromarray(np.ascontiguousarray(array[..., :3]).astype(np.uint8), "RGB"))
    if not photos:
        raise DatasetError(
            "no background photos: install scikit-learn (its bundled sample photos are the backgrounds) "
            "or pass a flat background colour"
        )
    return photos


def _background(
    rng: np.random.Generator, photos: Sequence[PILImage.Image], size: tuple[int, int]
) -> npt.NDArray[np.float32]:
    from PIL import Image

    width, height = size
    photo = photos[int(rng.integers(len(photos)))]
    pw, ph = photo.size
    aspect = width / height
    crop_w = min(pw, ph * aspect) * float(rng.uniform(0.35, 1.0))
    crop_h = crop_w / aspect
    x0 = float(rng.uniform(0, pw - crop_w))
    y0 = float(rng.uniform(0, ph - crop_h))
    resized = photo.resize(size, Image.Resampling.BILINEAR, box=(x0, y0, x0 + crop_w, y0 + crop_h))
    pixels = np.asarray(resized, dtype=np.float32)
    if rng.random() < 0.5:
        pixels = pixels[:, ::-1]
    return np.clip(pixels * float(rng.uniform(0.75, 1.2)), 0, 255)


def _item_sprite(
    rng: np.random.Generator, item: npt.NDArray[np.uint8], long_side: int, colourise: bool
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The scaled, coloured item ``(h, w, 3)`` and its alpha ``(h, w)``, cropped to the alpha's tight box."""
    from PIL import Image

    if rng.random() < 0.5:
        item = item[:, ::-1]
    ys, xs = np.nonzero(item > MASK_THRESHOLD * 255)
    crop = np.ascontiguousarray(item[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
    h0, w0 = crop.shape
    scale = long_side / max(h0, w0)
    target = (max(1, round(w0 * scale)), max(1, round(h0 * scale)))
    shade = np.asarray(Image.fromarray(crop, "L").resize(target, Image.Resampling.BILINEAR), dtype=np.float32) / 255
    alpha = np.where(shade > MASK_THRESHOLD, np.clip(MIN_ALPHA + (shade - MASK_THRESHOLD) * 3, 0, 1), 0)
    ys, xs = np.nonzero(alpha)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    shade, alpha = shade[y0:y1, x0:x1], alpha[y0:y1, x0:x1].astype(np.float32)
    if colourise:
        rgb = colorsys.hsv_to_rgb(float(rng.random()), float(rng.uniform(0.45, 1.0)), float(rng.uniform(0.8, 1.0)))
    else:
        grey = float(rng.uniform(0.8, 1.0))
        rgb = (grey, grey, grey)
    colour = np.array(rgb, dtype=np.float32) * 255
    sprite = colour[None, None, :] * (0.4 + 0.6 * shade)[..., None]
    return sprite.astype(np.float32), alpha


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over the smaller box's area (>= IoU)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller


def _split_names(count: int, splits: tuple[float, float, float] | None, rng: np.random.Generator) -> list[str | None]:
    if splits is None:
        return [None] * count
    if len(splits) != len(SPLITS) or any(f < 0 for f in splits) or abs(sum(splits) - 1.0) > 1e-6:
        raise DatasetError(f"splits {splits} must be three fractions >= 0 (train, validation, test) summing to 1")
    n_train = round(count * splits[0])
    n_val = min(count - n_train, round(count * splits[1]))
    names = [SPLITS[0]] * n_train + [SPLITS[1]] * n_val + [SPLITS[2]] * (count - n_train - n_val)
    assigned: list[str | None] = [None] * count
    for rank, position in enumerate(rng.permutation(count)):
        assigned[int(position)] = names[rank]
    return assigned


def generate_detection_dataset(
    dest: Path,
    classes: Sequence[str] | None = None,
    images: int = 200,
    seed: int = 0,
    size: tuple[int, int] = (320, 240),
    max_objects: int = 4,
    splits: tuple[float, float, float] | None = (0.7, 0.15, 0.15),
    *,
    negative_fraction: float = 0.05,
    object_scale: tuple[float, float] = (0.15, 0.45),
    max_overlap: float = 0.15,
    colourise: bool = True,
    background: tuple[int, int, int] | None = None,
    extra_backgrounds: bool = False,
    image_format: str = "jpeg",
    quality: int = 90,
) -> Dataset:
    """Write ``images`` synthetic detection images under ``dest/images`` and return the dataset.

    ``classes`` are Fashion-MNIST class names (default :data:`DEFAULT_CLASSES`), kept in the
    order given (class index order). ``size`` is ``(width, height)``. ``background`` is a
    flat RGB colour instead of photos; ``extra_backgrounds`` adds scikit-image's photos
    (off by default so the output does not depend on whether scikit-image is installed).
    ``image_format`` is ``"jpeg"`` or ``"png"`` (lossless: pixel-exact checks). See the
    module docstring for how each image is made. Raises :class:`DatasetError` when a
    source is missing or an argument is out of range.
    """
    from PIL import Image

    from multicloud_cv.bundled import FASHION_CLASSES, FASHION_MNIST_DIR, fashion_mnist_available

    names = resolve_classes(classes)
    width, height = size
    if images < 1:
        raise DatasetError(f"images={images}: generate at least one image")
    if max_objects < 1:
        raise DatasetError(f"max_objects={max_objects}: allow at least one object per image")
    if min(size) < 32:
        raise DatasetError(f"size {size} is too small; use at least 32x32 pixels")
    low, high = object_scale
    if not 0 < low <= high <= 1:
        raise DatasetError(f"object_scale {object_scale} must be fractions 0 < low <= high <= 1 of the shorter side")
    if not 0 <= negative_fraction <= 1:
        raise DatasetError(f"negative_fraction {negative_fraction} must be between 0 and 1")
    if image_format not in ("jpeg", "png"):
        raise DatasetError(f"image_format {image_format!r}: use 'jpeg' or 'png'")
    if not fashion_mnist_available():
        raise DatasetError(
            f"Fashion-MNIST is not installed at {FASHION_MNIST_DIR}; "
            "install it with: apt-get install dataset-fashion-mnist"
        )
    final = dest / "images"
    if final.exists() and any(final.iterdir()):
        raise DatasetError(f"{final} already holds files; generate into an empty directory")

    rng = np.random.default_rng(seed)
    photos = [] if background is not None else _load_photos(extra_backgrounds)
    pools: dict[str, tuple[npt.NDArray[np.uint8], list[npt.NDArray[np.intp]]]] = {}
    for prefix in ("train", "t10k"):
        items, labels = _fashion_items(str(FASHION_MNIST_DIR), prefix)
        pools[prefix] = (items, [np.flatnonzero(labels == FASHION_CLASSES.index(name)) for name in names])

    split_of = _split_names(images, splits, rng)
    n_negative = round(images * negative_fraction)
    if negative_fraction > 0 and n_negative == 0 and images >= 2:
        n_negative = 1
    negatives = {int(i) for i in rng.choice(images, size=n_negative, replace=False)}
    shorter = min(width, height)
    side_range = (max(8, round(low * shorter)), max(8, round(high * shorter)))
    suffix = ".jpg" if image_format == "jpeg" else ".png"

    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".images."))
    records: list[ImageRecord] = []
    try:
        for n in range(images):
            if background is None:
                canvas = _background(rng, photos, size)
            else:
                canvas = np.empty((height, width, 3), dtype=np.float32)
                canvas[...] = np.array(background, dtype=np.float32)
            split = split_of[n]
            items, by_class = pools["t10k" if split in ("validation", "test") else "train"]
            boxes: list[BoxAnnotation] = []
            placed: list[tuple[int, int, int, int]] = []
            count = 0 if n in negatives else int(rng.integers(1, max_objects + 1))
            for _ in range(count):
                label = int(rng.integers(len(names)))
                pool = by_class[label]
                item = items[int(pool[int(rng.integers(len(pool)))])]
                long_side = int(rng.integers(side_range[0], side_range[1] + 1))
                sprite, alpha = _item_sprite(rng, item, long_side, colourise)
                h, w = alpha.shape
                for _attempt in range(30):
                    x = int(rng.integers(0, width - w + 1))
                    y = int(rng.integers(0, height - h + 1))
                    xyxy = (x, y, x + w, y + h)
                    if all(_overlap(xyxy, other) <= max_overlap for other in placed):
                        break
                else:
                    continue
                region = canvas[y : y + h, x : x + w]
                a = alpha[..., None]
                region[...] = region * (1 - a) + sprite * a
                placed.append(xyxy)
                boxes.append(BoxAnnotation(label, float(x), float(y), float(x + w), float(y + h)))
            name = f"{n:05d}{suffix}"
            picture = Image.fromarray(np.rint(canvas).astype(np.uint8), "RGB")
            if image_format == "jpeg":
                picture.save(tmp / name, format="JPEG", quality=quality, optimize=False)
            else:
                picture.save(tmp / name, format="PNG", compress_level=1)
            records.append(ImageRecord(f"images/{name}", boxes=tuple(boxes), split=split, width=width, height=height))
        if final.exists():
            final.rmdir()
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    sources = "flat background" if background is not None else f"{len(photos)} photos"
    note = (
        f"synthetic detection: {images} images {width}x{height}, seed {seed}, Fashion-MNIST objects "
        f"({', '.join(names)}) on {sources}"
    )
    log.info("%s; %d boxes, %d negatives", note, sum(len(r.boxes) for r in records), n_negative)
    return Dataset(
        root=dest, classes=names, images=records, task="detection", source_format=SOURCE_FORMAT, notes=[note]
    )
