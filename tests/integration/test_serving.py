"""The KServe v1 endpoint over HTTP: good answers, and a 4xx naming the field for bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import polars as pl
import pytest
from ray import serve

from components.artifacts.bundle import load_bundle, save_bundle
from components.artifacts.registry import register_bundle
from components.config import RecorderConfig
from components.data.inference_log import TABLE as LOG_TABLE
from components.data.lake import Lake
from components.artifacts.tracking import log_trial, start_run
from components.data.bundled import bundled_frame
from components.evaluation.outcome import best_of
from serving.app import ServedModel, start

NAME = "iris-serve"
FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]


@pytest.fixture(scope="module")
def endpoint(search, silver, tracking, profile, workdir: Path):
    _, snapshot = silver
    best = best_of(search, "val_loss", "min")
    run_id = log_trial(tracking, start_run(tracking, "serve-test", {}), best)
    bundle_dir = save_bundle(
        workdir / "bundle-serve", checkpoint_dir=best.checkpoint, features=snapshot.features,
        metrics={"val_loss": best.value("val_loss")}, lineage=snapshot.lineage,
    )
    registration = register_bundle(NAME, bundle_dir, run_id=run_id, metric="val_loss", value=0.0, mode="min")
    served = ServedModel(name=NAME, max_instances=8, recorder=RecorderConfig(flush_seconds=0.2))
    url = start([served], profile.mlflow_tracking_uri, "127.0.0.1", 8321, lake=profile.lake)
    yield url, registration.version, load_bundle(bundle_dir)
    serve.shutdown()  # give the replicas' CPUs back to the tests that train


def _rows(n: int) -> list[dict]:
    return bundled_frame("iris").select(FEATURES).head(n).to_dicts()


def _predict(url: str, body, name: str = NAME) -> httpx.Response:
    content = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return httpx.post(f"{url}/v1/models/{name}:predict", content=content,
                      headers={"content-type": "application/json"}, timeout=30)


def test_status_routes(endpoint):
    url, version, _ = endpoint
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{url}/v1/models").json() == {"models": [NAME]}
    status = httpx.get(f"{url}/v1/models/{NAME}").json()
    assert status.pop("recorder")["sample_rate"] == 1.0
    assert status == {"name": NAME, "ready": True, "version": version, "task": "classification",
                      "inputs": {f: "float" for f in FEATURES}}
    assert httpx.get(f"{url}/v1/models/nope").status_code == 404
    assert "/v1/models/{name}:predict" in httpx.get(f"{url}/openapi.json").json()["paths"]


def test_predicts_like_the_bundle_in_process(endpoint):
    url, version, bundle = endpoint
    rows = _rows(5)
    response = _predict(url, {"instances": rows})
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == version and body["model_name"] == NAME
    assert len(body["predictions"]) == 5
    for prediction in body["predictions"]:
        assert prediction["label"] in (0, 1, 2)
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    # The saved preprocessing is the serving path: same answers as the bundle in this process.
    assert body["predictions"] == json.loads(json.dumps(bundle.predict(pl.DataFrame(rows))))


@pytest.mark.parametrize(
    ("instances", "status", "field", "says"),
    [
        ([{k: v for k, v in _rows(1)[0].items() if k != "petal_width_cm"}], 422, "instances[0].petal_width_cm", "missing"),
        ([{**_rows(1)[0], "colour": "red"}], 422, "instances[0].colour", "unknown column"),
        ([{**_rows(1)[0], "target": 1}], 422, "instances[0].target", "target is not an input"),
        ([{**_rows(1)[0], "sepal_width_cm": "wide"}], 422, "instances[0].sepal_width_cm", "expected float"),
        ([_rows(1)[0], {**_rows(1)[0], "sepal_width_cm": True}], 422, "instances[1].sepal_width_cm", "expected float"),
        ([], 422, "instances", "must not be empty"),
        (_rows(9), 422, "instances", "at most 8"),
        (["not an object"], 422, "instances[0]", "must be an object"),
    ],
)
def test_bad_instances_name_the_field(endpoint, instances, status, field, says):
    url, _, _ = endpoint
    response = _predict(url, {"instances": instances})
    assert response.status_code == status
    body = response.json()
    assert body["field"] == field and says in body["error"]


def test_nan_malformed_and_unknown_model(endpoint):
    url, _, _ = endpoint
    nan_body = '{"instances": [{"sepal_length_cm": NaN, "sepal_width_cm": 3.0, "petal_length_cm": 1.4, "petal_width_cm": 0.2}]}'
    response = _predict(url, nan_body)
    assert response.status_code == 422 and "finite" in response.json()["error"]
    assert response.json()["field"] == "instances[0].sepal_length_cm"

    response = _predict(url, '{"instances": [')
    assert response.status_code == 422
    response = _predict(url, {"rows": []})
    assert response.status_code == 422 and response.json()["field"] == "instances"
    response = _predict(url, {"instances": _rows(1)}, name="missing-model")
    assert response.status_code == 404 and "missing-model" in response.json()["error"]

    # The server is still up and answering after all of that.
    assert _predict(url, {"instances": _rows(2)}).status_code == 200


def test_the_endpoint_logs_what_it_answered_and_nothing_it_refused(endpoint, profile):
    url, version, _ = endpoint

    def recorder() -> dict:
        return httpx.get(f"{url}/v1/models/{NAME}").json()["recorder"]

    seen = recorder()["seen"]
    rows = [{**row, "sepal_length_cm": 7.125} for row in _rows(4)]  # a value no other test sends
    answers = [_predict(url, {"instances": rows}).json()["predictions"] for _ in range(3)]
    assert _predict(url, {"instances": [{**rows[0], "sepal_width_cm": "wide"}]}).status_code == 422
    deadline = time.monotonic() + 30
    while (state := recorder())["pending"] or state["written"] < state["queued"]:
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert state["seen"] - seen == 12 and state["dropped"] == state["failed"] == 0

    log = Lake(f"{profile.lake}/{NAME}").read(LOG_TABLE)
    assert log.height == state["written"]  # everything this replica answered, once
    ours = log.filter(pl.col("sepal_length_cm") == 7.125)
    assert ours.height == 12 and ours["request_id"].n_unique() == 3
    assert ours.select(FEATURES[1:]).to_dicts() == [{k: r[k] for k in FEATURES[1:]} for r in rows] * 3
    assert ours["prediction"].to_list() == [str(p["label"]) for batch in answers for p in batch]
    assert set(ours["model_version"]) == {version} and (ours["latency_ms"] > 0).all()


def test_batch_score_answers_like_the_endpoint_without_http(endpoint, profile, workdir: Path):
    """`rayline score`'s work: files through Ray Data's actor pool into a Delta table, then
    the lake's own table by name; the same answers the endpoint gives for the same rows."""
    from components.data.lake import Lake
    from flows.score import score_table

    url, version, _ = endpoint
    rows = bundled_frame("iris").head(40).with_columns(pl.all().cast(pl.String))
    rows = rows.with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(pl.lit("wide")).otherwise(pl.col("sepal_width_cm")).alias("sepal_width_cm")
    )
    folder = workdir / "to-score"
    folder.mkdir()
    rows.head(25).write_csv(folder / "a.csv")
    rows.slice(25).write_csv(folder / "b.csv")

    report = score_table.fn(profile, NAME, version, str(folder), "scores", actors=1, batch_size=16)
    assert (report.rows, report.rejected, report.input_version, report.output_version) == (39, 1, None, 0)
    lake = Lake(f"{profile.lake}/{NAME}")
    scored = lake.read("scores").sort(pl.col("target").cast(pl.Int64), "sepal_length_cm", "petal_length_cm")
    assert set(scored["model_version"]) == {version} and set(scored["model_name"]) == {NAME}
    rows_in = scored.select(FEATURES).to_dicts()
    over_http = [p for i in range(0, len(rows_in), 8) for p in _predict(url, {"instances": rows_in[i : i + 8]}).json()["predictions"]]
    assert scored["prediction"].to_list() == [p["label"] for p in over_http]
    rejected = lake.read("scores_rejected")
    assert rejected["_reason"].to_list() == ["column 'sepal_width_cm': cannot parse 'wide' as float"]

    # A table of the model's lake by name: scored at its version, appended as a new one.
    again = score_table.fn(profile, NAME, version, "scores", "rescored", actors=1, batch_size=64)
    assert (again.rows, again.rejected, again.input_version) == (39, 0, 0)
    assert lake.read("rescored")["input_version"].unique().to_list() == [0]
