"""Early stopping on the validation loss, with the best weights kept to restore at the end."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn


class EarlyStopping:
    """Stop once the validation loss has not improved by more than `min_delta` for `patience`
    consecutive epochs. With `restore_best`, a CPU copy of the best state_dict is kept.

    Call `step` once per epoch. `state_dict()` holds plain numbers plus `best_state`, a flat
    {name: tensor} dict (or None) that can be written with safetensors next to the checkpoint.
    """

    def __init__(self, patience: int, min_delta: float = 0.0, restore_best: bool = True) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be an integer >= 1, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta!r}")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.restore_best = restore_best
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.epoch = 0  # epochs seen, i.e. calls to step; the first epoch is 0
        self.wait = 0  # epochs since the last improvement
        self.best_state: dict[str, torch.Tensor] | None = None

    @property
    def should_stop(self) -> bool:
        return self.wait >= self.patience

    def step(self, val_loss: float, model: nn.Module) -> bool:
        """Record one epoch's validation loss; return True when training should stop."""
        val_loss = float(val_loss)
        # NaN compares False, so a diverged epoch counts as no improvement
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss = val_loss
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
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "epoch": self.epoch,
            "wait": self.wait,
            "best_state": None if self.best_state is None else dict(self.best_state),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        expected = {"best_loss", "best_epoch", "epoch", "wait", "best_state"}
        if set(state) != expected:
            raise ValueError(f"early-stopping state needs keys {sorted(expected)}, got {sorted(state)}")
        self.best_loss = float(state["best_loss"])
        self.best_epoch = None if state["best_epoch"] is None else int(state["best_epoch"])
        self.epoch = int(state["epoch"])
        self.wait = int(state["wait"])
        best = state["best_state"]
        self.best_state = None if best is None else {k: v.detach().to("cpu") for k, v in best.items()}
