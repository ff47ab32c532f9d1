"""Delta Lake storage: versions, appends that carry a stream's batch number, the writer lock."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest
from deltalake import DeltaTable

from components.data.lake import Lake, LakeBusyError, TableNotFoundError, TableSchemaError


def _good(source: str, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "x": [float(i) for i in range(n)],
            "target": [i % 2 for i in range(n)],
            "_source_file": [source] * n,
            "_row": list(range(n)),
        },
        schema={"x": pl.Float64, "target": pl.Int64, "_source_file": pl.String, "_row": pl.Int64},
    )


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def test_overwrite_replaces_contents_and_schema(lake: Lake) -> None:
    assert lake.overwrite("silver_train", pl.DataFrame({"a": [1, 2, 3]})) == 0
    assert lake.overwrite("silver_train", pl.DataFrame({"b": ["x"]})) == 1
    assert lake.read("silver_train").to_dict(as_series=False) == {"b": ["x"]}
    assert lake.read("silver_train", version=0)["a"].to_list() == [1, 2, 3]
    assert lake.version("silver_train") == 1


def test_errors_name_table_and_version(lake: Lake) -> None:
    with pytest.raises(TableNotFoundError, match=r"table 'bronze' does not exist at .*/lake/bronze"):
        lake.read("bronze")
    lake.overwrite("t", pl.DataFrame({"a": [1]}))
    with pytest.raises(ValueError, match=r"version of table 't' must be between 0 and 0, got 3"):
        lake.read("t", version=3)
    with pytest.raises(ValueError, match=r"table must be lowercase letters, digits and '_', got '\.\./x'"):
        lake.uri("../x")


def test_append_once_records_the_batch_and_skips_it_when_repeated(lake: Lake) -> None:
    assert lake.transaction_version("bronze", "s") is None
    assert lake.append_once("bronze", _good("a.csv", 3), "s", 0)
    assert not lake.append_once("bronze", _good("a.csv", 3), "s", 0)  # a retry of batch 0
    assert lake.append_once("bronze", _good("b.csv", 0), "s", 1)  # empty: commits only the batch number
    assert lake.transaction_version("bronze", "s") == 1 and lake.transaction_version("bronze", "other") is None
    assert lake.version("bronze") == 1 and lake.read("bronze").height == 3
    assert lake.append_once("bronze", _good("c.csv", 1), "other", 0)  # streams count separately
    assert lake.read("bronze").height == 4


def test_appended_files_carry_delta_statistics_and_row_counts(lake: Lake) -> None:
    """Appends write their own Parquet file and commit it: the file's stats must be what
    Delta readers skip files by, and history must still count the rows."""
    frame = _good("a.csv", 4).with_columns(pl.Series("x", [2.5, None, float("nan"), -1.0]))
    lake.append_once("bronze", frame, "s", 0)
    lake.append_once("bronze", frame.select(reversed(frame.columns)), "s", 1)  # columns in another order
    stats = pl.DataFrame(DeltaTable(lake.uri("bronze")).get_add_actions(flatten=True)).to_dict(as_series=False)
    assert stats["num_records"] == [4, 4] and stats["null_count.x"] == [1, 1]
    assert stats["min.x"] == [-1.0, -1.0] and stats["max.x"] == [2.5, 2.5] and stats["max.target"] == [1, 1]
    assert lake.history("bronze")["rows_added"].to_list() == [4, 4]
    assert lake.read("bronze").columns == frame.columns
    # The bounds leave NaN out, as delta-rs's own writer does; a reader skips nothing it needs.
    assert pl.scan_delta(lake.uri("bronze")).filter(pl.col("x") < 0).collect()["x"].to_list() == [-1.0, -1.0]


def test_types_delta_stores_differently_still_append_exactly(lake: Lake) -> None:
    """Nanosecond times and unsigned ints go through delta-rs's own writer, which casts them."""
    when = pl.datetime(2026, 1, 2, 3, 4, 5, time_unit="ns", time_zone="UTC")
    frame = pl.DataFrame({"n": pl.Series([1, 2], dtype=pl.UInt32)}).with_columns(t=when)
    lake.append_once("log", frame, "s", 0)
    lake.append_once("log", frame, "s", 1)
    back = lake.read("log")
    assert back["n"].to_list() == [1, 2, 1, 2]
    assert back["t"].dt.replace_time_zone(None).to_list() == [datetime(2026, 1, 2, 3, 4, 5)] * 4


def test_changed_declared_schema_is_a_clear_error(lake: Lake) -> None:
    lake.append_once("bronze", _good("a.csv", 2), "s", 0)
    wider = _good("b.csv", 2).with_columns(y=pl.lit(1.0))
    expected = r"table 'bronze' .* has columns \['x', 'target', '_source_file', '_row'\]"
    with pytest.raises(TableSchemaError, match=expected):
        lake.append_once("bronze", wider, "s", 1)
    assert lake.transaction_version("bronze", "s") == 0
    # Unless the caller asks for the schema to grow (schema_evolution add_new_columns).
    assert lake.append_once("bronze", wider, "s", 1, merge_schema=True)
    assert lake.read("bronze").sort("_source_file")["y"].to_list() == [None, None, 1.0, 1.0]


def test_writer_lock_admits_one_writer(lake: Lake) -> None:
    with lake.writer_lock():
        with pytest.raises(LakeBusyError, match=r"another process is writing to the lake at .*/lake"):
            with lake.writer_lock():
                pass
    with lake.writer_lock():  # released
        pass


def test_history_lists_versions_newest_first_and_vacuum_drops_old_ones(lake: Lake) -> None:
    for version in range(3):
        lake.overwrite("silver_train", pl.DataFrame({"a": list(range(version + 1))}))
    lake.append_once("bronze", _good("a.csv", 2), "s", 0)
    assert lake.tables() == ["bronze", "silver_train"]
    history = lake.history("silver_train")
    assert history["version"].to_list() == [2, 1, 0] and history["rows_added"].to_list() == [3, 2, 1]
    assert history["files_removed"].to_list() == [1, 1, 0]
    assert lake.history("silver_train", limit=1).height == 1

    assert len(lake.vacuum("silver_train", retention_hours=0, dry_run=True)) == 2
    assert lake.read("silver_train", version=0).height == 1  # a dry run deletes nothing
    assert len(lake.vacuum("silver_train", retention_hours=0)) == 2
    assert lake.read("silver_train")["a"].to_list() == [0, 1, 2]
    with pytest.raises(Exception):
        lake.read("silver_train", version=0)  # its file is gone
    with pytest.raises(ValueError, match="retention_hours must be >= 0, got -1"):
        lake.vacuum("silver_train", -1)


def test_training_data_version_must_exist(lake: Lake) -> None:
    from flows.preprocess import read_bronze

    lake.append_once("bronze", _good("a.csv", 2), "s", 0)
    lake.append_once("bronze", _good("b.csv", 3), "s", 1)
    rows, version = read_bronze.fn(lake.root, 0)
    assert (rows.height, version) == (2, 0)
    assert read_bronze.fn(lake.root)[1] == 1
    with pytest.raises(LookupError, match="--data-version must be a bronze version between 0 and 1, got 5"):
        read_bronze.fn(lake.root, 5)
