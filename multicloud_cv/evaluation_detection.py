"""Detection scores from our own code: COCO mAP through pycocotools, precision/recall by greedy matching.

Inputs are the canonical dataset (boxes in PIXELS of the original image, ``x_min, y_min,
x_max, y_max``), the images scored and one :class:`~multicloud_cv.schema.Prediction` per
image, in the same order (boxes NORMALISED to 0..1, multiplied here by the image's width
and height; the size comes from the record or else from the file header, never a decode).

What :func:`score_detection` reports (a plain dict, see its docstring for the keys):

* ``map`` (COCO AP averaged over IoU 0.50:0.05:0.95) and ``map50`` (AP at IoU 0.5),
  computed by ``pycocotools.cocoeval.COCOeval`` on COCO objects built in memory. Every
  detection counts for mAP whatever its confidence (that is how AP is defined: the
  precision/recall curve sweeps the confidence), up to ``max_detections`` per image.
* per class: ``ap`` (0.5:0.95) and ``ap50`` read from COCOeval's precision array, and
  precision / recall / F1 / TP / FP / FN at ``score_threshold`` and ``iou_threshold``;
  overall precision / recall / F1 from the summed counts (micro average).
* ``num_images``, ``num_boxes`` (ground truth), ``num_detections`` (after the per-image cap).

Conventions and the pycocotools quirks handled here:

* Labels are matched by class NAME (the dataset's), as in :mod:`multicloud_cv.evaluation`;
  a detection whose name the dataset does not know is a false positive in the overall
  precision (``unknown_detections``) and cannot enter any class's AP.
* Category ids are ``1..N`` (class index + 1); annotation ids start at 1 because
  COCOeval stores matches as ids and reads 0 as "unmatched".
* One area range covering every box (no small/medium/large split, whose COCO limits are
  for COCO-sized images), one ``maxDets`` value: ``max_detections`` (100 by default, as
  COCO). pycocotools applies maxDets per image *and class*; here the detections of each
  image are first cut to the ``max_detections`` most confident, so the cap is per image
  as COCO documents it, and precision/recall use the same cut.
* The COCO objects are built directly (not ``loadRes``, which crashes on an empty result
  list), so no prediction at all gives AP 0 for every class with ground truth.
* Images without ground-truth boxes are kept: they are valid negatives, every detection
  on them is a false positive (for AP as for precision).
* A class with no ground-truth box has no AP (pycocotools reports -1): it is ``None``
  here and left out of the mean; ``map``/``map50`` are ``None`` when no class has ground
  truth. Its detections still count as false positives in the overall precision.
* pycocotools prints progress from ``COCO()``, ``evaluate()`` and ``accumulate()``;
  stdout is redirected while it runs (process-wide, so score from one thread at a time)
  and the text logged at DEBUG. ``summarize()`` is never called (it prints and assumes
  the default three maxDets and four area ranges).
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
    from multicloud_cv.schema import Detection, Evaluation, Prediction

log = logging.getLogger(__name__)

#: COCO's IoU thresholds for mAP: 0.50, 0.55, ..., 0.95.
COCO_IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))

Xyxy = tuple[float, float, float, float]


def box_iou(a: Xyxy, b: Xyxy) -> float:
    """Intersection over union of two ``x_min, y_min, x_max, y_max`` boxes (continuous coordinates, as COCO)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Swallow pycocotools' prints (it writes to stdout unconditionally) and log them at DEBUG."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    if buffer.getvalue().strip():
        log.debug("pycocotools: %s", " | ".join(buffer.getvalue().split("\n")).strip(" |"))


def _pixel_box(detection: Detection, width: int, height: int) -> Xyxy:
    box = detection.box
    return (box.x_min * width, box.y_min * height, box.x_max * width, box.y_max * height)


def _gt_box(box: BoxAnnotation) -> Xyxy:
    return (box.x_min, box.y_min, box.x_max, box.y_max)


