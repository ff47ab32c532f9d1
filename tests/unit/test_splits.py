"""Seeded holdout and k-fold splits: exact counts, stratification, reproducibility, order independence."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from components.config import SplitConfig
from components.data.splits import assign_splits, holdout, kfold, split_counts

RATIOS = {"train": 0.7, "val": 0.15, "test": 0.15}


def _counts(assigned: np.ndarray) -> dict[str, int]:
    names, counts = np.unique(assigned, return_counts=True)
    return dict(zip(names.tolist(), counts.tolist()))


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (100, {"train": 70, "val": 15, "test": 15}),
        (10, {"train": 7, "val": 2, "test": 1}),  # 1.5 and 1.5: the tie goes to val
        (569, {"train": 398, "val": 86, "test": 85}),  # 398.3, 85.35, 85.35
        (1, {"train": 1, "val": 0, "test": 0}),
    ],
)
def test_split_counts_are_exact(n: int, expected: dict[str, int]) -> None:
    assert split_counts(n, RATIOS) == expected


def test_holdout_counts_match_ratios() -> None:
    assert _counts(holdout(569, RATIOS, seed=0)) == {"train": 398, "val": 86, "test": 85}


def test_holdout_reproducible_and_seed_dependent() -> None:
    a = holdout(200, RATIOS, seed=7)
    assert np.array_equal(a, holdout(200, RATIOS, seed=7))
    b = holdout(200, RATIOS, seed=8)
    assert not np.array_equal(a, b)
    assert _counts(a) == _counts(b)


def test_stratified_holdout_keeps_class_proportions() -> None:
    labels = np.array([0] * 80 + [1] * 20)
    assigned = holdout(100, RATIOS, seed=3, labels=labels)
    for split, per_class in {"train": (56, 14), "val": (12, 3), "test": (12, 3)}.items():
        mask = assigned == split
        assert (int((labels[mask] == 0).sum()), int((labels[mask] == 1).sum())) == per_class


def test_holdout_rejects_bad_ratios() -> None:
    with pytest.raises(ValueError, match=r"ratios must sum to 1.0, got 1.1"):
        holdout(10, {"train": 0.8, "val": 0.15, "test": 0.15}, seed=0)
    with pytest.raises(ValueError, match=r"ratios must give train, val and test, got \['train', 'val'\]"):
        holdout(10, {"train": 0.8, "val": 0.2}, seed=0)


def test_kfold_disjoint_covering_balanced() -> None:
    folds = kfold(103, 5, seed=1)
    assert folds.dtype == np.int64
    assert sorted(set(folds.tolist())) == [0, 1, 2, 3, 4]
    assert np.bincount(folds).tolist() == [21, 21, 21, 20, 20]
    assert np.array_equal(folds, kfold(103, 5, seed=1))
    assert not np.array_equal(folds, kfold(103, 5, seed=2))


def test_stratified_kfold_spreads_each_class() -> None:
    labels = np.array([0] * 50 + [1] * 10)
    folds = kfold(60, 5, seed=0, labels=labels)
    assert np.bincount(folds).tolist() == [12] * 5
    assert np.bincount(folds[labels == 1]).tolist() == [2] * 5
    assert np.bincount(folds[labels == 0]).tolist() == [10] * 5


def test_kfold_rejects_bad_k() -> None:
    with pytest.raises(ValueError, match=r"k must be between 2 and the number of rows \(3\), got 4"):
        kfold(3, 4, seed=0)


def _bronze(n: int) -> pl.DataFrame:
    files = ["a.csv"] * (n // 2) + ["b.csv"] * (n - n // 2)
    rows = list(range(n // 2)) + list(range(n - n // 2))
    return pl.DataFrame(
        {"x": np.arange(n, dtype=float), "target": [i % 3 for i in range(n)], "_source_file": files, "_row": rows}
    )


def test_assign_splits_holdout_is_order_independent() -> None:
    df = _bronze(90)
    split = SplitConfig(method="holdout", ratios=RATIOS, stratify=True, seed=5)
    original = assign_splits(df, split, "target")
    assert original.name == "_split" and original.dtype == pl.String
    shuffled = df.with_columns(original).sample(fraction=1.0, shuffle=True, seed=11)
    again = assign_splits(shuffled.drop("_split"), split, "target")
    assert again.to_list() == shuffled["_split"].to_list()
    assert _counts(original.to_numpy()) == {"train": 63, "val": 15, "test": 12}  # 3 classes x (21, 5, 4)
    per_class = df.with_columns(original).group_by("target", "_split").len().sort("target", "_split")
    assert per_class.filter(pl.col("_split") == "val")["len"].to_list() == [5, 5, 5]


def test_assign_splits_kfold_rotates_validation() -> None:
    df = _bronze(100)
    splits = [assign_splits(df, SplitConfig(method="kfold", folds=4, fold=f, seed=2), "target") for f in range(4)]
    tests = [s == "test" for s in splits]
    assert all(t.sum() == 15 for t in tests) and all((t == tests[0]).all() for t in tests)
    vals = [(s == "val").to_numpy() for s in splits]
    assert [int(v.sum()) for v in vals] == [22, 21, 21, 21]  # 85 non-test rows in 4 folds
    # Every non-test row is validation in exactly one fold.
    assert (np.sum(vals, axis=0) == (~tests[0].to_numpy()).astype(int)).all()


def test_assign_splits_stratify_needs_target() -> None:
    with pytest.raises(ValueError, match=r"split.stratify needs the target column 'label'"):
        assign_splits(_bronze(10), SplitConfig(stratify=True), "label")


def test_a_class_split_holds_whole_labels_out_of_training() -> None:
    df = _bronze(90)  # labels 0, 1, 2, 30 rows each
    split = SplitConfig(method="classes", held_out=[1, 2], ratios={"train": 0.5, "val": 0.3, "test": 0.2}, seed=4)
    assigned = df.with_columns(assign_splits(df, split, "target"))
    per_class = assigned.group_by("target", "_split").len().sort("target", "_split").rows()
    # label 0 trains; 1 and 2 never do, and share their rows val : test = 0.3 : 0.2, per label
    assert per_class == [(0, "train", 30), (1, "test", 12), (1, "val", 18), (2, "test", 12), (2, "val", 18)]
    shuffled = assigned.sample(fraction=1.0, shuffle=True, seed=3)
    assert assign_splits(shuffled.drop("_split"), split, "target").to_list() == shuffled["_split"].to_list()


@pytest.mark.parametrize(("held_out", "says"), [
    ([1, 7], r"split.held_out names labels the data does not have: \['7'\]"),
    ([0, 1, 2], r"leaves no label to train on"),
])
def test_a_class_split_names_bad_labels(held_out, says) -> None:
    with pytest.raises(ValueError, match=says):
        assign_splits(_bronze(30), SplitConfig(method="classes", held_out=held_out), "target")


@pytest.mark.parametrize(("fields", "says"), [
    ({"method": "classes"}, "method classes needs held_out"),
    ({"held_out": [1, 2]}, "held_out is for method classes; method is 'holdout'"),
    ({"method": "classes", "held_out": [1]}, "at least 2 items"),
    ({"method": "classes", "held_out": [1, 2], "ratios": {"train": 0.9, "val": 0.1, "test": 0.0}}, "both must be > 0"),
])
def test_a_class_split_config_is_checked(fields, says) -> None:
    with pytest.raises(ValueError, match=says):
        SplitConfig(**fields)


def test_time_split_trains_on_the_past_and_judges_on_the_future() -> None:
    # Ten rows arriving out of order, ISO times; two share a time (ties broken by row key).
    times = ["2026-01-05", "2026-01-01", "2026-01-09", "2026-01-03", "2026-01-02",
             "2026-01-07", "2026-01-10", "2026-01-04", "2026-01-08", "2026-01-08"]
    df = pl.DataFrame({"ts": times, "y": [0, 1] * 5, "_source_file": ["a.csv"] * 10, "_row": list(range(10))})
    split = SplitConfig(method="time", ratios={"train": 0.6, "val": 0.2, "test": 0.2})
    out = df.with_columns(assign_splits(df, split, "y", "ts")).sort("ts", "_row")
    assert out["_split"].to_list() == ["train"] * 6 + ["val"] * 2 + ["test"] * 2
    latest_train = out.filter(pl.col("_split") == "train")["ts"].max()
    assert latest_train < out.filter(pl.col("_split") != "train")["ts"].min()
    # The order rows arrive in does not matter.
    shuffled = df.sample(fraction=1.0, shuffle=True, seed=3)
    again = shuffled.with_columns(assign_splits(shuffled, split, "y", "ts")).sort("ts", "_row")
    assert again["_split"].to_list() == out["_split"].to_list()

    by_cut = df.with_columns(assign_splits(df, SplitConfig(method="time", cut="2026-01-04"), "y", "ts")).sort("ts", "_row")
    assert by_cut["_split"].to_list()[:3] == ["train"] * 3 and "train" not in by_cut["_split"].to_list()[3:]
    with pytest.raises(ValueError, match="split.cut '2025-01-01' leaves no rows to train on"):
        assign_splits(df, SplitConfig(method="time", cut="2025-01-01"), "y", "ts")
    with pytest.raises(ValueError, match="column 'ts' has 1 missing time"):
        assign_splits(df.with_columns(pl.when(pl.col("_row") == 0).then(None).otherwise(pl.col("ts")).alias("ts")), split, "y", "ts")


def test_time_split_config_needs_a_time_column_that_is_not_a_feature() -> None:
    from components.config import PipelineConfig
    from tests.conftest import iris_config

    config = iris_config(split={"method": "time"})
    config["schema"]["columns"]["day"] = "int"
    with pytest.raises(ValueError, match="split.method time needs schema.time"):
        PipelineConfig.model_validate(config)
    config["schema"]["time"] = "day"
    parsed = PipelineConfig.model_validate(config)
    assert "day" not in parsed.schema_.features and "day" in parsed.schema_.columns
    with pytest.raises(ValueError, match="method time keeps rows in time order: it cannot stratify"):
        PipelineConfig.model_validate({**config, "split": {"method": "time", "stratify": True}})
