"""Flow `monitor`: a window of a model's inference log against the training reference its
bundle carries -> a drift report (console table; metrics, JSON and plots in MLflow) and,
when the data drifted, the event that a scheduled pipeline retrains on."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone

import polars as pl
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from components.artifacts.reference import REFERENCE_FILE
from components.artifacts.registry import fetch_bundle_file, read_bundle_json, resolve_version
from components.artifacts.tracking import (
    end_run, has_run_tagged, log_files, log_metrics, set_tags, start_run, use_tracking,
)
from components.config import MonitoringConfig, ProfileConfig, parse_window
from components.data.fitted_state import state_from_dict
from components.data.inference_log import read_window
from components.data.lake import Lake
from components.evaluation.drift import DriftReport, drift_report
from components.evaluation.drift_plots import feature_png, summary_png
from flows.events import announce_drift
from flows.retries import BACKOFF, transient_only

ANNOUNCED = "rayline.drift_announced"


@dataclass(frozen=True)
class MonitorReport:
    name: str
    version: str
    window: str
    rows: int  # logged rows in the window
    report: DriftReport | None  # None: too few rows for a verdict
    run_id: str | None
    announced: bool  # the drift event went to the Prefect server

    @property
    def verdict(self) -> str:
        if self.report is None:
            return "no verdict"
        return "drifted" if self.report.drifted else "no drift"


@dataclass(frozen=True)
class _Reference:
    rows: pl.DataFrame
    numeric: list[str]
    categorical: list[str]
    prediction: str | None  # how the answers are judged: numeric, categorical or not at all


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=transient_only, cache_policy=NO_CACHE)
def load_reference(profile: ProfileConfig, name: str, version: str) -> _Reference:
    uri = profile.mlflow_tracking_uri
    state = state_from_dict(read_bundle_json(uri, name, version, "preprocess.json"))
    if state.modality != "tabular":
        raise LookupError(f"model {name!r} reads {state.modality}s: drift is monitored for table models")
    with tempfile.TemporaryDirectory(prefix=f"rayline-{name}-") as tmp:
        try:
            rows = pl.read_parquet(fetch_bundle_file(uri, name, version, REFERENCE_FILE, tmp))
        except FileNotFoundError:
            raise LookupError(
                f"model {name!r} version {version} has no drift reference ({REFERENCE_FILE}): it was registered "
                f"before bundles carried one; retrain it (`rayline run CONFIG --force`)"
            ) from None
    prediction = ("categorical" if state.labels is not None else "numeric") if "prediction" in rows.columns else None
    pre = state.preprocessor
    return _Reference(rows, list(pre.numeric), list(pre.categorical), prediction)


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=transient_only, cache_policy=NO_CACHE)
def read_log(lake_root: str, name: str, window: str) -> pl.DataFrame:
    span = parse_window(window)
    return read_window(Lake(f"{lake_root}/{name}"), None if span is None else datetime.now(timezone.utc) - span)


@task(cache_policy=NO_CACHE)
def judge(reference: _Reference, log: pl.DataFrame, version: str, settings: MonitoringConfig) -> DriftReport:
    numeric_threshold, categorical_threshold = settings.thresholds
    answered = log.filter(pl.col("model_version") == version)
    return drift_report(
        reference.rows, log, reference.numeric, reference.categorical,
        numeric_test=settings.numeric_test, numeric_threshold=numeric_threshold,
        categorical_test=settings.categorical_test, categorical_threshold=categorical_threshold,
        drift_share=settings.drift_share,
        prediction=reference.prediction if settings.prediction else None, current_predictions=answered,
    )


@task(retries=2, retry_delay_seconds=BACKOFF, retry_condition_fn=transient_only, cache_policy=NO_CACHE)
def log_drift(
    profile: ProfileConfig, name: str, version: str, window: str, report: DriftReport, reference: _Reference,
    log: pl.DataFrame,
) -> str:
    """A run in the model's `<name>-monitoring` experiment: a metric per feature, the report
    as JSON, a plot per feature and a summary plot."""
    experiment = use_tracking(profile.mlflow_tracking_uri, f"{name}-monitoring", profile.mlflow_artifacts)
    tags = {"rayline.model": name, "rayline.model_version": version, "rayline.drifted": str(report.drifted).lower()}
    run_id = start_run(experiment, f"{name}-v{version}-drift", {"window": window, "rows": log.height}, tags=tags)
    judged = [*report.features, *([report.prediction] if report.prediction else [])]
    metrics = {"drift_share": report.share, "drifted": float(report.drifted)}
    for f in judged:
        metrics[f"{f.feature}.{f.test}"] = f.value
    log_metrics(run_id, metrics)
    answered = log.filter(pl.col("model_version") == version)
    plots = {
        f"{f.feature}.png": feature_png(f, reference.rows[f.feature], (answered if f.feature == "prediction" else log)[f.feature])
        for f in judged
    }
    body = {"model": name, "version": version, "window": window, "rows": log.height, **report.to_dict()}
    log_files(run_id, {"drift.json": json.dumps(body, indent=2, default=str).encode(), "summary.png": summary_png(report), **plots}, "drift")
    end_run(run_id)
    return run_id


@task(cache_policy=NO_CACHE)
def announce(profile: ProfileConfig, name: str, version: str, report: DriftReport, run_id: str) -> bool:
    """Send the drift event once per served version (a retrain that is not promoted must not
    be asked for again on every look); only where a Prefect server listens."""
    if not report.drifted or "PREFECT_API_URL" not in os.environ:
        return False
    experiment = use_tracking(profile.mlflow_tracking_uri, f"{name}-monitoring", profile.mlflow_artifacts)
    if has_run_tagged(experiment, {"rayline.model_version": version, ANNOUNCED: "true"}):
        return False
    announce_drift(name, version, {"drifted_features": report.drifted_features, "share": report.share, "run_id": run_id})
    set_tags(run_id, {ANNOUNCED: "true"})
    return True


@flow(name="monitor", log_prints=True, validate_parameters=False)
def monitor(
    profile: ProfileConfig, name: str, settings: MonitoringConfig, version: str | None = None,
    alias: str = "champion", window: str | None = None,
) -> MonitorReport:
    window = window or settings.window
    version = version or resolve_version(profile.mlflow_tracking_uri, name, alias)
    reference = load_reference(profile, name, version)
    log = read_log(profile.lake, name, window)
    if log.height < settings.min_rows:
        get_run_logger().info("%s: %d rows logged in the window %s, fewer than %d", name, log.height, window, settings.min_rows)
        return MonitorReport(name, version, window, log.height, None, None, False)
    report = judge(reference, log, version, settings)
    run_id = log_drift(profile, name, version, window, report, reference, log)
    announced = announce(profile, name, version, report, run_id)
    get_run_logger().info(
        "%s v%s: %d of %d features drifted over %d rows (%s)", name, version, len(report.drifted_features),
        len(report.features), log.height, window,
    )
    return MonitorReport(name, version, window, log.height, report, run_id, announced)
