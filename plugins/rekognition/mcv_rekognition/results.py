"""Parsers of what Rekognition Custom Labels writes to the training output location (``OutputConfig``).

Formats, from the Amazon Rekognition Custom Labels Developer Guide:

* **Manifest summary** (``manifest_summary.json``; "Understanding the manifest summary", ``tm-debugging-summary.md``):
  ``{"statistics": {"training": {...}, "testing": {...}}, "errors": [{"code", "message"}]}`` where each dataset's
  statistics hold ``use_case`` (``IMAGE_LEVEL_LABELS``, ``OBJECT_LOCALIZATION`` or ``NOT_DETERMINED``),
  ``total_json_lines``, ``valid_json_lines``, ``invalid_json_lines``, ``ignored_json_lines`` ("JSON Lines that have
  a valid schema but have no annotations"), ``error_json_line_indices`` and ``errors`` (terminal manifest content
  errors such as ``ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST``, "The manifest file contains too many invalid rows.").
  The top-level ``errors`` span both datasets (``ERROR_INSUFFICIENT_USABLE_LABEL_OVERLAP``). The guide's example
  lists ``error_json_line_indices`` up to 300 for 301 lines and 13, 15 for 15 lines, so their base (0 or 1) is not
  settled: they are kept as written.
* **Validation manifests** (``training_manifest_with_validation.json``, ``testing_manifest_with_validation.json``;
  "Understanding training and testing validation result manifests", ``tm-debugging-scope-json-line.md``): copies of
  the manifests, one JSON line per image, with ``errors`` arrays of ``{"code", "message"}`` added where they occur:
  on the line (image errors such as ``ERROR_INVALID_IMAGE``), in the label attribute (``bounding-box``), in each
  of its ``annotations`` (``ERROR_BOUNDING_BOX_TOO_SMALL``) and in the ``-metadata`` object. ``warnings`` arrays
  (``WARNING_NO_ANNOTATIONS``) mark ignored lines. A line that was not JSON "is replaced with a new JSON Line that
  contains only the error information" (ERROR_INVALID_JSON_LINE, ``tm-debugging-json-line-errors.md``), so it has no
  ``source-ref``.
* **Evaluation summary** (``EvaluationSummary-<ProjectName>-<VersionName>.json``; "Reference: Training results
  summary file", ``im-summary-file.md``): ``Version``, ``EvaluationDetails`` (``ProjectVersionArn``,
  ``EvaluationEndTimestamp``, ``Labels``, ``NumberOfTrainingImages``, ``NumberOfTestingImages``),
  ``AggregatedEvaluationResults`` (``Precision``, ``Recall``, ``F1Score``; ``AveragePrecision`` and
  ``AverageRecall`` for detection; ``ConfusionMatrix`` of ``{GroundTruthLabel, PredictedLabel, Value}`` for
  classification) and ``LabelEvaluationResults`` (``Label``, ``NumberOfTestingImages``, ``Metrics`` with
  ``Threshold``, ``Precision``, ``Recall``, ``F1Score``). The reference nests the aggregated metrics in a
  ``Metrics`` object while the guide's example file ("Summary file", ``im-summary-file-api.md``) has them directly
  in ``AggregatedEvaluationResults``: both are read. (The SDK page ``im-access-summary-evaluation-manifest.md`` shows
  an object named ``EvaluationResultSummary-<project>-<version>.json``; the name comes from DescribeProjectVersions'
  ``EvaluationResult.Summary.S3Object`` in any case.)

Contracts: every parser takes the file's bytes and returns frozen dataclasses; a document that is not JSON, or not
an object of the expected shape, raises :class:`~multicloud_cv.errors.ServiceError` saying which file (these files
are written by the service, so a bad one is the service's failure). Missing optional fields read as ``None`` or
empty. Numbers written as strings (the reference shows ``"float"`` placeholders) are accepted.
:meth:`EvaluationSummary.as_metrics` gives the flat ``dict[str, float]`` kept as the provider-reported metrics.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from multicloud_cv.errors import ServiceError

#: The documented name of the evaluation summary object ("Reference: Training results summary file").
EVALUATION_SUMMARY_TEMPLATE = "EvaluationSummary-{project}-{version}.json"
#: The documented names of the validation results ("Getting the validation results").
MANIFEST_SUMMARY_NAME = "manifest_summary.json"
TRAINING_VALIDATION_NAME = "training_manifest_with_validation.json"
TESTING_VALIDATION_NAME = "testing_manifest_with_validation.json"


def evaluation_summary_name(project: str, version: str) -> str:
    """``EvaluationSummary-<project>-<version>.json``, the file name the reference page documents."""
    return EVALUATION_SUMMARY_TEMPLATE.format(project=project, version=version)


# -- shared helpers ------------------------------------------------------------------------------------------------


def _load_object(data: bytes | str, what: str) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServiceError(f"the {what} written by Rekognition Custom Labels is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ServiceError(f"the {what} written by Rekognition Custom Labels is not a JSON object")
    return document


def _number(value: Any) -> float | None:
    """A float from a number or a numeric string; ``None`` for anything else (and for NaN)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# -- manifest summary ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestError:
    """One error (or warning) the service reports: its code and message."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


def _errors(value: Any) -> tuple[ManifestError, ...]:
    found = []
    for item in _list(value):
        if isinstance(item, Mapping):
            found.append(ManifestError(str(item.get("code", "")), str(item.get("message", ""))))
        elif isinstance(item, str):
            found.append(ManifestError(item, ""))
    return tuple(found)


@dataclass(frozen=True)
class DatasetStatistics:
    """The manifest summary's statistics of one dataset (``training`` or ``testing``)."""

    use_case: str | None
    total_json_lines: int | None
    valid_json_lines: int | None
    invalid_json_lines: int | None
    ignored_json_lines: int | None
    error_json_line_indices: tuple[int, ...] = ()
    errors: tuple[ManifestError, ...] = ()

    @classmethod
    def from_json(cls, value: Any) -> DatasetStatistics:
        data = _mapping(value)
        indices = tuple(
            index for index in (_int(i) for i in _list(data.get("error_json_line_indices"))) if index is not None
        )
        return cls(
            use_case=str(data["use_case"]) if data.get("use_case") is not None else None,
            total_json_lines=_int(data.get("total_json_lines")),
            valid_json_lines=_int(data.get("valid_json_lines")),
            invalid_json_lines=_int(data.get("invalid_json_lines")),
            ignored_json_lines=_int(data.get("ignored_json_lines")),
            error_json_line_indices=indices,
            errors=_errors(data.get("errors")),
        )

    def describe(self) -> str:
        """``301 lines: 146 valid, 155 invalid, 0 ignored`` (unknown counts left out)."""
        counts = [
            f"{n} {word}"
            for n, word in (
                (self.valid_json_lines, "valid"),
                (self.invalid_json_lines, "invalid"),
                (self.ignored_json_lines, "ignored"),
            )
            if n is not None
        ]
        total = f"{self.total_json_lines} lines" if self.total_json_lines is not None else "lines"
        return f"{total}: {', '.join(counts)}" if counts else total


