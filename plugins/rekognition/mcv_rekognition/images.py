"""Fitting a dataset's images to what Rekognition Custom Labels accepts, before they are staged.

The limits come from :mod:`mcv_rekognition.limits` (the developer guide's "Guidelines and quotas in Amazon
Rekognition Custom Labels": "Supported file formats are PNG and JPEG image formats.", "Minimum image dimension ...
is 64 pixels x 64 pixels.", "Maximum image dimension ... is 4096 pixels x 4096 pixels.", "Maximum file size for an
image in an Amazon S3 bucket is 15 MB.", "Maximum image aspect ratio is 20:1."). An image outside them is not
refused by the service at submission: its manifest line fails with ERROR_INVALID_IMAGE ("The image is invalid. Check
S3 path and/or image properties.") and is dropped from training, and too many such lines fail the whole job
(pains.md R1, R5). Fashion-MNIST's 28 px images are the classic case (cloud-apis.md section 8).

:func:`fit_images` contracts:

* An image already within the limits is left alone: no copy, same path; its record only gains ``width``/``height``
  when they were unknown. Within the limits means: Pillow reads it as ``JPEG`` or ``PNG``, each side 64..4096 px, at
  most 15 MB, and not a CMYK JPEG (the guide names no colour modes; converting CMYK, which many decoders get wrong,
  is our choice).
* Any other image is re-encoded into ``workdir``: scaled (keeping its aspect ratio, Lanczos) so that the short side
  is at least 64 px and the long side at most 4096 px; other formats (BMP, GIF's first frame, WebP, TIFF, MPO ...)
  become PNG, JPEG stays JPEG (quality 95); a file still over the byte limit is re-encoded as JPEG at lower quality,
  then scaled down, until it fits. Its record points at the new file (absolute path), with ``width``/``height`` and
  every box (pixel ``x_min, y_min, x_max, y_max``) scaled by the same factors as the image.
* Files are written atomically (a temporary file in ``workdir``, then :func:`os.replace`) under a name derived from
  the source bytes and the target, so a second run reuses them and never sees half a file.
* What cannot be fixed is refused with one :class:`~multicloud_cv.errors.DatasetError` line naming the image (and
  how many more are bad): an aspect ratio over 20:1 (cropping would drop annotated content), an unreadable or missing
  file, a record whose ``width``/``height`` disagree with the file it must scale (its boxes' frame is unknown).
* Remote images (``s3://`` ...) are left as they are: they are not downloaded here.

EXIF orientation is not applied: boxes are taken to be in the stored pixel frame, as the core's readers assume.
:func:`fit_image_bytes` does the same for one DetectCustomLabels payload (``Image.Bytes``, 4 MB), where a resize
needs no box bookkeeping because the service answers in ratios of the image size.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mcv_rekognition.limits import RekognitionLimits, rekognition_limits
from multicloud_cv.datasets.media import is_uri
from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError, InvalidImage

if TYPE_CHECKING:
    from PIL import Image as PILImage

log = logging.getLogger(__name__)

#: Pillow JPEG modes that are re-encoded (as RGB) even when everything else fits: our choice, see the module doc.
_CONVERTED_JPEG_MODES = frozenset({"CMYK", "YCbCr", "LAB"})
#: Quality of re-encoded JPEGs, then of the fallbacks used while a file is over the byte limit.
_JPEG_QUALITIES = (95, 85, 75)
#: Each further round over the byte limit scales the image by this factor.
_SHRINK = 0.75
#: Version of the fitting rules, part of the output names: a change of rules never reuses old outputs.
_RULES = "fit-1"


@dataclass(frozen=True)
class _Target:
    """What one image must become: its size, and whether it needs re-encoding at all."""

    width: int
    height: int
    reencode: bool
    reason: str


def _aspect(width: int, height: int) -> float:
    return max(width, height) / max(1, min(width, height))


def target_size(width: int, height: int, limits: RekognitionLimits | None = None) -> tuple[int, int]:
    """The size an image of ``width`` x ``height`` is scaled to: unchanged when within the side limits.

    The short side is raised to the minimum, or the long side lowered to the maximum, keeping the aspect ratio
    (within rounding). The caller checks the aspect ratio first: over 20:1 no size satisfies both bounds.
    """
    lim = limits or rekognition_limits()
    low, high = lim.min_image_side, lim.max_image_side
    if min(width, height) >= low and max(width, height) <= high:
        return width, height
    if min(width, height) < low:
        scale = low / min(width, height)
        new_w, new_h = (max(low, math.ceil(side * scale - 1e-9)) for side in (width, height))
    else:
        scale = high / max(width, height)
        new_w, new_h = (max(1, math.floor(side * scale + 1e-9)) for side in (width, height))
    return min(new_w, high), min(new_h, high)


def _plan(fmt: str | None, mode: str, width: int, height: int, nbytes: int, lim: RekognitionLimits) -> _Target:
    new_w, new_h = target_size(width, height, lim)
    reasons = []
    if fmt not in lim.image_formats:
        reasons.append(f"{fmt or 'unknown'} format")
    if (new_w, new_h) != (width, height):
        reasons.append(f"{width}x{height} px")
    if nbytes > lim.max_image_bytes:
        reasons.append(f"{nbytes} bytes")
    if fmt == "JPEG" and mode in _CONVERTED_JPEG_MODES:
        reasons.append(f"{mode} JPEG")
    return _Target(new_w, new_h, bool(reasons), ", ".join(reasons))


def _normalise_mode(image: PILImage.Image, for_jpeg: bool) -> PILImage.Image:
    """A mode Pillow resizes well and the output format stores: L/RGB for JPEG; L, LA, RGB or RGBA for PNG."""
    from PIL import Image

    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "1":
        image = image.convert("L")
    elif mode.startswith("I;16"):
        # 16-bit grey: scale to 8 bits (Pillow's plain convert("L") clips instead of scaling).
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    elif mode == "I":
        high = int(image.getextrema()[1])  # type: ignore[arg-type]
        scale = 255 / high if high > 255 else 1
        image = image.point(lambda value: value * scale).convert("L")
    elif mode == "F":
        image = image.convert("L")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGB")
    if for_jpeg and image.mode in ("LA", "RGBA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        image = background
    return image


def _encode(image: PILImage.Image, fmt: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        _normalise_mode(image, for_jpeg=True).save(buffer, format="JPEG", quality=quality, optimize=True)
    else:
        image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _render(
    opened: PILImage.Image, source_format: str | None, size: tuple[int, int], max_bytes: int, lim: RekognitionLimits
) -> tuple[bytes, str, tuple[int, int]]:
    """Encode ``opened`` at ``size`` as PNG or JPEG within ``max_bytes``; returns (bytes, format, final size)."""
    from PIL import Image

    fmt = "JPEG" if source_format in ("JPEG", "MPO") else "PNG"
    base = _normalise_mode(opened, for_jpeg=fmt == "JPEG")
    width, height = size
    while True:
        frame = base if base.size == (width, height) else base.resize((width, height), Image.Resampling.LANCZOS)
        data = _encode(frame, fmt, _JPEG_QUALITIES[0])
        if len(data) <= max_bytes:
            return data, fmt, (width, height)
        for quality in _JPEG_QUALITIES:
            data = _encode(frame, "JPEG", quality)
            if len(data) <= max_bytes:
                return data, "JPEG", (width, height)
        smaller = (max(1, math.floor(width * _SHRINK)), max(1, math.floor(height * _SHRINK)))
        if min(smaller) < lim.min_image_side:
            raise ValueError(f"cannot be encoded within {max_bytes} bytes at {lim.min_image_side} px or more a side")
        width, height = smaller


def _scale_boxes(boxes: tuple[BoxAnnotation, ...], sx: float, sy: float) -> tuple[BoxAnnotation, ...]:
    return tuple(
        replace(box, x_min=box.x_min * sx, y_min=box.y_min * sy, x_max=box.x_max * sx, y_max=box.y_max * sy)
        for box in boxes
    )


def _existing(directory: Path, stem: str) -> Path | None:
    """An output written by an earlier run for the same source and rules (complete: outputs appear atomically)."""
    for suffix in (".png", ".jpg"):
        candidate = directory / (stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def _write_atomically(directory: Path, name: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / name
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".fit-", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, final)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return final


def _fit_one(dataset: Dataset, image: ImageRecord, workdir: Path, lim: RekognitionLimits) -> ImageRecord:
    """The record of one image within the limits (raises ``DatasetError`` with the message for that image)."""
    from PIL import Image, UnidentifiedImageError

    if is_uri(image.path):
        return image
    path = dataset.absolute(image)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the image ({exc.strerror or exc})") from None
    try:
        with Image.open(io.BytesIO(data)) as opened:
            fmt, mode, (width, height) = opened.format, opened.mode, opened.size
            if _aspect(width, height) > lim.max_aspect_ratio:
                raise DatasetError(
                    f"{path}: {width}x{height} has an aspect ratio of {_aspect(width, height):.1f}:1; Rekognition "
                    f"Custom Labels accepts at most {lim.max_aspect_ratio:g}:1; crop it or leave it out"
                )
            plan = _plan(fmt, mode, width, height, len(data), lim)
            if not plan.reencode:
                if image.width is None or image.height is None:
                    return replace(image, width=width, height=height)
                return image
            if (image.width, image.height) not in ((None, None), (width, height)):
                raise DatasetError(
                    f"{path}: the annotation says {image.width}x{image.height} but the file is {width}x{height}; "
                    "fix the annotation before its boxes can be scaled"
                )
            key = f"|{_RULES}|{plan.width}x{plan.height}|{lim.max_image_bytes}".encode()
            stem = f"{path.stem}-{hashlib.sha256(data + key).hexdigest()[:16]}"
            written = _existing(workdir, stem)
            if written is None:
                opened.load()
                size = (plan.width, plan.height)
                encoded, out_format, _ = _render(opened, fmt, size, lim.max_image_bytes, lim)
                written = _write_atomically(workdir, stem + (".jpg" if out_format == "JPEG" else ".png"), encoded)
        with Image.open(written) as result:
            new_w, new_h = result.size
    except DatasetError:
        raise
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"{path}: cannot be fitted to Rekognition's image limits ({exc})") from None
    log.debug("fitted %s (%s) -> %s %dx%d", path, plan.reason, written, new_w, new_h)
    return replace(
        image,
        path=str(written.resolve()),
        width=new_w,
        height=new_h,
        boxes=_scale_boxes(image.boxes, new_w / width, new_h / height),
    )


def fit_images(dataset: Dataset, workdir: Path | str, workers: int = 4) -> Dataset:
    """The dataset with every local image within Rekognition Custom Labels' limits (see the module doc).

    Compliant images keep their files; the others are re-encoded into ``workdir``. Raises
    :class:`DatasetError` (one line naming the first bad image) for what cannot be fixed.
    """
    lim = rekognition_limits()
    directory = Path(workdir)

    def attempt(image: ImageRecord) -> ImageRecord | DatasetError:
        try:
            return _fit_one(dataset, image, directory, lim)
        except DatasetError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(attempt, dataset.images))
    errors = [result for result in results if isinstance(result, DatasetError)]
    if errors:
        more = f" ({len(errors) - 1} more image(s) cannot be fitted)" if len(errors) > 1 else ""
        raise DatasetError(f"{errors[0]}{more}")
    images = [result for result in results if isinstance(result, ImageRecord)]
    changed = sum(1 for before, after in zip(dataset.images, images, strict=True) if before.path != after.path)
    if changed:
        log.info("fitted %d of %d image(s) to Rekognition's limits into %s", changed, len(images), directory)
    return replace(dataset, images=images)


def fit_image_bytes(data: bytes, max_bytes: int | None = None) -> bytes:
    """One DetectCustomLabels payload within the limits: ``data`` itself when it already is.

    ``max_bytes`` defaults to the guide's 4 MB for ``Image.Bytes``. Raises :class:`InvalidImage` for bytes that
    are not a decodable image or whose aspect ratio is over 20:1.
    """
    from PIL import Image, UnidentifiedImageError

    lim = rekognition_limits()
    limit = lim.max_predict_image_bytes if max_bytes is None else max_bytes
    try:
        with Image.open(io.BytesIO(data)) as opened:
            fmt, mode, (width, height) = opened.format, opened.mode, opened.size
            if _aspect(width, height) > lim.max_aspect_ratio:
                raise InvalidImage(
                    f"the image is {width}x{height}, an aspect ratio over {lim.max_aspect_ratio:g}:1, which "
                    "Rekognition Custom Labels does not accept; crop it"
                )
            plan = _plan(fmt, mode, width, height, len(data), replace(lim, max_image_bytes=limit))
            if not plan.reencode:
                return data
            opened.load()
            encoded, _, _ = _render(opened, fmt, (plan.width, plan.height), limit, lim)
            return encoded
    except InvalidImage:
        raise
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"not an image Rekognition Custom Labels can be sent ({exc})") from None
