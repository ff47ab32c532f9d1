"""Micro-batch bookkeeping: numbered batches, the write-ahead ledger, a crash between any
two writes recovered without a duplicate or a lost row."""

from __future__ import annotations

import hashlib

import polars as pl
import pytest

from components.data.lake import Lake
from components.data.streaming import FileRows, IngestStream, micro_batches

STREAM = "rayline-ingest-test"


def _file(name: str, good: int, bad: int = 0) -> FileRows:
    rows = pl.DataFrame(
        {"x": [float(i) for i in range(good)], "_source_file": [name] * good, "_row": list(range(good))},
        schema={"x": pl.Float64, "_source_file": pl.String, "_row": pl.Int64},
    )
    quarantined = pl.DataFrame(
        {"_source_file": [name] * bad, "_row": list(range(good, good + bad)), "_reason": ["bad x"] * bad},
        schema={"_source_file": pl.String, "_row": pl.Int64, "_reason": pl.String},
    )
    return FileRows(name, hashlib.sha256(name.encode()).hexdigest(), rows, quarantined)


@pytest.fixture
def stream(tmp_path) -> IngestStream:
    return IngestStream(Lake(str(tmp_path / "lake")), STREAM)


def test_batches_are_numbered_and_written_as_one_commit_per_table(stream: IngestStream) -> None:
    first = stream.commit([_file("a.csv", 3, 1), _file("b.csv", 2)])
    assert (first.batch, first.files, first.good_rows, first.bad_rows, first.bronze_version) == (
        0, ("a.csv", "b.csv"), 5, 1, 0,
    )
    second = stream.commit([_file("c.csv", 0, 2)])
    assert (second.batch, second.good_rows, second.bronze_version) == (1, 0, 1)  # empty commit records batch 1
    lake = stream.lake
    assert {t: lake.transaction_version(t, STREAM) for t in ("bronze", "quarantine", "ingested_files")} == {
        "bronze": 1, "quarantine": 1, "ingested_files": 1,
    }
    assert lake.read("bronze").height == 5 and lake.read("quarantine").height == 3
    ledger = lake.read("ingested_files").sort("source_file")
    assert ledger.select("source_file", "batch", "good_rows", "bad_rows").rows() == [
        ("a.csv", 0, 3, 1), ("b.csv", 0, 2, 0), ("c.csv", 1, 0, 2),
    ]
    assert stream.ingested_hashes() == {_file(n, 0).content_hash: n for n in ("a.csv", "b.csv", "c.csv")}
    assert stream.pending() is None and stream.last_batch() == 1


@pytest.mark.parametrize("writes_before_crash", [0, 1, 2])
def test_a_crash_between_writes_is_completed_exactly_once(stream: IngestStream, monkeypatch, writes_before_crash):
    stream.commit([_file("a.csv", 2)])
    batch = [_file("b.csv", 4, 1), _file("c.csv", 3)]
    real_append, calls = Lake._append, []

    def dying_append(self, *args, **kwargs):
        if len(calls) == writes_before_crash:
            raise KeyboardInterrupt("killed")  # what a SIGINT mid-write would raise
        calls.append(args[0])
        return real_append(self, *args, **kwargs)

    monkeypatch.setattr(Lake, "_append", dying_append)
    with pytest.raises(KeyboardInterrupt):
        stream.commit(batch)
    monkeypatch.setattr(Lake, "_append", real_append)

    restarted = IngestStream(Lake(stream.lake.root), STREAM)
    pending = restarted.pending()
    assert stream.pending() == pending  # the crashed object forgot what it held and sees what the tables say
    if writes_before_crash == 0:  # the ledger was not written: as if the batch never started
        assert pending is None
        result = restarted.commit(batch)
    else:
        assert pending is not None and pending.batch == 1 and pending.files == {f.source_file: f.content_hash for f in batch}
        with pytest.raises(RuntimeError, match="batch 1 .* is incomplete"):
            restarted.commit([_file("d.csv", 1)])
        result = restarted.complete(pending, batch)
        assert result.recovered
    assert result.batch == 1
    lake = restarted.lake
    bronze = lake.read("bronze")
    assert bronze.height == 9 and bronze.select("_source_file", "_row").n_unique() == 9
    assert lake.read("quarantine").height == 1
    assert lake.read("ingested_files").height == 3
    assert restarted.pending() is None
    assert restarted.commit([_file("d.csv", 1)]).batch == 2


def test_every_n_batches_the_tables_small_files_are_folded_together(tmp_path) -> None:
    stream = IngestStream(Lake(str(tmp_path / "lake")), STREAM, compact_every=2)
    for i in range(5):
        stream.commit([_file(f"f{i}.csv", 2, 1)])
    lake = stream.lake
    for table, rows in (("bronze", 10), ("quarantine", 5), ("ingested_files", 5)):
        files, _ = lake.data_files(table)
        assert len(files) == 2, table  # batches 0-3 in one file, batch 4 on its own
        assert lake.read(table).height == rows and lake.transaction_version(table, STREAM) == 4
        assert lake.history(table)["operation"].to_list().count("OPTIMIZE") == 2
    assert IngestStream(lake, STREAM).ingested_hashes() == stream.ingested_hashes()


