"""The `xgboost` kind on Ray: Ray Train's XGBoostTrainer boosts it, Ray Tune searches it,
and its checkpoint becomes a bundle that answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from components.artifacts.bundle import load_bundle, save_bundle
from components.artifacts.checkpoint_files import read_state
from components.config import PipelineConfig, TuningConfig
from components.data.bundled import bundled_frame
from components.data.silver import read_arrays
from components.evaluation.outcome import TrialOutcome
from components.evaluation.scoring import score
from components.data.modalities import tabular_info
from components.training.loop import loop_config
from components.training.ray_session import SilverInputs, training_outcome
from components.training.xgboost_fit import make_xgboost_trainer
from components.tuning.tuner import run_search, trial_outcomes

ROUNDS = 20


def _base(pipeline: PipelineConfig, snapshot, params: dict) -> dict:
    return loop_config({"kind": "xgboost", "params": params}, pipeline.training.model_dump(), tabular_info("classification",
                       snapshot.features.in_features, snapshot.features.out_features))


def _inputs(snapshot) -> SilverInputs:
    return SilverInputs({s: snapshot.tables[s] for s in ("train", "val")}, snapshot.features.columns, "int64")


@pytest.fixture(scope="module")
def boosted(ray_session, silver, iris_pipeline, profile) -> TrialOutcome:
    _, snapshot = silver
    config = _base(iris_pipeline, snapshot, {"n_estimators": ROUNDS, "max_depth": 3})
    trainer = make_xgboost_trainer(config, _inputs(snapshot).datasets(), num_workers=1,
                                   storage_path=profile.runs, name="iris-xgboost")
    return training_outcome(trainer.fit(), "iris-xgboost")


def test_ray_train_boosts_with_one_worker_and_reports_loop_metrics(boosted):
    assert boosted.error is None
    metrics = boosted.metrics
    assert metrics["val_rows"] == 30 and metrics["val_accuracy"] >= 0.9
    assert metrics["val_loss"] > 0 and "val_f1_macro" in metrics and metrics["epoch"] == ROUNDS - 1
    # every round is in the history, under the torch loop's names; the last one is the final report
    assert [h["epoch"] for h in boosted.history] == list(range(ROUNDS))
    assert all({"train_loss", "val_loss", "val_accuracy"} <= set(h) for h in boosted.history)
    assert boosted.history[-1]["val_accuracy"] == metrics["val_accuracy"]


def test_the_checkpoint_holds_the_booster_and_describes_itself(boosted):
    ckpt = Path(boosted.checkpoint)
    assert sorted(p.name for p in ckpt.iterdir()) == ["model.ubj", "state.json"]
    state = read_state(ckpt)
    assert state["epoch"] == ROUNDS - 1
    assert state["spec"]["kind"] == "xgboost" and state["spec"]["params"]["task"] == "classification"
    assert state["metrics"]["val_accuracy"] == boosted.metrics["val_accuracy"]


def test_the_checkpoint_becomes_a_bundle_that_answers(boosted, silver, workdir):
    _, snapshot = silver
    bundle_dir = save_bundle(workdir / "bundle-xgboost", checkpoint_dir=boosted.checkpoint,
                             features=snapshot.features, metrics=boosted.metrics, lineage=snapshot.lineage)
    bundle = load_bundle(bundle_dir)
    assert bundle.is_estimator and (bundle_dir / "model.ubj").is_file()
    answers = bundle.predict(pl.DataFrame(bundled_frame("iris").drop("target").head(3)))
    assert len(answers) == 3 and all(set(a) == {"label", "probabilities"} for a in answers)
    assert all(sum(a["probabilities"].values()) == pytest.approx(1.0, abs=1e-4) for a in answers)
    # the loaded model scores the val split as the run reported it
    x_val, y_val = read_arrays(*snapshot.tables["val"], snapshot.features.columns, "int64")
    assert score(bundle.model, x_val, y_val, "classification", 3)["accuracy"] == boosted.metrics["val_accuracy"]
    assert np.isfinite(boosted.metrics["val_loss"])


def test_tune_searches_xgboost_params_with_a_trainer_per_trial(ray_session, silver, iris_pipeline, profile):
    _, snapshot = silver
    tuning = TuningConfig.model_validate(
        {"num_samples": 1, "scheduler": "fifo", "metric": "val_accuracy", "mode": "max",
         "space": {"model.params.max_depth": {"grid": [2, 4]}}}
    )
    base = _base(iris_pipeline, snapshot, {"n_estimators": 10})
    grid = run_search(base, _inputs(snapshot), tuning, storage_path=profile.runs, name="xgboost-search")
    outcomes = trial_outcomes(grid, list(tuning.space))
    assert sorted(o.params["model.params.max_depth"] for o in outcomes) == [2, 4]
    for outcome in outcomes:
        assert outcome.error is None and outcome.checkpoint is not None
        assert sorted(p.name for p in Path(outcome.checkpoint).iterdir()) == ["model.ubj", "state.json"]
        assert outcome.metrics["val_rows"] == 30 and 0.8 <= outcome.metrics["val_accuracy"] <= 1.0
        assert read_state(outcome.checkpoint)["spec"]["params"]["max_depth"] == outcome.params["model.params.max_depth"]
