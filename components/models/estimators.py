"""Classic models backed by scikit-learn: kNN, naive Bayes, trees and tree ensembles.

Each kind is one dataclass config mapped one-to-one onto a scikit-learn estimator; the
builder picks the classifier or the regressor by `task` ("classification" unless the spec,
or the data through `build(spec, info)`, says otherwise). Following scikit-learn, the
configs hold no sizes: the number of features and the classes (any labels: indices or
names) are learned at `fit`, so `build({"kind": "knn", "params": {"k": 3}})` is ready to
fit. Ensembles take their base model as a nested spec (`{"kind": ..., "params": ...}`) of
any estimator kind, built with the same registry, so the base inherits the ensemble's task.

`AutoKNeighborsClassifier`/`AutoKNeighborsRegressor` implement `k: auto`: the one piece
scikit-learn has no estimator for (choosing an odd k on a held-out split).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.ensemble import (
    AdaBoostClassifier,
    AdaBoostRegressor,
    BaggingClassifier,
    BaggingRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import BernoulliNB, GaussianNB, MultinomialNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from components.models.registry import build, is_estimator, register_estimator

Task = Literal["classification", "regression"]
Metric = Literal["euclidean", "manhattan", "minkowski", "cosine"]
Weights = Literal["uniform", "distance"]


# ---------------------------------------------------------------------------- k: auto


class _AutoKNeighbors(BaseEstimator):
    """k nearest neighbours with an odd k chosen on a held-out part of the training data.

    `fit(X, y)` holds out `validation_fraction` of the rows (seeded; stratified for
    classification when every class can appear on both sides), scores every odd k in
    1..min(max_k, rows kept for fitting), then refits the best k on all of X.
    Learned: `k_`, `scores_` (k -> validation score), `estimator_` (the refitted model).
    """

    _neighbors: Callable[..., Any]  # KNeighborsClassifier or KNeighborsRegressor
    _higher_is_better: bool

    def __init__(
        self,
        *,
        metric: str = "euclidean",
        p: float = 2.0,
        weights: str = "uniform",
        max_k: int = 25,
        validation_fraction: float = 0.25,
        random_state: int | None = 0,
    ) -> None:
        self.metric = metric
        self.p = p
        self.weights = weights
        self.max_k = max_k
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> "_AutoKNeighbors":
        """Choose `k_` on a held-out split of (X, y), then fit it on all of (X, y)."""
        self._check_params()
        X, y = validate_data(self, X, y)
        self._check_targets(y)
        if len(y) < 2:
            raise ValueError(f"k: auto needs at least 2 training rows to hold some out, got {len(y)}")
        fit_idx, val_idx = train_test_split(
            np.arange(len(y)),
            test_size=self.validation_fraction,
            random_state=self.random_state,
            stratify=self._stratify(y),
        )
        candidates = range(1, min(self.max_k, len(fit_idx)) + 1, 2)
        self.scores_ = {
            k: self._score(self._make(k).fit(X[fit_idx], y[fit_idx]), X[val_idx], y[val_idx]) for k in candidates
        }
        pick = max if self._higher_is_better else min
        # ties go to the smallest k: dicts keep insertion order and max/min return the first best
        self.k_ = pick(self.scores_, key=self.scores_.__getitem__)
        self.estimator_ = self._make(self.k_).fit(X, y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of the refitted `k_`-neighbours model."""
        check_is_fitted(self)
        return self.estimator_.predict(validate_data(self, X, reset=False))

    def kneighbors(
        self, X: Any = None, n_neighbors: int | None = None, return_distance: bool = True
    ) -> Any:
        """The refitted model's `kneighbors` (distances and indices into the training rows)."""
        check_is_fitted(self)
        if X is not None:
            X = validate_data(self, X, reset=False)
        return self.estimator_.kneighbors(X, n_neighbors=n_neighbors, return_distance=return_distance)

    def _make(self, k: int) -> Any:
        return self._neighbors(n_neighbors=k, metric=self.metric, p=self.p, weights=self.weights)

    def _check_params(self) -> None:
        if not isinstance(self.max_k, (int, np.integer)) or isinstance(self.max_k, bool) or self.max_k < 1:
            raise ValueError(f"max_k must be an integer >= 1, got {self.max_k!r}")
        if not isinstance(self.validation_fraction, float) or not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be a float in (0, 1), got {self.validation_fraction!r}")

    def _check_targets(self, y: np.ndarray) -> None:
        pass

    def _stratify(self, y: np.ndarray) -> np.ndarray | None:
        return None

    def _score(self, model: Any, X: np.ndarray, y: np.ndarray) -> float:
        raise NotImplementedError