def test_a_retried_commit_of_the_same_files_writes_nothing_twice(stream: IngestStream) -> None:
    batch = [_file("a.csv", 2)]
    stream.commit(batch)
    again = stream.commit(batch)  # e.g. the task retried after its commits had landed
    assert again.batch == 0 and stream.lake.read("bronze").height == 2
    with pytest.raises(ValueError, match=r"already ingested the bytes of \['a.csv'\]"):
        stream.commit([_file("b.csv", 1), _file("a.csv", 2)])


def test_completing_needs_the_logged_bytes(stream: IngestStream, monkeypatch) -> None:
    real_append = Lake._append
    monkeypatch.setattr(Lake, "_append", lambda self, table, *a, **k: (
        real_append(self, table, *a, **k) if table == "ingested_files" else (_ for _ in ()).throw(OSError("disk gone"))
    ))
    with pytest.raises(OSError):
        stream.commit([_file("a.csv", 2)])
    monkeypatch.setattr(Lake, "_append", real_append)
    pending = stream.pending()
    changed = FileRows("a.csv", "f" * 64, _file("a.csv", 2).good, _file("a.csv", 2).bad)
    with pytest.raises(ValueError, match=r"must be read again unchanged, but \['a.csv'\] differ or are missing"):
        stream.complete(pending, [changed])
    assert not stream.lake.exists("bronze")


def test_micro_batches_respect_file_and_row_limits() -> None:
    files = [_file(f"{i}.csv", n) for i, n in enumerate([3, 3, 5, 1, 1, 1])]
    names = lambda batches: [[f.source_file for f in b] for b in batches]  # noqa: E731
    assert names(micro_batches(files, max_files=2, max_rows=100)) == [["0.csv", "1.csv"], ["2.csv", "3.csv"], ["4.csv", "5.csv"]]
    # A file over the row limit is a batch of its own; files are never split.
    assert names(micro_batches(files, max_files=10, max_rows=4)) == [["0.csv"], ["1.csv"], ["2.csv"], ["3.csv", "4.csv", "5.csv"]]
    assert list(micro_batches([], 1, 1)) == []
    with pytest.raises(ValueError, match="max_files and max_rows must be >= 1, got 0 and 5"):
        list(micro_batches(files, 0, 5))


def test_new_columns_widen_bronze_in_a_new_version_under_add_new_columns(tmp_path) -> None:
    from components.config import SchemaConfig
    from components.data.schema import check_rows

    schema = SchemaConfig(columns={"a": "float", "y": "int"}, target="y", task="classification")
    stream = IngestStream(Lake(str(tmp_path / "lake")), STREAM, merge_schema=True)
    old = pl.DataFrame({"a": ["1.0"], "y": ["0"]})
    new = pl.DataFrame({"a": ["2.0"], "y": ["1"], "site": ["north"]})
    for name, df in (("old.csv", old), ("new.csv", new)):
        good, bad = check_rows(df, schema, name, new_columns="add_new_columns")
        stream.commit([FileRows(name, hashlib.sha256(name.encode()).hexdigest(), good, bad)])
    lake = stream.lake
    assert "site" not in lake.read("bronze", version=0).columns
    widened = lake.read("bronze").sort("a")
    assert widened["site"].to_list() == [None, "north"] and lake.version("bronze") == 1


def test_new_files_reads_only_unseen_bytes_and_triages_the_rest() -> None:
    from components.data.schema import SchemaChangeError
    from components.data.sources import SourceError
    from components.data.streaming import Triage, new_files

    hashes = {"old.csv": "h-old", "copy.csv": "h-old", "a.csv": "h-a", "broken.csv": "h-b", "wide.csv": "h-w", "z.csv": "h-z"}

    def read(name: str, content_hash: str) -> FileRows:
        if name == "broken.csv":
            raise SourceError("broken.csv: cannot read as csv")
        if name == "wide.csv":
            raise SchemaChangeError("wide.csv: undeclared column(s) ['c']")
        return FileRows(name, content_hash, _file(name, 1).good, _file(name, 1).bad)

    def hash_of(name: str) -> str:
        if name == "gone.csv":
            raise FileNotFoundError(name)
        return hashes[name]

    triage, seen = Triage(), {"h-old": "old.csv"}
    names = ["old.csv", "copy.csv", "gone.csv", "a.csv", "broken.csv", "wide.csv", "z.csv"]
    read_files = [f.source_file for f in new_files(names, hash_of, read, seen, triage)]
    assert read_files == ["a.csv"]  # the schema change stops the pass before z.csv
    assert triage.already == ["old.csv"] and triage.duplicates == {"copy.csv": "old.csv"}
    assert triage.failed == {"broken.csv": "broken.csv: cannot read as csv"}
    assert triage.stopped == "wide.csv: undeclared column(s) ['c']" and seen["h-a"] == "a.csv"


