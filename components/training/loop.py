"""The epoch loop every torch model trains with, whoever runs it.

It reads every hyperparameter from `config`, reports metrics once per epoch, lets rank 0
alone write checkpoints, and resumes from the latest checkpoint it is given. Where the
data comes from, how reports travel and how the model is wrapped for data parallelism
is the `Session`'s business: Ray Train workers and Ray Tune trials each bring their own
(see `components.training.ray_session`).
"""

from __future__ import annotations

import math
import tempfile
import typing
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from components.config import OptimizerConfig, TrainingConfig
from components.evaluation.metrics import classification_metrics, regression_metrics
from components.models import build
from components.training.checkpoint import load_checkpoint, read_state, save_checkpoint
from components.training.early_stopping import EarlyStopping
from components.training.losses import loss_fn, penalty, predict_output
from components.training.optim import make_optimizer, make_scheduler

Batch = dict[str, torch.Tensor]


class Session(Protocol):
    """What the loop needs from whoever runs it."""

    world_rank: int
    world_size: int
    device: torch.device

    def batches(self, split: str, batch_size: int, shuffle: bool, seed: int) -> Iterable[Batch]: ...

    def prepare_model(self, model: nn.Module) -> nn.Module: ...

    def latest_checkpoint(self) -> AbstractContextManager[str | None]: ...

    def report(self, metrics: dict[str, float], checkpoint_dir: str | None) -> None: ...


def loop_config(
    model: dict[str, Any], training: dict[str, Any], *, task: str, in_features: int, out_features: int
) -> dict[str, Any]:
    """The one dict the loop reads: model spec (with its input/output sizes) and training config.
    Tuning overrides its dotted keys (`training.optimizer.lr`, `model.params.hidden`)."""
    params = {**model.get("params", {}), "in_features": in_features, "out_features": out_features}
    return {"model": {"kind": model["kind"], "params": params}, "training": training, "task": task}


def training_config(config: dict[str, Any]) -> TrainingConfig:
    """The loop's training config. A torch model whose params name a `solver`
    (`linear_regression`, `logistic_regression` fitted by gradient descent) trains with that
    optimizer: the model spec alone says how the model is fitted, searched or not."""
    cfg = TrainingConfig.model_validate(config["training"])
    solver = config["model"].get("params", {}).get("solver")
    if solver is None:
        return cfg
    try:
        optimizer = cfg.optimizer.model_copy(update={"name": solver})
        return cfg.model_copy(update={"optimizer": OptimizerConfig.model_validate(optimizer.model_dump())})
    except ValueError:
        raise ValueError(
            f"model {config['model']['kind']!r}: solver {solver!r} is not an optimizer; allowed: "
            f"{list(typing.get_args(OptimizerConfig.model_fields['name'].annotation))}"
        ) from None


def train_model(config: dict[str, Any], session: Session) -> list[dict[str, float]]:
    """Train `config["model"]` for `config["training"]["epochs"]`, reporting each epoch;
    return the metrics reported by this run (epochs before a resume are not repeated)."""
    cfg = training_config(config)
    task: str = config["task"]
    spec = config["model"]
    out_features = int(spec["params"]["out_features"])
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank

    model = session.prepare_model(build(spec))
    bare = _unwrap(model)
    optimizer = make_optimizer(model.parameters(), cfg.optimizer)
    scheduler = make_scheduler(optimizer, cfg.schedule, cfg.epochs)
    stopper = (
        EarlyStopping(cfg.early_stopping.patience, cfg.early_stopping.min_delta, cfg.early_stopping.restore_best)
        if cfg.early_stopping
        else None
    )
    criterion = loss_fn(task, out_features)

    start, best_val = 0, {}
    with session.latest_checkpoint() as ckpt_dir:
        if ckpt_dir is not None:
            start = load_checkpoint(ckpt_dir, model=bare, optimizer=optimizer, scheduler=scheduler, stopper=stopper) + 1
            best_val = read_state(ckpt_dir)["best_metrics"]

    history: list[dict[str, float]] = []
    if stopper is not None and stopper.should_stop:
        return history  # resumed from the checkpoint where early stopping ended the run
    for epoch in range(start, cfg.epochs):
        lr = optimizer.param_groups[0]["lr"]
        train_loss = _train_epoch(model, optimizer, criterion, cfg, session, epoch)
        val = evaluate(model, criterion, session.batches("val", cfg.batch_size, False, 0), task, out_features, session)
        stop = stopper.step(val["val_loss"], bare) if stopper else False
        if stopper and stopper.best_epoch == epoch:
            best_val = val
        last = stop or epoch == cfg.epochs - 1
        if last and stopper and stopper.restore_best and stopper.restore(bare):
            # The checkpoint now holds the best epoch's weights: report that epoch's numbers.
            val = best_val or val
        if scheduler is not None:
            scheduler.step()
        metrics = {"epoch": epoch, "train_loss": train_loss, "lr": lr, **val}
        if stopper is not None:
            metrics["best_epoch"] = stopper.best_epoch
        _report(session, metrics, best_val, bare, optimizer, scheduler, stopper, epoch, spec)
        history.append(metrics)
        if stop:
            break
    return history


