"""MLflow tracking: one parent run per pipeline run, one child run per trial.

Everything goes through `MlflowClient` with explicit run ids: Prefect runs tasks in worker
threads, where MLflow's fluent "active run" would not be the one we mean.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from components.artifacts.checkpoint_files import STATE_FILE
from components.evaluation.outcome import TrialOutcome

_PARAM_CHARS = 6000  # MLflow's limit on one param value


def use_tracking(tracking_uri: str, experiment: str, artifact_location: str) -> str:
    """Point MLflow at the tracking store and return the id of `experiment` (created if new)."""
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(experiment, artifact_location=f"{artifact_location}/{experiment}")


def start_run(
    experiment_id: str, name: str, params: dict[str, Any], parent_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    tags = {**(tags or {}), **({"mlflow.parentRunId": parent_id} if parent_id else {})}
    client = MlflowClient()
    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    if params:
        client.log_batch(run_id, params=[Param(k, str(v)[:_PARAM_CHARS]) for k, v in flatten(params).items()])
    return run_id


def log_trial(experiment_id: str, parent_id: str, outcome: TrialOutcome) -> str:
    """A finished child run with the trial's params and per-epoch metrics (step = epoch)."""
    run_id = start_run(experiment_id, outcome.trial_id, outcome.params, parent_id)
    now = int(time.time() * 1000)
    metrics = [
        Metric(key, float(value), now, int(row.get("epoch", i)))
        for i, row in enumerate(outcome.history)
        for key, value in row.items()
        if _is_metric(key, value)
    ]
    client = MlflowClient()
    for start in range(0, len(metrics), 1000):  # log_batch takes at most 1000 metrics
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
    if outcome.checkpoint:
        # The checkpoint's self-description (spec, epoch, metrics); the weights stay in
        # Ray's storage, and the chosen trial's full bundle is logged on registration.
        client.set_tag(run_id, "checkpoint", outcome.checkpoint)
        client.log_artifact(run_id, str(Path(outcome.checkpoint) / STATE_FILE), "checkpoint")
    if outcome.error:
        client.set_tag(run_id, "error", outcome.error[:5000])
    client.set_terminated(run_id, "FAILED" if outcome.error else "FINISHED")
    return run_id


def log_metrics(run_id: str, metrics: dict[str, float]) -> None:
    MlflowClient().log_batch(
        run_id, metrics=[Metric(k, float(v), int(time.time() * 1000), 0) for k, v in metrics.items() if _is_metric(k, v)]
    )


def log_files(run_id: str, files: dict[str, bytes], artifact_path: str) -> None:
    """Log in-memory files (name -> bytes) as artifacts of the run."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        if files:
            MlflowClient().log_artifacts(run_id, tmp, artifact_path)


def end_run(run_id: str, failed: bool = False) -> None:
    MlflowClient().set_terminated(run_id, "FAILED" if failed else "FINISHED")


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: dotted keys, as in the config and the search space."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{dotted}."))
        else:
            out[dotted] = value
    return out


def _is_metric(key: str, value: Any) -> bool:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return numeric and key != "epoch" and math.isfinite(value) and "/" not in key


def set_tags(run_id: str, tags: dict[str, str]) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def has_run_tagged(experiment_id: str, tags: dict[str, str]) -> bool:
    """Whether a run of the experiment carries every one of `tags`."""
    where = " and ".join(f"tags.`{key}` = '{value}'" for key, value in tags.items())
    return bool(MlflowClient().search_runs([experiment_id], where, max_results=1))
