"""`linear_regression` and `logistic_regression`: one kind each, scikit-learn or torch by `solver`."""

from __future__ import annotations

import typing

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch.nn as nn
from sklearn import linear_model
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from components.artifacts.bundle import load_bundle, save_bundle
from components.artifacts.estimator_io import load_estimator, save_estimator, write_estimator_checkpoint
from components.config import OptimizerConfig, PipelineConfig
from components.data.bundled import bundled_frame
from components.data.preparation import prepare, raw_split
from components.data.schema import check_rows
from components.models import build, family, is_estimator
from components.models.linear import GradientSolver, LinearRegression, LogisticRegression
from tests.conftest import diabetes_regression, iris_config

GD_SOLVERS = list(typing.get_args(GradientSolver))


def _linear(**params):
    return build({"kind": "linear_regression", "params": params}, task="regression")


def _logistic(**params):
    return build({"kind": "logistic_regression", "params": params}, task="classification")


@pytest.fixture(scope="module")
def three_features():
    """y depends on the first two features only; the third is noise the model should drop."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = 1.5 + 3.0 * x[:, 0] - 2.0 * x[:, 1] + rng.normal(scale=0.5, size=200)
    return x, y


@pytest.fixture(scope="module")
def iris():
    x, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(x), y


@pytest.fixture(scope="module")
def breast_cancer():
    x, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(x), y  # scaled, as the pipeline's preprocessing does: lbfgs converges


# ---------------------------------------------------------------------------- routing by solver


@pytest.mark.parametrize("kind", ["linear_regression", "logistic_regression"])
def test_no_solver_builds_the_scikit_learn_estimator(kind):
    spec = {"kind": kind, "params": {}}
    assert is_estimator(spec) and family(spec) == "sklearn"
    model = build(spec)  # the task defaults to the kind's only one
    expected = linear_model.LinearRegression if kind == "linear_regression" else linear_model.LogisticRegression
    assert type(model) is expected


@pytest.mark.parametrize("solver", ["ols", "lbfgs"])
def test_ols_and_lbfgs_both_name_the_linear_regression_estimator(solver):
    spec = {"kind": "linear_regression", "params": {"solver": solver}}
    assert family(spec) == "sklearn"
    assert type(_linear(solver=solver)) is linear_model.LinearRegression


@pytest.mark.parametrize("solver", GD_SOLVERS)
@pytest.mark.parametrize(("kind", "module"), [("linear_regression", LinearRegression),
                                              ("logistic_regression", LogisticRegression)])
def test_a_gradient_solver_builds_the_torch_module(kind, module, solver):
    spec = {"kind": kind, "params": {"solver": solver}}
    assert not is_estimator(spec) and family(spec) == "torch"
    model = build(spec, in_features=3, out_features=2)
    assert isinstance(model, nn.Module) and type(model) is module
    assert model.config.solver == solver and model.linear.weight.shape == (2, 3)


def test_the_gradient_solvers_are_the_optimizer_names():
    names = OptimizerConfig.model_fields["name"].annotation
    assert GD_SOLVERS == list(typing.get_args(names))


@pytest.mark.parametrize(
    ("kind", "solver", "allowed"),
    [
        ("linear_regression", "newton", r"\['sgd', 'momentum', 'rmsprop', 'adagrad', 'adam', 'adamw', 'lbfgs', 'ols'\]"),
        # least squares in closed form means nothing for the logistic loss
        ("logistic_regression", "ols", r"\['sgd', 'momentum', 'rmsprop', 'adagrad', 'adam', 'adamw', 'lbfgs'\]"),
    ],
)
def test_an_unknown_solver_lists_the_allowed_ones(kind, solver, allowed):
    spec = {"kind": kind, "params": {"solver": solver}}
    with pytest.raises(ValueError, match=rf"model '{kind}': param 'solver' must be one of {allowed}, got '{solver}'"):
        is_estimator(spec)
    with pytest.raises(ValueError, match=allowed):
        build(spec)


def test_each_solver_takes_only_its_own_params():
    with pytest.raises(ValueError, match=r"unknown param\(s\) \['penalty'\]"):
        build({"kind": "linear_regression", "params": {"solver": "sgd", "penalty": "ridge"}},
              in_features=1, out_features=1)
    with pytest.raises(ValueError, match=r"unknown param\(s\) \['in_features', 'out_features'\]"):
        build({"kind": "linear_regression", "params": {"solver": "ols"}}, in_features=1, out_features=1)
    with pytest.raises(ValueError, match=r"missing param\(s\) \['in_features'\]"):
        build({"kind": "linear_regression", "params": {"solver": "sgd"}}, out_features=1)


# ---------------------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "linear_regression", "params": {"task": "classification"}},
         (r"model 'linear_regression': linear_regression is a regressor: task must be 'regression', "
          r"got 'classification' \(logistic_regression classifies\)")),
        ({"kind": "logistic_regression", "params": {"task": "regression"}},
         (r"model 'logistic_regression': logistic_regression is a classifier: task must be 'classification', "
          r"got 'regression'")),
        ({"kind": "linear_regression", "params": {"task": "regression", "degree": 0}}, r"degree must be >= 1, got 0"),
        ({"kind": "linear_regression", "params": {"task": "regression", "degree": 2.5}},
         r"param 'degree' must be int, got 2.5"),
        ({"kind": "linear_regression", "params": {"task": "regression", "alpha": 0.5}},
         r"alpha is only read with penalty 'ridge' or 'lasso', got penalty 'none' and alpha 0.5"),
        ({"kind": "linear_regression", "params": {"task": "regression", "penalty": "ridge", "alpha": 0}},
         r"alpha must be > 0 .*got 0.0"),
        ({"kind": "linear_regression", "params": {"task": "regression", "penalty": "l2"}},
         r"param 'penalty' must be one of \['none', 'ridge', 'lasso'\], got 'l2'"),
        ({"kind": "logistic_regression", "params": {"task": "classification", "C": -1}}, r"C must be > 0 .*got -1"),
        ({"kind": "logistic_regression", "params": {"task": "classification", "max_iter": 0}},
         r"max_iter must be >= 1, got 0"),
    ],
)
def test_invalid_params_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        build(spec)


# ---------------------------------------------------------------------------- linear_regression


def test_ols_matches_scikit_learn_and_the_normal_equations(three_features):
    x, y = three_features
    model = _linear().fit(x, y)
    design = np.hstack([np.ones((len(y), 1)), x])  # (n, 1 + d)
    beta = np.linalg.solve(design.T @ design, design.T @ y)  # (XᵀX)⁻¹Xᵀy
    assert model.intercept_ == pytest.approx(beta[0], rel=1e-10)
    np.testing.assert_allclose(model.coef_, beta[1:], rtol=1e-10)
    assert not _linear(bias=False).fit(x, y).intercept_


def test_degree_two_fits_a_quadratic_exactly():
    x = np.linspace(-3, 3, 25).reshape(-1, 1)  # (25, 1)
    y = 1.0 + 0.5 * x[:, 0] - 2.0 * x[:, 0] ** 2
    model = build({"kind": "linear_regression", "params": {"solver": "ols", "degree": 2}},
                  task="regression").fit(x, y)
    assert isinstance(model, Pipeline)
    assert isinstance(model.named_steps["poly"], PolynomialFeatures)
    assert type(model.named_steps["linear"]) is linear_model.LinearRegression
    assert model.named_steps["linear"].intercept_ == pytest.approx(1.0)
    np.testing.assert_allclose(model.named_steps["linear"].coef_, [0.5, -2.0], atol=1e-10)  # x, x²
    np.testing.assert_allclose(model.predict(np.array([[4.0], [-5.0]])), [1 + 2 - 32, 1 - 2.5 - 50], atol=1e-9)
    # degree 1 fits the best straight line, which misses the curve
    line = _linear(degree=1).fit(x, y)
    assert np.abs(line.predict(x) - y).max() > 1.0


def test_ridge_and_lasso_shrink_and_lasso_drops_the_irrelevant_feature(three_features):
    x, y = three_features
    ols = _linear().fit(x, y)
    ridge = _linear(penalty="ridge", alpha=50.0).fit(x, y)
    lasso = _linear(penalty="lasso", alpha=0.2).fit(x, y)
    assert type(ridge) is linear_model.Ridge and type(lasso) is linear_model.Lasso
    np.testing.assert_allclose(ridge.coef_, linear_model.Ridge(alpha=50.0).fit(x, y).coef_)
    np.testing.assert_allclose(lasso.coef_, linear_model.Lasso(alpha=0.2).fit(x, y).coef_)

    assert np.linalg.norm(ridge.coef_) < np.linalg.norm(ols.coef_)
    assert np.all(np.abs(ridge.coef_[:2]) < np.abs(ols.coef_[:2]))
    assert ols.coef_[2] != 0.0 and lasso.coef_[2] == 0.0
    assert np.all(np.abs(lasso.coef_[:2]) < np.abs(ols.coef_[:2])) and np.all(lasso.coef_[:2] != 0.0)
    assert _linear(penalty="ridge").alpha == 1.0  # no alpha: scikit-learn's default


def test_polynomial_ridge_is_a_pipeline_ending_in_ridge():
    model = _linear(degree=3, penalty="ridge", alpha=0.1)
    assert [name for name, _ in model.steps] == ["poly", "linear"]
    assert model.named_steps["poly"].degree == 3 and not model.named_steps["poly"].include_bias
    assert model.named_steps["linear"].alpha == 0.1
    assert clone(model).get_params()["linear__alpha"] == 0.1  # scikit-learn's estimator contract holds


# ---------------------------------------------------------------------------- logistic_regression


def test_binary_logistic_regression_matches_scikit_learn(breast_cancer):
    x, y = breast_cancer
    model = build({"kind": "logistic_regression", "params": {}}).fit(x, y)
    direct = linear_model.LogisticRegression().fit(x, y)
    proba = model.predict_proba(x)
    assert proba.shape == (len(y), 2) and np.allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(x), direct.predict(x))
    assert model.score(x, y) == direct.score(x, y) > 0.95


def test_multinomial_logistic_regression_matches_scikit_learn(iris):
    x, y = iris
    model = _logistic(C=0.5).fit(x, y)
    direct = linear_model.LogisticRegression(C=0.5).fit(x, y)
    proba = model.predict_proba(x)
    assert list(model.classes_) == [0, 1, 2] and proba.shape == (150, 3)
    assert np.allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba, direct.predict_proba(x))
    # multinomial, not one-vs-rest: probabilities are the softmax of the decision function
    scores = model.decision_function(x)  # (150, 3)
    softmax = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba, softmax, rtol=1e-10)
    assert model.score(x, y) == direct.score(x, y) > 0.9


def test_logistic_c_none_is_unpenalised_and_stronger_penalty_shrinks(iris):
    x, y = iris
    assert _logistic(C=None).C == np.inf
    weak, strong = _logistic(C=10.0).fit(x, y), _logistic(C=0.01).fit(x, y)
    assert np.linalg.norm(strong.coef_) < np.linalg.norm(weak.coef_)


# ---------------------------------------------------------------------------- inputs and fit state


@pytest.mark.parametrize("frame", [pd.DataFrame, pl.DataFrame])
def test_fit_and_predict_on_dataframes(frame, three_features, iris):
    x, y = three_features
    columns = ["a", "b", "c"]
    data = frame(dict(zip(columns, x.T)))
    model = _linear(degree=2, penalty="ridge", alpha=0.1).fit(data, y)
    np.testing.assert_allclose(model.predict(data), _linear(degree=2, penalty="ridge", alpha=0.1).fit(x, y).predict(x))

    xi, yi = iris
    data = frame(dict(zip(["w", "x", "y", "z"], xi.T)))
    proba = _logistic().fit(data, yi).predict_proba(data)
    np.testing.assert_allclose(proba, _logistic().fit(xi, yi).predict_proba(xi))


@pytest.mark.parametrize(
    ("model", "features"),
    [
        (lambda: _linear(), 3),
        (lambda: _linear(degree=2, penalty="lasso"), 3),
        (lambda: _logistic(), 4),
    ],
)
def test_predict_before_fit_raises_not_fitted(model, features):
    with pytest.raises(NotFittedError):
        model().predict(np.zeros((2, features)))


# ---------------------------------------------------------------------------- storage


def test_fitted_estimators_round_trip_through_skops(tmp_path, three_features, iris):
    x, y = three_features
    poly = _linear(degree=2, penalty="ridge", alpha=0.5).fit(x, y)
    loaded = load_estimator(save_estimator(poly, tmp_path / "poly.skops"))  # refuses untrusted types
    assert isinstance(loaded, Pipeline) and type(loaded.named_steps["linear"]) is linear_model.Ridge
    np.testing.assert_array_equal(loaded.predict(x), poly.predict(x))

    xi, yi = iris
    logistic = _logistic().fit(xi, yi)
    loaded = load_estimator(save_estimator(logistic, tmp_path / "logistic.skops"))
    np.testing.assert_array_equal(loaded.predict_proba(xi), logistic.predict_proba(xi))


def test_regression_bundle_of_a_polynomial_ridge(tmp_path):
    _, frame, frames, features = diabetes_regression()
    spec = {"kind": "linear_regression", "params": {"solver": "ols", "degree": 2, "penalty": "ridge",
                                                    "alpha": 0.5, "task": "regression"}}
    train = frames["train"]
    estimator = build(spec).fit(
        train.select(features.columns).to_numpy(), train["label"].to_numpy()
    )
    bundle = load_bundle(_bundle(tmp_path, estimator, spec, features))
    assert bundle.is_estimator and bundle.spec == spec
    rows = frame.drop("target").head(5)
    values = bundle.predict(rows)
    assert all(isinstance(v, float) for v in values)
    assert values == estimator.predict(features.inputs(rows)).tolist()


def test_classifier_bundle_of_a_logistic_regression(tmp_path):
    config = PipelineConfig.model_validate(iris_config())
    bronze, _ = check_rows(bundled_frame("iris"), config.schema_, "iris.csv")
    frames, features = prepare(bronze, config.schema_, config.split, config.preprocessing)
    spec = {"kind": "logistic_regression", "params": {"task": "classification"}}
    train = frames["train"]
    estimator = build(spec).fit(
        train.select(features.columns).to_numpy(), train["label"].to_numpy()
    )
    bundle = load_bundle(_bundle(tmp_path, estimator, spec, features))
    assert bundle.is_estimator and type(bundle.model) is linear_model.LogisticRegression
    rows = raw_split(bronze, config.schema_, config.split, "test").drop("target")
    answers = bundle.predict(rows)
    proba = estimator.predict_proba(features.inputs(rows))  # (N, 3)
    assert [a["label"] for a in answers] == proba.argmax(axis=1).tolist()
    assert [list(a["probabilities"].values()) for a in answers] == pytest.approx(proba, abs=1e-6)


def _bundle(tmp_path, estimator, spec, features):
    ckpt = write_estimator_checkpoint(tmp_path / "ckpt", estimator, spec, {})
    return save_bundle(tmp_path / "bundle", checkpoint_dir=ckpt, features=features, metrics={}, lineage={})
