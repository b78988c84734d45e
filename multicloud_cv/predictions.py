"""Turning a service's raw scores and boxes into the shared schema, the same way for every provider.

Cloud plugins get probabilities per class or rows of boxes back from their service; these helpers
apply one rule for ``top_k`` and ``threshold`` so that no two providers answer the same request
differently (the local endpoint applies the same defaults server-side):

* classification: the ``top_k`` (default 5) classes by confidence, then those at or above
  ``threshold`` when one is given;
* multilabel: every class at or above ``threshold`` (default 0.5), at most ``top_k`` when given;
* detection: every box at or above ``threshold`` (default 0.5), at most ``top_k`` (default 100).

Confidences are clipped to 0..1 and boxes to the image (normalised ``x_min, y_min, x_max, y_max``);
a box that is empty after clipping is dropped. Ties keep the service's order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multicloud_cv.schema import Detection, LabelScore

DEFAULT_TOP_K = 5
DEFAULT_MULTILABEL_THRESHOLD = 0.5
DEFAULT_DETECTION_THRESHOLD = 0.5
DEFAULT_MAX_DETECTIONS = 100


def _clip(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


def labels_from_scores(
    scores: Sequence[float], classes: Sequence[str], task: str, top_k: int | None = None, threshold: float | None = None
) -> list[LabelScore]:
    """Class scores (one per class, in class-index order) as sorted :class:`LabelScore` values."""
    from multicloud_cv.schema import LabelScore

    if len(scores) != len(classes):
        raise ValueError(f"the service answered {len(scores)} scores for a model of {len(classes)} classes")
    ranked = sorted(range(len(scores)), key=lambda i: -_clip(scores[i]))
    if task == "multilabel":
        limit = DEFAULT_MULTILABEL_THRESHOLD if threshold is None else threshold
        chosen = [i for i in ranked if _clip(scores[i]) >= limit][: top_k or len(ranked)]
    else:
        chosen = ranked[: top_k or DEFAULT_TOP_K]
        if threshold is not None:
            chosen = [i for i in chosen if _clip(scores[i]) >= threshold]
    return [LabelScore(name=classes[i], index=i, confidence=_clip(scores[i])) for i in chosen]


def detections_from_boxes(
    rows: Iterable[tuple[int, float, float, float, float, float]],
    classes: Sequence[str],
    top_k: int | None = None,
    threshold: float | None = None,
) -> list[Detection]:
    """``(class index, score, x_min, y_min, x_max, y_max)`` rows, normalised, as sorted :class:`Detection` values.

    Rows naming a class the model does not have raise :class:`ValueError` (the caller turns it into a
    service error naming the endpoint).
    """
    from multicloud_cv.schema import Box, Detection

    limit = DEFAULT_DETECTION_THRESHOLD if threshold is None else threshold
    found = []
    for index, score, x0, y0, x1, y1 in rows:
        if not 0 <= index < len(classes):
            raise ValueError(f"the service answered class {index} for a model of {len(classes)} classes")
        confidence = _clip(score)
        box = (_clip(x0), _clip(y0), _clip(x1), _clip(y1))
        if confidence < limit or box[2] <= box[0] or box[3] <= box[1]:
            continue
        found.append(
            Detection(
                name=classes[index],
                index=index,
                confidence=confidence,
                box=Box(x_min=box[0], y_min=box[1], x_max=box[2], y_max=box[3]),
            )
        )
    found.sort(key=lambda d: -d.confidence)
    return found[: top_k or DEFAULT_MAX_DETECTIONS]
