"""One evaluation code for every provider.

Scores are computed here, from the predictions a provider's Predictor returned for the
test images, never taken from the provider. Classification: accuracy, per-label
precision / recall / F1 / support, macro F1 and the confusion matrix (rows true class,
columns predicted). Multi-label: exact-match accuracy and per-label P/R/F1 at a threshold.

Labels are matched by class NAME (the dataset's), so a provider whose indices differ is
still scored right; a predicted name the dataset does not know counts as a wrong answer.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from multicloud_cv.errors import DatasetError

if TYPE_CHECKING:
    from multicloud_cv.datasets.model import Dataset, ImageRecord
    from multicloud_cv.interfaces import Predictor
    from multicloud_cv.schema import Evaluation, PerLabel, Prediction


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _macro_f1(per_label: Sequence[PerLabel]) -> float:
    """Mean F1 over the classes that occur in the truth (classes with no support are left out)."""
    scored = [row.f1 for row in per_label if row.support > 0]
    return sum(scored) / len(scored) if scored else 0.0


def score_classification(classes: Sequence[str], truths: Sequence[int], predicted: Sequence[str | None]) -> Evaluation:
    """Single-label scores from true class indices and predicted class names (``None`` = no answer)."""
    from multicloud_cv.schema import Evaluation, PerLabel

    if len(truths) != len(predicted):
        raise ValueError("truths and predictions differ in length")
    index = {name: i for i, name in enumerate(classes)}
    n = len(classes)
    confusion = [[0] * n for _ in range(n)]
    unknown = [0] * n
    for truth, name in zip(truths, predicted, strict=True):
        if name is not None and name in index:
            confusion[truth][index[name]] += 1
        else:
            unknown[truth] += 1
    per_label: list[PerLabel] = []
    for i, name in enumerate(classes):
        tp = confusion[i][i]
        fp = sum(confusion[r][i] for r in range(n)) - tp
        support = sum(confusion[i]) + unknown[i]
        fn = support - tp
        p, r, f = _prf(tp, fp, fn)
        per_label.append(PerLabel(name=name, index=i, precision=p, recall=r, f1=f, support=support))
    total = len(truths)
    correct = sum(confusion[i][i] for i in range(n))
    return Evaluation(
        task="classification",
        num_images=total,
        accuracy=correct / total if total else 0.0,
        macro_f1=_macro_f1(per_label),
        per_label=per_label,
        labels=list(classes),
        confusion=confusion,
    )


def score_multilabel(
    classes: Sequence[str], truths: Sequence[Sequence[int]], predicted: Sequence[set[str]], threshold: float
) -> Evaluation:
    """Multi-label scores: exact-match accuracy and per-label P/R/F1 of the names predicted at ``threshold``."""
    from multicloud_cv.schema import Evaluation, PerLabel

    per_label = []
    exact = 0
    for truth, names in zip(truths, predicted, strict=True):
        exact += {classes[i] for i in truth} == set(names)
    for i, name in enumerate(classes):
        tp = sum(1 for t, p in zip(truths, predicted, strict=True) if i in t and name in p)
        fp = sum(1 for t, p in zip(truths, predicted, strict=True) if i not in t and name in p)
        fn = sum(1 for t, p in zip(truths, predicted, strict=True) if i in t and name not in p)
        pr, rc, f1 = _prf(tp, fp, fn)
        per_label.append(PerLabel(name=name, index=i, precision=pr, recall=rc, f1=f1, support=tp + fn))
    total = len(truths)
    return Evaluation(
        task="multilabel",
        num_images=total,
        accuracy=exact / total if total else 0.0,
        macro_f1=_macro_f1(per_label),
        per_label=per_label,
        labels=list(classes),
        threshold=threshold,
    )


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def evaluation_images(dataset: Dataset, split: str = "test") -> list[ImageRecord]:
    """The images to score: the named split, or every image for ``split="all"``.

    A dataset without the split is an error, not a silent fallback: scoring the images a
    model was trained on would report training accuracy as held-out accuracy.
    """
    if split == "all":
        return list(dataset.images)
    images = dataset.split(split)
    if images:
        return images
    raise DatasetError(
        f"dataset {dataset.root} has no '{split}' split (it has: {', '.join(sorted(dataset.splits))}); "
        "add a test/ folder of held-out images, or pass --split all to score every image knowingly"
    )


#: Detection predictions are requested down to this confidence when scoring, so mAP sees the
#: whole precision-recall curve; precision and recall are then read at the caller's threshold.
DETECTION_SCORE_FLOOR = 0.05


def evaluate_endpoint(
    predictor: Predictor,
    endpoint_id: str,
    dataset: Dataset,
    split: str = "test",
    threshold: float = 0.5,
    concurrency: int = 4,
    on_progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Score an endpoint on a dataset split through the provider's Predictor.

    Classification: top-1; multi-label: labels at ``threshold``; detection: boxes requested
    down to :data:`DETECTION_SCORE_FLOOR`, COCO mAP / mAP@.5 through pycocotools, precision and
    recall at ``threshold`` and IoU 0.5 (:mod:`multicloud_cv.evaluation_detection`).
    """
    from concurrent.futures import ThreadPoolExecutor

    images = evaluation_images(dataset, split)
    if not images:
        raise DatasetError(f"dataset {dataset.root} has no images to evaluate")
    task = dataset.task
    paths = [dataset.absolute(image) for image in images]
    done = 0
    lock = threading.Lock()

    def one(path: Any) -> Prediction:
        nonlocal done
        if task == "detection":  # every box down to a low score: mAP needs the whole precision-recall curve
            result = predictor.predict(endpoint_id, path, threshold=DETECTION_SCORE_FLOOR)
        elif task == "multilabel":
            result = predictor.predict(endpoint_id, path, threshold=threshold)
        else:
            result = predictor.predict(endpoint_id, path, top_k=1)
        with lock:
            done += 1
            if on_progress is not None:
                on_progress(done, len(paths))
        return result

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        predictions = list(pool.map(one, paths))
    if task == "detection":
        from multicloud_cv.evaluation_detection import detection_evaluation, score_detection

        evaluation = detection_evaluation(score_detection(dataset, images, predictions, score_threshold=threshold))
    elif task == "multilabel":
        evaluation = score_multilabel(
            dataset.classes,
            [img.labels for img in images],
            [{lab.name for lab in p.labels if lab.confidence >= threshold} for p in predictions],
            threshold,
        )
    else:
        evaluation = score_classification(
            dataset.classes,
            [img.labels[0] for img in images],
            [p.labels[0].name if p.labels else None for p in predictions],
        )
    latencies = sorted(p.latency_ms for p in predictions)
    first = predictions[0] if predictions else None
    return evaluation.model_copy(
        update={
            "provider": first.provider if first else None,
            "model_id": first.model_id if first else None,
            "endpoint_id": endpoint_id,
            "latency_ms_p50": _percentile(latencies, 50),
            "latency_ms_p95": _percentile(latencies, 95),
            "emulated": any(p.emulated for p in predictions),
        }
    )
