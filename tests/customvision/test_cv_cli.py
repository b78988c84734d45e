"""The shell path against `mcv emulate customvision`: train, publish, predict, export, serve locally, clean up."""

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
    with emulator_process("customvision", tmp_path_factory.mktemp("emulate-customvision"), "unused") as environment:
        yield environment


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("cli") / "ds", train_per_class=8, test_per_class=3, fmt="JPEG")


def _json(out: subprocess.CompletedProcess[str]) -> dict:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_train_publish_predict_export_serve_locally_cleanup(
    emulated_env: dict[str, str], shapes: Path, tmp_path: Path
) -> None:
    env = {**emulated_env, "MCV_HOME": str(tmp_path / "home")}
    assert env["MCV_CUSTOMVISION_TRAINING_ENDPOINT"].startswith("http://127.0.0.1:")
    job = _json(run_mcv("train", "-p", "customvision", "-d", str(shapes), "--json", env=env))
    validate_document("job", job)
    assert job["state"] == "SUCCEEDED" and job["emulated"] and job["native_state"] == "Completed"
    assert "precision" in job["metrics"]
    endpoint = _json(run_mcv("deploy", job["model_id"], "--json", env=env))
    assert endpoint["state"] == "READY" and endpoint["native_state"] == "Published"
    predicted = _json(run_mcv("predict", endpoint["id"], str(shapes / "test"), "--json", env=env))
    validate_document("prediction_list", predicted)
    assert len(predicted["predictions"]) == 9 and all(p["labels"] for p in predicted["predictions"])
    exported = _json(run_mcv("export", job["model_id"], "--format", "onnx", "--json", env=env))
    validate_document("export", exported)
    assert exported["local_model_id"]
    local = _json(run_mcv("deploy", job["model_id"], "--provider", "local", "--json", env=env))
    assert local["provider"] == "local" and local["state"] == "READY"
    served = _json(run_mcv("predict", local["id"], str(shapes / "test"), "--json", env=env))
    cloud_top = [p["labels"][0]["name"] for p in predicted["predictions"]]
    assert [p["labels"][0]["name"] for p in served["predictions"]] == cloud_top
    for endpoint_id in (local["id"], endpoint["id"]):
        assert _json(run_mcv("undeploy", endpoint_id, "--json", env=env))["state"] == "DELETED"
    removed = _json(run_mcv("cleanup", "--all", "--models", "--json", env=env))
    assert job["id"] in removed["removed_jobs"] and not removed["failed"]


def test_bad_setting_is_one_line_exit_2(emulated_env: dict[str, str], shapes: Path, tmp_path: Path) -> None:
    env = {**emulated_env, "MCV_HOME": str(tmp_path / "home")}
    out = run_mcv("train", "-p", "customvision", "-d", str(shapes), "-o", "training_type=Advanced", env=env)
    assert out.returncode == 2
    assert "budget_hours of at least 1" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert env["MCV_CUSTOMVISION_TRAINING_KEY"] not in out.stderr


def test_compare_local_and_customvision(emulated_env: dict[str, str], shapes: Path, tmp_path: Path) -> None:
    env = {**emulated_env, "MCV_HOME": str(tmp_path / "home")}
    out = run_mcv(
        "compare",
        "-d",
        str(shapes),
        "--providers",
        "local,customvision",
        "--epochs",
        "2",
        "--json",
        env=env,
        timeout=600,
    )
    document = _json(out)
    validate_document("comparison", document)
    results = {r["provider"]: r for r in document["providers"]}
    assert all(r["state"] == "ok" for r in results.values()), {p: r.get("reason") for p, r in results.items()}
    cloud = results["customvision"]
    assert cloud["emulated"] and "precision" in cloud["provider_reported"]
    assert results["local"]["test_fingerprint"] == cloud["test_fingerprint"]
    # Custom Vision bills per prediction transaction: the price row, not an hourly estimate
    assert cloud["prediction_cost_per_1000_usd"] == 2.0 and "1000_transactions" in cloud["prediction_cost_basis"]
    assert cloud["hosting_cost_per_hour_usd"] == 0.0
