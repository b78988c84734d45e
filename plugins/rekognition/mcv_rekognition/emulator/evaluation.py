"""The training results summary the emulated service writes: real metrics of the trained model on TEST.

Format (DG ``im-summary-file.md``, "Reference: Training results summary file", and the example of DG
``im-summary-file-api.md``): ``Version``; ``EvaluationDetails`` {``ProjectVersionArn``,
``EvaluationEndTimestamp``, ``Labels``, ``NumberOfTrainingImages``, ``NumberOfTestingImages``};
``AggregatedEvaluationResults`` {``F1Score``, ``Precision``, ``Recall``, and ``ConfusionMatrix``
[{``GroundTruthLabel``, ``PredictedLabel``, ``Value``}] for image-level labels or ``AveragePrecision`` /
``AverageRecall`` for object localization}; ``LabelEvaluationResults`` [{``Label``,
``NumberOfTestingImages``, ``Metrics`` {``F1Score``, ``Precision``, ``Recall``, ``Threshold``}}] sorted by
F1 score, best first. The aggregated metrics sit directly in ``AggregatedEvaluationResults``, as in the
guide's example file (the reference page nests them under ``Metrics``; readers should accept both).

How the numbers are made (the guide gives no algorithm; this is the emulator's, stated so):

* Each label's ``Threshold`` is its "assumed threshold" (0..1): the model score at which the label's F1
  on the test images is highest (the lowest such score on ties); precision, recall and F1 are taken at it.
  DetectCustomLabels filters each label at this threshold when the request has no MinConfidence.
* Image-level labels: a label is predicted for an image when its class probability reaches the threshold;
  ``ConfusionMatrix`` rows are the true labels of single-label test images, each row's values the share of
  its images whose top-scoring label is the column (a row sums to 1).
* Object localization: detections (score >= 0.05) are matched greedily, most confident first, to an
  unmatched box of the same label at IoU >= 0.5; ``AveragePrecision`` is the mAP at IoU 0.5 from
  :func:`multicloud_cv.evaluation_detection.score_detection` (pycocotools), ``AverageRecall`` the mean
  per-label recall at the thresholds.
* Aggregated ``F1Score``, ``Precision`` and ``Recall`` are the means over the labels with test images (the
  guide's example is consistent with that: its F1 0.97269 is the mean of its two label F1 scores).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from multicloud_cv.emulation.training import Found

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class LabelResult:
    """One label's metrics at its assumed threshold."""

    label: str
    threshold: float
    precision: float
    recall: float
    f1: float
    images: int


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def best_threshold(scored: Sequence[tuple[float, bool]], positives: int) -> tuple[float, float, float, float]:
    """``(threshold, precision, recall, f1)`` maximising F1 over the thresholds ``scored`` allows.

    ``scored`` holds ``(score, is a true positive)`` for every prediction of the label; ``positives`` is the
    number of ground-truth instances. With nothing scored or no positives the threshold is 0.5.
    """
    ranked = sorted(scored, key=lambda item: item[0], reverse=True)
    if not ranked or positives == 0:
        tp = sum(1 for score, hit in ranked if hit and score >= DEFAULT_THRESHOLD)
        fp = sum(1 for score, hit in ranked if not hit and score >= DEFAULT_THRESHOLD)
        return (DEFAULT_THRESHOLD, *_prf(tp, fp, positives - tp))
    best = (DEFAULT_THRESHOLD, 0.0, 0.0, -1.0)
    tp = fp = 0
    for index, (score, hit) in enumerate(ranked):
        tp += int(hit)
        fp += int(not hit)
        if index + 1 < len(ranked) and ranked[index + 1][0] == score:
            continue  # a threshold takes every prediction of the same score
        precision, recall, f1 = _prf(tp, fp, positives - tp)
        if f1 >= best[3]:
            best = (float(score), precision, recall, f1)
    return best


# ------------------------------------------------------------------------------------ image-level labels


