"""Scoring a trained model, torch module or scikit-learn estimator, on a held-out split."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from components.evaluation.metrics import classification_metrics, regression_metrics
from components.models.outputs import predict_output

_EPS = 1e-12


def predict_arrays(model: Any, inputs: np.ndarray, task: str, out_features: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(predictions (N,), class probabilities (N, C) or None) for either kind of model.

    Classes are the label indices 0..C-1 (C = 2 for a single binary output); an estimator
    that saw only some classes in training gets zero probability for the others."""
    x = inputs.astype(np.float32, copy=False)
    if isinstance(model, nn.Module):
        model.eval()
        with torch.no_grad():
            out = predict_output(model(torch.from_numpy(x)), task, out_features)
        if task == "classification":
            return out["class"].numpy(), out["proba"].numpy().astype(np.float64)
        return out["value"].numpy().astype(np.float64), None
    if task == "regression":
        return np.asarray(model.predict(x), dtype=np.float64).reshape(-1), None
    proba = np.zeros((len(x), max(2, out_features)))  # (N, C)
    proba[:, np.asarray(model.classes_, dtype=np.int64)] = model.predict_proba(x)
    return proba.argmax(axis=1), proba


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
