"""Storing XGBoost models in XGBoost's own format (UBJSON): loading never unpickles.

`save_xgboost` writes the trees and the learner's parameters with `save_model`; it takes
a fitted `XGBClassifier`/`XGBRegressor` or a bare `Booster` (what `xgboost.train` returns).
`load_xgboost` reads the file back into the scikit-learn wrapper for the task, which
recovers `classes_`/`n_classes_` from the stored objective, so a loaded classifier answers
`predict_proba` like any scikit-learn estimator.

An XGBoost checkpoint directory mirrors the others (`components.training.checkpoint`):

    model.ubj     the booster
    state.json    epoch (the last boosting round, from 0), model spec, metrics
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xgboost import Booster, XGBClassifier, XGBModel, XGBRegressor
from xgboost.core import XGBoostError

from components.training.checkpoint import write_state

XGBOOST_FILE = "model.ubj"


def save_xgboost(model: XGBModel | Booster, path: str | Path) -> Path:
    """Write a fitted XGBoost model to `path` in XGBoost's format (UBJSON for `.ubj`,
    JSON for `.json`); returns the path."""
    path = Path(path)
    booster = model.get_booster() if isinstance(model, XGBModel) else model
    booster.save_model(str(path))
    return path


def load_xgboost(path: str | Path, task: str) -> XGBClassifier | XGBRegressor:
    """Read a model written by `save_xgboost` into the scikit-learn wrapper for `task`.

    Raises ValueError naming the file when it is not an XGBoost model.
    """
    model = _wrapper(task)
    try:
        model.load_model(str(path))
    except (XGBoostError, UnicodeDecodeError) as err:
        # XGBoost's own message quotes the file's first bytes, which may not even be text
        reason = err.reason if isinstance(err, UnicodeDecodeError) else str(err).splitlines()[0]
        raise ValueError(f"{path}: not a model in XGBoost's JSON/UBJSON format ({reason[:200]})") from None
    return model


def as_estimator(booster: Booster, task: str) -> XGBClassifier | XGBRegressor:
    """A trained `Booster` inside the scikit-learn wrapper for `task` (a copy, through the
    same serialized form a saved model has)."""
    model = _wrapper(task)
    model.load_model(booster.save_raw("ubj"))
    return model


def write_xgboost_checkpoint(
    directory: str | Path, model: XGBModel | Booster, spec: dict[str, Any], metrics: dict[str, float], epoch: int
) -> Path:
    """Write `model.ubj` and `state.json` (the layout `read_state` reads) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_xgboost(model, directory / XGBOOST_FILE)
    return write_state(directory, spec, metrics, epoch=epoch)


def _wrapper(task: str) -> XGBClassifier | XGBRegressor:
    if task == "classification":
        return XGBClassifier()
    if task == "regression":
        return XGBRegressor()
    raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
