"""The shared result schema: what every provider answers, whatever the cloud.

Field names here are a contract other tools rely on (DESIGN.md, "Field names"). JSON
Schema files are generated from these models into ``docs/schema/`` by
:func:`export_json_schemas`; a test fails when the files are stale.

Conventions every provider follows (converted by the plugin from its native answer):
confidences in 0..1; boxes normalised ``x_min, y_min, x_max, y_max`` in 0..1; labels are
class names with the dataset's class index, sorted by confidence, highest first.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from multicloud_cv.states import EndpointState, JobState

TaskName = Literal["classification", "multilabel", "detection"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False, defer_build=True)


class LabelScore(_Model):
    """One class with its confidence."""

    name: str
    index: int = Field(ge=0, description="the class index in the dataset's class list")
    confidence: float = Field(ge=0.0, le=1.0)


class Box(_Model):
    """A box normalised to the image size: 0..1, x to the right, y down."""

    x_min: float = Field(ge=0.0, le=1.0)
    y_min: float = Field(ge=0.0, le=1.0)
    x_max: float = Field(ge=0.0, le=1.0)
    y_max: float = Field(ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> Box:
        if self.x_max < self.x_min or self.y_max < self.y_min:
            raise ValueError("box corners out of order: need x_min <= x_max and y_min <= y_max")
        return self


class Detection(LabelScore):
    """One detected object."""

    box: Box


class Prediction(_Model):
    """One image's prediction, the same shape for every provider."""

    provider: str
    model_id: str
    task: TaskName
    labels: list[LabelScore] = Field(default_factory=list, description="sorted by confidence, highest first")
    detections: list[Detection] = Field(default_factory=list, description="sorted by confidence, highest first")
    latency_ms: float = Field(ge=0.0, description="wall time of the request as seen by the client")
    image: str | None = Field(default=None, description="the file the prediction is for, when known")
    endpoint_id: str | None = None
    emulated: bool = False
    raw: dict[str, Any] | None = Field(default=None, description="the provider's native answer, for debugging")

    @field_validator("labels", "detections")
    @classmethod
    def _sorted(cls, value: list[Any]) -> list[Any]:
        return sorted(value, key=lambda item: item.confidence, reverse=True)


class PerLabel(_Model):
    """Per-class scores."""

    name: str
    index: int = Field(ge=0)
    precision: float = Field(ge=0.0, le=1.0)
    recall: float = Field(ge=0.0, le=1.0)
    f1: float = Field(ge=0.0, le=1.0)
    support: int = Field(ge=0, description="number of test images (or objects) of this class")
    ap: float | None = Field(default=None, ge=0.0, le=1.0, description="COCO AP at IoU 0.5:0.95 (detection)")
    ap50: float | None = Field(default=None, ge=0.0, le=1.0, description="AP at IoU 0.5 (detection)")


class Evaluation(_Model):
    """Scores computed by OUR evaluation code from a provider's predictions."""

    task: TaskName
    num_images: int = Field(ge=0)
    accuracy: float | None = Field(
        default=None, ge=0.0, le=1.0, description="top-1 accuracy; exact-match ratio for multilabel"
    )
    macro_f1: float | None = Field(default=None, ge=0.0, le=1.0)
    per_label: list[PerLabel] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list, description="class names in index order (confusion axes)")
    confusion: list[list[int]] | None = Field(
        default=None, description="rows: true class, columns: predicted class, in class index order"
    )
    map50: float | None = Field(default=None, ge=0.0, le=1.0, description="detection mAP at IoU 0.5")
    map: float | None = Field(default=None, ge=0.0, le=1.0, description="detection COCO mAP at IoU 0.5:0.95")
    threshold: float | None = Field(default=None, description="confidence threshold used for multilabel/detection")
    precision: float | None = Field(
        default=None, ge=0.0, le=1.0, description="detection: overall precision at the threshold and IoU"
    )
    recall: float | None = Field(
        default=None, ge=0.0, le=1.0, description="detection: overall recall at the threshold and IoU"
    )
    num_boxes: int | None = Field(default=None, ge=0, description="detection: ground-truth boxes scored")
    iou_threshold: float | None = Field(default=None, ge=0.0, le=1.0, description="detection: IoU for P/R")
    provider: str | None = None
    model_id: str | None = None
    endpoint_id: str | None = None
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    provider_reported: dict[str, Any] | None = Field(
        default=None, description="what the provider says about its own model, shown beside ours, never instead"
    )
    emulated: bool = False


