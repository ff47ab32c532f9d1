"""Scoring a trained model on a held-out split."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from components.evaluation.metrics import classification_metrics, regression_metrics
from components.training.losses import predict_output


@torch.no_grad()
def score(model: nn.Module, inputs: np.ndarray, labels: np.ndarray, task: str, out_features: int) -> dict[str, float]:
    """Task metrics of `model` on (inputs (N, F), labels (N,)): accuracy/precision/recall/F1
    for classification, MSE/RMSE/MAE/R² for regression."""
    if len(labels) == 0:
        raise ValueError("cannot score on an empty split")
    model.eval()
    out = predict_output(model(torch.from_numpy(inputs.astype(np.float32))), task, out_features)
    if task == "classification":
        return classification_metrics(labels.astype(np.int64), out["class"].numpy(), max(2, out_features))
    return regression_metrics(labels.astype(np.float64), out["value"].numpy().astype(np.float64))
