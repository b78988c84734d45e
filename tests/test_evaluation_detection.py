"""Detection scoring: COCO mAP through pycocotools and greedy precision/recall, on hand-built cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.evaluation_detection import COCO_IOU_THRESHOLDS, detection_evaluation, score_detection
from multicloud_cv.schema import Box, Detection, Prediction

CLASSES = ["cat", "dog", "fox"]
W, H = 200, 100


def dataset(boxes_per_image: list[list[tuple[int, float, float, float, float]]]) -> Dataset:
    images = [
        ImageRecord(f"img_{n}.jpg", boxes=tuple(BoxAnnotation(*b) for b in boxes), split="test", width=W, height=H)
        for n, boxes in enumerate(boxes_per_image)
    ]
    return Dataset(root=Path("/nonexistent"), classes=list(CLASSES), images=images, task="detection")


def det(name: str, confidence: float, x0: float, y0: float, x1: float, y1: float) -> Detection:
    """A detection from a PIXEL box (normalised here, as a provider answers)."""
    return Detection(
        name=name,
        index=CLASSES.index(name) if name in CLASSES else 0,
        confidence=confidence,
        box=Box(x_min=x0 / W, y_min=y0 / H, x_max=x1 / W, y_max=y1 / H),
    )


def pred(*detections: Detection) -> Prediction:
    return Prediction(provider="test", model_id="m", task="detection", detections=list(detections), latency_ms=1.0)


def perfect(ds: Dataset) -> list[Prediction]:
    return [
        pred(*(det(CLASSES[b.label], 0.9, b.x_min, b.y_min, b.x_max, b.y_max) for b in image.boxes))
        for image in ds.images
    ]


GT = [
    [(0, 10, 10, 60, 60), (1, 100, 20, 180, 90)],
    [(2, 20, 30, 70, 80)],
    [(0, 120, 10, 190, 50), (0, 5, 5, 45, 95)],
]


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """An independent IoU, written from the definition, to cross-check pycocotools."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_perfect_predictions_score_one() -> None:
    ds = dataset(GT)
    scores = score_detection(ds, ds.images, perfect(ds))
    assert scores["map50"] == pytest.approx(1.0)
    assert scores["map"] == pytest.approx(1.0)
    assert (scores["precision"], scores["recall"], scores["f1"]) == (1.0, 1.0, 1.0)
    assert scores["num_images"] == 3 and scores["num_boxes"] == 5 and scores["num_detections"] == 5
    assert [row["support"] for row in scores["per_label"]] == [3, 1, 1]
    assert all(row["ap"] == pytest.approx(1.0) and row["ap50"] == pytest.approx(1.0) for row in scores["per_label"])


def test_shifted_boxes_pass_at_half_but_not_at_coco_thresholds() -> None:
    ds = dataset(GT)
    shifted = []
    for image in ds.images:
        dets = []
        for b in image.boxes:
            dx = 0.125 * (b.x_max - b.x_min)
            dets.append(det(CLASSES[b.label], 0.9, b.x_min + dx, b.y_min, b.x_max + dx, b.y_max))
        shifted.append(pred(*dets))
    # a horizontal shift of a fraction s of the width gives IoU (1 - s) / (1 + s); s = 0.125 -> 0.778
    ious = [
        iou(
            (b.x_min, b.y_min, b.x_max, b.y_max),
            (b.x_min + 0.125 * (b.x_max - b.x_min), b.y_min, b.x_max + 0.125 * (b.x_max - b.x_min), b.y_max),
        )
        for image in ds.images
        for b in image.boxes
    ]
    assert all(v == pytest.approx(7 / 9) for v in ious)
    scores = score_detection(ds, ds.images, shifted)
    assert scores["map50"] == pytest.approx(1.0)
    expected = sum(t <= 7 / 9 for t in COCO_IOU_THRESHOLDS) / len(COCO_IOU_THRESHOLDS)
    assert scores["map"] == pytest.approx(expected)  # 0.5 .. 0.75 pass: 6 of 10 thresholds
    assert scores["map"] < 1.0


def test_iou_near_0_6_cross_checked_independently() -> None:
    ds = dataset([[(1, 40, 10, 140, 60)]])
    guess = (40.0, 10.0, 140.0, 90.0)  # taller box, same top: IoU = 50 / 80
    value = iou((40, 10, 140, 60), guess)
    assert 0.6 < value < 0.65
    scores = score_detection(ds, ds.images, [pred(det("dog", 0.8, *guess))])
    assert scores["map50"] == pytest.approx(1.0)
    assert scores["map"] == pytest.approx(sum(t <= value for t in COCO_IOU_THRESHOLDS) / 10)  # 0.5, 0.55, 0.6
    assert scores["map"] == pytest.approx(0.3)
    dog = scores["per_label"][1]
    assert dog["ap"] == pytest.approx(0.3) and dog["ap50"] == pytest.approx(1.0)
    assert scores["per_label"][0]["ap"] is None and scores["per_label"][2]["ap"] is None  # no ground truth


