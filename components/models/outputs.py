"""What a model's output means: logits or values -> class, probabilities or values.

Shared by training (validation metrics), scoring and serving; the losses that train on the
same outputs are in `components.training.losses`.
"""

from __future__ import annotations

from typing import Literal

import torch

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


def _check(task: str, out_features: int) -> None:
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    if out_features < 1:
        raise ValueError(f"out_features must be >= 1, got {out_features}")