def _train_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, criterion: Any, cfg: TrainingConfig, session: Session, epoch: int
) -> float:
    model.train()
    total, count = 0.0, 0
    for batch in session.batches("train", cfg.batch_size, True, cfg.seed + epoch):
        x, y = batch["x"].to(session.device), batch["y"].to(session.device)
        loss = criterion(model(x), y)  # (B, out) vs (B,)
        if cfg.l1 or cfg.l2:
            loss = loss + penalty(model, cfg.l1, cfg.l2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        total += loss.item() * len(y)
        count += len(y)
    total, count = _all_reduce_sum(session, total, count)
    if count == 0:
        raise ValueError("the training split is empty: no rows to train on")
    return total / count


@torch.no_grad()
def evaluate(
    model: nn.Module, criterion: Any, batches: Iterable[Batch], task: str, out_features: int, session: Session
) -> dict[str, float]:
    """Loss and task metrics over `batches`, aggregated across ranks, keys prefixed `val_`."""
    model.eval()
    loss_sum, count = 0.0, 0
    ys, preds = [], []
    for batch in batches:
        x, y = batch["x"].to(session.device), batch["y"].to(session.device)
        out = model(x)  # (B, out)
        loss_sum += criterion(out, y).item() * len(y)
        count += len(y)
        pred = predict_output(out, task, out_features)
        preds.append((pred["class"] if task == "classification" else pred["value"]).cpu().numpy())
        ys.append(y.cpu().numpy())
    loss_sum, count = _all_reduce_sum(session, loss_sum, count)
    y_true, y_pred = _gather(session, ys), _gather(session, preds)
    if count == 0:
        return {"val_loss": math.nan, "val_rows": 0}
    if task == "classification":
        n_classes = max(2, out_features)
        metrics = classification_metrics(y_true.astype(np.int64), y_pred, n_classes)
    else:
        metrics = regression_metrics(y_true, y_pred)
    return {"val_loss": loss_sum / count, "val_rows": count, **{f"val_{k}": float(v) for k, v in metrics.items()}}


def _report(
    session: Session,
    metrics: dict[str, float],
    best_metrics: dict[str, float],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    stopper: EarlyStopping | None,
    epoch: int,
    spec: dict[str, Any],
) -> None:
    if session.world_rank != 0:
        session.report(metrics, None)
        return
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(
            tmp, model=model, optimizer=optimizer, scheduler=scheduler, stopper=stopper,
            epoch=epoch, spec=spec, metrics=metrics, best_metrics=best_metrics,
        )
        session.report(metrics, tmp)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def _all_reduce_sum(session: Session, total: float, count: int) -> tuple[float, int]:
    if session.world_size == 1:
        return total, count
    t = torch.tensor([total, float(count)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t[0]), int(t[1])


def _gather(session: Session, parts: list[np.ndarray]) -> np.ndarray:
    local = np.concatenate(parts) if parts else np.empty(0)
    if session.world_size == 1:
        return local
    gathered: list[Any] = [None] * session.world_size
    dist.all_gather_object(gathered, local)
    return np.concatenate(gathered)
