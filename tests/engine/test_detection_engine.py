"""The detection engine: FCOS training (checkpoint/resume), ONNX export and the torch-free detector.

Kept small for a 2-core machine: 64x48 images from ``make_detection_dataset``, a handful of
steps. The learning check on larger generated images is marked ``slow``.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("onnxruntime")

from mcv_local.engine.detection import (  # noqa: E402
    DetectionConfig,
    batch_plan,
    hflip,
    train_detector,
)
from mcv_local.engine.detection_export import OnnxDetector, export_detector  # noqa: E402
from mcv_local.engine.errors import EngineError  # noqa: E402
from multicloud_cv.datasets.model import BoxAnnotation, Dataset  # noqa: E402
from multicloud_cv.testing.datasets import make_detection_dataset  # noqa: E402

PLUGIN_ROOT = Path(__file__).resolve().parents[2] / "plugins" / "local"
THREADS = 2
LABEL = 2  # every box of the "one class" data set is class 2 of 3


def _config(**overrides: Any) -> DetectionConfig:
    base = {"batch_size": 4, "threads": THREADS, "checkpoint_every": 2, "progress_every": 1}
    base.update(overrides)
    return DetectionConfig(**base)


def _load(dataset: Dataset, split: str = "test") -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.open(dataset.absolute(r)).convert("RGB")) for r in dataset.split(split)]


def _one_class(dataset: Dataset) -> Dataset:
    """The same images with every box relabelled ``LABEL`` (the class list is unchanged)."""
    images = [
        dataclasses.replace(r, boxes=tuple(dataclasses.replace(b, label=LABEL) for b in r.boxes))
        for r in dataset.images
    ]
    return dataclasses.replace(dataset, images=images)


class _Stop(Exception):
    pass


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A detector trained 16 steps on data whose boxes are all class ``LABEL``, and its export."""
    root = tmp_path_factory.mktemp("det")
    dataset = _one_class(make_detection_dataset(root / "data", {"train": 8, "validation": 2, "test": 4}))
    result = train_detector(dataset, _config(max_steps=16, checkpoint_every=100), root / "out")
    path = export_detector(result.model, root / "model.onnx", dataset.classes, result.image_size, model_id="t")
    return {"dataset": dataset, "result": result, "path": path, "detector": OnnxDetector(path, THREADS)}


# ---------------------------------------------------------------------------------------------- tests


def test_batch_plan_is_a_pure_function_and_covers_the_epoch() -> None:
    first = [batch_plan(3, step, 10, 4, True) for step in range(5)]
    assert first == [batch_plan(3, step, 10, 4, True) for step in range(5)]
    seen = [i for step in range(5) for i in first[step][0]]
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))
    assert not any(flip for step in range(5) for flip in batch_plan(3, step, 10, 4, False)[1])


def test_hflip_moves_boxes_with_pixels() -> None:
    image = torch.zeros(3, 4, 10)
    image[:, 1:3, 1:4] = 1.0  # object at x 1..4, y 1..3
    flipped, boxes = hflip(image, torch.tensor([[1.0, 1.0, 4.0, 3.0]]))
    assert boxes.tolist() == [[6.0, 1.0, 9.0, 3.0]]
    ys, xs = torch.nonzero(flipped[0], as_tuple=True)
    assert (int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1) == (6, 9, 1, 3)


def test_checkpoint_resume_continues_the_step_count_and_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    dataset = make_detection_dataset(tmp_path / "data", {"train": 6, "validation": 0, "test": 0})
    assert not dataset.split("train")[0].boxes  # a negative image is part of the training set

    def stop_at_2(event: dict[str, Any]) -> None:
        if event["event"] == "checkpoint" and event["step"] == 2:
            raise _Stop

    with pytest.raises(_Stop):
        train_detector(dataset, _config(max_steps=4), tmp_path / "a", stop_at_2)
    events: list[dict[str, Any]] = []
    resumed = train_detector(dataset, _config(max_steps=4), tmp_path / "a", events.append)
    assert (resumed.steps, resumed.steps_run) == (4, 2)
    assert [e["step"] for e in events if e["event"] == "step"] == [3, 4]
    assert resumed.val_loss is None  # no validation split

    straight = train_detector(dataset, _config(max_steps=4), tmp_path / "b")
    assert straight.steps_run == 4
    for (name, a), b in zip(resumed.model.state_dict().items(), straight.model.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), name

    extended = train_detector(dataset, _config(max_steps=5), tmp_path / "a")
    assert (extended.steps, extended.steps_run) == (5, 1)
    fresh = train_detector(dataset, _config(max_steps=5, resume=False), tmp_path / "a")
    assert (fresh.steps, fresh.steps_run) == (5, 5)


def test_training_reports_validation_loss_and_rejects_bad_data(tmp_path: Path, trained: dict[str, Any]) -> None:
    result = trained["result"]
    assert result.steps == 16 and result.val_loss is not None and np.isfinite(result.val_loss)
    assert result.image_size == (64, 48) and result.steps_per_second > 0
    dataset = make_detection_dataset(tmp_path / "data", {"train": 2, "validation": 0, "test": 0})
    record = dataset.images[1]
    bad = dataclasses.replace(record, boxes=(BoxAnnotation(7, 1, 1, 20, 20),))
    with pytest.raises(EngineError, match="label 7"):
        train_detector(dataclasses.replace(dataset, images=[bad]), _config(max_steps=1), tmp_path / "o")
    with pytest.raises(EngineError, match="detection dataset"):
        train_detector(dataclasses.replace(dataset, task="classification"), _config(max_steps=1), tmp_path / "o")


