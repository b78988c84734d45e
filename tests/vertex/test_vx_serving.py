"""The serving container's program (``mcv_vertex.serving``): AutoML-format predictions from the local engine's ONNX
exports, in process (:func:`predict_instances`), through the Starlette app, and as a real server on 127.0.0.1 that
downloads AIP_STORAGE_URI from an in-process gcp-storage-emulator."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tiny_models

from mcv_vertex import serving
from multicloud_cv.testing.emulators import gcs_emulator

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # StarletteDeprecationWarning: starlette 1.x prefers httpx2 for its TestClient
    from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> tiny_models.TinyModel:
    return tiny_models.train_tiny_classifier(tmp_path_factory.mktemp("vx-cls"))


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> tiny_models.TinyModel:
    return tiny_models.train_tiny_detector(tmp_path_factory.mktemp("vx-det"))


def _instance(path: Path) -> dict[str, str]:
    return {"content": base64.b64encode(path.read_bytes()).decode("ascii"), "mimeType": "image/png"}


def _check_classification(prediction: dict[str, Any], labels: list[str]) -> None:
    assert set(prediction) == {"ids", "displayNames", "confidences"}
    ids, names, confidences = prediction["ids"], prediction["displayNames"], prediction["confidences"]
    assert len(ids) == len(names) == len(confidences)
    assert confidences == sorted(confidences, reverse=True)
    for index, name in zip(ids, names, strict=True):
        assert isinstance(index, str) and labels[int(index)] == name


def test_classification_in_automl_format(classifier: tiny_models.TinyModel) -> None:
    model = serving.load_model(classifier.model_dir, threads=1)
    predictions = serving.predict_instances(model, [_instance(p) for p in classifier.images[:3]], None)
    assert len(predictions) == 3
    for prediction in predictions:
        _check_classification(prediction, classifier.labels)
        assert len(prediction["ids"]) == 3  # threshold 0.0 and 10 predictions by default: every class
        assert abs(sum(prediction["confidences"]) - 1.0) < 1e-3
    capped = serving.predict_instances(model, [_instance(classifier.images[0])], {"maxPredictions": 1})
    assert capped[0]["ids"] == predictions[0]["ids"][:1]
    top = predictions[0]["confidences"][0]
    strict = serving.predict_instances(model, [_instance(classifier.images[0])], {"confidenceThreshold": top + 1e-6})
    assert strict == [{"ids": [], "displayNames": [], "confidences": []}]
    # a folder works too (loaded once, cached), and so does the emulation kit's LoadedModel
    assert serving.predict_instances(str(classifier.model_dir), [_instance(classifier.images[0])])[0]["ids"]
    from multicloud_cv.emulation.serving import LoadedModel

    kit = LoadedModel(classifier.model_dir, "classification")
    assert serving.predict_instances(kit, [_instance(classifier.images[0])]) == predictions[:1]


def test_detection_in_automl_format_with_x_x_y_y_boxes(detector: tiny_models.TinyModel) -> None:
    from PIL import Image

    from mcv_local.engine.detection_export import OnnxDetector

    model = serving.load_model(detector.model_dir, threads=1)
    assert model.task == "detection"
    image = detector.images[0]
    (prediction,) = serving.predict_instances(model, [_instance(image)], {"confidenceThreshold": 0.0})
    assert set(prediction) == {"ids", "displayNames", "confidences", "bboxes"}
    assert prediction["confidences"] == sorted(prediction["confidences"], reverse=True)
    assert len(prediction["bboxes"]) == len(prediction["ids"]) <= serving.DEFAULT_MAX_PREDICTIONS
    import numpy as np

    with Image.open(image) as opened:
        pixels = np.asarray(opened.convert("RGB"))
    expected = OnnxDetector(detector.model_dir / "model.onnx").detect(pixels, score_threshold=0.0, max_detections=10)
    assert len(expected) == len(prediction["bboxes"])
    for (label, _score, x0, y0, x1, y1), box, name in zip(
        expected, prediction["bboxes"], prediction["displayNames"], strict=True
    ):
        assert box == pytest.approx([x0, x1, y0, y1])  # xMin, xMax, yMin, yMax
        assert name == detector.labels[label] and 0.0 <= box[0] <= box[1] <= 1.0 and box[2] <= box[3]
    if prediction["ids"]:
        (few,) = serving.predict_instances(model, [_instance(image)], {"confidenceThreshold": 0.0, "maxPredictions": 1})
        assert len(few["bboxes"]) == 1 and few["confidences"][0] == prediction["confidences"][0]
        high = prediction["confidences"][0] + 1e-6
        (none,) = serving.predict_instances(model, [_instance(image)], {"confidenceThreshold": min(1.0, high)})
        assert none["ids"] == [] and none["bboxes"] == []


@pytest.mark.parametrize(
    ("instances", "parameters", "message"),
    [
        ([{"content": "***not base64***"}], None, "instance 0: 'content' is not valid base64"),
        ([{"mimeType": "image/png"}], None, "instance 0: 'content'"),
        (["just a string"], None, "instance 0: expected an object"),
        ([{"content": base64.b64encode(b"not an image").decode()}], None, "instance 0:"),
        ([], {"confidenceThreshold": 2}, "confidenceThreshold"),
        ([], {"maxPredictions": 0}, "maxPredictions"),
    ],
)
def test_bad_instances_and_parameters(
    classifier: tiny_models.TinyModel, instances: list[Any], parameters: Any, message: str
) -> None:
    model = serving.load_model(classifier.model_dir, threads=1)
    with pytest.raises(serving.BadInstance, match=message.replace("*", r"\*")):
        serving.predict_instances(model, instances, parameters)


def test_the_app_serves_health_and_predict(classifier: tiny_models.TinyModel, detector: tiny_models.TinyModel) -> None:
    model = serving.load_model(classifier.model_dir, threads=1)
    route = "/v1/endpoints/123/deployedModels/456:predict"
    client = TestClient(serving.create_app(model, "/v1/endpoints/123/deployedModels/456", route))
    assert client.get("/v1/endpoints/123/deployedModels/456").status_code == 200
    answer = client.post(
        route, json={"instances": [_instance(classifier.images[0])], "parameters": {"maxPredictions": 2}}
    )
    assert answer.status_code == 200, answer.text
    (prediction,) = answer.json()["predictions"]
    _check_classification(prediction, classifier.labels)
    assert len(prediction["ids"]) == 2
    bad = client.post(route, json={"instances": [{"content": "%%%"}]})
    assert bad.status_code == 400 and "not valid base64" in bad.json()["error"]
    assert client.post(route, content=b"{nope").status_code == 400
    assert client.post(route, json={"nothing": []}).status_code == 400
    detection = TestClient(serving.create_app(serving.load_model(detector.model_dir, threads=1)))
    answer = detection.post("/predict", json={"instances": [_instance(detector.images[1])]})
    assert answer.status_code == 200 and "bboxes" in answer.json()["predictions"][0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def gcs_model(classifier: tiny_models.TinyModel) -> Iterator[tuple[str, str]]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    with gcs_emulator(default_bucket="bkt") as gcs:
        client = storage.Client(
            project="t", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs.endpoint_url}
        )
        for path in sorted(classifier.model_dir.iterdir()):
            client.bucket("bkt").blob(f"p/jobs/7/model/{path.name}").upload_from_filename(str(path))
        yield gcs.endpoint_url, "gs://bkt/p/jobs/7/model/"


def test_the_container_program_downloads_aip_storage_uri_and_serves(
    gcs_model: tuple[str, str], classifier: tiny_models.TinyModel
) -> None:
    endpoint, uri = gcs_model
    port = _free_port()
    env = {
        **os.environ,
        "STORAGE_EMULATOR_HOST": endpoint,
        "AIP_STORAGE_URI": uri,
        "AIP_HTTP_PORT": str(port),
        "AIP_HEALTH_ROUTE": "/ping",
        "AIP_PREDICT_ROUTE": "/v1/endpoints/1/deployedModels/2:predict",
        "OMP_NUM_THREADS": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "mcv_vertex.serving", "--host", "127.0.0.1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                if httpx.get(f"{base}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become healthy in 60 s"
            time.sleep(0.2)
        answer = httpx.post(
            f"{base}/v1/endpoints/1/deployedModels/2:predict",
            json={"instances": [_instance(classifier.images[0]), _instance(classifier.images[1])]},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["predictions"]) == 2
        _check_classification(answer.json()["predictions"][0], classifier.labels)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_the_container_program_fails_on_one_line_without_a_model(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIP_")}
    result = subprocess.run(
        [sys.executable, "-m", "mcv_vertex.serving", "--model-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("mcv_vertex.serving failed: no model.onnx in")


def test_serving_needs_neither_torch_nor_onnx(
    classifier: tiny_models.TinyModel, detector: tiny_models.TinyModel
) -> None:
    """The serving image installs onnxruntime, not torch or onnx (plugins/vertex/container/Dockerfile)."""
    code = (
        "import sys, base64, pathlib\n"
        "for name in ('torch', 'torchvision', 'onnx', 'pycocotools'):\n"
        "    sys.modules[name] = None\n"
        "from mcv_vertex import serving\n"
        "for folder, image in zip(sys.argv[1::2], sys.argv[2::2]):\n"
        "    content = base64.b64encode(pathlib.Path(image).read_bytes()).decode()\n"
        "    (answer,) = serving.predict_instances(folder, [{'content': content}], {'maxPredictions': 2})\n"
        "    print(sorted(answer))\n"
    )
    argv = [str(classifier.model_dir), str(classifier.images[0]), str(detector.model_dir), str(detector.images[0])]
    result = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == [
        "['confidences', 'displayNames', 'ids']",
        "['bboxes', 'confidences', 'displayNames', 'ids']",
    ]
