"""The learning-rate range test (Leslie Smith 2015; fastai's `lr_find`): train for a few
steps while the learning rate grows exponentially, and read a good rate off the loss curve.

The model is trained for real during the test and then put back exactly as it came.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from matplotlib.figure import Figure

from components.evaluation.figures import png
from components.training.tasks.base import Batch, LossOf

MakeOptimizer = Callable[[Iterable[nn.Parameter], float], torch.optim.Optimizer]  # (params, lr)


@dataclass(frozen=True)
class LRRangeResult:
    """One point per optimiser step taken, in order. When `stopped_early`, the last point is
    the one whose loss diverged; it is kept for plotting but left out of every suggestion.

    `suggested_lr` is the rate at the steepest descent of the smoothed loss: the argmin of
    d(loss)/d(log10 lr) (numpy central differences, one-sided at the ends) over the points
    before divergence. It is nan when fewer than two such points exist.
    """

    lrs: list[float]
    losses: list[float]  # exponentially smoothed, bias-corrected
    raw_losses: list[float]
    suggested_lr: float
    stopped_early: bool

    @property
    def usable(self) -> int:
        """How many leading points come before divergence."""
        return len(self.lrs) - 1 if self.stopped_early else len(self.lrs)

    @property
    def min_loss_lr(self) -> float:
        """The second common rule: the rate at the minimum smoothed loss, divided by 10
        (the minimum itself sits close to where training becomes unstable). nan if no point
        before divergence."""
        n = self.usable
        if n == 0:
            return math.nan
        return self.lrs[int(np.argmin(self.losses[:n]))] / 10.0


def lr_range_test(
    model: nn.Module,
    batches: Iterable[Batch] | Callable[[], Iterator[Batch]],
    loss_of: LossOf,
    make_optimizer: MakeOptimizer,
    *,
    start_lr: float = 1e-5,
    end_lr: float = 10.0,
    steps: int = 100,
    smoothing: float = 0.05,
    diverge_factor: float = 4.0,
) -> LRRangeResult:
    """Take up to `steps` optimiser steps with lr_i = start_lr·(end_lr/start_lr)^(i/(steps−1)),
    recording the training loss of each (measured before its step, as fastai does) and
    stopping as soon as the smoothed loss is not finite or rises above `diverge_factor` × the
    best smoothed loss so far. Weights, buffers, gradients and train/eval modes are restored
    afterwards, even when `loss_of` raises.

    `batches` is re-iterable (a list, a DataLoader) or a callable returning a fresh iterator;
    it is cycled when `steps` exceeds its length. `make_optimizer(params, lr)` builds the
    optimiser, e.g. `lambda p, lr: make_optimizer(p, cfg.model_copy(update={"lr": lr}))`.
    `smoothing` is the weight of the newest loss in the running average (1 = no smoothing).

    The divergence rule compares against |best|, so it stays meaningful for a loss that goes
    negative: it fires when smoothed > best + (diverge_factor − 1)·|best|, which is exactly
    smoothed > diverge_factor·best for the usual non-negative loss.
    """
    if not start_lr > 0:
        raise ValueError(f"start_lr must be > 0, got {start_lr!r}")
    if not end_lr > start_lr:
        raise ValueError(f"end_lr must be > start_lr ({start_lr!r}), got {end_lr!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    if not 0 < smoothing <= 1:
        raise ValueError(f"smoothing must be in (0, 1], got {smoothing!r}")
    if not diverge_factor > 1:
        raise ValueError(f"diverge_factor must be > 1, got {diverge_factor!r}")

    schedule = _geometric(start_lr, end_lr, steps)
    saved = _snapshot(model)
    lrs: list[float] = []
    raw: list[float] = []
    smoothed: list[float] = []
    stopped_early = False
    try:
        model.train()
        optimizer = make_optimizer(model.parameters(), start_lr)
        stream = _cycle(batches)
        average, best = 0.0, math.inf
        with torch.enable_grad():
            for i, lr in enumerate(schedule):
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.zero_grad(set_to_none=True)
                loss = loss_of(model, next(stream))
                if loss.numel() != 1:
                    raise ValueError(f"loss_of must return a scalar tensor, got shape {tuple(loss.shape)}")
                value = float(loss.detach())
                average = (1 - smoothing) * average + smoothing * value
                smooth = average / (1 - (1 - smoothing) ** (i + 1))  # bias correction: the average starts at 0
                lrs.append(lr)
                raw.append(value)
                smoothed.append(smooth)
                if not math.isfinite(smooth) or smooth > best + (diverge_factor - 1) * abs(best):
                    stopped_early = True
                    break
                best = min(best, smooth)
                loss.backward()
                optimizer.step()
    finally:
        _restore(model, saved)
    usable = len(lrs) - 1 if stopped_early else len(lrs)
    return LRRangeResult(lrs, smoothed, raw, _steepest(lrs[:usable], smoothed[:usable]), stopped_early)


def render_lr_range(result: LRRangeResult) -> bytes:
    """PNG of loss against learning rate (log x-axis): smoothed line, raw points faint,
    the suggested rate marked when there is one."""
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    lrs = np.asarray(result.lrs, dtype=float)
    for values, style in ((result.raw_losses, {"color": "grey", "alpha": 0.35, "linewidth": 0.8, "label": "raw"}),
                          (result.losses, {"color": "C0", "label": "smoothed"})):
        y = np.asarray(values, dtype=float)
        finite = np.isfinite(y)  # a diverged last point may be inf or nan
        ax.plot(lrs[finite], y[finite], **style)
    if math.isfinite(result.suggested_lr):
        y_at = result.losses[result.lrs.index(result.suggested_lr)]
        ax.axvline(result.suggested_lr, color="C3", linestyle="--", linewidth=1)
        ax.plot([result.suggested_lr], [y_at], "o", color="C3", label=f"suggested {result.suggested_lr:.2e}")
    ax.set_xscale("log")
    title = "learning-rate range test" + (" (stopped at divergence)" if result.stopped_early else "")
    ax.set(xlabel="learning rate", ylabel="training loss", title=title)
    ax.legend(loc="best", fontsize="small")
    return png(fig)


def _geometric(start: float, end: float, steps: int) -> list[float]:
    ratio = end / start
    lrs = [start * ratio ** (i / (steps - 1)) for i in range(steps)]
    lrs[-1] = end  # the power can miss by an ulp; the ends are promised exactly
    return lrs


def _cycle(batches: Iterable[Batch] | Callable[[], Iterator[Batch]]) -> Iterator[Batch]:
    while True:
        fresh = iter(batches() if callable(batches) else batches)
        empty = True
        for batch in fresh:
            empty = False
            yield batch
        if empty:
            # A one-shot iterator comes back empty on its second pass, too.
            raise ValueError("batches yielded no batch; pass a non-empty list, a DataLoader or a callable "
                             "returning a fresh iterator")


def _steepest(lrs: list[float], losses: list[float]) -> float:
    if len(lrs) < 2:
        return math.nan
    slope = np.gradient(np.asarray(losses, dtype=float), np.log10(np.asarray(lrs, dtype=float)))
    return lrs[int(np.argmin(slope))]


def _snapshot(model: nn.Module) -> dict[str, Any]:
    return {
        "state": copy.deepcopy(model.state_dict()),
        "modes": [(m, m.training) for m in model.modules()],
        "grads": [(p, None if p.grad is None else p.grad.detach().clone()) for p in model.parameters()],
    }


def _restore(model: nn.Module, saved: dict[str, Any]) -> None:
    # load_state_dict copies into the existing tensors, so an optimiser the caller built on
    # these parameters still points at them.
    model.load_state_dict(saved["state"])
    for module, training in saved["modes"]:
        module.training = training
    for param, grad in saved["grads"]:
        param.grad = grad



def sweep_loop_config(
    config: dict[str, Any], inputs: np.ndarray, labels: np.ndarray, *, start_lr: float, end_lr: float, steps: int
) -> LRRangeResult:
    """The range test for the model and training task of a loop config (`loop_config`),
    on the training split's arrays: the optimiser is `training.optimizer` at each rate."""
    from components.models import build, training_task  # the loop's own imports, kept out of this module's top
    from components.training.array_session import memory_batches
    from components.training.loop import data_info, training_config
    from components.training.optim import make_optimizer
    from components.training.tasks import task_class

    cfg = training_config(config)
    torch.manual_seed(cfg.seed)
    model = build(config["model"])
    task = task_class(training_task(config["model"]))(model, data_info(config), cfg)
    kept = {"x": torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)), "y": torch.from_numpy(labels)}
    epoch = iter(range(1_000_000))  # a new shuffle for every pass over the data
    return lr_range_test(
        model,
        lambda: memory_batches(kept, cfg.batch_size, True, cfg.seed + next(epoch)),
        task.loss,
        lambda params, lr: make_optimizer(params, cfg.optimizer.model_copy(update={"lr": lr})),
        start_lr=start_lr, end_lr=end_lr, steps=steps,
    )