def classification_results(
    classes: Sequence[str], truths: Sequence[set[int]], scores: Sequence[Sequence[float]]
) -> tuple[list[LabelResult], list[dict[str, Any]]]:
    """Per-label results and the confusion matrix for image-level labels."""
    results = []
    for index, name in enumerate(classes):
        scored = [(float(row[index]), index in truth) for row, truth in zip(scores, truths, strict=True)]
        positives = sum(1 for truth in truths if index in truth)
        threshold, precision, recall, f1 = best_threshold(scored, positives)
        results.append(LabelResult(name, threshold, precision, recall, f1, positives))
    confusion: list[dict[str, Any]] = []
    singles = [(next(iter(t)), row) for t, row in zip(truths, scores, strict=True) if len(t) == 1]
    for truth_index, truth_name in enumerate(classes):
        rows = [row for t, row in singles if t == truth_index]
        if not rows:
            continue
        for predicted_index, predicted_name in enumerate(classes):
            hits = sum(1 for row in rows if max(range(len(row)), key=row.__getitem__) == predicted_index)
            confusion.append(
                {"GroundTruthLabel": truth_name, "PredictedLabel": predicted_name, "Value": hits / len(rows)}
            )
    return results, confusion


# -------------------------------------------------------------------------------------- localization


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    from multicloud_cv.evaluation_detection import box_iou

    return float(box_iou(a, b))


def detection_results(
    classes: Sequence[str],
    truths: Sequence[Sequence[tuple[int, tuple[float, float, float, float]]]],
    found: Sequence[Sequence[Found]],
    sizes: Sequence[tuple[int, int]],
) -> list[LabelResult]:
    """Per-label results for boxes: ``truths[i]`` holds ``(label, pixel xyxy)`` of image ``i``, ``found[i]``
    the detector's normalised detections, ``sizes[i]`` the image's ``(width, height)``."""
    results = []
    for label, name in enumerate(classes):
        scored: list[tuple[float, bool]] = []
        positives = 0
        images = 0
        for boxes, detections, (width, height) in zip(truths, found, sizes, strict=True):
            gts = [xyxy for lab, xyxy in boxes if lab == label]
            positives += len(gts)
            images += bool(gts)
            taken = [False] * len(gts)
            mine = sorted((d for d in detections if d[0] == label), key=lambda d: d[1], reverse=True)
            for _, score, x0, y0, x1, y1 in mine:
                pixel = (x0 * width, y0 * height, x1 * width, y1 * height)
                best, best_iou = -1, 0.0
                for g, gt in enumerate(gts):
                    iou = _iou(pixel, gt)
                    if not taken[g] and iou > best_iou:
                        best, best_iou = g, iou
                hit = best >= 0 and best_iou >= 0.5
                if hit:
                    taken[best] = True
                scored.append((float(score), hit))
        threshold, precision, recall, f1 = best_threshold(scored, positives)
        results.append(LabelResult(name, threshold, precision, recall, f1, images))
    return results


# ------------------------------------------------------------------------------------------- summary


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def summary(
    *,
    version_arn: str,
    labels: Sequence[LabelResult],
    training_images: int,
    testing_images: int,
    confusion: list[dict[str, Any]] | None = None,
    average_precision: float | None = None,
) -> dict[str, Any]:
    """The summary file's content (see the module docstring)."""
    scored = [r for r in labels if r.images > 0] or list(labels)
    aggregated: dict[str, Any] = {
        "F1Score": _mean([r.f1 for r in scored]),
        "Precision": _mean([r.precision for r in scored]),
        "Recall": _mean([r.recall for r in scored]),
    }
    if confusion is not None:
        aggregated["ConfusionMatrix"] = confusion
    if average_precision is not None:
        aggregated["AveragePrecision"] = average_precision
        aggregated["AverageRecall"] = _mean([r.recall for r in scored])
    return {
        "Version": 1,
        "AggregatedEvaluationResults": aggregated,
        "EvaluationDetails": {
            "EvaluationEndTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f"),
            "Labels": [r.label for r in labels],
            "NumberOfTestingImages": testing_images,
            "NumberOfTrainingImages": training_images,
            "ProjectVersionArn": version_arn,
        },
        "LabelEvaluationResults": [
            {
                "Label": r.label,
                "Metrics": {"F1Score": r.f1, "Precision": r.precision, "Recall": r.recall, "Threshold": r.threshold},
                "NumberOfTestingImages": r.images,
            }
            for r in sorted(labels, key=lambda r: r.f1, reverse=True)
        ],
    }
