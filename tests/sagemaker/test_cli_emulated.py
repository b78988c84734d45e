"""The user's path, as processes: `mcv emulate sagemaker` in one, the `mcv` commands in others.

`mcv emulate` prints the environment lines (JSON with --json) and serves until SIGTERM; the train,
deploy, predict, transform, endpoints, undeploy and cleanup commands then run against it unchanged,
and `mcv compare --providers local,sagemaker` scores both on the same held-out split, marking the
emulated run as such.
"""

from __future__ import annotations

import json
import os
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
    with emulator_process("sagemaker", tmp_path_factory.mktemp("emulate-state"), "cli-bucket") as environment:
        yield environment


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("cli") / "ds", train_per_class=8, test_per_class=3, fmt="JPEG")


def _json(out: subprocess.CompletedProcess[str]) -> dict:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_emulate_prints_what_boto3_and_mcv_need(emulated_env: dict[str, str]) -> None:
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        assert emulated_env[key].startswith("http://127.0.0.1:")
    assert emulated_env["MCV_SAGEMAKER_BUCKET"] == "cli-bucket"
    assert emulated_env["MCV_SAGEMAKER_ROLE_ARN"].startswith("arn:aws:iam::")


def test_train_deploy_predict_transform_undeploy_from_the_shell(
    emulated_env: dict[str, str], shapes: Path, tmp_path: Path
) -> None:
    env = {**emulated_env, "MCV_HOME": str(tmp_path / "home")}
    job = _json(run_mcv("train", "-p", "sagemaker", "-d", str(shapes), "--epochs", "2", "--json", env=env))
    validate_document("job", job)
    assert job["state"] == "SUCCEEDED" and job["emulated"] and job["model_id"]
    assert job["native_state"] == "Completed/Completed"
    logs = run_mcv("logs", job["id"], env=env)
    assert "Training" in logs.stdout and "Completed" in logs.stdout
    endpoint = _json(run_mcv("deploy", job["model_id"], "--ttl", "1h", "--json", env=env))
    validate_document("endpoint", endpoint)
    assert endpoint["state"] == "READY" and endpoint["emulated"]
    predicted = _json(run_mcv("predict", endpoint["id"], str(shapes / "test"), "--top-k", "2", "--json", env=env))
    validate_document("prediction_list", predicted)
    assert len(predicted["predictions"]) == 9
    assert all(len(p["labels"]) == 2 and p["provider"] == "sagemaker" for p in predicted["predictions"])
    batch = _json(run_mcv("transform", job["model_id"], str(shapes / "test"), "--json", env=env))
    validate_document("prediction_list", batch)
    assert [p["image"] for p in batch["predictions"]] == [p["image"] for p in predicted["predictions"]]
    top_online = [p["labels"][0]["name"] for p in predicted["predictions"]]
    top_batch = [p["labels"][0]["name"] for p in batch["predictions"]]
    assert top_online == top_batch, "the endpoint and the batch transform serve the same model"
    listed = _json(run_mcv("endpoints", "--json", env=env))
    assert [e["id"] for e in listed["endpoints"]] == [endpoint["id"]]
    assert run_mcv("cleanup", "--dry-run", env=env).stdout.strip() == "nothing to clean up"  # ttl not reached
    cleaned = _json(run_mcv("cleanup", "--all", "--json", env=env))
    assert cleaned["deleted"] == [endpoint["id"]] and not cleaned["failed"]
    again = run_mcv("undeploy", endpoint["id"], env=env)
    assert again.returncode == 0, again.stderr


def test_compare_local_and_sagemaker_on_one_split(emulated_env: dict[str, str], shapes: Path, tmp_path: Path) -> None:
    env = {**emulated_env, "MCV_HOME": str(tmp_path / "home")}
    out = run_mcv(
        "compare", "-d", str(shapes), "--providers", "local,sagemaker", "--epochs", "2", "--json", env=env, timeout=600
    )
    document = _json(out)
    validate_document("comparison", document)
    results = {r["provider"]: r for r in document["providers"]}
    assert set(results) == {"local", "sagemaker"}
    assert all(r["state"] == "ok" for r in results.values()), {p: r.get("reason") for p, r in results.items()}
    assert results["sagemaker"]["emulated"] and not results["local"]["emulated"]
    assert results["local"]["test_fingerprint"] == results["sagemaker"]["test_fingerprint"]
    for result in results.values():
        assert result["evaluation"]["num_images"] == 9 and result["evaluation"]["accuracy"] is not None
    table = run_mcv("compare", "-d", str(shapes), "--providers", "local,sagemaker", "--epochs", "2", env=env)
    assert table.returncode == 0, table.stderr
    assert "sagemaker" in table.stdout and "emulated" in table.stdout
    assert _json(run_mcv("endpoints", "--json", env=env))["endpoints"] == [], "compare leaves no endpoint"


def test_emulate_refuses_an_unknown_provider() -> None:
    out = run_mcv("emulate", "nosuchcloud", env={"PATH": os.environ.get("PATH", "")})
    assert out.returncode == 2 and "no emulator for provider 'nosuchcloud'" in out.stderr
    assert "sagemaker" in out.stderr
