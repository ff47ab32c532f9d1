"""Scoring a trained model, torch module or scikit-learn estimator, on a held-out split."""

from __future__ import annotations

from typing import Any

import numpy as np

from components.evaluation.metrics import classification_metrics, regression_metrics
from components.models.outputs import predict_arrays

_EPS = 1e-12


def score(model: Any, inputs: np.ndarray, labels: np.ndarray, task: str, out_features: int) -> dict[str, float]:
    """Task metrics on (inputs (N, F), labels (N,)): accuracy/precision/recall/F1 for
    classification, MSE/RMSE/MAE/R² for regression."""
    if len(labels) == 0:
        raise ValueError("cannot score on an empty split")
    pred, _ = predict_arrays(model, inputs, task, out_features)
    if task == "classification":
        return classification_metrics(labels.astype(np.int64), pred, max(2, out_features))
    return regression_metrics(labels.astype(np.float64), pred)


def validation_scores(model: Any, inputs: np.ndarray, labels: np.ndarray, task: str, out_features: int) -> dict[str, float]:
    """What the torch loop reports for validation, for any model: `val_loss` (cross-entropy
    of the predicted probabilities, or MSE), `val_rows` and the task metrics as `val_*`."""
    pred, proba = predict_arrays(model, inputs, task, out_features)
    if task == "classification":
        picked = proba[np.arange(len(labels)), labels.astype(np.int64)]
        loss = float(-np.log(np.clip(picked, _EPS, 1.0)).mean())
        metrics = classification_metrics(labels.astype(np.int64), pred, max(2, out_features))
    else:
        loss = float(np.mean((pred - labels.astype(np.float64)) ** 2))
        metrics = regression_metrics(labels.astype(np.float64), pred)
    return {"val_loss": loss, "val_rows": len(labels), **{f"val_{k}": float(v) for k, v in metrics.items()}}
