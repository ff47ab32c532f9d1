"""scikit-learn kinds on Ray: a Ray task fits one, Ray Tune searches one, Serve answers with it."""

from __future__ import annotations

from pathlib import Path

import httpx
import polars as pl
import pytest
import ray
from ray import serve

from components.artifacts.bundle import load_bundle, save_bundle
from components.artifacts.registry import register_bundle
from components.artifacts.tracking import log_trial, start_run
from components.config import PipelineConfig, TuningConfig
from components.data.bundled import bundled_frame
from components.evaluation.outcome import TrialOutcome
from components.training.estimator_fit import fit_estimator_task
from components.data.modalities import tabular_info
from components.training.loop import loop_config
from components.training.ray_session import SilverInputs
from components.tuning.tuner import run_search, trial_outcomes
from serving.app import ServedModel, start


def _base(pipeline: PipelineConfig, snapshot, model: dict) -> dict:
    return loop_config(model, pipeline.training.model_dump(), tabular_info("classification",
                       snapshot.features.in_features, snapshot.features.out_features))


def _inputs(snapshot) -> SilverInputs:
    return SilverInputs({s: snapshot.tables[s] for s in ("train", "val")}, snapshot.features.columns, "int64")


@pytest.fixture(scope="module")
def forest(ray_session, silver, iris_pipeline, workdir: Path) -> TrialOutcome:
    _, snapshot = silver
    inputs = _inputs(snapshot)
    config = _base(iris_pipeline, snapshot, {"kind": "random_forest", "params": {"n_estimators": 20, "random_state": 0}})
    out_dir = str(workdir / "runs" / "forest" / "model")
    metrics = ray.get(fit_estimator_task.remote(config, inputs.tables, inputs.columns, inputs.label_dtype, out_dir))
    return TrialOutcome("forest", {}, [metrics], out_dir, metrics=metrics)


def test_a_ray_task_fits_the_estimator_and_reports_loop_metrics(forest):
    assert forest.metrics["val_rows"] == 30
    assert forest.metrics["val_accuracy"] >= 0.85
    assert forest.metrics["val_loss"] > 0 and "val_f1_macro" in forest.metrics
    assert (Path(forest.checkpoint) / "model.skops").is_file()


def test_tune_searches_an_estimator_kind(ray_session, silver, iris_pipeline, profile):
    _, snapshot = silver
    tuning = TuningConfig.model_validate(
        {"num_samples": 1, "scheduler": "fifo", "metric": "val_accuracy", "mode": "max",
         "space": {"model.params.k": {"grid": [1, 3, 5]}}}
    )
    base = _base(iris_pipeline, snapshot, {"kind": "knn", "params": {}})
    outcomes = trial_outcomes(run_search(base, _inputs(snapshot), tuning, storage_path=profile.runs, name="knn-search"),
                              list(tuning.space))
    assert sorted(o.params["model.params.k"] for o in outcomes) == [1, 3, 5]
    assert all(o.error is None and (Path(o.checkpoint) / "model.skops").is_file() for o in outcomes)
    assert all(0.8 <= o.metrics["val_accuracy"] <= 1.0 and o.metrics["val_rows"] == 30 for o in outcomes)


def test_an_estimator_bundle_is_registered_and_served(forest, silver, tracking, profile, workdir: Path):
    _, snapshot = silver
    run_id = log_trial(tracking, start_run(tracking, "forest", {}), forest)
    bundle_dir = save_bundle(workdir / "bundle-forest", checkpoint_dir=forest.checkpoint,
                             features=snapshot.features, metrics=forest.metrics, lineage=snapshot.lineage)
    registration = register_bundle("iris-forest", bundle_dir, run_id=run_id, metric="val_loss",
                                   value=forest.value("val_loss"), mode="min")
    url = start([ServedModel(name="iris-forest")], profile.mlflow_tracking_uri, "127.0.0.1", 8322)
    try:
        rows = bundled_frame("iris").drop("target").head(4)
        answer = httpx.post(f"{url}/v1/models/iris-forest:predict", json={"instances": rows.to_dicts()}, timeout=30)
        assert answer.status_code == 200
        body = answer.json()
        assert body["model_version"] == registration.version
        assert body["predictions"] == load_bundle(bundle_dir).predict(pl.DataFrame(rows))
        bad = httpx.post(f"{url}/v1/models/iris-forest:predict", json={"instances": [{"petal_width_cm": 1.0}]})
        assert bad.status_code == 422 and bad.json()["error"].endswith(": missing")
        assert bad.json()["field"] in {f"instances[0].{c}" for c in rows.columns if c != "petal_width_cm"}
    finally:
        serve.shutdown()
