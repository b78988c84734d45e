"""Detection benchmark of the local provider: mAP@.5 after a bounded training, and ONNX endpoint vs eager PyTorch.

Data: ``mcv dataset generate``'s offline set (Fashion-MNIST items pasted on real photos, exact
boxes), ``--images`` images at 320x240, split 70/15/15 with seed 0, cached under ``.bench/detection``.

* training: the local engine's FCOS detector (offline MobileNetV2 backbone), ``--steps`` optimizer
  steps of batch 8 on 2 threads; wall time reported (target: at most 600 s);
* quality: the exported ONNX model served by the real local endpoint (``mcv_local.serving.server``
  on 127.0.0.1), every held-out test image predicted through it, scored by the common code
  (``multicloud_cv.evaluation_detection``): target mAP@.5 >= 0.7;
* speed, same model and test images, one image at a time, 2 threads each: the endpoint's
  latency as its client sees it (decode + inference + NMS + HTTP), onnxruntime in-process, and
  eager PyTorch (the same detector in eval mode, ``torch.inference_mode``): target endpoint
  >= 2x faster than eager.

Not part of the test suite; bounded (the server gets a TTL; every wait has a timeout)::

    python benchmarks/bench_detection.py [--images 600] [--steps 600]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=REPO / ".bench" / "detection")
    args = parser.parse_args()

    import shutil

    import numpy as np
    import torch
    from PIL import Image

    from mcv_local.engine.detection import DetectionConfig, train_detector
    from mcv_local.engine.detection_export import OnnxDetector, export_detector
    from mcv_local.serving.client import EndpointClient
    from multicloud_cv.datasets.synthetic_detection import generate_detection_dataset
    from multicloud_cv.evaluation_detection import score_detection
    from multicloud_cv.schema import Prediction

    data = args.work / f"data-{args.images}"
    shutil.rmtree(data, ignore_errors=True)
    data.parent.mkdir(parents=True, exist_ok=True)
    dataset = generate_detection_dataset(data, images=args.images, seed=0)  # ~2 s for 500 images
    run = args.work / f"run-{args.images}-{args.steps}"
    shutil.rmtree(run, ignore_errors=True)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    config = DetectionConfig(max_steps=args.steps, batch_size=8, threads=args.threads, seed=0, resume=False)
    result = train_detector(dataset, config, run)
    train_s = time.perf_counter() - start
    onnx = export_detector(result.model, run / "model.onnx", result.classes, result.image_size, model_id="bench")

    test = dataset.split("test")
    payloads = [dataset.absolute(image).read_bytes() for image in test]
    ready = run / "ready.json"
    server = subprocess.Popen(
        [sys.executable, "-m", "mcv_local.serving.server", "--model-dir", str(run), "--port", "0",
         "--ready-file", str(ready), "--ttl", "900", "--intra-op-threads", str(args.threads)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            if time.monotonic() > deadline or server.poll() is not None:
                message = server.stderr.read().decode() if server.stderr else ""
                raise SystemExit(f"the endpoint did not start: {message}")
            time.sleep(0.1)
        url = json.loads(ready.read_text())["url"]
        client = EndpointClient(url, timeout=60)
        for payload in payloads[:3]:
            client.predict(payload, threshold=0.05)
        predictions, endpoint_ms = [], []
        for payload in payloads:
            t = time.perf_counter()
            answer = client.predict(payload, threshold=0.05)
            endpoint_ms.append((time.perf_counter() - t) * 1000)
            predictions.append(Prediction.model_validate(answer))
        client.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    scores = score_detection(dataset, test, predictions, score_threshold=0.5)
    detector = OnnxDetector(onnx, intra_op_threads=args.threads)
    pixels = [np.asarray(Image.open(dataset.absolute(image)).convert("RGB")) for image in test]
    for p in pixels[:3]:
        detector.detect(p, 0.05, 100)
    ort_ms = []
    for p in pixels:
        t = time.perf_counter()
        detector.detect(p, 0.05, 100)
        ort_ms.append((time.perf_counter() - t) * 1000)
    model = result.model.eval()
    eager_ms = []
    with torch.inference_mode():
        tensors = [torch.from_numpy(p.copy()).permute(2, 0, 1).float().div(255) for p in pixels]
        for x in tensors[:3]:
            model([x])
        for x in tensors:
            t = time.perf_counter()
            model([x])
            eager_ms.append((time.perf_counter() - t) * 1000)

    def p50(values: list[float]) -> float:
        return round(statistics.median(values), 2)

    report: dict[str, Any] = {
        "images": args.images,
        "test_images": len(test),
        "steps": args.steps,
        "train_seconds": round(train_s, 1),
        "steps_per_second": round(result.steps_per_second, 2),
        "map50": scores["map50"],
        "map": scores["map"],
        "precision_at_0.5": scores["precision"],
        "recall_at_0.5": scores["recall"],
        "endpoint_ms_p50": p50(endpoint_ms),
        "onnxruntime_in_process_ms_p50": p50(ort_ms),
        "eager_pytorch_ms_p50": p50(eager_ms),
        "endpoint_speedup_vs_eager": round(p50(eager_ms) / p50(endpoint_ms), 2),
        "targets": {
            "map50_at_least_0.7": bool(scores["map50"] is not None and scores["map50"] >= 0.7),
            "training_at_most_600s": train_s <= 600,
            "endpoint_at_least_2x_eager": p50(eager_ms) / p50(endpoint_ms) >= 2.0,
        },
        "load_average": os.getloadavg(),
    }
    (REPO / ".bench").mkdir(exist_ok=True)
    (REPO / ".bench" / "detection.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
