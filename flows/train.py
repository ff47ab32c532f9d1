"""Flows `train` and `tune`: the silver snapshot -> Ray Train / Ray Tune -> trial outcomes.

An ensemble trains its members (and folds) across the cluster; after a search over
several families, the configured ensemble is built from the best trial of each.

Both log to MLflow from the driver: one child run per trial under the caller's parent run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from safetensors.torch import save_file

from components.artifacts.checkpoint_files import MODEL_FILE
from components.artifacts.registry import CHAMPION, download_bundle, resolve_version
from components.data.lake import Lake
from components.data.silver import SilverSnapshot, read_silver
from components.data.word_vectors import load_vectors
from components.evaluation.outcome import TrialOutcome, best_per_kind
from components.models import build, family
from components.models.summary import format_summary, summary
from components.training.ensemble_fit import fit_ensemble
from components.training.loop import loop_config
from components.training.ray_session import SilverInputs
from components.training.trainers import trainer_for
from components.training.transfer import pretrained_init, word_vectors_init
from components.tuning.search_space import KIND_KEY, space_keys, trial_spec
from components.tuning.tuner import run_search, trial_outcomes
from flows import console
from flows.workspace import Workspace, connect_ray


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def load_snapshot(lake_root: str) -> SilverSnapshot:
    return read_silver(Lake(lake_root))


def _inputs(ws: Workspace, snapshot: SilverSnapshot) -> tuple[dict[str, Any], SilverInputs]:
    features = snapshot.features
    augment = ws.config.images.augment if ws.config.images is not None else None
    init = _pretrained(ws) or _word_vectors(ws, features)
    config = loop_config(ws.config.model.model_dump(), ws.config.training.model_dump(), features.info, augment, init)
    inputs = SilverInputs.of({s: snapshot.tables[s] for s in ("train", "val")}, features)
    return config, inputs


def _pretrained(ws: Workspace) -> dict[str, Any] | None:
    """model.init_from resolved: the source bundle fetched from the registry to storage
    every worker reads (the profile's runs folder), at the version its alias points to now."""
    init = ws.config.model.init_from
    if init is None:
        return None
    uri = ws.profile.mlflow_tracking_uri
    version = init.version or resolve_version(uri, init.model, init.alias or CHAMPION)
    path, _ = download_bundle(uri, init.model, dst=f"{ws.runs}/init/{init.model}-v{version}", version=version)
    return pretrained_init(init, str(path / MODEL_FILE), f"{init.model} v{version}")


def _word_vectors(ws: Workspace, features: Any) -> dict[str, Any] | None:
    """text.embeddings (or tagging.embeddings) resolved: rows of the pretrained vectors for the fitted vocabulary,
    written where every worker reads them, loaded into the model's `embed` layer like a
    transfer-learning source."""
    section = ws.config.text or ws.config.tagging
    embeddings = section.embeddings if section is not None else None
    if embeddings is None:
        return None
    tokenizer = features.tokenizer
    vocab = tokenizer.tokens(range(tokenizer.vocab_size_))
    matrix, found = load_vectors(embeddings.vectors).embedding_matrix(vocab, seed=ws.config.training.seed)
    path = Path(ws.runs) / "init" / f"{ws.config.name}-{embeddings.vectors}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"embed.weight": torch.from_numpy(matrix)}, str(path))
    console.say(f"{embeddings.vectors}: {found:,} of {len(vocab):,} vocabulary entries found")
    return word_vectors_init(str(path), embeddings.vectors, embeddings.freeze, embeddings.lr_scale)


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE, task_run_name="ray-train")
def train_on_ray(ws: Workspace, snapshot: SilverSnapshot, run_name: str) -> list[TrialOutcome]:
    """The run's outcome; for an ensemble, the ensemble's then one per member."""
    connect_ray(ws.profile)
    config, inputs = _inputs(ws, snapshot)
    return trainer_for(config["model"]).run(config, inputs, ws.config.training, ws.runs, run_name)


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE, task_run_name="ray-ensemble")
def ensemble_on_ray(
    ws: Workspace, snapshot: SilverSnapshot, trials: list[TrialOutcome], run_name: str
) -> list[TrialOutcome]:
    """The configured ensemble over the best trial of each searched family."""
    connect_ray(ws.profile)
    config, inputs = _inputs(ws, snapshot)
    metric, mode = ws.config.tuning.metric, ws.config.tuning.mode
    best = best_per_kind(trials, metric, mode, KIND_KEY)
    if not best:
        raise RuntimeError(f"no searched family finished a trial with a finite {metric!r}: nothing to ensemble")
    members = [trial_spec(o.params) for o in best]
    get_run_logger().info("ensemble of %s (trials %s)", [m["kind"] for m in members], [o.trial_id for o in best])
    return fit_ensemble(
        config, inputs.tables, inputs.columns, inputs.label_dtype, f"{ws.runs}/{run_name}/ensemble", members=members,
        inputs=inputs.inputs,
    )


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE, task_run_name="ray-tune")
def tune_on_ray(ws: Workspace, snapshot: SilverSnapshot, run_name: str) -> list[TrialOutcome]:
    connect_ray(ws.profile)
    config, inputs = _inputs(ws, snapshot)
    tuning = ws.config.tuning
    trials = tuning.num_samples * max(1, len(tuning.families))
    grid = run_search(config, inputs, tuning, storage_path=ws.runs, name=run_name, callbacks=console.tune_callbacks(trials))
    return trial_outcomes(grid, space_keys(tuning))


@task(cache_policy=NO_CACHE)
def model_summary(ws: Workspace, snapshot: SilverSnapshot) -> str | None:
    """The torch model's layers, output shapes and parameters for this data (None for estimators)."""
    info = snapshot.features.info
    spec = loop_config(ws.config.model.model_dump(), ws.config.training.model_dump(), info)["model"]
    if family(spec) != "torch":
        return None
    text = format_summary(summary(build(spec), info.input_shape))
    get_run_logger().info("model %s\n%s", spec["kind"], text)
    console.say(f"model {spec['kind']}\n{text}")
    return text


@flow(name="train", log_prints=True, validate_parameters=False)
def train(ws: Workspace, run_name: str | None = None) -> list[TrialOutcome]:
    snapshot = load_snapshot(ws.lake)
    started = time.perf_counter()
    outcomes = train_on_ray(ws, snapshot, run_name or f"{ws.name}-train-{int(time.time())}")
    get_run_logger().info("trained %d epochs in %.1fs", len(outcomes[0].history), time.perf_counter() - started)
    return outcomes


@flow(name="tune", log_prints=True, validate_parameters=False)
def tune(ws: Workspace, run_name: str | None = None) -> list[TrialOutcome]:
    if ws.config.tuning is None:
        raise ValueError(f"{ws.name}: the config has no 'tuning' section; use the train stage")
    snapshot = load_snapshot(ws.lake)
    started = time.perf_counter()
    run_name = run_name or f"{ws.name}-tune-{int(time.time())}"
    outcomes = tune_on_ray(ws, snapshot, run_name)
    get_run_logger().info(
        "%d trials (%d failed) in %.1fs", len(outcomes), sum(o.error is not None for o in outcomes),
        time.perf_counter() - started,
    )
    if ws.config.model.kind == "ensemble":
        started = time.perf_counter()
        outcomes = [*ensemble_on_ray(ws, snapshot, outcomes, run_name)[:1], *outcomes]
        get_run_logger().info("ensemble fitted and scored in %.1fs", time.perf_counter() - started)
    return outcomes
