"""ONNX export of a trained model, under the contract the local serving side relies on.

Contract (agreed with serving; do not change):

* ONNX opset 17, exported with ``torch.onnx.export(..., dynamo=False)``.
* One input ``image``: ``uint8`` ``[N, H, W, C]``, dynamic ``N``, ``H = W = image_size``,
  ``C = channels``. The graph casts to float, normalises and transposes to NCHW itself.
* One output ``scores``: ``float32`` ``[N, num_classes]``, softmax probabilities for task
  ``classification``, sigmoid probabilities for ``multilabel``.
* Metadata props (all strings): ``mcv.labels`` (JSON list of class names in index order),
  ``mcv.task``, ``mcv.image_size``, ``mcv.channels``, ``mcv.backbone``, ``mcv.model_id``.

:func:`export_onnx` checks after writing that onnxruntime and torch agree on a batch.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from .config import TrainConfig
from .errors import EngineError

logger = logging.getLogger(__name__)

OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "scores"
TOLERANCE = 1e-4


class ScoringModel(nn.Module):
    """``uint8 [N,H,W,C]`` pixels -> probabilities ``[N, K]`` around a logits model (see :mod:`.models`)."""

    def __init__(self, model: nn.Module, task: str) -> None:
        super().__init__()
        self.model = model
        self.multilabel = task == "multilabel"

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.to(torch.float32).permute(0, 3, 1, 2)
        logits = self.model(x)
        return torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=1)


def metadata(cfg: TrainConfig, model_id: str) -> dict[str, str]:
    """The ``mcv.*`` metadata props for a resolved config."""
    return {
        "mcv.labels": json.dumps(list(cfg.classes)),
        "mcv.task": cfg.task,
        "mcv.image_size": str(cfg.image_size),
        "mcv.channels": str(cfg.channels),
        "mcv.backbone": cfg.backbone,
        "mcv.model_id": model_id,
    }


def export_onnx(
    model: nn.Module, cfg: TrainConfig, path: str | Path, model_id: str = "", sample: torch.Tensor | None = None
) -> Path:
    """Write ``model`` (logits model from :func:`~.models.build_model`) to ``path`` under the contract.

    ``cfg`` must be resolved (``image_size`` and ``channels`` set). ``sample`` is an optional
    ``uint8 [N,H,W,C]`` batch used for the torch/onnxruntime agreement check (random pixels
    otherwise). The file is written atomically. Raises :class:`EngineError` when the check
    fails (max abs difference >= ``1e-4``).
    """
    if cfg.image_size is None or cfg.channels is None:
        raise EngineError("export_onnx needs a resolved config (image_size and channels set)")
    path = Path(path)
    size, channels = cfg.image_size, cfg.channels
    scoring = ScoringModel(copy.deepcopy(model).float().cpu(), cfg.task).eval()
    dummy = torch.zeros((2, size, size, channels), dtype=torch.uint8)
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated in favour of dynamo
        torch.onnx.export(
            scoring,
            (dummy,),
            str(tmp),
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}},
        )
    proto = onnx.load(str(tmp))
    onnx.helper.set_model_props(proto, metadata(cfg, model_id))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    try:
        diff = _max_difference(scoring, tmp, sample, size, channels)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    if not diff < TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise EngineError(f"exported ONNX disagrees with torch: max abs difference {diff:.2e}")
    os.replace(tmp, path)
    logger.info("exported %s (torch/onnxruntime max abs difference %.1e)", path, diff)
    return path


def _max_difference(scoring: nn.Module, path: Path, sample: torch.Tensor | None, size: int, channels: int) -> float:
    import onnxruntime as ort

    if sample is None:
        gen = torch.Generator().manual_seed(0)
        sample = torch.randint(0, 256, (5, size, size, channels), dtype=torch.uint8, generator=gen)
    sample = sample.to(torch.uint8).contiguous()
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (onnx_scores,) = session.run([OUTPUT_NAME], {INPUT_NAME: sample.numpy()})
    with torch.no_grad():
        torch_scores = scoring(sample).numpy()
    if onnx_scores.shape != torch_scores.shape or onnx_scores.dtype != np.float32:
        raise EngineError(
            f"exported ONNX returns {onnx_scores.dtype}{list(onnx_scores.shape)}, "
            f"expected float32{list(torch_scores.shape)}"
        )
    return float(np.abs(onnx_scores - torch_scores).max())
