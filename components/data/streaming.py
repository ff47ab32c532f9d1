"""Landing files into bronze exactly once, in numbered micro-batches.

Every ingest is a stream: `rayline ingest` drains what has landed, `--watch` keeps
draining as files arrive. A stream numbers its micro-batches 0, 1, 2, ... and writes
batch n as three commits, each carrying the Delta app transaction (stream id, n):

1. the ledger (`ingested_files`): one row per file with its content hash and row counts.
   Written first, it is the stream's write-ahead log;
2. bronze: the good rows of every file in the batch, in one commit;
3. quarantine: the bad rows with their reasons (an empty commit when there are none).

A crash before step 1 leaves nothing. A crash after it leaves a batch that is logged
but not complete: the next start re-reads the logged files (their hashes must still
match) and writes only the tables whose last transaction is below n. No row is ever
written twice or lost, wherever the process dies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from components.config import SchemaConfig, SchemaEvolution
from components.data.lake import BRONZE, LEDGER, QUARANTINE, Lake, TableNotFoundError
from components.data.schema import SchemaChangeError, SchemaError, check_rows, check_rows_lazy
from components.data.sources import SourceError, SourceFormat, read_file, scan_file, source_errors

_LEDGER_SCHEMA = {
    "stream": pl.String,
    "source_file": pl.String,
    "content_hash": pl.String,
    "batch": pl.Int64,
    "good_rows": pl.Int64,
    "bad_rows": pl.Int64,
    "ingested_at": pl.Datetime("us", "UTC"),
}


@dataclass(frozen=True)
class FileRows:
    """One landing file read and checked: what a micro-batch commits for it.

    `good` is a frame, or for a file too large to hold (`checked_file`) a lazy query whose
    row count is `good_count`; such a file is a micro-batch of its own, streamed into
    bronze a batch of rows at a time."""

    source_file: str
    content_hash: str
    good: pl.DataFrame | pl.LazyFrame
    bad: pl.DataFrame
    good_count: int | None = None  # a lazy `good`'s rows (a frame knows its own)

    @property
    def streamed(self) -> bool:
        return isinstance(self.good, pl.LazyFrame)

    @property
    def good_rows(self) -> int:
        if isinstance(self.good, pl.DataFrame):
            return self.good.height
        assert self.good_count is not None, "a lazy FileRows needs good_count"
        return self.good_count

    @property
    def rows(self) -> int:
        return self.good_rows + self.bad.height


def checked_file(
    path: Path, fmt: SourceFormat, schema: SchemaConfig, source_file: str, content_hash: str,
    new_columns: SchemaEvolution = "fail", stream_over_bytes: int | None = None,
) -> FileRows:
    """A landing file of table rows read and checked: in memory, or, when it is larger than
    `stream_over_bytes`, as a lazy query the commit streams (memory then holds a batch of
    rows and the bad ones, never the file). Raises SourceError / SchemaError when unusable."""
    if stream_over_bytes is None or Path(path).stat().st_size <= stream_over_bytes:
        good, bad = check_rows(read_file(path, fmt), schema, source_file, new_columns)
        return FileRows(source_file, content_hash, good, bad)
    with source_errors(Path(path), fmt):
        # The check reads the whole file before anything is logged, so a file that breaks
        # half-way fails here, not in the middle of its commit.
        good, bad, total = check_rows_lazy(scan_file(path, fmt), schema, source_file, new_columns)
    return FileRows(source_file, content_hash, good, bad, good_count=total - bad.height)


@dataclass(frozen=True)
class BatchResult:
    """One committed micro-batch. `recovered`: it completed a batch a crash had interrupted."""

    batch: int
    files: tuple[str, ...]
    good_rows: int
    bad_rows: int
    bronze_version: int | None
    recovered: bool = False


@dataclass(frozen=True)
class PendingBatch:
    """A batch the ledger holds but bronze or quarantine does not yet: file -> content hash."""

    batch: int
    files: dict[str, str]


class IngestStream:
    """The micro-batches of one stream into one lake. Not safe for two writers at once:
    callers hold `Lake.writer_lock()` for the life of the object, which reads the ledger
    once and keeps it in step with its own commits (a commit used to read it whole again)."""

    def __init__(self, lake: Lake, stream_id: str, merge_schema: bool = False, compact_every: int = 100) -> None:
        self.lake = lake
        self.stream_id = stream_id
        self.merge_schema = merge_schema  # new columns may widen bronze (schema_evolution add_new_columns)
        # Each batch adds a small file to every table. Every table open reads the list of
        # them (and the ledger is read whole), so a long stream slows down unless they are
        # folded together every so often (0: never).
        self.compact_every = compact_every
        self._ledger: pl.DataFrame | None = None  # read on first use
        self._complete_through: int | None = None  # the last batch known to be in every table

    def last_batch(self) -> int | None:
        """The highest batch number logged, None for a new stream."""
        return self._last_logged(self._logged())

    def ingested_hashes(self) -> dict[str, str]:
        """Content hash -> the file logged with it, over every stream: the same bytes are never read twice."""
        ledger = self._logged()
        return dict(zip(ledger["content_hash"], ledger["source_file"]))

    def pending(self) -> PendingBatch | None:
        """The logged batch whose writes a crash interrupted, if any (only the last can be)."""
        batch = self.last_batch()
        if batch is None or self._complete(batch):
            return None
        return PendingBatch(batch, self._files_of(self._logged(), batch))

    def commit(self, files: Sequence[FileRows]) -> BatchResult:
        """Write `files` as the next batch. Idempotent: the same files as the last batch
        (a retry) finish or return that batch instead of writing a new one."""
        if not files:
            raise ValueError("a micro-batch needs at least one file")
        given = {f.source_file: f.content_hash for f in files}
        ledger = self._logged()
        last = self._last_logged(ledger)
        if last is not None:
            complete = self._complete(last)
            if self._files_of(ledger, last) == given:
                return self._write(last, files, recovered=not complete)
            if not complete:
                raise RuntimeError(f"batch {last} of stream {self.stream_id!r} is incomplete: complete it first")
            logged = set(ledger["content_hash"])
            again = sorted(name for name, h in given.items() if h in logged)
            if again:
                raise ValueError(f"stream {self.stream_id!r} already ingested the bytes of {again}")
        return self._write(0 if last is None else last + 1, files, recovered=False)

    def complete(self, pending: PendingBatch, files: Sequence[FileRows]) -> BatchResult:
        """Finish an interrupted batch from its files, read again: the same bytes as logged."""
        got = {f.source_file: f.content_hash for f in files}
        if got != pending.files:
            changed = sorted(name for name in pending.files if got.get(name) != pending.files[name])
            raise ValueError(
                f"batch {pending.batch} of stream {self.stream_id!r} logged {sorted(pending.files)}; "
                f"to complete it they must be read again unchanged, but {changed} differ or are missing"
            )
        return self._write(pending.batch, files, recovered=True)

    def _logged(self) -> pl.DataFrame:
        """The ledger, every stream's rows: read once, then extended by `_write`."""
        if self._ledger is None:
            try:
                self._ledger = self.lake.read(LEDGER)
            except TableNotFoundError:  # a new lake
                self._ledger = pl.DataFrame(schema=_LEDGER_SCHEMA)
        return self._ledger

    def _last_logged(self, ledger: pl.DataFrame) -> int | None:
        return ledger.filter(pl.col("stream") == self.stream_id)["batch"].max()  # type: ignore[return-value]

    def _files_of(self, ledger: pl.DataFrame, batch: int) -> dict[str, str]:
        """File -> content hash of this stream's `batch` in the ledger."""
        logged = ledger.filter((pl.col("stream") == self.stream_id) & (pl.col("batch") == batch))
        return dict(zip(logged["source_file"], logged["content_hash"]))

    def _write(self, batch: int, files: Sequence[FileRows], recovered: bool) -> BatchResult:
        now = datetime.now(timezone.utc)
        ledger = pl.DataFrame(
            {
                "stream": [self.stream_id] * len(files),
                "source_file": [f.source_file for f in files],
                "content_hash": [f.content_hash for f in files],
                "batch": [batch] * len(files),
                "good_rows": [f.good_rows for f in files],
                "bad_rows": [f.bad.height for f in files],
                "ingested_at": [now] * len(files),
            },
            schema=_LEDGER_SCHEMA,
        )
        try:
            if self.lake.append_once(LEDGER, ledger, self.stream_id, batch):
                self._ledger = pl.concat([self._logged(), ledger.select(self._logged().columns)])
            good, bad = _tagged(files, "good"), _tagged(files, "bad")
            self.lake.append_once(BRONZE, good, self.stream_id, batch, merge_schema=self.merge_schema)
            self.lake.append_once(QUARANTINE, bad, self.stream_id, batch)
        except BaseException:
            self._ledger = self._complete_through = None  # what was written is for the tables to say
            raise
        self._complete_through = batch
        if self.compact_every and (batch + 1) % self.compact_every == 0:
            for table in (LEDGER, BRONZE, QUARANTINE):
                self.lake.compact(table)
        return BatchResult(
            batch, tuple(f.source_file for f in files), sum(f.good_rows for f in files), bad.height,
            self.lake.version(BRONZE), recovered,
        )

    def _complete(self, batch: int) -> bool:
        """Whether bronze and quarantine both hold `batch` (the ledger does: it is written first)."""
        if self._complete_through is not None and self._complete_through >= batch:
            return True
        for table in (BRONZE, QUARANTINE):
            done = self.lake.transaction_version(table, self.stream_id)
            if done is None or done < batch:
                return False
        self._complete_through = batch
        return True


