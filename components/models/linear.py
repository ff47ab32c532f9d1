"""Linear and logistic (softmax) regression: one kind each, fitted by scikit-learn or by gradient descent.

`params.solver` picks the family. `lbfgs` (the default) and, for linear regression, `ols`
build a scikit-learn estimator; a gradient-descent solver (`sgd`, `momentum`, `rmsprop`,
`adam`, `adamw`, the names of `OptimizerConfig.name`) builds the nn.Module the torch loop
trains, with that solver as its optimizer (`components.training.loop.loop_config`).

linear_regression, estimator: LinearRegression, or Ridge / Lasso with `penalty` and
`alpha`, behind PolynomialFeatures when `degree` > 1. Its `ols` and `lbfgs` are two names
for the same estimator: scikit-learn solves least squares in closed form (Lasso by
coordinate descent), and `lbfgs` is accepted so one default means "the estimator" for
both kinds.

logistic_regression, estimator: LogisticRegression with lbfgs, binary or multinomial
(> 2 classes) as scikit-learn decides from y; regularised by scikit-learn's `C`.

The estimator configs declare no sizes (scikit-learn learns them at `fit`) and default
`task` to the kind's only task, so `build({"kind": "logistic_regression"})` is usable; the
torch configs declare `in_features`/`out_features`, filled from the data.

Both torch modules are a single nn.Linear; they differ in what the output means and so in
the loss the training code picks: linear regression outputs the prediction (MSE), logistic
regression outputs logits (sigmoid + binary cross-entropy when out_features == 1,
softmax + cross-entropy when out_features > 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn
from sklearn import linear_model
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PolynomialFeatures

from components.models.registry import register, register_estimator

Task = Literal["classification", "regression"]
# the optimizer names of components.config.OptimizerConfig: the solver is the optimizer
GradientSolver = Literal["sgd", "momentum", "rmsprop", "adagrad", "adam", "adamw"]


# ---------------------------------------------------------------------------- torch (gradient descent)


@dataclass
class LinearRegressionConfig:
    in_features: int
    out_features: int
    solver: GradientSolver  # no default: a spec without a solver builds the estimator
    bias: bool = True  # False fits y = a·x through the origin


@dataclass
class LogisticRegressionConfig:
    in_features: int
    out_features: int  # 1: binary (sigmoid); > 1: softmax regression over that many classes
    solver: GradientSolver
    bias: bool = True


@register("linear_regression")
class LinearRegression(nn.Module):
    def __init__(self, config: LinearRegressionConfig) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.in_features, config.out_features, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)  # (B, in) -> (B, out)


@register("logistic_regression")
class LogisticRegression(nn.Module):
    def __init__(self, config: LogisticRegressionConfig) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.in_features, config.out_features, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)  # (B, in) -> (B, out) logits; log-odds when out == 1


# ---------------------------------------------------------------------------- scikit-learn


@dataclass
class LinearRegressionEstimatorConfig:
    task: Task = "regression"  # its only task: the default lets a bare spec build
    solver: Literal["lbfgs", "ols"] = "lbfgs"  # the same estimator either way (module docstring)
    degree: int = 1  # > 1: all monomials of the features up to this degree, cross terms included
    penalty: Literal["none", "ridge", "lasso"] = "none"  # none: OLS; ridge: + alpha·‖w‖²; lasso: + alpha·‖w‖₁
    alpha: float | None = None  # ridge/lasso strength; None: 1.0, scikit-learn's default
    bias: bool = True  # False fits through the origin

    def __post_init__(self) -> None:
        if self.task != "regression":
            raise ValueError(
                f"linear_regression is a regressor: task must be 'regression', got {self.task!r} "
                "(logistic_regression classifies)"
            )
        if self.degree < 1:
            raise ValueError(f"degree must be >= 1, got {self.degree!r}")
        if self.alpha is not None:
            # refused rather than ignored: an alpha with no penalty is a config mistake
            if self.penalty == "none":
                raise ValueError(f"alpha is only read with penalty 'ridge' or 'lasso', got penalty 'none' "
                                 f"and alpha {self.alpha!r}")
            if not self.alpha > 0:
                raise ValueError(f"alpha must be > 0 (penalty 'none' fits without one), got {self.alpha!r}")


@dataclass
class LogisticRegressionEstimatorConfig:
    task: Task = "classification"  # scikit-learn learns the classes (any labels) from y at fit
    solver: Literal["lbfgs"] = "lbfgs"
    # inverse L2 strength, scikit-learn's name and meaning (smaller: stronger); None: unpenalised
    C: float | None = 1.0
    max_iter: int = 100
    bias: bool = True

    def __post_init__(self) -> None:
        if self.task != "classification":
            raise ValueError(
                f"logistic_regression is a classifier: task must be 'classification', got {self.task!r} "
                "(linear_regression regresses)"
            )
        if self.C is not None and not self.C > 0:
            raise ValueError(f"C must be > 0 (None: no penalty), got {self.C!r}")
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter!r}")


@register_estimator("linear_regression")
def _linear_regression_estimator(config: LinearRegressionEstimatorConfig) -> BaseEstimator:
    alpha = 1.0 if config.alpha is None else config.alpha
    if config.penalty == "ridge":
        model = linear_model.Ridge(alpha=alpha, fit_intercept=config.bias)
    elif config.penalty == "lasso":
        model = linear_model.Lasso(alpha=alpha, fit_intercept=config.bias)
    else:
        model = linear_model.LinearRegression(fit_intercept=config.bias)
    if config.degree == 1:
        return model
    # no constant column: the intercept is the linear model's, and Ridge/Lasso leave it unpenalised
    poly = PolynomialFeatures(degree=config.degree, include_bias=False)
    return Pipeline([("poly", poly), ("linear", model)])


@register_estimator("logistic_regression")
def _logistic_regression_estimator(config: LogisticRegressionEstimatorConfig) -> BaseEstimator:
    # scikit-learn >= 1.8 spells "no penalty" C=inf (its `penalty` argument is deprecated)
    return linear_model.LogisticRegression(
        C=float("inf") if config.C is None else config.C,
        solver="lbfgs",
        max_iter=config.max_iter,
        fit_intercept=config.bias,
    )
