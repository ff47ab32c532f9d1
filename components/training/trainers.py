"""Which trainer each model family uses: the one table of it.

    family     a training run                         a tuning trial                    trial holds
    torch      TorchTrainer over the epoch loop       the loop in the trial (1 worker)  1 CPU (or GPU)
                                                      or a driver of a TorchTrainer     next to nothing
    xgboost    XGBoostTrainer                         a driver of an XGBoostTrainer     next to nothing
    sklearn    one fit as a Ray task                  one fit in the trial              1 CPU
    ensemble   member and fold fits as Ray tasks      (not searched: built from the best trial of each family)

Flows and the tuner ask `trainer_for(spec)` instead of switching on the family themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import ray.data
from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback

from components.config import TrainingConfig
from components.evaluation.outcome import TrialOutcome
from components.models import Family, family
from components.training.ensemble_fit import fit_ensemble
from components.training.estimator_fit import estimator_trial, fit_estimator_task
from components.training.loop import train_model
from components.training.ray_session import (
    SilverInputs, TuneSession, make_trainer, require_capacity, training_outcome,
)
from components.training.xgboost_fit import make_xgboost_trainer

# A driver trial only waits on its trainer, whose workers hold the real resources.
DRIVER_CPUS = 0.01


@dataclass(frozen=True)
class FamilyTrainer:
    run: Callable[[dict[str, Any], SilverInputs, TrainingConfig, str, str], list[TrialOutcome]]
    trial: Callable[[dict[str, Any], SilverInputs, dict[str, ray.data.Dataset] | None, TrainingConfig, str], None]
    trial_resources: Callable[[TrainingConfig], dict[str, float]]  # what one trial holds
    streams: bool  # reads the splits as Ray Datasets (else as in-memory arrays)

    def drives(self, training: TrainingConfig) -> bool:
        """Whether a trial only drives a trainer whose workers hold the resources."""
        return self.trial_resources(training).get("CPU", 0) < 1


def trainer_for(spec: dict[str, Any]) -> FamilyTrainer:
    return TRAINERS[family(spec)]


# ---------------------------------------------------------------------------- training runs


def _run_torch(config: dict[str, Any], inputs: SilverInputs, training: TrainingConfig, storage: str, name: str) -> list[TrialOutcome]:
    require_capacity(training.num_workers, training.use_gpu)
    trainer = make_trainer(config, inputs.datasets(), num_workers=training.num_workers, use_gpu=training.use_gpu,
                           storage_path=storage, name=name)
    return [training_outcome(trainer.fit(), name)]


def _run_xgboost(config: dict[str, Any], inputs: SilverInputs, training: TrainingConfig, storage: str, name: str) -> list[TrialOutcome]:
    require_capacity(training.num_workers, use_gpu=False)
    trainer = make_xgboost_trainer(config, inputs.datasets(), num_workers=training.num_workers,
                                   use_gpu=training.use_gpu, storage_path=storage, name=name)
    return [training_outcome(trainer.fit(), name)]


def _run_estimator(config: dict[str, Any], inputs: SilverInputs, training: TrainingConfig, storage: str, name: str) -> list[TrialOutcome]:
    out_dir = f"{storage}/{name}/model"
    metrics = ray.get(fit_estimator_task.remote(
        config, inputs.tables, inputs.columns, inputs.label_dtype, out_dir, inputs.inputs
    ))
    return [TrialOutcome(trial_id=name, params={}, history=[metrics], checkpoint=out_dir, metrics=metrics)]


def _run_ensemble(config: dict[str, Any], inputs: SilverInputs, training: TrainingConfig, storage: str, name: str) -> list[TrialOutcome]:
    """The ensemble's outcome, then one per member."""
    return fit_ensemble(
        config, inputs.tables, inputs.columns, inputs.label_dtype, f"{storage}/{name}/ensemble", inputs=inputs.inputs
    )


# ---------------------------------------------------------------------------- tuning trials


def _trial_torch(config: dict[str, Any], inputs: SilverInputs, datasets: Any, training: TrainingConfig, storage: str) -> None:
    if training.num_workers == 1:
        train_model(config, TuneSession(datasets, use_gpu=training.use_gpu))
    else:
        _driver(make_trainer, config, datasets, training, storage)


def _trial_xgboost(config: dict[str, Any], inputs: SilverInputs, datasets: Any, training: TrainingConfig, storage: str) -> None:
    _driver(make_xgboost_trainer, config, datasets, training, storage)


def _trial_estimator(config: dict[str, Any], inputs: SilverInputs, datasets: Any, training: TrainingConfig, storage: str) -> None:
    estimator_trial(config, inputs.tables, inputs.columns, inputs.label_dtype, inputs.inputs)


def _not_searched(config: dict[str, Any], *_: Any) -> None:
    raise ValueError("an ensemble is not searched as a family: set model.kind: ensemble over tuning.families")


def _driver(make: Callable[..., Any], config: dict[str, Any], datasets: Any, training: TrainingConfig, storage: str) -> None:
    """A trial that drives a trainer and forwards its reports, checkpoint path included, to Tune."""
    trial_id = tune.get_context().get_trial_id()
    make(
        config, datasets, num_workers=training.num_workers, use_gpu=training.use_gpu,
        storage_path=str(Path(storage) / "trials"), name=f"train-{trial_id}", callbacks=[TuneReportCallback()],
    ).fit()


def _torch_trial_resources(training: TrainingConfig) -> dict[str, float]:
    if training.num_workers > 1:
        return {"CPU": DRIVER_CPUS}
    return {"CPU": 1, "GPU": 1 if training.use_gpu else 0}


TRAINERS: dict[Family, FamilyTrainer] = {
    "torch": FamilyTrainer(_run_torch, _trial_torch, _torch_trial_resources, streams=True),
    "xgboost": FamilyTrainer(_run_xgboost, _trial_xgboost, lambda _: {"CPU": DRIVER_CPUS}, streams=True),
    "sklearn": FamilyTrainer(_run_estimator, _trial_estimator, lambda _: {"CPU": 1}, streams=False),
    "ensemble": FamilyTrainer(_run_ensemble, _not_searched, lambda _: {"CPU": 1}, streams=False),
}
