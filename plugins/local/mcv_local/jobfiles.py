"""The files of one local training job: its spec, its status and its log.

Layout of ``$MCV_HOME/local/jobs/<job id>/``: ``spec.json`` (what to train),
``status.json`` (written atomically by the worker), ``worker.log``, ``cancel`` (a flag
file asking the worker to stop) and ``model/`` (checkpoints, ``model.onnx``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from multicloud_cv.runs import mcv_home

WORKER_MODULE = "mcv_local.worker"
SERVER_MODULE = "mcv_local.serving.server"


def jobs_dir() -> Path:
    """Where local jobs keep their files."""
    return mcv_home() / "local" / "jobs"


def endpoints_dir() -> Path:
    """Where local endpoints keep their ready files and logs."""
    return mcv_home() / "local" / "endpoints"


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (temporary file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """Read a JSON file, ``None`` when it does not exist (yet)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except FileNotFoundError:
        return None


def update_status(job_dir: Path, **changes: Any) -> dict[str, Any]:
    """Merge ``changes`` into ``status.json`` (only the worker and submit call this)."""
    status = read_json(job_dir / "status.json") or {}
    status.update(changes, updated=time.time())
    write_json(job_dir / "status.json", status)
    return status
