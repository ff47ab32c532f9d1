"""The silver snapshot: which Delta versions a training run reads, and the fitted state.

`write_silver` overwrites one table per split and then records the snapshot (split table
versions, bronze version, fitted feature state) as a new version of the `preprocess_state`
table, so training always reads a consistent set and lineage can name exact versions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from deltalake import DeltaTable

from components.data.fitted_state import FittedState, batch_decoder, label_decoder, state_from_dict
from components.data.lake import Lake
from components.data.preparation import LABEL

STATE_TABLE = "preprocess_state"
Batch = dict[str, np.ndarray]
Decoder = Callable[[Batch], np.ndarray]  # a fitted state's batch_inputs: silver columns -> model inputs


@dataclass(frozen=True)
class SilverSnapshot:
    tables: dict[str, tuple[str, int]]  # split -> (uri, version)
    bronze_version: int
    state_version: int
    features: FittedState  # FeatureState for tables, ImageState for images

    @property
    def lineage(self) -> dict[str, Any]:
        return {
            "bronze_version": self.bronze_version,
            "preprocess_state_version": self.state_version,
            "silver": {split: {"uri": uri, "version": v} for split, (uri, v) in self.tables.items()},
        }


def write_silver(lake: Lake, frames: dict[str, pl.DataFrame], features: FittedState, bronze_version: int) -> SilverSnapshot:
    tables = {split: (lake.uri(f"silver_{split}"), lake.overwrite(f"silver_{split}", df)) for split, df in frames.items()}
    record = pl.DataFrame(
        {
            "bronze_version": [bronze_version],
            "tables": [json.dumps(tables)],
            "features": [json.dumps(features.to_dict())],
        }
    )
    state_version = lake.overwrite(STATE_TABLE, record)
    return SilverSnapshot(tables, bronze_version, state_version, features)


def read_silver(lake: Lake) -> SilverSnapshot:
    """The latest snapshot; a clear error when preprocessing has not run yet."""
    if not lake.exists(STATE_TABLE):
        raise LookupError(f"no preprocessed data at {lake.uri(STATE_TABLE)}: run the preprocess stage first")
    row = lake.read(STATE_TABLE).row(0, named=True)
    tables = {split: (uri, int(v)) for split, (uri, v) in json.loads(row["tables"]).items()}
    features = state_from_dict(json.loads(row["features"]))
    return SilverSnapshot(tables, int(row["bronze_version"]), lake.version(STATE_TABLE) or 0, features)


def read_arrays(
    uri: str, version: int, columns: list[str], label_dtype: str, inputs: Decoder | None = None,
    labels_of: Decoder | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels (N,)) of one silver table at a pinned version, for models that train
    on in-memory arrays (scikit-learn estimators) and for scoring. Inputs are the columns as
    (N, F) float32, or what `inputs` (a fitted state's `batch_inputs`) makes of them; labels
    the label column, or what `labels_of` (its `batch_labels`: tags per token) makes of it."""
    table = DeltaTable(uri, version=version).to_pyarrow_table(columns=[*columns, LABEL])
    if labels_of is not None:
        labels = labels_of({LABEL: table.column(LABEL).to_numpy(zero_copy_only=False)})
    else:
        labels = table.column(LABEL).to_numpy().astype(label_dtype)
    if inputs is not None:
        return inputs({c: table.column(c).to_numpy(zero_copy_only=False) for c in columns}), labels
    return pl.from_arrow(table.select(columns)).to_numpy().astype(np.float32), labels


def split_arrays(snapshot: SilverSnapshot, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) of one split of `snapshot`, decoded as its modality needs."""
    state = snapshot.features
    return read_arrays(*snapshot.tables[split], state.columns, state.label_dtype, batch_decoder(state),
                       label_decoder(state))
