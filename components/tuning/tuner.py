"""Hyperparameter search with Ray Tune over the same trainers a training run uses.

Train V2 pattern: with one worker per trial the loop runs directly as the trial function
(no worker group to start per trial); with several, the trial is a small driver that
builds a TorchTrainer and forwards its reports to Tune. Every trial picks its trainer from
its own config (`components.training.trainers`), so one search can span families.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray
import ray.data
from ray import tune
from ray.tune.integration.ray_train import CHECKPOINT_PATH_KEY
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator

from ray.tune.execution.placement_groups import PlacementGroupFactory

from components.config import TrainingConfig, TuningConfig
from components.evaluation.outcome import TrialOutcome
from components.models import family
from components.training.ray_session import SilverInputs, require_capacity
from components.training.trainers import DRIVER_CPUS, trainer_for
from components.tuning.search_space import trial_config, tune_space


def run_search(
    base: dict[str, Any],
    inputs: SilverInputs,
    tuning: TuningConfig,
    *,
    storage_path: str,
    name: str,
    callbacks: Sequence[tune.Callback] = (),
) -> tune.ResultGrid:
    """Run `tuning.num_samples` trials of the loop config `base` with `tuning.space` applied
    (per family, when `tuning.families` searches several kinds at once)."""
    space = tune_space(tuning)
    kinds = [{"kind": k} for k in tuning.families] or [base["model"]]
    families = {family(spec) for spec in kinds}
    training = TrainingConfig.model_validate(base["training"])
    if families == {"sklearn"}:
        training = training.model_copy(update={"num_workers": 1, "use_gpu": False})
    trainers = [trainer_for(spec) for spec in kinds]
    drivers = any(t.drives(training) for t in trainers)
    require_capacity(training.num_workers, training.use_gpu, DRIVER_CPUS if drivers else 0.0)
    # Estimators read in-memory arrays; the others stream the same tables through Ray Data.
    datasets = inputs.datasets() if any(t.streams for t in trainers) else None
    trainable = tune.with_parameters(_trial, base=base, inputs=inputs, datasets=datasets, storage_path=storage_path)
    tuner = tune.Tuner(
        tune.with_resources(trainable, _TrialResources(base)),
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=tuning.metric,
            mode=tuning.mode,
            scheduler=_scheduler(tuning, families, training),
            # seeded sampling; the concurrency limit must live in the generator, since Tune
            # ignores max_concurrent_trials beside a generator (too many trials starve Ray Data)
            search_alg=BasicVariantGenerator(
                random_state=tuning.seed,
                max_concurrent=tuning.max_concurrent_trials or concurrent_trials(training),
            ),
            num_samples=tuning.num_samples,
            trial_dirname_creator=lambda trial: trial.trial_id,
        ),
        # Tune's own trial table is the progress report unless callbacks report it instead.
        run_config=tune.RunConfig(
            name=name, storage_path=storage_path, verbose=0 if callbacks else 1, callbacks=list(callbacks)
        ),
    )
    return tuner.fit()


def _scheduler(tuning: TuningConfig, families: set[str], training: TrainingConfig) -> Any:
    if tuning.scheduler != "asha" or len(families) > 1:
        # Early stopping compares trials at equal progress; an epoch and a boosting round
        # are not equal progress, so a search across families runs every trial to the end.
        return FIFOScheduler()
    if families == {"xgboost"}:
        # Boosting trials report rounds as "epoch", not every round (see xgboost_fit), and end
        # at their own n_estimators, which the space may tune: max_t only has to exceed it.
        return ASHAScheduler(time_attr="epoch", max_t=_MAX_ROUNDS, grace_period=tuning.grace_period)
    return ASHAScheduler(time_attr="training_iteration", max_t=training.epochs, grace_period=tuning.grace_period)


class _TrialResources:
    """What one trial holds, by the family it drew (`FamilyTrainer.trial_resources`)."""

    def __init__(self, base: dict[str, Any]) -> None:
        self.base = base

    def __call__(self, params: dict[str, Any]) -> PlacementGroupFactory:
        config = trial_config(self.base, params)
        training = TrainingConfig.model_validate(config["training"])
        return PlacementGroupFactory([trainer_for(config["model"]).trial_resources(training)])


_MAX_ROUNDS = 1_000_000


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


def _trial(
    params: dict[str, Any],
    *,
    base: dict[str, Any],
    inputs: SilverInputs,
    datasets: dict[str, ray.data.Dataset] | None,
    storage_path: str,
) -> None:
    config = trial_config(base, params)
    training = TrainingConfig.model_validate(config["training"])
    trainer_for(config["model"]).trial(config, inputs, datasets, training, storage_path)
