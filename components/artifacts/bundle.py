"""The model bundle: the unit that is registered, versioned and served.

    model.safetensors   weights of a torch model, or
    model.skops         a fitted scikit-learn estimator (`components.artifacts.estimator_io`)
    spec.json           {kind, params} for `components.models.build`
    preprocess.json     the fitted feature state (schema, transforms, class labels)
    metrics.json        validation and test metrics
    lineage.json        Delta table versions read, config hash, code version

Loading builds a torch model from spec.json and reads its weights with safetensors, or
reads an estimator with skops against a type allowlist: nothing is unpickled.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.nn as nn
from safetensors.torch import load_file

from components.artifacts.estimator_io import ESTIMATOR_FILE, load_estimator
from components.data.preparation import FeatureState
from components.models import build, is_estimator
from components.training.checkpoint import MODEL_FILE, read_state
from components.training.losses import predict_output


def save_bundle(
    directory: str | Path,
    *,
    checkpoint_dir: str | Path,
    features: FeatureState,
    metrics: dict[str, float],
    lineage: dict[str, Any],
) -> Path:
    """Assemble a bundle in `directory` from a training checkpoint and the feature state.

    The checkpoint holds either torch weights (model.safetensors) or a fitted estimator
    (model.skops); whichever it holds is copied.
    """
    directory = Path(directory)
    present = [f for f in (MODEL_FILE, ESTIMATOR_FILE) if (Path(checkpoint_dir) / f).is_file()]
    if not present:
        raise FileNotFoundError(
            f"checkpoint_dir {checkpoint_dir} holds no model: expected {MODEL_FILE} or {ESTIMATOR_FILE}"
        )
    if len(present) > 1:
        raise ValueError(f"checkpoint_dir {checkpoint_dir} must hold one model file, got both {present}")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(checkpoint_dir) / present[0], directory / present[0])
    _write_json(directory / "spec.json", read_state(checkpoint_dir)["spec"])
    _write_json(directory / "preprocess.json", features.to_dict())
    _write_json(directory / "metrics.json", metrics)
    _write_json(directory / "lineage.json", lineage)
    return directory


@dataclass
class Bundle:
    """A loaded bundle, ready to answer: raw feature rows in, predictions out."""

    model: nn.Module | Any  # Any: a fitted scikit-learn estimator
    spec: dict[str, Any]
    features: FeatureState
    metrics: dict[str, float]
    lineage: dict[str, Any]

    @property
    def task(self) -> str:
        return self.features.schema.task

    @property
    def is_estimator(self) -> bool:
        """Whether the model is a scikit-learn estimator (else an nn.Module)."""
        return not isinstance(self.model, nn.Module)

    @torch.no_grad()
    def predict(self, rows: pl.DataFrame) -> list[Any]:
        """One answer per row: {"label", "probabilities"} for classifiers, a number otherwise."""
        x = self.features.inputs(rows)  # (N, F)
        if self.is_estimator:
            return self._predict_estimator(x)
        out = predict_output(self.model(torch.from_numpy(x)), self.task, self.features.out_features)
        if self.features.labels is None:
            return [float(v) for v in out["value"].reshape(-1)]
        labels = self.features.labels.decode(out["class"].tolist())
        return self._answers(labels, out["proba"].numpy().astype(np.float64))

    def _predict_estimator(self, x: np.ndarray) -> list[Any]:
        if self.features.labels is None:
            return [float(v) for v in np.asarray(self.model.predict(x)).reshape(-1)]
        # the estimator was fitted on LabelIndex codes, so classes_ are indices into the labels;
        # a class absent from its training rows gets probability 0 so every answer lists all classes
        codes = np.asarray(self.model.classes_, dtype=np.int64)  # (K,), K <= C
        fitted = self.model.predict_proba(x)  # (N, K)
        proba = np.zeros((x.shape[0], len(self.features.labels.classes_)))  # (N, C)
        proba[:, codes] = fitted
        labels = self.features.labels.decode(codes[fitted.argmax(axis=1)].tolist())
        return self._answers(labels, proba)

    def _answers(self, labels: list[Any], proba: np.ndarray) -> list[dict[str, Any]]:
        classes = self.features.labels.classes_
        return [
            {"label": label, "probabilities": {str(c): round(float(p), 6) for c, p in zip(classes, row)}}
            for label, row in zip(labels, proba)
        ]


def load_bundle(directory: str | Path) -> Bundle:
    """Read a bundle written by `save_bundle`: a torch model or a scikit-learn estimator."""
    directory = Path(directory)
    spec = _read_json(directory / "spec.json")
    # spec.json says which model file to expect; without a usable kind, report the torch one
    estimator = isinstance(spec, dict) and isinstance(spec.get("kind"), str) and is_estimator(spec)
    model_file = ESTIMATOR_FILE if estimator else MODEL_FILE
    missing = [f for f in (model_file, "spec.json", "preprocess.json") if not (directory / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory} is not a model bundle: missing {missing}")
    if estimator:
        model = load_estimator(directory / ESTIMATOR_FILE)
    else:
        model = build(spec)
        model.load_state_dict(load_file(str(directory / MODEL_FILE)))
        model.eval()
    return Bundle(
        model=model,
        spec=spec,
        features=FeatureState.from_dict(_read_json(directory / "preprocess.json")),
        metrics=_read_json(directory / "metrics.json"),
        lineage=_read_json(directory / "lineage.json"),
    )


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else {}