def test_all_wrong_labels_score_zero() -> None:
    ds = dataset(GT)
    wrong = [
        pred(*(det(CLASSES[(b.label + 1) % 3], 0.9, b.x_min, b.y_min, b.x_max, b.y_max) for b in image.boxes))
        for image in ds.images
    ]
    scores = score_detection(ds, ds.images, wrong)
    assert scores["map"] == 0.0 and scores["map50"] == 0.0
    assert scores["precision"] == 0.0 and scores["recall"] == 0.0
    assert scores["tp"] == 0 and scores["fp"] == 5 and scores["fn"] == 5


def test_empty_predictions_give_zero_not_a_crash() -> None:
    ds = dataset(GT)
    scores = score_detection(ds, ds.images, [pred() for _ in ds.images])
    assert scores["map"] == 0.0 and scores["map50"] == 0.0
    assert scores["precision"] == 0.0 and scores["recall"] == 0.0 and scores["fn"] == 5
    assert scores["num_detections"] == 0


def test_hand_computed_precision_recall() -> None:
    # image 0: cat matched (IoU 1), a duplicate cat on the same box (FP), dog below the score threshold (FN),
    # image 1: fox found but with IoU < 0.5 (FP + FN), image 2: one cat found (TP), one missed (FN).
    ds = dataset(GT)
    predictions = [
        pred(det("cat", 0.9, 10, 10, 60, 60), det("cat", 0.8, 12, 10, 60, 60), det("dog", 0.3, 100, 20, 180, 90)),
        pred(det("fox", 0.7, 45, 55, 95, 99)),
        pred(det("cat", 0.6, 120, 10, 190, 50)),
    ]
    scores = score_detection(ds, ds.images, predictions, score_threshold=0.5)
    assert (scores["tp"], scores["fp"], scores["fn"]) == (2, 2, 3)
    assert scores["precision"] == pytest.approx(2 / 4)
    assert scores["recall"] == pytest.approx(2 / 5)
    assert scores["f1"] == pytest.approx(2 * 0.5 * 0.4 / 0.9)
    cat, dog, fox = scores["per_label"]
    assert (cat["tp"], cat["fp"], cat["fn"]) == (2, 1, 1)
    assert cat["precision"] == pytest.approx(2 / 3) and cat["recall"] == pytest.approx(2 / 3)
    assert (dog["tp"], dog["fp"], dog["fn"]) == (0, 0, 1) and dog["precision"] == 0.0
    assert (fox["tp"], fox["fp"], fox["fn"]) == (0, 1, 1)
    # lowering the threshold lets the dog in: one more TP
    low = score_detection(ds, ds.images, predictions, score_threshold=0.2)
    assert (low["tp"], low["fp"], low["fn"]) == (3, 2, 2)
    # the low-confidence dog still counts for AP: AP is over all confidences
    assert scores["per_label"][1]["ap50"] == pytest.approx(1.0)


def test_negative_image_false_positive_lowers_precision() -> None:
    ds = dataset([[(0, 10, 10, 60, 60)], []])
    clean = score_detection(ds, ds.images, [pred(det("cat", 0.9, 10, 10, 60, 60)), pred()])
    assert clean["precision"] == 1.0 and clean["map50"] == pytest.approx(1.0)
    noisy = score_detection(
        ds, ds.images, [pred(det("cat", 0.9, 10, 10, 60, 60)), pred(det("cat", 0.95, 100, 10, 150, 60))]
    )
    assert noisy["num_images"] == 2 and noisy["num_boxes"] == 1
    assert noisy["precision"] == pytest.approx(0.5) and noisy["recall"] == 1.0
    # the false positive is more confident than the true one: AP falls too
    assert noisy["map50"] is not None and noisy["map50"] < 1.0


def test_unknown_class_name_is_a_false_positive() -> None:
    ds = dataset([[(0, 10, 10, 60, 60)]])
    scores = score_detection(ds, ds.images, [pred(det("cat", 0.9, 10, 10, 60, 60), det("wolf", 0.9, 0, 0, 5, 5))])
    assert scores["unknown_detections"] == 1
    assert scores["precision"] == pytest.approx(0.5)
    assert scores["map50"] == pytest.approx(1.0)  # AP is per class: the unknown name enters none


