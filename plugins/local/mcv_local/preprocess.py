"""Image decoding and resizing shared by local training and local serving.

Contract: the exported ONNX graph takes ``uint8`` pixels laid out ``[N, H, W, C]``
(C = 1 for grey models, 3 for RGB), already resized to the model's square
``image_size``; normalisation happens inside the graph. Training and serving both
call :func:`decode` so that the pixels a model sees at serving time are exactly
the pixels it was trained on.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

RESAMPLE = Image.Resampling.BILINEAR


def decode(source: bytes | str | Path, image_size: int, channels: int) -> np.ndarray:
    """Decode an encoded image and return ``uint8`` pixels ``[image_size, image_size, channels]``.

    ``channels`` is 1 (grey, mode ``L``) or 3 (RGB). Images are resized (not cropped)
    to a square with bilinear filtering, the same way at training and serving time.
    Raises :class:`PIL.UnidentifiedImageError` or :class:`OSError` for data that is
    not a decodable image (including truncated files).
    """
    image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    with image:
        image.draft("L" if channels == 1 else "RGB", (image_size, image_size))
        converted = image.convert("L" if channels == 1 else "RGB")
        if converted.size != (image_size, image_size):
            converted = converted.resize((image_size, image_size), RESAMPLE)
        array = np.asarray(converted, dtype=np.uint8)
    if channels == 1:
        array = array[:, :, None]
    return array
