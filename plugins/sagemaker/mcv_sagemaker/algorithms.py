"""The SageMaker built-in image-classification and object-detection algorithms: their hyperparameters as data.

Sources (read 2026-11-23):

* image-classification: SageMaker Developer Guide ``IC-Hyperparameter.md`` (awsdocs/amazon-sagemaker-developer-
  guide, the last commit before the repository was archived) and reference/cloud-apis.md 1.6-1.7;
* object-detection: ``object-detection-api-config.md`` (same repository) and cloud-apis.md 1.8;
* the texts the real containers write to ``FailureReason``: pains.md S3/S4 and the issues named beside each
  text in :func:`container_error`.

Contracts:

* :data:`HYPERPARAMETERS` holds only the documented names, each a :class:`Hyperparameter` (required, default,
  the allowed values or range, a help line). Every value is a string, as ``CreateTrainingJob`` sends it.
* :func:`hyperparameter_problems` returns OUR messages, one line per problem and all of them (unknown name with
  a did-you-mean, bad value naming the expected form and range, missing required name, cross-field rules);
  an empty list means the container would accept the set as far as its documentation tells.
* :func:`container_error` returns what the real container puts in ``FailureReason`` for the first problem it
  would meet (the emulator fails its jobs with it), or ``None`` when the job would start. Texts marked
  RECONSTRUCTED below are faithful rewordings where no copy of the real text was found.
* :func:`spec_hyperparameters` maps the common training spec to a valid hyperparameter set (strings), raising
  :class:`~multicloud_cv.errors.BadInput` for a spec the algorithm cannot take.

Pure Python: no SDK is imported here.
"""

from __future__ import annotations

import difflib
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from multicloud_cv.errors import BadInput

log = logging.getLogger(__name__)

IMAGE_CLASSIFICATION = "image-classification"
OBJECT_DETECTION = "object-detection"
ALGORITHMS: tuple[str, ...] = (IMAGE_CLASSIFICATION, OBJECT_DETECTION)

#: Instance types used when the user names none: a GPU type the algorithms document for training (cloud-apis 1.6,
#: 1.8: P2, P3, G4dn, G5) and a CPU type for hosting (both algorithms serve on CPU).
DEFAULT_INSTANCE_TYPES: dict[str, str] = {"training": "ml.p3.2xlarge", "hosting": "ml.m5.xlarge"}

#: Instance families each algorithm documents for training ("GPU only", common-info-all-im-models.md).
TRAINING_INSTANCE_FAMILIES: dict[str, tuple[str, ...]] = {
    IMAGE_CLASSIFICATION: ("p2", "p3", "g4dn", "g5"),
    OBJECT_DETECTION: ("p2", "p3", "g4dn", "g5"),
}

#: Content types that mean "raw image files" in the train/validation channels (cloud-apis 1.6): with these the
#: image-classification ``resize`` hyperparameter is required.
IMAGE_CONTENT_TYPES: frozenset[str] = frozenset({"application/x-image", "image/png", "image/jpeg"})

_TASK_ALGORITHM = {
    "classification": IMAGE_CLASSIFICATION,
    "multilabel": IMAGE_CLASSIFICATION,
    "detection": OBJECT_DETECTION,
}
_PRETRAINED_LAYERS = ("18", "34", "50", "101", "152", "200")
_SMALL_IMAGE_LAYERS = ("20", "32", "44", "56", "110")
_INT_MAX = 2**31 - 1

Kind = Literal["int", "float", "choice", "ic_image_shape", "int_list", "regex", "string"]


def algorithm_for_task(task: str) -> str:
    """The built-in algorithm for a task: classification and multilabel -> image-classification, detection ->
    object-detection. Raises :class:`BadInput` for any other task."""
    value = str(getattr(task, "value", task))
    try:
        return _TASK_ALGORITHM[value]
    except KeyError:
        raise BadInput(
            f"SageMaker has no built-in image algorithm for task '{value}'; tasks: {', '.join(_TASK_ALGORITHM)}"
        ) from None


