"""Parsing what Rekognition Custom Labels writes after training, from the developer guide's own examples.

Fixtures: the example manifest summary of "Understanding the manifest summary" (tm-debugging-summary.md, its elided
``error_json_line_indices`` written out), JSON lines shaped as "Understanding training and testing validation result
manifests" and "Non-Terminal JSON Line Validation Errors" show them (their error codes and messages verbatim), the
example summary file of "Summary file" (im-summary-file-api.md) and the reference layout of "Reference: Training
results summary file" (im-summary-file.md).
"""

from __future__ import annotations

import json

import pytest

from mcv_rekognition.results import (
    ConfusionCell,
    ManifestError,
    evaluation_summary_name,
    first_line_errors,
    line_errors,
    read_evaluation_summary,
    read_manifest_summary,
)
from multicloud_cv.errors import ServiceError

MANIFEST_SUMMARY = json.dumps(
    {
        "errors": [],
        "statistics": {
            "training": {
                "use_case": "NOT_DETERMINED",
                "total_json_lines": 301,
                "valid_json_lines": 146,
                "invalid_json_lines": 155,
                "ignored_json_lines": 0,
                "errors": [
                    {
                        "code": "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST",
                        "message": "The manifest file contains too many invalid rows.",
                    }
                ],
                "error_json_line_indices": [15, 16, 17, 22, 23, 24, 300],
            },
            "testing": {
                "use_case": "NOT_DETERMINED",
                "total_json_lines": 15,
                "valid_json_lines": 13,
                "invalid_json_lines": 2,
                "ignored_json_lines": 0,
                "errors": [],
                "error_json_line_indices": [13, 15],
            },
        },
    },
    indent=4,
).encode()

# An object localization line with ERROR_BOUNDING_BOX_TOO_SMALL (the guide's "Example JSON line error").
BOX_TOO_SMALL = {
    "source-ref": "s3://bucket/Manifests/images/199940-1791.jpg",
    "bounding-box": {
        "image_size": [{"width": 3000, "height": 3000, "depth": 3}],
        "annotations": [
            {
                "class_id": 1,
                "top": 0,
                "left": 0,
                "width": 1,
                "height": 1,
                "errors": [
                    {
                        "code": "ERROR_BOUNDING_BOX_TOO_SMALL",
                        "message": "The height and width of the bounding box is too small.",
                    }
                ],
            },
            {"class_id": 0, "top": 65, "left": 86, "width": 220, "height": 334},
        ],
    },
    "bounding-box-metadata": {
        "objects": [{"confidence": 1}, {"confidence": 1}],
        "class-map": {"0": "Echo", "1": "Echo Dot"},
        "type": "groundtruth/object-detection",
        "human-annotated": "yes",
        "creation-date": "2019-11-20T02:57:28.288286",
        "job-name": "my job",
    },
}
VALID_LINE = {
    "source-ref": "s3://bucket/images/sunrise.png",
    "testdataset-classification_Sunrise": 1,
    "testdataset-classification_Sunrise-metadata": {
        "confidence": 1,
        "job-name": "labeling-job/testdataset-classification_Sunrise",
        "class-name": "Sunrise",
        "human-annotated": "yes",
        "creation-date": "2018-10-18T22:18:13.527256",
        "type": "groundtruth/image-classification",
    },
}
# An image-level line in the guide's image-level error format: an image error and a label attribute metadata error.
INVALID_IMAGE = {
    "source-ref": "s3://bucket/images/tiny.png",
    "sport": 0,
    "sport-metadata": {
        "class-name": "Football",
        "confidence": 1.0,
        "type": "groundtruth/image-classification",
        "job-name": "identify-sport",
        "human-annotated": "yes",
        "creation-date": "2018-10-18T22:18:13.527256",
        "errors": [
            {
                "code": "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT",
                "message": "The format of the label attribute metadata is invalid.",
            }
        ],
    },
    "errors": [
        {"code": "ERROR_INVALID_IMAGE", "message": "The image is invalid. Check S3 path and/or image properties."}
    ],
}
# WARNING_NO_ANNOTATIONS, verbatim from the guide: an ignored line, not an error.
NO_ANNOTATIONS = {
    "source-ref": "s3://bucket/images/IMG_1186.png",
    "bounding-box": {
        "image_size": [{"width": 640, "height": 480, "depth": 3}],
        "annotations": [],
        "warnings": [{"code": "WARNING_NO_ATTRIBUTE_ANNOTATIONS", "message": "No attribute annotations were found."}],
    },
    "bounding-box-metadata": {
        "objects": [],
        "class-map": {},
        "type": "groundtruth/object-detection",
        "human-annotated": "yes",
        "creation-date": "2013-11-18 02:53:27",
        "job-name": "my job",
    },
    "warnings": [{"code": "WARNING_NO_ANNOTATIONS", "message": "No annotations were found."}],
}
# ERROR_INVALID_JSON_LINE: "The JSON Line is replaced with a new JSON Line that contains only the error information."
REPLACED_LINE = {"errors": [{"code": "ERROR_INVALID_JSON_LINE", "message": "The JSON Line has an invalid format."}]}


