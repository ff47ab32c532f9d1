"""Bundled scikit-learn datasets and deterministic landing files."""

from __future__ import annotations

import os

import polars as pl
import pytest

from components.data.bundled import bundled_frame, bundled_schema, sanitize_column, write_landing_files
from components.data.sources import file_hash, read_file


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("mean radius", "mean_radius"), ("sepal length (cm)", "sepal_length_cm"), ("__A--b__", "a_b"), ("s1", "s1")],
)
def test_sanitize_column(raw: str, clean: str) -> None:
    assert sanitize_column(raw) == clean


@pytest.mark.parametrize(
    ("name", "shape", "target_dtype", "n_classes"),
    [
        ("iris", (150, 5), pl.Int64, 3),
        ("wine", (178, 14), pl.Int64, 3),
        ("breast_cancer", (569, 31), pl.Int64, 2),
        ("digits", (1797, 65), pl.Int64, 10),
        ("diabetes", (442, 11), pl.Float64, None),
    ],
)
def test_bundled_frame_shapes_and_target(
    name: str, shape: tuple[int, int], target_dtype: pl.DataType, n_classes: int | None
) -> None:
    df = bundled_frame(name)
    assert df.shape == shape
    assert df.columns[-1] == "target"
    assert df.schema["target"] == target_dtype
    if n_classes is not None:
        assert df["target"].n_unique() == n_classes
    assert all(c == sanitize_column(c) for c in df.columns)


def test_bundled_names_and_schema() -> None:
    df = bundled_frame("iris")
    assert df.columns == ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm", "target"]
    assert bundled_schema("iris") == {
        "sepal_length_cm": "float", "sepal_width_cm": "float", "petal_length_cm": "float",
        "petal_width_cm": "float", "target": "int",
    }
    schema = bundled_schema("breast_cancer")
    assert schema["mean_radius"] == "float" and schema["target"] == "int" and len(schema) == 31
    assert bundled_schema("diabetes")["target"] == "float"


def test_bundled_frame_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match=r"dataset must be one of .*got 'mnist'"):
        bundled_frame("mnist")  # type: ignore[arg-type]


def test_landing_files_are_contiguous_and_round_trip(tmp_path) -> None:
    df = bundled_frame("iris")
    paths = write_landing_files(df, tmp_path / "landing", 4, "iris")
    assert [p.name for p in paths] == [f"iris-part-{i:03d}.csv" for i in range(4)]
    parts = [pl.read_csv(p) for p in paths]
    assert [len(p) for p in parts] == [38, 38, 37, 37]
    # Float text round-trips exactly, so landing loses nothing.
    assert pl.concat(parts).equals(df)


def test_landing_files_are_deterministic_and_not_rewritten(tmp_path) -> None:
    df = bundled_frame("wine")
    first = write_landing_files(df, tmp_path, 3, "wine")
    hashes = [file_hash(p) for p in first]
    old = 1_000_000_000
    for p in first:
        os.utime(p, (old, old))
    second = write_landing_files(df, tmp_path, 3, "wine")
    assert [file_hash(p) for p in second] == hashes
    assert all(p.stat().st_mtime == old for p in second)
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in first]  # no temporaries left

    first_row = pl.int_range(pl.len()) == 0
    changed = df.with_columns(alcohol=pl.when(first_row).then(99.0).otherwise(pl.col("alcohol")))
    third = write_landing_files(changed, tmp_path, 3, "wine")
    assert file_hash(third[0]) != hashes[0]
    assert [file_hash(p) for p in third[1:]] == hashes[1:]
    assert third[1].stat().st_mtime == old
    assert read_file(third[0], "csv")["alcohol"][0] == "99.0"


@pytest.mark.parametrize("n_files", [0, 151])
def test_landing_files_rejects_bad_count(tmp_path, n_files: int) -> None:
    with pytest.raises(ValueError, match=rf"n_files must be between 1 and the number of rows \(150\), got {n_files}"):
        write_landing_files(bundled_frame("iris"), tmp_path, n_files, "iris")
