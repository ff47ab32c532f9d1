"""Seeded train/val/test assignment: holdout by ratios and k-fold, optionally stratified.

Counts are exact and reproducible: a split is a pure function of (n, ratios, seed,
labels), and `assign_splits` makes it independent of the order rows arrive in.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from components.config import SplitConfig

SPLITS = ("train", "val", "test")
# Columns that identify a bronze row independent of the order a Delta scan returns them.
_ROW_KEY = ("_source_file", "_row", "_content_hash")


def split_counts(n: int, ratios: dict[str, float]) -> dict[str, int]:
    """Rows per split for `n` rows: largest-remainder rounding of `n * ratio`.

    Each split gets floor(n * ratio); the rows left over go one each to the splits with
    the largest fractional parts (ties: train, then val, then test), so counts sum to n.
    """
    exact = {s: n * ratios[s] for s in SPLITS}
    counts = {s: int(np.floor(exact[s] + 1e-9)) for s in SPLITS}
    leftover = n - sum(counts.values())
    by_remainder = sorted(SPLITS, key=lambda s: (-(exact[s] - counts[s]), SPLITS.index(s)))
    for s in by_remainder[:leftover]:
        counts[s] += 1
    return counts


def holdout(n: int, ratios: dict[str, float], seed: int, labels: np.ndarray | None = None) -> np.ndarray:
    """A "train"/"val"/"test" label per row, in the proportions of `ratios`.

    With `labels`, each class is split by the ratios on its own (stratified), so every
    split keeps the class proportions up to rounding within each class.
    """
    _check_ratios(ratios)
    rng = np.random.default_rng(seed)
    out = np.empty(n, dtype="<U5")
    for members in _groups(n, labels):
        counts = split_counts(len(members), ratios)
        shuffled = rng.permutation(members)
        bounds = np.cumsum([counts[s] for s in SPLITS])[:-1]
        for name, part in zip(SPLITS, np.split(shuffled, bounds)):
            out[part] = name
    return out


def kfold(n: int, k: int, seed: int, labels: np.ndarray | None = None) -> np.ndarray:
    """Fold ids 0..k-1 per row; fold sizes differ by at most one.

    With `labels`, rows are shuffled within each class and the classes laid end to end
    before dealing folds round-robin, so each class is also spread evenly over the folds.
    """
    if not 2 <= k <= n:
        raise ValueError(f"k must be between 2 and the number of rows ({n}), got {k}")
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(members) for members in _groups(n, labels)])
    folds = np.empty(n, dtype=np.int64)
    folds[order] = np.arange(n) % k
    return folds


def assign_splits(df: pl.DataFrame, split: SplitConfig, target: str, time_column: str | None = None) -> pl.Series:
    """The split ("train"/"val"/"test") of every row of `df`, as a Series named `_split`.

    Rows are put in a canonical order first (by `_source_file`, `_row` and `_content_hash`
    where present), so the same rows get the same splits whatever order they arrive in.
    holdout splits by `split.ratios`; kfold holds out `ratios["test"]` as test and makes
    fold `split.fold` of the remaining rows "val"; classes trains on every label but
    `split.held_out` and shares the held-out rows between val and test; time trains on
    the earliest rows (see `by_time`).
    """
    n = df.height
    key = [c for c in _ROW_KEY if c in df.columns]
    order = df.select(pl.arg_sort_by(key, maintain_order=True)).to_series().to_numpy() if key else np.arange(n)
    labels = None
    if split.stratify:
        if target not in df.columns:
            raise ValueError(f"split.stratify needs the target column {target!r}, the frame has {df.columns}")
        labels = df[target].to_numpy()[order]

    if split.method == "time":
        return by_time(df, split, time_column)
    if split.method == "classes":
        in_order = by_class(df, split, target, order)
    elif split.method == "holdout":
        in_order = holdout(n, split.ratios, split.seed, labels)
    else:
        test_share = split.ratios["test"]
        outer = holdout(n, {"train": 1.0 - test_share, "val": 0.0, "test": test_share}, split.seed, labels)
        rest = np.flatnonzero(outer != "test")
        if len(rest) < split.folds:
            raise ValueError(
                f"split.folds must be at most the {len(rest)} rows left after the test split, got {split.folds}"
            )
        folds = kfold(len(rest), split.folds, split.seed, None if labels is None else labels[rest])
        in_order = outer
        in_order[rest] = np.where(folds == split.fold, "val", "train")

    result = np.empty(n, dtype="<U5")
    result[order] = in_order
    return pl.Series("_split", result, dtype=pl.String)


def by_time(df: pl.DataFrame, split: SplitConfig, time_column: str | None) -> pl.Series:
    """Train on the past, judge on the future: rows ordered by `time_column` (ties by row
    key), the earliest `ratios.train` of them (or those before `split.cut`) train, the rest
    are val then test as ratios.val : ratios.test, in time order. Missing times are refused."""
    if time_column is None or time_column not in df.columns:
        raise ValueError(f"split.method time needs the time column {time_column!r}, the frame has {df.columns}")
    times = df[time_column]
    if times.null_count():
        raise ValueError(f"split.method time: column {time_column!r} has {times.null_count()} missing time(s)")
    key = [time_column, *(c for c in _ROW_KEY if c in df.columns)]
    order = df.select(pl.arg_sort_by(key, maintain_order=True)).to_series().to_numpy()
    n = df.height
    if split.cut is None:
        n_train = split_counts(n, split.ratios)["train"]
    else:
        cut = pl.Series([split.cut]).cast(times.dtype, strict=False)[0]
        if cut is None:
            raise ValueError(f"split.cut {split.cut!r} is not a value of time column {time_column!r} ({times.dtype})")
        n_train = int((times < cut).sum())
        if n_train in (0, n):
            raise ValueError(f"split.cut {split.cut!r} leaves {'no rows to train on' if n_train == 0 else 'nothing after it'}")
    val, test = split.ratios["val"], split.ratios["test"]
    later = n - n_train
    n_val = later if test == 0 else round(later * val / (val + test))
    in_order = np.array(["train"] * n_train + ["val"] * n_val + ["test"] * (later - n_val), dtype="<U5")
    result = np.empty(n, dtype="<U5")
    result[order] = in_order
    return pl.Series("_split", result, dtype=pl.String)


def by_class(df: pl.DataFrame, split: SplitConfig, target: str, order: np.ndarray) -> np.ndarray:
    """A split per row (in `order`): rows whose label is in `split.held_out` go to val and
    test as ratios.val : ratios.test, stratified by label and seeded; every other row trains.

    Labels compare as text, so `[7, 8]` in YAML names the image labels "7" and "8". Every
    held-out label must occur, and at least one label must be left to train on.
    """
    if target not in df.columns:
        raise ValueError(f"split.method classes needs the label column {target!r}, the frame has {df.columns}")
    labels = df[target].cast(pl.String).to_numpy()[order]
    present = set(labels.tolist())
    wanted = sorted({str(c) for c in split.held_out})
    missing = sorted(set(wanted) - present)
    if missing:
        raise ValueError(f"split.held_out names labels the data does not have: {missing}; labels present: {sorted(present)}")
    if present <= set(wanted):
        raise ValueError(f"split.held_out leaves no label to train on: the data has only {sorted(present)}")
    out = np.full(len(labels), "train", dtype="<U5")
    held = np.flatnonzero(np.isin(labels, wanted))
    val, test = split.ratios["val"], split.ratios["test"]
    out[held] = holdout(len(held), {"train": 0.0, "val": val / (val + test), "test": test / (val + test)},
                        split.seed, labels[held])
    return out


def _groups(n: int, labels: np.ndarray | None) -> list[np.ndarray]:
    """Row indices per class (sorted class order), or all rows as one group."""
    if labels is None:
        return [np.arange(n)]
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels must have one entry per row ({n}), got shape {labels.shape}")
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        raise ValueError("labels must not contain missing values (NaN)")
    _, inverse = np.unique(labels, return_inverse=True)
    return [np.flatnonzero(inverse == c) for c in range(inverse.max() + 1)] if n else [np.arange(0)]


def _check_ratios(ratios: dict[str, float]) -> None:
    if set(ratios) != set(SPLITS):
        raise ValueError(f"ratios must give train, val and test, got {sorted(ratios)}")
    if any(r < 0 for r in ratios.values()):
        raise ValueError(f"ratios must be >= 0, got {ratios}")
    total = sum(ratios.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"ratios must sum to 1.0, got {round(total, 6)}")
