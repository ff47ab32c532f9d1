"""Ray Tune with ASHA over the training loop, then MLflow tracking and the champion rule."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from components.artifacts.bundle import load_bundle, save_bundle
from components.artifacts.checkpoint_files import read_state
from components.artifacts.registry import CHAMPION, download_bundle, register_bundle
from components.artifacts.tracking import log_trial, start_run
from components.evaluation.outcome import best_of


def test_search_runs_three_trials_with_asha(search):
    assert len(search) == 3
    assert all(o.error is None and o.checkpoint for o in search)
    assert {tuple(o.params) for o in search} == {("training.optimizer.lr", "model.params.hidden")}
    for outcome in search:
        assert 0.005 <= outcome.params["training.optimizer.lr"] <= 0.05
        epochs = [row["epoch"] for row in outcome.history]
        assert epochs == list(range(len(epochs))) and 1 <= len(epochs) <= 4
        # The checkpoint belongs to the trial's own model.
        assert read_state(outcome.checkpoint)["spec"]["params"]["hidden"] == outcome.params["model.params.hidden"]
        assert "trial_id" not in outcome.history[0] and "val_loss" in outcome.history[0]


def test_best_trial_is_tracked_registered_and_champion_only_when_better(search, silver, tracking, profile, workdir: Path):
    _, snapshot = silver
    best = best_of(search, "val_loss", "min")
    assert best.value("val_loss") == min(o.value("val_loss") for o in search)

    parent = start_run(tracking, "iris-test", {"model": {"kind": "mlp"}})
    runs = {o.trial_id: log_trial(tracking, parent, o) for o in search}
    client = MlflowClient()
    children = client.search_runs([tracking], f"tags.mlflow.parentRunId = '{parent}'")
    assert len(children) == 3
    history = client.get_metric_history(runs[best.trial_id], "val_loss")
    assert [m.step for m in history] == [row["epoch"] for row in best.history]
    assert client.get_run(runs[best.trial_id]).data.params["training.optimizer.lr"] == str(best.params["training.optimizer.lr"])
    assert [a.path for a in client.list_artifacts(runs[best.trial_id], "checkpoint")] == ["checkpoint/state.json"]

    bundle_dir = save_bundle(
        workdir / "bundle-best", checkpoint_dir=best.checkpoint, features=snapshot.features,
        metrics={"val_loss": best.value("val_loss")}, lineage=snapshot.lineage,
    )
    first = register_bundle("iris", bundle_dir, run_id=runs[best.trial_id], metric="val_loss",
                            value=best.value("val_loss"), mode="min")
    assert first.champion and first.previous_champion is None

    worse = max(search, key=lambda o: o.value("val_loss"))
    second = register_bundle("iris", bundle_dir, run_id=runs[worse.trial_id], metric="val_loss",
                             value=best.value("val_loss") + 1.0, mode="min")
    assert not second.champion and second.previous_champion == first.version
    assert str(client.get_model_version_by_alias("iris", CHAMPION).version) == first.version

    better = register_bundle("iris", bundle_dir, run_id=runs[worse.trial_id], metric="val_loss",
                             value=best.value("val_loss") / 2, mode="min")
    assert better.champion and str(client.get_model_version_by_alias("iris", CHAMPION).version) == better.version

    # a run holds one bundle: a different one from the same run would merge into it
    other = shutil.copytree(bundle_dir, workdir / "bundle-other")
    (other / "metrics.json").write_text('{"val_loss": 9.0}')
    with pytest.raises(ValueError, match=r"already holds a different bundle .* register each bundle from its own run"):
        register_bundle("iris-other", other, run_id=runs[worse.trial_id], metric="val_loss", value=9.0, mode="min")

    path, version = download_bundle(mlflow.get_tracking_uri(), "iris")
    loaded = load_bundle(path)
    assert version == better.version
    assert loaded.lineage["silver"]["train"]["version"] == snapshot.tables["train"][1]
    assert math.isclose(loaded.metrics["val_loss"], best.value("val_loss"))


def test_multi_worker_trials_drive_their_own_trainers(ray_session, silver, iris_pipeline, profile):
    """num_workers > 1: each trial is a driver running a TorchTrainer; reports reach Tune."""
    from components.config import TuningConfig
    from components.data.modalities import tabular_info
    from components.training.loop import loop_config
    from components.training.ray_session import SilverInputs
    from components.tuning.tuner import run_search, trial_outcomes

    _, snapshot = silver
    training = {**iris_pipeline.training.model_dump(), "epochs": 2, "num_workers": 2}
    base = loop_config(iris_pipeline.model.model_dump(), training, tabular_info("classification",
                       snapshot.features.in_features, snapshot.features.out_features))
    inputs = SilverInputs({s: snapshot.tables[s] for s in ("train", "val")}, snapshot.features.columns, "int64")
    tuning = TuningConfig.model_validate(
        {"num_samples": 1, "scheduler": "fifo", "space": {"training.optimizer.lr": {"grid": [0.01, 0.05]}}}
    )
    outcomes = trial_outcomes(run_search(base, inputs, tuning, storage_path=profile.runs, name="ddp-search"),
                              list(tuning.space))
    assert sorted(o.params["training.optimizer.lr"] for o in outcomes) == [0.01, 0.05]
    for outcome in outcomes:
        assert outcome.error is None and [row["epoch"] for row in outcome.history] == [0, 1]
        assert outcome.metrics["val_rows"] == 30  # both workers' shards
        assert read_state(outcome.checkpoint)["epoch"] == 1