@dataclass
class Triage:
    """What a pass over the landing files found besides new files: files ingested before as
    they are, the same bytes under a new name (-> the file ingested with them), files that
    cannot be used (-> why), and the schema change that stopped the pass."""

    already: list[str] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    stopped: str | None = None


def new_files(
    names: Iterable[str],
    hash_of: Callable[[str], str],
    read: Callable[[str, str], FileRows],
    seen: dict[str, str],
    triage: Triage,
) -> Iterator[FileRows]:
    """The files whose bytes no stream has logged (`seen`: hash -> file), read and checked,
    in order; everything else is recorded in `triage`. A schema change (schema_evolution
    `fail`) stops the pass at that file."""
    for name in names:
        try:
            content_hash = hash_of(name)
        except FileNotFoundError:
            continue  # removed since it was listed
        if content_hash in seen:
            if seen[content_hash] == name:
                triage.already.append(name)
            else:
                triage.duplicates[name] = seen[content_hash]
            continue
        try:
            rows = read(name, content_hash)
        except SchemaChangeError as exc:
            triage.stopped = str(exc)
            return
        except (SourceError, SchemaError, OSError, ValueError) as exc:
            triage.failed[name] = str(exc)
            continue
        seen[content_hash] = name
        yield rows


def micro_batches(files: Iterable[FileRows], max_files: int, max_rows: int) -> Iterator[list[FileRows]]:
    """Group files, in order, into batches of at most `max_files` files and `max_rows` rows;
    a file larger than `max_rows` is a batch of its own (files are never split)."""
    if max_files < 1 or max_rows < 1:
        raise ValueError(f"max_files and max_rows must be >= 1, got {max_files} and {max_rows}")
    batch: list[FileRows] = []
    rows = 0
    for f in files:
        if f.streamed:  # too large to hold: alone, and streamed
            if batch:
                yield batch
                batch, rows = [], 0
            yield [f]
            continue
        if batch and (len(batch) == max_files or rows + f.rows > max_rows):
            yield batch
            batch, rows = [], 0
        batch.append(f)
        rows += f.rows
    if batch:
        yield batch


def _tagged(files: Sequence[FileRows], which: str) -> pl.DataFrame | pl.LazyFrame:
    """The batch's good or bad rows, each tagged with its file's content hash (a streamed
    file's good rows stay a lazy query). Files whose columns differ (new columns under
    add_new_columns) line up by name, nulls elsewhere."""
    frames = [
        getattr(f, which).with_columns(_content_hash=pl.lit(f.content_hash, dtype=pl.String)) for f in files
    ]
    if len(frames) == 1:
        return frames[0]
    return pl.concat(frames, how="diagonal_relaxed")