@dataclass(frozen=True)
class Hyperparameter:
    """One documented hyperparameter: what it takes, its default, one line of help, and :meth:`check`.

    ``kind`` says how a value is read: ``int``/``float`` within ``minimum``..``maximum`` (``*_exclusive``
    makes a bound open), ``choice`` among ``choices``, ``ic_image_shape`` ("num_channels,height,width"),
    ``int_list`` (comma-separated epochs, may be empty), ``regex`` or free ``string``.
    ``container_expects`` is the container's own wording of the expected form, where it is known.
    """

    name: str
    required: bool
    default: str | None
    help: str
    kind: Kind = "string"
    minimum: float | None = None
    maximum: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    choices: tuple[str, ...] = ()
    container_expects: str | None = None

    @property
    def expects(self) -> str:
        """The expected form in words, e.g. ``an integer between 300 and 10000``."""
        if self.kind == "int":
            if self.minimum is not None and self.maximum is not None:
                return f"an integer between {_num(self.minimum)} and {_num(self.maximum)}"
            if self.minimum == 1:
                return "a positive integer"
            if self.minimum is not None:
                return f"an integer >= {_num(self.minimum)}"
            return "an integer"
        if self.kind == "float":
            low = "(" if self.min_exclusive else "["
            high = ")" if self.max_exclusive else "]"
            return f"a number in {low}{_num(self.minimum or 0)}, {_num(self.maximum or 1)}{high}"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "ic_image_shape":
            return "'num_channels,height,width' with 1 or 3 channels, e.g. '3,224,224'"
        if self.kind == "int_list":
            return "comma-separated positive epoch numbers, e.g. '10,20'"
        if self.kind == "regex":
            return "a regular expression"
        return "a string"

    def check(self, value: str) -> str | None:
        """``None`` when ``value`` is valid, else the problem in words (``expected ...``)."""
        text = str(value)
        ok = _KIND_CHECKS[self.kind](self, text)
        return None if ok else f"expected {self.expects}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _check_int(spec: Hyperparameter, text: str) -> bool:
    if not re.fullmatch(r"-?\d+", text):
        return False
    number = int(text)
    if spec.minimum is not None and number < spec.minimum:
        return False
    return not (spec.maximum is not None and number > spec.maximum)


def _check_float(spec: Hyperparameter, text: str) -> bool:
    try:
        number = float(text)
    except ValueError:
        return False
    if not math.isfinite(number):
        return False
    low = spec.minimum if spec.minimum is not None else -math.inf
    high = spec.maximum if spec.maximum is not None else math.inf
    if number < low or (spec.min_exclusive and number == low):
        return False
    return not (number > high or (spec.max_exclusive and number == high))


def _check_choice(spec: Hyperparameter, text: str) -> bool:
    return text in spec.choices


def _check_ic_image_shape(spec: Hyperparameter, text: str) -> bool:
    return _ic_shape(text) is not None


def _check_int_list(spec: Hyperparameter, text: str) -> bool:
    if not text.strip():
        return True
    return all(re.fullmatch(r"\d+", part.strip()) and int(part) > 0 for part in text.split(","))


def _check_regex(spec: Hyperparameter, text: str) -> bool:
    try:
        re.compile(text)
    except re.error:
        return False
    return True


_KIND_CHECKS: dict[str, Callable[[Hyperparameter, str], bool]] = {
    "int": _check_int,
    "float": _check_float,
    "choice": _check_choice,
    "ic_image_shape": _check_ic_image_shape,
    "int_list": _check_int_list,
    "regex": _check_regex,
    "string": lambda spec, text: True,
}


def _ic_shape(text: str) -> tuple[int, int, int] | None:
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 3 or not all(re.fullmatch(r"\d+", part) for part in parts):
        return None
    channels, height, width = (int(part) for part in parts)
    if channels not in (1, 3) or height < 1 or width < 1:
        return None
    return channels, height, width


def _int(name: str, help: str, *, required: bool = False, default: str | None = None, minimum: int = 1,
         maximum: int | None = None, container_expects: str | None = None) -> Hyperparameter:  # fmt: skip
    return Hyperparameter(name, required, default, help, "int", minimum, maximum, container_expects=container_expects)


def _float(name: str, help: str, default: str | None, low: float = 0.0, high: float = 1.0, *,
           low_open: bool = False, high_open: bool = False) -> Hyperparameter:  # fmt: skip
    return Hyperparameter(name, False, default, help, "float", low, high, low_open, high_open)


def _choice(name: str, help: str, default: str | None, *choices: str) -> Hyperparameter:
    return Hyperparameter(name, False, default, help, "choice", choices=tuple(choices))


