"""Decode worker for :func:`mcv_local.engine.data.decode_all`.

Kept free of torch so that pool workers start in a fraction of a second.
"""

from __future__ import annotations

import numpy as np

from ..preprocess import decode
from .errors import EngineError


def decode_one(path: str, image_size: int, channels: int) -> np.ndarray:
    """:func:`mcv_local.preprocess.decode` with unreadable files reported as :class:`EngineError`."""
    try:
        return decode(path, image_size, channels)
    except (OSError, ValueError) as exc:
        raise EngineError(f"cannot read image {path}: {exc}") from None


def decode_chunk(job: tuple[list[str], int, int]) -> np.ndarray:
    """Decode a list of paths into one ``uint8`` array ``[len(paths), size, size, channels]``."""
    paths, image_size, channels = job
    out = np.empty((len(paths), image_size, image_size, channels), dtype=np.uint8)
    for i, path in enumerate(paths):
        out[i] = decode_one(path, image_size, channels)
    return out
