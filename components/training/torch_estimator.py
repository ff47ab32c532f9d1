"""A torch model kind behind scikit-learn's estimator API, trained by the project's loop.

Ensembles fit every member the same way (`fit(X, y)` on arrays, once per fold); this
wrapper lets the spine's torch models be members. Like scikit-learn's MLP with
`early_stopping`, it holds out `validation_fraction` of the rows (seeded, stratified when
possible) as the loop's validation split for early stopping and restoring the best epoch.

Importing this module gives ensembles their torch member fitter (`fit_torch_member`):
models sit below training and cannot import the loop themselves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch.nn as nn
from sklearn.base import BaseEstimator
from sklearn.utils import Tags
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from components.config import TrainingConfig
from components.data.modalities import tabular_info
from components.models.ensemble import encode_labels, set_torch_member_fitter, task_tags
from components.models.estimators import holdout_stratify
from components.models.outputs import predict_arrays
from components.training.array_session import ArraySession
from components.training.loop import loop_config, train_model


class TorchEstimator(BaseEstimator):
    """`model` is a torch kind's spec ({kind, params}); `training` the loop's training config.

    Like a scikit-learn classifier it learns its classes at `fit`: labels of any kind, the
    sorted distinct labels of y unless `classes` lists them (and so the module's outputs)
    beforehand, as an ensemble does for a member fitted on rows that may lack a class. The
    module trains on the class indices; `predict` answers with the labels. Its sizes
    (`in_features`, `out_features`) come from the data, as `build(spec, info)` sets them.
    Learned: `module_` (the trained nn.Module, in eval mode, one output per class or one
    for two), `spec_` (the spec it was built with), `history_`, `classes_`.
    """

    def __init__(
        self,
        *,
        model: dict[str, Any],
        task: str = "classification",
        classes: list[Any] | None = None,
        training: dict[str, Any] | None = None,
        validation_fraction: float = 0.1,
        random_state: int = 0,
    ) -> None:
        self.model = model
        self.task = task
        self.classes = classes
        self.training = training
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> "TorchEstimator":
        """Train the model with the loop on (X, y), validating on a seeded hold-out."""
        X, y = validate_data(self, X, y, dtype=np.float32)
        classify = self.task == "classification"
        if classify:
            check_classification_targets(y)
            classes = np.unique(y) if self.classes is None else np.asarray(self.classes)
            if len(classes) < 2:
                raise ValueError(f"classification needs at least 2 classes, got {classes.tolist()}")
            y = encode_labels(classes, y)
            self.classes_ = classes
        else:
            y = y.astype(np.float32)
        # the data's sizes, as a pipeline's DataInfo gives them: one output, or one per class beyond two
        out_features = (1 if len(self.classes_) <= 2 else len(self.classes_)) if classify else 1
        fit_idx, val_idx = train_test_split(
            np.arange(len(y)), test_size=self.validation_fraction, random_state=self.random_state,
            stratify=holdout_stratify(y, self.validation_fraction) if classify else None,
        )
        training = TrainingConfig.model_validate(self.training or {}).model_dump()
        config = loop_config(
            self.model, training, tabular_info(self.task, X.shape[1], int(out_features))
        )
        session = ArraySession({"train": (X[fit_idx], y[fit_idx]), "val": (X[val_idx], y[val_idx])})
        train_model(config, session)
        assert session.model is not None, "the loop always prepares its model"
        self.module_: nn.Module = session.model.eval()
        self.spec_ = config["model"]
        self.history_ = session.history
        return self

    def __sklearn_tags__(self) -> Tags:
        return task_tags(super().__sklearn_tags__(), self.task)

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (of the kind `fit` was given) or values."""
        check_is_fitted(self)
        pred, _ = predict_arrays(self.module_, self._inputs(X), self.task, self.spec_["params"]["out_features"])
        return self.classes_[pred] if self.task == "classification" else pred

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N, C), columns in the order of `classes_`; classification only."""
        check_is_fitted(self)
        if self.task != "classification":
            raise AttributeError("predict_proba is only available when task is 'classification'")
        _, proba = predict_arrays(self.module_, self._inputs(X), self.task, self.spec_["params"]["out_features"])
        return proba

    def _inputs(self, X: Any) -> np.ndarray:
        return validate_data(self, X, reset=False, dtype=np.float32)


def fit_torch_member(
    spec: dict[str, Any], task: str, X: np.ndarray, y: np.ndarray, *,
    training: dict[str, Any] | None, classes: list[int] | None, random_state: int,
) -> nn.Module:
    """An ensemble's torch member: the nn.Module the loop trained on (X, y), one output per
    index in `classes` (or one for two), as `Ensemble` stores and combines it."""
    member = TorchEstimator(model=spec, task=task, training=training, classes=classes, random_state=random_state)
    return member.fit(X, y).module_


set_torch_member_fitter(fit_torch_member)