def _landing_csv(path, rows: int) -> None:
    """Rows of a, y with a bad value every 7th row and a missing target every 11th; some good
    values need the full check (a blank every 13th row, spaces around every 5th)."""
    a = ["oops" if i % 7 == 3 else "" if i % 13 == 4 else f" {i / 2} " if i % 5 == 1 else str(i / 2)
         for i in range(rows)]
    y = ["" if i % 11 == 5 else str(i % 2) for i in range(rows)]
    pl.DataFrame({"a": a, "y": y}).write_csv(path)


def test_a_file_over_the_size_limit_streams_into_the_same_rows(tmp_path) -> None:
    from components.config import SchemaConfig
    from components.data.streaming import checked_file

    schema = SchemaConfig(columns={"a": "float", "y": "int"}, target="y", task="classification")
    path = tmp_path / "big.csv"
    _landing_csv(path, 500)
    in_memory = checked_file(path, "csv", schema, "big.csv", "h1", stream_over_bytes=path.stat().st_size)
    streamed = checked_file(path, "csv", schema, "big.csv", "h1", stream_over_bytes=path.stat().st_size - 1)
    assert not in_memory.streamed and streamed.streamed
    assert (streamed.good_rows, streamed.bad.height) == (in_memory.good_rows, in_memory.bad.height) == (390, 110)
    assert streamed.bad.sort("_row").equals(in_memory.bad)
    assert streamed.bad["_reason"][0] == "column 'a': cannot parse 'oops' as float"

    # A streamed file is a batch of its own and reaches bronze through the streaming engine.
    small = _file("small.csv", 2)
    assert [[f.source_file for f in b] for b in micro_batches([small, streamed, small], 10, 10**6)] == [
        ["small.csv"], ["big.csv"], ["small.csv"],
    ]
    lakes = {}
    for label, rows in (("memory", in_memory), ("streamed", streamed)):
        stream = IngestStream(Lake(str(tmp_path / label)), STREAM)
        result = stream.commit([rows])
        assert (result.good_rows, result.bad_rows) == (390, 110)
        lakes[label] = stream.lake
    bronze = {k: lake.read("bronze").sort("_row") for k, lake in lakes.items()}
    assert bronze["streamed"].equals(bronze["memory"])
    assert bronze["memory"].filter(pl.col("_row").is_in([0, 1, 4]))["a"].to_list() == [0.0, 0.5, None]
    assert lakes["streamed"].read("ingested_files").select("good_rows", "bad_rows").rows() == [(390, 110)]


def test_a_streamed_file_that_cannot_be_used_fails_before_anything_is_logged(tmp_path) -> None:
    from components.config import SchemaConfig
    from components.data.schema import SchemaError
    from components.data.sources import SourceError
    from components.data.streaming import checked_file

    schema = SchemaConfig(columns={"a": "float", "y": "int"}, target="y", task="classification")
    (tmp_path / "no_y.csv").write_text("a\n1.0\n")
    with pytest.raises(SchemaError, match=r"missing declared column\(s\) \['y'\]"):
        checked_file(tmp_path / "no_y.csv", "csv", schema, "no_y.csv", "h", stream_over_bytes=0)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all" * 10)
    with pytest.raises(SourceError, match="junk.parquet: cannot read as parquet"):
        checked_file(tmp_path / "junk.parquet", "parquet", schema, "junk.parquet", "h", stream_over_bytes=0)


def test_a_crash_in_a_streamed_commit_is_completed_from_the_file(tmp_path, monkeypatch) -> None:
    from components.config import SchemaConfig
    from components.data.streaming import checked_file

    schema = SchemaConfig(columns={"a": "float", "y": "int"}, target="y", task="classification")
    path = tmp_path / "big.csv"
    _landing_csv(path, 200)
    stream = IngestStream(Lake(str(tmp_path / "lake")), STREAM)
    real_append = Lake._append

    def dying_append(self, table, *args, **kwargs):
        if table == "bronze":
            raise KeyboardInterrupt("killed mid-stream")
        return real_append(self, table, *args, **kwargs)

    monkeypatch.setattr(Lake, "_append", dying_append)
    with pytest.raises(KeyboardInterrupt):
        stream.commit([checked_file(path, "csv", schema, "big.csv", "h", stream_over_bytes=0)])
    monkeypatch.setattr(Lake, "_append", real_append)
    pending = stream.pending()
    assert pending is not None and pending.files == {"big.csv": "h"}
    stream.complete(pending, [checked_file(path, "csv", schema, "big.csv", "h", stream_over_bytes=0)])
    assert stream.lake.read("bronze").height == stream.lake.read("ingested_files")["good_rows"].sum() == 156
    assert stream.lake.read("quarantine").height == 44 and stream.pending() is None