class Job(_Model):
    """A training job as recorded and as the provider last reported it."""

    id: str
    provider: str
    state: JobState
    native_state: str | None = None
    native_id: str | None = None
    model_id: str | None = None
    failure_reason: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    cost_usd: float | None = None
    task: TaskName | None = None
    dataset: str | None = None
    run_id: str | None = None
    progress: str | None = Field(default=None, description="a short human line, e.g. 'epoch 3/10'")
    created_at: datetime | None = None
    updated_at: datetime | None = None
    emulated: bool = False


class Endpoint(_Model):
    """A serving endpoint."""

    id: str
    provider: str
    model_id: str
    state: EndpointState
    native_state: str | None = None
    native_id: str | None = None
    url: str | None = None
    cost_per_hour_usd: float | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    failure_reason: str | None = None
    emulated: bool = False


class Export(_Model):
    """Answer of ``mcv export --json``: a trained model exported to a file format and unpacked on this machine.

    ``path`` is the folder the export was unpacked into (``files`` relative to it, sorted). ``local_model_id`` is
    the model recorded for provider ``local`` when the folder holds an ONNX model the local server can serve
    (``mcv deploy LOCAL_MODEL_ID`` or ``mcv deploy MODEL --provider local``), else ``None``.
    """

    model_id: str
    provider: str
    format: str = Field(description="onnx, tflite, coreml, tensorflow, savedmodel or docker")
    path: str
    files: list[str] = Field(default_factory=list)
    local_model_id: str | None = None
    emulated: bool = False


class JobList(_Model):
    """Answer of ``mcv status --json`` without a job id: every recorded job."""

    jobs: list[Job]


class NativeRequest(_Model):
    """One request a provider would send: the service, the operation and its parameters as the SDK takes them."""

    service: str
    operation: str
    params: dict[str, Any] = Field(default_factory=dict)


class Plan(_Model):
    """Answer of ``mcv plan`` / ``--dry-run``: the native requests that would be sent, in order, and nothing was.

    ``cost_estimate_usd`` is the provider's estimate for the planned work (``None`` when it has no price for it);
    ``notes`` say what the estimate assumes and what was left out of the plan (e.g. object uploads).
    """

    provider: str
    dry_run: Literal[True] = True
    requests: list[NativeRequest] = Field(default_factory=list)
    cost_estimate_usd: float | None = None
    notes: list[str] = Field(default_factory=list)


class EndpointList(_Model):
    """Answer of ``mcv endpoints --json``."""

    endpoints: list[Endpoint]


class SettingInfo(_Model):
    """One provider setting as documented by ``mcv providers``."""

    name: str
    help: str
    default: str | None = None
    secret: bool = False
    required: bool = False
    env: str
    value_set: bool = False


class ProviderInfo(_Model):
    """One installed provider: roles, capabilities, settings and whether it looks usable."""

    name: str
    roles: list[Literal["trainer", "deployer", "predictor"]]
    version: str | None = None
    api_version: str
    description: str = ""
    capabilities: dict[str, Any]
    settings: list[SettingInfo] = Field(default_factory=list)
    ready: bool
    problems: list[str] = Field(default_factory=list, description="why it is not ready, each with what to do")


class LoadFailure(_Model):
    """A plugin that failed to load."""

    name: str
    namespace: str
    reason: str
    install: str | None = None


