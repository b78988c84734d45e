"""The shared result schema: field names, validation rules, and the exported JSON Schema files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from multicloud_cv.schema import Box, Detection, LabelScore, Prediction, export_json_schemas, json_schemas

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schema"


def test_exported_schema_files_are_current(tmp_path: Path) -> None:
    fresh = {p.name: p.read_text() for p in export_json_schemas(tmp_path)}
    committed = {p.name: p.read_text() for p in SCHEMA_DIR.glob("*.schema.json")}
    stale = sorted(name for name in fresh if committed.get(name) != fresh[name])
    extra = sorted(set(committed) - set(fresh))
    assert not stale and not extra, (
        f"docs/schema is stale ({stale or extra}); regenerate with: python -m multicloud_cv.schema"
    )


def test_prediction_field_names_are_the_contract() -> None:
    props = json_schemas()["prediction"]["properties"]
    assert {"provider", "model_id", "task", "labels", "detections", "latency_ms"} <= set(props)
    label = json_schemas()["prediction"]["$defs"]["LabelScore"]["properties"]
    assert set(label) == {"name", "index", "confidence"}
    box = json_schemas()["prediction"]["$defs"]["Box"]["properties"]
    assert set(box) == {"x_min", "y_min", "x_max", "y_max"}


def test_evaluation_and_job_and_endpoint_field_names() -> None:
    schemas = json_schemas()
    assert {"task", "num_images", "accuracy", "macro_f1", "per_label", "confusion", "map50", "map"} <= set(
        schemas["evaluation"]["properties"]
    )
    assert {"name", "precision", "recall", "f1", "support"} <= set(
        schemas["evaluation"]["$defs"]["PerLabel"]["properties"]
    )
    assert {"id", "provider", "state", "native_state", "model_id", "failure_reason", "metrics", "cost_usd"} <= set(
        schemas["job"]["properties"]
    )
    assert {"id", "provider", "model_id", "state", "url", "cost_per_hour_usd"} <= set(schemas["endpoint"]["properties"])
    assert schemas["job"]["$defs"]["JobState"]["enum"] == ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
    assert schemas["endpoint"]["$defs"]["EndpointState"]["enum"] == ["CREATING", "READY", "FAILED", "DELETED"]


def test_labels_are_sorted_by_confidence() -> None:
    p = Prediction(
        provider="x",
        model_id="m",
        task="classification",
        latency_ms=1.0,
        labels=[LabelScore(name="a", index=0, confidence=0.1), LabelScore(name="b", index=1, confidence=0.9)],
    )
    assert [lab.name for lab in p.labels] == ["b", "a"]


@pytest.mark.parametrize("confidence", [-0.01, 1.01, 87.0])
def test_confidence_outside_0_1_is_rejected(confidence: float) -> None:
    with pytest.raises(ValidationError):
        LabelScore(name="a", index=0, confidence=confidence)


def test_box_must_be_normalised_and_ordered() -> None:
    Box(x_min=0.1, y_min=0.2, x_max=0.3, y_max=0.4)
    with pytest.raises(ValidationError):
        Box(x_min=0.5, y_min=0.2, x_max=0.3, y_max=0.4)
    with pytest.raises(ValidationError):
        Box(x_min=10, y_min=20, x_max=30, y_max=40)
    d = Detection(name="a", index=0, confidence=0.5, box=Box(x_min=0, y_min=0, x_max=1, y_max=1))
    assert json.loads(d.model_dump_json())["box"]["x_max"] == 1


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError):
        Prediction(provider="x", model_id="m", task="classification", latency_ms=1.0, score=3)  # type: ignore[call-arg]