def _coco_map(
    classes: Sequence[str],
    sizes: Sequence[tuple[int, int]],
    truths: Sequence[Sequence[BoxAnnotation]],
    detections: Sequence[Sequence[tuple[int, float, Xyxy]]],
    max_detections: int,
) -> tuple[list[float | None], list[float | None]]:
    """Per-class AP@[.5:.95] and AP@.5 (``None`` for a class without ground truth) from COCOeval."""
    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    categories = [{"id": i + 1, "name": name} for i, name in enumerate(classes)]
    images = [{"id": n + 1, "width": w, "height": h} for n, (w, h) in enumerate(sizes)]
    gt_anns: list[dict[str, Any]] = []
    for n, boxes in enumerate(truths):
        for box in boxes:
            w, h = box.x_max - box.x_min, box.y_max - box.y_min
            gt_anns.append(
                {
                    "id": len(gt_anns) + 1,
                    "image_id": n + 1,
                    "category_id": box.label + 1,
                    "bbox": [box.x_min, box.y_min, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    dt_anns: list[dict[str, Any]] = []
    for n, found in enumerate(detections):
        for label, score, (x0, y0, x1, y1) in found:
            dt_anns.append(
                {
                    "id": len(dt_anns) + 1,
                    "image_id": n + 1,
                    "category_id": label + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "score": score,
                    "iscrowd": 0,
                }
            )
    with _quiet():
        coco_gt = COCO()
        coco_gt.dataset = {"images": images, "annotations": gt_anns, "categories": categories}
        coco_gt.createIndex()
        coco_dt = COCO()
        coco_dt.dataset = {"images": images, "annotations": dt_anns, "categories": categories}
        coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.params.imgIds = [image["id"] for image in images]
        evaluator.params.catIds = [category["id"] for category in categories]
        evaluator.params.iouThrs = np.array(COCO_IOU_THRESHOLDS)
        evaluator.params.maxDets = [max_detections]
        evaluator.params.areaRng = [[0.0, float("inf")]]
        evaluator.params.areaRngLbl = ["all"]
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"]  # [T iou thresholds, R recall points, K classes, A areas, M maxDets]
    ap: list[float | None] = []
    ap50: list[float | None] = []
    for k in range(len(classes)):
        curve = precision[:, :, k, 0, -1]
        valid = curve[curve > -1]
        ap.append(float(valid.mean()) if valid.size else None)
        at50 = curve[0][curve[0] > -1]
        ap50.append(float(at50.mean()) if at50.size else None)
    return ap, ap50


def _mean(values: Sequence[float | None]) -> float | None:
    scored = [v for v in values if v is not None]
    return sum(scored) / len(scored) if scored else None


def score_detection(
    dataset: Dataset,
    images: Sequence[ImageRecord],
    predictions: Sequence[Prediction],
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
    max_detections: int = 100,
) -> dict[str, Any]:
    """Score detections: COCO mAP (pycocotools) and precision/recall at a confidence threshold.

    ``predictions[i]`` is the prediction for ``images[i]``. Returns a dict with ``task``
    (``"detection"``), ``num_images``, ``num_boxes``, ``num_detections``, ``map``, ``map50``
    (``None`` when no class has ground truth), ``precision``, ``recall``, ``f1``, ``tp``,
    ``fp``, ``fn`` (detections with confidence >= ``score_threshold`` greedily matched, most
    confident first, to the unmatched ground-truth box of the same class with the highest
    IoU, a match needing IoU >= ``iou_threshold``), ``unknown_detections``, ``labels`` (class
    names in index order), ``per_label`` (one dict per class: ``name``, ``index``, ``ap``,
    ``ap50``, ``precision``, ``recall``, ``f1``, ``support`` = ground-truth boxes, ``tp``,
    ``fp``, ``fn``) and the three settings. ``ap``/``ap50`` are ``None`` for a class without
    ground truth and left out of ``map``/``map50``.
    """
    from multicloud_cv.datasets.media import image_size

    if len(images) != len(predictions):
        raise ValueError(f"{len(images)} images but {len(predictions)} predictions")
    if max_detections < 1:
        raise ValueError("max_detections must be at least 1")
    classes = list(dataset.classes)
    index = {name: i for i, name in enumerate(classes)}
    sizes = [image_size(dataset, image) for image in images]
    truths = [list(image.boxes) for image in images]
    for image, boxes in zip(images, truths, strict=True):
        for box in boxes:
            if not 0 <= box.label < len(classes):
                raise ValueError(f"{image.path}: box label {box.label} out of range for {len(classes)} classes")

    detections: list[list[tuple[int, float, Xyxy]]] = []
    unknown = 0
    kept = 0
    for prediction, (width, height) in zip(predictions, sizes, strict=True):
        ranked = sorted(prediction.detections, key=lambda d: d.confidence, reverse=True)[:max_detections]
        known = []
        for det in ranked:
            label = index.get(det.name)
            if label is None:
                unknown += det.confidence >= score_threshold
                continue
            known.append((label, det.confidence, _pixel_box(det, width, height)))
        kept += len(ranked)
        detections.append(known)

    ap, ap50 = _coco_map(classes, sizes, truths, detections, max_detections)

    counts = [[0, 0, 0] for _ in classes]  # tp, fp, fn per class
    for boxes, found in zip(truths, detections, strict=True):
        for label in range(len(classes)):
            gts = [_gt_box(b) for b in boxes if b.label == label]
            taken = [False] * len(gts)
            for det_label, score, xyxy in found:  # already most confident first
                if det_label != label or score < score_threshold:
                    continue
                best, best_iou = -1, 0.0
                for g, gt in enumerate(gts):
                    iou = box_iou(xyxy, gt)
                    if not taken[g] and iou > best_iou:
                        best, best_iou = g, iou
                if best >= 0 and best_iou >= iou_threshold:
                    taken[best] = True
                    counts[label][0] += 1
                else:
                    counts[label][1] += 1
            counts[label][2] += taken.count(False)

    per_label = []
    for i, name in enumerate(classes):
        tp, fp, fn = counts[i]
        p, r, f = _prf(tp, fp, fn)
        per_label.append(
            {
                "name": name,
                "index": i,
                "ap": ap[i],
                "ap50": ap50[i],
                "precision": p,
                "recall": r,
                "f1": f,
                "support": tp + fn,
                "tp": tp,
                "fp": fp,
                "fn": fn,
            }
        )
    tp = sum(c[0] for c in counts)
    fp = sum(c[1] for c in counts) + unknown
    fn = sum(c[2] for c in counts)
    precision, recall, f1 = _prf(tp, fp, fn)
    return {
        "task": "detection",
        "num_images": len(images),
        "num_boxes": sum(len(boxes) for boxes in truths),
        "num_detections": kept,
        "map": _mean(ap),
        "map50": _mean(ap50),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "unknown_detections": unknown,
        "labels": classes,
        "per_label": per_label,
        "iou_threshold": iou_threshold,
        "score_threshold": score_threshold,
        "max_detections": max_detections,
    }


def detection_evaluation(scores: dict[str, Any]) -> Evaluation:
    """The shared :class:`~multicloud_cv.schema.Evaluation` for a :func:`score_detection` result.

    ``map``/``map50`` and per-class ``ap`` carry over; ``macro_f1`` is the mean F1 of the
    classes with ground truth; ``threshold`` is the score threshold; overall precision and
    recall, the box count and the IoU threshold carry over too.
    """
    from multicloud_cv.schema import Evaluation, PerLabel

    per_label = [
        PerLabel(
            name=row["name"],
            index=row["index"],
            precision=row["precision"],
            recall=row["recall"],
            f1=row["f1"],
            support=row["support"],
            ap=row["ap"],
            ap50=row["ap50"],
        )
        for row in scores["per_label"]
    ]
    supported = [row.f1 for row in per_label if row.support > 0]
    return Evaluation(
        task="detection",
        num_images=scores["num_images"],
        macro_f1=sum(supported) / len(supported) if supported else 0.0,
        per_label=per_label,
        labels=list(scores["labels"]),
        map50=scores["map50"],
        map=scores["map"],
        threshold=scores["score_threshold"],
        precision=scores["precision"],
        recall=scores["recall"],
        num_boxes=scores["num_boxes"],
        iou_threshold=scores["iou_threshold"],
    )
