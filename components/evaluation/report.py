"""The test-set report of a model: per-class and averaged metrics, ROC-AUC for binary
tasks, and the confusion matrix and ROC curve as PNG images."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from components.evaluation.figures import png
from components.evaluation.metrics import confusion_matrix
from components.evaluation.scoring import predict_arrays, score


@dataclass
class HoldoutReport:
    metrics: dict[str, float]  # test_* scalars, per class as test_precision.<label> etc.
    images: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG


def roc_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) over every threshold, from (0, 0) to (1, 1)."""
    order = np.argsort(-scores, kind="stable")
    y, s = y_true[order].astype(bool), scores[order]
    distinct = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each score value
    tps, fps = np.cumsum(y)[distinct], np.cumsum(~y)[distinct]
    positives, negatives = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return np.r_[0.0, fps / negatives], np.r_[0.0, tps / positives]


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids; ties count one half)."""
    fpr, tpr = roc_curve(y_true, scores)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def holdout_report(model: Any, inputs: np.ndarray, labels: np.ndarray, task: str, out_features: int,
                class_names: list[str] | None = None) -> HoldoutReport:
    """Score `model` on the test split; images only for classification."""
    metrics = {f"test_{k}": float(v) for k, v in score(model, inputs, labels, task, out_features).items()}
    if task != "classification":
        return HoldoutReport(metrics)
    n = max(2, out_features)
    names = class_names or [str(i) for i in range(n)]
    pred, proba = predict_arrays(model, inputs, task, out_features)
    cm = confusion_matrix(labels.astype(np.int64), pred, n)  # rows: true class
    for c, name in enumerate(names):
        tp, predicted, actual = cm[c, c], cm[:, c].sum(), cm[c, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        label = re.sub(r"[^A-Za-z0-9_.-]", "_", name)  # MLflow metric names allow only these
        metrics[f"test_precision.{label}"] = float(precision)
        metrics[f"test_recall.{label}"] = float(recall)
        metrics[f"test_f1.{label}"] = float(2 * precision * recall / (precision + recall)) if tp else 0.0
    images = {"confusion_matrix.png": _confusion_png(cm, names)}
    if n == 2:
        metrics["test_roc_auc"] = roc_auc(labels == 1, proba[:, 1])
        images["roc_curve.png"] = _roc_png(*roc_curve(labels == 1, proba[:, 1]), metrics["test_roc_auc"])
    return HoldoutReport(metrics, images)


def _confusion_png(cm: np.ndarray, names: list[str]) -> bytes:
    fig = Figure(figsize=(1.2 + 0.6 * len(names), 1.0 + 0.6 * len(names)))
    ax = fig.subplots()
    ax.imshow(cm, cmap="Blues")
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xticklabels=names, yticklabels=names,
           xlabel="predicted", ylabel="true", title="confusion matrix (test)")
    ax.tick_params(axis="x", labelrotation=30)
    for (i, j), count in np.ndenumerate(cm):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > cm.max() / 2 else "black")
    return png(fig)


def _roc_png(fpr: np.ndarray, tpr: np.ndarray, auc: float) -> bytes:
    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    ax.plot(fpr, tpr, label=f"AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    ax.legend(loc="lower right")
    return png(fig)

