"""scikit-learn-backed model kinds: building per task, param errors, ensembles, k: auto."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pytest
import torch.nn as nn
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import (
    AdaBoostClassifier,
    BaggingClassifier,
    BaggingRegressor,
    GradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.exceptions import NotFittedError
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from components.config import ModelConfig
from components.data.modalities import tabular_info
from components.models import build, data_fields, is_estimator, kinds, register_estimator
from components.models.estimators import AutoKNeighborsClassifier, AutoKNeighborsRegressor

ESTIMATOR_KINDS = ["knn", "naive_bayes", "decision_tree", "random_forest", "bagging", "adaboost", "gradient_boosting"]
# small ensembles keep the suite fast; every other param is the kind's default
FAST = {"random_forest": {"n_estimators": 5}, "bagging": {"n_estimators": 3},
        "adaboost": {"n_estimators": 5}, "gradient_boosting": {"n_estimators": 5}}


@pytest.fixture(scope="module")
def iris():
    x, y = load_iris(return_X_y=True)
    rows = np.arange(0, 150, 3)  # 50 rows, all three classes
    return x[rows], y[rows]


@pytest.fixture(scope="module")
def diabetes():
    x, y = load_diabetes(return_X_y=True)
    return x[:80, :4], y[:80]


def _build(kind: str, task: str, **params):
    return build({"kind": kind, "params": {**FAST.get(kind, {}), **params}}, task=task)


def test_estimator_kinds_are_registered_and_flagged():
    assert set(ESTIMATOR_KINDS) <= set(kinds())
    assert all(is_estimator({"kind": k}) for k in ESTIMATOR_KINDS)
    assert not is_estimator({"kind": "mlp", "params": {}})
    assert not is_estimator(ModelConfig(kind="linear_regression", params={"solver": "sgd"}))
    with pytest.raises(ValueError, match=r"unknown model kind 'knnn'"):
        is_estimator({"kind": "knnn"})


@pytest.mark.parametrize("kind", ESTIMATOR_KINDS)
def test_every_kind_fits_and_predicts_for_classification(kind, iris):
    x, y = iris
    model = _build(kind, "classification").fit(x, y)
    assert is_classifier(model) and not isinstance(model, nn.Module)
    assert list(model.classes_) == [0, 1, 2]
    proba = model.predict_proba(x)
    assert proba.shape == (50, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert np.mean(model.predict(x) == y) > 0.8


@pytest.mark.parametrize("kind", [k for k in ESTIMATOR_KINDS if k != "naive_bayes"])
def test_every_regression_kind_fits_and_predicts_numbers(kind, diabetes):
    x, y = diabetes
    model = _build(kind, "regression").fit(x, y)
    assert is_regressor(model)
    pred = model.predict(x)
    assert pred.shape == (80,) and np.isfinite(pred).all()


@pytest.mark.parametrize(
    ("kind", "task", "params", "expected"),
    [
        ("knn", "classification", {"k": 3, "metric": "manhattan", "weights": "distance"},
         KNeighborsClassifier(n_neighbors=3, metric="manhattan", weights="distance")),
        ("knn", "regression", {}, KNeighborsRegressor(n_neighbors=5, metric="euclidean")),
        ("naive_bayes", "classification", {"var_smoothing": 1e-6}, GaussianNB(var_smoothing=1e-6)),
        ("decision_tree", "classification", {"criterion": "entropy", "max_depth": 2},
         DecisionTreeClassifier(criterion="entropy", max_depth=2, random_state=0)),
        ("decision_tree", "regression", {"min_samples_leaf": 3},
         DecisionTreeRegressor(criterion="squared_error", min_samples_leaf=3, random_state=0)),
        ("random_forest", "classification", {"n_estimators": 7, "max_features": 0.5},
         RandomForestClassifier(n_estimators=7, max_features=0.5, random_state=0)),
        ("gradient_boosting", "regression", {"subsample": 0.8},
         GradientBoostingRegressor(n_estimators=5, subsample=0.8, random_state=0)),
    ],
)
def test_params_map_one_to_one_onto_scikit_learn(kind, task, params, expected):
    model = _build(kind, task, **params)
    assert type(model) is type(expected)
    assert model.get_params() == expected.get_params()


def test_adaboost_defaults_to_decision_stumps():
    model = build({"kind": "adaboost", "params": {}})
    assert isinstance(model, AdaBoostClassifier) and model.n_estimators == 50 and model.learning_rate == 1.0
    assert isinstance(model.estimator, DecisionTreeClassifier) and model.estimator.max_depth == 1


@pytest.mark.parametrize(
    ("kind", "task", "params", "message"),
    [
        ("knn", "classification", {"neighbours": 3}, r"model 'knn': unknown param\(s\) \['neighbours'\].*'k'"),
        ("knn", "classification", {"k": "many"}, r"'k' must be int or one of \['auto'\], got 'many'"),
        ("knn", "classification", {"k": 0}, r"k must be >= 1 or 'auto', got 0"),
        ("knn", "classification", {"metric": "chebyshev"}, r"'metric' must be one of \['euclidean'.*got 'chebyshev'"),
        ("knn", "clustering", {}, r"'task' must be one of \['classification', 'regression'\], got 'clustering'"),
        ("naive_bayes", "regression", {}, r"naive_bayes is a classifier: task must be 'classification'"),
        ("decision_tree", "regression", {"criterion": "gini"}, r"criterion for task 'regression'.*got 'gini'"),
        ("random_forest", "classification", {"max_features": 1.5}, r"max_features as a fraction.*got 1.5"),
        ("gradient_boosting", "regression", {"learning_rate": 0}, r"learning_rate must be > 0, got 0.0"),
        ("bagging", "classification", {"base": "knn"}, r"'base' must be a mapping, got 'knn'"),
        ("bagging", "classification", {"base": {"kind": "mlp"}}, r"param 'base': must name a scikit-learn model"),
        ("bagging", "classification", {"base": {"kind": "knn", "params": {"kk": 3}}},
         r"model 'bagging': param 'base': model 'knn': unknown param\(s\) \['kk'\]"),
        ("bagging", "regression", {"base": {"kind": "naive_bayes"}}, r"param 'base':.*naive_bayes is a classifier"),
    ],
)
def test_invalid_params_are_named(kind, task, params, message):
    with pytest.raises(ValueError, match=message):
        _build(kind, task, **params)


def test_task_defaults_to_classification_and_the_data_sets_it():
    assert isinstance(build({"kind": "knn", "params": {}}), KNeighborsClassifier)
    info = tabular_info("regression", 4, 1)
    assert isinstance(build({"kind": "knn", "params": {}}, info), KNeighborsRegressor)
    assert data_fields({"kind": "knn"}, info) == {"task": "regression"}  # no sizes: learned at fit


def test_sizes_are_not_params_of_an_estimator():
    with pytest.raises(ValueError, match=r"model 'knn': unknown param\(s\) \['in_features', 'out_features'\]"):
        build({"kind": "knn", "params": {"in_features": 2, "out_features": 1}})


@dataclass
class _NoTask:
    k: int = 1


def test_register_estimator_requires_a_task_field():
    with pytest.raises(TypeError, match=r"must declare fields \['task'\]"):

        @register_estimator("no_task")
        def _builder(config: _NoTask) -> GaussianNB:
            return GaussianNB()

    assert "no_task" not in kinds()


@dataclass
class _NoTaskDefault:
    task: Literal["classification", "regression"]


@dataclass
class _TaskAsString:
    task: str = "classification"


def test_register_estimator_requires_a_literal_task_with_a_default():
    with pytest.raises(TypeError, match=r"field 'task' needs a default"):

        @register_estimator("no_task_default")
        def _builder(config: _NoTaskDefault) -> GaussianNB:
            return GaussianNB()

    with pytest.raises(TypeError, match=r"field 'task' must be annotated Literal\['classification', 'regression'\]"):

        @register_estimator("task_as_string")
        def _other(config: _TaskAsString) -> GaussianNB:
            return GaussianNB()

    assert "no_task_default" not in kinds() and "task_as_string" not in kinds()


def test_bagging_of_knn_and_of_naive_bayes(iris):
    x, y = iris
    knn = _build("bagging", "classification", base={"kind": "knn", "params": {"k": 3}})
    nb = _build("bagging", "classification", base={"kind": "naive_bayes", "params": {}})
    assert isinstance(knn, BaggingClassifier) and isinstance(knn.estimator, KNeighborsClassifier)
    assert knn.estimator.n_neighbors == 3 and isinstance(nb.estimator, GaussianNB)
    for model in (knn, nb):
        model.fit(x, y)
        assert len(model.estimators_) == 3 and np.mean(model.predict(x) == y) > 0.8


def test_bagging_base_inherits_the_task(diabetes):
    x, y = diabetes
    model = _build("bagging", "regression", base={"kind": "knn", "params": {"k": "auto"}})
    assert isinstance(model, BaggingRegressor) and isinstance(model.estimator, AutoKNeighborsRegressor)
    assert model.fit(x, y).predict(x[:3]).shape == (3,)


# ---------------------------------------------------------------------------- k: auto


def test_k_auto_picks_an_odd_k_by_validation_accuracy(iris):
    x, y = iris
    model = _build("knn", "classification", k="auto")
    assert isinstance(model, AutoKNeighborsClassifier)
    model.fit(x, y)
    # 25% of 50 rows held out leaves 37 to fit on: odd k from 1 to 25
    assert list(model.scores_) == list(range(1, 26, 2))
    assert model.k_ % 2 == 1 and model.scores_[model.k_] == max(model.scores_.values())
    assert all(0.0 <= s <= 1.0 for s in model.scores_.values())
    assert model.estimator_.n_neighbors == model.k_ and model.estimator_.n_samples_fit_ == 50  # refit on all rows
    assert np.array_equal(model.predict(x), model.estimator_.predict(x))
    assert model.predict_proba(x).shape == (50, 3)


def test_k_auto_regression_minimises_validation_mse(diabetes):
    x, y = diabetes
    model = _build("knn", "regression", k="auto").fit(x, y)
    assert model.k_ % 2 == 1 and model.scores_[model.k_] == min(model.scores_.values())
    assert not hasattr(model, "predict_proba")


def test_k_auto_is_seeded_and_caps_k_at_the_rows_kept_for_fitting():
    x = np.arange(8, dtype=float)[:, None]
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    first = AutoKNeighborsClassifier(random_state=3).fit(x, y)
    again = AutoKNeighborsClassifier(random_state=3).fit(x, y)
    assert first.scores_ == again.scores_ and first.k_ == again.k_
    assert max(first.scores_) <= 6  # 2 of 8 rows held out


def test_auto_kneighbors_follows_the_scikit_learn_contract(iris):
    x, y = iris
    model = AutoKNeighborsClassifier(metric="cosine", max_k=9, validation_fraction=0.3, random_state=1)
    assert model.get_params() == {"metric": "cosine", "p": 2.0, "weights": "uniform", "max_k": 9,
                                  "validation_fraction": 0.3, "random_state": 1}
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.predict(x)
    assert model.fit(x, y) is model and not hasattr(copy, "k_")
    assert max(model.scores_) <= 9 and model.n_features_in_ == 4
    with pytest.raises(ValueError, match=r"validation_fraction must be a float in \(0, 1\), got 1.5"):
        clone(model).set_params(validation_fraction=1.5).fit(x, y)
    with pytest.raises(ValueError, match=r"X has 2 features"):
        model.predict(x[:, :2])
