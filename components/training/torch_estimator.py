"""A torch model kind behind scikit-learn's estimator API, trained by the project's loop.

Ensembles fit every member the same way (`fit(X, y)` on arrays, once per fold); this
wrapper lets the spine's torch models be members. Like scikit-learn's MLP with
`early_stopping`, it holds out `validation_fraction` of the rows (seeded, stratified when
possible) as the loop's validation split for early stopping and restoring the best epoch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch.nn as nn
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted, validate_data

from components.config import TrainingConfig
from components.data.modalities import tabular_info
from components.evaluation.scoring import predict_arrays
from components.models.estimators import holdout_stratify
from components.training.array_session import ArraySession
from components.training.loop import loop_config, train_model


class TorchEstimator(BaseEstimator):
    """`model` is a torch kind's spec ({kind, params}); `training` the loop's training config.

    Classification targets must be the label indices 0..C-1 (what the pipeline's silver
    tables hold); `out_features` comes from the spec, or from the data when it has none.
    Learned: `module_` (the trained nn.Module, in eval mode), `history_`, `classes_`.
    """

    def __init__(
        self,
        *,
        model: dict[str, Any],
        task: str,
        training: dict[str, Any] | None = None,
        validation_fraction: float = 0.1,
        random_state: int = 0,
    ) -> None:
        self.model = model
        self.task = task
        self.training = training
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> "TorchEstimator":
        """Train the model with the loop on (X, y), validating on a seeded hold-out."""
        X, y = validate_data(self, X, y, dtype=np.float32)
        classify = self.task == "classification"
        if classify:
            self.classes_ = np.arange(int(y.max()) + 1 if len(y) else 0)
            y = y.astype(np.int64)
        else:
            y = y.astype(np.float32)
        out_features = self.model.get("params", {}).get("out_features") or (
            (1 if len(self.classes_) <= 2 else len(self.classes_)) if classify else 1
        )
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

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        pred, _ = predict_arrays(self.module_, self._inputs(X), self.task, self.spec_["params"]["out_features"])
        return pred

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N, C); classification only."""
        check_is_fitted(self)
        if self.task != "classification":
            raise AttributeError("predict_proba is only available when task is 'classification'")
        _, proba = predict_arrays(self.module_, self._inputs(X), self.task, self.spec_["params"]["out_features"])
        return proba

    def _inputs(self, X: Any) -> np.ndarray:
        return validate_data(self, X, reset=False, dtype=np.float32)
