"""Ensemble bundles: every member in its own format, the combination as data, one round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from components.artifacts.bundle import load_bundle, save_bundle
from components.artifacts.ensemble_io import (
    ENSEMBLE_FILE,
    META_FILE,
    read_combiner,
    read_description,
    read_member,
    write_ensemble_checkpoint,
)
from components.config import PipelineConfig
from components.data.bundled import bundled_frame
from components.data.preparation import prepare, raw_split
from components.data.schema import check_rows
from components.models import build
from components.training import torch_estimator  # noqa: F401  (sets the fitter the mlp member trains with)
from tests.conftest import iris_config

MEMBERS = [
    {"kind": "mlp", "params": {"hidden": [8]}},  # torch: model.safetensors
    {"kind": "random_forest", "params": {"n_estimators": 10}},  # scikit-learn: model.skops
    {"kind": "xgboost", "params": {"n_estimators": 10, "max_depth": 2}},  # XGBoost: model.ubj
]


@pytest.fixture(scope="module")
def iris():
    config = PipelineConfig.model_validate(iris_config())
    bronze, _ = check_rows(bundled_frame("iris"), config.schema_, "iris.csv")
    frames, features = prepare(bronze, config.schema_, config.split, config.preprocessing)
    rows = raw_split(bronze, config.schema_, config.split, "test").drop("target")
    train = frames["train"]
    return train.select(features.columns).to_numpy(), train["label"].to_numpy(), features, rows


@pytest.mark.parametrize("method", ["voting", "weighted", "stacking"])
def test_ensemble_bundle_round_trips(method, iris, tmp_path):
    x, y, features, rows = iris
    params = {"members": MEMBERS, "method": method, "folds": 3, "training": {"epochs": 5}}
    ensemble = build({"kind": "ensemble", "params": params}, features.info).fit(x, y)
    spec = {"kind": "ensemble", "params": {**params, "task": "classification"}}
    checkpoint = write_ensemble_checkpoint(tmp_path / "ckpt", ensemble, spec, {"val_accuracy": 0.9})
    bundle_dir = save_bundle(tmp_path / "bundle", checkpoint_dir=checkpoint, features=features,
                             metrics={"val_accuracy": 0.9}, lineage={"bronze_version": 1})

    files = {p.relative_to(bundle_dir).as_posix() for p in bundle_dir.rglob("*") if p.is_file()}
    assert {"members/mlp/model.safetensors", "members/random_forest/model.skops", "members/xgboost/model.ubj",
            "members/mlp/spec.json", ENSEMBLE_FILE, "spec.json", "preprocess.json"} <= files
    assert "state.json" not in files and (META_FILE in files) == (method == "stacking")
    description = read_description(bundle_dir)
    assert [m["name"] for m in description["members"]] == ["mlp", "random_forest", "xgboost"]
    assert description["weights"] == pytest.approx(list(ensemble.weights_))

    bundle = load_bundle(bundle_dir)
    x_test = features.inputs(rows)
    np.testing.assert_allclose(bundle.model.predict_proba(x_test), ensemble.predict_proba(x_test), atol=1e-6)
    answers = bundle.predict(rows)
    assert [a["label"] for a in answers] == features.labels.decode(ensemble.predict(x_test).tolist())
    # what a member deployment and the combiner read, each on its own
    member = read_member(bundle_dir, "random_forest")
    np.testing.assert_allclose(member.predict_proba(x_test), ensemble.members_[1].predict_proba(x_test))
    assert read_combiner(bundle_dir) == ensemble.combiner_ or method == "stacking"
    with pytest.raises(KeyError, match=r"no member 'svm'; members: \['mlp', 'random_forest', 'xgboost'\]"):
        read_member(bundle_dir, "svm")


def test_a_bundle_without_its_ensemble_file_is_named(iris, tmp_path):
    _, _, features, _ = iris
    (tmp_path / "spec.json").write_text(json.dumps({"kind": "ensemble", "params": {}}))
    (tmp_path / "preprocess.json").write_text(json.dumps(features.to_dict()))
    with pytest.raises(FileNotFoundError, match=r"missing \['ensemble.json'\]"):
        load_bundle(tmp_path)