class AutoKNeighborsClassifier(ClassifierMixin, _AutoKNeighbors):
    """`k: auto` for classification: `scores_` are validation accuracies (higher is better)."""

    _neighbors = KNeighborsClassifier
    _higher_is_better = True

    def fit(self, X: Any, y: Any) -> "AutoKNeighborsClassifier":
        """Choose `k_` by validation accuracy, then fit it on all of (X, y)."""
        super().fit(X, y)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N, len(classes_)) of the refitted model."""
        check_is_fitted(self)
        return self.estimator_.predict_proba(validate_data(self, X, reset=False))

    def _check_targets(self, y: np.ndarray) -> None:
        check_classification_targets(y)

    def _stratify(self, y: np.ndarray) -> np.ndarray | None:
        return holdout_stratify(y, self.validation_fraction)

    def _score(self, model: Any, X: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(model.predict(X) == y))


class AutoKNeighborsRegressor(RegressorMixin, _AutoKNeighbors):
    """`k: auto` for regression: `scores_` are validation mean squared errors (lower is better)."""

    _neighbors = KNeighborsRegressor
    _higher_is_better = False

    def _score(self, model: Any, X: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean((model.predict(X) - y) ** 2))


def holdout_stratify(y: np.ndarray, fraction: float) -> np.ndarray | None:
    """`y` as train_test_split's `stratify` for a hold-out of `fraction`, or None where it
    cannot stratify (a class with one row, or fewer held-out rows than classes): a plain
    seeded shuffle is the best left then."""
    _, counts = np.unique(y, return_counts=True)
    n_val = math.ceil(fraction * len(y))
    if counts.min() < 2 or n_val < len(counts) or len(y) - n_val < len(counts):
        return None
    return y


# ---------------------------------------------------------------------------- configs


@dataclass
class KNNConfig:
    task: Task = "classification"
    k: int | Literal["auto"] = 5  # "auto": odd k by validation accuracy / MSE
    metric: Metric = "euclidean"
    p: float = 2.0  # the Minkowski power; only read when metric is "minkowski"
    weights: Weights = "uniform"
    random_state: int = 0  # seeds the hold-out of k: auto

    def __post_init__(self) -> None:
        if self.k != "auto" and self.k < 1:
            raise ValueError(f"k must be >= 1 or 'auto', got {self.k!r}")
        if self.p < 1:
            raise ValueError(f"p must be >= 1, got {self.p!r}")


@dataclass
class NaiveBayesConfig:
    task: Task = "classification"
    # gaussian: per-class normal features (measurements); multinomial: word counts or TF-IDF
    # weights; bernoulli: word presence
    variant: Literal["gaussian", "multinomial", "bernoulli"] = "gaussian"
    var_smoothing: float = 1e-9  # gaussian: fraction of the largest feature variance added to every variance
    alpha: float = 1.0  # multinomial, bernoulli: additive (Laplace) smoothing of the counts

    def __post_init__(self) -> None:
        if self.task != "classification":
            raise ValueError(f"naive_bayes is a classifier: task must be 'classification', got {self.task!r}")
        if self.var_smoothing < 0:
            raise ValueError(f"var_smoothing must be >= 0, got {self.var_smoothing!r}")
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}")


@dataclass
class DecisionTreeConfig:
    task: Task = "classification"
    criterion: Literal["gini", "entropy", "squared_error"] | None = None  # None: gini / squared_error
    max_depth: int | None = None
    min_samples_leaf: int = 1
    random_state: int | None = 0  # breaks ties between equally good splits

    def __post_init__(self) -> None:
        allowed = ["gini", "entropy"] if self.task == "classification" else ["squared_error"]
        if self.criterion is not None and self.criterion not in allowed:
            raise ValueError(f"criterion for task {self.task!r} must be one of {allowed}, got {self.criterion!r}")
        _at_least_one("max_depth", self.max_depth)
        _at_least_one("min_samples_leaf", self.min_samples_leaf)


@dataclass
class RandomForestConfig:
    task: Task = "classification"
    n_estimators: int = 100
    max_depth: int | None = None
    # features tried per split: a count, a fraction, sqrt/log2 of the total, or None for all
    max_features: int | float | Literal["sqrt", "log2"] | None = "sqrt"
    random_state: int | None = 0

    def __post_init__(self) -> None:
        _at_least_one("n_estimators", self.n_estimators)
        _at_least_one("max_depth", self.max_depth)
        if isinstance(self.max_features, int):
            _at_least_one("max_features", self.max_features)
        elif isinstance(self.max_features, float) and not 0.0 < self.max_features <= 1.0:
            raise ValueError(f"max_features as a fraction must be in (0, 1], got {self.max_features!r}")


@dataclass
class BaggingConfig:
    task: Task = "classification"
    base: dict[str, Any] = field(default_factory=lambda: {"kind": "decision_tree", "params": {}})
    n_estimators: int = 10
    max_samples: int | float = 1.0  # rows drawn per model: a count or a fraction of the training rows
    bootstrap: bool = True  # draw with replacement
    random_state: int | None = 0

    def __post_init__(self) -> None:
        _at_least_one("n_estimators", self.n_estimators)
        _check_samples("max_samples", self.max_samples)


@dataclass
class AdaBoostConfig:
    task: Task = "classification"
    base: dict[str, Any] = field(
        default_factory=lambda: {"kind": "decision_tree", "params": {"max_depth": 1}}  # a decision stump
    )
    n_estimators: int = 50
    learning_rate: float = 1.0
    random_state: int | None = 0

    def __post_init__(self) -> None:
        _at_least_one("n_estimators", self.n_estimators)
        _positive("learning_rate", self.learning_rate)


@dataclass
class GradientBoostingConfig:
    task: Task = "classification"
    n_estimators: int = 100
    learning_rate: float = 0.1  # shrinkage ν
    max_depth: int = 3
    subsample: float = 1.0  # < 1: stochastic gradient boosting
    random_state: int | None = 0

    def __post_init__(self) -> None:
        _at_least_one("n_estimators", self.n_estimators)
        _positive("learning_rate", self.learning_rate)
        _at_least_one("max_depth", self.max_depth)
        if not 0.0 < self.subsample <= 1.0:
            raise ValueError(f"subsample must be in (0, 1], got {self.subsample!r}")


# ---------------------------------------------------------------------------- builders


@register_estimator("knn")
def _knn(config: KNNConfig) -> BaseEstimator:
    classify = config.task == "classification"
    if config.k == "auto":
        auto = AutoKNeighborsClassifier if classify else AutoKNeighborsRegressor
        return auto(metric=config.metric, p=config.p, weights=config.weights, random_state=config.random_state)
    neighbors = KNeighborsClassifier if classify else KNeighborsRegressor
    return neighbors(n_neighbors=config.k, metric=config.metric, p=config.p, weights=config.weights)


@register_estimator("naive_bayes")
def _naive_bayes(config: NaiveBayesConfig) -> BaseEstimator:
    if config.variant == "multinomial":
        return MultinomialNB(alpha=config.alpha)
    if config.variant == "bernoulli":
        return BernoulliNB(alpha=config.alpha)
    return GaussianNB(var_smoothing=config.var_smoothing)


@register_estimator("decision_tree")
def _decision_tree(config: DecisionTreeConfig) -> BaseEstimator:
    classify = config.task == "classification"
    tree = DecisionTreeClassifier if classify else DecisionTreeRegressor
    criterion = config.criterion or ("gini" if classify else "squared_error")
    return tree(
        criterion=criterion,
        max_depth=config.max_depth,
        min_samples_leaf=config.min_samples_leaf,
        random_state=config.random_state,
    )


@register_estimator("random_forest")
def _random_forest(config: RandomForestConfig) -> BaseEstimator:
    forest = RandomForestClassifier if config.task == "classification" else RandomForestRegressor
    return forest(
        n_estimators=config.n_estimators,
        max_depth=config.max_depth,
        max_features=config.max_features,
        random_state=config.random_state,
    )


@register_estimator("bagging")
def _bagging(config: BaggingConfig) -> BaseEstimator:
    ensemble = BaggingClassifier if config.task == "classification" else BaggingRegressor
    return ensemble(
        estimator=_build_base("bagging", config),
        n_estimators=config.n_estimators,
        max_samples=config.max_samples,
        bootstrap=config.bootstrap,
        random_state=config.random_state,
    )


@register_estimator("adaboost")
def _adaboost(config: AdaBoostConfig) -> BaseEstimator:
    # scikit-learn >= 1.8 has only SAMME for classification (SAMME.R was removed)
    ensemble = AdaBoostClassifier if config.task == "classification" else AdaBoostRegressor
    return ensemble(
        estimator=_build_base("adaboost", config),
        n_estimators=config.n_estimators,
        learning_rate=config.learning_rate,
        random_state=config.random_state,
    )


@register_estimator("gradient_boosting")
def _gradient_boosting(config: GradientBoostingConfig) -> BaseEstimator:
    boosting = GradientBoostingClassifier if config.task == "classification" else GradientBoostingRegressor
    return boosting(
        n_estimators=config.n_estimators,
        learning_rate=config.learning_rate,
        max_depth=config.max_depth,
        subsample=config.subsample,
        random_state=config.random_state,
    )


# ---------------------------------------------------------------------------- helpers


def _build_base(kind: str, config: BaggingConfig | AdaBoostConfig) -> BaseEstimator:
    # the base inherits the ensemble's task: it is fitted on the same labels
    try:
        if not is_estimator(config.base):
            raise ValueError(f"must name a scikit-learn model kind, got {config.base.get('kind')!r}")
        return build(config.base, task=config.task)
    except ValueError as err:
        raise ValueError(f"model {kind!r}: param 'base': {err}") from None


def _at_least_one(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _check_samples(name: str, value: int | float) -> None:
    if isinstance(value, int):
        _at_least_one(name, value)
    elif not 0.0 < value <= 1.0:
        raise ValueError(f"{name} as a fraction must be in (0, 1], got {value!r}")
