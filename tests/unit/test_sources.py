"""Reading landing files: CSV as text, Parquet, NDJSON with struct flattening."""

from __future__ import annotations

import hashlib
import json
import os
import time

import polars as pl
import pytest

from components.data import sources
from components.data.sources import HashCache, SourceError, file_hash, list_landing, read_file, settled


def test_csv_reads_every_column_as_text(tmp_path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("x,n,s\n1.5,2,a\nabc,,b\n")
    df = read_file(path, "csv")
    assert df.schema == pl.Schema({"x": pl.String, "n": pl.String, "s": pl.String})
    assert df.to_dict(as_series=False) == {"x": ["1.5", "abc"], "n": ["2", None], "s": ["a", "b"]}


def test_parquet_keeps_types(tmp_path) -> None:
    path = tmp_path / "a.parquet"
    pl.DataFrame({"x": [1.5, None], "n": [1, 2]}).write_parquet(path)
    df = read_file(path, "parquet")
    assert df.schema == pl.Schema({"x": pl.Float64, "n": pl.Int64})
    assert df["x"].to_list() == [1.5, None]


def test_ndjson_flattens_nested_structs_and_keeps_lists(tmp_path) -> None:
    rows = [
        {"id": 1, "geo": {"lat": 1.5, "pos": {"x": 1, "y": 2}}, "tags": ["a", "b"]},
        {"id": 2, "geo": {"lat": -3.0, "pos": {"x": None, "y": 4}}, "tags": []},
    ]
    path = tmp_path / "a.ndjson"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    df = read_file(path, "ndjson")
    assert df.columns == ["id", "geo_lat", "geo_pos_x", "geo_pos_y", "tags"]
    assert df["geo_lat"].to_list() == [1.5, -3.0]
    assert df["geo_pos_x"].to_list() == [1, None]
    assert df["geo_pos_y"].to_list() == [2, 4]
    assert df.schema["tags"] == pl.List(pl.String)
    assert df["tags"].to_list() == [["a", "b"], []]


def test_ndjson_mixed_types_widen_to_text_instead_of_failing(tmp_path) -> None:
    path = tmp_path / "a.ndjson"
    # The odd value sits past any short inference window; the file must still be read.
    path.write_text("".join(json.dumps({"x": i}) + "\n" for i in range(200)) + json.dumps({"x": "abc"}) + "\n")
    df = read_file(path, "ndjson")
    assert df.height == 201
    assert df["x"][0] == "0" and df["x"][200] == "abc"


def test_ndjson_flattening_name_clash_is_an_error(tmp_path) -> None:
    path = tmp_path / "a.ndjson"
    path.write_text(json.dumps({"a_b": 1, "a": {"b": 2}}) + "\n")
    with pytest.raises(SourceError, match=r"a\.ndjson: flattening gives two columns named 'a_b'"):
        read_file(path, "ndjson")


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("bad.ndjson", "{not json\n", "ndjson"),
        ("bad.parquet", "not a parquet file", "parquet"),
        ("ragged.csv", "a,b\n1,2,3\n", "csv"),
        ("empty.parquet", "", "parquet"),
    ],
)
def test_unparseable_file_raises_source_error_naming_it(tmp_path, name: str, content: str, fmt: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(SourceError, match=rf"{name}: cannot read as {fmt}") as err:
        read_file(path, fmt)  # type: ignore[arg-type]
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_an_empty_text_file_is_no_rows_and_checks_as_none(tmp_path, fmt: str) -> None:
    from components.config import SchemaConfig
    from components.data.schema import check_rows

    path = tmp_path / f"empty.{fmt}"
    path.write_bytes(b"")
    df = read_file(path, fmt)
    assert df.shape == (0, 0)
    schema = SchemaConfig(columns={"x": "float", "y": "int"}, target="y", task="classification")
    good, bad = check_rows(df, schema, path.name)
    assert good.height == bad.height == 0 and good.columns == ["x", "y", "_source_file", "_row"]


def test_unknown_format_is_rejected(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"fmt must be one of csv, parquet, ndjson, got 'xml'"):
        read_file(tmp_path / "a.xml", "xml")  # type: ignore[arg-type]


def test_list_landing_sorted_filtered_and_skips_dotfiles(tmp_path) -> None:
    for name in ["b.csv", "a.csv", "c.json", ".a.csv.tmp", ".hidden.csv", "d.csv.tmp"]:
        (tmp_path / name).write_text("x\n1\n")
    (tmp_path / "sub.csv").mkdir()
    assert [p.name for p in list_landing(tmp_path, "*.csv")] == ["a.csv", "b.csv"]
    assert [p.name for p in list_landing(tmp_path, "*")] == ["a.csv", "b.csv", "c.json"]


def test_a_file_is_ready_once_it_has_kept_still_for_settle_seconds(tmp_path) -> None:
    old, fresh = tmp_path / "old.csv", tmp_path / "fresh.csv"
    old.write_text("x\n1\n")
    fresh.write_text("x\n")
    now = time.time()
    os.utime(old, (now - 5, now - 5))
    os.utime(fresh, (now - 0.25, now - 0.25))
    ready, wait = settled([old, fresh], settle_seconds=1.0, now=now)
    assert ready == [old] and wait == pytest.approx(0.75)
    assert settled([old, fresh], settle_seconds=0.0, now=now) == ([old, fresh], 0.0)


def test_hash_cache_rehashes_only_changed_files(tmp_path, monkeypatch) -> None:
    path = tmp_path / "a.csv"
    path.write_text("x\n1\n")
    cache, calls = HashCache(), []
    monkeypatch.setattr(sources, "file_hash", lambda p: calls.append(p) or file_hash(p))
    first = cache.of(path)
    assert cache.of(path) == first and len(calls) == 1
    path.write_text("x\n1\n2\n")  # appended: size and mtime move
    assert cache.of(path) == hashlib.sha256(b"x\n1\n2\n").hexdigest() and len(calls) == 2


def test_list_landing_missing_folder(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="landing folder .*nope does not exist"):
        list_landing(tmp_path / "nope", "*")


def test_file_hash_is_sha256_of_bytes(tmp_path) -> None:
    data = bytes(range(256)) * 10_000  # > one read chunk
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert file_hash(path) == hashlib.sha256(data).hexdigest()
    (tmp_path / "copy.bin").write_bytes(data)
    assert file_hash(tmp_path / "copy.bin") == file_hash(path)
