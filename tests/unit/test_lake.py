"""Delta Lake storage: versions, appends that carry a stream's batch number, the writer lock."""

from __future__ import annotations

import polars as pl
import pytest

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
