"""The local provider end to end through the real `mcv` command, each step from a new process.

Covers: train without waiting, status/wait/logs from another process, deploy a real HTTP server
that outlives the command, endpoints and predict from another process, evaluate, TTL, cancel,
resume, a crashed worker leaving a record that says so, a taken port, multi-label training.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import run_mcv

from multicloud_cv.testing import make_tiny_dataset, validate_document


def _json(out: Any) -> Any:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    return make_tiny_dataset(tmp_path / "tiny", classes=3, train_per_class=16, test_per_class=6)


def test_train_deploy_predict_evaluate_across_processes(tiny: Path, tmp_path: Path) -> None:
    job = _json(run_mcv("train", "--dataset", str(tiny), "--epochs", "3", "--no-wait", "--json"))
    validate_document("job", job)
    assert job["state"] in ("QUEUED", "RUNNING")
    done = _json(run_mcv("wait", job["id"], "--timeout", "5m", "--json"))
    validate_document("job", done)
    assert done["state"] == "SUCCEEDED" and done["model_id"]
    assert "val_accuracy" in done["metrics"]
    logs = run_mcv("logs", job["id"])
    assert logs.returncode == 0 and "epoch 3/3" in logs.stdout

    endpoint = _json(run_mcv("deploy", done["model_id"], "--json"))
    validate_document("endpoint", endpoint)
    try:
        assert endpoint["state"] == "READY" and endpoint["url"].startswith("http://127.0.0.1:")
        # the server outlives the deploy command and answers plain HTTP
        health = httpx.get(endpoint["url"] + "/healthz", timeout=5).json()
        assert health["status"] == "ok"
        listed = _json(run_mcv("endpoints", "--json"))
        validate_document("endpoint_list", listed)
        assert [e["id"] for e in listed["endpoints"]] == [endpoint["id"]]

        image = next((tiny / "test" / "circle").iterdir())
        predictions = _json(run_mcv("predict", endpoint["id"], str(image), str(tiny / "test" / "square"), "--json"))
        validate_document("prediction_list", predictions)
        assert len(predictions["predictions"]) == 1 + 6
        first = predictions["predictions"][0]
        assert first["provider"] == "local" and first["model_id"] == done["model_id"]
        assert first["image"] == str(image)

        evaluation = _json(run_mcv("evaluate", endpoint["id"], "--dataset", str(tiny), "--json"))
        validate_document("evaluation", evaluation)
        assert evaluation["num_images"] == 18 and evaluation["accuracy"] >= 0.6
        assert len(evaluation["confusion"]) == 3

        bad = tmp_path / "fake.png"
        bad.write_bytes(b"GIF89a but not really")
        out = run_mcv("predict", endpoint["id"], str(bad))
        assert out.returncode == 2 and "fake.png" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    finally:
        gone = _json(run_mcv("undeploy", endpoint["id"], "--json"))
    assert gone["state"] == "DELETED"
    with pytest.raises(httpx.TransportError):
        httpx.get(endpoint["url"] + "/healthz", timeout=2)
    assert _json(run_mcv("undeploy", endpoint["id"], "--json"))["state"] == "DELETED"

    # evaluating a MODEL serves it temporarily and removes the endpoint afterwards
    evaluation = _json(run_mcv("evaluate", done["model_id"], "--dataset", str(tiny), "--json"))
    assert evaluation["num_images"] == 18
    assert _json(run_mcv("endpoints", "--json"))["endpoints"] == []


def _trained_model(tiny: Path) -> str:
    done = _json(run_mcv("train", "--dataset", str(tiny), "--epochs", "1", "--json"))
    return str(done["model_id"])


def test_ttl_endpoint_removes_itself(tiny: Path) -> None:
    model = _trained_model(tiny)
    endpoint = _json(run_mcv("deploy", model, "--ttl", "3s", "--json"))
    assert endpoint["expires_at"]
    deadline = time.monotonic() + 30
    state = "READY"
    while time.monotonic() < deadline and state == "READY":
        time.sleep(0.5)
        state = _json(run_mcv("endpoints", "--all", "--json"))["endpoints"][0]["state"]
    assert state == "DELETED"


def test_port_already_taken(tiny: Path) -> None:
    model = _trained_model(tiny)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run_mcv("deploy", model, "-o", f"port={port}")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use; choose another with -o port=N (-o port=0 picks a free one)"
    ]
    assert _json(run_mcv("endpoints", "--json"))["endpoints"] == []


def test_cancel_then_resume(tiny: Path, mcv_home: Path) -> None:
    job = _json(
        run_mcv("train", "--dataset", str(tiny), "--epochs", "300", "--hp", "patience=1000", "--no-wait", "--json")
    )
    status_file = mcv_home / "local" / "jobs" / job["id"] / "status.json"

    def worker_status() -> dict[str, Any]:
        return json.loads(status_file.read_text()) if status_file.exists() else {}

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and worker_status().get("epoch", 0) < 3:
        time.sleep(0.1)
    cancelled = _json(run_mcv("cancel", job["id"], "--json"))
    assert cancelled["state"] == "CANCELLED"
    stopped_at = worker_status()["epoch"]
    assert stopped_at >= 3
    out = run_mcv("wait", job["id"], "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["state"] == "CANCELLED"

    resumed = _json(run_mcv("resume", job["id"], "--json"))
    assert resumed["state"] in ("QUEUED", "RUNNING")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and worker_status().get("native_state") != "TRAINING":
        time.sleep(0.1)
    # training continues from the checkpoint: the first epoch after resuming is not epoch 1
    assert worker_status()["epoch"] >= stopped_at - 1 > 1
    assert _json(run_mcv("cancel", job["id"], "--json"))["state"] == "CANCELLED"


def test_crashed_worker_leaves_a_failed_record(tiny: Path, mcv_home: Path) -> None:
    job = _json(
        run_mcv("train", "--dataset", str(tiny), "--epochs", "300", "--hp", "patience=1000", "--no-wait", "--json")
    )
    status_file = mcv_home / "local" / "jobs" / job["id"] / "status.json"
    deadline = time.monotonic() + 60
    pid = None
    while time.monotonic() < deadline and pid is None:
        if status_file.exists():
            pid = json.loads(status_file.read_text()).get("pid")
        time.sleep(0.1)
    assert pid
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    out = run_mcv("status", job["id"], "--json")
    status = _json(out)
    assert status["state"] == "FAILED" and status["native_state"] == "WORKER_DIED"
    assert "ended unexpectedly" in status["failure_reason"]
    out = run_mcv("wait", job["id"])
    assert out.returncode == 1 and "failed" in out.stderr


def test_multilabel_csv(tmp_path: Path) -> None:
    import random

    from multicloud_cv.testing.data import SHAPES, draw

    rng = random.Random(1)
    root = tmp_path / "ml"
    (root / "img").mkdir(parents=True)
    lines = ["image,labels,split"]
    for i in range(60):
        from PIL import Image

        chosen = [s for s in SHAPES[:3] if rng.random() < 0.5] or [SHAPES[0]]
        canvas = Image.new("RGB", (64, 32))
        for j, shape in enumerate(chosen[:2]):
            canvas.paste(draw(shape, 32, rng), (32 * j, 0))  # type: ignore[arg-type]
        canvas.save(root / "img" / f"{i:03d}.png")
        lines.append(f"img/{i:03d}.png,{' '.join(chosen[:2])},{'test' if i % 5 == 0 else 'train'}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    done = _json(run_mcv("train", "--dataset", str(root), "--epochs", "3", "--json"))
    assert done["task"] == "multilabel" and done["state"] == "SUCCEEDED"
    evaluation = _json(run_mcv("evaluate", done["model_id"], "--dataset", str(root), "--json"))
    validate_document("evaluation", evaluation)
    assert evaluation["task"] == "multilabel" and evaluation["num_images"] == 12
