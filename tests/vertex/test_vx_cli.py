"""The shell path against `mcv emulate vertex`: train (custom route, TPU tier), deploy, predict, undeploy, clean up,
and compare local with Vertex on one split."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import emulator_process, run_mcv

from multicloud_cv.testing.data import make_tiny_dataset
from multicloud_cv.testing.suite import validate_document

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emulated_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with emulator_process("vertex", tmp_path_factory.mktemp("emulate-vertex"), "cli-vertex") as environment:
        yield environment


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("cli") / "ds", train_per_class=12, test_per_class=3, fmt="JPEG")


def _json(out: subprocess.CompletedProcess[str]) -> dict:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_train_deploy_predict_undeploy_cleanup(emulated_env: dict[str, str], shapes: Path, tmp_path: Path) -> None:
    env = {**emulated_env, "MCV_HOME": str(tmp_path / "home")}
    assert env["MCV_VERTEX_BUCKET"] == "cli-vertex" and env["STORAGE_EMULATOR_HOST"].startswith("http://127.0.0.1:")
    job = _json(
        run_mcv("train", "-p", "vertex", "-d", str(shapes), "--epochs", "2", "--compute", "tpu", "--json", env=env)
    )
    validate_document("job", job)
    assert job["state"] == "SUCCEEDED" and job["emulated"] and job["native_state"] == "JOB_STATE_SUCCEEDED"
    endpoint = _json(run_mcv("deploy", job["model_id"], "--ttl", "30m", "--json", env=env))
    assert endpoint["state"] == "READY"
    predicted = _json(run_mcv("predict", endpoint["id"], str(shapes / "test"), "--json", env=env))
    validate_document("prediction_list", predicted)
    assert len(predicted["predictions"]) == 9 and all(p["labels"] for p in predicted["predictions"])
    assert _json(run_mcv("undeploy", endpoint["id"], "--json", env=env))["state"] == "DELETED"
    removed = _json(run_mcv("cleanup", "--all", "--models", "--json", env=env))
    assert removed["removed_jobs"] == [job["id"]] and not removed["failed"]


def test_compare_local_and_vertex(emulated_env: dict[str, str], shapes: Path, tmp_path: Path) -> None:
    env = {**emulated_env, "MCV_HOME": str(tmp_path / "home")}
    out = run_mcv(
        "compare", "-d", str(shapes), "--providers", "local,vertex", "--epochs", "2", "--json", env=env, timeout=600
    )
    document = _json(out)
    validate_document("comparison", document)
    results = {r["provider"]: r for r in document["providers"]}
    assert all(r["state"] == "ok" for r in results.values()), {p: r.get("reason") for p, r in results.items()}
    assert results["vertex"]["emulated"]
    assert results["local"]["test_fingerprint"] == results["vertex"]["test_fingerprint"]
    assert results["vertex"]["hosting_cost_per_hour_usd"] == pytest.approx(0.22)  # one n1-standard-4 replica


def test_bad_setting_is_one_line_exit_2(emulated_env: dict[str, str], shapes: Path, tmp_path: Path) -> None:
    env = {**emulated_env, "MCV_HOME": str(tmp_path / "home")}
    out = run_mcv(
        "train",
        "-p",
        "vertex",
        "-d",
        str(shapes),
        "-o",
        "machine_type=n1-standard-4",
        "-o",
        "accelerator_type=NVIDIA_TESLA_K80",
        env=env,
    )
    assert out.returncode == 2, out.stderr
    assert 'is not supported for machine type "n1-standard-4"' in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
