"""Schema check of landing rows (quarantine with reasons) and of online request records."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from components.config import SchemaConfig
from components.data.schema import InvalidInput, SchemaChangeError, SchemaError, check_rows, frame_from_records


@pytest.fixture
def schema() -> SchemaConfig:
    return SchemaConfig(
        columns={
            "x": "float",
            "n": "int",
            "flag": "bool",
            "name": {"type": "str", "nullable": False},
            "target": "int",
        },
        target="target",
        task="classification",
    )


def _text(rows: list[dict[str, str | None]]) -> pl.DataFrame:
    """Rows as a CSV read gives them: every column text."""
    return pl.DataFrame(rows, schema={k: pl.String for k in rows[0]})


def _reasons(bad: pl.DataFrame) -> dict[int, str]:
    return dict(zip(bad["_row"].to_list(), bad["_reason"].to_list()))


def test_good_rows_are_typed_in_declared_order_and_extras_dropped(schema: SchemaConfig) -> None:
    df = _text([
        {"extra": "zzz", "target": "1", "name": "a", "flag": "TRUE", "n": "2.0", "x": " 1.5 "},
        {"extra": "yyy", "target": "0", "name": "b", "flag": "0", "n": "-7", "x": "1e3"},
    ])
    good, bad = check_rows(df, schema, "part-000.csv", new_columns="ignore")
    assert bad.height == 0
    assert good.columns == ["x", "n", "flag", "name", "target", "_source_file", "_row"]
    assert good.schema == pl.Schema({
        "x": pl.Float64, "n": pl.Int64, "flag": pl.Boolean, "name": pl.String, "target": pl.Int64,
        "_source_file": pl.String, "_row": pl.Int64,
    })
    assert good.rows() == [(1.5, 2, True, "a", 1, "part-000.csv", 0), (1000.0, -7, False, "b", 0, "part-000.csv", 1)]


def test_undeclared_columns_follow_the_schema_evolution_mode(schema: SchemaConfig) -> None:
    df = _text([
        {"x": "1.5", "n": "2", "flag": "true", "name": "a", "target": "1", "color": "red", "size": None},
        {"x": "oops", "n": "3", "flag": "true", "name": "b", "target": "0", "color": "blue", "size": "9"},
    ])
    with pytest.raises(SchemaChangeError, match=r"f.csv: undeclared column\(s\) \['color', 'size'\]; declare them"):
        check_rows(df, schema, "f.csv")  # fail is the default

    good, bad = check_rows(df, schema, "f.csv", new_columns="add_new_columns")
    assert good.columns == ["x", "n", "flag", "name", "target", "color", "size", "_source_file", "_row"]
    assert good.select("color", "size").rows() == [("red", None)]

    good, bad = check_rows(df, schema, "f.csv", new_columns="rescue")
    assert good.columns == ["x", "n", "flag", "name", "target", "_rescued", "_source_file", "_row"]
    assert json.loads(good["_rescued"][0]) == {"color": "red", "size": None}
    # A quarantined row keeps every column it arrived with, in any mode.
    assert json.loads(bad["_raw"][0])["color"] == "blue" and bad["_row"].to_list() == [1]

    with pytest.raises(SchemaError, match=r"new column\(s\) \['_secret'\] start with '_'"):
        check_rows(df.rename({"color": "_secret"}), schema, "f.csv", new_columns="add_new_columns")
    # A file with only the declared columns has a null _rescued.
    good, _ = check_rows(df.drop("color", "size"), schema, "f.csv", new_columns="rescue")
    assert good["_rescued"].to_list() == [None]


def test_bad_values_are_quarantined_with_reasons(schema: SchemaConfig) -> None:
    df = _text([
        {"x": "1.0", "n": "1", "flag": "true", "name": "ok", "target": "0"},
        {"x": "abc", "n": "1", "flag": "true", "name": "a", "target": "0"},
        {"x": "1.0", "n": "1.5", "flag": "true", "name": "a", "target": "0"},
        {"x": "1.0", "n": "1", "flag": "yes", "name": "a", "target": None},
        {"x": "inf", "n": "1", "flag": "true", "name": "", "target": "NaN"},
        {"x": "1.0", "n": "1e30", "flag": "true", "name": "a", "target": "1.25"},
    ])
    good, bad = check_rows(df, schema, "f.csv")
    assert good["_row"].to_list() == [0]
    assert bad.columns == ["_source_file", "_row", "_reason", "_raw"]
    assert bad["_source_file"].to_list() == ["f.csv"] * 5
    assert _reasons(bad) == {
        1: "column 'x': cannot parse 'abc' as float",
        2: "column 'n': cannot parse '1.5' as int (has a fractional part)",
        3: "column 'flag': cannot parse 'yes' as bool; column 'target': missing value",
        4: "column 'x': cannot parse 'inf' as float (not a finite number); "
           "column 'name': missing value; column 'target': missing value",
        5: "column 'n': cannot parse '1e30' as int (out of range); "
           "column 'target': cannot parse '1.25' as int (has a fractional part)",
    }
    # The original row survives, undeclared columns included, as a JSON object.
    assert json.loads(bad.filter(pl.col("_row") == 1)["_raw"][0]) == {
        "x": "abc", "n": "1", "flag": "true", "name": "a", "target": "0",
    }


def test_missing_features_are_null_unless_declared_non_nullable(schema: SchemaConfig) -> None:
    df = _text([
        {"x": "", "n": None, "flag": None, "name": "a", "target": "1"},
        {"x": "NaN", "n": "nan", "flag": "", "name": "b", "target": "0"},
        {"x": "nan", "n": "3", "flag": "false", "name": None, "target": "0"},
    ])
    good, bad = check_rows(df, schema, "f.csv")
    assert good.select("x", "n", "flag", "name").rows() == [(None, None, None, "a"), (None, None, None, "b")]
    assert _reasons(bad) == {2: "column 'name': missing value"}


def test_typed_sources_are_checked_too(schema: SchemaConfig) -> None:
    df = pl.DataFrame({
        "x": [1, 2, 3, 4],  # ints are fine for a float column
        "n": [1.0, 2.5, None, 4.0],
        "flag": [1, 0, 2, 1],
        "name": ["a", "b", "c", "d"],
        "target": [0.0, 1.0, 1.0, float("nan")],
        "_row": ["an undeclared column that clashes with ours"] * 4,
    })
    good, bad = check_rows(df, schema, "f.parquet", new_columns="ignore")
    assert good.select("x", "n", "flag", "target", "_row").rows() == [(1.0, 1, True, 0, 0)]
    assert _reasons(bad) == {
        1: "column 'n': cannot parse '2.5' as int (has a fractional part)",
        2: "column 'flag': cannot parse '2' as bool",
        3: "column 'target': missing value",
    }
    raw = json.loads(bad.filter(pl.col("_row") == 3)["_raw"][0])
    assert raw["target"] == "nan" and raw["n"] == 4.0


def test_boolean_in_numeric_column_is_bad(schema: SchemaConfig) -> None:
    df = pl.DataFrame({"x": [True], "n": [1], "flag": [True], "name": ["a"], "target": [1]})
    good, bad = check_rows(df, schema, "f.ndjson")
    assert good.height == 0
    assert _reasons(bad) == {0: "column 'x': cannot parse 'true' as float"}


def test_missing_declared_column_is_a_schema_error(schema: SchemaConfig) -> None:
    df = _text([{"x": "1", "flag": "true", "target": "1"}])
    with pytest.raises(SchemaError, match=r"f\.csv: missing declared column\(s\) \['n', 'name'\]"):
        check_rows(df, schema, "f.csv")


def test_nested_column_is_a_schema_error(schema: SchemaConfig) -> None:
    df = pl.DataFrame({"x": [[1.0]], "n": [1], "flag": [True], "name": ["a"], "target": [1]})
    with pytest.raises(SchemaError, match=r"column 'x' must hold float values, got column type List"):
        check_rows(df, schema, "f.ndjson")


def test_empty_file_gives_empty_typed_frames(schema: SchemaConfig) -> None:
    df = pl.DataFrame(schema={c: pl.String for c in ["x", "n", "flag", "name", "target"]})
    good, bad = check_rows(df, schema, "f.csv")
    assert good.height == 0 and bad.height == 0
    assert good.schema["n"] == pl.Int64 and bad.schema["_row"] == pl.Int64


# ---------------------------------------------------------------------------- online records


@pytest.fixture
def features() -> SchemaConfig:
    return SchemaConfig(
        columns={"target": "int", "a": "float", "b": {"type": "float", "nullable": False}, "k": "int", "c": "str"},
        target="target",
        task="classification",
    )


def _ok(**over: object) -> dict[str, object]:
    return {"a": 1.0, "b": 2.0, "k": 3, "c": "x", **over}


def test_records_become_a_typed_frame(features: SchemaConfig) -> None:
    df = frame_from_records([_ok(), _ok(a=None, b=5, k=4.0, c="y")], features, max_rows=10)
    assert df.columns == ["a", "b", "k", "c"]
    assert df.schema == pl.Schema({"a": pl.Float64, "b": pl.Float64, "k": pl.Int64, "c": pl.String})
    assert df.rows() == [(1.0, 2.0, 3, "x"), (None, 5.0, 4, "y")]


@pytest.mark.parametrize(
    ("records", "field", "message"),
    [
        ([], "instances", "must not be empty"),
        ([_ok()] * 4, "instances", "at most 3 instances per request, got 4"),
        ([_ok(), [1, 2]], "instances[1]", "must be an object, got array"),
        ([_ok(), _ok(), _ok(), ], None, None),
        ([{"a": 1.0, "k": 3, "c": "x"}], "instances[0].b", "missing"),
        ([_ok(zzz=1)], "instances[0].zzz", "unknown column"),
        ([_ok(target=1)], "instances[0].target", "unknown column (the target is not an input)"),
        ([_ok(), _ok(a="1.5")], "instances[1].a", 'expected float, got string "1.5"'),
        ([_ok(a=True)], "instances[0].a", "expected float, got boolean true"),
        ([_ok(a=math.nan)], "instances[0].a", "must be a finite number, got nan"),
        ([_ok(a=math.inf)], "instances[0].a", "must be a finite number, got inf"),
        ([_ok(b=None)], "instances[0].b", "must not be null (expected float)"),
        ([_ok(k=2.5)], "instances[0].k", "expected int, got a number with a fractional part 2.5"),
        ([_ok(c=3)], "instances[0].c", "expected str, got number 3"),
    ],
)
def test_bad_records_name_the_field(
    features: SchemaConfig, records: list, field: str | None, message: str | None
) -> None:
    if field is None:  # exactly max_rows is allowed
        assert frame_from_records(records, features, max_rows=3).height == 3
        return
    with pytest.raises(InvalidInput) as err:
        frame_from_records(records, features, max_rows=3)
    assert err.value.field == field
    assert err.value.message.startswith(message)
    assert str(err.value).startswith(f"{field}: ")
