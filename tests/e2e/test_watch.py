"""`rayline ingest --watch`: files land while it runs, it is killed (SIGKILL) mid-stream and
started again, and every row ends up in the lake exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from components.data.lake import Lake
from tests.conftest import write_config

pytestmark = pytest.mark.e2e

RAYLINE = str(Path(sys.executable).with_name("rayline"))
NAME = "watched"
FILES = 16


def _config() -> dict:
    return {
        "name": NAME,
        "source": {"format": "csv", "pattern": "*.csv"},
        "schema": {"target": "y", "task": "classification", "columns": {"a": "float", "b": "float", "y": "int"}},
        "stream": {"settle_seconds": 0.5, "poll_seconds": 0.3, "max_files_per_batch": 2},
        "model": {"kind": "mlp"},
        "serving": {"name": NAME},
    }


def _rows(i: int) -> bytes:
    """File i: two good rows and one row quarantined for an unparsable 'b'; unique bytes."""
    return f"a,b,y\n{i},1.5,0\n{i}.5,2.5,1\n{i},wide,1\n".encode()


def _land(landing: Path, i: int) -> None:
    """Three ways files arrive: renamed from .tmp, written slowly in pieces, written at once."""
    path, data = landing / f"part-{i:03d}.csv", _rows(i)
    if i % 3 == 0:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.rename(path)
    elif i % 3 == 1:
        with open(path, "wb") as fh:  # a slow writer: the watcher must not read it half-way
            for piece in (data[:6], data[6:20], data[20:]):
                fh.write(piece)
                fh.flush()
                time.sleep(0.15)
    else:
        path.write_bytes(data)


def _start(path: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    # Its own process group: a kill takes the watcher's helpers (Prefect's API server) with it.
    return subprocess.Popen(
        [RAYLINE, "ingest", str(path), "--watch"], cwd=cwd, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _wait_for(check, timeout_s: float, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the watcher exited early with {proc.returncode}:\n{proc.stdout.read()}")
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _bronze_rows(lake: Lake) -> int:
    try:
        return lake.read("bronze").height if lake.exists("bronze") else 0
    except Exception:  # a commit in flight while the test peeks
        return 0


def test_watch_ingests_arriving_files_exactly_once_across_a_kill(tmp_path: Path, cli_env: dict[str, str]):
    path = write_config(tmp_path, _config())
    landing = tmp_path / ".rayline" / "landing" / NAME
    landing.mkdir(parents=True)
    lake = Lake(str(tmp_path / ".rayline" / "lake" / NAME))

    first = _start(path, tmp_path, cli_env)
    try:
        _land(landing, 0)
        _wait_for(lambda: _bronze_rows(lake) >= 2, 120, "the first file", first)
        # Files keep landing while the watcher commits them; it dies by SIGKILL mid-stream.
        writer = threading.Thread(target=lambda: [_land(landing, i) for i in range(1, 10)])
        writer.start()
        _wait_for(lambda: _bronze_rows(lake) >= 8, 60, "a few batches", first)
        os.killpg(first.pid, signal.SIGKILL)
        writer.join()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.communicate(timeout=30)

    for i in range(10, FILES):  # landed while nothing watched
        _land(landing, i)
    (landing / "copy-of-part-003.csv").write_bytes(_rows(3))  # the same bytes under a new name
    (landing / "empty.csv").write_bytes(b"")

    second = _start(path, tmp_path, cli_env)
    try:
        _wait_for(lambda: _bronze_rows(lake) >= 2 * FILES, 120, "every file", second)
        time.sleep(1.5)  # a few more ticks: nothing else may arrive
    finally:
        second.send_signal(signal.SIGINT)
        output, _ = second.communicate(timeout=60)
    assert second.returncode == 0, output
    assert "skipped copy-of-part-003.csv: the same bytes as part-003.csv, already ingested" in output
    assert "stopped watching" in output
    # The console has the CLI's lines; Prefect's and the libraries' logs are in the file it names.
    log = Path(output.split("logs: ", 1)[1].split()[0])
    assert "Flow run" in log.read_text() and "Flow run" not in output

    bronze = lake.read("bronze")
    assert bronze.height == 2 * FILES
    assert bronze.select("_source_file", "_row").n_unique() == 2 * FILES  # no row twice
    expected_a = sorted(float(v) for i in range(FILES) for v in (i, i + 0.5))
    assert sorted(bronze["a"].to_list()) == expected_a  # no row lost, none read half-way
    quarantine = lake.read("quarantine")
    assert quarantine.height == FILES and set(quarantine["_reason"]) == {"column 'b': cannot parse 'wide' as float"}
    ledger = lake.read("ingested_files")
    assert ledger.height == FILES + 1 and ledger["source_file"].n_unique() == FILES + 1  # + the empty file
    assert ledger.filter(pl.col("source_file") == "empty.csv").select("good_rows", "bad_rows").row(0) == (0, 0)
    # Batches are numbered without gaps, each a bronze commit carrying its number.
    batches = sorted(set(ledger["batch"]))
    assert batches == list(range(len(batches))) and lake.transaction_version("bronze", f"rayline-ingest-{NAME}") == batches[-1]
