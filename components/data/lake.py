"""The Delta Lake tables of one pipeline: bronze, quarantine, the ingest ledger and named tables.

This is the storage adapter: the only module that sees table locations. Appends can carry
a stream's batch number in the commit (`append_once`), which is what makes ingest
exactly once (components/data/streaming.py).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import SchemaMismatchError
from deltalake.exceptions import TableNotFoundError as NoDeltaTable
from deltalake.transaction import AddAction, create_table_with_add_actions

BRONZE = "bronze"
QUARANTINE = "quarantine"
LEDGER = "ingested_files"

# Every open of a table replays the commits since its last checkpoint. Streams commit every
# second or so, and a checkpoint every 10 commits instead of Delta's 100 keeps that replay
# (four opens a micro-batch) from growing to most of a batch's time. Set when a table is created.
_TABLE_PROPERTIES = {"delta.checkpointInterval": "10"}

_TABLE_NAME = re.compile(r"[a-z0-9][a-z0-9_]*")


class TableNotFoundError(LookupError):
    """A table was read before anything was written to it."""


class TableSchemaError(ValueError):
    """Rows to append do not match the table's columns (usually: the declared schema changed)."""


class LakeBusyError(RuntimeError):
    """Another process holds the lake's writer lock."""


class Lake:
    """Delta tables under one root (a local folder or an object-store URI): `{root}/{table}`."""

    def __init__(self, root: str, storage_options: dict[str, str] | None = None) -> None:
        self.root = str(root).rstrip("/")
        self.storage_options = storage_options

    # ------------------------------------------------------------------ tables

    def uri(self, table: str) -> str:
        """Location of `table`."""
        if not _TABLE_NAME.fullmatch(table):
            raise ValueError(f"table must be lowercase letters, digits and '_', got {table!r}")
        return f"{self.root}/{table}"

    def exists(self, table: str) -> bool:
        """Whether `table` has at least one committed version."""
        return DeltaTable.is_deltatable(self.uri(table), storage_options=self.storage_options)

    def version(self, table: str) -> int | None:
        """Latest version of `table`, None when it does not exist."""
        dt = self._open(table)
        return None if dt is None else dt.version()

    def read(self, table: str, version: int | None = None) -> pl.DataFrame:
        """`table` as of `version` (latest when None)."""
        dt = self._existing(table)
        if version is not None:
            latest = dt.version()
            if not 0 <= version <= latest:
                raise ValueError(f"version of table {table!r} must be between 0 and {latest}, got {version}")
            dt.load_as_version(version)
        # Polars reads a table's Parquet files in parallel: five times faster than
        # delta-rs's Arrow reader over a table of many small files (a stream's ledger).
        return pl.scan_delta(dt).collect()

    def data_files(self, table: str) -> tuple[list[str], int]:
        """(the Parquet files of `table`'s latest version, that version): what a reader that
        streams (Ray Data) reads instead of loading the table."""
        dt = self._existing(table)
        return dt.file_uris(), dt.version()

    def append_batches(self, table: str, batches: pa.RecordBatchReader) -> int:
        """Append a stream of record batches as one commit (new columns widen the table);
        memory holds a batch at a time, not the table. Returns the new version."""
        write_deltalake(
            self.uri(table), batches, mode="append", schema_mode="merge", configuration=_TABLE_PROPERTIES,
            storage_options=self.storage_options,
        )
        return self._table(table).version()

    def tables(self) -> list[str]:
        """Names of the tables under the root (a local lake)."""
        root = Path(self.root)
        return sorted(p.name for p in root.iterdir() if (p / "_delta_log").is_dir()) if root.is_dir() else []

    def history(self, table: str, limit: int | None = None) -> pl.DataFrame:
        """`table`'s versions, newest first: version, time, operation, rows and files added,
        files removed. Each can be read back (`read(table, version)`) until vacuumed."""
        commits = self._existing(table).history(limit)
        # Appends this adapter commits itself (`_commit_file`) carry their counts as flat
        # commitInfo keys, since a transaction's operationMetrics cannot be set from outside.
        metrics = [c.get("operationMetrics") or c for c in commits]
        return pl.DataFrame(
            {
                "version": [c["version"] for c in commits],
                "time": [datetime.fromtimestamp(c["timestamp"] / 1000, timezone.utc) for c in commits],
                "operation": [c.get("operation", "") for c in commits],
                "rows_added": [m.get("num_added_rows") for m in metrics],
                "files_added": [m.get("num_added_files") for m in metrics],
                "files_removed": [m.get("num_removed_files") for m in metrics],
            },
            schema={"version": pl.Int64, "time": pl.Datetime("ms", "UTC"), "operation": pl.String,
                    "rows_added": pl.Int64, "files_added": pl.Int64, "files_removed": pl.Int64},
        )

    def vacuum(self, table: str, retention_hours: int, dry_run: bool = False) -> list[str]:
        """Delete the files of `table` that no version newer than `retention_hours` needs;
        versions older than that can no longer be read. Returns the files (to be) removed."""
        if retention_hours < 0:
            raise ValueError(f"retention_hours must be >= 0, got {retention_hours}")
        return self._table(table).vacuum(retention_hours, dry_run=dry_run, enforce_retention_duration=False)

    def compact(self, table: str) -> dict[str, int]:
        """Rewrite `table`'s small files into few large ones (a new version with the same
        rows; earlier versions stay readable until vacuumed). Returns the files removed and
        added. A table written by many small appends reads as fast again."""
        metrics = self._table(table).optimize.compact()
        return {"files_removed": int(metrics.get("numFilesRemoved", 0)), "files_added": int(metrics.get("numFilesAdded", 0))}

    def overwrite(self, table: str, df: pl.DataFrame) -> int:
        """Replace the contents (and schema) of `table` with `df`; returns the new version."""
        write_deltalake(
            self.uri(table), df.to_arrow(), mode="overwrite", schema_mode="overwrite",
            configuration=_TABLE_PROPERTIES, storage_options=self.storage_options,
        )
        return self._table(table).version()

    # ------------------------------------------------------------------ streams

    def transaction_version(self, table: str, app_id: str) -> int | None:
        """The last batch number `app_id` committed to `table` (None: none yet, or no table)."""
        dt = self._open(table)
        return None if dt is None else dt.transaction_version(app_id)

    def append_once(
        self, table: str, df: pl.DataFrame | pl.LazyFrame, app_id: str, batch: int, merge_schema: bool = False
    ) -> bool:
        """Append `df` to `table` in one commit that records batch `batch` of stream `app_id`,
        unless the table already holds that batch (or a later one); True when written.

        The batch number travels in the commit itself (a Delta app transaction), so a retry
        after a crash can tell whether this write happened. An empty frame still commits, to
        record the batch. `merge_schema` lets new columns widen the table. A lazy query is
        streamed into the commit by Polars' streaming engine, a batch of rows at a time.
        """
        dt = self._open(table)  # opened once for the check and the commit
        done = None if dt is None else dt.transaction_version(app_id)
        if done is not None and done >= batch:
            return False
        self._append(table, df, [Transaction(app_id, batch)], merge_schema, dt)
        return True

    @contextmanager
    def writer_lock(self, wait_s: float = 0.0) -> Iterator[None]:
        """Hold the lake's single-writer lock, waiting up to `wait_s` for another writer to
        finish (a local lake only; object stores need one writer at a time).

        Two ingest processes planning the same batch number would both append it.
        """
        if "://" in self.root:
            yield
            return
        Path(self.root).mkdir(parents=True, exist_ok=True)
        with open(Path(self.root) / "_writer.lock", "w") as fh:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LakeBusyError(f"another process is writing to the lake at {self.root}") from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ helpers

    def _table(self, table: str) -> DeltaTable:
        return DeltaTable(self.uri(table), storage_options=self.storage_options)

    def _open(self, table: str) -> DeltaTable | None:
        """`table`, None when it does not exist. One load of the log: asking `exists` first
        loads it twice, and a stream's commit opens its tables a dozen times."""
        try:
            return self._table(table)
        except NoDeltaTable:
            return None

    def _existing(self, table: str) -> DeltaTable:
        dt = self._open(table)
        if dt is None:
            raise TableNotFoundError(f"table {table!r} does not exist at {self.uri(table)}")
        return dt

    def _append(
        self, table: str, df: pl.DataFrame | pl.LazyFrame, transactions: list[Transaction], merge_schema: bool,
        dt: DeltaTable | None,
    ) -> None:
        if isinstance(df, pl.DataFrame) and self._commit_file(table, df, transactions, dt):
            return
        # Polars exports strings as large_string; Delta maps both string widths to its one
        # `string` type, so appends with the same polars schema never need schema evolution.
        data = df.collect_batches(engine="streaming") if isinstance(df, pl.LazyFrame) else df.to_arrow()
        try:
            write_deltalake(
                self.uri(table), data, mode="append", configuration=_TABLE_PROPERTIES,
                storage_options=self.storage_options, commit_properties=CommitProperties(app_transactions=transactions),
                schema_mode="merge" if merge_schema else None,
            )
        except SchemaMismatchError as exc:
            have = [f.name for f in self._table(table).schema().fields]
            raise TableSchemaError(
                f"table {table!r} at {self.uri(table)} has columns {have}, the rows to append have "
                f"{df.collect_schema().names()}; "
                f"the declared schema changed since the table was written ({exc})"
            ) from exc

    def _commit_file(
        self, table: str, df: pl.DataFrame, transactions: list[Transaction], dt: DeltaTable | None
    ) -> bool:
        """Append `df` as one Parquet file that Polars writes and a Delta transaction adds;
        False (nothing written) when the frame needs delta-rs's own writer: a remote lake,
        a type Parquet and Delta do not share one-to-one, or columns that differ from the
        table's (casts, new columns and the mismatch error are that writer's job).

        Polars writes Parquet about three times faster than delta-rs's writer on two cores
        (column chunks in parallel), and bronze's appends are most of an ingest's time."""
        if "://" in self.root or not all(_plain_type(t) for t in df.schema.values()):
            return False
        schema = DeltaSchema.from_arrow(df.head(0).to_arrow().schema)
        if dt is not None:  # the table exists
            have = {f.name: f.type for f in dt.schema().fields}
            if have != {f.name: f.type for f in schema.fields}:
                return False
            df = df.select(list(have))  # the table's column order
        folder = Path(self.uri(table))
        folder.mkdir(parents=True, exist_ok=True)
        actions = []
        if df.height:
            name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
            df.write_parquet(folder / name, compression="snappy")
            stat = os.stat(folder / name)
            actions.append(AddAction(name, stat.st_size, {}, int(stat.st_mtime * 1000), True, _file_stats(df)))
        counts = {"num_added_rows": df.height, "num_added_files": len(actions), "num_removed_files": 0}
        commit = CommitProperties(custom_metadata=counts, app_transactions=transactions)
        if dt is not None:
            dt.create_write_transaction(actions, "append", schema, commit_properties=commit)
        else:
            create_table_with_add_actions(
                self.uri(table), schema, actions, configuration=_TABLE_PROPERTIES, commit_properties=commit
            )
        return True