class ProvidersReport(_Model):
    """Answer of ``mcv providers --json``."""

    providers: list[ProviderInfo]
    failures: list[LoadFailure] = Field(default_factory=list)


class PredictionList(_Model):
    """Answer of ``mcv predict --json``."""

    predictions: list[Prediction]


class DemoResult(_Model):
    """Answer of ``mcv demo --json``."""

    evaluation: Evaluation
    predictions: list[Prediction]


class ErrorReport(_Model):
    """What ``--json`` prints on stdout when a command fails."""

    error: str
    type: str
    exit_code: int


#: Every document a ``--json`` command can print, by schema file name.
class FindingDoc(_Model):
    """One preflight finding: severity, a stable code, the problem, what to do, and the file when one."""

    severity: Literal["error", "warning"]
    code: str
    message: str
    fix: str
    path: str | None = None


class SizeRange(_Model):
    """Smallest and largest image width and height seen (pixels)."""

    min_width: int
    max_width: int
    min_height: int
    max_height: int


class DatasetReport(_Model):
    """Answer of ``mcv dataset inspect --json``: what a dataset holds, read without decoding pixels."""

    path: str
    format: str
    task: Literal["classification", "multilabel", "detection"]
    num_images: int = Field(ge=0)
    classes: list[str] = Field(description="class names in index order")
    per_class: dict[str, int] = Field(description="class name to number of images carrying it")
    num_boxes: int = Field(ge=0)
    boxes_per_class: dict[str, int] = Field(default_factory=dict)
    splits: dict[str, int] = Field(description="split name (train, validation, test, unassigned) to image count")
    per_split_class: dict[str, dict[str, int]] = Field(default_factory=dict)
    image_sizes: SizeRange | None = Field(None, description="from annotations or image headers; null when unknown")
    negatives: int = Field(0, ge=0, description="detection images without boxes")
    split_file: str | None = Field(None, description="the stored split applied, when one exists")
    problems: list[FindingDoc] = Field(default_factory=list)


class ValidationReport(_Model):
    """Answer of ``mcv dataset validate --json``: every finding for one provider; ``ok`` when no error."""

    path: str
    format: str
    provider: str
    task: Literal["classification", "multilabel", "detection"]
    ok: bool
    errors: int = Field(ge=0)
    warnings: int = Field(ge=0)
    findings: list[FindingDoc]


class ConversionReport(_Model):
    """Answer of ``mcv dataset convert --json`` and ``mcv dataset split --json``."""

    source: str
    source_format: str
    destination: str
    format: str
    num_images: int = Field(ge=0)
    splits: dict[str, int]


class StageReport(_Model):
    """Answer of ``mcv dataset stage --json``: files uploaded and skipped (already there, same checksum)."""

    source: str
    destination: str
    uploaded: int = Field(ge=0)
    skipped: int = Field(ge=0)
    bytes: int = Field(ge=0, description="bytes uploaded")
    seconds: float = Field(ge=0)


class CompareSplit(_Model):
    """The one split every provider of a comparison trained and was scored on."""

    source: Literal["dataset", "assigned"] = Field(
        description="'dataset': the dataset's own test split (folders or a stored split file); "
        "'assigned': assigned by mcv compare (seeded, stratified) and stored under MCV_HOME"
    )
    file: str | None = Field(default=None, description="the split file applied, when one")
    seed: int | None = Field(default=None, description="seed of the assigned split")
    test_fraction: float | None = Field(default=None, ge=0.0, le=1.0, description="fraction assigned to test")
    validation_fraction: float | None = Field(
        default=None, ge=0.0, le=1.0, description="fraction assigned to validation (0: each provider carves its own)"
    )
    train_images: int = Field(ge=0, description="training images (the train split and unassigned images)")
    validation_images: int = Field(ge=0)
    test_images: int = Field(ge=0)
    test_fingerprint: str = Field(description="sha256 of the sorted test image paths (relative to the dataset)")


