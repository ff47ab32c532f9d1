"""Search spaces: YAML distributions, the conditional space over model families, and the
configs and member specs trials turn into."""

from __future__ import annotations

import numpy as np
import pytest
from ray import tune

from components.data.modalities import tabular_info
from components.config import PipelineConfig, TuningConfig
from components.evaluation.outcome import TrialOutcome, best_per_kind
from components.tuning.search_space import (
    DRAW_KEY,
    KIND_KEY,
    PARAMS_KEY,
    space_keys,
    trial_config,
    trial_spec,
    tune_space,
)
from tests.conftest import iris_config

FAMILIES = {
    "knn": {"model.params.k": {"choice": [3, 5]}},
    "random_forest": {"model.params.n_estimators": {"randint": [10, 20]}, "model.params.max_depth": {"choice": [2]}},
    "naive_bayes": {},
}
BASE = {
    "model": {"kind": "ensemble", "params": {"task": "classification", "method": "stacking"}},
    "training": {"epochs": 3, "optimizer": {"lr": 0.1}},
    "task": "classification",
    "info": tabular_info("classification", 4, 3).to_dict(),
}


def test_families_are_a_grid_and_each_samples_its_own_params():
    tuning = TuningConfig.model_validate({"families": FAMILIES, "space": {"training.epochs": {"choice": [5]}}})
    space = tune_space(tuning)
    assert space[KIND_KEY] == tune.grid_search(["knn", "random_forest", "naive_bayes"])
    assert space_keys(tuning) == ["training.epochs", KIND_KEY, PARAMS_KEY]
    sample = space[PARAMS_KEY].func

    class Spec:  # what Tune hands a sample_from function: the trial's config so far
        def __init__(self, kind: str, draw: int) -> None:
            self.config = {KIND_KEY: kind, DRAW_KEY: draw}

    forests = [sample(Spec("random_forest", draw)) for draw in range(20)]
    assert all(10 <= f["n_estimators"] <= 20 and f["max_depth"] == 2 for f in forests)
    assert len({f["n_estimators"] for f in forests}) > 3  # each trial its own draw
    assert forests == [sample(Spec("random_forest", draw)) for draw in range(20)]  # and the same again
    assert {sample(Spec("knn", draw))["k"] for draw in range(20)} == {3, 5}
    assert sample(Spec("naive_bayes", 0)) == {}


def test_a_family_search_draws_the_same_trials_from_the_same_seed():
    from ray.tune.search.variant_generator import generate_variants

    space = tune_space(TuningConfig.model_validate({"families": FAMILIES}))

    def trials(seed: int) -> list[tuple]:
        rng = np.random.default_rng(seed)  # what BasicVariantGenerator(random_state=tuning.seed) holds
        drawn = [config for _ in range(3) for _, config in generate_variants({"config": space}, random_state=rng)]
        return [(c["config"][KIND_KEY], sorted(c["config"][PARAMS_KEY].items())) for c in drawn]

    assert trials(0) == trials(0) and trials(0) != trials(1)
    forests = [params for kind, params in trials(0) if kind == "random_forest"]
    assert len(forests) == 3 and len(set(map(tuple, forests))) > 1


def test_a_family_trial_swaps_the_model_and_fills_the_data_fields_its_kind_declares():
    params = {KIND_KEY: "knn", PARAMS_KEY: {"k": 5}, "training.epochs": 7}
    config = trial_config(BASE, params)
    # an estimator learns its sizes at fit: only the task comes from the data
    assert config["model"] == {"kind": "knn", "params": {"task": "classification", "k": 5}}
    mlp = trial_config(BASE, {KIND_KEY: "mlp", PARAMS_KEY: {"hidden": [4]}})
    assert mlp["model"] == {"kind": "mlp", "params": {"hidden": [4], "in_features": 4, "out_features": 3}}
    assert config["training"] == {"epochs": 7, "optimizer": {"lr": 0.1}}
    assert BASE["model"]["kind"] == "ensemble"  # the base is not changed
    assert trial_spec(params) == {"kind": "knn", "params": {"k": 5}}
    # a plain trial only overrides its keys
    plain = trial_config(BASE, {"training.optimizer.lr": 0.5})
    assert plain["training"]["optimizer"]["lr"] == 0.5 and plain["model"] == BASE["model"]


def test_grid_inside_a_family_is_refused():
    tuning = TuningConfig.model_validate({"families": {"knn": {"model.params.k": {"grid": [3, 5]}}}})
    with pytest.raises(ValueError, match=r"tuning.families.knn: use choice, not grid.*model.params.k"):
        tune_space(tuning)


def _outcome(trial: str, kind: str, loss: float, error: str | None = None) -> TrialOutcome:
    return TrialOutcome(trial, {KIND_KEY: kind}, [], f"/ckpt/{trial}", error, {"val_loss": loss})


def test_best_trial_of_each_family_in_first_seen_order():
    outcomes = [
        _outcome("a", "knn", 0.5), _outcome("b", "random_forest", 0.2), _outcome("c", "knn", 0.3),
        _outcome("d", "random_forest", 0.1, error="boom"), _outcome("e", "naive_bayes", float("nan")),
    ]
    best = best_per_kind(outcomes, "val_loss", "min", KIND_KEY)
    assert [o.trial_id for o in best] == ["c", "b"]  # naive_bayes has no finite loss: left out


@pytest.mark.parametrize(
    ("tuning", "message"),
    [
        ({}, "tuning needs a 'space', 'families', or both"),
        ({"families": {"knn": {"training.epochs": {"choice": [1]}}}}, "families.knn: key 'training.epochs' must start"),
        ({"families": FAMILIES, "space": {"model.params.k": {"choice": [1]}}}, "model keys belong in each family"),
        ({"families": {"ensemble": {}}}, "an ensemble is not a family to search"),
    ],
)
def test_bad_tuning_configs_are_named(tuning, message):
    with pytest.raises(ValueError, match=message):
        TuningConfig.model_validate(tuning)


@pytest.mark.parametrize(
    ("model", "tuning", "message"),
    [
        ({"kind": "ensemble", "params": {}}, None, "needs its members from exactly one place"),
        ({"kind": "ensemble", "params": {"members": [{"kind": "knn"}]}}, {"families": FAMILIES}, "exactly one place"),
        ({"kind": "ensemble", "params": {"members": [{"kind": "knn"}]}},
         {"space": {"training.epochs": {"choice": [1]}}}, "tuned through tuning.families"),
    ],
)
def test_an_ensemble_takes_its_members_from_one_place(model, tuning, message):
    config = iris_config(model=model, **({"tuning": tuning} if tuning else {}))
    with pytest.raises(ValueError, match=message):
        PipelineConfig.model_validate(config)
    ok = iris_config(model={"kind": "ensemble", "params": {"method": "voting"}}, tuning={"families": FAMILIES})
    assert PipelineConfig.model_validate(ok).tuning.families.keys() == FAMILIES.keys()
