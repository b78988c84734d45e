"""Vertex AI plans, scale tiers, machine checks, settings and the prediction mapping: nothing is sent.

Every planned request is built with the SDK's own proto-plus types (a wrong field fails) and shown as the REST
JSON; every scale tier is planned and its pools checked against the machine table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import run_mcv

from mcv_vertex.automl import check, default_model_type, model_types
from mcv_vertex.machines import SCALE_TIERS, check_machine, quota_metric, worker_pools
from mcv_vertex.provider import to_prediction
from mcv_vertex.settings import Options
from multicloud_cv.capabilities import Task
from multicloud_cv.datasets import load_dataset
from multicloud_cv.errors import BadInput, ConfigError
from multicloud_cv.interfaces import PredictParams, TrainingSpec
from multicloud_cv.registry import registry
from multicloud_cv.runs import ModelRecord
from multicloud_cv.testing.data import make_tiny_dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_dataset(make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "ds", train_per_class=10, test_per_class=2))


def _trainer(**settings: str) -> Any:
    return registry().get("vertex", "trainer", config={"bucket": "bkt", "project": "proj", **settings})


def _pools(plan: Any) -> list[dict[str, Any]]:
    job = next(r for r in plan.requests if r.operation == "CreateCustomJob")
    return list(job.params["body"]["jobSpec"]["workerPoolSpecs"])


@pytest.mark.parametrize("tier", [t for t in SCALE_TIERS if t != "CUSTOM"])
def test_every_scale_tier_is_planned_and_checked(tier: str, tiny: Any) -> None:
    plan = _trainer(scale_tier=tier).plan(TrainingSpec(dataset=tiny))
    pools = _pools(plan)
    expected = worker_pools(tier)
    assert [p["machineSpec"]["machineType"] for p in pools] == [p.machine_type for p in expected]
    assert [int(p.get("replicaCount", 1)) for p in pools] == [p.replica_count for p in expected]
    package = pools[0]["pythonPackageSpec"]
    assert package["pythonModule"] == "mcv_vertex.task" and package["args"][:2] == ["--dataset", package["args"][1]]
    assert package["args"][1].startswith("gs://bkt/mcv/datasets/") and package["args"][1].endswith("/dataset.jsonl")
    if tier == "BASIC_TPU":
        assert pools[0]["machineSpec"]["acceleratorType"] == "TPU_V2" and "py311" in package["executorImageUri"]
    if tier == "BASIC_GPU":
        assert pools[0]["machineSpec"]["acceleratorType"] == "NVIDIA_TESLA_T4"
    if tier in ("STANDARD_1", "PREMIUM_1"):
        assert len(pools) == 2 and int(pools[1]["replicaCount"]) > 1  # distributed: chief + workers


def test_compute_kind_picks_the_tier(tiny: Any) -> None:
    plan = _trainer().plan(TrainingSpec(dataset=tiny, compute="gpu"))
    assert _pools(plan)[0]["machineSpec"]["acceleratorType"] == "NVIDIA_TESLA_T4"
    plan = _trainer().plan(TrainingSpec(dataset=tiny, compute="tpu"))
    assert _pools(plan)[0]["machineSpec"]["machineType"] == "cloud-tpu"


def test_custom_tier_with_explicit_machine_and_replicas(tiny: Any) -> None:
    trainer = _trainer(
        scale_tier="CUSTOM", machine_type="g2-standard-8", accelerator_type="NVIDIA_L4", replica_count="3"
    )
    pools = _pools(trainer.plan(TrainingSpec(dataset=tiny, epochs=2, hyperparameters={"lr": "0.01"})))
    assert [int(p.get("replicaCount", 1)) for p in pools] == [1, 2]
    assert pools[0]["machineSpec"] == {
        "machineType": "g2-standard-8",
        "acceleratorType": "NVIDIA_L4",
        "acceleratorCount": 1,
    }
    args = pools[0]["pythonPackageSpec"]["args"]
    assert args[args.index("--epochs") + 1] == "2" and "lr=0.01" in args


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        (
            {"machine_type": "n1-standard-4", "accelerator_type": "NVIDIA_TESLA_K80"},
            "is not supported for machine type",
        ),
        ({"machine_type": "g2-standard-8", "accelerator_type": "NVIDIA_L4", "accelerator_count": "2"}, "takes 1"),
        ({"machine_type": "a2-highgpu-1g"}, "needs its accelerator"),
        (
            {"machine_type": "n1-standard-8", "accelerator_type": "NVIDIA_TESLA_P4", "location": "us-east1"},
            "not offered in us-east1",
        ),
        ({"accelerator_type": "NVIDIA_TESLA_X1", "machine_type": "n1-standard-4"}, "not an accelerator type"),
    ],
)
def test_bad_machine_specs_are_refused_before_anything(settings: dict[str, str], fragment: str, tiny: Any) -> None:
    with pytest.raises(BadInput, match=fragment):
        _trainer(**settings).plan(TrainingSpec(dataset=tiny))


def test_machine_table_facts() -> None:
    assert check_machine("n1-standard-8", "NVIDIA_TESLA_T4", 1, "us-central1") == ([], [])
    errors, warnings = check_machine("x9-huge-1", None, 0, "us-central1")
    assert not errors and "not in mcv's table" in warnings[0]
    assert quota_metric("NVIDIA_L4") == "aiplatform.googleapis.com/custom_model_training_nvidia_l4_gpus"
    assert worker_pools("CUSTOM", "ct5lp-hightpu-4t", "TPU_V5_LITEPOD", 4)[0].tpu_topology == "2x2"
    with pytest.raises(ConfigError, match="needs machine_type"):
        worker_pools("CUSTOM")


def test_automl_plan_keeps_the_split_and_checks_type_and_budget(tiny: Any) -> None:
    plan = _trainer(route="automl").plan(TrainingSpec(dataset=tiny))
    operations = [r.operation for r in plan.requests]
    assert operations[-3:] == ["CreateDataset", "ImportData", "CreateTrainingPipeline"]
    pipeline = plan.requests[-1].params["body"]
    assert pipeline["trainingTaskDefinition"].endswith("automl_image_classification_1.0.0.yaml")
    assert pipeline["trainingTaskInputs"]["modelType"] == "CLOUD"
    assert pipeline["inputDataConfig"]["filterSplit"]["testFilter"].endswith("ml_use=test")
    assert plan.cost_estimate_usd == pytest.approx(192 * 3.465, rel=1e-3)  # the default budget, 192 node hours
    with pytest.raises(BadInput, match=r"outside 8,000\.\.800,000"):
        _trainer(route="automl", budget_milli_node_hours="500").plan(TrainingSpec(dataset=tiny))
    with pytest.raises(BadInput, match="not valid for classification"):
        _trainer(route="automl", model_type="YOLO").plan(TrainingSpec(dataset=tiny))
    assert default_model_type("detection") in model_types("detection")
    assert check("detection", "CLOUD", None)  # the constructor's default is not a detection type


def test_automl_needs_ten_images_per_label(tmp_path: Path) -> None:
    small = load_dataset(make_tiny_dataset(tmp_path / "ds", train_per_class=6, test_per_class=2))
    with pytest.raises(BadInput, match="at least 10 images per label"):
        _trainer(route="automl").plan(TrainingSpec(dataset=small))
    _trainer().plan(TrainingSpec(dataset=small))  # the custom route has no such minimum


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"location": "US"}, "not a Vertex AI region"),
        ({"bucket": "gs://bkt"}, "without gs://"),
        ({"route": "tabular"}, "custom or automl"),
        ({"scale_tier": "BASIC_XL"}, "scale_tier"),
        ({"min_replica_count": "3", "max_replica_count": "2"}, "below min_replica_count"),
        ({"fallback": "NVIDIA_TESLA_T4,moon-base1x"}, "neither an accelerator"),
    ],
)
def test_bad_settings_name_the_key(config: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Options.parse({"bucket": "bkt", **config})


def test_fallback_items() -> None:
    options = Options.parse({"bucket": "bkt", "fallback": "NVIDIA_L4, us-east1, NVIDIA_TESLA_T4@europe-west4"})
    assert [f.describe() for f in options.fallback] == ["NVIDIA_L4", "us-east1", "NVIDIA_TESLA_T4@europe-west4"]


def test_bbox_order_is_x_x_y_y() -> None:
    model = ModelRecord(id="m", provider="vertex", task="detection", labels=["cat", "dog"])
    answer = {
        "ids": ["1", "0"],
        "displayNames": ["dog", "cat"],
        "confidences": [0.9, 0.4],
        "bboxes": [[0.1, 0.5, 0.2, 0.6], [0.0, 0.3, 0.0, 0.3]],
    }
    prediction = to_prediction(answer, model, "vertex", PredictParams(threshold=0.5), 1.0)
    assert len(prediction.detections) == 1
    box = prediction.detections[0].box
    assert (box.x_min, box.x_max, box.y_min, box.y_max) == (0.1, 0.5, 0.2, 0.6)
    classifier = ModelRecord(id="c", provider="vertex", task="classification", labels=["cat", "dog"])
    labels = to_prediction(
        {"displayNames": ["cat", "dog"], "confidences": [0.3, 0.7]}, classifier, "vertex", PredictParams(), 1.0
    ).labels
    assert [(lbl.name, lbl.index) for lbl in labels] == [("dog", 1), ("cat", 0)]


def test_cli_plan_json(tmp_path: Path) -> None:
    root = make_tiny_dataset(tmp_path / "ds", train_per_class=4, test_per_class=1)
    out = run_mcv(
        "plan",
        "train",
        "-p",
        "vertex",
        "-d",
        str(root),
        "-o",
        "bucket=bkt",
        "-o",
        "project=proj",
        "-o",
        "scale_tier=BASIC",
        "--json",
        env={"MCV_HOME": str(tmp_path / "home")},
    )
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["provider"] == "vertex" and plan["requests"][-1]["operation"] == "CreateCustomJob"
    assert plan["cost_estimate_usd"] == pytest.approx(0.22)  # one hour of n1-standard-4 in us-central1


def test_capabilities_are_declared(tiny: Any) -> None:
    trainer = _trainer()
    assert trainer.capabilities.supports("compute:tpu") and trainer.capabilities.supports("task:detection")
    assert Task.DETECTION.feature in trainer.capabilities.supported
