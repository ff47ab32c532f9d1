"""The epoch loop every torch model trains with, whoever runs it.

It reads every hyperparameter from `config`, reports metrics once per epoch, lets rank 0
alone write checkpoints (every optimiser, the global step), and resumes from the latest
checkpoint it is given. What one step does and what is measured is the training task's
business (`components.training.tasks`); where the data comes from, how reports travel and
how the model is wrapped for data parallelism is the `Session`'s: Ray Train workers and
Ray Tune trials each bring their own (see `components.training.ray_session`).
"""

from __future__ import annotations

import contextlib
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
from components.data.augmentation import Augmenter, make_augmenter
from components.data.modalities.info import DataInfo
from components.models import build, data_fields, training_task
from components.training.bucketing import by_length
from components.training.checkpoint import load_checkpoint, save_checkpoint
from components.training.early_stopping import EarlyStopping
from components.training.grad_check import gradient_check
from components.training.optim import make_scheduler
from components.training.stepper import Stepper
from components.training.tasks import Batch, TrainingTask, task_class
from components.training.tasks.base import batch_size, move
from components.training.transfer import load_pretrained


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
    model: dict[str, Any],
    training: dict[str, Any],
    info: DataInfo,
    augment: list[dict[str, Any]] | None = None,
    init_from: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one dict the loop reads: the model spec (its data-derived params filled from
    `info`), the training config, the data's description, the augmentation of training
    batches (`components.data.augmentation` ops) and the weights to start from
    (`components.training.transfer.pretrained_init`). Tuning overrides its dotted keys
    (`training.optimizer.lr`, `model.params.hidden`)."""
    spec = {"kind": model["kind"], "params": model.get("params", {})}
    params = {**spec["params"], **data_fields(spec, info)}
    return {
        "model": {"kind": model["kind"], "params": params}, "training": training,
        "task": info.task, "info": info.to_dict(), "augment": list(augment or []), "init_from": init_from,
    }


def data_info(config: dict[str, Any]) -> DataInfo:
    return DataInfo.from_dict(config["info"])


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
    spec, info = config["model"], data_info(config)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank

    model = build(spec)
    init = config.get("init_from")
    # before the session wraps it: DDP registers only the parameters that still train
    pretrained = load_pretrained(model, init) if init else set()
    model = session.prepare_model(model)
    bare = _unwrap(model)
    ops = config.get("augment") or []
    augment = make_augmenter(ops, cfg.seed) if ops else None
    task = task_class(training_task(spec))(
        model, info, cfg, augment=augment, pretrained=pretrained, lr_scale=init["lr_scale"] if init else 1.0
    )
    optimizers = task.configure_optimizers()
    schedulers = {
        name: s for name, o in optimizers.items() if (s := make_scheduler(o, cfg.schedule, cfg.epochs)) is not None
    }
    stepper = Stepper(optimizers, precision=cfg.precision, device=session.device, grad_clip=cfg.grad_clip)
    watch = cfg.early_stopping
    stopper = EarlyStopping(watch.patience, watch.min_delta, watch.restore_best, watch.mode) if watch else None

    start, best_val = 0, {}
    with session.latest_checkpoint() as ckpt_dir:
        if ckpt_dir is not None:
            state = load_checkpoint(ckpt_dir, model=bare, optimizers=optimizers, schedulers=schedulers, stopper=stopper)
            stepper.load_state_dict({"global_step": state.get("global_step", 0), "scaler": state["scaler"]})
            if augment is not None and state["augment"] is not None:
                augment.load_state_dict(state["augment"])  # the noise and shifts the next epoch would draw
            start, best_val = int(state["epoch"]) + 1, state["best_metrics"]

    history: list[dict[str, float]] = []
    if stopper is not None and stopper.should_stop:
        return history  # resumed from the checkpoint where early stopping ended the run
    checked = _grad_check(task, bare, cfg, session) if cfg.grad_check and start == 0 else {}
    for epoch in range(start, cfg.epochs):
        lr = next(iter(optimizers.values())).param_groups[0]["lr"]
        train = _train_epoch(task, stepper, cfg, session, epoch)
        val = evaluate(task, session.batches("val", cfg.batch_size, False, 0), session, stepper)
        if stopper is not None and watch is not None:
            if watch.metric not in val:
                raise ValueError(
                    f"training.early_stopping.metric {watch.metric!r} is not reported; reported: {sorted(val)}"
                )
            stop = stopper.step(val[watch.metric], bare)
        else:
            stop = False
        if stopper and stopper.best_epoch == epoch:
            best_val = val
        last = stop or epoch == cfg.epochs - 1
        if last and stopper and stopper.restore_best and stopper.restore(bare):
            # The checkpoint now holds the best epoch's weights: report that epoch's numbers.
            val = best_val or val
        for scheduler in schedulers.values():
            scheduler.step()
        metrics = {"epoch": epoch, "step": stepper.global_step, **train, "lr": lr, **val, **checked}
        checked = {}  # reported with the first epoch only
        if stopper is not None:
            metrics["best_epoch"] = stopper.best_epoch
        _report(session, metrics, best_val, bare, optimizers, schedulers, stepper, stopper, epoch, spec, augment)
        history.append(metrics)
        if stop:
            break
    return history


def _train_epoch(task: TrainingTask, stepper: Stepper, cfg: TrainingConfig, session: Session, epoch: int) -> dict[str, float]:
    """One pass over the training split; the task's step results averaged per example, as train_*."""
    task.model.train()
    totals: dict[str, float] = {}
    count = 0
    batches = session.batches("train", cfg.batch_size, True, cfg.seed + epoch)
    if cfg.bucket_by_length:
        batches = by_length(batches, cfg.bucket_by_length, cfg.seed + epoch)
    for batch in batches:
        batch = move(batch, session.device)
        n = batch_size(batch)
        for name, value in task.training_step(batch, stepper).items():
            totals[name] = totals.get(name, 0.0) + value * n
        count += n
    names = sorted(totals)
    summed = _all_reduce_sum(session, [totals[k] for k in names] + [float(count)])
    count = int(summed[-1])
    if count == 0:
        raise ValueError("the training split is empty: no rows to train on")
    return {f"train_{name}": total / count for name, total in zip(names, summed)}