def test_onnx_matches_eager_pytorch(trained: dict[str, Any]) -> None:
    model, detector = trained["result"].model, trained["detector"]
    images = _load(trained["dataset"], "test") + _load(trained["dataset"], "train")[:2]
    total = 0
    for image in images:
        with torch.no_grad():
            eager = model([torch.from_numpy(image.copy()).permute(2, 0, 1).float() / 255.0])[0]
        boxes, scores, labels = detector.raw(image, 0.05, 100)
        e_boxes, e_scores, e_labels = (eager[k].numpy() for k in ("boxes", "scores", "labels"))
        assert len(scores) == len(e_scores)
        total += len(scores)
        for j in range(len(e_scores)):  # order-insensitive: ties in score may come out in any order
            same = (labels == e_labels[j]) & (np.abs(scores - e_scores[j]) < 1e-4)
            assert same.any()
            assert np.abs(boxes[same] - e_boxes[j]).max(axis=1).min() < 1e-2
    assert total > 0


def test_request_time_threshold_and_cap_narrow_the_output(trained: dict[str, Any]) -> None:
    detector = trained["detector"]
    image = _load(trained["dataset"], "test")[0]
    _, scores, _ = detector.raw(image, 0.05, 100)
    assert len(scores) >= 3 and np.all(np.diff(scores) <= 0)
    assert len(detector.raw(image, 0.05, 2)[1]) == 2
    assert len(detector.raw(image, 0.05, 0)[1]) == 0
    cut = float(scores[len(scores) // 2])
    narrowed = detector.raw(image, cut, 100)[1]
    assert len(narrowed) == int((scores >= cut).sum()) and narrowed.min() >= cut
    assert detector.raw(image, 1.01, 100)[1].size == 0


def test_labels_are_dataset_class_indices_and_boxes_are_normalised(trained: dict[str, Any]) -> None:
    detector = trained["detector"]
    assert detector.labels == trained["dataset"].classes
    assert detector.metadata["mcv.task"] == "detection" and detector.metadata["mcv.image_size"] == "64x48"
    assert detector.metadata["mcv.model_id"] == "t"
    for image in _load(trained["dataset"], "test"):
        found = detector.detect(image, 0.0, 10)
        assert found and found[0][0] == LABEL  # the only class ever trained as positive: no +1/-1 offset
        assert [d[1] for d in found] == sorted((d[1] for d in found), reverse=True)
        for label, _, x0, y0, x1, y1 in found:
            assert 0 <= label < len(detector.labels)
            assert 0.0 <= x0 <= x1 <= 1.0 and 0.0 <= y0 <= y1 <= 1.0
    big = np.ascontiguousarray(np.concatenate([_load(trained["dataset"], "test")[0]] * 2, axis=1))  # 128x48
    for _, _, x0, y0, x1, y1 in detector.detect(big, 0.0, 20):
        assert 0.0 <= x0 <= x1 <= 1.0 and 0.0 <= y0 <= y1 <= 1.0
    assert detector.detect(big[:, :, 0], 0.0, 3)  # greyscale is accepted
    with pytest.raises(EngineError):
        detector.detect(big.astype(np.float32))


def test_export_rejects_wrong_class_names(tmp_path: Path, trained: dict[str, Any]) -> None:
    with pytest.raises(EngineError, match="3 classes"):
        export_detector(trained["result"].model, tmp_path / "x.onnx", ["a", "b"], (64, 48))
    assert not list(tmp_path.iterdir())


def test_serving_module_does_not_import_torch() -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import mcv_local.engine.detection_export as m; import onnxruntime;"
        "assert 'torch' not in sys.modules and 'torchvision' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code, str(PLUGIN_ROOT)], check=True, timeout=120)


@pytest.mark.slow
def test_detector_learns_generated_fashion_items(tmp_path: Path) -> None:
    """About a minute of 2-core CPU: 60 steps on 42 generated 160x120 images, scored on 9 held out."""
    from multicloud_cv.bundled import fashion_mnist_available
    from multicloud_cv.datasets.synthetic_detection import generate_detection_dataset
    from multicloud_cv.evaluation_detection import score_detection
    from multicloud_cv.schema import Box, Detection, Prediction

    if not fashion_mnist_available():
        pytest.skip("Fashion-MNIST is not available")
    dataset = generate_detection_dataset(
        tmp_path / "data", ["trouser", "sneaker", "bag"], images=60, size=(160, 120), image_format="png"
    )
    config = DetectionConfig(max_steps=60, batch_size=8, threads=THREADS, warmup_steps=12)
    result = train_detector(dataset, config, tmp_path / "out")
    path = export_detector(result.model, tmp_path / "model.onnx", dataset.classes, result.image_size)
    detector = OnnxDetector(path, THREADS)
    test = dataset.split("test")
    predictions = []
    for record, image in zip(test, _load(dataset, "test"), strict=True):
        detections = [
            Detection(
                name=dataset.classes[label],
                index=label,
                confidence=score,
                box=Box(x_min=x0, y_min=y0, x_max=x1, y_max=y1),
            )
            for label, score, x0, y0, x1, y1 in detector.detect(image, 0.05, 100)
        ]
        predictions.append(
            Prediction(provider="local", model_id="m", task="detection", latency_ms=0.0, detections=detections)
        )
        assert record.path
    scores = score_detection(dataset, test, predictions)
    assert scores["map50"] is not None and scores["map50"] > 0.3, scores["map50"]
