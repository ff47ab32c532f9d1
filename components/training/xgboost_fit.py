"""Training the `xgboost` kind with Ray Train's XGBoostTrainer on the silver tables.

Each worker reads its shard of the train split and the whole val split from the same Ray
Datasets the torch loop streams (`SilverInputs.datasets()`: {"x": (B, F), "y": (B,)}),
builds DMatrices and runs `xgboost.train` with `train_params` of the model config; with
several workers XGBoost's collective (set up by the trainer) joins them into one model.

Every round's train and val loss (and val accuracy for classifiers), under the torch
loop's names, goes into the run's history. A round is also reported to Ray Train unless
it ends sooner than the controller's poll interval after the previous report: the
controller takes one report per worker per poll, so reporting faster only blocks the
boosting (a round on small data takes milliseconds). The end of training is reported
with `validation_scores` on the val split, so selection and registration treat this kind
like every other, and with a checkpoint that rank 0 alone writes: the booster in XGBoost's
format plus state.json (`components.artifacts.xgboost_io`).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray.data
import ray.train
import xgboost
from ray.train import Checkpoint, CheckpointConfig, DataConfig, RunConfig, ScalingConfig
from ray.train.v2._internal.constants import DEFAULT_HEALTH_CHECK_INTERVAL_S, HEALTH_CHECK_INTERVAL_S_ENV_VAR
from ray.train.xgboost import XGBoostTrainer
from xgboost.callback import TrainingCallback

from components.artifacts.xgboost_io import XGBOOST_FILE, as_estimator, write_xgboost_checkpoint
from components.data.modalities.info import DataInfo
from components.evaluation.scoring import validation_scores
from components.models.boosting import config_from_spec, train_params


def xgboost_loop_per_worker(config: dict[str, Any]) -> list[dict[str, float]]:
    """Ray Train worker entry point: boost `config["model"]`'s rounds on this worker's shard,
    report, and return the metrics of every round (rank 0's return value is the run's
    history). A run restarted with a checkpoint continues from its booster."""
    spec, task = config["model"], config["task"]
    # the class count (`out_features`), which names the objective, is in the spec, set from the data
    model_config = config_from_spec(spec, task=task)
    info = DataInfo.from_dict(config["info"])
    x_train, y_train = _shard_arrays("train", info.in_features)
    x_val, y_val = _shard_arrays("val", info.in_features)
    dtrain = xgboost.DMatrix(x_train, label=y_train)
    dval = xgboost.DMatrix(x_val, label=y_val)

    booster = _latest_booster()
    done = booster.num_boosted_rounds() if booster is not None else 0
    rounds = model_config.n_estimators
    reports = RoundReports(task, last_round=rounds - 1, min_interval_s=controller_poll_s())
    booster = xgboost.train(
        train_params(model_config),
        dtrain,
        num_boost_round=max(0, rounds - done),
        evals=[(dtrain, "train"), (dval, "val")],
        callbacks=[reports],
        verbose_eval=False,
        xgb_model=booster,
    )

    last = reports.history[-1] if reports.history else {}
    scores = validation_scores(as_estimator(booster, task), x_val, y_val, task, info.out_features)
    final = {**last, "epoch": booster.num_boosted_rounds() - 1, **scores}
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if ray.train.get_context().get_world_rank() == 0:
            state_spec = {**spec, "params": {**spec["params"], "task": task}}
            write_xgboost_checkpoint(tmp, booster, state_spec, final, epoch=final["epoch"])
            checkpoint = Checkpoint.from_directory(tmp)
        ray.train.report(final, checkpoint=checkpoint)
    return [*reports.history[:-1], final] if reports.history else [final]


class RoundReports(TrainingCallback):
    """XGBoost callback: each round's eval log as the torch loop's metric names, kept in
    `history` and reported to Ray Train when at least `min_interval_s` passed since the last
    report. `last_round` is left to the caller, which reports it with the checkpoint.
    With several workers every rank makes the same choice (rank 0's clock decides)."""

    def __init__(self, task: str, *, last_round: int, min_interval_s: float) -> None:
        super().__init__()
        self.history: list[dict[str, float]] = []
        self._task = task
        self._last_round = last_round
        self._interval = min_interval_s
        self._reported = time.monotonic()

    def after_iteration(self, model: xgboost.Booster, epoch: int, evals_log: dict[str, Any]) -> bool:
        metrics = {"epoch": epoch, **round_metrics(evals_log, self._task)}
        self.history.append(metrics)
        if epoch < self._last_round and self._due():
            ray.train.report(metrics)
            self._reported = time.monotonic()
        return False  # never stops training early

    def _due(self) -> bool:
        due = time.monotonic() - self._reported >= self._interval
        if xgboost.collective.get_world_size() > 1:
            # ranks must report together: Ray Train pairs the i-th report of every worker
            flag = np.array([due if xgboost.collective.get_rank() == 0 else False], dtype=np.int32)
            due = bool(xgboost.collective.allreduce(flag, xgboost.collective.Op.MAX)[0])
        return due


def round_metrics(evals_log: dict[str, dict[str, list[float]]], task: str) -> dict[str, float]:
    """The latest round of XGBoost's eval log ({"train": {metric: [...]}, "val": ...}, in
    the order `boosting.objective` lists the metrics) as the torch loop's names: train_loss
    and val_loss (log loss, or MSE for regression) and val_accuracy or val_rmse."""
    train, val = evals_log["train"], evals_log["val"]
    loss, *rest = list(val)
    if task == "regression":  # rmse: the loop's loss is the mean squared error
        t, v = train[loss][-1], val[loss][-1]
        return {"train_loss": float(t * t), "val_loss": float(v * v), "val_rmse": float(v)}
    return {
        "train_loss": float(train[loss][-1]),
        "val_loss": float(val[loss][-1]),
        "val_accuracy": 1.0 - float(val[rest[0]][-1]),
    }


def controller_poll_s() -> float:
    """How often the Train controller collects reports (it takes one per worker per poll)."""
    return float(os.environ.get(HEALTH_CHECK_INTERVAL_S_ENV_VAR, DEFAULT_HEALTH_CHECK_INTERVAL_S))


def make_xgboost_trainer(
    config: dict[str, Any],
    datasets: dict[str, ray.data.Dataset],
    *,
    num_workers: int,
    storage_path: str,
    name: str,
    use_gpu: bool = False,
    callbacks: list[Any] | None = None,
) -> XGBoostTrainer:
    """A Train V2 XGBoostTrainer over `xgboost_loop_per_worker`: `num_workers` workers of one
    CPU each share the train split; every worker reads all of val (the scores are rank 0's).
    A trainer with the same `storage_path`/`name` continues from that run's checkpoint."""
    if use_gpu:
        raise ValueError(
            "training.use_gpu must be false for model kind 'xgboost': it trains on CPUs "
            "(the installed xgboost-cpu build has no CUDA)"
        )
    return XGBoostTrainer(
        xgboost_loop_per_worker,
        train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=False),
        run_config=RunConfig(
            name=name,
            storage_path=storage_path,
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            callbacks=callbacks or [],
        ),
        datasets=datasets,
        # one worker reads whole datasets itself: splitting would only add Ray Data's split
        # coordinator actor (over a second per run here) in front of the same blocks
        dataset_config=DataConfig(datasets_to_split=["train"] if num_workers > 1 else []),
    )


def _shard_arrays(split: str, in_features: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (N, F) float32, labels (N,)) of this worker's shard of `split`, in memory:
    XGBoost's DMatrix holds the whole shard."""
    parts = list(ray.train.get_dataset_shard(split).iter_batches(batch_size=None, batch_format="numpy"))
    if not parts:
        return np.empty((0, in_features), dtype=np.float32), np.empty((0,), dtype=np.float32)
    return np.concatenate([p["x"] for p in parts]), np.concatenate([p["y"] for p in parts])  # (N, F), (N,)


def _latest_booster() -> xgboost.Booster | None:
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        return xgboost.Booster(model_file=str(Path(directory) / XGBOOST_FILE))
