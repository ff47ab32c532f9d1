"""Fitting an ensemble on the silver tables, its member and fold fits spread over Ray.

The ensemble's fits (every member on all training rows, and once per fold for weighted
and stacking ensembles) are independent: each runs as a Ray task wherever the cluster has
a CPU, on training arrays put in the object store once. Ray's warm worker pool makes this
much cheaper than joblib's Ray backend, which starts a pool of fresh actors per fit. The
ensemble is then scored on the validation split like any trial (`val_loss`,
`val_accuracy`, ...), and so is every member, for the leaderboard.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ray

from components.artifacts.ensemble_io import write_ensemble_checkpoint
from components.data.modalities.info import DataInfo
from components.data.silver import Decoder, read_arrays
from components.evaluation.outcome import TrialOutcome
from components.evaluation.scoring import validation_scores
from components.models import build
from components.models.ensemble import Ensemble, FitJob
from components.training.torch_estimator import fit_torch_member

ENSEMBLE_TRIAL = "ensemble"


def fit_ensemble(
    config: dict[str, Any],
    tables: dict[str, tuple[str, int]],
    columns: list[str],
    label_dtype: str,
    out_dir: str,
    *,
    members: list[dict[str, Any]] | None = None,
    parallel: bool = True,
    inputs: Decoder | None = None,
) -> list[TrialOutcome]:
    """Fit the ensemble `config["model"]` (with `members` in place of its own, when given)
    on the train table and write its checkpoint to `out_dir`.

    Returns the ensemble's outcome first, then one per member (validation scores, no
    checkpoint of its own: the members live inside the ensemble's).
    `parallel` runs the fits on the connected Ray cluster; without it, in this process.
    `inputs` makes model inputs of the silver columns (see `fit_estimator`).
    """
    spec, task = config["model"], config["task"]
    info = DataInfo.from_dict(config["info"])
    params = {**spec["params"], "training": config["training"]}
    if members is not None:
        params["members"] = members
    ensemble: Ensemble = build({"kind": spec["kind"], "params": params}, task=task)
    if task == "classification":
        # the labels are the data's class indices: every class keeps its column (the one
        # serving answers with), even when the training rows lack it
        ensemble.set_params(classes=list(range(len(info.classes))))
    x_train, y_train = read_arrays(*tables["train"], columns, label_dtype, inputs)
    x_val, y_val = read_arrays(*tables["val"], columns, label_dtype, inputs)
    if parallel:
        jobs = ensemble.plan(x_train, y_train)
        x_ref, y_ref = ray.put(x_train), ray.put(y_train)
        fitted = ray.get([_run.remote(job, x_ref, y_ref, config["training"]) for job in jobs])
        ensemble.complete(x_train, y_train, jobs, fitted)
    else:
        ensemble.fit(x_train, y_train)
    out_features = info.out_features
    metrics = {"epoch": 0, **validation_scores(ensemble, x_val, y_val, task, out_features)}
    stored = {"kind": spec["kind"], "params": {**params, "members": ensemble.members, "task": task}}
    write_ensemble_checkpoint(out_dir, ensemble, stored, metrics)

    weights = dict(zip(ensemble.names_, ensemble.weights_.tolist()))
    outcomes = [
        TrialOutcome(
            trial_id=ENSEMBLE_TRIAL,
            params={"method": ensemble.method, "members": ensemble.names_, "weights": weights},
            history=[metrics],
            checkpoint=out_dir,
            metrics=metrics,
        )
    ]
    for name, model, member_spec in zip(ensemble.names_, ensemble.members_, ensemble.member_specs_):
        scores = {"epoch": 0, **validation_scores(model, x_val, y_val, task, out_features)}
        outcomes.append(
            TrialOutcome(
                trial_id=f"{ENSEMBLE_TRIAL}-member-{name}",
                params={"model.kind": member_spec["kind"], "weight": weights[name]},
                history=[scores],
                checkpoint=None,
                metrics=scores,
            )
        )
    return outcomes


@ray.remote(num_cpus=1)
def _run(job: FitJob, x: np.ndarray, y: np.ndarray, training: dict[str, Any]) -> Any:
    return job.run(x, y, training, fit_torch_member)
