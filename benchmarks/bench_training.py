"""Training benchmark of the local engine on Fashion-MNIST against a hand-written PyTorch CNN.

Fashion-MNIST comes from the Debian package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist/*.gz``). The 60k training and 10k test images are
written once as PNG files, one folder per class, under ``--cache`` (reused when present).

* ours: the engine with DEFAULT settings on the 60k PNG files (backbone auto -> small_cnn)
  and a training time budget of ``--budget`` seconds; the exported ONNX model is then
  evaluated with onnxruntime on the 10k test PNGs (decoded with ``mcv_local.preprocess``).
* handwritten: ``benchmarks/handwritten_cnn.py``, a plain 2-conv CNN trained with Adam on the
  idx arrays for the same budget.

Each runs in its own subprocess; peak RSS is that child's ``ru_maxrss`` from ``os.wait4``.
Prints a Markdown table and writes ``.bench/training.json``. Not part of the test suite::

    python benchmarks/bench_training.py [--budget 180] [--only ours|handwritten]
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FOLDERS = ["t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
TARGET = 0.93

logger = logging.getLogger("bench_training")


def load_idx(path: Path) -> Any:
    import numpy as np

    with gzip.open(path) as handle:
        data = handle.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def ensure_pngs(cache: Path) -> float:
    """Write the dataset as ``cache/{train,test}/<class>/<index>.png`` once; return seconds spent."""
    from PIL import Image

    if (cache / "COMPLETE").exists():
        return 0.0
    start = time.perf_counter()
    if cache.exists():
        shutil.rmtree(cache)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = load_idx(DATA / f"{prefix}-images-idx3-ubyte.gz")
        labels = load_idx(DATA / f"{prefix}-labels-idx1-ubyte.gz")
        for folder in FOLDERS:
            (cache / split / folder).mkdir(parents=True, exist_ok=True)
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            Image.fromarray(image, mode="L").save(cache / split / FOLDERS[label] / f"{index:05d}.png")
    (cache / "COMPLETE").write_text("ok\n")
    seconds = time.perf_counter() - start
    logger.info("wrote 70,000 PNG files under %s in %.0fs", cache, seconds)
    return seconds


def samples(cache: Path, split: str) -> list[tuple[str, list[int]]]:
    return [
        (str(path), [label])
        for label, folder in enumerate(FOLDERS)
        for path in sorted((cache / split / folder).glob("*.png"))
    ]


def child_ours(cache: Path, budget: float, workdir: Path, result_path: Path) -> None:
    """Run in the child process: train with default settings, evaluate the ONNX on the test PNGs."""
    import resource

    import numpy as np
    import onnx
    import onnxruntime as ort

    sys.path.insert(0, str(REPO / "plugins" / "local"))
    from mcv_local.engine import TrainConfig
    from mcv_local.engine.train import train
    from mcv_local.preprocess import decode

    start = time.perf_counter()
    if workdir.exists():
        shutil.rmtree(workdir)
    cfg = TrainConfig(task="classification", classes=CLASSES, train=samples(cache, "train"), max_train_seconds=budget)
    result = train(cfg, workdir, resume=False, model_id="bench-fashion-mnist")
    eval_start = time.perf_counter()
    meta = {p.key: p.value for p in onnx.load(str(result.onnx_path)).metadata_props}
    size, channels = int(meta["mcv.image_size"]), int(meta["mcv.channels"])
    test = samples(cache, "test")
    session = ort.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    correct = 0
    for i in range(0, len(test), 1000):
        chunk = test[i : i + 1000]
        batch = np.stack([decode(path, size, channels) for path, _ in chunk])
        scores = session.run(["scores"], {"image": batch})[0]
        correct += int((scores.argmax(1) == np.array([labels[0] for _, labels in chunk])).sum())
    metrics = result.metrics
    out = {
        "accuracy": correct / len(test),
        "train_seconds": metrics["train_seconds"],
        "data_seconds": metrics["data_seconds"],
        "engine_seconds": result.seconds,
        "eval_seconds": time.perf_counter() - eval_start,
        "seconds": time.perf_counter() - start,
        "epochs": result.epochs_run,
        "planned_epochs": metrics["planned_epochs"],
        "stop_reason": metrics["stop_reason"],
        "best_epoch": result.best_epoch,
        "val_accuracy": metrics["val_accuracy"],
        "settings": metrics["settings"],
        "history": metrics["history"],
        "self_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    result_path.write_text(json.dumps(out, indent=1))


def run_child(command: list[str], result_path: Path, log_path: Path) -> dict[str, Any]:
    """Run ``command``; return its JSON result plus wall seconds and peak RSS (MB) from ``os.wait4``."""
    start = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}); see {log_path}")
    result = json.loads(result_path.read_text())
    result.update(wall_seconds=wall, peak_rss_mb=usage.ru_maxrss / 1024, cpu_seconds=usage.ru_utime + usage.ru_stime)
    return result


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = [
        ("test accuracy", "accuracy", "{:.4f}"),
        ("training seconds", "train_seconds", "{:.1f}"),
        ("wall seconds", "wall_seconds", "{:.1f}"),
        ("CPU seconds", "cpu_seconds", "{:.0f}"),
        ("peak RSS MB", "peak_rss_mb", "{:.0f}"),
        ("epochs", "epochs", "{}"),
    ]
    names = list(results)
    both = len(names) == 2
    lines = [
        "| metric | " + " | ".join(names) + (" | ratio ours/handwritten |" if both else " |"),
        "|---|" + "---|" * (len(names) + (1 if both else 0)),
    ]
    for title, key, fmt in rows:
        cells = [fmt.format(results[name][key]) for name in names]
        if both:
            ours, peer = results["ours"][key], results["handwritten"][key]
            cells.append(f"{ours / peer:.2f}" if peer else "-")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=180.0, help="training seconds for both (default 180)")
    parser.add_argument("--cache", type=Path, default=REPO / ".bench" / "fashion-mnist")
    parser.add_argument("--only", choices=["ours", "handwritten"])
    parser.add_argument("--out", type=Path, default=REPO / ".bench" / "training.json")
    parser.add_argument("--child", choices=["ours"], help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.child == "ours":
        child_ours(args.cache, args.budget, REPO / ".bench" / "training-ours", args.result)
        return
    png_seconds = ensure_pngs(args.cache)
    load_before = os.getloadavg()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            "ours": [
                sys.executable,
                __file__,
                "--child",
                "ours",
                "--budget",
                str(args.budget),
                "--cache",
                str(args.cache),
                "--result",
                f"{tmp}/ours.json",
            ],
            "handwritten": [
                sys.executable,
                str(REPO / "benchmarks" / "handwritten_cnn.py"),
                "--budget",
                str(args.budget),
                "--json",
                f"{tmp}/handwritten.json",
            ],
        }
        for name, command in runs.items():
            if args.only and name != args.only:
                continue
            logger.info("running %s (log: .bench/training-%s.log)", name, name)
            results[name] = run_child(command, Path(f"{tmp}/{name}.json"), REPO / ".bench" / f"training-{name}.log")
            logger.info(
                "%s: accuracy %.4f in %.0fs of training",
                name,
                results[name]["accuracy"],
                results[name]["train_seconds"],
            )
    report = {
        "budget_seconds": args.budget,
        "target_accuracy": TARGET,
        "cpus": os.cpu_count(),
        "png_cache_seconds": png_seconds,
        # other work on the machine slows both runs down and costs epochs: check the load averages
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "results": results,
    }
    if "ours" in results:
        report["meets_target"] = results["ours"]["accuracy"] >= TARGET
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(table(results))
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