def _manifest(*records: object) -> bytes:
    return "\n".join(json.dumps(record) for record in records).encode() + b"\n"


# -- manifest summary ----------------------------------------------------------------------------------------------


def test_the_guides_example_manifest_summary() -> None:
    summary = read_manifest_summary(MANIFEST_SUMMARY)
    assert summary.training is not None and summary.testing is not None
    training = summary.training
    assert (training.use_case, training.total_json_lines, training.valid_json_lines) == ("NOT_DETERMINED", 301, 146)
    assert (training.invalid_json_lines, training.ignored_json_lines) == (155, 0)
    assert training.error_json_line_indices == (15, 16, 17, 22, 23, 24, 300)
    assert training.errors == (
        ManifestError("ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST", "The manifest file contains too many invalid rows."),
    )
    assert summary.testing.error_json_line_indices == (13, 15) and summary.testing.errors == ()
    assert summary.errors == () and summary.invalid_lines == 157
    assert [(scope, error.code) for scope, error in summary.terminal_errors] == [
        ("training", "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST")
    ]
    assert summary.describe() == (
        "training 301 lines: 146 valid, 155 invalid, 0 ignored; testing 15 lines: 13 valid, 2 invalid, 0 ignored; "
        "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST: The manifest file contains too many invalid rows. (training)"
    )


def test_errors_spanning_both_datasets_and_missing_sections() -> None:
    document = {
        "statistics": {"training": {"use_case": "IMAGE_LEVEL_LABELS", "total_json_lines": "40", "errors": []}},
        "errors": [
            {
                "code": "ERROR_INSUFFICIENT_USABLE_LABEL_OVERLAP",
                "message": "Less than 50% usable label overlap between the training and testing manifest files.",
            }
        ],
    }
    summary = read_manifest_summary(json.dumps(document))
    assert summary.testing is None and summary.training is not None
    assert summary.training.total_json_lines == 40 and summary.training.valid_json_lines is None
    assert [(scope, error.code) for scope, error in summary.terminal_errors] == [
        ("both", "ERROR_INSUFFICIENT_USABLE_LABEL_OVERLAP")
    ]
    assert summary.describe().startswith("training 40 lines; ERROR_INSUFFICIENT_USABLE_LABEL_OVERLAP: Less than 50%")


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_a_broken_manifest_summary_is_a_service_error(data: bytes) -> None:
    with pytest.raises(ServiceError, match="manifest summary"):
        read_manifest_summary(data)


# -- validation manifests ------------------------------------------------------------------------------------------


