"""Fitting a scikit-learn estimator kind on the silver tables, as a Ray task or Tune trial.

The estimator reads its train and validation splits at the pinned Delta versions, fits,
and reports the same metric names as the torch loop (`val_loss`, `val_accuracy`, ...), so
selection, tracking and registration treat both families alike.
"""

from __future__ import annotations

import tempfile
from typing import Any

import ray
from ray import tune

from components.artifacts.estimator_io import write_estimator_checkpoint
from components.data.modalities.info import DataInfo
from components.data.silver import Decoder, read_arrays
from components.evaluation.scoring import validation_scores
from components.models import build


def fit_estimator(
    config: dict[str, Any], tables: dict[str, tuple[str, int]], columns: list[str], label_dtype: str, out_dir: str,
    inputs: Decoder | None = None,
) -> dict[str, float]:
    """Fit `config["model"]` on the train table, score it on val, write a checkpoint dir.

    The labels are the pipeline's label indices; the estimator learns them (and the
    feature count) at fit, and is scored over all of the data's classes (`config["info"]`).
    `inputs` makes model inputs of the silver columns where they are not the inputs as
    they are (a fitted state's `batch_inputs`: text into bag-of-words vectors)."""
    spec = config["model"]
    task = config["task"]
    estimator = build(spec, task=task)
    x_train, y_train = read_arrays(*tables["train"], columns, label_dtype, inputs)
    x_val, y_val = read_arrays(*tables["val"], columns, label_dtype, inputs)
    estimator.fit(x_train, y_train)
    out_features = DataInfo.from_dict(config["info"]).out_features
    metrics = {"epoch": 0, **validation_scores(estimator, x_val, y_val, task, out_features)}
    write_estimator_checkpoint(out_dir, estimator, {**spec, "params": {**spec["params"], "task": task}}, metrics)
    return metrics


@ray.remote(num_cpus=1)
def fit_estimator_task(
    config: dict[str, Any], tables: dict[str, tuple[str, int]], columns: list[str], label_dtype: str, out_dir: str,
    inputs: Decoder | None = None,
) -> dict[str, float]:
    """`fit_estimator` as a Ray task: it runs wherever the cluster has a free CPU."""
    return fit_estimator(config, tables, columns, label_dtype, out_dir, inputs)


def estimator_trial(
    config: dict[str, Any], tables: dict[str, tuple[str, int]], columns: list[str], label_dtype: str,
    inputs: Decoder | None = None,
) -> None:
    """Inside a Ray Tune function trial: one fit, one report with its checkpoint."""
    with tempfile.TemporaryDirectory() as tmp:
        metrics = fit_estimator(config, tables, columns, label_dtype, tmp, inputs)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