def _grad_check(task: TrainingTask, model: nn.Module, cfg: TrainingConfig, session: Session) -> dict[str, float]:
    """Backprop against two-sided differences on the first training batch, before any
    step: `grad_check.<parameter>` relative errors and their maximum, to report."""
    batch = next(iter(session.batches("train", cfg.batch_size, False, cfg.seed)), None)
    if batch is None:
        raise ValueError("the training split is empty: no batch to check gradients on")
    rows = gradient_check(model, move(batch, session.device), task.loss)
    errors = {f"grad_check.{row.name}": row.relative_error for row in rows}
    return {**errors, "grad_check_max_error": max(errors.values())}


@torch.no_grad()
def evaluate(
    task: TrainingTask, batches: Iterable[Batch], session: Session, stepper: Stepper | None = None
) -> dict[str, float]:
    """The task's metrics over `batches`, aggregated across ranks, keys prefixed `val_`."""
    task.model.eval()
    sums: dict[str, float] = {}
    parts: dict[str, list[np.ndarray]] = {}
    precision = stepper.autocast() if stepper is not None else contextlib.nullcontext()
    with precision:
        for batch in batches:
            for name, value in task.validation_step(move(batch, session.device)).items():
                if isinstance(value, np.ndarray):
                    parts.setdefault(name, []).append(value)
                else:
                    sums[name] = sums.get(name, 0.0) + float(value)
    names = sorted(sums)
    totals = dict(zip(names, _all_reduce_sum(session, [sums[k] for k in names])))
    arrays = {name: _gather(session, chunks) for name, chunks in parts.items()}
    return {f"val_{k}": v for k, v in task.metrics(totals, arrays).items()}


def _report(
    session: Session,
    metrics: dict[str, float],
    best_metrics: dict[str, float],
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    schedulers: dict[str, Any],
    stepper: Stepper,
    stopper: EarlyStopping | None,
    epoch: int,
    spec: dict[str, Any],
    augment: Augmenter | None,
) -> None:
    if session.world_rank != 0:
        session.report(metrics, None)
        return
    with tempfile.TemporaryDirectory() as tmp:
        state = stepper.state_dict()
        save_checkpoint(
            tmp, model=model, optimizers=optimizers, schedulers=schedulers, stopper=stopper,
            epoch=epoch, spec=spec, metrics=metrics, best_metrics=best_metrics,
            global_step=int(state["global_step"]), scaler=state["scaler"],
            augment=augment.state_dict() if augment is not None else None,
        )
        session.report(metrics, tmp)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


# The collectives run whenever the session's process group exists (Ray Train starts one for
# any number of workers), so one-worker runs take the same path as many-worker ones.


def _all_reduce_sum(session: Session, values: list[float]) -> list[float]:
    if not dist.is_initialized():
        return values
    # NCCL reduces only CUDA tensors: the session's device is the one its backend serves
    t = torch.tensor(values, dtype=torch.float64, device=session.device)
    dist.all_reduce(t)
    return t.tolist()


def _gather(session: Session, parts: list[np.ndarray]) -> np.ndarray:
    local = np.concatenate(parts) if parts else np.empty(0)
    if not dist.is_initialized():
        return local
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, local)
    return np.concatenate(gathered)
