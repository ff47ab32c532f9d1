"""`rayline run` through the real Prefect, Delta Lake, Ray Tune, MLflow and Ray Serve, then
`rayline predict` and plain HTTP against the live endpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import polars as pl
import pytest

from components.data.bundled import bundled_frame
from components.data.lake import Lake
from tests.conftest import iris_config, write_config

pytestmark = pytest.mark.e2e

PORT = 8765
URL = f"http://127.0.0.1:{PORT}"
RAYLINE = str(Path(sys.executable).with_name("rayline"))


def _landing_file(folder: Path) -> None:
    """Iris as a user CSV with two bad rows: an unparsable number and a missing target."""
    frame = bundled_frame("iris").with_columns(pl.col("sepal_width_cm").cast(pl.String), pl.col("target").cast(pl.String))
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("wide")).otherwise(pl.col("sepal_width_cm")).alias("sepal_width_cm"),
        pl.when(pl.int_range(pl.len()) == 9).then(pl.lit(None)).otherwise(pl.col("target")).alias("target"),
    )
    folder.mkdir(parents=True)
    frame.write_csv(folder / "iris-2026-11-01.csv")


def _wait_for_endpoint(proc: subprocess.Popen, timeout_s: float = 420) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"rayline run exited early with {proc.returncode}:\n{proc.stdout.read()}")
        try:
            if httpx.get(f"{URL}/v1/models/tiny", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError("endpoint never came up")


def test_run_then_predict_over_http(tmp_path: Path, cli_env: dict[str, str]):
    config = iris_config(
        "tiny",
        source={"format": "csv", "pattern": "*.csv"},
        serving={"name": "tiny", "port": PORT, "recorder": {"flush_seconds": 0.5}},
        training={"epochs": 3, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.02}},
        tuning={"num_samples": 2, "grace_period": 1, "space": {"training.optimizer.lr": {"choice": [0.01, 0.03]}}},
        monitoring={"window": "all", "min_rows": 50, "numeric_test": "ks"},
    )
    path = write_config(tmp_path, config)
    _landing_file(tmp_path / ".rayline" / "landing" / "tiny")
    env = cli_env
    proc = subprocess.Popen(
        [RAYLINE, "run", str(path)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        _wait_for_endpoint(proc)
        rows = bundled_frame("iris").drop("target").head(3)
        answer = httpx.post(f"{URL}/v1/models/tiny:predict", json={"instances": rows.to_dicts()}, timeout=30).json()
        assert answer["model_version"] == "1" and len(answer["predictions"]) == 3
        assert all(p["label"] in (0, 1, 2) for p in answer["predictions"])

        rows_file = tmp_path / "score.csv"
        bundled_frame("iris").head(4).write_csv(rows_file)  # the target column is ignored
        scored = subprocess.run(
            [RAYLINE, "predict", "tiny", str(rows_file), "--url", URL], capture_output=True, text=True, timeout=60
        )
        assert scored.returncode == 0, scored.stderr
        assert "tiny v1" in scored.stdout and scored.stdout.count("│ ") >= 4

        # Served traffic whose petals grew: the endpoint logs it, monitor finds that drift.
        _drift_is_found(path, tmp_path, env)
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    assert "2 quarantined" in output and "best params" in output and "tiny v1, champion" in output

    lake = Lake(str(tmp_path / ".rayline" / "lake" / "tiny"))
    reasons = sorted(lake.read("quarantine")["_reason"].to_list())
    assert reasons == ["column 'sepal_width_cm': cannot parse 'wide' as float", "column 'target': missing value"]
    assert lake.read("bronze").height == 148

    # The chosen trial's run holds the test report; the pipeline's run the leaderboard.
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/.rayline/mlflow.db")
    version = client.get_model_version_by_alias("tiny", "champion")
    assert [a.path for a in client.list_artifacts(version.run_id, "report")] == ["report/confusion_matrix.png"]
    parent = client.get_run(version.run_id).data.tags["mlflow.parentRunId"]
    assert [a.path for a in client.list_artifacts(parent, "report")] == ["report/leaderboard.json"]
    assert "test_precision.0" in client.get_run(version.run_id).data.metrics
    assert "leaderboard (validation)" in output

    # One run id joins Prefect, MLflow, Tune, the bundle's lineage and what serves.
    wide = {**env, "COLUMNS": "250"}  # long paths and ids on one line each
    shown = subprocess.run([RAYLINE, "runs", "show", parent[:10]], cwd=tmp_path, env=wide, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    table = " ".join(shown.stdout.split())
    flow_run = client.get_run(parent).data.tags["rayline.prefect_flow_run_id"]
    assert parent in table and flow_run[:8] in table and "tiny v1" in table and "this version is champion" in table
    assert f"bronze v{lake.version('bronze')}" in table and "ray_results/tiny-" in table
    unknown = subprocess.run([RAYLINE, "runs", "show", "ffffffff"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert unknown.returncode == 1 and "no pipeline run with id 'ffffffff'" in unknown.stderr

    # The same landing file again adds nothing.
    version = lake.version("bronze")
    again = subprocess.run([RAYLINE, "ingest", str(path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    assert lake.version("bronze") == version and lake.read("bronze").height == 148


def _drift_is_found(config: Path, tmp_path: Path, env: dict[str, str]) -> None:
    grown = bundled_frame("iris").drop("target").with_columns(pl.col("petal_length_cm") + 3.0)
    for start in range(0, grown.height, 30):
        response = httpx.post(f"{URL}/v1/models/tiny:predict", json={"instances": grown.slice(start, 30).to_dicts()}, timeout=30)
        assert response.status_code == 200
    log = Lake(str(tmp_path / ".rayline" / "lake" / "tiny"))
    deadline = time.monotonic() + 30
    while not log.exists("inference_log") or log.read("inference_log").height < 3 + 4 + 150:
        assert time.monotonic() < deadline, "the endpoint did not log what it answered"
        time.sleep(0.5)

    wide = {**env, "COLUMNS": "250"}
    first = subprocess.run([RAYLINE, "monitor", "tiny", "--config", str(config)], cwd=tmp_path, env=wide,
                           capture_output=True, text=True, timeout=180)
    assert first.returncode == 0, first.stdout + first.stderr
    rows = {line.split("│")[1].strip(): line for line in first.stdout.splitlines() if line.count("│") > 5}
    assert "drifted" in rows["petal_length_cm"] and "stable" in rows["sepal_width_cm"], first.stdout
    assert "ks" in rows["petal_length_cm"] and "chi2" in rows["prediction"]
    assert "retraining asked for" in first.stdout  # a Prefect server listens (the session's)

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/.rayline/mlflow.db")
    experiment = client.get_experiment_by_name("tiny-monitoring")
    run = client.search_runs([experiment.experiment_id])[0]
    assert run.data.metrics["petal_length_cm.ks"] < 0.01 and run.data.tags["rayline.drifted"] == "true"
    drawn = {a.path for a in client.list_artifacts(run.info.run_id, "drift")}
    assert {"drift/drift.json", "drift/summary.png", "drift/petal_length_cm.png", "drift/prediction.png"} <= drawn

    # Looking again: still drifted (exit 3 when asked), but retraining is asked for once per version.
    again = subprocess.run([RAYLINE, "monitor", "tiny", "--config", str(config), "--fail-on-drift"], cwd=tmp_path,
                           env=wide, capture_output=True, text=True, timeout=180)
    assert again.returncode == 3 and "retraining asked for" not in again.stdout, again.stdout + again.stderr


@pytest.mark.examples  # ~40 s; make test-examples runs it (make test's budget went to schedules and the watcher)
def test_run_an_ensemble_over_a_family_search(tmp_path: Path, cli_env: dict[str, str]):
    """`kind: ensemble` + `tuning.families`: the search, the stacking ensemble of each
    family's best trial, one registered version holding every member, the leaderboard."""
    families = {"knn": {"model.params.k": {"choice": [3, 5]}}, "naive_bayes": {}, "logistic_regression": {}}
    config = iris_config(
        "tiny-ensemble",
        model={"kind": "ensemble", "params": {"method": "stacking", "folds": 3}},
        tuning={"num_samples": 1, "scheduler": "fifo", "families": families},
        serving={"name": "tiny-ensemble", "port": PORT},
    )
    path = write_config(tmp_path, config)
    env = cli_env
    run = subprocess.run(
        [RAYLINE, "run", str(path), "--no-serve"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "tiny-ensemble v1, champion" in output and "trials              │ 4 (0 failed)" in output

    import json

    import mlflow
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/.rayline/mlflow.db")  # models:/ URIs resolve through it
    client = MlflowClient()
    version = client.get_model_version_by_alias("tiny-ensemble", "champion")
    bundle = Path(download_artifacts(artifact_uri=f"models:/tiny-ensemble/{version.version}", dst_path=str(tmp_path / "b")))
    description = json.loads((bundle / "ensemble.json").read_text())
    assert [m["name"] for m in description["members"]] == ["knn", "naive_bayes", "logistic_regression"]
    assert description["method"] == "stacking" and (bundle / "meta.skops").is_file()
    assert "test_accuracy" in client.get_run(version.run_id).data.metrics
    parent = client.get_run(version.run_id).data.tags["mlflow.parentRunId"]
    board = json.loads(Path(download_artifacts(run_id=parent, artifact_path="report/leaderboard.json",
                                                dst_path=str(tmp_path / "board"))).read_text())
    assert len(board) == 4 and "ensemble" in [row["trial"] for row in board]
