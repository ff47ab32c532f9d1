"""Ensembles of any model kinds: voting, weighted (greedy selection) and stacking.

    voting     hard: weighted majority of the members' labels; soft: weighted mean of their
               class probabilities; regression: weighted mean of their values
    weighted   weights learned by greedy ensemble selection with replacement (Caruana et
               al. 2004, as AutoGluon's WeightedEnsemble) on out-of-fold predictions
    stacking   a meta-learner fitted on the members' out-of-fold predictions

Out-of-fold predictions come from k-fold: every member is fitted k times on k-1 folds and
predicts the fold it did not see; the members themselves are then fitted on all rows. The
fits are independent jobs run by joblib, so under Ray's joblib backend they spread across
the cluster.

Combining is one pure function of the members' outputs (`Combiner`): `Ensemble.predict`
and the serving combiner, which receives the outputs from member deployments, share it.
A member output is (N, C) class probabilities for classification, (N,) values otherwise.

Like any scikit-learn classifier, the ensemble learns its classes at `fit` (labels of any
kind: indices, strings). Members are fitted on the class indices 0..C-1, so their outputs,
the combiner's columns and the stored members all speak indices, and `predict` maps the
winning index back to its label. `classes` fixes the labels and their order before fit:
the pipeline passes its label indices 0..C-1, so the combined columns are its label
indices (what serving answers with) even when a class is missing from the training rows.

Torch members train with the project's loop, which lives in the training layer and builds
its models from this one; so the training layer provides the fitter for them
(`set_torch_member_fitter`, called when `components.training.torch_estimator` is
imported) rather than this module importing it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import numpy as np
import torch.nn as nn
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import ClassifierTags, RegressorTags, Tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from components.data.modalities.info import DataInfo
from components.data.modalities.tabular import tabular_info
from components.models.outputs import predict_arrays
from components.models.registry import build, data_fields, family, register_estimator

Task = Literal["classification", "regression"]
Method = Literal["voting", "weighted", "stacking"]
_EPS = 1e-12


# ---------------------------------------------------------------------------- combining


def soft_vote(probas: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted mean of the members' class probabilities: M x (N, C) -> (N, C)."""
    w = _normalised(weights)
    return np.tensordot(w, np.stack(probas), axes=1)  # (M,) . (M, N, C) -> (N, C)


def hard_vote(labels: Sequence[np.ndarray], weights: Sequence[float], n_classes: int) -> np.ndarray:
    """Each class's share of the weighted votes: M x (N,) labels -> (N, C).

    The answer is the argmax; a tie goes to the lowest class index, as scikit-learn's
    VotingClassifier does."""
    w = _normalised(weights)
    shares = np.zeros((len(labels[0]), n_classes))  # (N, C)
    for weight, votes in zip(w, labels):
        shares[np.arange(len(votes)), votes.astype(np.int64)] += weight
    return shares


