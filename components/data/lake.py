"""The Delta Lake tables of one pipeline: bronze, quarantine, the ingest ledger and named tables.

This is the storage adapter: the only module that sees table locations. Every landing
file is committed once, and a crash between its writes never leaves duplicate rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

import polars as pl
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import SchemaMismatchError

BRONZE = "bronze"
QUARANTINE = "quarantine"
LEDGER = "ingested_files"

_TABLE_NAME = re.compile(r"[a-z0-9][a-z0-9_]*")
_HASH = re.compile(r"[0-9a-f]{16,128}")


class TableNotFoundError(LookupError):
    """A table was read before anything was written to it."""


class TableSchemaError(ValueError):
    """Rows to append do not match the table's columns (usually: the declared schema changed)."""


@dataclass(frozen=True)
class IngestResult:
    """What one `commit_file` did. Row counts are the rows written by this call (0 when skipped)."""

    source_file: str
    content_hash: str
    good_rows: int
    bad_rows: int
    bronze_version: int | None
    skipped: bool


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
        if not self.exists(table):
            return None
        return self._table(table).version()

    def read(self, table: str, version: int | None = None) -> pl.DataFrame:
        """`table` as of `version` (latest when None)."""
        if not self.exists(table):
            raise TableNotFoundError(f"table {table!r} does not exist at {self.uri(table)}")
        dt = self._table(table)
        if version is not None:
            latest = dt.version()
            if not 0 <= version <= latest:
                raise ValueError(f"version of table {table!r} must be between 0 and {latest}, got {version}")
            dt.load_as_version(version)
        return pl.from_arrow(dt.to_pyarrow_table())

    def overwrite(self, table: str, df: pl.DataFrame) -> int:
        """Replace the contents (and schema) of `table` with `df`; returns the new version."""
        write_deltalake(
            self.uri(table), df.to_arrow(), mode="overwrite", schema_mode="overwrite",
            storage_options=self.storage_options,
        )
        return self._table(table).version()

    # ------------------------------------------------------------------ ingest

    def is_ingested(self, content_hash: str) -> bool:
        """Whether a file with these bytes is already committed (its ledger row exists)."""
        if not self.exists(LEDGER):
            return False
        found = self._table(LEDGER).to_pyarrow_table(
            columns=["content_hash"], filters=[("content_hash", "=", content_hash)]
        )
        return found.num_rows > 0

    def commit_file(self, source_file: str, content_hash: str, good: pl.DataFrame, bad: pl.DataFrame) -> IngestResult:
        """Append one file's good rows to bronze and bad rows to quarantine, then record it.

        The ledger row, written last, is the commit point. Rows of this hash already in
        bronze or quarantine without a ledger row are leftovers of a crashed attempt and
        are deleted first, so retrying never duplicates rows. A hash already in the ledger
        writes nothing and returns skipped=True.
        """
        if not _HASH.fullmatch(content_hash):
            raise ValueError(f"content_hash must be a lowercase hex digest, got {content_hash!r}")
        if self.is_ingested(content_hash):
            return IngestResult(source_file, content_hash, 0, 0, self.version(BRONZE), skipped=True)

        for table in (BRONZE, QUARANTINE):
            self._delete_hash(table, content_hash)
        tagged = pl.lit(content_hash, dtype=pl.String).alias("_content_hash")
        for table, rows in ((BRONZE, good), (QUARANTINE, bad)):
            if rows.height:
                self._append(table, rows.with_columns(tagged))
        ledger_row = pl.DataFrame(
            {
                "source_file": [source_file],
                "content_hash": [content_hash],
                "good_rows": [good.height],
                "bad_rows": [bad.height],
                "ingested_at": [datetime.now(timezone.utc)],
            },
            schema={
                "source_file": pl.String,
                "content_hash": pl.String,
                "good_rows": pl.Int64,
                "bad_rows": pl.Int64,
                "ingested_at": pl.Datetime("us", "UTC"),
            },
        )
        self._append(LEDGER, ledger_row)
        return IngestResult(source_file, content_hash, good.height, bad.height, self.version(BRONZE), skipped=False)

    # ------------------------------------------------------------------ helpers

    def _table(self, table: str) -> DeltaTable:
        return DeltaTable(self.uri(table), storage_options=self.storage_options)

    def _append(self, table: str, df: pl.DataFrame) -> None:
        # Polars exports strings as large_string; Delta maps both string widths to its one
        # `string` type, so appends with the same polars schema never need schema evolution.
        try:
            write_deltalake(self.uri(table), df.to_arrow(), mode="append", storage_options=self.storage_options)
        except SchemaMismatchError as exc:
            have = [f.name for f in self._table(table).schema().fields]
            raise TableSchemaError(
                f"table {table!r} at {self.uri(table)} has columns {have}, the rows to append have {df.columns}; "
                f"the declared schema changed since the table was written ({exc})"
            ) from exc

    def _delete_hash(self, table: str, content_hash: str) -> None:
        if not self.exists(table):
            return
        dt = self._table(table)
        # A delete that matches nothing commits no version, so the common case costs one scan.
        dt.delete(f"_content_hash = '{content_hash}'")
