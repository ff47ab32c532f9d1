"""The model bundle: the unit that is registered, versioned and served.

    model.safetensors   weights
    spec.json           {kind, params} for `components.models.build`
    preprocess.json     the fitted feature state (schema, transforms, class labels)
    metrics.json        validation and test metrics
    lineage.json        Delta table versions read, config hash, code version

Loading builds the model from spec.json and reads weights with safetensors: nothing is
unpickled.
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

from components.data.preparation import FeatureState
from components.models import build
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
    """Assemble a bundle in `directory` from a training checkpoint and the feature state."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(checkpoint_dir) / MODEL_FILE, directory / MODEL_FILE)
    _write_json(directory / "spec.json", read_state(checkpoint_dir)["spec"])
    _write_json(directory / "preprocess.json", features.to_dict())
    _write_json(directory / "metrics.json", metrics)
    _write_json(directory / "lineage.json", lineage)
    return directory


@dataclass
class Bundle:
    """A loaded bundle, ready to answer: raw feature rows in, predictions out."""

    model: nn.Module
    spec: dict[str, Any]
    features: FeatureState
    metrics: dict[str, float]
    lineage: dict[str, Any]

    @property
    def task(self) -> str:
        return self.features.schema.task

    @torch.no_grad()
    def predict(self, rows: pl.DataFrame) -> list[Any]:
        """One answer per row: {"label", "probabilities"} for classifiers, a number otherwise."""
        x = torch.from_numpy(self.features.inputs(rows))  # (N, F)
        out = predict_output(self.model(x), self.task, self.features.out_features)
        if self.features.labels is None:
            return [float(v) for v in out["value"].reshape(-1)]
        classes = self.features.labels.classes_
        labels = self.features.labels.decode(out["class"].tolist())
        proba = out["proba"].numpy().astype(np.float64)  # (N, C)
        return [
            {"label": label, "probabilities": {str(c): round(float(p), 6) for c, p in zip(classes, row)}}
            for label, row in zip(labels, proba)
        ]


def load_bundle(directory: str | Path) -> Bundle:
    directory = Path(directory)
    missing = [f for f in (MODEL_FILE, "spec.json", "preprocess.json") if not (directory / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory} is not a model bundle: missing {missing}")
    spec = _read_json(directory / "spec.json")
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