@dataclass(frozen=True)
class ManifestSummary:
    """``manifest_summary.json``: per-dataset statistics and the errors spanning both datasets."""

    training: DatasetStatistics | None
    testing: DatasetStatistics | None
    errors: tuple[ManifestError, ...] = ()

    @property
    def terminal_errors(self) -> list[tuple[str, ManifestError]]:
        """Every terminal manifest content error with where it was found (``training``, ``testing``, ``both``)."""
        found: list[tuple[str, ManifestError]] = [("both", error) for error in self.errors]
        for scope, stats in (("training", self.training), ("testing", self.testing)):
            if stats is not None:
                found += [(scope, error) for error in stats.errors]
        return found

    @property
    def invalid_lines(self) -> int:
        """Invalid JSON lines in both datasets (unknown counts as 0)."""
        return sum((stats.invalid_json_lines or 0) for stats in (self.training, self.testing) if stats is not None)

    def describe(self) -> str:
        """One line for a failure message: each dataset's counts, then the terminal errors."""
        parts = [
            f"{scope} {stats.describe()}"
            for scope, stats in (("training", self.training), ("testing", self.testing))
            if stats is not None
        ]
        errors = "; ".join(f"{error} ({scope})" for scope, error in self.terminal_errors)
        return "; ".join(parts) + (f"; {errors}" if errors else "")


def read_manifest_summary(data: bytes | str) -> ManifestSummary:
    """Parse ``manifest_summary.json`` (see the module doc)."""
    document = _load_object(data, "manifest summary (manifest_summary.json)")
    statistics = _mapping(document.get("statistics"))
    return ManifestSummary(
        training=DatasetStatistics.from_json(statistics["training"]) if "training" in statistics else None,
        testing=DatasetStatistics.from_json(statistics["testing"]) if "testing" in statistics else None,
        errors=_errors(document.get("errors")),
    )