def test_first_line_errors_name_the_image_and_where_the_error_is() -> None:
    manifest = _manifest(VALID_LINE, BOX_TOO_SMALL, NO_ANNOTATIONS, INVALID_IMAGE, REPLACED_LINE)
    first, second, third = first_line_errors(manifest)
    assert (first.source_ref, first.line, first.codes) == (
        "s3://bucket/Manifests/images/199940-1791.jpg",
        2,
        ("ERROR_BOUNDING_BOX_TOO_SMALL",),
    )
    assert first.messages == (
        "bounding-box annotation 0: ERROR_BOUNDING_BOX_TOO_SMALL: "
        "The height and width of the bounding box is too small.",
    )
    assert second.source_ref == "s3://bucket/images/tiny.png" and second.line == 4
    assert second.codes == ("ERROR_INVALID_IMAGE", "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT")
    assert second.messages[0] == "ERROR_INVALID_IMAGE: The image is invalid. Check S3 path and/or image properties."
    assert second.messages[1].startswith("sport-metadata: ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT")
    assert third.source_ref is None and third.codes == ("ERROR_INVALID_JSON_LINE",) and third.line == 5
    assert third.describe() == "line 5: ERROR_INVALID_JSON_LINE: The JSON Line has an invalid format."
    assert first.describe().startswith("s3://bucket/Manifests/images/199940-1791.jpg: bounding-box annotation 0:")


def test_the_limit_and_the_warnings() -> None:
    manifest = _manifest(*([INVALID_IMAGE] * 8), NO_ANNOTATIONS)
    assert len(first_line_errors(manifest)) == 5
    assert len(first_line_errors(manifest, limit=2)) == 2
    assert first_line_errors(_manifest(VALID_LINE, NO_ANNOTATIONS)) == []
    [warned] = line_errors(_manifest(VALID_LINE, NO_ANNOTATIONS), include_warnings=True)
    assert warned.codes == () and warned.warnings == ("WARNING_NO_ANNOTATIONS", "WARNING_NO_ATTRIBUTE_ANNOTATIONS")
    assert warned.source_ref == "s3://bucket/images/IMG_1186.png"


def test_a_line_that_is_not_json_and_blank_lines() -> None:
    manifest = b'\n{"source-ref": "s3://b/a.png"}\n{broken\n\n'
    [error] = first_line_errors(manifest)
    assert error.line == 3 and error.source_ref is None and error.codes == ("ERROR_INVALID_JSON_LINE",)


# -- evaluation summary --------------------------------------------------------------------------------------------

# The guide's example summary file ("Summary file", im-summary-file-api.md), verbatim.
CLASSIFICATION_SUMMARY = b"""{
  "Version": 1,
  "AggregatedEvaluationResults": {
    "ConfusionMatrix": [
      {"GroundTruthLabel": "CAP", "PredictedLabel": "CAP", "Value": 0.9948717948717949},
      {"GroundTruthLabel": "CAP", "PredictedLabel": "WATCH", "Value": 0.008547008547008548},
      {"GroundTruthLabel": "WATCH", "PredictedLabel": "CAP", "Value": 0.1794871794871795},
      {"GroundTruthLabel": "WATCH", "PredictedLabel": "WATCH", "Value": 0.7008547008547008}
    ],
    "F1Score": 0.9726959470546408,
    "Precision": 0.9719115848331294,
    "Recall": 0.9735042735042735
  },
  "EvaluationDetails": {
    "EvaluationEndTimestamp": "2019-11-21T07:30:23.910943",
    "Labels": ["CAP", "WATCH"],
    "NumberOfTestingImages": 624,
    "NumberOfTrainingImages": 5216,
    "ProjectVersionArn": "arn:aws:rekognition:us-east-1:nnnnnnnnn:project/my-project/version/v0/1574317227432"
  },
  "LabelEvaluationResults": [
    {
      "Label": "CAP",
      "Metrics": {"F1Score": 0.9794344473007711, "Precision": 0.9819587628865979,
                  "Recall": 0.9769230769230769, "Threshold": 0.9879502058029175},
      "NumberOfTestingImages": 390
    },
    {
      "Label": "WATCH",
      "Metrics": {"F1Score": 0.9659574468085106, "Precision": 0.961864406779661,
                  "Recall": 0.9700854700854701, "Threshold": 0.014450683258473873},
      "NumberOfTestingImages": 234
    }
  ]
}"""


