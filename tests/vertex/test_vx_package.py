"""The training package (``mcv_vertex.package``): a reproducible, pip-installable sdist of multicloud_cv, mcv_local
and mcv_vertex whose ``mcv_vertex.task`` imports from where pip put it."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from mcv_vertex import package


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package.build_package(tmp_path_factory.mktemp("vx-pkg") / "dist")


def test_the_sdist_is_named_by_its_content(tarball: Path) -> None:
    version = package.package_version()
    assert version.startswith(package.BASE_VERSION + "+") and len(version.split("+")[1]) == 12
    assert tarball.name == f"mcv_vertex_trainer-{version}.tar.gz" == package.package_name()


def test_the_same_sources_give_the_same_bytes(tarball: Path, tmp_path: Path) -> None:
    again = package.build_package(tmp_path)
    assert again.name == tarball.name
    assert again.read_bytes() == tarball.read_bytes()


def test_members(tarball: Path) -> None:
    top = tarball.name[: -len(".tar.gz")]
    with tarfile.open(tarball, "r:gz") as tar:
        members = tar.getmembers()
        names = [member.name for member in members]
        pyproject = tar.extractfile(f"{top}/pyproject.toml").read().decode()  # type: ignore[union-attr]
    assert names == sorted(names)
    assert all(name.startswith(top + "/") for name in names)
    relative = {name[len(top) + 1 :] for name in names}
    for needed in (
        "pyproject.toml",
        "PKG-INFO",
        "mcv_vertex/task.py",
        "mcv_vertex/serving.py",
        "mcv_vertex/data/machines.json",
        "mcv_local/engine/train.py",
        "mcv_local/engine/detection_export.py",
        "mcv_local/serving/session.py",
        "multicloud_cv/errors.py",
        "multicloud_cv/datasets/vertex_jsonl.py",
        "multicloud_cv/py.typed",
    ):
        assert needed in relative, needed
    assert not [name for name in names if "__pycache__" in name or name.endswith((".pyc", ".pyo"))]
    assert {m.mtime for m in members} == {package.MTIME} and {(m.uid, m.gid, m.uname, m.gname) for m in members} == {
        (0, 0, "", "")
    }
    assert all(member.isfile() and member.mode == 0o644 for member in members)
    assert '"torch>=' in pyproject and '"google-cloud-storage>=' in pyproject and '"onnxruntime>=' in pyproject
    assert f'version = "{package.package_version()}"' in pyproject


@pytest.mark.timeout(120)
def test_pip_installs_it_and_the_task_imports_from_there(tarball: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1", "PIP_NO_CACHE_DIR": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--target", str(target), tarball],
        capture_output=True,
        text=True,
        timeout=100,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (target / "mcv_vertex" / "task.py").is_file() and (target / "multicloud_cv" / "data").is_dir()
    code = "import mcv_vertex.task, mcv_vertex.serving, mcv_local.provider; print(mcv_vertex.task.__file__)"
    imported = subprocess.run(
        [sys.executable, "-c", code],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        check=False,
    )
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert Path(imported.stdout.strip()).resolve() == (target / "mcv_vertex" / "task.py").resolve()


def test_the_serving_dockerfile_matches_the_package() -> None:
    import re

    dockerfile = (Path(package.__file__).resolve().parents[1] / "container" / "Dockerfile").read_text()
    assert [line for line in dockerfile.splitlines() if line.startswith("FROM ")] == ["FROM python:3.11-slim"]
    pinned = set(re.findall(r'"([A-Za-z0-9_.-]+>=[0-9.]+)"', dockerfile)) - {"setuptools>=68"}
    assert pinned and pinned <= set(package.DEPENDENCIES)
    assert "torch" not in " ".join(pinned)
    assert 'CMD ["python", "-m", "mcv_vertex.serving", "--host", "0.0.0.0"]' in dockerfile
    assert "pip install --no-deps --no-build-isolation /tmp/package/mcv_vertex_trainer-*.tar.gz" in dockerfile
