"""Object detection on the local provider end to end through the real `mcv` command.

A COCO dataset is trained for a few steps (FCOS on the offline MobileNetV2 backbone), deployed as a
real HTTP endpoint that answers boxes, predicted on with request-time threshold and maximum
detections, scored with mAP by the common evaluation code, and undeployed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support import run_mcv

from multicloud_cv.datasets.formats import write_dataset
from multicloud_cv.testing import validate_document
from multicloud_cv.testing.datasets import DETECTION_CLASSES, make_detection_dataset


def _json(out: Any) -> Any:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_detection_train_deploy_predict_evaluate(tmp_path: Path) -> None:
    dataset = make_detection_dataset(
        tmp_path / "det", per_split={"train": 12, "validation": 3, "test": 4}, size=(128, 96)
    )
    coco = write_dataset(dataset, tmp_path / "coco", "coco")
    job = _json(run_mcv("train", "--dataset", str(coco), "--hp", "max_steps=6", "--hp", "batch_size=4", "--json"))
    validate_document("job", job)
    assert job["state"] == "SUCCEEDED" and job["task"] == "detection", job
    endpoint = _json(run_mcv("deploy", job["model_id"], "--ttl", "10m", "--json"))
    try:
        image = dataset.absolute(dataset.split("test")[0])
        answer = _json(run_mcv("predict", endpoint["id"], str(image), "--threshold", "0.0", "--json"))
        validate_document("prediction_list", answer)
        prediction = answer["predictions"][0]
        assert prediction["task"] == "detection" and prediction["labels"] == []
        assert prediction["detections"], "a threshold of 0 keeps every box the model proposes"
        for found in prediction["detections"]:
            assert found["name"] == DETECTION_CLASSES[found["index"]]
            box = found["box"]
            assert 0 <= box["x_min"] <= box["x_max"] <= 1 and 0 <= box["y_min"] <= box["y_max"] <= 1
        human = run_mcv("predict", endpoint["id"], str(image), "--threshold", "0.0", "--top-k", "2")
        assert human.returncode == 0 and "box(es)" in human.stdout
        assert any(name in human.stdout for name in DETECTION_CLASSES)
        capped = _json(run_mcv("predict", endpoint["id"], str(image), "--threshold", "0.0", "--top-k", "2", "--json"))
        assert len(capped["predictions"][0]["detections"]) <= 2
        scored = _json(run_mcv("evaluate", endpoint["id"], "--dataset", str(coco), "--json"))
        validate_document("evaluation", scored)
        assert scored["task"] == "detection" and scored["map50"] is not None and scored["map"] is not None
        assert scored["num_boxes"] == sum(len(i.boxes) for i in dataset.split("test"))
    finally:
        _json(run_mcv("undeploy", endpoint["id"], "--json"))
