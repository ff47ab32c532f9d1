"""Tasks that turn the chosen trial into a scored, tracked, registered bundle."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run as prefect_flow_run

from components.artifacts.bundle import load_bundle, save_bundle
from components.artifacts.reference import reference_frame, write_reference
from components.artifacts.registry import Registration, check_gates, register_bundle
from components.artifacts.tracking import (
    end_run, log_files, log_metrics, log_trial, set_tags, start_run, use_tracking,
)
from components.data.lake import Lake
from components.data.preparation import raw_split
from components.data.silver import SilverSnapshot, split_arrays
from components.evaluation.embeddings_report import embeddings_report
from components.evaluation.outcome import TrialOutcome
from components.evaluation.report import (
    check_evaluation, evaluation_report, holdout_report, language_model_report, seq2seq_report, tagging_report,
    verification_report,
)
from components.evaluation.robustness import pixel_statistics
from components.models import build, family
from flows.workspace import Workspace


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def open_parent_run(ws: Workspace, stage: str) -> tuple[str, str]:
    """(experiment id, parent run id) for one pipeline invocation, with the config as params."""
    experiment_id = use_tracking(ws.profile.mlflow_tracking_uri, ws.name, ws.profile.mlflow_artifacts)
    # unset (None) settings left out: MLflow takes at most 100 params in one batch
    params = ws.config.model_dump(by_alias=True, exclude={"schema_", "schema"}, exclude_none=True)
    # The Prefect flow run this pipeline run is: `rayline runs show` joins them by these tags.
    tags = {
        "rayline.pipeline": ws.name,
        "rayline.prefect_flow_run_id": str(prefect_flow_run.root_flow_run_id or prefect_flow_run.id or ""),
        "rayline.prefect_flow_run_name": str(prefect_flow_run.name or ""),
        "rayline.tune_experiment": "",  # set once the search is named (fit)
    }
    run_id = start_run(experiment_id, f"{ws.name}-{stage}", {**params, "config_hash": config_hash(ws)}, tags=tags)
    return experiment_id, run_id


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def tag_run(run_id: str, tags: dict[str, str]) -> None:
    set_tags(run_id, tags)


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def log_trials(experiment_id: str, parent_id: str, outcomes: list[TrialOutcome]) -> dict[str, str]:
    """One child run per trial; returns trial id -> run id."""
    return {o.trial_id: log_trial(experiment_id, parent_id, o) for o in outcomes}


@task(cache_policy=NO_CACHE)
def build_bundle(
    ws: Workspace, best: TrialOutcome, snapshot: SilverSnapshot, run_id: str, parent_id: str
) -> tuple[Path, dict[str, float], dict[str, bytes]]:
    """Assemble the bundle from the best checkpoint, score it on the test split, and
    record the scores in its metrics.json. Returns (bundle dir, metrics, report images)."""
    lineage = {
        **snapshot.lineage, "config_hash": config_hash(ws), "code_version": _code_version(), "run_id": run_id,
        "parent_run_id": parent_id,
    }
    val = {k: float(v) for k, v in best.metrics.items() if k.startswith("val_")}
    directory = save_bundle(
        ws.bundles / run_id, checkpoint_dir=best.checkpoint, features=snapshot.features, metrics=val, lineage=lineage
    )
    bundle = load_bundle(directory)
    features = snapshot.features
    inputs, labels = split_arrays(snapshot, "test")
    labelled = getattr(features, "labels", None)
    classes = [str(c) for c in labelled.classes_] if labelled is not None else None
    if bundle.task == "verification":
        report = verification_report(bundle.model, inputs, labels, bundle.threshold)
    elif bundle.task == "embeddings":
        report = embeddings_report(bundle.model, inputs, labels, features.tokenizer.vocab_, features.token_counts)
    elif bundle.task == "tagging":
        report = tagging_report(bundle.model, inputs, labels, features.info.classes)
    elif bundle.task == "language_model":
        report = language_model_report(bundle.model, inputs, labels)
    elif bundle.task == "seq2seq":
        report = seq2seq_report(bundle.model, inputs, labels, features)
    else:
        report = holdout_report(bundle.model, inputs, labels, bundle.task, features.out_features, classes)
    extra = evaluation_report(
        bundle.model, inputs, labels, ws.config.evaluation,
        classes=classes or [], pixels=pixel_statistics(features.info),
    ) if bundle.task == "classification" else None
    metrics = {**val, **report.metrics, **(extra.metrics if extra else {})}
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    if features.modality == "tabular":
        _add_reference(ws, directory, bundle, snapshot)
    return directory, metrics, {**report.images, **(extra.images if extra else {})}


def _add_reference(ws: Workspace, directory: Path, bundle: Any, snapshot: SilverSnapshot) -> None:
    """The training rows as they arrived (bronze at the snapshot's version, this config's
    split), sampled, with the model's answers: what `rayline monitor` compares against."""
    config = ws.config
    bronze = Lake(ws.lake).read("bronze", snapshot.bronze_version)
    train = raw_split(bronze, config.schema_, config.split, "train")
    write_reference(directory, reference_frame(bundle, train, config.monitoring.reference_rows, config.split.seed))


