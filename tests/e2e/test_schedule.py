"""`rayline schedule` against the real Prefect server `rayline server up` started (the
session's, see conftest.py): the pipeline runs on a short interval; a later run finds no
new data and trains nothing; after a file lands, the next run trains a new version; a drift
event retrains with no new data, and the new version meets the champion rule; with the clock
stopped, a file the watcher (`rayline ingest --watch`) commits starts a run that trains."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.data.bundled import bundled_frame, bundled_schema
from tests.conftest import write_config
from tests.e2e.conftest import RAYLINE, clean_env

# About two minutes: with the examples in make test-examples, so make test stays within its budget.
pytestmark = [pytest.mark.e2e, pytest.mark.examples]

NAME = "scheduled"


def _versions(tmp_path: Path) -> list[str]:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/.rayline/mlflow.db")
    try:
        return sorted(str(v.version) for v in client.search_model_versions(f"name = '{NAME}'"))
    except Exception:  # the store is being created by the first run
        return []


def _wait_for(check, timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}; the runner said:\n{log.read_text()}")


def test_a_scheduled_pipeline_retrains_only_when_data_arrived(tmp_path: Path, services: Path, cli_env: dict[str, str]):
    config = {
        "name": NAME,
        "source": {"format": "csv", "pattern": "*.csv"},
        "schema": {"target": "target", "task": "classification", "columns": bundled_schema("iris")},
        "split": {"stratify": True, "seed": 1},
        "model": {"kind": "knn", "params": {"k": 3}},
        "serving": {"name": NAME},
        # overlap wait: a run the drift event asks for queues behind a scheduled one, never dropped
        "schedule": {"interval_seconds": 10, "overlap": "wait", "on_drift": True, "on_new_data": True},
    }
    path = write_config(tmp_path, config)
    landing = tmp_path / ".rayline" / "landing" / NAME
    landing.mkdir(parents=True)
    bundled_frame("iris").head(100).write_csv(landing / "first.csv")

    # Without a server, scheduling says what is missing in one line.
    refused = subprocess.run([RAYLINE, "schedule", str(path)], cwd=tmp_path, env=clean_env(), capture_output=True, text=True)
    assert refused.returncode == 1 and "schedules need a Prefect server: run `rayline server up`" in refused.stderr
    assert not (tmp_path / ".rayline" / "logs").exists()  # refused before anything ran
    status = subprocess.run([RAYLINE, "server", "status"], cwd=services, env=clean_env(), capture_output=True, text=True)
    assert status.returncode == 0 and status.stdout.count("(up, pid") == 2, status.stdout

    runner_out = tmp_path / "runner.out"
    runner = watcher = None
    try:
        with open(runner_out, "w") as out:
            runner = subprocess.Popen(
                [RAYLINE, "schedule", str(path)], cwd=tmp_path, env=cli_env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_for(lambda: "no new data since scheduled v1" in runner_out.read_text(), 300, "a run that skips", runner_out)
        assert _versions(tmp_path) == ["1"]
        assert "scheduled v1 registered, champion" in runner_out.read_text()

        bundled_frame("iris").slice(100).write_csv(landing / "second.csv")
        _wait_for(lambda: _versions(tmp_path) == ["1", "2"], 180, "a retrain on the new file", runner_out)
        _wait_for(lambda: "scheduled v2 registered" in runner_out.read_text(), 60, "the run's line", runner_out)

        # The clock stops first: a run that skips takes about as long as this 10 s interval (most
        # of it the flow run's process importing), so scheduled runs could queue up without end
        # ahead of the one drift asks for; an hourly clock never meets that.
        stop_clock = (
            "import asyncio\nfrom prefect.client.orchestration import get_client\n"
            "async def main():\n"
            "    async with get_client() as client:\n"
            f"        d = await client.read_deployment_by_name('scheduled-pipeline/{NAME}')\n"
            "        for s in d.schedules:\n"
            "            await client.update_deployment_schedule(d.id, s.id, active=False)\n"
            "asyncio.run(main())\n"
        )
        stopped = subprocess.run([sys.executable, "-c", stop_clock], cwd=tmp_path, env=cli_env, capture_output=True,
                                 text=True)
        assert stopped.returncode == 0, stopped.stderr
        # What `rayline monitor` sends when the served data drifted: a retrain, no new data
        # needed; the same data makes an equal model, which the champion rule does not promote.
        drift = "from flows.events import announce_drift; announce_drift('scheduled', '2', {'share': 1.0})"
        sent = subprocess.run([sys.executable, "-c", drift], cwd=tmp_path, env=cli_env, capture_output=True, text=True)
        assert sent.returncode == 0, sent.stderr
        _wait_for(lambda: _versions(tmp_path) == ["1", "2", "3"], 180, "a retrain on drift", runner_out)
        _wait_for(lambda: "scheduled v3 registered, not champion" in runner_out.read_text(), 60, "its line", runner_out)

        # New data with the clock stopped: only the watcher's event can start this run.
        with open(tmp_path / "watcher.out", "w") as out:
            watcher = subprocess.Popen(
                [RAYLINE, "ingest", str(path), "--watch"], cwd=tmp_path, env=cli_env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        third = bundled_frame("iris").head(30)
        third.with_columns(third[third.columns[0]] * 1.01).write_csv(landing / "third.csv")  # new content
        _wait_for(lambda: _versions(tmp_path) == ["1", "2", "3", "4"], 180, "a run on the watcher's commit", runner_out)
        _wait_for(lambda: "scheduled v4 registered" in runner_out.read_text(), 60, "its line", runner_out)
        assert "30 new rows, 0 quarantined (1 file(s), batch 2" in (tmp_path / "watcher.out").read_text()
    finally:
        if watcher is not None:
            os.killpg(watcher.pid, signal.SIGINT)
            watcher.wait(timeout=60)
        if runner is not None:
            os.killpg(runner.pid, signal.SIGINT)
            try:
                runner.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(runner.pid, signal.SIGKILL)
