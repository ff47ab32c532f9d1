"""The inference log: what an endpoint saw and answered, as rows of a Delta table.

Each row is one instance of one request: its features as the model read them (typed by the
model's schema; none for images), the answer (`prediction`, and `probability` of that label
for classifiers), the model version, the request's latency at the model and when it was
answered. `rayline monitor` compares a window of it with the training reference.

`InferenceRecorder` is what an endpoint replica holds: `record` samples a request's rows
and queues them in memory in microseconds; a background thread writes what is queued in one
commit every `flush_seconds`. The queue is bounded: when the writer falls behind (or fails),
new rows are dropped and counted, and requests neither wait nor fail.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import polars as pl

from components.data.lake import Lake

TABLE = "inference_log"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Request:
    request_id: str
    answered_at: datetime
    latency_ms: float
    # The inputs as plain rows and their schema (shared by every request of a model): a
    # queued one-row frame holds ~15 KiB, its row as a tuple a few hundred bytes.
    rows: list[tuple[Any, ...]] | None
    schema: pl.Schema | None
    answers: list[Any]


def answer_columns(answers: list[Any]) -> dict[str, list[Any]]:
    """`prediction` and `probability` from endpoint answers: a classifier's label and its
    probability, a regressor's value (probability null), a verifier's distance."""
    prediction: list[Any] = []
    probability: list[float | None] = []
    for answer in answers:
        if isinstance(answer, dict) and "label" in answer:
            prediction.append(str(answer["label"]))
            probability.append(float(answer["probabilities"][str(answer["label"])]))
        elif isinstance(answer, dict) and "distance" in answer:
            prediction.append(float(answer["distance"]))
            probability.append(None)
        else:
            prediction.append(float(answer))
            probability.append(None)
    return {"prediction": prediction, "probability": probability}


def log_frame(requests: list[_Request], model_version: str) -> pl.DataFrame:
    """The rows of queued requests: one per instance, inputs first, then the log columns.
    Built column-wise over all requests at once, in one chunk: a frame per request (and a
    record batch per request in the Delta write) costs tens of times more per row."""
    def each(value: Callable[[_Request], Any]) -> list[Any]:
        return [value(r) for r in requests for _ in r.answers]

    frame = pl.DataFrame(
        {
            "request_id": each(lambda r: r.request_id),
            "answered_at": each(lambda r: r.answered_at),
            "model_version": [model_version] * sum(len(r.answers) for r in requests),
            "latency_ms": each(lambda r: r.latency_ms),
            **answer_columns([a for r in requests for a in r.answers]),
        },
        schema_overrides={"answered_at": pl.Datetime("us", "UTC"), "probability": pl.Float64},
    )
    if requests[0].schema is None:
        return frame
    parts, start = [], 0  # requests in a row with the same schema become one part
    for i in range(1, len(requests) + 1):
        if i == len(requests) or requests[i].schema != requests[start].schema:
            rows = [row for r in requests[start:i] for row in r.rows]
            parts.append(pl.DataFrame(rows, schema=requests[start].schema, orient="row"))
            start = i
    inputs = parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical_relaxed")
    return inputs.hstack(frame)


class InferenceRecorder:
    """Sampled, bounded, asynchronous recording of one model version's answers.

    `write` appends a frame to the log (a Lake table in production); it runs on the
    recorder's own thread, never on a request's.
    """

    def __init__(
        self,
        write: Callable[[pl.DataFrame], None],
        model_version: str,
        *,
        sample_rate: float = 1.0,
        max_queued_rows: int = 100_000,
        flush_rows: int = 10_000,
        flush_seconds: float = 5.0,
        seed: int | None = None,
    ) -> None:
        if not 0 < sample_rate <= 1:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
        self.model_version = model_version
        self.sample_rate = sample_rate
        self.max_queued_rows = max_queued_rows
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self._write = write
        self._random = random.Random(seed)
        self._queue: list[_Request] = []
        self._queued_rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._writing = False  # a taken batch is being written (flush waits for it)
        self._backoff = 0.0  # seconds the writer waits after a failed write
        self._retry_at = 0.0  # monotonic time before which queued rows are dropped as failed
        self._schema: pl.Schema | None = None  # of the last recorded inputs (see _schema_of)
        self._columns: list[str] = []
        self.counts = {"seen": 0, "queued": 0, "dropped": 0, "written": 0, "failed": 0}
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="inference-recorder", daemon=True)
        self._thread.start()

    def record(self, inputs: pl.DataFrame | None, answers: list[Any], latency_ms: float) -> int:
        """Queue a sample of one request's rows (`inputs` row i was answered `answers[i]`);
        returns how many were queued. Never blocks on the writer and never raises for it."""
        n = len(answers)
        keep = list(range(n)) if self.sample_rate >= 1 else [i for i in range(n) if self._random.random() < self.sample_rate]
        with self._lock:
            self.counts["seen"] += n
            if not keep or self._stopping:
                return 0
            if self._queued_rows + len(keep) > self.max_queued_rows:
                self.counts["dropped"] += len(keep)
                return 0
            if len(keep) < n:
                inputs = inputs[keep] if inputs is not None else None
                answers = [answers[i] for i in keep]
            rows, schema = (inputs.rows(), self._schema_of(inputs)) if inputs is not None else (None, None)
            self._queue.append(_Request(uuid.uuid4().hex, datetime.now(timezone.utc), latency_ms, rows, schema, answers))
            self._queued_rows += len(keep)
            self.counts["queued"] += len(keep)
            full = self._queued_rows >= self.flush_rows
        if full:
            self._wake.set()
        return len(keep)

    def _schema_of(self, inputs: pl.DataFrame) -> pl.Schema:
        # Building a frame's Schema costs more than the rest of `record`; a model's requests
        # all have its columns, so the schema is taken again only when the columns change.
        if self._schema is None or inputs.columns != self._columns:
            self._schema, self._columns = inputs.schema, inputs.columns
        return self._schema

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {**self.counts, "pending": self._queued_rows, "sample_rate": self.sample_rate,
                    "last_error": self.last_error}

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Write what is queued now and wait for it; False when it did not finish in time."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        while time.monotonic() < deadline:
            with self._lock:
                if self._queued_rows == 0 and not self._writing:
                    return True
            time.sleep(0.01)
        return False

    def close(self, timeout_s: float = 30.0) -> None:
        """Write what is queued and stop the thread."""
        with self._lock:
            self._stopping = True
        self._wake.set()
        self._thread.join(timeout_s)

    # ------------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            with self._lock:
                taken, self._queue = self._queue, []
                rows, self._queued_rows = self._queued_rows, 0
                self._writing = bool(taken)
                stopping = self._stopping
            if taken and time.monotonic() < self._retry_at and not stopping:
                self._settle(failed=rows)  # the store failed lately: not even the frame is built
            elif taken:
                self._write_out(taken, rows)
            if stopping:
                return

    def _write_out(self, taken: list[_Request], rows: int) -> None:
        try:
            self._write(log_frame(taken, self.model_version))
        except Exception as exc:  # noqa: BLE001 - whatever the store says, the endpoint keeps answering
            # Back off (flush interval doubling up to 5 min): a failing store costs the
            # replica the frame and the attempt, every flush, for nothing.
            self._backoff = min(max(2 * self._backoff, self.flush_seconds), 300.0)
            self._retry_at = time.monotonic() + self._backoff
            first = self.last_error is None
            self.last_error = f"{type(exc).__name__}: {exc}"
            if first:
                _log.warning("inference log: %d rows could not be written (%s); dropping them", rows, self.last_error)
            self._settle(failed=rows)
            return
        self._backoff = 0.0
        self._settle(written=rows)

    def _settle(self, written: int = 0, failed: int = 0) -> None:
        with self._lock:
            self.counts["written"] += written
            self.counts["failed"] += failed
            self._writing = False


def lake_writer(lake: Lake, compact_every: int = 0) -> Callable[[pl.DataFrame], None]:
    """Appends to the lake's inference log; a new model version's new columns widen it.

    Every `compact_every` appends (0: never) the log's small files are compacted: one commit
    every few seconds is a file every few seconds, and `rayline monitor` would otherwise open
    thousands of them a day. A compaction that fails (another replica compacting the same
    files) is left for the next round; the appended rows are already safe.
    """
    appends = 0

    def write(frame: pl.DataFrame) -> None:
        nonlocal appends
        lake.append_batches(TABLE, frame.to_arrow().to_reader())
        appends += 1
        if compact_every and appends % compact_every == 0:
            try:
                lake.compact(TABLE)
            except Exception as exc:  # noqa: BLE001 - housekeeping never costs the endpoint its rows
                _log.info("inference log: compaction skipped (%s: %s)", type(exc).__name__, exc)

    return write


def read_window(lake: Lake, since: datetime | None) -> pl.DataFrame:
    """The logged rows answered at or after `since` (all of them when None)."""
    if not lake.exists(TABLE):
        return pl.DataFrame()
    frame = pl.scan_delta(lake.uri(TABLE), storage_options=lake.storage_options)
    if since is not None:
        frame = frame.filter(pl.col("answered_at") >= since)
    return frame.collect()
