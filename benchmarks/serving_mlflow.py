"""MLflow side of ``bench_serving.py``: package the benchmark model for ``mlflow models serve``.

Runs inside the MLflow virtual environment (``.bench/mlflow-venv``, created by
``bench_serving.py``), never in the project's own environment.

Two packagings of the same ``model.onnx``:

* ``pyfunc`` (the one compared): a pyfunc wrapper whose input is a one-column dataframe
  ``image`` of base64-encoded JPEG bytes; inside, it decodes with the very same
  ``mcv_local.preprocess.decode`` and scores with MLflow's own ``mlflow.onnx`` wrapper of
  the same ``model.onnx`` (MLflow's default session options). The same bytes travel and
  the same work is done on the server: only the serving layers differ.
* ``pyfunc-tuned``: the same, with ``onnx_session_options`` set the way our server sets
  its session (no thread spinning), for reference.
* ``onnx``: MLflow's own ``mlflow.onnx`` flavour, which takes decoded tensors: the
  client decodes (same ``decode``) and sends ``{"inputs": {"image": [[[...]]]}}`` JSON,
  ~0.5 MB of text per 224x224 image. Shown for reference, not used for the ratio.

Usage: ``python serving_mlflow.py save-pyfunc[-tuned] MODEL_DIR OUT_DIR PLUGIN_ROOT`` or
``python serving_mlflow.py save-onnx MODEL_DIR OUT_DIR``.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import mlflow.pyfunc


class Base64ImageModel(mlflow.pyfunc.PythonModel):
    """pyfunc: dataframe column ``image`` (base64 of encoded image bytes) -> scores ``[N, classes]``.

    Decodes with the shared ``mcv_local.preprocess.decode`` and scores with MLflow's own
    ``mlflow.onnx`` model wrapper (so the onnxruntime session is built the way MLflow builds
    it, from the ``onnx_session_options`` saved with the inner model).
    """

    def load_context(self, context):
        import mlflow.onnx

        # the loader `mlflow models serve` itself uses for an mlflow.onnx model
        self.onnx = mlflow.onnx._load_pyfunc(str(Path(context.artifacts["onnx_model"]) / "model.onnx"))
        meta = self.onnx.rt.get_modelmeta().custom_metadata_map
        self.image_size = int(meta["mcv.image_size"])
        self.channels = int(meta["mcv.channels"])

    def predict(self, context, model_input, params=None):
        import numpy as np

        from mcv_local.preprocess import decode

        pixels = np.stack(
            [decode(base64.b64decode(value), self.image_size, self.channels) for value in model_input["image"]]
        )
        return self.onnx.predict({"image": pixels})["scores"]


TUNED_SESSION = {
    "intra_op_num_threads": 2,
    "graph_optimization_level": 99,
    "extra_session_config": {"session.intra_op.allow_spinning": "0"},
}


def save_pyfunc(model_dir: Path, out_dir: Path, plugin_root: Path, tuned: bool = False) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        inner = Path(tmp) / "onnx-model"
        save_onnx(model_dir, inner, tuned=tuned)
        mlflow.pyfunc.save_model(
            path=str(out_dir),
            python_model=Base64ImageModel(),
            artifacts={"onnx_model": str(inner)},
            code_paths=[str(plugin_root / "mcv_local"), __file__],
        )


def save_onnx(model_dir: Path, out_dir: Path, tuned: bool = False) -> None:
    import mlflow.onnx
    import numpy as np
    import onnx
    from mlflow.models import infer_signature

    model = onnx.load(str(model_dir / "model.onnx"))
    example = np.zeros((1, 224, 224, 3), dtype=np.uint8)
    signature = infer_signature({"image": example}, {"scores": np.zeros((1, 10), np.float32)})
    mlflow.onnx.save_model(
        model, str(out_dir), signature=signature, onnx_session_options=TUNED_SESSION if tuned else None
    )


if __name__ == "__main__":
    command = sys.argv[1]
    if command in ("save-pyfunc", "save-pyfunc-tuned"):
        save_pyfunc(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), tuned=command.endswith("tuned"))
    elif command == "save-onnx":
        save_onnx(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        raise SystemExit(f"unknown command {command!r}")
