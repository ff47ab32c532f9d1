"""Optimisers and per-epoch learning-rate schedules built from the typed training config."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LRScheduler, StepLR

from components.config import OptimizerConfig, ScheduleConfig


def make_optimizer(
    params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], cfg: OptimizerConfig
) -> torch.optim.Optimizer:
    """sgd: plain (mini-batch) gradient descent; momentum: SGD with cfg.momentum; rmsprop; adagrad
    (per-parameter rates from summed squared gradients); adam (bias-corrected); adamw
    (decoupled weight decay). cfg.weight_decay is passed to every one."""
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "momentum":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"optimizer.name must be one of sgd, momentum, rmsprop, adagrad, adam, adamw, got {cfg.name!r}")


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, epochs: int) -> LRScheduler | None:
    """The learning-rate schedule, to be stepped once at the end of every epoch; None for "none".

    After t steps: time lr0/(1+decay·t); step lr0·gamma^⌊t/step_size⌋; exponential lr0·e^(−decay·t);
    cosine from lr0 down to min_lr at t = epochs.
    """
    if cfg.name == "none":
        return None
    if cfg.name == "time":
        return LambdaLR(optimizer, lr_lambda=_TimeDecay(cfg.decay))
    if cfg.name == "step":
        return StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.name == "exponential":
        return LambdaLR(optimizer, lr_lambda=_ExponentialDecay(cfg.decay))
    if cfg.name == "cosine":
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1 for a cosine schedule, got {epochs}")
        return CosineAnnealingLR(optimizer, T_max=epochs, eta_min=cfg.min_lr)
    raise ValueError(f"schedule.name must be one of none, time, step, exponential, cosine, got {cfg.name!r}")


# Classes rather than lambdas: a scheduler holding them pickles (Ray ships it between processes).
class _TimeDecay:
    def __init__(self, decay: float) -> None:
        self.decay = decay

    def __call__(self, epoch: int) -> float:
        return 1.0 / (1.0 + self.decay * epoch)


class _ExponentialDecay:
    def __init__(self, decay: float) -> None:
        self.decay = decay

    def __call__(self, epoch: int) -> float:
        return math.exp(-self.decay * epoch)
