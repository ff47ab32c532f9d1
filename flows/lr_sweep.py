"""Flow `lr_sweep`: the learning-rate range test of a pipeline's model on its training split,
run as a Ray task, with the loss-against-rate plot and the suggested rate in MLflow."""

from __future__ import annotations

from typing import Any

import ray
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from components.artifacts.tracking import end_run, log_files, log_metrics, start_run, use_tracking
from components.data.silver import SilverSnapshot, split_arrays
from components.models import family
from components.training.loop import loop_config
from components.training.lr_range import LRRangeResult, render_lr_range, sweep_loop_config
from flows.train import load_snapshot
from flows.workspace import Workspace, connect_ray


@ray.remote(num_cpus=1)
def _sweep(config: dict[str, Any], snapshot: SilverSnapshot, start: float, end: float, steps: int) -> LRRangeResult:
    inputs, labels = split_arrays(snapshot, "train")
    return sweep_loop_config(config, inputs, labels, start_lr=start, end_lr=end, steps=steps)


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE, task_run_name="ray-lr-sweep")
def sweep_on_ray(ws: Workspace, snapshot: SilverSnapshot, start: float, end: float, steps: int) -> LRRangeResult:
    connect_ray(ws.profile)
    augment = ws.config.images.augment if ws.config.images is not None else None
    config = loop_config(ws.config.model.model_dump(), ws.config.training.model_dump(), snapshot.features.info, augment)
    return ray.get(_sweep.remote(config, snapshot, start, end, steps))


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def log_sweep(ws: Workspace, result: LRRangeResult, start: float, end: float, steps: int) -> str:
    experiment_id = use_tracking(ws.profile.mlflow_tracking_uri, ws.name, ws.profile.mlflow_artifacts)
    run_id = start_run(experiment_id, f"{ws.name}-lr-sweep", {"start_lr": start, "end_lr": end, "steps": steps})
    log_metrics(run_id, {"suggested_lr": result.suggested_lr, "min_loss_lr": result.min_loss_lr})
    log_files(run_id, {"lr_sweep.png": render_lr_range(result)}, "report")
    end_run(run_id)
    return run_id


@flow(name="lr-sweep", log_prints=True, validate_parameters=False)
def lr_sweep(ws: Workspace, start: float = 1e-5, end: float = 10.0, steps: int = 100) -> tuple[LRRangeResult, str]:
    if family(ws.config.model) != "torch":
        raise ValueError(f"{ws.name}: lr-sweep is for torch kinds; {ws.config.model.kind!r} has no learning rate")
    snapshot = load_snapshot(ws.lake)
    result = sweep_on_ray(ws, snapshot, start, end, steps)
    return result, log_sweep(ws, result, start, end, steps)
