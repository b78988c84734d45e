"""Exporting a trained model to a file format and unpacking it on this machine (``mcv export``).

Contract (:meth:`multicloud_cv.interfaces.Trainer.export` calls :func:`export_model` after its checks):

* The provider's hook ``_export(model, fmt, workdir)`` puts ONE archive, file or folder into ``workdir`` (an
  empty folder beside the destination) and returns its path. A ``.zip`` or tar archive is unpacked safely (no
  absolute or ``..`` members, no links or devices), a folder is copied, any other file is copied as is.
* The destination is ``<mcv data dir>/exports/<model_id>/<fmt>/`` (an earlier export there is replaced), or
  ``out`` (which must be new or empty). Everything is written into a temporary sibling and renamed into place
  at the end: when the hook or the unpacking fails, nothing is left behind and the records are unchanged.
* The export is recorded in the model record's ``info["exports"][fmt]`` = ``{"path", "files",
  "local_model_id"}``. For ``onnx``, when the installed local provider's deployer says it can serve the folder
  (``Deployer._servable``), a model record of provider ``local`` is registered (artifact = the folder, its
  labels and task, ``info["exported_from"]``; a re-export reuses it) and its id is ``local_model_id``.
"""

from __future__ import annotations

import logging
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from multicloud_cv.capabilities import ALL_FEATURES
from multicloud_cv.errors import BadInput, MCVError, ServiceError
from multicloud_cv.runs import ModelRecord, mcv_home, new_id

if TYPE_CHECKING:
    from multicloud_cv.interfaces import NativeModel, Trainer
    from multicloud_cv.schema import Export

log = logging.getLogger(__name__)

EXPORT_FORMATS: tuple[str, ...] = tuple(f.split(":", 1)[1] for f in ALL_FEATURES if f.startswith("export:"))
"""The formats ``mcv export --format`` knows (each is the capability ``export:<format>``)."""

LOCAL_PROVIDER = "local"


def check_format(fmt: str) -> str:
    """``fmt`` normalised (lower case); :class:`BadInput` in one line when it is not a known export format."""
    name = str(fmt).strip().lower()
    if name not in EXPORT_FORMATS:
        raise BadInput(f"unknown export format '{fmt}': use one of {', '.join(EXPORT_FORMATS)}")
    return name


def default_destination(model_id: str, fmt: str) -> Path:
    """Where an export goes without ``--out``: ``<mcv data dir>/exports/<model_id>/<fmt>``."""
    return mcv_home() / "exports" / model_id / fmt


def export_model(trainer: Trainer, model: ModelRecord, fmt: str, out: Path | None = None) -> Export:
    """Run the provider's ``_export`` hook, unpack what it made into place and record it (see the module doc)."""
    from multicloud_cv.schema import Export

    dest = Path(out).expanduser().absolute() if out is not None else default_destination(model.id, fmt)
    if out is not None and dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BadInput(f"--out {dest} already exists and is not an empty folder: choose a new or empty one")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.export-", dir=dest.parent))
    try:
        download = work / "download"
        download.mkdir()
        produced = Path(trainer._export(model, fmt, download))
        staging = work / "export"
        unpack(produced, staging)
        files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        if not files:
            raise ServiceError(f"the {fmt} export of model {model.id} is empty")
        servable = _servable(staging, fmt) if fmt == "onnx" else None
        if dest.exists():
            dest.rename(work / "previous")
        staging.rename(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    local_model_id = _register_local(trainer, model, fmt, dest, servable) if servable is not None else None
    exports = dict(model.info.get("exports") or {})
    exports[fmt] = {"path": str(dest), "files": files, "local_model_id": local_model_id}
    trainer.store.update_model(model.id, info={**model.info, "exports": exports})
    log.info("exported model %s as %s into %s (%d files)", model.id, fmt, dest, len(files))
    return Export(
        model_id=model.id,
        provider=model.provider,
        format=fmt,
        path=str(dest),
        files=files,
        local_model_id=local_model_id,
        emulated=trainer.emulated,
    )


def unpack(source: Path, target: Path) -> None:
    """``source`` (zip, tar, folder or plain file) into the new folder ``target``; unsafe archives refused."""
    if source.is_dir():
        shutil.copytree(source, target, symlinks=False)
        return
    if not source.is_file():
        raise ServiceError(f"the provider's export produced nothing at {source}")
    target.mkdir(parents=True)
    if zipfile.is_zipfile(source):
        _unzip(source, target)
    elif tarfile.is_tarfile(source):
        _untar(source, target)
    else:
        shutil.copy2(source, target / source.name)


def _check_member(name: str, archive: Path) -> None:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise ServiceError(f"refusing the export archive {archive.name}: member {name!r} would land outside the folder")


def _unzip(source: Path, target: Path) -> None:
    with zipfile.ZipFile(source) as archive:
        members = archive.infolist()
        for info in members:
            _check_member(info.filename, source)
            mode = info.external_attr >> 16
            if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # links, devices
                raise ServiceError(f"refusing the export archive {source.name}: {info.filename!r} is not a plain file")
        archive.extractall(target)


def _untar(source: Path, target: Path) -> None:
    with tarfile.open(source, mode="r:*") as archive:
        for member in archive.getmembers():
            _check_member(member.name, source)
            if not (member.isfile() or member.isdir()):
                raise ServiceError(f"refusing the export archive {source.name}: {member.name!r} is not a plain file")
        archive.extractall(target, filter="data")


def _servable(folder: Path, fmt: str) -> NativeModel | None:
    """What the installed local provider would serve from ``folder`` (``None``: not servable or not installed)."""
    from multicloud_cv.registry import registry

    try:
        deployer = registry().deployer(LOCAL_PROVIDER)
    except MCVError as exc:
        log.info("the local provider cannot serve exports here: %s", exc)
        return None
    found: NativeModel | None = deployer._servable(folder, fmt)
    return found


def _register_local(trainer: Trainer, model: ModelRecord, fmt: str, dest: Path, native: NativeModel) -> str:
    """Record (or refresh) the local model that serves the export in ``dest``; return its id."""
    store = trainer.store
    previous = (model.info.get("exports") or {}).get(fmt) or {}
    info: dict[str, Any] = {**native.info, "exported_from": model.id, "export_format": fmt}
    fields: dict[str, Any] = {
        "task": native.task or model.task,
        "labels": native.labels or model.labels,
        "artifact": str(dest),
        "info": info,
    }
    old_id = previous.get("local_model_id")
    if old_id:
        try:
            if store.model(old_id).provider == LOCAL_PROVIDER:
                store.update_model(old_id, **fields)
                return str(old_id)
        except MCVError:
            pass  # the old record is gone: register a new one
    record = ModelRecord(id=new_id("model"), provider=LOCAL_PROVIDER, native_id=str(dest), **fields)
    store.add_model(record)
    return record.id