_PLAIN_TYPES = (
    pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.Float32, pl.Float64, pl.Boolean, pl.String, pl.Binary, pl.Date,
)


def _plain_type(dtype: pl.DataType) -> bool:
    """Whether Polars writes `dtype` to Parquet exactly as Delta reads it (Delta's
    timestamps are microseconds; unsigned and nested types go through delta-rs's casts)."""
    return dtype in _PLAIN_TYPES or (isinstance(dtype, pl.Datetime) and dtype.time_unit == "us")


def _file_stats(df: pl.DataFrame) -> str:
    """A data file's Delta statistics: rows, nulls per column, and min/max of the numeric
    columns (what readers skip files by; strings and times are left out, as is any
    non-finite bound, which JSON cannot hold)."""
    numeric = [c for c, t in df.schema.items() if t.is_integer() or t.is_float()]
    row = df.select(
        *[pl.col(c).null_count().alias(f"null:{c}") for c in df.columns],
        *[pl.col(c).min().alias(f"min:{c}") for c in numeric],
        *[pl.col(c).max().alias(f"max:{c}") for c in numeric],
    ).row(0, named=True)
    bounds: dict[str, dict[str, float | int]] = {"min": {}, "max": {}}
    for key, value in row.items():
        kind, column = key.split(":", 1)
        if kind != "null" and value is not None and math.isfinite(value):
            bounds[kind][column] = value
    return json.dumps({
        "numRecords": df.height,
        "minValues": bounds["min"],
        "maxValues": bounds["max"],
        "nullCount": {c: row[f"null:{c}"] for c in df.columns},
    })
