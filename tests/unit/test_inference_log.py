"""The inference recorder: sampled, bounded, off the request's path, and what it writes."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from components.config import parse_window
from components.data.inference_log import TABLE, InferenceRecorder, answer_columns, lake_writer, read_window
from components.data.lake import Lake


def _answers(labels: list[str]) -> list[dict]:
    return [{"label": l, "probabilities": {"a": 0.8 if l == "a" else 0.2, "b": 0.2 if l == "a" else 0.8}} for l in labels]


def test_recorded_rows_land_in_the_lake_with_inputs_answers_and_version(tmp_path):
    lake = Lake(str(tmp_path))
    recorder = InferenceRecorder(lake_writer(lake), "7", flush_seconds=60)
    inputs = pl.DataFrame({"x": [1.0, 2.0, 3.0], "colour": ["red", None, "blue"]})
    assert recorder.record(inputs, _answers(["a", "b", "a"]), latency_ms=4.5) == 3
    assert recorder.record(inputs.head(1), _answers(["b"]), latency_ms=1.0) == 1
    assert recorder.flush(timeout_s=10)
    log = read_window(lake, None).sort("latency_ms", "x", descending=[True, False])
    assert log.columns == ["x", "colour", "request_id", "answered_at", "model_version", "latency_ms", "prediction", "probability"]
    assert log["x"].to_list() == [1.0, 2.0, 3.0, 1.0]
    assert log["colour"].to_list() == ["red", None, "blue", "red"]
    assert log["prediction"].to_list() == ["a", "b", "a", "b"]
    assert log["probability"].to_list() == [0.8, 0.8, 0.8, 0.8]
    assert set(log["model_version"]) == {"7"} and log["request_id"].n_unique() == 2
    assert lake.version(TABLE) == 0  # both requests in one commit
    recorder.close()
    assert recorder.stats() | {"last_error": None} == {
        "seen": 4, "queued": 4, "dropped": 0, "written": 4, "failed": 0, "pending": 0, "sample_rate": 1.0, "last_error": None,
    }


def test_the_log_compacts_its_small_files_every_n_commits_and_keeps_every_row(tmp_path):
    lake = Lake(str(tmp_path))
    write = lake_writer(lake, compact_every=3)
    for i in range(7):
        write(pl.DataFrame({"x": [float(i)] * 2, "answered_at": [datetime.now(timezone.utc)] * 2}))
    files, version = lake.data_files(TABLE)
    # commits 0-2, optimize (3), 4-6, optimize (7), commit 8: one compacted file plus the last append
    assert version == 8 and len(files) == 2
    assert sorted(lake.history(TABLE)["operation"].to_list()).count("OPTIMIZE") == 2
    assert sorted(read_window(lake, None)["x"].to_list()) == sorted(float(i) for i in range(7) for _ in range(2))
    assert lake.read(TABLE, 2).height == 6  # versions before a compaction stay readable until vacuumed


def test_a_failed_compaction_loses_no_rows_and_raises_nothing(tmp_path, monkeypatch):
    lake = Lake(str(tmp_path))

    def conflict(table):
        raise RuntimeError("another replica compacted these files")

    monkeypatch.setattr(lake, "compact", conflict)
    write = lake_writer(lake, compact_every=1)
    write(pl.DataFrame({"x": [1.0]}))
    write(pl.DataFrame({"x": [2.0]}))
    assert sorted(read_window(lake, None)["x"].to_list()) == [1.0, 2.0] and lake.version(TABLE) == 1


def test_the_window_keeps_recent_rows_only(tmp_path):
    lake = Lake(str(tmp_path))
    old = datetime.now(timezone.utc) - timedelta(hours=2)
    frame = pl.DataFrame({"x": [1.0, 2.0], "answered_at": [old, datetime.now(timezone.utc)]})
    lake.append_batches(TABLE, frame.to_arrow().to_reader())
    assert read_window(lake, datetime.now(timezone.utc) - timedelta(hours=1))["x"].to_list() == [2.0]
    assert read_window(Lake(str(tmp_path / "none")), None).height == 0


def test_sampling_keeps_about_the_configured_share():
    frames: list[pl.DataFrame] = []
    recorder = InferenceRecorder(frames.append, "1", sample_rate=0.25, flush_seconds=60, seed=3)
    for _ in range(400):
        recorder.record(pl.DataFrame({"x": [float(i) for i in range(10)]}), [1.0] * 10, latency_ms=1.0)
    recorder.close()
    written = sum(f.height for f in frames)
    assert recorder.counts["seen"] == 4000 and recorder.counts["written"] == written
    assert 900 < written < 1100
    # regression answers: the value is the prediction, no probability
    assert frames[0]["prediction"].dtype == pl.Float64 and frames[0]["probability"].null_count() == frames[0].height


def test_a_stalled_writer_never_slows_a_request_and_the_queue_stays_bounded():
    release = threading.Event()
    written: list[int] = []

    def stalled(frame: pl.DataFrame) -> None:
        release.wait(30)
        written.append(frame.height)

    recorder = InferenceRecorder(stalled, "1", max_queued_rows=500, flush_rows=100, flush_seconds=0.05)
    row = pl.DataFrame({"x": [1.0] * 10})
    started = time.perf_counter()
    for _ in range(1000):
        recorder.record(row, [1.0] * 10, latency_ms=1.0)
    per_request_us = (time.perf_counter() - started) / 1000 * 1e6
    stats = recorder.stats()
    # The thread took the first full batch and hangs in the store; the queue fills to its
    # bound and everything after is dropped, counted.
    assert stats["pending"] <= 500 and stats["dropped"] >= 10_000 - 1000
    assert stats["queued"] + stats["dropped"] == 10_000
    assert per_request_us < 1000
    release.set()
    recorder.close()
    assert sum(written) == recorder.counts["queued"] == recorder.counts["written"]


def test_a_failing_store_is_counted_and_recording_goes_on():
    calls = {"n": 0}
    frames: list[pl.DataFrame] = []

    def flaky(frame: pl.DataFrame) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk full")
        frames.append(frame)

    recorder = InferenceRecorder(flaky, "1", flush_seconds=60)
    recorder.record(None, _answers(["a", "b"]), latency_ms=2.0)  # an image model: no feature columns
    assert recorder.flush(timeout_s=10)
    assert recorder.counts["failed"] == 2 and recorder.last_error == "OSError: disk full"
    recorder.record(None, _answers(["b"]), latency_ms=2.0)
    recorder.close()
    assert recorder.counts["written"] == 1 and frames[0]["prediction"].to_list() == ["b"]
    assert frames[0].columns == ["request_id", "answered_at", "model_version", "latency_ms", "prediction", "probability"]


def test_answer_columns_of_each_task():
    assert answer_columns([{"distance": 0.3, "same": True, "threshold": 0.5}]) == {"prediction": [0.3], "probability": [None]}
    assert answer_columns([2.5]) == {"prediction": [2.5], "probability": [None]}
    with pytest.raises(ValueError, match="sample_rate"):
        InferenceRecorder(print, "1", sample_rate=0)


@pytest.mark.parametrize("text, expected", [("90s", timedelta(seconds=90)), ("1.5h", timedelta(minutes=90)), ("7d", timedelta(days=7)), ("all", None)])
def test_windows(text, expected):
    assert parse_window(text) == expected


@pytest.mark.parametrize("text", ["1w", "h", "-1h", "0m", ""])
def test_bad_windows_are_named(text):
    with pytest.raises(ValueError, match="window must be"):
        parse_window(text)


def test_after_a_failed_write_the_recorder_backs_off_instead_of_retrying_every_flush():
    calls: list[int] = []

    def failing_once(frame: pl.DataFrame) -> None:
        calls.append(frame.height)
        if len(calls) == 1:
            raise OSError("store unreachable")

    recorder = InferenceRecorder(failing_once, "1", flush_seconds=0.3)
    recorder.record(pl.DataFrame({"x": [1.0]}), [1.0], latency_ms=1.0)
    assert recorder.flush(timeout_s=10) and calls == [1]
    recorder.record(pl.DataFrame({"x": [2.0]}), [1.0], latency_ms=1.0)
    assert recorder.flush(timeout_s=10)
    assert calls == [1] and recorder.counts["failed"] == 2  # dropped unbuilt while backing off
    time.sleep(0.35)
    recorder.record(pl.DataFrame({"x": [3.0]}), [1.0], latency_ms=1.0)
    assert recorder.flush(timeout_s=10)
    recorder.close()
    assert calls == [1, 1] and recorder.counts["written"] == 1


def test_queued_requests_hold_rows_not_frames():
    import sys

    recorder = InferenceRecorder(lambda frame: None, "1", flush_seconds=60)
    recorder.record(pl.DataFrame({f"f{i}": [float(i)] for i in range(30)}), [1.0], latency_ms=1.0)
    queued = recorder._queue[0]
    assert queued.rows == [tuple(float(i) for i in range(30))] and sys.getsizeof(queued.rows[0]) < 1024
    recorder.close()
