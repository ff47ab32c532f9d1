"""Batch scoring: a registered model applied to a table of raw rows, each answered as its
endpoint would answer it, without HTTP. `BatchScorer` is the callable class Ray Data runs
in an actor pool (`map_batches`): each actor loads the bundle once."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from components.artifacts.bundle import Bundle, load_bundle
from components.artifacts.registry import download_bundle
from components.data.fitted_state import FittedState
from components.data.schema import SchemaError, check_features
from components.models.outputs import predict_arrays

REASON = "_reason"  # set on rejected rows only; splits a scored batch into (scored, rejected)
RAW = "_raw"


def score_rows(bundle: Bundle, rows: pl.DataFrame, source: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(scored, rejected) for raw rows with at least the model's feature columns.

    scored: every input column unchanged (ids, the target: whatever the rows carry), then
    `prediction` (the label, or the value for regression) and for classifiers `probability`
    (of that label) and `proba_<class>` per class. rejected: rows whose features fail the
    model's schema, as `_source_file`, `_row`, `_reason` and `_raw` (the row as JSON).
    """
    features = bundle.features
    check_scorable(features, rows.columns, source)
    good, rejected = check_features(rows, features.schema, source)
    # The features as the model read them (typed), the other columns as they came.
    index = pl.int_range(pl.len(), dtype=pl.Int64)  # check_features' `_row`; the rows may have their own
    others = rows.filter(index.is_in(good["_row"].implode())).drop(features.schema.features)
    kept = good.select(features.schema.features).hstack(others)
    if good.height == 0:
        return kept.with_columns(_prediction_columns(bundle, np.zeros(0), None)), rejected
    pred, proba = predict_arrays(bundle.model, features.inputs(good), bundle.task, features.out_features)
    return kept.with_columns(_prediction_columns(bundle, pred, proba)), rejected


def check_scorable(state: FittedState, columns: Sequence[str], source: str) -> None:
    """Raise before any work when rows with `columns` cannot be scored by a model of `state`."""
    if state.modality != "tabular":
        raise ValueError(f"batch scoring takes table models; this one reads {state.modality}s")
    missing = [c for c in state.schema.features if c not in columns]
    if missing:
        raise SchemaError(f"{source}: missing feature column(s) {missing} of the model; the rows have {list(columns)}")


def _prediction_columns(bundle: Bundle, pred: np.ndarray, proba: np.ndarray | None) -> list[pl.Series]:
    labels = bundle.features.labels
    if labels is None:
        return [pl.Series("prediction", pred, dtype=pl.Float64)]
    classes = labels.classes_
    proba = np.zeros((len(pred), len(classes))) if proba is None else proba  # (N, C)
    return [
        pl.Series("prediction", labels.decode(proba.argmax(axis=1).tolist()) if len(pred) else [],
                  dtype=pl.Series(classes).dtype),
        pl.Series("probability", proba.max(axis=1) if len(pred) else [], dtype=pl.Float64),
        *[pl.Series(f"proba_{c}", proba[:, i], dtype=pl.Float64) for i, c in enumerate(classes)],
    ]


class BatchScorer:
    """Scores Arrow batches for Ray Data's `map_batches`; each actor fetches and loads the
    bundle once. Every scored row gets `lineage` as constant columns (model name, version,
    input and its version).

    Each output batch holds the scored rows and the rejected ones together (Ray Data gives
    one output per input); rejected rows carry `_reason` and `_raw`, scored ones nulls there.
    """

    def __init__(self, tracking_uri: str, name: str, version: str, source: str, lineage: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory(prefix=f"rayline-score-{name}-") as tmp:
            path, _ = download_bundle(tracking_uri, name, dst=tmp, version=version)
            self.bundle = load_bundle(path)  # reads everything into memory
        self.source = source
        self.lineage = [pl.lit(v).alias(k) for k, v in lineage.items()]

    def __call__(self, batch: pa.Table) -> pa.Table:
        scored, rejected = score_rows(self.bundle, pl.from_arrow(batch), self.source)
        no_reason = [pl.lit(None, dtype=pl.String).alias(REASON), pl.lit(None, dtype=pl.String).alias(RAW)]
        scored = scored.with_columns(*self.lineage, *no_reason)
        return pl.concat([scored, rejected.select(REASON, RAW)], how="diagonal_relaxed").to_arrow()


def split_scored(batch: pa.Table) -> tuple[pa.Table, pa.Table]:
    """A `BatchScorer` output batch -> (scored rows without the rejection columns, rejected rows' reason and raw row)."""
    frame: Any = pl.from_arrow(batch)
    is_rejected = pl.col(REASON).is_not_null()
    scored = frame.filter(~is_rejected).drop(REASON, RAW)
    rejected = frame.filter(is_rejected).select(REASON, RAW)
    return scored.to_arrow(), rejected.to_arrow()
