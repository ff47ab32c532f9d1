"""One Ray Tune search over several model families, then a stacking ensemble of the best
trial of each, its fits run as Ray tasks: what `rayline tune` does for `kind: ensemble`."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.artifacts.ensemble_io import read_description
from components.config import TuningConfig
from components.evaluation.outcome import best_per_kind
from components.training.ensemble_fit import ENSEMBLE_TRIAL, fit_ensemble
from components.data.modalities import tabular_info
from components.training.loop import loop_config
from components.training.ray_session import SilverInputs
from components.tuning.search_space import KIND_KEY, space_keys, trial_spec
from components.tuning.tuner import run_search, trial_outcomes

FAMILIES = {
    "knn": {"model.params.k": {"choice": [3, 7]}},
    "naive_bayes": {},
    "mlp": {"model.params.hidden": {"choice": [[8], [16]]}},  # torch, trained by the loop in its trial
}


@pytest.fixture(scope="module")
def searched(ray_session, silver, iris_pipeline, profile):
    _, snapshot = silver
    features = snapshot.features
    tuning = TuningConfig.model_validate(
        {"num_samples": 2, "scheduler": "asha", "metric": "val_loss", "mode": "min", "families": FAMILIES}
    )
    base = loop_config(
        {"kind": "ensemble", "params": {"method": "stacking", "folds": 3}}, iris_pipeline.training.model_dump(),
        tabular_info("classification", features.in_features, features.out_features),
    )
    inputs = SilverInputs({s: snapshot.tables[s] for s in ("train", "val")}, features.columns, "int64")
    grid = run_search(base, inputs, tuning, storage_path=profile.runs, name="family-search")
    return base, inputs, trial_outcomes(grid, space_keys(tuning))


def test_every_family_gets_its_trials_with_its_own_params(searched):
    _, _, outcomes = searched
    kinds = [o.params[KIND_KEY] for o in outcomes]
    assert sorted(kinds) == ["knn", "knn", "mlp", "mlp", "naive_bayes", "naive_bayes"]
    assert all(o.error is None and o.checkpoint for o in outcomes)
    for o in outcomes:
        assert set(trial_spec(o.params)["params"]) == {k.removeprefix("model.params.") for k in FAMILIES[o.params[KIND_KEY]]}
    # the mlp trials ran the epoch loop; the estimators fit once
    assert {len(o.history) for o in outcomes if o.params[KIND_KEY] == "mlp"} <= set(range(2, 5))
    assert {len(o.history) for o in outcomes if o.params[KIND_KEY] != "mlp"} == {1}


def test_the_ensemble_is_built_from_each_familys_best_trial(searched, workdir: Path):
    base, inputs, outcomes = searched
    best = best_per_kind(outcomes, "val_loss", "min", KIND_KEY)
    assert [o.params[KIND_KEY] for o in best] == list(dict.fromkeys(o.params[KIND_KEY] for o in outcomes))
    members = [trial_spec(o.params) for o in best]
    out_dir = workdir / "runs" / "family-ensemble"
    result = fit_ensemble(base, inputs.tables, inputs.columns, inputs.label_dtype, str(out_dir), members=members)
    ensemble, *member_rows = result
    assert ensemble.trial_id == ENSEMBLE_TRIAL and ensemble.checkpoint == str(out_dir)
    assert ensemble.metrics["val_accuracy"] >= 0.85 and ensemble.metrics["val_rows"] == 30
    assert [r.params["model.kind"] for r in member_rows] == [m["kind"] for m in members]
    description = read_description(out_dir)
    assert description["method"] == "stacking" and description["meta"] == "meta.skops"
    # the members are the winning trials' kinds with their winning params
    for stored, member in zip(description["members"], members):
        assert stored["spec"]["kind"] == member["kind"]
        assert {k: stored["spec"]["params"][k] for k in member["params"]} == member["params"]
