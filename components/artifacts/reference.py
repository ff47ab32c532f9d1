"""The drift reference a bundle carries: a sample of the raw training rows its model was
fitted on, with the model's own answers to them (`reference.parquet`).

`rayline monitor` compares the endpoint's inference log with it: the same features in the
same units (raw, before preprocessing, as requests send them), and the answers this version
gave on training data beside the answers it gives in service. Kept in the bundle, the
reference is there for as long as the version is, whatever happens to the lake.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from components.artifacts.batch_scoring import score_rows
from components.artifacts.bundle import Bundle

REFERENCE_FILE = "reference.parquet"


def reference_frame(bundle: Bundle, train_rows: pl.DataFrame, max_rows: int, seed: int = 0) -> pl.DataFrame:
    """Up to `max_rows` of `train_rows` (sampled with `seed`), the features the model reads
    plus its `prediction` (and `probability` for classifiers)."""
    features = bundle.features.schema.features
    rows = train_rows.sample(max_rows, seed=seed) if train_rows.height > max_rows else train_rows
    scored, _ = score_rows(bundle, rows.select(features), "reference")
    answers = ["prediction", "probability"] if "probability" in scored.columns else ["prediction"]
    return scored.select(*features, *answers)


def write_reference(directory: str | Path, frame: pl.DataFrame) -> Path:
    path = Path(directory) / REFERENCE_FILE
    frame.write_parquet(path)
    return path
