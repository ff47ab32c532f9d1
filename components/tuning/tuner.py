"""Hyperparameter search with Ray Tune over the same loop the trainer runs.

Train V2 pattern: with one worker per trial the loop runs directly as the trial function
(no worker group to start per trial); with several, the trial is a small driver that
builds a TorchTrainer and forwards its reports to Tune with `TuneReportCallback`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray
import ray.data
from ray import tune
from ray.tune.integration.ray_train import CHECKPOINT_PATH_KEY, TuneReportCallback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from components.config import TrainingConfig, TuningConfig, apply_overrides
from components.training.loop import train_model
from components.training.outcome import TrialOutcome
from components.models import is_estimator
from components.training.estimator_fit import estimator_trial
from components.training.ray_session import SilverInputs, TuneSession, make_trainer, require_capacity
from components.tuning.search_space import to_tune_space


def run_search(
    base: dict[str, Any],
    inputs: SilverInputs,
    tuning: TuningConfig,
    *,
    storage_path: str,
    name: str,
) -> tune.ResultGrid:
    """Run `tuning.num_samples` trials of the loop config `base` with `tuning.space` applied."""
    training = TrainingConfig.model_validate(base["training"])
    if is_estimator(base["model"]):
        # One fit per trial on in-memory arrays: a Ray actor with one CPU, no worker group.
        trainable = tune.with_parameters(
            estimator_trial, base=base, tables=inputs.tables, columns=inputs.columns, label_dtype=inputs.label_dtype
        )
        resources = {"CPU": 1}
        training = training.model_copy(update={"num_workers": 1, "use_gpu": False})
    elif training.num_workers == 1:
        trainable = tune.with_parameters(_trial, base=base, datasets=inputs.datasets())
        resources = {"CPU": 1, "GPU": 1 if training.use_gpu else 0}
    else:
        trainable = tune.with_parameters(_driver, base=base, datasets=inputs.datasets(), storage_path=storage_path)
        # The driver only waits on its TorchTrainer, whose workers hold the real resources.
        resources = {"CPU": _DRIVER_CPUS}
    require_capacity(training.num_workers, training.use_gpu, _DRIVER_CPUS if training.num_workers > 1 else 0.0)
    scheduler = (
        ASHAScheduler(time_attr="training_iteration", max_t=training.epochs, grace_period=tuning.grace_period)
        if tuning.scheduler == "asha"
        else FIFOScheduler()
    )
    tuner = tune.Tuner(
        tune.with_resources(trainable, resources),
        param_space=to_tune_space(tuning.space),
        tune_config=tune.TuneConfig(
            metric=tuning.metric,
            mode=tuning.mode,
            scheduler=scheduler,
            num_samples=tuning.num_samples,
            max_concurrent_trials=tuning.max_concurrent_trials or concurrent_trials(training),
            trial_dirname_creator=lambda trial: trial.trial_id,
        ),
        run_config=tune.RunConfig(name=name, storage_path=storage_path, verbose=1),  # trial table as progress
    )
    return tuner.fit()


_DRIVER_CPUS = 0.01


def concurrent_trials(training: TrainingConfig) -> int:
    """How many trials fit at once: each takes `num_workers` CPUs (or GPUs), and one CPU
    stays free for Ray Data's read tasks, which would otherwise starve."""
    resources = ray.cluster_resources()
    if training.use_gpu:
        return max(1, int(resources.get("GPU", 1)) // training.num_workers)
    return max(1, (int(resources.get("CPU", 1)) - 1) // training.num_workers)


def trial_outcomes(grid: tune.ResultGrid, space_keys: list[str]) -> list[TrialOutcome]:
    """Every trial's params, per-epoch history and last checkpoint, in trial order."""
    outcomes = []
    for result in grid:
        metrics = dict(result.metrics or {})
        frame = result.metrics_dataframe
        history = [_reported(row) for row in frame.to_dict("records")] if frame is not None else []
        config = result.config or {}
        outcomes.append(
            TrialOutcome(
                trial_id=str(metrics.get("trial_id") or Path(result.path).name),
                params={k: config[k] for k in space_keys if k in config},
                history=history,
                checkpoint=_checkpoint_path(result),
                error=str(result.error) if result.error else None,
                metrics=_reported(metrics),
            )
        )
    return outcomes


# What Tune adds to every report; the loop's own metrics are the rest.
_TUNE_KEYS = {
    "timestamp", "checkpoint_dir_name", "done", "training_iteration", "trial_id", "date", "time_this_iter_s",
    "time_total_s", "pid", "hostname", "node_ip", "time_since_restore", "iterations_since_restore",
    "should_checkpoint", "experiment_tag",
}


def _reported(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in _TUNE_KEYS and not k.startswith("config")}


def _checkpoint_path(result: tune.Result) -> str | None:
    # Function trials report checkpoints to Tune; driver trials' TorchTrainers upload their
    # own and TuneReportCallback passes the path along in the metrics.
    if result.checkpoint is not None:
        return result.checkpoint.path
    path = (result.metrics or {}).get(CHECKPOINT_PATH_KEY)
    return str(path) if path else None


def _trial(params: dict[str, Any], *, base: dict[str, Any], datasets: dict[str, ray.data.Dataset]) -> None:
    config = apply_overrides(base, params)
    train_model(config, TuneSession(datasets, use_gpu=config["training"].get("use_gpu", False)))


def _driver(
    params: dict[str, Any], *, base: dict[str, Any], datasets: dict[str, ray.data.Dataset], storage_path: str
) -> None:
    config = apply_overrides(base, params)
    training = TrainingConfig.model_validate(config["training"])
    trial_id = tune.get_context().get_trial_id()
    make_trainer(
        config,
        datasets,
        num_workers=training.num_workers,
        use_gpu=training.use_gpu,
        storage_path=str(Path(storage_path) / "trials"),
        name=f"train-{trial_id}",
        callbacks=[TuneReportCallback()],
    ).fit()
