"""Delta Lake storage: idempotent per-file commits, crash recovery, versions."""

from __future__ import annotations

import hashlib

import polars as pl
import pytest
from deltalake import write_deltalake

from components.data.lake import Lake, TableNotFoundError, TableSchemaError


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


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


def _bad(source: str, rows: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "_source_file": [source] * len(rows),
            "_row": rows,
            "_reason": ["column 'x': missing value"] * len(rows),
            "_raw": ["{}"] * len(rows),
        },
        schema={"_source_file": pl.String, "_row": pl.Int64, "_reason": pl.String, "_raw": pl.String},
    )


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def test_commit_writes_bronze_quarantine_and_ledger(lake: Lake) -> None:
    h = _hash("a")
    assert not lake.is_ingested(h)
    assert lake.version("bronze") is None and not lake.exists("bronze")
    result = lake.commit_file("a.csv", h, _good("a.csv", 3), _bad("a.csv", [3]))
    assert (result.good_rows, result.bad_rows, result.bronze_version, result.skipped) == (3, 1, 0, False)
    assert lake.is_ingested(h)

    bronze = lake.read("bronze")
    assert bronze.columns == ["x", "target", "_source_file", "_row", "_content_hash"]
    assert bronze.sort("_row")["x"].to_list() == [0.0, 1.0, 2.0]
    assert set(bronze["_content_hash"]) == {h}
    assert lake.read("quarantine")["_content_hash"].to_list() == [h]
    ledger = lake.read("ingested_files")
    assert ledger.select("source_file", "content_hash", "good_rows", "bad_rows").rows() == [("a.csv", h, 3, 1)]
    assert ledger.schema["ingested_at"] == pl.Datetime("us", "UTC")
    assert lake.uri("bronze").endswith("/lake/bronze")


def test_recommit_of_same_hash_writes_nothing(lake: Lake) -> None:
    h = _hash("a")
    lake.commit_file("a.csv", h, _good("a.csv", 3), _bad("a.csv", [3]))
    before = {t: lake.version(t) for t in ("bronze", "quarantine", "ingested_files")}
    again = lake.commit_file("renamed.csv", h, _good("renamed.csv", 3), _bad("renamed.csv", [3]))
    assert again.skipped and (again.good_rows, again.bad_rows) == (0, 0)
    assert again.bronze_version == before["bronze"] == 0
    assert {t: lake.version(t) for t in before} == before
    assert lake.read("bronze").height == 3 and lake.read("ingested_files").height == 1


def test_second_file_appends_same_schema(lake: Lake) -> None:
    lake.commit_file("a.csv", _hash("a"), _good("a.csv", 3), _bad("a.csv", []))
    result = lake.commit_file("b.csv", _hash("b"), _good("b.csv", 2), _bad("b.csv", [5, 6]))
    assert result.bronze_version == 1
    assert lake.read("bronze").height == 5
    assert lake.read("bronze", version=0).height == 3
    assert lake.read("quarantine")["_row"].sort().to_list() == [5, 6]
    assert lake.version("quarantine") == 0  # first file's empty bad frame wrote nothing
    assert lake.read("ingested_files").height == 2


def test_empty_frames_write_nothing(lake: Lake) -> None:
    result = lake.commit_file("all-bad.csv", _hash("x"), _good("all-bad.csv", 0), _bad("all-bad.csv", [0, 1]))
    assert result.bronze_version is None and not lake.exists("bronze")
    assert lake.read("quarantine").height == 2
    assert lake.is_ingested(_hash("x"))


def test_crashed_attempt_leaves_no_duplicates(lake: Lake) -> None:
    lake.commit_file("a.csv", _hash("a"), _good("a.csv", 2), _bad("a.csv", []))
    h = _hash("b")
    # A crash after the bronze and quarantine appends, before the ledger row was written.
    for table, rows in (("bronze", _good("b.csv", 4)), ("quarantine", _bad("b.csv", [4]))):
        write_deltalake(lake.uri(table), rows.with_columns(_content_hash=pl.lit(h)).to_arrow(), mode="append")
    assert not lake.is_ingested(h)
    assert lake.read("bronze").height == 6

    result = lake.commit_file("b.csv", h, _good("b.csv", 4), _bad("b.csv", [4]))
    assert not result.skipped
    bronze = lake.read("bronze")
    assert bronze.height == 6
    assert bronze.filter(pl.col("_content_hash") == h)["_row"].sort().to_list() == [0, 1, 2, 3]
    assert bronze.filter(pl.col("_content_hash") == _hash("a")).height == 2  # other files untouched
    assert lake.read("quarantine").height == 1
    assert lake.read("ingested_files")["content_hash"].to_list().count(h) == 1


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
    with pytest.raises(ValueError, match=r"content_hash must be a lowercase hex digest, got \"x' or 1=1\""):
        lake.commit_file("a.csv", "x' or 1=1", _good("a.csv", 1), _bad("a.csv", []))


def test_changed_declared_schema_is_a_clear_error(lake: Lake) -> None:
    lake.commit_file("a.csv", _hash("a"), _good("a.csv", 2), _bad("a.csv", []))
    wider = _good("b.csv", 2).with_columns(y=pl.lit(1.0))
    expected = r"table 'bronze' .* has columns \['x', 'target', '_source_file', '_row', '_content_hash'\]"
    with pytest.raises(TableSchemaError, match=expected):
        lake.commit_file("b.csv", _hash("b"), wider, _bad("b.csv", []))
    assert not lake.is_ingested(_hash("b"))