def test_the_guides_example_summary_file() -> None:
    summary = read_evaluation_summary(CLASSIFICATION_SUMMARY)
    assert summary.version == 1 and summary.labels == ("CAP", "WATCH") and not summary.is_detection
    assert summary.project_version_arn is not None and summary.project_version_arn.endswith("/version/v0/1574317227432")
    assert (summary.training_images, summary.testing_images) == (5216, 624)
    assert summary.evaluation_end == "2019-11-21T07:30:23.910943"
    assert (summary.f1, summary.precision, summary.recall) == (
        0.9726959470546408,
        0.9719115848331294,
        0.9735042735042735,
    )
    cap = summary.label("CAP")
    assert cap is not None and (cap.threshold, cap.testing_images) == (0.9879502058029175, 390)
    assert summary.confusion[1] == ConfusionCell("CAP", "WATCH", 0.008547008547008548)
    assert summary.confusion_matrix() == [
        [0.9948717948717949, 0.008547008547008548],
        [0.1794871794871795, 0.7008547008547008],
    ]
    assert summary.confusion_matrix(["WATCH", "CAP", "HAT"])[0][:2] == [0.7008547008547008, 0.1794871794871795]
    metrics = summary.as_metrics()
    assert metrics["f1"] == 0.9726959470546408 and metrics["testing_images"] == 624.0
    assert metrics["label:WATCH:threshold"] == 0.014450683258473873 and metrics["label:CAP:testing_images"] == 390.0
    assert "average_precision" not in metrics
    assert all(isinstance(value, float) for value in metrics.values())
    assert len([key for key in metrics if key.startswith("label:")]) == 10


def test_the_reference_layout_with_nested_metrics_for_detection() -> None:
    """The reference page nests the aggregated metrics in ``Metrics`` and adds AveragePrecision/AverageRecall."""
    document = {
        "Version": "1",
        "EvaluationDetails": {
            "ProjectVersionArn": "arn:aws:rekognition:us-east-1:111122223333:project/echo/version/v2/1600000000000",
            "EvaluationEndTimestamp": "2020-09-13T12:26:40.000000",
            "Labels": ["Echo", "Echo Dot"],
            "NumberOfTrainingImages": "80",
            "NumberOfTestingImages": 20,
        },
        "AggregatedEvaluationResults": {
            "Metrics": {
                "Precision": "0.8",
                "Recall": 0.75,
                "F1Score": 0.774,
                "AveragePrecision": 0.71,
                "AverageRecall": 0.69,
            }
        },
        "LabelEvaluationResults": [
            {"Label": "Echo Dot", "NumberOfTestingImages": 12, "Metrics": {"F1Score": 0.8, "Precision": 0.9}},
            {"Label": "Echo", "NumberOfTestingImages": 8, "Metrics": {"F1Score": None, "Recall": "n/a"}},
        ],
    }
    summary = read_evaluation_summary(json.dumps(document).encode())
    assert summary.is_detection and summary.confusion == () and summary.version == 1
    assert (summary.precision, summary.recall, summary.average_precision) == (0.8, 0.75, 0.71)
    assert summary.training_images == 80
    metrics = summary.as_metrics()
    assert metrics["average_recall"] == 0.69 and metrics["label:Echo Dot:precision"] == 0.9
    assert "label:Echo:f1" not in metrics and "label:Echo:recall" not in metrics
    assert metrics["label:Echo:testing_images"] == 8.0


@pytest.mark.parametrize(
    ("data", "match"),
    [(b"", "not JSON"), (b"[]", "not a JSON object"), (b'{"Version": 1}', "neither AggregatedEvaluationResults")],
)
def test_a_broken_summary_file_is_a_service_error(data: bytes, match: str) -> None:
    with pytest.raises(ServiceError, match=match):
        read_evaluation_summary(data)


def test_the_documented_file_name() -> None:
    assert evaluation_summary_name("my-project", "v0") == "EvaluationSummary-my-project-v0.json"
