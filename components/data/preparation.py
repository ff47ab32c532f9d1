"""Bronze rows -> silver splits: assign splits, fit transforms on train only, apply to all.

Silver frames hold the model's inputs as `x000, x001, ...` (float32) plus `label`; the
readable feature names and the fitted state travel in `FeatureState`, which is saved as
the bundle's preprocess.json and reused unchanged at serving time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl

from components.config import PreprocessConfig, SchemaConfig, SplitConfig
from components.data.modalities.info import DataInfo
from components.data.preprocessing import LabelIndex, Preprocessor
from components.data.splits import assign_splits

LABEL = "label"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class FeatureState:
    """Everything needed to turn raw rows into model inputs and outputs into answers."""

    schema: SchemaConfig
    preprocessor: Preprocessor
    labels: LabelIndex | None  # classification only

    modality: ClassVar[str] = "tabular"

    @property
    def task(self) -> str:
        return self.schema.task

    @property
    def in_features(self) -> int:
        return len(self.preprocessor.feature_names_out_)

    @property
    def out_features(self) -> int:
        if self.labels is None:
            return 1
        k = len(self.labels.classes_)
        return 1 if k == 2 else k  # binary: one logit and a sigmoid

    @property
    def info(self) -> DataInfo:
        """What model builders may know of this data (see DataInfo)."""
        classes = tuple(str(c) for c in self.labels.classes_) if self.labels is not None else ()
        return DataInfo(modality="tabular", task=self.schema.task, input_shape=(self.in_features,), classes=classes)

    @property
    def label_dtype(self) -> str:
        """dtype of the silver `label` column: class indices or regression targets."""
        return "int64" if self.labels is not None else "float32"

    @property
    def columns(self) -> list[str]:
        return input_columns(self.in_features)

    def inputs(self, rows: pl.DataFrame) -> np.ndarray:
        """(N, in_features) float32 model inputs for raw feature rows: the serving path."""
        return self.preprocessor.transform(rows)

    def batch_inputs(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """(B, in_features) float32 inputs of a batch of silver rows (Ray Data's numpy batches)."""
        return np.stack([batch[c] for c in self.columns], axis=1).astype(np.float32)

    def answers(self, output: np.ndarray) -> list[Any]:
        """Model outputs back in the data's terms, one answer per row: (N, C) class
        probabilities -> {"label", "probabilities": {class: p}}; (N,) values -> numbers."""
        if self.labels is None:
            return [float(v) for v in np.asarray(output).reshape(-1)]
        return class_answers(self.labels, output)

    def to_dict(self) -> dict[str, Any]:
        return {
            "modality": "tabular",
            "schema": self.schema.model_dump(),
            "preprocessor": self.preprocessor.to_dict(),
            "labels": self.labels.to_dict() if self.labels is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FeatureState":
        return cls(
            schema=SchemaConfig.model_validate(d["schema"]),
            preprocessor=Preprocessor.from_dict(d["preprocessor"]),
            labels=LabelIndex.from_dict(d["labels"]) if d["labels"] is not None else None,
        )


def class_answers(labels: LabelIndex, proba: np.ndarray) -> list[dict[str, Any]]:
    """(N, C) class probabilities -> one {"label", "probabilities": {class: p}} per row."""
    decoded = labels.decode(proba.argmax(axis=1).tolist())
    return [
        {"label": label, "probabilities": {str(c): round(float(p), 6) for c, p in zip(labels.classes_, row)}}
        for label, row in zip(decoded, proba)
    ]


def input_columns(n: int) -> list[str]:
    return [f"x{i:03d}" for i in range(n)]


def prepare(
    bronze: pl.DataFrame, schema: SchemaConfig, split: SplitConfig, preprocessing: PreprocessConfig
) -> tuple[dict[str, pl.DataFrame], FeatureState]:
    """Split `bronze`, fit the transforms on the train rows only, and return the silver
    frame of every split together with the fitted state."""
    if bronze.height == 0:
        raise ValueError("the bronze table has no rows: ingest data before preprocessing")
    rows = bronze.with_columns(assign_splits(bronze, split, schema.target, schema.time))
    parts = {name: rows.filter(pl.col("_split") == name) for name in SPLITS}
    categorical = list(preprocessing.one_hot)
    numeric = [c for c in schema.features if c not in categorical]
    preprocessor = Preprocessor(
        numeric=numeric, categorical=categorical, impute=preprocessing.impute, scale=preprocessing.scale
    ).fit(parts["train"])
    labels = LabelIndex().fit(parts["train"][schema.target].to_list()) if schema.task == "classification" else None
    state = FeatureState(schema=schema, preprocessor=preprocessor, labels=labels)
    return {name: _silver(part, state) for name, part in parts.items()}, state


def _silver(part: pl.DataFrame, state: FeatureState) -> pl.DataFrame:
    x = state.inputs(part) if part.height else np.empty((0, state.in_features), dtype=np.float32)
    target = part[state.schema.target].to_list()
    y = (
        state.labels.encode(target)
        if state.labels is not None
        else np.asarray(target, dtype=np.float32)
    )
    frame = pl.DataFrame({name: x[:, i] for i, name in enumerate(state.columns)})
    return frame.with_columns(pl.Series(LABEL, y))


def raw_split(bronze: pl.DataFrame, schema: SchemaConfig, split: SplitConfig, which: str) -> pl.DataFrame:
    """The raw bronze rows of one split (the same assignment `prepare` made), declared columns only."""
    assigned = assign_splits(bronze, split, schema.target, schema.time)
    return bronze.filter(assigned == which).select(list(schema.columns))