# -- validation manifests ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineError:
    """The errors the service added to one line of a validation manifest.

    ``source_ref`` is the image (``None`` for a line that was not JSON); ``codes`` are distinct, in the order met;
    ``messages`` are one per error found, prefixed with where it was (``bounding-box annotation 0: ...``);
    ``line`` is the 1-based line number in the validation manifest; ``warnings`` the warning codes of the line.
    """

    source_ref: str | None
    codes: tuple[str, ...]
    messages: tuple[str, ...]
    line: int = 0
    warnings: tuple[str, ...] = ()

    def describe(self) -> str:
        """``s3://b/img.png: ERROR_INVALID_IMAGE (The image is invalid. ...)``."""
        where = self.source_ref or f"line {self.line}"
        return f"{where}: {'; '.join(self.messages) if self.messages else ', '.join(self.codes)}"


def _collect(node: Mapping[str, Any], where: str, key: str, out: list[tuple[str, ManifestError]]) -> None:
    for error in _errors(node.get(key)):
        out.append((where, error))


def _line_findings(record: Mapping[str, Any], key: str) -> list[tuple[str, ManifestError]]:
    """Every ``key`` (``errors`` or ``warnings``) entry of one JSON line, with where it sits."""
    found: list[tuple[str, ManifestError]] = []
    _collect(record, "", key, found)
    for name, value in record.items():
        if not isinstance(value, Mapping):
            continue
        _collect(value, name, key, found)
        for position, annotation in enumerate(_list(value.get("annotations"))):
            if isinstance(annotation, Mapping):
                _collect(annotation, f"{name} annotation {position}", key, found)
    return found


def line_errors(validation_manifest: bytes | str, include_warnings: bool = False) -> Iterator[LineError]:
    """Each line of a validation manifest that carries errors (and, with ``include_warnings``, warnings)."""
    text = (
        validation_manifest.decode("utf-8", errors="replace")
        if isinstance(validation_manifest, bytes)
        else validation_manifest
    )
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            yield LineError(
                None, ("ERROR_INVALID_JSON_LINE",), (f"line {number} of the validation manifest is not JSON",), number
            )
            continue
        if not isinstance(record, Mapping):
            continue
        errors = _line_findings(record, "errors")
        warnings = _line_findings(record, "warnings")
        if not errors and not (include_warnings and warnings):
            continue
        codes = tuple(dict.fromkeys(error.code for _, error in errors))
        messages = tuple(f"{where}: {error}" if where else str(error) for where, error in errors)
        source = record.get("source-ref")
        yield LineError(
            source_ref=str(source) if source is not None else None,
            codes=codes,
            messages=messages,
            line=number,
            warnings=tuple(dict.fromkeys(warning.code for _, warning in warnings)),
        )


def first_line_errors(validation_manifest: bytes | str, limit: int = 5) -> list[LineError]:
    """The first ``limit`` lines of a validation manifest that carry errors, each naming its image."""
    found: list[LineError] = []
    for error in line_errors(validation_manifest):
        if len(found) >= limit:
            break
        found.append(error)
    return found


# -- evaluation summary --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelEvaluation:
    """One entry of ``LabelEvaluationResults``: the service's metrics of one label at its assumed threshold."""

    label: str
    f1: float | None
    precision: float | None
    recall: float | None
    threshold: float | None
    testing_images: int | None


@dataclass(frozen=True)
class ConfusionCell:
    """One entry of ``ConfusionMatrix`` (classification only)."""

    ground_truth: str
    predicted: str
    value: float