class ProviderResult(_Model):
    """One provider's row of a comparison: its state, its job, model and endpoint, and OUR scores."""

    provider: str
    state: Literal["ok", "failed", "refused"] = Field(
        description="ok: trained, served and scored; failed: something went wrong on the way (see reason); "
        "refused: declined before anything was sent (capability or dataset limit)"
    )
    reason: str | None = Field(default=None, description="why it failed or was refused")
    stage: Literal["check", "train", "deploy", "evaluate", "undeploy"] | None = Field(
        default=None, description="where it failed or was refused"
    )
    job_id: str | None = None
    model_id: str | None = None
    endpoint_id: str | None = None
    endpoint_state: EndpointState | None = Field(
        default=None, description="the endpoint's state at the end: DELETED, or READY with --keep"
    )
    reused: bool = Field(default=False, description="the model came from an earlier run of the same comparison")
    hyperparameters: dict[str, str] = Field(default_factory=dict, description="the --hp values given to it")
    train_seconds: float | None = Field(
        default=None, ge=0.0, description="training wall time: the job record's creation to its end"
    )
    evaluation: Evaluation | None = Field(default=None, description="scored by our evaluation code on the test split")
    test_fingerprint: str | None = Field(
        default=None, description="sha256 of the sorted image paths actually sent to this provider's predictor"
    )
    provider_reported: dict[str, float] = Field(
        default_factory=dict, description="the provider's own metrics about its model (job metrics), beside ours"
    )
    train_cost_usd: float | None = Field(default=None, description="the training job's cost, when known")
    hosting_cost_per_hour_usd: float | None = Field(default=None, description="the endpoint's cost per hour")
    prediction_cost_per_1000_usd: float | None = Field(
        default=None,
        description="USD to predict 1,000 images: the per-request price where the service bills per request, else "
        "an estimate from the hourly price and the measured p50 latency (one request at a time)",
    )
    prediction_cost_basis: str | None = Field(
        default=None, description="how prediction_cost_per_1000_usd was found (price row, or the estimate's inputs)"
    )
    emulated: bool = False
    warnings: list[str] = Field(default_factory=list, description="preflight warnings for this provider")


class Comparison(_Model):
    """Answer of ``mcv compare --json``: one dataset, several providers, one split, one evaluation code."""

    compare_id: str = Field(description="hash of what was compared; also the run id of every job and endpoint")
    dataset: str
    format: str
    task: TaskName
    classes: list[str]
    split: CompareSplit
    epochs: int | None = None
    threshold: float = Field(ge=0.0, le=1.0, description="confidence threshold used for every provider")
    keep: bool = Field(default=False, description="endpoints were left running (--keep)")
    providers: list[ProviderResult]
    started_at: datetime | None = None
    finished_at: datetime | None = None
    emulated: bool = Field(default=False, description="any provider ran on an emulator")
    notes: list[str] = Field(default_factory=list)


SCHEMAS: dict[str, type[BaseModel]] = {
    "prediction": Prediction,
    "prediction_list": PredictionList,
    "evaluation": Evaluation,
    "job": Job,
    "job_list": JobList,
    "plan": Plan,
    "endpoint": Endpoint,
    "endpoint_list": EndpointList,
    "export": Export,
    "providers": ProvidersReport,
    "demo": DemoResult,
    "error": ErrorReport,
    "dataset_report": DatasetReport,
    "validation_report": ValidationReport,
    "conversion_report": ConversionReport,
    "stage_report": StageReport,
    "comparison": Comparison,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every document, keyed by file stem."""
    return {name: model.model_json_schema(mode="serialization") for name, model in SCHEMAS.items()}


def export_json_schemas(directory: Path) -> list[Path]:
    """Write ``<name>.schema.json`` for every document into ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # python -m multicloud_cv.schema [DIR]: regenerate docs/schema/
    import sys

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "docs" / "schema"
    for written_path in export_json_schemas(target):
        sys.stdout.write(f"{written_path}\n")