def test_max_detections_caps_per_image() -> None:
    ds = dataset([[(0, 10, 10, 60, 60)]])
    dets = [det("cat", 0.9 - i * 0.01, 100 + i, 0, 110 + i, 10) for i in range(5)] + [det("cat", 0.5, 10, 10, 60, 60)]
    assert score_detection(ds, ds.images, [pred(*dets)])["map50"] > 0.0
    capped = score_detection(ds, ds.images, [pred(*dets)], max_detections=5)
    assert capped["map50"] == 0.0 and capped["num_detections"] == 5


def test_no_ground_truth_at_all_gives_no_map() -> None:
    ds = dataset([[], []])
    scores = score_detection(ds, ds.images, [pred(det("cat", 0.9, 0, 0, 10, 10)), pred()])
    assert scores["map"] is None and scores["map50"] is None
    assert scores["fp"] == 1 and scores["precision"] == 0.0


def test_sizes_come_from_the_file_header_when_missing(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (W, H)).save(tmp_path / "a.png")
    ds = Dataset(
        root=tmp_path,
        classes=list(CLASSES),
        images=[ImageRecord("a.png", boxes=(BoxAnnotation(0, 10, 10, 60, 60),), split="test")],
        task="detection",
    )
    scores = score_detection(ds, ds.images, [pred(det("cat", 0.9, 10, 10, 60, 60))])
    assert scores["map"] == pytest.approx(1.0)


def test_pycocotools_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    ds = dataset(GT)
    score_detection(ds, ds.images, perfect(ds))
    assert capsys.readouterr().out == ""


def test_mismatched_lengths_rejected() -> None:
    ds = dataset(GT)
    with pytest.raises(ValueError, match="3 images but 1 predictions"):
        score_detection(ds, ds.images, [pred()])


def test_as_shared_evaluation() -> None:
    ds = dataset(GT)
    evaluation = detection_evaluation(score_detection(ds, ds.images, perfect(ds)))
    assert evaluation.task == "detection" and evaluation.map == pytest.approx(1.0)
    assert evaluation.map50 == pytest.approx(1.0) and evaluation.threshold == 0.5
    assert [row.ap for row in evaluation.per_label] == pytest.approx([1.0, 1.0, 1.0])
    assert evaluation.labels == CLASSES and evaluation.macro_f1 == 1.0


class _OraclePredictor:
    """Answers each image with its ground-truth boxes (confidence 0.9) plus one low-confidence false box.

    Stands in for a provider's Predictor to test the scoring path of evaluate_endpoint: what it
    requests (a low score floor) and how it scores, not a cloud.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.by_path = {dataset.absolute(image): image for image in dataset.images}
        self.thresholds: list[float | None] = []

    def predict(self, endpoint_id: str, path: Path, top_k: int | None = None, threshold: float | None = None):
        self.thresholds.append(threshold)
        image = self.by_path[Path(path)]
        w, h = image.width, image.height
        found = [
            Detection(
                name=self.dataset.classes[b.label],
                index=b.label,
                confidence=0.9,
                box=Box(x_min=b.x_min / w, y_min=b.y_min / h, x_max=b.x_max / w, y_max=b.y_max / h),
            )
            for b in image.boxes
        ]
        found.append(
            Detection(name=self.dataset.classes[0], index=0, confidence=0.1,
                      box=Box(x_min=0.0, y_min=0.0, x_max=0.05, y_max=0.05))
        )  # fmt: skip
        return Prediction(provider="oracle", model_id="m", task="detection", detections=found, latency_ms=1.0)


def test_evaluate_endpoint_scores_detection_with_a_low_score_floor(tmp_path: Path) -> None:
    from multicloud_cv.evaluation import DETECTION_SCORE_FLOOR, evaluate_endpoint
    from multicloud_cv.testing.datasets import make_detection_dataset
    from multicloud_cv.testing.suite import validate_document

    dataset = make_detection_dataset(tmp_path / "det")
    oracle = _OraclePredictor(dataset)
    result = evaluate_endpoint(oracle, "ep", dataset, split="test", threshold=0.5)  # type: ignore[arg-type]
    validate_document("evaluation", result)
    assert set(oracle.thresholds) == {DETECTION_SCORE_FLOOR}
    assert result.task == "detection" and result.map50 is not None and result.map50 > 0.95
    assert result.precision == 1.0 and result.recall == 1.0  # the 0.1 false box is under the 0.5 threshold
    assert result.num_boxes == sum(len(i.boxes) for i in dataset.split("test"))
    assert all(row.ap50 is not None for row in result.per_label if row.support)
