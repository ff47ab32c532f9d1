"""One pipeline run, joined across the systems that saw it: the MLflow parent run (its id
is the run id people quote), the Prefect flow run and the Ray Tune experiment it tagged,
its trials, the model version it registered with that bundle's lineage (data versions,
config hash, code version), and the version the `champion` alias serves now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow import MlflowClient

from components.artifacts.registry import CHAMPION, read_bundle_json


@dataclass(frozen=True)
class RunLineage:
    run_id: str
    run_name: str
    pipeline: str
    status: str
    started_ms: int
    prefect_flow_run: str | None
    tune_experiment: str | None
    trials: int
    chosen_trial_run: str | None
    model: str | None
    version: str | None
    data: dict[str, Any]  # the bundle's lineage.json
    serving_version: str | None  # what `champion` points at now


def run_lineage(tracking_uri: str, run_id: str) -> RunLineage:
    """The run whose id is `run_id` or starts with it (at least 6 characters)."""
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient()
    parent = _find(client, run_id)
    experiment = parent.info.experiment_id
    children = client.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    registered = [
        v for child in children for v in client.search_model_versions(f"run_id = '{child.info.run_id}'")
    ]
    version = max(registered, key=lambda v: int(v.version)) if registered else None
    data = read_bundle_json(tracking_uri, version.name, str(version.version), "lineage.json") if version else {}
    serving = None
    if version is not None:
        try:
            serving = str(client.get_model_version_by_alias(version.name, CHAMPION).version)
        except mlflow.exceptions.MlflowException:
            serving = None
    tags = parent.data.tags
    flow_run = tags.get("rayline.prefect_flow_run_id") or None
    if flow_run and tags.get("rayline.prefect_flow_run_name"):
        flow_run = f"{tags['rayline.prefect_flow_run_name']} ({flow_run})"
    return RunLineage(
        run_id=parent.info.run_id,
        run_name=parent.info.run_name,
        pipeline=tags.get("rayline.pipeline", client.get_experiment(experiment).name),
        status=parent.info.status,
        started_ms=parent.info.start_time,
        prefect_flow_run=flow_run,
        tune_experiment=tags.get("rayline.tune_experiment") or None,
        trials=len(children),
        chosen_trial_run=version.run_id if version else None,
        model=version.name if version else None,
        version=str(version.version) if version else None,
        data=data,
        serving_version=serving,
    )


def _find(client: MlflowClient, run_id: str) -> Any:
    if len(run_id) < 6:
        raise LookupError(f"run id {run_id!r}: give at least 6 characters of it")
    experiments = [e.experiment_id for e in client.search_experiments()]
    matches = [
        r for r in client.search_runs(experiments, filter_string="tags.`rayline.pipeline` != ''", max_results=5000)
        if r.info.run_id.startswith(run_id)
    ]
    if not matches:
        raise LookupError(f"no pipeline run with id {run_id!r} in {mlflow.get_tracking_uri()}")
    if len(matches) > 1:
        raise LookupError(f"run id {run_id!r} is ambiguous: {[m.info.run_id for m in matches]}")
    return matches[0]