def _table(*specs: Hyperparameter) -> dict[str, Hyperparameter]:
    return {spec.name: spec for spec in specs}


_EARLY_STOPPING = (
    _choice("early_stopping", "True to stop when the validation metric stops improving", "False", "True", "False"),
    _int("early_stopping_min_epochs", "epochs to run before early stopping may act", default="10"),
    _int("early_stopping_patience", "epochs without improvement before stopping", default="5"),
    _float("early_stopping_tolerance", "relative improvement below which an epoch counts as no improvement", "0.0"),
)

#: The documented hyperparameters of each algorithm (cloud-apis.md 1.7 and 1.8; the developer guide pages above).
HYPERPARAMETERS: dict[str, dict[str, Hyperparameter]] = {
    IMAGE_CLASSIFICATION: _table(
        _int("num_classes", "number of output classes", required=True),
        _int("num_training_samples", "number of training examples in the input dataset", required=True),
        _choice("augmentation_type", "data augmentation", None, "crop", "crop_color", "crop_color_transform"),
        _float("beta_1", "adam: exponential decay rate of the first moment estimates", "0.9"),
        _float("beta_2", "adam: exponential decay rate of the second moment estimates", "0.999"),
        _int("checkpoint_frequency", "epochs between stored checkpoints (no greater than epochs)"),
        *_EARLY_STOPPING,
        _int("epochs", "number of training epochs", default="30"),
        _float("eps", "adam and rmsprop epsilon", "1e-8"),
        _float("gamma", "rmsprop decay factor of the squared-gradient moving average", "0.9"),
        Hyperparameter(
            "image_shape",
            False,
            "3,224,224",
            "input image dimensions 'num_channels,height,width' (pretrained models take 224x224 only)",
            "ic_image_shape",
        ),
        _choice("kv_store", "weight synchronisation in distributed training", None, "dist_sync", "dist_async"),
        _float("learning_rate", "initial learning rate", "0.1"),
        _float("lr_scheduler_factor", "ratio that reduces the learning rate at each lr_scheduler_step", "0.1"),
        Hyperparameter("lr_scheduler_step", False, None, "epochs at which to reduce the learning rate", "int_list"),
        _int("mini_batch_size", "batch size for training", default="32"),
        _float("momentum", "sgd and nag momentum", "0.9"),
        _choice("multi_label", "1 for multi-label classification", "0", "0", "1"),
        _choice(
            "num_layers",
            "ResNet depth: 18, 34, 50, 101, 152, 200 (large images, transfer learning) or 20, 32, 44, 56, 110 "
            "(small images)",
            "152",
            *_PRETRAINED_LAYERS,
            *_SMALL_IMAGE_LAYERS,
        ),
        _choice("optimizer", "optimizer", "sgd", "sgd", "adam", "rmsprop", "nag"),
        _choice("precision_dtype", "precision of the weights", "float32", "float32", "float16"),
        _int(
            "resize",
            "shortest image side in px after resizing; required with image content types, larger than the "
            "image_shape height and width",
        ),
        _int("top_k", "report top-k accuracy during training (greater than 1)", minimum=2),
        _choice("use_pretrained_model", "1 to start from the pretrained network with num_layers layers", "0", "0", "1"),
        _choice("use_weighted_loss", "1 for class-weighted loss (multi_label=1 only)", "0", "0", "1"),
        _float("weight_decay", "sgd and nag weight decay", "0.0001"),
    ),
    OBJECT_DETECTION: _table(
        _int("num_classes", "number of output classes", required=True),
        _int("num_training_samples", "number of training examples in the input dataset", required=True),
        _choice("base_network", "base network", "vgg-16", "vgg-16", "resnet-50"),
        *_EARLY_STOPPING,
        _int(
            "image_shape",
            "side of the square input image (300 and 512 recommended)",
            default="300",
            minimum=300,
            maximum=10000,
            # Verified container text (awsdocs/amazon-sagemaker-developer-guide issue #44, pains.md S3).
            container_expects="a string which matches the pattern '^[1-9][0-9]*$'; or an integer between 300 and 10000",
        ),
        _int("epochs", "number of training epochs", default="30"),
        Hyperparameter("freeze_layer_pattern", False, None, "regex of base-network layers to freeze", "regex"),
        _choice("kv_store", "weight synchronisation in distributed training", None, "dist_sync", "dist_async"),
        _int("label_width", "padded label width: at least 2 + 5 x the most boxes on one image", default="350"),
        _float("learning_rate", "initial learning rate", "0.001", low_open=True),
        _float("lr_scheduler_factor", "ratio that reduces the learning rate", "0.1", low_open=True, high_open=True),
        Hyperparameter("lr_scheduler_step", False, "", "epochs at which to reduce the learning rate", "int_list"),
        _int("mini_batch_size", "batch size for training", default="32"),
        _float("momentum", "sgd momentum", "0.9", low_open=True),
        _float("nms_threshold", "non-maximum suppression threshold", "0.45", low_open=True),
        _choice("optimizer", "optimizer", "sgd", "sgd", "adam", "rmsprop", "adadelta"),
        _float("overlap_threshold", "evaluation overlap threshold", "0.5", low_open=True),
        _choice("use_pretrained_model", "1 to start from the pretrained base network", "1", "0", "1"),
        _float("weight_decay", "sgd and rmsprop weight decay", "0.0005", low_open=True, high_open=True),
    ),
}


