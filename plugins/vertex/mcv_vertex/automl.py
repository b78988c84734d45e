"""AutoML image training's rules as data: model types per task (from the installed SDK), budget ranges, limits.

Sources: google-cloud-aiplatform 2.7.0 ``constants/base.py`` ``AUTOML_IMAGE_PREDICTION_MODEL_TYPES`` (read from the
installed SDK, never copied); the Vertex documentation of ``budget_milli_node_hours`` (classification 8,000 to
800,000, default 192,000; object detection 20,000 to 900,000, default 216,000: cloud-apis.md 3.1) and of image
training data (at least 10 images per label, 10 annotations per label for object detection, 500 boxes an image,
30 MB a training image, 1.5 MB a prediction image: cloud-apis.md 3.2, pains.md V6 and V8).

Contracts: :func:`model_types` the valid model types of a task; :func:`check` returns the problems of a model type
and budget, one line each naming the range or the valid values.
"""

from __future__ import annotations

from dataclasses import dataclass

BUDGETS = {"classification": (8_000, 800_000, 192_000), "object_detection": (20_000, 900_000, 216_000)}
MIN_IMAGES_PER_LABEL = 10
MAX_BOXES_PER_IMAGE = 500
MAX_TRAINING_IMAGE_BYTES = 30 * 1024 * 1024
MAX_PREDICTION_IMAGE_BYTES = 1_572_864  # "Request payload size exceeds the limit: 1572864 bytes" (pains.md V8)
NODE_HOUR_USD = 3.465  # pains.md V7 [doc]: AutoML image training per node hour


@dataclass(frozen=True)
class AutoMLSettings:
    """What an AutoML image training job takes."""

    prediction_type: str
    multi_label: bool
    model_type: str
    budget_milli_node_hours: int


def prediction_type(task: str) -> str:
    """``object_detection`` for detection, ``classification`` otherwise."""
    return "object_detection" if task == "detection" else "classification"


def model_types(task: str) -> frozenset[str]:
    """The model types the installed SDK accepts for ``task``."""
    from google.cloud.aiplatform.constants import base

    return frozenset(base.AUTOML_IMAGE_PREDICTION_MODEL_TYPES[prediction_type(task)])


def default_model_type(task: str) -> str:
    """``CLOUD`` for classification, ``CLOUD_HIGH_ACCURACY_1`` for object detection (the documented default)."""
    return "CLOUD_HIGH_ACCURACY_1" if task == "detection" else "CLOUD"


def check(task: str, model_type: str, budget: int | None) -> list[str]:
    """Problems of ``model_type`` and ``budget`` (milli node hours) for ``task``."""
    problems = []
    valid = model_types(task)
    if model_type not in valid:
        problems.append(
            f"model_type {model_type} is not valid for {prediction_type(task)}; use one of: {', '.join(sorted(valid))}"
        )
    low, high, _ = BUDGETS[prediction_type(task)]
    if budget is not None and not low <= budget <= high:
        problems.append(
            f"budget_milli_node_hours {budget} is outside {low:,}..{high:,} for {prediction_type(task)} "
            f"({low / 1000:g} to {high / 1000:g} node hours)"
        )
    return problems


def settings_for(task: str, model_type: str | None, budget: int | None) -> AutoMLSettings:
    """The job's settings with the defaults filled in (checked by :func:`check` first)."""
    chosen = model_type or default_model_type(task)
    default = BUDGETS[prediction_type(task)][2]
    return AutoMLSettings(
        prediction_type=prediction_type(task),
        multi_label=task == "multilabel",
        model_type=chosen,
        budget_milli_node_hours=budget if budget is not None else default,
    )
