"""Loss per task and weight penalties.

Models output logits (classification) or raw values (regression); the sigmoid/softmax
lives inside the numerically stable *-with-logits losses here and in
`components.models.outputs.predict_output`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

Task = Literal["classification", "regression"]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def loss_fn(task: Task, out_features: int) -> LossFn:
    """The training loss for a task: regression MSE on (B, out); classification with
    out_features 1 binary cross-entropy on logits (float 0/1 targets), else cross-entropy
    on (B, C) logits with int64 class targets (B,)."""
    _check(task, out_features)
    if task == "regression":
        return _mse
    return _binary_cross_entropy if out_features == 1 else _cross_entropy


def _mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred, target.reshape(pred.shape).to(pred.dtype))  # (B, out) vs (B, out)


def _binary_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.reshape(-1), target.reshape(-1).to(logits.dtype))  # (B,)


def _cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, target.reshape(-1).long())  # (B, C) vs (B,)


def penalty(model: nn.Module, l1: float, l2: float) -> torch.Tensor:
    """l1·Σ|w| + ½·l2·Σw² over weight matrices and kernels (parameters with 2+ dimensions).

    Biases, batch-norm scales and PReLU slopes (all 1-D) are not penalised. The ½ makes the
    L2 gradient l2·w, the same step SGD takes with weight_decay=l2.
    """
    if l1 < 0 or l2 < 0:
        raise ValueError(f"l1 and l2 must be >= 0, got l1={l1}, l2={l2}")
    weights = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    total = torch.zeros((), device=weights[0].device, dtype=weights[0].dtype) if weights else torch.zeros(())
    if l1 > 0:
        total = total + l1 * sum(w.abs().sum() for w in weights)
    if l2 > 0:
        total = total + 0.5 * l2 * sum(w.pow(2).sum() for w in weights)
    return total


def _check(task: str, out_features: int) -> None:
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    if out_features < 1:
        raise ValueError(f"out_features must be >= 1, got {out_features}")


def class_weights(counts: list[int] | torch.Tensor) -> torch.Tensor:
    """Cost-sensitive weights (the BANNER paper's): each class's ratio to the largest class,
    largest / count, so the most frequent class weighs 1 and a class ten times rarer 10.
    A class never seen weighs 0 (it contributes no loss to weigh)."""
    counts = torch.as_tensor(counts, dtype=torch.float32)
    if counts.dim() != 1 or len(counts) == 0 or (counts < 0).any() or counts.max() <= 0:
        raise ValueError(f"class counts must be a non-empty list of counts >= 0 with one above 0, got {counts.tolist()}")
    return torch.where(counts > 0, counts.max() / counts.clamp(min=1), torch.zeros_like(counts))


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean focal loss -(1 - p_t)^gamma · log p_t over (N, C) logits and (N,) targets (Lin et
    al.): well-classified examples count less, so rare hard ones dominate. gamma 0 is
    cross-entropy; `weight` scales each example by its class's weight, and the mean is then
    over the weights, as in `F.cross_entropy`."""
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    log_p = F.log_softmax(logits.float(), dim=-1).gather(1, target.long().unsqueeze(1)).squeeze(1)  # (N,) log p_t
    loss = -((1.0 - log_p.exp()) ** gamma) * log_p
    if weight is None:
        return loss.mean()
    w = weight.to(loss.device)[target.long()]
    return (w * loss).sum() / w.sum().clamp(min=1e-12)