def _table_for(algorithm: str) -> dict[str, Hyperparameter]:
    try:
        return HYPERPARAMETERS[algorithm]
    except KeyError:
        raise BadInput(f"unknown SageMaker algorithm '{algorithm}'; known: {', '.join(ALGORITHMS)}") from None


def defaults(algorithm: str) -> dict[str, str]:
    """The documented default of every hyperparameter that has one."""
    return {name: spec.default for name, spec in _table_for(algorithm).items() if spec.default is not None}


def parse_image_shape(algorithm: str, value: str) -> tuple[int, int, int]:
    """``image_shape`` as ``(channels, height, width)``: image-classification reads "C,H,W", object-detection an
    integer N (a square RGB image, so ``(3, N, N)``). Raises :class:`BadInput` naming the expected form."""
    spec = _table_for(algorithm)["image_shape"]
    problem = spec.check(value)
    if problem:
        raise BadInput(f"image_shape '{value}' is not valid for {algorithm}: {problem}")
    if algorithm == OBJECT_DETECTION:
        side = int(value)
        return 3, side, side
    shape = _ic_shape(value)
    assert shape is not None  # checked above
    return shape


def _suggestion(name: str, known: Mapping[str, Hyperparameter]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "valid names: " + ", ".join(sorted(known))


def _effective(algorithm: str, values: Mapping[str, str]) -> dict[str, str]:
    merged = defaults(algorithm)
    merged.update({name: str(value) for name, value in values.items()})
    return merged


def _valid(table: Mapping[str, Hyperparameter], values: Mapping[str, str], name: str) -> bool:
    return name in values and name in table and table[name].check(values[name]) is None


def hyperparameter_problems(
    algorithm: str,
    values: Mapping[str, str],
    *,
    max_boxes: int | None = None,
    content_type: str | None = None,
) -> list[str]:
    """Every problem with ``values`` for ``algorithm``, one line each; ``[]`` when there is none.

    ``max_boxes`` (the most boxes on one training image) enables the object-detection ``label_width`` rule;
    ``content_type`` (of the train channel) enables "resize is required with image content types".
    """
    table = _table_for(algorithm)
    given = {name: str(value) for name, value in values.items()}
    problems: list[str] = []
    for name in given:
        if name not in table:
            problems.append(f"unknown hyperparameter '{name}' for {algorithm}; {_suggestion(name, table)}")
    for name, spec in table.items():
        if spec.required and name not in given:
            problems.append(f"missing required hyperparameter '{name}' for {algorithm} ({spec.expects}: {spec.help})")
    for name, value in given.items():
        known = table.get(name)
        problem = known.check(value) if known is not None else None
        if problem:
            problems.append(f"hyperparameter {name}='{value}' is not valid for {algorithm}: {problem}")
    problems += _cross_field_problems(algorithm, given, max_boxes=max_boxes, content_type=content_type)
    return problems


def _cross_field_problems(
    algorithm: str, given: Mapping[str, str], *, max_boxes: int | None, content_type: str | None
) -> list[str]:
    table = HYPERPARAMETERS[algorithm]
    merged = _effective(algorithm, given)
    ok = {name for name in merged if _valid(table, merged, name)}
    problems: list[str] = []
    if "early_stopping" in ok and merged["early_stopping"] != "True":
        for name in sorted(n for n in given if n.startswith("early_stopping_")):
            problems.append(f"hyperparameter {name} has no effect unless early_stopping=True; set early_stopping=True")
    if {"mini_batch_size", "num_training_samples"} <= ok and int(merged["mini_batch_size"]) > int(
        merged["num_training_samples"]
    ):
        problems.append(
            f"mini_batch_size {merged['mini_batch_size']} is larger than num_training_samples "
            f"{merged['num_training_samples']}; set mini_batch_size to at most {merged['num_training_samples']}"
        )
    if algorithm == IMAGE_CLASSIFICATION:
        problems += _ic_cross_field(given, merged, ok, content_type)
    else:
        if max_boxes is not None and "label_width" in ok:
            needed = 2 + 5 * max_boxes
            if int(merged["label_width"]) < needed:
                problems.append(
                    f"label_width {merged['label_width']} is too small: an image with {max_boxes} boxes needs "
                    f"at least 2 + 5 x {max_boxes} = {needed}; set label_width to {needed} or more"
                )
    return problems


def _ic_cross_field(
    given: Mapping[str, str], merged: Mapping[str, str], ok: set[str], content_type: str | None
) -> list[str]:
    problems: list[str] = []
    shape = _ic_shape(merged["image_shape"]) if "image_shape" in ok else None
    if "resize" in ok and shape is not None:
        _, height, width = shape
        if int(merged["resize"]) < max(height, width):
            problems.append(
                f"resize {merged['resize']} is smaller than the image_shape height/width {height}x{width}; the "
                f"shortest side after resizing must be at least {max(height, width)} "
                f"(e.g. resize={_resize_for(height, width)})"
            )
    if content_type and content_type.split(";")[0].strip() in IMAGE_CONTENT_TYPES and "resize" not in given:
        problems.append(
            f"resize is required when training on image files ({content_type}); set resize to the shortest side "
            "in px, larger than the image_shape height and width"
        )
    if "use_weighted_loss" in ok and merged["use_weighted_loss"] == "1" and merged.get("multi_label") != "1":
        problems.append("use_weighted_loss=1 applies only to multi-label training; set multi_label=1 or drop it")
    if {"top_k", "num_classes"} <= ok and int(merged["top_k"]) > int(merged["num_classes"]):
        problems.append(
            f"top_k {merged['top_k']} exceeds num_classes {merged['num_classes']}; use a top_k <= num_classes"
        )
    if {"checkpoint_frequency", "epochs"} <= ok and int(merged["checkpoint_frequency"]) > int(merged["epochs"]):
        problems.append(
            f"checkpoint_frequency {merged['checkpoint_frequency']} is greater than epochs {merged['epochs']}; "
            f"use at most {merged['epochs']}"
        )
    if "use_pretrained_model" in ok and merged["use_pretrained_model"] == "1":
        if "num_layers" in ok and merged["num_layers"] not in _PRETRAINED_LAYERS:
            problems.append(
                f"use_pretrained_model=1 needs num_layers in {', '.join(_PRETRAINED_LAYERS)} "
                f"(got {merged['num_layers']}, a small-image depth that has no pretrained model)"
            )
        if shape is not None and shape[1:] != (224, 224):
            problems.append(
                f"use_pretrained_model=1 takes image_shape height x width 224 x 224 only (got {shape[1]}x{shape[2]}); "
                "set image_shape=3,224,224 or use_pretrained_model=0"
            )
    return problems


# -- what the real containers say ---------------------------------------------------------------------------------


def container_error(
    algorithm: str,
    values: Mapping[str, str],
    *,
    max_boxes: int | None = None,
    content_type: str | None = None,
) -> str | None:
    """The ``FailureReason`` the real container gives for ``values``, or ``None`` when it would start training.

    Checked in the container's order: names (schema), required names, each value, then the rules that need the
    data. Rules the documentation calls "ignored" (early_stopping_* without early_stopping, use_weighted_loss
    without multi_label) do not fail a real job, so they give ``None`` here although
    :func:`hyperparameter_problems` reports them.
    """
    table = _table_for(algorithm)
    given = {name: str(value) for name, value in values.items()}
    extras = sorted(name for name in given if name not in table)
    if extras:
        # Verified form: "ClientError: Additional hyperparameters are not allowed ('augmentation type' was
        # unexpected)" (an image-classification job, public code found by the search tools). The container's
        # schema validator words several names as jsonschema does ("'a', 'b' were unexpected").
        listed = ", ".join(repr(name) for name in extras)
        verb = "was" if len(extras) == 1 else "were"
        return f"ClientError: Additional hyperparameters are not allowed ({listed} {verb} unexpected)"
    missing = [name for name, spec in table.items() if spec.required and name not in given]
    if missing:
        # RECONSTRUCTED: no stored copy of the real text was found; the wording follows the brief.
        return f"ClientError: Missing required hyperparameter(s): {', '.join(missing)}"
    for name, value in given.items():
        spec = table[name]
        if spec.check(value) is not None:
            # Verified form (developer-guide issue #44, pains.md S3); there the prefix was the older
            # "Customer Error:", which SageMaker now writes as "ClientError:". The expected-form wording is the
            # container's own for object-detection image_shape and RECONSTRUCTED for the others.
            expects = spec.container_expects or spec.expects
            return (
                f"ClientError: The value '{value}' is not valid for the '{name}' hyperparameter which expects "
                f"one of the following: {expects} (caused by ValidationError)"
            )
    merged = _effective(algorithm, given)
    if algorithm == IMAGE_CLASSIFICATION:
        message = _ic_container_error(given, merged, content_type)
        if message:
            return message
    if int(merged["mini_batch_size"]) > int(merged["num_training_samples"]):
        # Verified text (aws/amazon-sagemaker-examples #1492, pains.md S3). The container counts the images it
        # reads; num_training_samples stands in for that count here.
        return "ClientError: The number of input images must be bigger or equal to the mini_batch_size."
    if algorithm == OBJECT_DETECTION and max_boxes is not None:
        needed = 2 + 5 * max_boxes
        if int(merged["label_width"]) < needed:
            # The head "ClientError: Invalid parameter value 'label_width'" is verified (amazon-sagemaker-examples
            # #643, pains.md S4); the tail is RECONSTRUCTED from MXNet's "label_pad_width: 300 smaller than
            # estimated width: 338" (apache/mxnet #14715).
            return (
                f"ClientError: Invalid parameter value 'label_width'. label_pad_width: {merged['label_width']} "
                f"smaller than estimated width: {needed}"
            )
    return None


def _ic_container_error(given: Mapping[str, str], merged: Mapping[str, str], content_type: str | None) -> str | None:
    if content_type and content_type.split(";")[0].strip() in IMAGE_CONTENT_TYPES and "resize" not in given:
        # RECONSTRUCTED: the documentation says resize is required with image content types.
        return "ClientError: The 'resize' hyperparameter is required when the training data is image files."
    shape = _ic_shape(merged["image_shape"])
    assert shape is not None  # values were checked before
    if "resize" in given and int(merged["resize"]) < max(shape[1], shape[2]):
        # RECONSTRUCTED: the crop of image_shape cannot be taken from a smaller resized image.
        return (
            f"ClientError: The value of 'resize' ({merged['resize']}) must be larger than the height and width "
            f"of 'image_shape' ({merged['image_shape']})."
        )
    if merged["use_pretrained_model"] == "1" and merged["num_layers"] not in _PRETRAINED_LAYERS:
        # RECONSTRUCTED: there is no pretrained network of the small-image depths.
        return (
            f"ClientError: No pretrained model is available for num_layers {merged['num_layers']}; "
            f"use one of {', '.join(_PRETRAINED_LAYERS)} with use_pretrained_model=1."
        )
    return None


# -- the common spec in the algorithm's words ---------------------------------------------------------------------

#: What incremental training must repeat from the base model (cloud-apis.md 1.6 and 1.8).
INCREMENTAL_TRAINING_KEYS: dict[str, tuple[str, ...]] = {
    IMAGE_CLASSIFICATION: ("num_classes", "num_layers", "image_shape"),
    OBJECT_DETECTION: ("num_classes", "base_network", "image_shape"),
}

ImageShape: TypeAlias = int | tuple[int, int] | tuple[int, int, int]


def _resize_for(height: int, width: int) -> int:
    """The usual resize for a crop of ``height`` x ``width``: 256 for 224, the same 8:7 ratio otherwise."""
    return math.ceil(max(height, width) * 256 / 224)


def spec_hyperparameters(
    algorithm: str,
    *,
    task: str,
    num_classes: int,
    num_training_samples: int,
    epochs: int | None = None,
    multi_label: bool = False,
    label_format: str | None = None,
    image_shape: ImageShape | None = None,
    resize: int | None = None,
    max_boxes: int | None = None,
) -> dict[str, str]:
    """The hyperparameters (all strings) that train ``algorithm`` on the common spec.

    Set: what the spec decides, and the architecture that incremental training must repeat (cloud-apis 1.6, 1.8:
    image-classification ``num_layers`` and ``image_shape``, object-detection ``base_network`` and
    ``image_shape``), pinned at their defaults when the spec says nothing, so the job's recorded hyperparameters
    describe its model. The algorithm's defaults cover the rest. Also set when the defaults would fail:
    ``mini_batch_size`` drops to the number of training samples below 32, object-detection ``label_width`` grows
    to ``2 + 5 x max_boxes`` above 350. Image-classification always gets ``resize`` (required with image
    files, allowed with RecordIO): ``resize`` if given, else 8/7 of the image side (256 for 224).
    ``image_shape`` is a side (square), ``(height, width)`` or ``(channels, height, width)``; object-detection
    takes a square of 300..10000 px, and a smaller side is raised to 300 with a logged warning.
    ``label_format`` (``multi-hot`` or ``class-id``) is the multi-label augmented-manifest label format: it
    selects the channel content type (not a hyperparameter) and is only checked here.
    Raises :class:`BadInput` for a spec the algorithm cannot take.
    """
    task_value = str(getattr(task, "value", task))
    if algorithm_for_task(task_value) != algorithm:
        raise BadInput(f"{algorithm} cannot train task '{task_value}'; use {algorithm_for_task(task_value)}")
    multi = multi_label or task_value == "multilabel"
    if label_format is not None:
        if label_format not in ("multi-hot", "class-id"):
            raise BadInput(f"label format '{label_format}' is not one of multi-hot, class-id")
        if not multi:
            raise BadInput(f"label format '{label_format}' applies to multi-label training only")
    if num_classes < 1 or num_training_samples < 1:
        raise BadInput(f"{algorithm} needs at least one class and one training image")
    values: dict[str, str] = {"num_classes": str(num_classes), "num_training_samples": str(num_training_samples)}
    if epochs is not None:
        values["epochs"] = str(epochs)
    if num_training_samples < 32:
        values["mini_batch_size"] = str(num_training_samples)
    if algorithm == IMAGE_CLASSIFICATION:
        channels, height, width = _shape_tuple(image_shape) if image_shape is not None else (3, 224, 224)
        values["num_layers"] = str(HYPERPARAMETERS[IMAGE_CLASSIFICATION]["num_layers"].default)
        values["image_shape"] = f"{channels},{height},{width}"
        values["resize"] = str(resize if resize is not None else _resize_for(height, width))
        if multi:
            values["multi_label"] = "1"
    else:
        values["base_network"] = str(HYPERPARAMETERS[OBJECT_DETECTION]["base_network"].default)
        side = 300
        if image_shape is not None:
            _, height, width = _shape_tuple(image_shape)
            if height != width:
                raise BadInput(f"object-detection trains on square images; image_shape {height}x{width} is not square")
            side = height
            if side < 300:
                log.warning("object-detection takes image_shape 300..10000; using 300 instead of %d", side)
                side = 300
        values["image_shape"] = str(side)
        if max_boxes is not None and 2 + 5 * max_boxes > 350:
            values["label_width"] = str(2 + 5 * max_boxes)
    problems = hyperparameter_problems(algorithm, values, max_boxes=max_boxes)
    if problems:
        raise BadInput(f"the training spec does not fit {algorithm}: " + "; ".join(problems))
    return values


def _shape_tuple(image_shape: ImageShape) -> tuple[int, int, int]:
    if isinstance(image_shape, int):
        return 3, image_shape, image_shape
    if len(image_shape) == 2:
        return 3, image_shape[0], image_shape[1]
    if len(image_shape) == 3:
        return image_shape[0], image_shape[1], image_shape[2]
    raise BadInput(f"image_shape {image_shape!r} is not a side, (height, width) or (channels, height, width)")
