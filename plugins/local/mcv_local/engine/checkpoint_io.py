"""Writing checkpoints so that a crash never leaves a half-written file under the real name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to ``<path>.tmp``, fsync, then rename over ``path`` (atomic on POSIX)."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
