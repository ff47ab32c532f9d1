"""The test-set report and the leaderboard, against hand-computed values and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from components.evaluation.leaderboard import leaderboard
from components.evaluation.outcome import TrialOutcome
from components.evaluation.report import holdout_report, roc_auc, roc_curve


def test_roc_auc_by_hand_and_against_sklearn():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    # Of the 4 (positive, negative) pairs, 3 are ordered right: AUC 0.75.
    assert roc_auc(y == 1, s) == pytest.approx(0.75)
    fpr, tpr = roc_curve(y == 1, s)
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0] and tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(y * 0.3 + rng.random(300), 1)  # many ties
    assert roc_auc(y == 1, s) == pytest.approx(roc_auc_score(y, s))


def test_binary_report_has_per_class_metrics_auc_and_images():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 2)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(np.int64)
    model = LogisticRegression().fit(x, y)
    report = holdout_report(model, x, y, "classification", 1, ["benign", "malignant"])
    m = report.metrics
    pred = model.predict(x)
    tp = int(((pred == 1) & (y == 1)).sum())
    assert m["test_precision.malignant"] == pytest.approx(tp / (pred == 1).sum())
    assert m["test_recall.malignant"] == pytest.approx(tp / (y == 1).sum())
    assert m["test_roc_auc"] == pytest.approx(roc_auc_score(y, model.predict_proba(x)[:, 1]))
    assert set(report.images) == {"confusion_matrix.png", "roc_curve.png"}
    assert all(png.startswith(b"\x89PNG") for png in report.images.values())


def test_regression_report_has_no_images():
    x = np.arange(10, dtype=np.float32).reshape(-1, 1)
    y = 2 * x[:, 0] + 1

    class Line:
        def predict(self, inputs):
            return 2 * inputs[:, 0] + 1

    report = holdout_report(Line(), x, y, "regression", 1)
    assert report.images == {} and report.metrics["test_mse"] == pytest.approx(0.0)


def test_leaderboard_ranks_best_first_and_failures_last():
    outcomes = [
        TrialOutcome("a", {"lr": 0.1}, [{}] * 3, "/ck/a", metrics={"val_loss": 0.5}),
        TrialOutcome("b", {"lr": 0.01}, [{}] * 5, "/ck/b", metrics={"val_loss": 0.2}),
        TrialOutcome("c", {"lr": 1.0}, [{}], None, error="diverged", metrics={}),
    ]
    rows = leaderboard(outcomes, "val_loss", "min")
    assert [(r["rank"], r["trial"], r["status"]) for r in rows] == [(1, "b", "ok"), (2, "a", "ok"), (3, "c", "failed")]
    assert rows[0]["epochs"] == 5 and rows[0]["params"] == {"lr": 0.01}
    assert [r["trial"] for r in leaderboard(outcomes, "val_loss", "max")][:2] == ["a", "b"]
