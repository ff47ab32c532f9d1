"""Bundles of scikit-learn estimators: skops round trip, answers like torch bundles, type allowlist."""

from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pytest
from sklearn.preprocessing import FunctionTransformer

from components.artifacts.bundle import load_bundle, save_bundle
from components.artifacts.checkpoint_files import read_state
from components.artifacts.estimator_io import (
    ESTIMATOR_FILE,
    load_estimator,
    save_estimator,
    write_estimator_checkpoint,
)
from components.models import build
from components.training.checkpoint import save_checkpoint
from components.training.optim import make_optimizer
from tests.conftest import SPECIES, diabetes_regression, iris_species


class Sneaky:
    """A class outside the allowlist: loading a file that holds one must be refused."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


@pytest.fixture(scope="module")
def iris():
    config, _, frames, features, rows = iris_species()
    return config, frames, features, rows


def _fit(spec: dict, frames: dict, features) -> object:
    train = frames["train"]
    model = build(spec)
    return model.fit(train.select(features.columns).to_numpy(), train["label"].to_numpy())


def _bundle(tmp_path, estimator, spec, features):
    ckpt = write_estimator_checkpoint(tmp_path / "ckpt", estimator, spec, {"val_accuracy": 0.9})
    return save_bundle(tmp_path / "bundle", checkpoint_dir=ckpt, features=features,
                       metrics={"test_accuracy": 0.95}, lineage={"bronze_version": 1})


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "random_forest", "params": {"task": "classification", "n_estimators": 5}},
        {"kind": "knn", "params": {"task": "classification", "k": "auto"}},
        {"kind": "bagging", "params": {"task": "classification", "n_estimators": 3,
                                       "base": {"kind": "naive_bayes", "params": {}}}},
    ],
)
def test_classifier_bundle_round_trips_and_answers_like_a_torch_bundle(spec, iris, tmp_path):
    config, frames, features, rows = iris
    estimator = _fit(spec, frames, features)
    bundle_dir = _bundle(tmp_path, estimator, spec, features)

    assert sorted(p.name for p in bundle_dir.iterdir()) == [
        "lineage.json", "metrics.json", "model.skops", "preprocess.json", "spec.json"
    ]
    assert json.loads((bundle_dir / "spec.json").read_text()) == spec
    bundle = load_bundle(bundle_dir)
    assert bundle.is_estimator and bundle.spec == spec
    assert bundle.metrics == {"test_accuracy": 0.95} and bundle.lineage["bronze_version"] == 1 and "preprocess_sha256" in bundle.lineage

    answers = bundle.predict(rows)
    proba = estimator.predict_proba(features.inputs(rows))  # (N, 3), columns = classes_ = [0, 1, 2]
    assert list(estimator.classes_) == [0, 1, 2]
    assert [a["label"] for a in answers] == [SPECIES[i] for i in proba.argmax(axis=1)]
    assert [[a["probabilities"][s] for s in SPECIES] for a in answers] == pytest.approx(proba, abs=1e-6)
    assert np.array_equal(bundle.model.predict(features.inputs(rows)), estimator.predict(features.inputs(rows)))

    # the same answer format as a torch bundle built on the same features
    torch_spec = {"kind": "mlp", "params": {"hidden": [4], "in_features": 4, "out_features": 3}}
    model = build(torch_spec)
    ckpt = tmp_path / "torch_ckpt"
    ckpt.mkdir()
    save_checkpoint(ckpt, model=model, optimizers={"model": make_optimizer(model.parameters(), config.training.optimizer)},
                    schedulers={}, stopper=None, epoch=0, spec=torch_spec, metrics={})
    torch_bundle = load_bundle(save_bundle(tmp_path / "torch", checkpoint_dir=ckpt, features=features,
                                           metrics={}, lineage={}))
    assert not torch_bundle.is_estimator
    torch_answer = torch_bundle.predict(rows.head(1))[0]
    assert set(answers[0]) == set(torch_answer) == {"label", "probabilities"}
    assert list(answers[0]["probabilities"]) == list(torch_answer["probabilities"]) == SPECIES
    assert type(answers[0]["label"]) is type(torch_answer["label"]) is str


def test_a_class_missing_from_the_estimators_training_rows_gets_probability_zero(iris, tmp_path):
    _, frames, features, rows = iris
    train = frames["train"].filter(pl.col("label") != 1)  # no versicolor
    spec = {"kind": "naive_bayes", "params": {"task": "classification"}}
    estimator = build(spec).fit(
        train.select(features.columns).to_numpy(), train["label"].to_numpy()
    )
    answers = load_bundle(_bundle(tmp_path, estimator, spec, features)).predict(rows)
    assert all(a["probabilities"]["versicolor"] == 0.0 for a in answers)
    assert {a["label"] for a in answers} <= {"setosa", "virginica"}


def test_regression_bundle_predicts_floats(tmp_path):
    config, frame, frames, features = diabetes_regression()
    spec = {"kind": "gradient_boosting", "params": {"task": "regression", "n_estimators": 10}}
    estimator = _fit(spec, frames, features)
    bundle = load_bundle(_bundle(tmp_path, estimator, spec, features))
    rows = frame.drop("target").head(5)
    values = bundle.predict(rows)
    assert len(values) == 5 and all(isinstance(v, float) for v in values)
    assert values == estimator.predict(features.inputs(rows)).tolist()


def test_estimator_checkpoint_layout_is_what_read_state_expects(tmp_path):
    spec = {"kind": "naive_bayes", "params": {"task": "classification"}}
    estimator = build(spec).fit([[0.0], [1.0]], [0, 1])
    ckpt = write_estimator_checkpoint(tmp_path / "c", estimator, spec, {"val_accuracy": 1.0})
    assert sorted(p.name for p in ckpt.iterdir()) == ["model.skops", "state.json"]
    assert read_state(ckpt) == {"epoch": 0, "global_step": 0, "spec": spec, "metrics": {"val_accuracy": 1.0},
                                "best_metrics": {}, "early_stopping": None}
    assert load_estimator(ckpt / ESTIMATOR_FILE).predict([[1.0]]).tolist() == [1]


def test_save_bundle_needs_exactly_one_model_file(tmp_path, iris):
    _, _, features, _ = iris
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"holds no model: expected model.safetensors or model.skops"):
        save_bundle(tmp_path / "b", checkpoint_dir=empty, features=features, metrics={}, lineage={})


def test_loading_an_estimator_bundle_without_its_model_file_names_it(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps({"kind": "knn", "params": {"task": "classification"}}))
    with pytest.raises(FileNotFoundError, match=r"missing \['model.skops', 'preprocess.json'\]"):
        load_bundle(tmp_path)


def test_a_type_outside_the_allowlist_is_refused_and_named(tmp_path):
    path = save_estimator(Sneaky(), tmp_path / "sneaky.skops")
    name = f"{Sneaky.__module__}.Sneaky"  # the module name depends on how pytest imported this file
    with pytest.raises(ValueError, match=rf"refusing to load.*\[{re.escape(repr(name))}\]"):
        load_estimator(path)


def test_a_function_reference_is_refused_even_under_an_allowed_module(tmp_path):
    # `builtins.` is allowlisted for types; a stored callable (here eval) must still be refused
    path = save_estimator(FunctionTransformer(func=eval), tmp_path / "eval.skops")
    with pytest.raises(ValueError, match=r"\['builtins\.eval'\]"):
        load_estimator(path)


def test_load_bundle_refuses_an_untrusted_model_file(iris, tmp_path):
    _, frames, features, _ = iris
    spec = {"kind": "naive_bayes", "params": {"task": "classification"}}
    bundle_dir = _bundle(tmp_path, _fit(spec, frames, features), spec, features)
    save_estimator({"model": Sneaky()}, bundle_dir / ESTIMATOR_FILE)  # swapped after the bundle was written
    with pytest.raises(ValueError, match=r"Sneaky"):
        load_bundle(bundle_dir)
