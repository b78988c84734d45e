"""The shell path against `mcv emulate rekognition`: train, start, detect, stop, remove, and compare with local."""

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
    with emulator_process(
        "rekognition", tmp_path_factory.mktemp("emulate-rekognition"), "cli-rekognition"
    ) as environment:
        yield environment


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("cli") / "ds", train_per_class=8, test_per_class=3, fmt="JPEG")


def _json(out: subprocess.CompletedProcess[str]) -> dict:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_train_start_detect_stop_remove(emulated_env: dict[str, str], shapes: Path, tmp_path: Path) -> None:
    env = {**emulated_env, "MCV_HOME": str(tmp_path / "home")}
    assert env["MCV_REKOGNITION_BUCKET"] == "cli-rekognition"
    job = _json(run_mcv("train", "-p", "rekognition", "-d", str(shapes), "--json", env=env))
    validate_document("job", job)
    assert job["state"] == "SUCCEEDED" and job["emulated"] and job["native_state"] == "TRAINING_COMPLETED"
    assert "f1" in job["metrics"]
    endpoint = _json(run_mcv("deploy", job["model_id"], "--ttl", "30m", "--json", env=env))
    assert endpoint["state"] == "READY" and endpoint["native_state"] == "RUNNING"
    predicted = _json(run_mcv("predict", endpoint["id"], str(shapes / "test"), "--json", env=env))
    validate_document("prediction_list", predicted)
    assert len(predicted["predictions"]) == 9 and all(p["labels"] for p in predicted["predictions"])
    stopped = _json(run_mcv("undeploy", endpoint["id"], "--json", env=env))
    assert stopped["state"] == "DELETED"
    removed = _json(run_mcv("cleanup", "--all", "--models", "--json", env=env))
    assert removed["removed_jobs"] == [job["id"]] and not removed["failed"]


def test_compare_local_and_rekognition(emulated_env: dict[str, str], shapes: Path, tmp_path: Path) -> None:
    env = {**emulated_env, "MCV_HOME": str(tmp_path / "home")}
    out = run_mcv(
        "compare",
        "-d",
        str(shapes),
        "--providers",
        "local,rekognition",
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
    assert results["rekognition"]["emulated"] and "f1" in results["rekognition"]["provider_reported"]
    assert results["local"]["test_fingerprint"] == results["rekognition"]["test_fingerprint"]
