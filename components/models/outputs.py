"""What a model's output means: logits or values -> class, probabilities or values.

Shared by training (validation metrics), scoring, ensembles (their members' outputs) and
serving; the losses that train on the same outputs are in `components.training.losses`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import torch.nn as nn

Task = Literal["classification", "regression"]


def predict_output(logits: torch.Tensor, task: Task, out_features: int) -> dict[str, torch.Tensor]:
    """Predictions from a (B, out) model output.

    classification: {"class": (B,) int64, "proba": (B, C)}; binary gives C = 2 columns [1−p, p].
    regression: {"value": (B,)} when out_features is 1, else {"value": (B, out)}.
    """
    _check(task, out_features)
    if logits.dim() != 2 or logits.shape[1] != out_features:
        raise ValueError(f"expected model output (B, {out_features}), got {tuple(logits.shape)}")
    if task == "regression":
        return {"value": logits[:, 0] if out_features == 1 else logits}
    if out_features == 1:
        p = torch.sigmoid(logits[:, 0])  # (B,)
        proba = torch.stack([1 - p, p], dim=1)  # (B, 2)
        return {"class": (p > 0.5).long(), "proba": proba}
    proba = torch.softmax(logits, dim=1)  # (B, C)
    return {"class": proba.argmax(dim=1), "proba": proba}


def predict_arrays(model: Any, inputs: np.ndarray, task: str, out_features: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(predictions (N,), class probabilities (N, C) or None) for either kind of model.

    Classes are the label indices 0..C-1 (C = 2 for a single binary output); an estimator
    that saw only some classes in training gets zero probability for the others."""
    # Token ids stay integers (an embedding looks them up); everything else is float32.
    x = inputs if inputs.dtype.kind in "iu" else inputs.astype(np.float32, copy=False)
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


def _check(task: str, out_features: int) -> None:
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    if out_features < 1:
        raise ValueError(f"out_features must be >= 1, got {out_features}")
