"""Gradient-boosted trees with XGBoost: the `xgboost` kind.

One dataclass config serves both ways XGBoost trains here. `build(spec)` gives
`xgboost.XGBClassifier` / `XGBRegressor` (scikit-learn's `fit`/`predict`/`predict_proba`
on arrays and DataFrames); the Ray Train path (`components.training.xgboost_fit`) calls
`xgboost.train` with `train_params(config)` for `config.n_estimators` rounds. Both read the
same fields, so a spec means the same model whichever way it is fitted.

Classification follows the torch kinds' output convention: `out_features` 1 (or 2) is one
binary output (`binary:logistic`), `out_features` C >= 3 is C classes (`multi:softprob`).
Regression predicts the one label column (`reg:squarederror`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from xgboost import XGBClassifier, XGBModel, XGBRegressor

from components.models.registry import build, register_estimator

Task = Literal["classification", "regression"]


@dataclass
class XGBoostConfig:
    in_features: int
    out_features: int
    task: Task
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
        if self.task == "regression" and self.out_features != 1:
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
    eval metrics, a loss first (what `val_loss` is built from) and, for classifiers, the error."""
    if config.task == "regression":
        return {"objective": "reg:squarederror", "eval_metric": ["rmse"]}
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


@register_estimator("xgboost", family="xgboost")
def _xgboost(config: XGBoostConfig) -> XGBModel:
    # XGBClassifier picks binary:logistic or multi:softprob (and num_class) from the labels at fit
    model = XGBClassifier if config.task == "classification" else XGBRegressor
    return model(
        n_estimators=config.n_estimators,
        max_depth=config.max_depth,
        learning_rate=config.learning_rate,
        subsample=config.subsample,
        colsample_bytree=config.colsample_bytree,
        min_child_weight=config.min_child_weight,
        reg_lambda=config.reg_lambda,
        reg_alpha=config.reg_alpha,
        tree_method=config.tree_method,
        max_bin=config.max_bin,
        random_state=config.random_state,
        eval_metric=objective(config)["eval_metric"],
    )
