"""`rayline schedule`: the pipeline as a Prefect deployment, run on a cron line or an
interval and when the watcher commits new data, served by this process (a Prefect runner)
against a Prefect server. One run of a pipeline at a time; a run with nothing new trains
nothing (see `pipeline`)."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger, emit_event

from components.config import RunScheduleConfig
from components.config_check import load_checked
from flows import console
from flows.pipeline import pipeline
from flows.workspace import Workspace, conf_dir_of

NEW_DATA = "rayline.bronze.committed"


def pipeline_resource(name: str) -> dict[str, str]:
    return {"prefect.resource.id": f"rayline.pipeline.{name}", "prefect.resource.name": name}


@flow(name="scheduled-pipeline", log_prints=True)
def scheduled_pipeline(config: str, force: bool = False) -> str:
    """One scheduled run: ingest, then train, evaluate and register if anything is new.
    The endpoint is not touched: `rayline serve` serves champions."""
    path = Path(config)
    ws = Workspace.of(load_checked(path), conf_dir_of(path))
    summary = pipeline(ws, serve=False, force=force)
    if summary.skipped:
        outcome = summary.skipped
    elif summary.fit is None:
        outcome = f"stopped after ingest: {summary.ingest.stopped if summary.ingest else 'no data'}"
    else:
        reg = summary.fit.registration
        outcome = f"{ws.name}: {reg.name} v{reg.version} registered, {'champion' if reg.champion else 'not champion'}"
    console.say(f"{time.strftime('%H:%M:%S')} {outcome}")  # the runner's terminal: one line per run
    return outcome


def deployment(ws: Workspace, config_path: Path, schedule: RunScheduleConfig, force: bool = False) -> RunnerDeployment:
    """The deployment `rayline schedule` serves: its clock, its new-data trigger, one run at a time."""
    strategy = ConcurrencyLimitStrategy.ENQUEUE if schedule.overlap == "wait" else ConcurrencyLimitStrategy.CANCEL_NEW
    triggers = [
        DeploymentEventTrigger(
            name=f"{ws.name}: new data", expect={NEW_DATA},
            match={"prefect.resource.id": pipeline_resource(ws.name)["prefect.resource.id"]},
        )
    ] if schedule.on_new_data else []
    return scheduled_pipeline.to_deployment(
        name=ws.name,
        cron=schedule.cron,
        interval=schedule.interval_seconds,
        parameters={"config": str(Path(config_path).resolve()), "force": force},
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=strategy),
        triggers=triggers,
        description=f"rayline pipeline {ws.name}",
    )


def announce_new_data(name: str, bronze_version: int | None, rows: int) -> None:
    """Tell the Prefect server that the watcher committed rows: a deployment scheduled with
    `on_new_data` runs. Without a server the event goes nowhere."""
    emit_event(NEW_DATA, resource=pipeline_resource(name), payload={"bronze_version": bronze_version, "rows": rows})
