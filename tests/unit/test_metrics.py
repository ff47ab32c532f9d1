"""Metrics against hand-computed values and against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from components.evaluation.metrics import classification_metrics, confusion_matrix, regression_metrics

# 3 classes, 8 samples
Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2])
Y_PRED = np.array([0, 1, 0, 1, 2, 2, 2, 0])


def test_confusion_matrix_rows_are_true_classes():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    np.testing.assert_array_equal(cm, [[2, 1, 0], [0, 1, 1], [1, 0, 2]])
    np.testing.assert_array_equal(cm, skm.confusion_matrix(Y_TRUE, Y_PRED, labels=[0, 1, 2]))


def test_classification_metrics_by_hand():
    m = classification_metrics(Y_TRUE, Y_PRED, 3)
    # per class: precision 2/3, 1/2, 2/3; recall 2/3, 1/2, 2/3; f1 equal to both
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["precision_macro"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert m["recall_macro"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert m["f1_macro"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    for key in ("precision_micro", "recall_micro", "f1_micro"):
        assert m[key] == pytest.approx(5 / 8)  # single-label: micro = accuracy


def test_binary_metrics_by_hand():
    # tp=3, fp=1, fn=2, tn=4 for class 1
    y_true = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    y_pred = np.array([1, 1, 1, 0, 0, 1, 0, 0, 0, 0])
    m = classification_metrics(y_true, y_pred, 2)
    p1, r1 = 3 / 4, 3 / 5
    p0, r0 = 4 / 6, 4 / 5
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["precision_macro"] == pytest.approx((p0 + p1) / 2)
    assert m["recall_macro"] == pytest.approx((r0 + r1) / 2)
    assert m["f1_macro"] == pytest.approx((2 * p0 * r0 / (p0 + r0) + 2 * p1 * r1 / (p1 + r1)) / 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_macro_and_micro_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 5, size=200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 5, size=200))
    ours = classification_metrics(y_true, y_pred, 5)
    labels = list(range(5))
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    for avg in ("macro", "micro"):
        p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg, zero_division=0)
        assert ours[f"precision_{avg}"] == pytest.approx(p)
        assert ours[f"recall_{avg}"] == pytest.approx(r)
        assert ours[f"f1_{avg}"] == pytest.approx(f)


def test_zero_division_gives_zero_like_sklearn():
    # class 2 is never predicted and never true; class 1 is never predicted
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 0, 0, 0])
    m = classification_metrics(y_true, y_pred, 3)
    assert m["precision_macro"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert m["recall_macro"] == pytest.approx((1.0 + 0 + 0) / 3)
    p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=[0, 1, 2], average="macro", zero_division=0)
    assert (m["precision_macro"], m["recall_macro"], m["f1_macro"]) == pytest.approx((p, r, f))


def test_classification_input_errors():
    with pytest.raises(ValueError, match=r"y_pred labels must be in \[0, 3\), got range \[0, 3\]"):
        classification_metrics(np.array([0, 1]), np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="same length, got 2 and 3"):
        classification_metrics(np.array([0, 1]), np.array([0, 1, 1]), 2)
    with pytest.raises(ValueError, match="integer class labels"):
        classification_metrics(np.array([0.5, 1.0]), np.array([0, 1]), 2)


def test_regression_metrics_by_hand():
    y_true = np.array([3.0, -0.5, 2.0, 7.0])
    y_pred = np.array([2.5, 0.0, 2.0, 8.0])
    m = regression_metrics(y_true, y_pred)
    # errors 0.5, -0.5, 0, -1 -> SSE 1.5; mean 2.875, SST 29.1875
    assert m["sse"] == pytest.approx(1.5)
    assert m["mse"] == pytest.approx(0.375)
    assert m["rmse"] == pytest.approx(np.sqrt(0.375))
    assert m["mae"] == pytest.approx(0.5)
    assert m["r2"] == pytest.approx(1 - 1.5 / 29.1875)
    assert m["r2"] == pytest.approx(skm.r2_score(y_true, y_pred))
    assert regression_metrics(y_true, y_pred[:, None])["sse"] == pytest.approx(1.5)  # (n,) vs (n, 1)


def test_regression_multi_output_and_constant_target_match_sklearn():
    rng = np.random.default_rng(0)
    t, p = rng.normal(size=(30, 2)), rng.normal(size=(30, 2))
    m = regression_metrics(t, p)
    assert m["mse"] == pytest.approx(skm.mean_squared_error(t, p))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(t, p))
    assert m["r2"] == pytest.approx(skm.r2_score(t, p))
    assert regression_metrics(np.ones(3), np.ones(3))["r2"] == 1.0
    assert regression_metrics(np.ones(3), np.zeros(3))["r2"] == 0.0
    with pytest.raises(ValueError, match="same shape"):
        regression_metrics(np.ones(3), np.ones(4))
