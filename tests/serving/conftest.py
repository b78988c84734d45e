"""Fixtures for the local serving tests: tiny contract-shaped ONNX models and real servers.

``make_model_dir`` builds a model exactly as the training engine exports it (one uint8
NHWC input ``image``, normalisation in the graph, one output ``scores``, ``mcv.*``
metadata) from a tiny torch module, in well under a second.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

_PLUGIN_ROOT = Path(__file__).resolve().parents[2] / "plugins" / "local"
if str(_PLUGIN_ROOT) not in sys.path:
    sys.path.insert(0, str(_PLUGIN_ROOT))

SERVER_MODULE = "mcv_local.serving.server"
START_TIMEOUT_S = 30.0


def make_model_dir(
    directory: Path,
    *,
    task: str = "classification",
    labels: list[str] | None = None,
    image_size: int = 32,
    channels: int = 3,
    model_id: str = "test-model",
    backbone: str = "tiny-cnn",
    seed: int = 0,
    props: dict[str, str] | None = None,
    input_name: str = "image",
) -> Path:
    """Export a tiny model following the serving contract into ``directory/model.onnx``."""
    import onnx
    import torch

    labels = labels if labels is not None else [f"label_{i}" for i in range(5)]
    torch.manual_seed(seed)

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(channels, 8, kernel_size=3, stride=2, padding=1)
            self.head = torch.nn.Linear(8, len(labels))

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            x = image.permute(0, 3, 1, 2).float()
            x = (x - 127.0) / 128.0
            x = torch.relu(self.conv(x)).mean(dim=(2, 3))
            logits = self.head(x) * 4.0  # spread the scores: no near-ties between labels
            return torch.softmax(logits, dim=1) if task == "classification" else torch.sigmoid(logits)

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.onnx"
    dummy = torch.zeros(1, image_size, image_size, channels, dtype=torch.uint8)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Tiny().eval(),
            (dummy,),
            str(path),
            input_names=[input_name],
            output_names=["scores"],
            dynamic_axes={input_name: {0: "N"}, "scores": {0: "N"}},
            dynamo=False,
            opset_version=17,
        )
    model = onnx.load(str(path))
    meta = {
        "mcv.labels": json.dumps(labels),
        "mcv.task": task,
        "mcv.image_size": str(image_size),
        "mcv.channels": str(channels),
        "mcv.backbone": backbone,
        "mcv.model_id": model_id,
    }
    if props is not None:
        meta = props
    onnx.helper.set_model_props(model, meta)
    onnx.save(model, str(path))
    return directory


def encode_image(kind: str = "JPEG", size: tuple[int, int] = (64, 48), seed: int = 0, mode: str = "RGB") -> bytes:
    """A smooth random picture encoded as ``kind`` (JPEG, PNG, ...)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    channels = []
    for _ in range(3):
        a, b, c = rng.uniform(-1, 1, 3)
        channels.append(127 + 120 * np.sin(a * xx / 7 + b * yy / 5 + c * 3))
    array = np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)
    image = Image.fromarray(array, "RGB").convert(mode)
    buf = io.BytesIO()
    image.save(buf, format=kind)
    return buf.getvalue()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    parts = [str(_PLUGIN_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    ready_file: Path
    log_file: Path
    info: dict[str, Any] | None = None

    @property
    def url(self) -> str:
        assert self.info is not None
        return str(self.info["url"])

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                self.info = json.loads(self.ready_file.read_text())
                return self.info
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode} before ready:\n{self.log()}")
            time.sleep(0.02)
        raise AssertionError(f"server not ready within {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(model_dir: Path, workdir: Path, *args: str, port: int = 0, ready: bool = True) -> ServerProcess:
    """Start ``python -m mcv_local.serving.server`` on 127.0.0.1; waits for its ready-file when ``ready``."""
    workdir.mkdir(parents=True, exist_ok=True)
    ready_file = workdir / "ready.json"
    log_file = workdir / "server.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                SERVER_MODULE,
                "--model-dir",
                str(model_dir),
                "--port",
                str(port),
                "--ready-file",
                str(ready_file),
                *args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_env(),
        )
    server = ServerProcess(process, ready_file, log_file)
    if ready:
        try:
            server.wait_ready()
        except BaseException:
            server.stop()
            raise
    return server


@pytest.fixture(scope="session")
def make_model() -> Any:
    """The :func:`make_model_dir` factory, for tests that need a model of their own."""
    return make_model_dir


@pytest.fixture(scope="session")
def image_bytes() -> Any:
    """The :func:`encode_image` factory: ``image_bytes("PNG", seed=3)``."""
    return encode_image


@pytest.fixture(scope="session")
def classification_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_dir(
        tmp_path_factory.mktemp("cls"),
        labels=["cat", "dog", "bird", "fish", "horse", "cow", "sheep"],
        model_id="cls-model",
    )


@pytest.fixture(scope="session")
def multilabel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_dir(
        tmp_path_factory.mktemp("ml"),
        task="multilabel",
        labels=["red", "green", "blue", "round", "square"],
        model_id="ml-model",
        seed=1,
    )


@pytest.fixture(scope="session")
def grey_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_dir(
        tmp_path_factory.mktemp("grey"), channels=1, image_size=28, labels=[str(d) for d in range(10)], model_id="grey"
    )


@pytest.fixture(scope="module")
def server(classification_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(classification_dir, tmp_path_factory.mktemp("srv"))
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def spawn_server(tmp_path: Path) -> Iterator[Any]:
    """``spawn_server(model_dir, *args, port=0, ready=True)``; every server is stopped at teardown."""
    started: list[ServerProcess] = []

    def spawn(model_dir: Path, *args: str, port: int = 0, ready: bool = True) -> ServerProcess:
        proc = start_server(model_dir, tmp_path / f"server{len(started)}", *args, port=port, ready=False)
        started.append(proc)
        if ready:
            proc.wait_ready()
        return proc

    try:
        yield spawn
    finally:
        for proc in started:
            proc.stop()


@pytest.fixture(scope="module")
def reference_model(classification_dir: Path) -> Any:
    """The classification model loaded in-process, to compare the server's answers with."""
    from mcv_local.serving.session import OnnxModel

    return OnnxModel(classification_dir)