@task(cache_policy=NO_CACHE)
def plan_evaluation(ws: Workspace, snapshot: SilverSnapshot) -> None:
    """Before training: check that the model the config builds can be evaluated as
    `evaluation` asks and attacked as `training.adversarial` asks (ValueError naming the key)."""
    config, features = ws.config, snapshot.features
    torch_kind = family(config.model) == "torch"
    searched = list(config.tuning.families) if config.tuning and config.model.kind != "ensemble" else []
    if config.evaluation.attacks and not (torch_kind or any(family({"kind": k}) == "torch" for k in searched)):
        raise ValueError(
            f"evaluation.attacks {config.evaluation.attacks} need the gradients of a torch kind; "
            f"model.kind {config.model.kind!r} is not one"
        )
    if config.training.adversarial is not None and not torch_kind:
        raise ValueError(f"training.adversarial trains torch kinds; model.kind {config.model.kind!r} is not one")
    if config.task == "classification":
        model = build(config.model, features.info) if torch_kind else None
        check_evaluation(config.evaluation, model, len(features.info.classes), image=config.modality == "image")


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def log_text(run_id: str, name: str, text: str) -> None:
    """One text file (a model summary) among the run's artifacts under model/."""
    log_files(run_id, {name: text.encode()}, "model")


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def log_report(run_id: str, images: dict[str, bytes], board: list[dict[str, Any]], parent_id: str) -> None:
    """Report images on the chosen trial's run; the leaderboard on the pipeline's run."""
    log_files(run_id, images, "report")
    log_files(parent_id, {"leaderboard.json": json.dumps(board, indent=2, default=str).encode()}, "report")


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def register(ws: Workspace, bundle_dir: Path, run_id: str, metrics: dict[str, float]) -> Registration:
    """Register the bundle; the champion alias moves only if every `registry.gates` holds."""
    metric, mode = selection(ws)
    log_metrics(run_id, metrics)
    gates = check_gates(ws.config.registry.gates, metrics)
    return register_bundle(
        ws.config.serving.name, bundle_dir, run_id=run_id, metric=metric, value=metrics[metric], mode=mode,
        gates=gates,
    )


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def close_run(run_id: str, metrics: dict[str, float] | None = None) -> None:
    if metrics:
        log_metrics(run_id, metrics)
    end_run(run_id)


def selection(ws: Workspace) -> tuple[str, str]:
    """The validation metric (and its direction) that picks trials and champions."""
    tuning = ws.config.tuning
    return (tuning.metric, tuning.mode) if tuning else ("val_loss", "min")


def config_hash(ws: Workspace) -> str:
    canonical = json.dumps(ws.config.model_dump(by_alias=True), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _code_version() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import version

        return f"rayline {version('rayline')}"