@dataclass(frozen=True)
class EvaluationSummary:
    """``EvaluationSummary-<project>-<version>.json``: what the service reports about its own model."""

    version: int | None
    project_version_arn: str | None
    evaluation_end: str | None
    labels: tuple[str, ...]
    training_images: int | None
    testing_images: int | None
    f1: float | None
    precision: float | None
    recall: float | None
    average_precision: float | None = None
    average_recall: float | None = None
    per_label: tuple[LabelEvaluation, ...] = ()
    confusion: tuple[ConfusionCell, ...] = ()

    @property
    def is_detection(self) -> bool:
        """True when the file has detection's aggregated metrics (``AveragePrecision``/``AverageRecall``)."""
        return self.average_precision is not None or self.average_recall is not None

    def label(self, name: str) -> LabelEvaluation | None:
        """The entry of label ``name``, if the file has one."""
        return next((entry for entry in self.per_label if entry.label == name), None)

    def confusion_matrix(self, labels: list[str] | None = None) -> list[list[float]]:
        """Rows ground truth, columns predicted, in the order of ``labels`` (default: the file's ``Labels``)."""
        order = list(labels if labels is not None else self.labels)
        position = {name: index for index, name in enumerate(order)}
        matrix = [[0.0] * len(order) for _ in order]
        for cell in self.confusion:
            if cell.ground_truth in position and cell.predicted in position:
                matrix[position[cell.ground_truth]][position[cell.predicted]] = cell.value
        return matrix

    def as_metrics(self) -> dict[str, float]:
        """Flat provider-reported metrics: ``f1``, ``precision``, ``recall`` (``average_precision``,
        ``average_recall`` for detection), ``training_images``, ``testing_images`` and per label
        ``label:<name>:f1``, ``...:precision``, ``...:recall``, ``...:threshold``, ``...:testing_images``.
        Values the file does not give are left out."""
        metrics: dict[str, float | int | None] = {
            "f1": self.f1,
            "precision": self.precision,
            "recall": self.recall,
            "average_precision": self.average_precision,
            "average_recall": self.average_recall,
            "training_images": self.training_images,
            "testing_images": self.testing_images,
        }
        for entry in self.per_label:
            prefix = f"label:{entry.label}:"
            metrics[prefix + "f1"] = entry.f1
            metrics[prefix + "precision"] = entry.precision
            metrics[prefix + "recall"] = entry.recall
            metrics[prefix + "threshold"] = entry.threshold
            metrics[prefix + "testing_images"] = entry.testing_images
        return {name: float(value) for name, value in metrics.items() if value is not None}


def _aggregated(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """``AggregatedEvaluationResults`` with a nested ``Metrics`` object (the reference's form) merged in."""
    aggregated = _mapping(document.get("AggregatedEvaluationResults"))
    nested = _mapping(aggregated.get("Metrics"))
    return {**aggregated, **nested}


def read_evaluation_summary(data: bytes | str) -> EvaluationSummary:
    """Parse the evaluation summary file (see the module doc)."""
    document = _load_object(data, "evaluation summary file")
    if "AggregatedEvaluationResults" not in document and "LabelEvaluationResults" not in document:
        raise ServiceError(
            "the evaluation summary file has neither AggregatedEvaluationResults nor LabelEvaluationResults"
        )
    details = _mapping(document.get("EvaluationDetails"))
    aggregated = _aggregated(document)
    per_label = []
    for entry in _list(document.get("LabelEvaluationResults")):
        if not isinstance(entry, Mapping) or entry.get("Label") is None:
            continue
        metrics = _mapping(entry.get("Metrics"))
        per_label.append(
            LabelEvaluation(
                label=str(entry["Label"]),
                f1=_number(metrics.get("F1Score")),
                precision=_number(metrics.get("Precision")),
                recall=_number(metrics.get("Recall")),
                threshold=_number(metrics.get("Threshold")),
                testing_images=_int(entry.get("NumberOfTestingImages")),
            )
        )
    confusion = []
    for cell in _list(aggregated.get("ConfusionMatrix")):
        value = _number(_mapping(cell).get("Value"))
        if value is None or not isinstance(cell, Mapping):
            continue
        confusion.append(ConfusionCell(str(cell.get("GroundTruthLabel")), str(cell.get("PredictedLabel")), value))
    labels = _list(details.get("Labels"))
    arn = details.get("ProjectVersionArn")
    end = details.get("EvaluationEndTimestamp")
    return EvaluationSummary(
        version=_int(document.get("Version")),
        project_version_arn=str(arn) if arn is not None else None,
        evaluation_end=str(end) if end is not None else None,
        labels=tuple(str(label) for label in labels) or tuple(entry.label for entry in per_label),
        training_images=_int(details.get("NumberOfTrainingImages")),
        testing_images=_int(details.get("NumberOfTestingImages")),
        f1=_number(aggregated.get("F1Score")),
        precision=_number(aggregated.get("Precision")),
        recall=_number(aggregated.get("Recall")),
        average_precision=_number(aggregated.get("AveragePrecision")),
        average_recall=_number(aggregated.get("AverageRecall")),
        per_label=tuple(per_label),
        confusion=tuple(confusion),
    )
