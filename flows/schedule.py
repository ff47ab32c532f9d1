"""`rayline schedule`: the pipeline as a Prefect deployment, run on a cron line or an
interval, when the watcher commits new data and when monitoring finds drift, served by this
process (a Prefect runner) against a Prefect server; beside it, optionally, the monitor of
the served model on an interval. One run of a pipeline at a time; a run with nothing new
trains nothing (see `pipeline`), a run asked for by drift retrains."""

from __future__ import annotations

import json
import time
from pathlib import Path
from uuid import UUID

from prefect import flow, runtime
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter, FlowRunFilterDeploymentId, FlowRunFilterState, FlowRunFilterStateName,
)
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy, FlowRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.states import Cancelled

from components.config import RunScheduleConfig
from components.config_check import load_checked
from flows import console
from flows.events import DRIFT, NEW_DATA, model_resource, pipeline_resource
from flows.monitor import monitor
from flows.pipeline import pipeline
from flows.workspace import Workspace, conf_dir_of


@flow(name="scheduled-pipeline", log_prints=True)
def scheduled_pipeline(config: str, force: bool = False) -> str:
    """One scheduled run: ingest, then train, evaluate and register if anything is new.
    The endpoint is not touched: `rayline serve` serves champions."""
    path = Path(config)
    ws = Workspace.of(load_checked(path), conf_dir_of(path))
    if runtime.deployment.id:
        with get_client(sync_client=True) as client:
            dropped = drop_redundant_waiting(client, UUID(runtime.deployment.id))
        if dropped:
            console.say(f"{time.strftime('%H:%M:%S')} {len(dropped)} queued run(s) dropped: the one left covers them")
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


WAITING = "AwaitingConcurrencySlot"  # Prefect's state for a run the concurrency limit holds back


def drop_redundant_waiting(client: SyncPrefectClient, deployment_id: UUID) -> list[FlowRun]:
    """Cancel the deployment's runs that wait for its one slot, except the latest due with
    each set of parameters; returns the cancelled runs.

    Under `overlap: wait`, runs that outlast their interval would otherwise queue without
    bound. The run kept ingests everything the dropped ones would have; a drift run
    (`force`) has other parameters, so it is never dropped for a plain one."""
    waiting = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
            state=FlowRunFilterState(name=FlowRunFilterStateName(any_=[WAITING])),
        ),
        sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=200,  # the most the API returns at once
    )
    latest = {json.dumps(run.parameters, sort_keys=True, default=str): run.id for run in waiting}
    kept = set(latest.values())
    dropped = [run for run in waiting if run.id not in kept]
    for run in dropped:
        client.set_flow_run_state(run.id, Cancelled(message="dropped: a later queued run covers it"), force=True)
    return dropped


@flow(name="scheduled-monitor", log_prints=True)
def scheduled_monitor(config: str) -> str:
    """One look at the served model's inference log; drift sends the event `on_drift` runs on."""
    path = Path(config)
    ws = Workspace.of(load_checked(path), conf_dir_of(path))
    result = monitor(ws.profile, ws.config.serving.name, ws.config.monitoring)
    drifted = result.report.drifted_features if result.report else []
    outcome = f"{ws.config.serving.name} v{result.version}: {result.verdict} over {result.rows} logged rows" + (
        f" ({', '.join(drifted)})" if drifted else "") + ("; retrain asked for" if result.announced else "")
    console.say(f"{time.strftime('%H:%M:%S')} {outcome}")
    return outcome


def deployments(ws: Workspace, config_path: Path, schedule: RunScheduleConfig, force: bool = False) -> list[RunnerDeployment]:
    """What `rayline schedule` serves: the pipeline (its clock, its triggers, one run at a
    time) and, with `monitor_interval_seconds`, the monitor of its served model."""
    config = str(Path(config_path).resolve())
    strategy = ConcurrencyLimitStrategy.ENQUEUE if schedule.overlap == "wait" else ConcurrencyLimitStrategy.CANCEL_NEW
    triggers = []
    if schedule.on_new_data:
        triggers.append(DeploymentEventTrigger(
            name=f"{ws.name}: new data", expect={NEW_DATA},
            match={"prefect.resource.id": pipeline_resource(ws.name)["prefect.resource.id"]},
        ))
    if schedule.on_drift:
        # Drift with no new rows still retrains: the model is refitted (on whatever has
        # arrived since) and must win the champion rule and pass the gates to serve.
        triggers.append(DeploymentEventTrigger(
            name=f"{ws.name}: drift", expect={DRIFT},
            match={"prefect.resource.id": model_resource(ws.config.serving.name)["prefect.resource.id"]},
            parameters={"config": config, "force": True},
        ))
    served = [scheduled_pipeline.to_deployment(
        name=ws.name,
        cron=schedule.cron,
        interval=schedule.interval_seconds,
        parameters={"config": config, "force": force},
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=strategy),
        triggers=triggers,
        description=f"rayline pipeline {ws.name}",
    )]
    if schedule.monitor_interval_seconds:
        served.append(scheduled_monitor.to_deployment(
            name=ws.name, interval=schedule.monitor_interval_seconds, parameters={"config": config},
            concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
            description=f"rayline drift monitor of {ws.config.serving.name}",
        ))
    return served
