"""scikit-learn's bundled datasets as Polars frames, and landing them as CSV files.

Bundled data goes through the same landing -> ingest path as user files, so the
quickstart exercises every step a real source does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import polars as pl
from sklearn import datasets

from components.config import BundledDataset
from components.data.sources import part_sizes, write_landing_file

_BUNDLED: tuple[str, ...] = get_args(BundledDataset)


def sanitize_column(name: str) -> str:
    """Delta Lake friendly column name: `"sepal length (cm)"` -> `"sepal_length_cm"`."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def bundled_frame(name: BundledDataset) -> pl.DataFrame:
    """The named scikit-learn dataset with sanitised column names and a `target` column.

    The target is Int64 for the classification sets and Float64 for diabetes.
    """
    if name not in _BUNDLED:
        raise ValueError(f"dataset must be one of {', '.join(_BUNDLED)}, got {name!r}")
    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    df = pl.from_pandas(bunch.frame)
    renamed = {c: sanitize_column(c) for c in df.columns}
    assert len(set(renamed.values())) == len(renamed), f"column names collide after sanitising: {renamed}"
    df = df.rename(renamed)
    # Feature dtypes vary by dataset (digits pixels are float64, iris target int64); pin them
    # so the landing CSV, the schema and the tests agree on one type per column.
    target_type = pl.Float64 if name == "diabetes" else pl.Int64
    return df.select(
        [pl.col(c).cast(pl.Float64) for c in df.columns if c != "target"] + [pl.col("target").cast(target_type)]
    )


def bundled_schema(name: BundledDataset) -> dict[str, str]:
    """Column -> declared type ("float" / "int") of `bundled_frame(name)`, for configs and tests."""
    return {col: "float" if dtype == pl.Float64 else "int" for col, dtype in bundled_frame(name).schema.items()}


def write_landing_files(df: pl.DataFrame, folder: Path, n_files: int, stem: str) -> list[Path]:
    """Split `df` into `n_files` contiguous parts written as `{stem}-part-{i:03d}.csv`.

    The bytes depend only on the rows, so landing the same data again yields the same
    content hash and ingest skips it. A file whose bytes already match is left untouched
    (its mtime too, so watchers see no change).
    """
    if not 1 <= n_files <= max(df.height, 1):
        raise ValueError(f"n_files must be between 1 and the number of rows ({df.height}), got {n_files}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", stem):
        raise ValueError(f"stem must be a plain file name stem (letters, digits, '_', '.', '-'), got {stem!r}")
    paths: list[Path] = []
    offset = 0
    for i, size in enumerate(part_sizes(df.height, n_files)):
        path = Path(folder) / f"{stem}-part-{i:03d}.csv"
        write_landing_file(path, df.slice(offset, size).write_csv().encode())
        offset += size
        paths.append(path)
    return paths
