"""Flow `pipeline`: ingest -> preprocess -> tune (or train) -> evaluate -> register -> deploy."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from components.artifacts.registry import CHAMPION, Registration, latest_lineage, resolve_version
from components.data.lake import Lake
from components.data.silver import SilverSnapshot
from components.evaluation.leaderboard import leaderboard
from components.evaluation.outcome import TrialOutcome, best_of
from components.training.ensemble_fit import ENSEMBLE_TRIAL
from flows.deploy import deploy
from flows.ingest import IngestReport, ingest
from flows.preprocess import preprocess
from flows.register import (
    build_bundle, close_run, config_hash, log_report, log_text, log_trials, open_parent_run, plan_evaluation,
    register, selection, tag_run,
)
from flows.retries import BACKOFF, transient_only
from flows.train import load_snapshot, model_summary, train, tune
from flows.workspace import Workspace


@dataclass
class FitResult:
    outcomes: list[TrialOutcome]
    best: TrialOutcome
    metrics: dict[str, float]
    registration: Registration
    snapshot: SilverSnapshot
    parent_run_id: str
    leaderboard: list[dict[str, Any]]


@dataclass
class PipelineSummary:
    name: str
    ingest: IngestReport | None = None
    fit: FitResult | None = None
    endpoint: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    skipped: str | None = None  # why nothing was trained: no new data since the last run


@flow(name="fit", log_prints=True, validate_parameters=False)
def fit(ws: Workspace, search: bool) -> FitResult:
    """Train (or search), then score, track and register the best bundle."""
    experiment_id, parent = open_parent_run(ws, "tune" if search else "train")
    snapshot = load_snapshot(ws.lake)
    plan_evaluation(ws, snapshot)
    layers = model_summary(ws, snapshot)
    if layers is not None:
        log_text(parent, "model_summary.txt", layers)
    run_name = f"{ws.name}-{parent[:8]}"
    tag_run(parent, {"rayline.tune_experiment": f"{ws.runs}/{run_name}"})
    outcomes = tune(ws, run_name) if search else train(ws, run_name)
    runs = log_trials(experiment_id, parent, outcomes)
    metric, mode = selection(ws)
    best = chosen(ws, outcomes, metric, mode)
    board = leaderboard(outcomes, metric, mode)
    bundle_dir, metrics, images = build_bundle(ws, best, snapshot, runs[best.trial_id], parent)
    log_report(runs[best.trial_id], images, board, parent)
    registration = register(ws, bundle_dir, runs[best.trial_id], metrics)
    close_run(parent, metrics)
    return FitResult(outcomes, best, metrics, registration, snapshot, parent, board)


def chosen(ws: Workspace, outcomes: list[TrialOutcome], metric: str, mode: str) -> TrialOutcome:
    """What gets registered: the ensemble when the config asks for one, else the best trial."""
    if ws.config.model.kind == "ensemble":
        return next(o for o in outcomes if o.trial_id == ENSEMBLE_TRIAL)
    return best_of(outcomes, metric, mode)


@flow(name="pipeline", log_prints=True, validate_parameters=False)
def pipeline(
    ws: Workspace, serve: bool = True, data_version: int | None = None, force: bool = False
) -> PipelineSummary:
    """The whole pipeline; `data_version` trains on that bronze version as it was (no ingest).
    A run whose data and config are those the newest model version was trained on trains
    nothing (unless `force`): it says so and serves the champion there is."""
    summary = PipelineSummary(ws.name)
    if data_version is None:
        summary.ingest = _timed(summary, "ingest", ingest, ws)
        if summary.ingest.stopped:
            return summary  # a schema change stops the run before anything trains on old data
        summary.skipped = None if force else nothing_new(ws)
        if summary.skipped:
            get_run_logger().info(summary.skipped)
            if serve and has_champion(ws):
                summary.endpoint = _timed(summary, "deploy", deploy, ws)
            return summary
    _timed(summary, "preprocess", preprocess, ws, data_version)
    summary.fit = _timed(summary, "tune" if ws.config.tuning else "train", fit, ws, ws.config.tuning is not None)
    # the endpoint serves the champion: a first version that failed a gate leaves none
    if serve and summary.fit.registration.has_champion:
        summary.endpoint = _timed(summary, "deploy", deploy, ws)
    return summary


@task(retries=2, retry_delay_seconds=BACKOFF, retry_condition_fn=transient_only, cache_policy=NO_CACHE)
def nothing_new(ws: Workspace) -> str | None:
    """Why training would repeat the newest model version (same bronze version, same
    config), or None when there is something new to learn from."""
    last = latest_lineage(ws.profile.mlflow_tracking_uri, ws.config.serving.name)
    bronze = Lake(ws.lake).version("bronze")
    if last is None or bronze is None:
        return None
    version, lineage = last
    if lineage.get("bronze_version") != bronze or lineage.get("config_hash") != config_hash(ws):
        return None
    return (f"no new data since {ws.config.serving.name} v{version} was trained on bronze v{bronze} with this "
            "config: not retraining (--force retrains)")


@task(cache_policy=NO_CACHE)
def has_champion(ws: Workspace) -> bool:
    try:
        resolve_version(ws.profile.mlflow_tracking_uri, ws.config.serving.name, CHAMPION)
    except LookupError:
        return False
    return True


def _timed(summary: PipelineSummary, stage: str, fn: Any, *args: Any) -> Any:
    started = time.perf_counter()
    result = fn(*args)
    summary.seconds[stage] = time.perf_counter() - started
    return result
