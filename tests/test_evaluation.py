"""One metric code for every provider: checked against scikit-learn on the same answers."""

from __future__ import annotations

import random

import pytest

from multicloud_cv.evaluation import score_classification, score_multilabel

CLASSES = ["cat", "dog", "fox"]


def test_classification_matches_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(3)
    truths = [rng.randrange(3) for _ in range(200)]
    preds = [t if rng.random() < 0.7 else rng.randrange(3) for t in truths]
    ev = score_classification(CLASSES, truths, [CLASSES[p] for p in preds])
    assert ev.accuracy == pytest.approx(metrics.accuracy_score(truths, preds))
    assert ev.macro_f1 == pytest.approx(metrics.f1_score(truths, preds, average="macro"))
    p, r, f, s = metrics.precision_recall_fscore_support(truths, preds, labels=[0, 1, 2], zero_division=0)
    for i, row in enumerate(ev.per_label):
        assert (row.precision, row.recall, row.f1, row.support) == pytest.approx((p[i], r[i], f[i], s[i]))
    assert ev.confusion == metrics.confusion_matrix(truths, preds, labels=[0, 1, 2]).tolist()


def test_unknown_or_missing_answer_counts_as_wrong() -> None:
    ev = score_classification(CLASSES, [0, 1, 2], ["cat", "wolf", None])
    assert ev.accuracy == pytest.approx(1 / 3)
    assert ev.per_label[1].recall == 0.0 and ev.per_label[1].support == 1
    assert sum(map(sum, ev.confusion or [])) == 1  # only answers with a known class enter the matrix


def test_multilabel_matches_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    truths = [(0,), (0, 1), (2,), (1, 2), ()]
    predicted = [{"cat"}, {"cat"}, {"fox", "dog"}, {"dog", "fox"}, set()]
    ev = score_multilabel(CLASSES, truths, predicted, threshold=0.5)
    y_true = [[int(i in t) for i in range(3)] for t in truths]
    y_pred = [[int(c in p) for c in CLASSES] for p in predicted]
    assert ev.accuracy == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    assert ev.macro_f1 == pytest.approx(metrics.f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert ev.threshold == 0.5
