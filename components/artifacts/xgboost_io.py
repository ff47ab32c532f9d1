"""Storing XGBoost models in XGBoost's own format (UBJSON): loading never unpickles.

`save_xgboost` writes the trees and the learner's parameters with `save_model`; it takes
a fitted `XGBoostClassifier` (the kind's classifier, for labels of any kind), an
`XGBClassifier`/`XGBRegressor` or a bare `Booster` (what `xgboost.train` returns). A
classifier's labels go into the file as a booster attribute (JSON), so they come back
without pickling. `load_xgboost` reads the file back into `XGBoostClassifier` or
`XGBRegressor`: a classifier's `classes_` are the stored labels, or, for a booster that
stored none (the Ray Train path boosts on label indices), the indices 0..C-1 its objective
implies; it answers `predict_proba` like any scikit-learn estimator.

An XGBoost checkpoint directory mirrors the others (`checkpoint_files`):

    model.ubj     the booster
    state.json    epoch (the last boosting round, from 0), model spec, metrics
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xgboost import Booster, XGBClassifier, XGBModel, XGBRegressor
from xgboost.core import XGBoostError

from components.artifacts.checkpoint_files import write_state
from components.models.boosting import CLASSES_ATTR, XGBoostClassifier

XGBOOST_FILE = "model.ubj"


def save_xgboost(model: XGBoostClassifier | XGBModel | Booster, path: str | Path) -> Path:
    """Write a fitted XGBoost model to `path` in XGBoost's format (UBJSON for `.ubj`,
    JSON for `.json`), an `XGBoostClassifier`'s labels with it; returns the path."""
    path = Path(path)
    booster = model.get_booster() if isinstance(model, (XGBModel, XGBoostClassifier)) else model
    if isinstance(model, XGBoostClassifier):
        # an attribute of the fitted booster: the labels belong to it like its trees
        booster.set_attr(**{CLASSES_ATTR: json.dumps(model.classes_.tolist())})
    booster.save_model(str(path))
    return path


def load_xgboost(path: str | Path, task: str) -> XGBoostClassifier | XGBRegressor:
    """Read a model written by `save_xgboost` into the scikit-learn estimator for `task`.

    Raises ValueError naming the file when it is not an XGBoost model.
    """
    model = _wrapper(task)
    try:
        model.load_model(str(path))
    except (XGBoostError, UnicodeDecodeError) as err:
        # XGBoost's own message quotes the file's first bytes, which may not even be text
        reason = err.reason if isinstance(err, UnicodeDecodeError) else str(err).splitlines()[0]
        raise ValueError(f"{path}: not a model in XGBoost's JSON/UBJSON format ({reason[:200]})") from None
    return _labelled(model)


def as_estimator(booster: Booster, task: str) -> XGBoostClassifier | XGBRegressor:
    """A trained `Booster` inside the scikit-learn estimator for `task` (a copy, through the
    same serialized form a saved model has)."""
    model = _wrapper(task)
    model.load_model(booster.save_raw("ubj"))
    return _labelled(model)


def write_xgboost_checkpoint(
    directory: str | Path, model: XGBModel | Booster, spec: dict[str, Any], metrics: dict[str, float], epoch: int
) -> Path:
    """Write `model.ubj` and `state.json` (the layout `read_state` reads) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_xgboost(model, directory / XGBOOST_FILE)
    return write_state(directory, spec, metrics, epoch=epoch)


def _labelled(model: XGBClassifier | XGBRegressor) -> XGBoostClassifier | XGBRegressor:
    return XGBoostClassifier.from_fitted(model) if isinstance(model, XGBClassifier) else model


def _wrapper(task: str) -> XGBClassifier | XGBRegressor:
    if task == "classification":
        return XGBClassifier()
    if task == "regression":
        return XGBRegressor()
    raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