def average(values: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted mean of the members' regression outputs: M x (N,) -> (N,)."""
    return np.tensordot(_normalised(weights), np.stack(values), axes=1)  # (M,) . (M, N) -> (N,)


def stack_features(outputs: Sequence[np.ndarray], task: str) -> np.ndarray:
    """The meta-learner's inputs: the members' outputs side by side, (N, M·C) or (N, M).

    For two classes only P(class 1) is kept per member (the other column is 1 minus it),
    as scikit-learn's StackingClassifier does."""
    if task == "regression":
        return np.stack(outputs, axis=1)  # (N, M)
    cols = [p[:, 1:] if p.shape[1] == 2 else p for p in outputs]
    return np.concatenate(cols, axis=1)  # (N, M·C) or (N, M) for binary


def greedy_weights(
    outputs: Sequence[np.ndarray], y: np.ndarray, task: str, rounds: int
) -> np.ndarray:
    """Greedy ensemble selection with replacement: `rounds` times, add the member whose
    addition gives the lowest loss (log loss, or MSE) of the running mean; the weights are
    how often each member was picked, over `rounds`. Ties go to the earlier member."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}")
    stacked = np.stack(outputs)  # (M, N, C) or (M, N)
    counts = np.zeros(len(outputs))
    total = np.zeros_like(stacked[0])
    for step in range(1, rounds + 1):
        losses = [_loss((total + candidate) / step, y, task) for candidate in stacked]
        best = int(np.argmin(losses))
        counts[best] += 1
        total += stacked[best]
    return counts / rounds


@dataclass(frozen=True)
class Combiner:
    """How an ensemble turns its members' outputs into one answer.

    `weights` has one entry per member; `meta` is the fitted stacking meta-learner.
    """

    method: Method
    task: str
    n_classes: int  # 0 for regression
    weights: tuple[float, ...]
    voting: Literal["soft", "hard"] = "soft"
    meta: Any = None

    def __call__(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """(N, C) probabilities (vote shares for hard voting) or (N,) values."""
        if len(outputs) != len(self.weights):
            raise ValueError(f"expected {len(self.weights)} member outputs, got {len(outputs)}")
        if self.method == "stacking":
            x = stack_features(outputs, self.task)
            if self.task == "regression":
                return np.asarray(self.meta.predict(x), dtype=np.float64).reshape(-1)
            proba = np.zeros((len(x), self.n_classes))
            proba[:, np.asarray(self.meta.classes_, dtype=np.int64)] = self.meta.predict_proba(x)
            return proba
        if self.task == "regression":
            return average(outputs, self.weights)
        if self.voting == "hard":
            return hard_vote([p.argmax(axis=1) for p in outputs], self.weights, self.n_classes)
        return soft_vote(outputs, self.weights)

    def without(self, missing: Sequence[int]) -> Combiner:
        """The combiner for the members left when those at `missing` did not answer: their
        weights drop out. The meta-learner needs every member, so a degraded stacking
        ensemble averages the members left, with equal weights."""
        keep = [w for i, w in enumerate(self.weights) if i not in set(missing)]
        if not keep:
            raise ValueError("no member left to combine")
        if self.method == "stacking":
            return replace(self, method="voting", voting="soft", weights=(1.0,) * len(keep), meta=None)
        if sum(keep) <= 0:  # greedy selection may have given every remaining member weight 0
            keep = [1.0] * len(keep)
        return replace(self, weights=tuple(keep))


# ---------------------------------------------------------------------------- the estimator


def member_names(members: Sequence[dict[str, Any]]) -> list[str]:
    """Readable unique names: the kind, numbered from the second of a kind on."""
    seen: Counter[str] = Counter()
    names = []
    for spec in members:
        kind = spec["kind"]
        seen[kind] += 1
        names.append(kind if seen[kind] == 1 else f"{kind}_{seen[kind]}")
    return names


class Ensemble(BaseEstimator):
    """An ensemble of model specs ({kind, params}) of any family, with scikit-learn's API.

    Classification labels may be of any kind; `classes` (optional) lists them in the order
    of the combined columns, else they are the sorted labels of y. Torch members train with
    the project's loop under `training` (the pipeline's training config).
    Learned: `classes_` (classification), `members_` (fitted models: estimators or
    nn.Modules, all on the class indices), `member_specs_` (the specs they were built
    with), `names_`, `out_features_` (the members' outputs: 1 for two classes or a value,
    else one per class), `combiner_` (with `weights_` and, stacking, `meta_`).
    """

    def __init__(
        self,
        *,
        members: list[dict[str, Any]],
        task: str = "classification",
        method: str = "voting",
        voting: str = "soft",
        weights: list[float] | None = None,
        meta: dict[str, Any] | None = None,
        folds: int = 5,
        rounds: int = 25,
        classes: list[Any] | None = None,
        training: dict[str, Any] | None = None,
        n_jobs: int | None = None,
        random_state: int = 0,
    ) -> None:
        self.members = members
        self.task = task
        self.method = method
        self.voting = voting
        self.weights = weights
        self.meta = meta
        self.folds = folds
        self.rounds = rounds
        self.classes = classes
        self.training = training
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> Ensemble:
        """Fit every member on all rows (and on k-1 folds for weighted / stacking), then
        learn the weights or the meta-learner from the out-of-fold predictions. The fits
        run as joblib jobs (`n_jobs`); `plan` + `complete` let a caller run them elsewhere."""
        X, y = self._validate(X, y)
        jobs = self.plan(X, y)
        # looked up here, not in the jobs: a joblib worker process has not imported the training layer
        torch_kinds = _torch_kinds(jobs)
        torch_fitter = torch_member_fitter(torch_kinds) if torch_kinds else None
        fitted = Parallel(n_jobs=self.n_jobs)(delayed(job.run)(X, y, self.training, torch_fitter) for job in jobs)
        return self.complete(X, y, jobs, fitted)

    def plan(self, X: Any, y: Any) -> list[FitJob]:
        """The independent fits `fit` needs: each member on all rows first, then (weighted,
        stacking) each member on every k-1 folds. Each job fits on the class indices."""
        X, y = self._validate(X, y)
        classes, target = self._classes(y)
        info = _member_info(self.task, X.shape[1], classes)
        specs = [_member_spec(spec, info) for spec in self.members]
        splits = list(self._folds(target).split(X, target)) if self.method in ("weighted", "stacking") else []
        everything = np.arange(len(y))
        jobs = [
            FitJob(i, spec, self.task, everything, None, self.random_state, classes) for i, spec in enumerate(specs)
        ]
        jobs += [
            FitJob(i, spec, self.task, train, test, self.random_state, classes)
            for i, spec in enumerate(specs)
            for train, test in splits
        ]
        return jobs

    def complete(self, X: Any, y: Any, jobs: list[FitJob], fitted: list[Any]) -> Ensemble:
        """Finish `fit` from the models the `plan`'s jobs produced, in the same order."""
        X, y = self._validate(X, y)
        if len(fitted) != len(jobs):
            raise ValueError(f"expected one fitted model per job ({len(jobs)}), got {len(fitted)}")
        classify = self.task == "classification"
        classes, target = self._classes(y)
        n_classes = len(classes) if classify else 0
        full = [(job, model) for job, model in zip(jobs, fitted) if job.test is None]
        folds = [(job, model) for job, model in zip(jobs, fitted) if job.test is not None]
        self.member_specs_ = [job.spec for job, _ in full]
        self.members_ = [model for _, model in full]
        self.names_ = member_names(self.member_specs_)
        self.out_features_ = _member_info(self.task, X.shape[1], classes).out_features
        if classify:
            self.classes_ = classes

        weights = self.weights or [1.0] * len(full)
        meta = None
        if folds:
            outputs = [np.zeros((len(y), n_classes)) if classify else np.zeros(len(y)) for _ in full]
            for job, model in folds:
                outputs[job.member][job.test] = member_output(model, X[job.test], self.task, self.out_features_)
            if self.method == "weighted":
                weights = list(greedy_weights(outputs, target, self.task, self.rounds))
            else:
                stacked = stack_features(outputs, self.task)
                meta = self._meta().fit(stacked, target)
        self.combiner_ = Combiner(
            method=self.method, task=self.task, n_classes=n_classes,
            weights=tuple(float(w) for w in weights), voting=self.voting, meta=meta,
        )
        return self

    def _validate(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(self, X, y, dtype=np.float32)
        if self.task == "classification":
            check_classification_targets(y)
        return X, y

    def _classes(self, y: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """(the labels, y as indices into them) for classification; (None, y) otherwise."""
        if self.task != "classification":
            return None, y
        classes = np.unique(y) if self.classes is None else np.asarray(self.classes)
        if len(classes) < 2:
            raise ValueError(f"an ensemble classifier needs at least 2 classes, got {classes.tolist()}")
        return classes, encode_labels(classes, y)

    def __sklearn_tags__(self) -> Tags:
        # a classifier or a regressor by its task, as scikit-learn's `is_classifier` reads it
        return task_tags(super().__sklearn_tags__(), self.task)

    @property
    def weights_(self) -> np.ndarray:
        return np.asarray(self.combiner_.weights)

    @property
    def meta_(self) -> Any:
        return self.combiner_.meta

    @classmethod
    def assemble(
        cls, *, members: list[Any], member_specs: list[dict[str, Any]], combiner: Combiner, n_features_in: int,
        out_features: int, classes: Sequence[Any] | None = None,
    ) -> Ensemble:
        """A fitted ensemble from members fitted elsewhere (a stored ensemble, read back);
        `classes` are the labels of the combined columns (default: their indices)."""
        if combiner.task == "classification" and classes is None:
            classes = range(combiner.n_classes)
        ensemble = cls(
            members=[{"kind": s["kind"], "params": s["params"]} for s in member_specs], task=combiner.task,
            method=combiner.method, voting=combiner.voting, classes=None if classes is None else list(classes),
        )
        ensemble.members_ = members
        ensemble.member_specs_ = member_specs
        ensemble.names_ = member_names(member_specs)
        ensemble.out_features_ = out_features
        ensemble.n_features_in_ = n_features_in
        ensemble.combiner_ = combiner
        if combiner.task == "classification":
            ensemble.classes_ = np.asarray(classes)
            if len(ensemble.classes_) != combiner.n_classes:
                raise ValueError(f"expected {combiner.n_classes} class labels, got {len(ensemble.classes_)}")
        return ensemble

    def member_outputs(self, X: Any) -> list[np.ndarray]:
        """Each member's output on X: (N, C) probabilities or (N,) values."""
        check_is_fitted(self, "members_")
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return [member_output(m, X, self.task, self.out_features_) for m in self.members_]

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (of the argmax of `predict_proba`) or values."""
        outputs = self.member_outputs(X)
        combined = self.combiner_(outputs)
        return self.classes_[combined.argmax(axis=1)] if self.task == "classification" else combined

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, C) class probabilities, columns in the order of `classes_`; vote shares for hard voting."""
        if self.task != "classification":
            raise AttributeError("predict_proba is only available when task is 'classification'")
        outputs = self.member_outputs(X)
        return self.combiner_(outputs)

    def _folds(self, target: np.ndarray) -> KFold | StratifiedKFold:
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2 for method {self.method!r}, got {self.folds!r}")
        # every class present must fill every fold (classes given but absent count as none)
        if self.task == "classification" and np.bincount(target)[np.unique(target)].min() >= self.folds:
            return StratifiedKFold(self.folds, shuffle=True, random_state=self.random_state)
        return KFold(self.folds, shuffle=True, random_state=self.random_state)

    def _meta(self) -> Any:
        spec = self.meta or {"kind": "logistic_regression" if self.task == "classification" else "linear_regression"}
        if family(spec) != "sklearn":
            raise ValueError(f"meta must be a scikit-learn model kind, got {spec.get('kind')!r}")
        return build(spec, task=self.task)


def task_tags(tags: Tags, task: str) -> Tags:
    """`tags` of an estimator whose `task` makes it a classifier or a regressor."""
    if task == "classification":
        tags.estimator_type, tags.classifier_tags = "classifier", ClassifierTags()
    else:
        tags.estimator_type, tags.regressor_tags = "regressor", RegressorTags()
    return tags


def encode_labels(classes: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`y` as indices into `classes` (int64); raises ValueError naming labels not among them."""
    order = np.argsort(classes, kind="stable")
    pos = np.clip(np.searchsorted(classes, y, sorter=order), 0, len(classes) - 1)
    index = order[pos]
    unknown = classes[index] != y
    if np.any(unknown):
        raise ValueError(f"y has labels not in classes {classes.tolist()}: {np.unique(y[unknown]).tolist()[:10]}")
    return index.astype(np.int64)


def member_output(model: Any, X: np.ndarray, task: str, out_features: int) -> np.ndarray:
    """A fitted member's output: (N, C) class probabilities or (N,) values."""
    pred, proba = predict_arrays(model, X, task, out_features)
    return proba if task == "classification" else pred


def _member_info(task: str, in_features: int, classes: np.ndarray | None) -> DataInfo:
    """What the members learn from: rows of `in_features` numbers and the class indices."""
    n_outputs = 1 if classes is None or len(classes) <= 2 else len(classes)
    return tabular_info(task, in_features, n_outputs)


def _member_spec(spec: dict[str, Any], info: DataInfo) -> dict[str, Any]:
    """The spec a member is built (and stored) with: the data fields its kind declares
    (the sizes of a torch kind, the task of an estimator), as `build(spec, info)` fills them."""
    return {"kind": spec["kind"], "params": {**spec.get("params", {}), **data_fields(spec, info)}}


class TorchMemberFitter(Protocol):
    """Trains a torch kind's `spec` on (X, y), the rows' class indices for classification,
    and returns the trained nn.Module. `classes` lists every index the module keeps an
    output for (None for regression), even when these rows lack some."""

    def __call__(
        self, spec: dict[str, Any], task: str, X: np.ndarray, y: np.ndarray, *,
        training: dict[str, Any] | None, classes: list[int] | None, random_state: int,
    ) -> nn.Module: ...


_torch_member_fitter: TorchMemberFitter | None = None


def set_torch_member_fitter(fitter: TorchMemberFitter) -> None:
    """Make `fitter` the one ensembles train their torch members with, in this process."""
    global _torch_member_fitter
    _torch_member_fitter = fitter


def torch_member_fitter(kinds: Sequence[str] = ()) -> TorchMemberFitter:
    """The fitter set for torch members; a RuntimeError naming what to import when none is
    (`kinds`: the torch members that need it, for the message)."""
    if _torch_member_fitter is None:
        members = f" ({', '.join(repr(k) for k in kinds)})" if kinds else ""
        raise RuntimeError(
            f"torch ensemble members{members} train with the training loop, and no torch member fitter is set: "
            "import components.training.torch_estimator, which sets it"
        )
    return _torch_member_fitter


@dataclass(frozen=True)
class FitJob:
    """One member fitted on some rows: all of them (`test` is None) or every fold but one."""

    member: int
    spec: dict[str, Any]
    task: str
    train: np.ndarray  # row indices to fit on
    test: np.ndarray | None  # the held-out fold's row indices
    random_state: int
    classes: np.ndarray | None = None  # classification: the ensemble's labels; members fit their indices

    def run(
        self, X: np.ndarray, y: np.ndarray, training: dict[str, Any] | None,
        torch_fitter: TorchMemberFitter | None = None,
    ) -> Any:
        """The fitted member: an estimator, or the trained nn.Module of a torch kind, fitted
        on the rows' class indices (y holds the labels, as the ensemble was given them).
        A torch kind trains with `torch_fitter`, else with the one set in this process."""
        X, y = X[self.train], y[self.train]
        if self.classes is not None:
            y = encode_labels(self.classes, y)
        if family(self.spec) == "torch":
            fit = torch_fitter or torch_member_fitter([self.spec["kind"]])
            # every index keeps its output column, even when these rows lack a class
            indices = None if self.classes is None else list(range(len(self.classes)))
            return fit(self.spec, self.task, X, y, training=training, classes=indices, random_state=self.random_state)
        return build(self.spec).fit(X, y)


def _torch_kinds(jobs: Sequence[FitJob]) -> list[str]:
    return list(dict.fromkeys(job.spec["kind"] for job in jobs if family(job.spec) == "torch"))


# ---------------------------------------------------------------------------- the kind


@dataclass
class EnsembleConfig:
    task: Task = "classification"  # no sizes: the ensemble learns them, and its classes, at fit
    members: list[dict[str, Any]] = field(default_factory=list)  # specs {kind, params}, any family
    method: Method = "voting"
    voting: Literal["soft", "hard"] = "soft"  # voting only
    weights: list[float] | None = None  # voting only; equal weights when None
    meta: dict[str, Any] | None = None  # stacking: the meta-learner (default logistic/linear regression)
    folds: int = 5  # weighted and stacking: k of the out-of-fold k-fold
    rounds: int = 25  # weighted: greedy selection steps
    training: dict[str, Any] = field(default_factory=dict)  # torch members' training config
    n_jobs: int | None = None  # parallel fits; -1: all (under Ray's joblib backend, the cluster)
    random_state: int = 0

    def __post_init__(self) -> None:
        for i, spec in enumerate(self.members):
            if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
                raise ValueError(f"members[{i}] must be a model spec {{kind, params}}, got {spec!r}")
            if spec["kind"] == "ensemble":
                raise ValueError(f"members[{i}]: an ensemble cannot be a member of an ensemble")
            family(spec)  # an unknown kind or solver fails here, naming it
        if self.weights is not None:
            if len(self.weights) != len(self.members):
                raise ValueError(f"weights needs one entry per member ({len(self.members)}), got {len(self.weights)}")
            if min(self.weights) < 0 or sum(self.weights) <= 0:
                raise ValueError(f"weights must be >= 0 with a positive sum, got {self.weights!r}")
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2, got {self.folds!r}")
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds!r}")


@register_estimator("ensemble", family="ensemble")
def _ensemble(config: EnsembleConfig) -> Ensemble:
    if not config.members:
        raise ValueError("model 'ensemble': param 'members' is empty; list member specs or search families in tuning")
    return Ensemble(
        members=config.members, task=config.task, method=config.method, voting=config.voting,
        weights=config.weights, meta=config.meta, folds=config.folds, rounds=config.rounds,
        training=config.training, n_jobs=config.n_jobs,
        random_state=config.random_state,
    )


def _normalised(weights: Sequence[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum()


def _loss(combined: np.ndarray, y: np.ndarray, task: str) -> float:
    if task == "regression":
        return float(np.mean((combined - y) ** 2))
    picked = combined[np.arange(len(y)), y.astype(np.int64)]
    return float(-np.log(np.clip(picked, _EPS, 1.0)).mean())
