"""Early stopping on a validation metric, with the best weights kept to restore at the end."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn


class EarlyStopping:
    """Stop once the watched metric (lower is better with mode "min", higher with "max") has
    not improved by more than `min_delta` for `patience` consecutive epochs. With
    `restore_best`, a CPU copy of the best state_dict is kept.

    Call `step` once per epoch. `state_dict()` holds plain numbers plus `best_state`, a flat
    {name: tensor} dict (or None) that can be written with safetensors next to the checkpoint.
    """

    def __init__(self, patience: int, min_delta: float = 0.0, restore_best: bool = True, mode: str = "min") -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be an integer >= 1, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.restore_best = restore_best
        self.mode = mode
        self.best_value = math.inf if mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.epoch = 0  # epochs seen, i.e. calls to step; the first epoch is 0
        self.wait = 0  # epochs since the last improvement
        self.best_state: dict[str, torch.Tensor] | None = None

    @property
    def should_stop(self) -> bool:
        return self.wait >= self.patience

    def step(self, value: float, model: nn.Module) -> bool:
        """Record one epoch's value of the watched metric; return True when training should stop."""
        value = float(value)
        # NaN compares False, so a diverged epoch counts as no improvement
        improved = (
            value < self.best_value - self.min_delta if self.mode == "min" else value > self.best_value + self.min_delta
        )
        if improved:
            self.best_value = value
            self.best_epoch = self.epoch
            self.wait = 0
            if self.restore_best:
                self.best_state = {
                    k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()
                }
        else:
            self.wait += 1
        self.epoch += 1
        return self.should_stop

    def restore(self, model: nn.Module) -> bool:
        """Load the best weights into `model`; False (model untouched) when none were kept."""
        if self.best_state is None:
            return False
        model.load_state_dict(self.best_state)
        return True

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "epoch": self.epoch,
            "wait": self.wait,
            "best_state": None if self.best_state is None else dict(self.best_state),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        expected = {"best_value", "best_epoch", "epoch", "wait", "best_state"}
        if set(state) != expected:
            raise ValueError(f"early-stopping state needs keys {sorted(expected)}, got {sorted(state)}")
        self.best_value = float(state["best_value"])
        self.best_epoch = None if state["best_epoch"] is None else int(state["best_epoch"])
        self.epoch = int(state["epoch"])
        self.wait = int(state["wait"])
        best = state["best_state"]
        self.best_state = None if best is None else {k: v.detach().to("cpu") for k, v in best.items()}
