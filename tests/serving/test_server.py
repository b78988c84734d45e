"""The HTTP endpoint as a real subprocess on 127.0.0.1, and the client that talks to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from mcv_local.serving.client import EndpointClient
from mcv_local.serving.errors import EndpointUnreachable, InvalidImage, ServingError

pytestmark = pytest.mark.timeout(60)


def _same_labels(answer: dict[str, Any], expected: dict[str, Any]) -> None:
    assert [(x["name"], x["index"]) for x in answer["labels"]] == [(x["name"], x["index"]) for x in expected["labels"]]
    for got, want in zip(answer["labels"], expected["labels"], strict=True):
        assert got["confidence"] == pytest.approx(want["confidence"], abs=1e-5)


# -- the shared server -----------------------------------------------------------------------


def test_ready_file_names_the_real_port(server: Any) -> None:
    info = server.info
    assert set(info) == {"pid", "port", "url"}
    assert info["pid"] == server.process.pid
    assert isinstance(info["port"], int) and info["port"] > 0
    assert info["url"] == f"http://127.0.0.1:{info['port']}"
    assert not list(server.ready_file.parent.glob(".ready.json.*"))  # temporary file renamed away


def test_healthz_and_metadata(server: Any) -> None:
    with EndpointClient(server.url, timeout=10) as client:
        assert client.health() == {"status": "ok", "model_id": "cls-model"}
        meta = client.metadata()
    assert meta["labels"] == ["cat", "dog", "bird", "fish", "horse", "cow", "sheep"]
    assert meta["task"] == "classification"
    assert meta["image_size"] == 32 and meta["channels"] == 3 and meta["model_id"] == "cls-model"


@pytest.mark.parametrize(("kind", "content_type"), [("JPEG", "image/jpeg"), ("PNG", "image/png")])
def test_predict_over_http_matches_in_process(
    server: Any, reference_model: Any, image_bytes: Any, kind: str, content_type: str
) -> None:
    data = image_bytes(kind, seed=11)
    response = httpx.post(f"{server.url}/v1/predict", content=data, headers={"content-type": content_type}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert set(answer) == {"provider", "model_id", "task", "labels", "detections", "latency_ms"}
    assert answer["provider"] == "local" and answer["model_id"] == "cls-model" and answer["task"] == "classification"
    assert answer["detections"] == [] and answer["latency_ms"] > 0
    assert len(answer["labels"]) == 5
    confidences = [x["confidence"] for x in answer["labels"]]
    assert confidences == sorted(confidences, reverse=True) and all(0 <= c <= 1 for c in confidences)
    _same_labels(answer, reference_model.predict(data))


def test_query_parameters(server: Any, reference_model: Any, image_bytes: Any) -> None:
    data = image_bytes("JPEG", seed=12)
    with EndpointClient(server.url, timeout=10) as client:
        answer = client.predict(data, top_k=2)
        assert len(answer["labels"]) == 2
        _same_labels(answer, reference_model.predict(data, top_k=2))
        assert len(client.predict(data, top_k=50)["labels"]) == 7
    bad = httpx.post(f"{server.url}/v1/predict?top_k=zero", content=data, timeout=10)
    assert bad.status_code == 400 and "top_k" in bad.json()["error"]
    bad = httpx.post(f"{server.url}/v1/predict?threshold=2", content=data, timeout=10)
    assert bad.status_code == 400 and "threshold" in bad.json()["error"]


def test_octet_stream_and_missing_content_type(server: Any, image_bytes: Any) -> None:
    data = image_bytes("PNG", seed=13)
    for headers in ({"content-type": "application/octet-stream"}, {}):
        response = httpx.post(f"{server.url}/v1/predict", content=data, headers=headers, timeout=10)
        assert response.status_code == 200, response.text


def test_concurrent_requests_match_in_process(server: Any, reference_model: Any, image_bytes: Any) -> None:
    images = [image_bytes("JPEG" if i % 2 else "PNG", size=(40 + i, 30 + i), seed=100 + i) for i in range(16)]
    expected = [reference_model.predict(data, top_k=7) for data in images]
    with EndpointClient(server.url, timeout=20) as client, ThreadPoolExecutor(16) as pool:
        for _ in range(2):  # twice: the second round meets a warm server
            answers = list(pool.map(lambda data: client.predict(data, top_k=7), images))
            for answer, want in zip(answers, expected, strict=True):
                _same_labels(answer, want)


def test_concurrent_bad_and_good_images_are_answered_independently(server: Any, image_bytes: Any) -> None:
    good = image_bytes("JPEG", seed=21)
    bodies = [good if i % 2 else b"garbage %d" % i for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        codes = list(
            pool.map(lambda b: httpx.post(f"{server.url}/v1/predict", content=b, timeout=20).status_code, bodies)
        )
    assert codes == [200 if i % 2 else 400 for i in range(12)]


def test_non_image_body_is_400_with_a_clear_message(server: Any) -> None:
    response = httpx.post(
        f"{server.url}/v1/predict", content=b"hello, I am text", headers={"content-type": "text/plain"}, timeout=10
    )
    assert response.status_code == 400
    assert "not a recognised image format" in response.json()["error"]
    with EndpointClient(server.url, timeout=10) as client, pytest.raises(InvalidImage, match="not a recognised image"):
        client.predict(b"\x00\x01\x02 not an image")


def test_empty_body_is_400(server: Any) -> None:
    response = httpx.post(f"{server.url}/v1/predict", content=b"", timeout=10)
    assert response.status_code == 400 and "empty" in response.json()["error"]


def test_truncated_jpeg_is_400(server: Any, image_bytes: Any) -> None:
    data = image_bytes("JPEG", size=(160, 120), seed=14)
    response = httpx.post(f"{server.url}/v1/predict", content=data[: len(data) // 2], timeout=10)
    assert response.status_code == 400
    assert "truncated" in response.json()["error"]


def test_body_above_the_limit_is_413(server: Any) -> None:
    response = httpx.post(f"{server.url}/v1/predict", content=b"\0" * (20 * 1024 * 1024 + 1), timeout=20)
    assert response.status_code == 413
    assert "limit" in response.json()["error"]
    with EndpointClient(server.url, timeout=20) as client, pytest.raises(InvalidImage, match="limit"):
        client.predict(b"\0" * (20 * 1024 * 1024 + 1))


def test_wrong_method_and_unknown_path(server: Any) -> None:
    response = httpx.get(f"{server.url}/v1/predict", timeout=10)
    assert response.status_code == 405 and "GET is not allowed" in response.json()["error"]
    response = httpx.get(f"{server.url}/nowhere", timeout=10)
    assert response.status_code == 404 and "/v1/predict" in response.json()["error"]


# -- the client ----------------------------------------------------------------------------------


def test_client_maps_connection_refused_to_endpoint_unreachable() -> None:
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with EndpointClient(f"http://127.0.0.1:{port}", timeout=2) as client:
        with pytest.raises(EndpointUnreachable, match=f"127.0.0.1:{port}") as info:
            client.health()
        assert isinstance(info.value, ServingError)
        with pytest.raises(EndpointUnreachable):
            client.predict(b"data")


def test_client_validates_options_locally(server: Any) -> None:
    with EndpointClient(server.url, timeout=10) as client:
        with pytest.raises(ValueError, match="top_k"):
            client.predict(b"x", top_k=0)
        with pytest.raises(ValueError, match="threshold"):
            client.predict(b"x", threshold=1.5)
    with pytest.raises(ValueError, match="http"):
        EndpointClient("127.0.0.1:80")


# -- servers of their own ---------------------------------------------------------------------------


def test_multilabel_server(spawn_server: Any, multilabel_dir: Path, image_bytes: Any) -> None:
    from mcv_local.serving.session import OnnxModel

    reference = OnnxModel(multilabel_dir)
    proc = spawn_server(multilabel_dir, "--max-batch", "4", "--max-wait-ms", "5")
    with EndpointClient(proc.url, timeout=10) as client:
        for seed in range(3):
            data = image_bytes("PNG", seed=seed)
            for threshold in (None, 0.0, 0.3, 1.0):
                answer = client.predict(data, threshold=threshold)
                assert answer["task"] == "multilabel"
                _same_labels(answer, reference.predict(data, threshold=threshold))
                limit = 0.5 if threshold is None else threshold
                assert all(x["confidence"] >= limit for x in answer["labels"])
        assert client.predict(image_bytes("PNG"), threshold=1.0)["labels"] == []


def test_port_in_use_exits_3_with_a_clear_line(spawn_server: Any, classification_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = spawn_server(classification_dir, port=port, ready=False)
        assert proc.process.wait(timeout=20) == 3
    log = proc.log()
    assert f"port {port} on 127.0.0.1 is already in use; choose another with --port" in log.splitlines()
    assert "loaded model" not in log  # failed before loading anything
    assert not proc.ready_file.exists()


def test_ttl_shuts_the_server_down_by_itself(spawn_server: Any, classification_dir: Path, image_bytes: Any) -> None:
    proc = spawn_server(classification_dir, "--ttl", "1.5")
    with EndpointClient(proc.url, timeout=10) as client:
        assert client.health()["status"] == "ok"
    assert proc.process.wait(timeout=15) == 0
    assert "--ttl" in proc.log()
    with EndpointClient(proc.url, timeout=2) as client, pytest.raises(EndpointUnreachable):
        client.health()


def test_sigterm_shuts_down_cleanly(spawn_server: Any, classification_dir: Path, image_bytes: Any) -> None:
    proc = spawn_server(classification_dir)
    with EndpointClient(proc.url, timeout=10) as client:
        client.predict(image_bytes("JPEG"))
    started = time.monotonic()
    proc.process.send_signal(signal.SIGTERM)
    assert proc.process.wait(timeout=15) == 0
    assert time.monotonic() - started < 5
    assert "Traceback" not in proc.log()
    with EndpointClient(proc.url, timeout=2) as client, pytest.raises(EndpointUnreachable):
        client.health()


def test_fixed_port(spawn_server: Any, classification_dir: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = spawn_server(classification_dir, port=port)
    assert proc.info["port"] == port and proc.info["url"] == f"http://127.0.0.1:{port}"


def test_bad_model_dir_exits_2(spawn_server: Any, tmp_path: Path) -> None:
    proc = spawn_server(tmp_path / "missing", ready=False)
    assert proc.process.wait(timeout=20) == 2
    assert "does not exist" in proc.log().strip().splitlines()[-1]
    assert not proc.ready_file.exists()


def test_non_loopback_host_is_refused(spawn_server: Any, classification_dir: Path) -> None:
    proc = spawn_server(classification_dir, "--host", "0.0.0.0", ready=False)
    assert proc.process.wait(timeout=20) == 2
    assert "loopback" in proc.log()
    assert not proc.ready_file.exists()


def test_ready_file_is_json_written_once_ready(spawn_server: Any, classification_dir: Path) -> None:
    proc = spawn_server(classification_dir, ready=False)
    info = proc.wait_ready()
    assert json.loads(proc.ready_file.read_text()) == info
    # by the time the ready-file exists the endpoint answers
    assert httpx.get(f"{info['url']}/healthz", timeout=5).status_code == 200
    assert os.getpid() != info["pid"]


def test_client_batches_match_pixels(server: Any, reference_model: Any, image_bytes: Any) -> None:
    data = image_bytes("JPEG", seed=31)
    scores = reference_model.predict_pixels(reference_model.decode(data)[None])[0]
    with EndpointClient(server.url, timeout=10) as client:
        answer = client.predict(data, top_k=7)
    by_index = {x["index"]: x["confidence"] for x in answer["labels"]}
    assert np.allclose([by_index[i] for i in range(7)], scores, atol=1e-5)
