"""An ensemble of three served over HTTP: members as their own deployments, a combiner
fanning out to them, `explain`, and a failing member (503, or a degraded answer)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from ray import serve
from sklearn.neighbors import KNeighborsClassifier

from components.artifacts.bundle import load_bundle, save_bundle
from components.artifacts.estimator_io import save_estimator
from components.artifacts.ensemble_io import MEMBERS_DIR
from components.artifacts.registry import register_bundle
from components.artifacts.tracking import start_run
from components.config import RecorderConfig
from components.data.bundled import bundled_frame
from components.data.inference_log import TABLE as LOG_TABLE
from components.data.lake import Lake
from components.models.ensemble import soft_vote
from components.training.ensemble_fit import fit_ensemble
from components.data.modalities import tabular_info
from components.training.loop import loop_config
from serving.app import ServedModel, start

FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
MEMBERS = [
    {"kind": "logistic_regression"},
    {"kind": "random_forest", "params": {"n_estimators": 25}},
    {"kind": "naive_bayes"},
]
PORT = 8323


@pytest.fixture(scope="module")
def ensemble_endpoint(ray_session, silver, tracking, profile, workdir: Path):
    _, snapshot = silver
    features = snapshot.features
    config = loop_config(
        {"kind": "ensemble", "params": {"members": MEMBERS, "method": "voting", "voting": "soft"}},
        {"epochs": 5}, tabular_info("classification", features.in_features, features.out_features),
    )
    checkpoint = workdir / "ensemble-checkpoint"
    tables = {s: snapshot.tables[s] for s in ("train", "val")}
    outcomes = fit_ensemble(config, tables, features.columns, "int64", str(checkpoint))
    good = save_bundle(workdir / "bundle-ensemble", checkpoint_dir=checkpoint, features=features,
                       metrics=outcomes[0].metrics, lineage=snapshot.lineage)
    # A broken version: naive_bayes replaced by a model fitted on 3 features, so it raises
    # on every request (a real failure inside the member's replica, not a stand-in).
    broken = workdir / "bundle-ensemble-broken"
    shutil.copytree(good, broken)
    rng = np.random.default_rng(0)
    three = KNeighborsClassifier(3).fit(rng.normal(size=(9, 3)), np.arange(9) % 3)
    save_estimator(three, broken / MEMBERS_DIR / "naive_bayes" / "model.skops")

    versions = {  # one run each: a run holds one bundle
        name: register_bundle(
            name, bundle, run_id=start_run(tracking, f"{name}-test", {}), metric="val_loss", value=0.1, mode="min"
        ).version
        for name, bundle in (("iris-ensemble", good), ("iris-strict", broken), ("iris-degraded", broken))
    }
    # versions and member names are read from the registry, as `rayline serve` does
    served = [
        ServedModel(name="iris-ensemble", recorder=RecorderConfig(flush_seconds=0.2)),
        ServedModel(name="iris-strict"),
        ServedModel(name="iris-degraded", allow_degraded=True),
    ]
    url = start(served, profile.mlflow_tracking_uri, "127.0.0.1", PORT, lake=profile.lake)
    yield url, versions, load_bundle(good)
    serve.shutdown()


def _rows(n: int) -> list[dict]:
    return bundled_frame("iris").select(FEATURES).head(n).to_dicts()


def _predict(url: str, name: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/v1/models/{name}:predict", content=json.dumps(body),
                      headers={"content-type": "application/json"}, timeout=60)


def test_every_member_is_its_own_deployment(ensemble_endpoint):
    url, versions, _ = ensemble_endpoint
    deployments = serve.status().applications["rayline"].deployments
    for member in ("logistic_regression", "random_forest", "naive_bayes"):
        assert deployments[f"member-iris-ensemble-{member}"].status == "HEALTHY"
    status = httpx.get(f"{url}/v1/models/iris-ensemble").json()
    assert status["members"] == ["logistic_regression", "random_forest", "naive_bayes"]
    assert status["version"] == versions["iris-ensemble"]


def test_answers_like_the_bundle_in_process_and_explains(ensemble_endpoint, profile):
    url, versions, bundle = ensemble_endpoint
    rows = _rows(12)
    response = _predict(url, "iris-ensemble", {"instances": rows, "explain": True})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = bundle.predict(pl.DataFrame(rows))
    assert [p["label"] for p in body["predictions"]] == [e["label"] for e in expected]
    for got, want in zip(body["predictions"], expected):
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)
    assert body["model_version"] == versions["iris-ensemble"] and "degraded" not in body
    # explain: each member's own answers, and their mean is the ensemble's answer
    assert list(body["members"]) == ["logistic_regression", "random_forest", "naive_bayes"]
    classes = list(body["predictions"][0]["probabilities"])
    member_probas = [
        np.array([[p["probabilities"][c] for c in classes] for p in answers]) for answers in body["members"].values()
    ]
    combined = soft_vote(member_probas, [1, 1, 1])
    assert combined == pytest.approx(np.array([[p["probabilities"][c] for c in classes] for p in body["predictions"]]), abs=1e-5)
    assert "members" not in _predict(url, "iris-ensemble", {"instances": rows}).json()

    # The combiner logs what the ensemble answered (both requests), as a single model does.
    deadline = time.monotonic() + 30
    while (recorder := httpx.get(f"{url}/v1/models/iris-ensemble").json()["recorder"])["written"] < 24:
        assert time.monotonic() < deadline, recorder
        time.sleep(0.2)
    log = Lake(f"{profile.lake}/iris-ensemble").read(LOG_TABLE)
    assert log.height == 24 and log["prediction"].to_list() == [str(e["label"]) for e in expected] * 2


def test_a_failing_member_without_degraded_answers_is_a_503_naming_it(ensemble_endpoint):
    url, _, _ = ensemble_endpoint
    response = _predict(url, "iris-strict", {"instances": _rows(3)})
    assert response.status_code == 503
    assert httpx.get(f"{url}/v1/models/iris-strict").json()["recorder"]["seen"] == 0  # no answer, nothing logged
    error = response.json()["error"]
    assert "naive_bayes" in error and "3 features" in error
    assert "random_forest" not in error


def test_a_failing_member_with_degraded_answers_combines_the_rest(ensemble_endpoint):
    url, _, _ = ensemble_endpoint
    rows = _rows(6)
    body = _predict(url, "iris-degraded", {"instances": rows, "explain": True}).json()
    assert list(body["degraded"]["failed"]) == ["naive_bayes"]
    assert body["degraded"]["combined"] == ["logistic_regression", "random_forest"]
    assert list(body["members"]) == ["logistic_regression", "random_forest"]
    classes = list(body["predictions"][0]["probabilities"])
    left = [np.array([[p["probabilities"][c] for c in classes] for p in a]) for a in body["members"].values()]
    expected = soft_vote(left, [1, 1])
    got = np.array([[p["probabilities"][c] for c in classes] for p in body["predictions"]])
    assert got == pytest.approx(expected, abs=1e-5)
    # the server stays up: the good ensemble still answers
    assert _predict(url, "iris-ensemble", {"instances": rows}).status_code == 200


def test_bad_input_is_named_and_reaches_no_member(ensemble_endpoint):
    url, _, _ = ensemble_endpoint
    bad = _rows(2)
    bad[1]["petal_width_cm"] = "wide"
    response = _predict(url, "iris-ensemble", {"instances": bad})
    assert response.status_code == 422
    assert "petal_width_cm" in response.json()["error"]
