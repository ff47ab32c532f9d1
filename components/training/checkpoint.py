"""The training checkpoint: a directory that describes itself.

    model.safetensors           weights of the unwrapped model (what a bundle takes)
    optimizer.pt                every optimiser's and LR scheduler's state, by the task's
                                optimiser names, and the fp16 gradient scaler's (tensors and numbers only)
    early_stopping.safetensors  the best weights kept for restore-best, when configured
    state.json                  epoch, global step, model spec, metrics, early-stopping counters

Nothing here unpickles: safetensors for weights, `torch.load(weights_only=True)` for the
optimizer state, JSON for the rest. model.safetensors and state.json are defined in
`components.artifacts.checkpoint_files`, because bundles read them and every family's
checkpoint has a state.json; the optimiser and early-stopping files are the loop's alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from components.artifacts.checkpoint_files import MODEL_FILE, read_state, write_state
from components.training.early_stopping import EarlyStopping

_OPTIMIZER_FILE = "optimizer.pt"
_BEST_FILE = "early_stopping.safetensors"


def save_checkpoint(
    directory: str | Path,
    *,
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler],
    stopper: EarlyStopping | None,
    epoch: int,
    spec: dict[str, Any],
    metrics: dict[str, float],
    best_metrics: dict[str, float] | None = None,
    global_step: int = 0,
    scaler: dict[str, Any] | None = None,
    augment: dict[str, int] | None = None,
) -> None:
    """Write one checkpoint into `directory` (which must exist). `scaler` and `augment`:
    the gradient scaler's and the augmenter's state, so a resumed run continues both."""
    directory = Path(directory)
    save_file(_contiguous(model.state_dict()), str(directory / MODEL_FILE))
    torch.save(
        {
            "optimizers": {name: o.state_dict() for name, o in optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in schedulers.items()},
            "scaler": scaler,
            "augment": augment,
        },
        directory / _OPTIMIZER_FILE,
    )
    stopper_state = None
    if stopper is not None:
        stopper_state = stopper.state_dict()
        best = stopper_state.pop("best_state")
        if best is not None:
            save_file(_contiguous(best), str(directory / _BEST_FILE))
    write_state(
        directory, spec, metrics, epoch=epoch, best_metrics=best_metrics, early_stopping=stopper_state,
        global_step=global_step,
    )


def load_checkpoint(
    directory: str | Path,
    *,
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler],
    stopper: EarlyStopping | None,
) -> dict[str, Any]:
    """Restore everything saved by `save_checkpoint` into the given objects; return the
    checkpoint's state.json, with `scaler` and `augment` added (their states or None)."""
    directory = Path(directory)
    model.load_state_dict(load_file(str(directory / MODEL_FILE)))
    # on the CPU: a GPU run's state resumes anywhere; load_state_dict moves it to each parameter's device
    saved = torch.load(directory / _OPTIMIZER_FILE, weights_only=True, map_location="cpu")
    if set(saved["optimizers"]) != set(optimizers):
        raise ValueError(
            f"checkpoint {directory} holds optimisers {sorted(saved['optimizers'])}, the task has {sorted(optimizers)}"
        )
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(saved["optimizers"][name])
    for name, scheduler in schedulers.items():
        if name in saved["schedulers"]:
            scheduler.load_state_dict(saved["schedulers"][name])
    state = read_state(directory)
    if stopper is not None and state["early_stopping"] is not None:
        best_file = directory / _BEST_FILE
        best = load_file(str(best_file)) if best_file.exists() else None
        stopper.load_state_dict({**state["early_stopping"], "best_state": best})
    return {**state, "scaler": saved["scaler"], "augment": saved.get("augment")}


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage; detach to plain CPU copies.
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
