"""Gradient-boosted trees with XGBoost: the `xgboost` kind.

One dataclass config serves both ways XGBoost trains here. `build(spec)` gives an
estimator with scikit-learn's `fit`/`predict`/`predict_proba` on arrays and DataFrames
(`XGBoostClassifier`, or `xgboost.XGBRegressor` for regression); the Ray Train path
(`components.training.xgboost_fit`) calls `xgboost.train` with `train_params(config)` for
`config.n_estimators` rounds. Both read the same fields, so a spec means the same model
whichever way it is fitted.

The scikit-learn path learns the classes at `fit`, as scikit-learn does: XGBoost itself
only takes labels 0..C-1, so `XGBoostClassifier` encodes the labels it is given (strings
too) and decodes its predictions. The Ray Train path boosts on the pipeline's label
indices, and must name the objective before any worker sees its shard: it reads the class
count from `out_features`, the one size this config declares, filled from the data by
`build(spec, info)` / the training config (the torch kinds' convention: 1 (or 2) is one
binary output, `binary:logistic`; C >= 3 is C classes, `multi:softprob`). Regression
predicts the one label column (`reg:squarederror`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from xgboost import Booster, XGBClassifier, XGBRegressor

from components.models.registry import build, register_estimator

Task = Literal["classification", "regression"]
CLASSES_ATTR = "rayline_classes"  # booster attribute: the labels of a classifier's outputs, as JSON


@dataclass
class XGBoostConfig:
    task: Task = "classification"
    # the Ray Train path's class count (1 or 2: binary), set from the data; build() learns it at fit
    out_features: int | None = None
    n_estimators: int = 100  # boosting rounds: xgboost.train's num_boost_round
    max_depth: int = 6
    learning_rate: float = 0.3  # eta, the shrinkage of each tree's contribution
    subsample: float = 1.0  # fraction of rows drawn for each tree
    colsample_bytree: float = 1.0  # fraction of features drawn for each tree
    min_child_weight: float = 1.0  # least hessian sum a leaf may hold
    reg_lambda: float = 1.0  # L2 penalty on leaf weights (lambda)
    reg_alpha: float = 0.0  # L1 penalty on leaf weights (alpha)
    tree_method: Literal["hist", "approx", "exact"] = "hist"
    max_bin: int = 256  # histogram bins per feature (hist and approx)
    random_state: int = 0  # seed of the row and feature sampling

    def __post_init__(self) -> None:
        for name in ("n_estimators", "max_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.max_bin < 2:
            raise ValueError(f"max_bin must be >= 2, got {self.max_bin!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        for name in ("subsample", "colsample_bytree"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)!r}")
        for name in ("min_child_weight", "reg_lambda", "reg_alpha"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.out_features is not None and self.out_features < 1:
            raise ValueError(f"out_features must be >= 1, got {self.out_features!r}")
        if self.task == "regression" and self.out_features not in (None, 1):
            raise ValueError(f"xgboost regression predicts one label: out_features must be 1, got {self.out_features!r}")


def config_from_spec(spec: Mapping[str, Any], /, **params: Any) -> XGBoostConfig:
    """The `XGBoostConfig` of an `xgboost` spec, `params` merged over its params: what the
    Ray Train path boosts with. Raises ValueError as `build` does for a bad param."""
    if spec.get("kind") != "xgboost":
        raise ValueError(f"model spec must be of kind 'xgboost', got {spec.get('kind')!r}")
    build(spec, **params)  # the registry's checks, with its messages naming the param
    return XGBoostConfig(**{**spec.get("params", {}), **params})


def objective(config: XGBoostConfig) -> dict[str, Any]:
    """The learning task: objective (with num_class for several classes) and the per-round
    eval metrics, a loss first (what `val_loss` is built from) and, for classifiers, the error.
    A classifier needs `config.out_features` (the class count, from the data)."""
    if config.task == "regression":
        return {"objective": "reg:squarederror", "eval_metric": ["rmse"]}
    if config.out_features is None:
        raise ValueError(
            "model 'xgboost': xgboost.train needs param 'out_features' (the class count) to pick its objective, "
            "got None; the training config sets it from the data"
        )
    if config.out_features <= 2:
        return {"objective": "binary:logistic", "eval_metric": ["logloss", "error"]}
    return {"objective": "multi:softprob", "num_class": config.out_features, "eval_metric": ["mlogloss", "merror"]}


def train_params(config: XGBoostConfig) -> dict[str, Any]:
    """`xgboost.train` params for `config` (rounds are `config.n_estimators`, passed apart);
    the same hyperparameters `build` gives the scikit-learn wrapper."""
    return {
        **objective(config),
        "tree_method": config.tree_method,
        "max_depth": config.max_depth,
        "eta": config.learning_rate,
        "subsample": config.subsample,
        "colsample_bytree": config.colsample_bytree,
        "min_child_weight": config.min_child_weight,
        "lambda": config.reg_lambda,
        "alpha": config.reg_alpha,
        "max_bin": config.max_bin,
        "seed": config.random_state,
    }


# ---------------------------------------------------------------------------- any labels


class XGBoostClassifier(ClassifierMixin, BaseEstimator):
    """`xgboost.XGBClassifier` for labels of any kind (indices, strings), with scikit-learn's contract.

    XGBoost only fits labels 0..C-1: `fit` learns `classes_` (the sorted distinct labels),
    boosts on their indices and `predict` answers with the labels again. The parameters
    are XGBClassifier's of the same names; the eval metrics (a loss, then the error) follow
    from the class count at fit, as `objective` picks them for `xgboost.train`.
    Learned: `classes_`, `n_classes_`, `n_features_in_`, `model_` (the fitted XGBClassifier).
    """

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        max_depth: int = 6,
        learning_rate: float = 0.3,
        subsample: float = 1.0,
        colsample_bytree: float = 1.0,
        min_child_weight: float = 1.0,
        reg_lambda: float = 1.0,
        reg_alpha: float = 0.0,
        tree_method: str = "hist",
        max_bin: int = 256,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.tree_method = tree_method
        self.max_bin = max_bin
        self.random_state = random_state

    def fit(self, X: Any, y: Any, *, sample_weight: Any = None) -> XGBoostClassifier:
        """Learn the classes of `y`, then boost on their indices."""
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        classes, encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"xgboost classification needs at least 2 classes in y, got {classes.tolist()}")
        metrics = ["logloss", "error"] if len(classes) == 2 else ["mlogloss", "merror"]
        model = XGBClassifier(**self.get_params(), eval_metric=metrics)
        model.fit(X, encoded, sample_weight=sample_weight)
        self._set_fitted(model, classes)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The predicted labels, of the kind `fit` was given."""
        check_is_fitted(self)
        return self.classes_[np.asarray(self.model_.predict(X), dtype=np.int64)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N, len(classes_)), columns in the order of `classes_`."""
        check_is_fitted(self)
        return self.model_.predict_proba(X)

    def get_booster(self) -> Booster:
        """The fitted booster (its outputs are the indices into `classes_`)."""
        check_is_fitted(self)
        return self.model_.get_booster()

    @property
    def feature_importances_(self) -> np.ndarray:
        check_is_fitted(self)
        return self.model_.feature_importances_

    @classmethod
    def from_fitted(cls, model: XGBClassifier, classes: Any = None) -> XGBoostClassifier:
        """A fitted classifier around an XGBClassifier fitted (or loaded) elsewhere: `classes`
        are the labels of its outputs, else the ones its booster records (`CLASSES_ATTR`),
        else its output indices 0..C-1."""
        if classes is None:
            recorded = model.get_booster().attr(CLASSES_ATTR)
            classes = json.loads(recorded) if recorded is not None else np.arange(model.n_classes_)
        # a loaded model records few of its params (the spec stored beside it has them all)
        known = {k: v for k, v in model.get_params().items() if k in cls._get_param_names() and v is not None}
        classifier = cls(**known)
        classifier._set_fitted(model, np.asarray(classes))
        return classifier

    def _set_fitted(self, model: XGBClassifier, classes: np.ndarray) -> None:
        if len(classes) != model.n_classes_:
            raise ValueError(f"expected {model.n_classes_} class labels for the model's outputs, got {len(classes)}")
        self.model_ = model
        self.classes_ = classes
        self.n_classes_ = len(classes)
        self.n_features_in_ = model.n_features_in_
        if hasattr(model, "feature_names_in_"):
            self.feature_names_in_ = model.feature_names_in_


@register_estimator("xgboost", family="xgboost")
def _xgboost(config: XGBoostConfig) -> XGBoostClassifier | XGBRegressor:
    if config.task == "classification":
        return XGBoostClassifier(**_hyperparameters(config))
    return XGBRegressor(**_hyperparameters(config), eval_metric=objective(config)["eval_metric"])


def _hyperparameters(config: XGBoostConfig) -> dict[str, Any]:
    return {
        "n_estimators": config.n_estimators,
        "max_depth": config.max_depth,
        "learning_rate": config.learning_rate,
        "subsample": config.subsample,
        "colsample_bytree": config.colsample_bytree,
        "min_child_weight": config.min_child_weight,
        "reg_lambda": config.reg_lambda,
        "reg_alpha": config.reg_alpha,
        "tree_method": config.tree_method,
        "max_bin": config.max_bin,
        "random_state": config.random_state,
    }
