"""The `xgboost` kind: config checks, the scikit-learn wrapper and the xgboost.train params
agree, XGBoost-format save/load without unpickling, bundles, per-round metric names."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import ray.train
import xgboost
from xgboost import XGBClassifier, XGBRegressor

from components.artifacts.bundle import load_bundle, save_bundle
from components.artifacts.checkpoint_files import read_state
from components.artifacts.xgboost_io import (
    XGBOOST_FILE,
    as_estimator,
    load_xgboost,
    save_xgboost,
    write_xgboost_checkpoint,
)
from components.evaluation.scoring import validation_scores
from components.models import build, family, is_estimator
from components.models.boosting import XGBoostClassifier, config_from_spec, train_params
from components.models.outputs import predict_arrays
from components.training.xgboost_fit import RoundReports, round_metrics
from tests.conftest import SPECIES, diabetes_regression, iris_species


def _spec(task: str = "classification", out_features: int = 3, **params) -> dict:
    return {"kind": "xgboost", "params": {"task": task, "out_features": out_features, **params}}


@pytest.fixture(scope="module")
def iris():
    _, _, frames, features, rows = iris_species()
    x = {s: frames[s].select(features.columns).to_numpy().astype(np.float32) for s in ("train", "val")}
    y = {s: frames[s]["label"].to_numpy() for s in ("train", "val")}
    return features, rows, x, y


def _boost(spec: dict, x: np.ndarray, y: np.ndarray) -> xgboost.Booster:
    config = config_from_spec(spec)
    return xgboost.train(train_params(config), xgboost.DMatrix(x, label=y), num_boost_round=config.n_estimators)


# ---------------------------------------------------------------------------- config


def test_xgboost_is_its_own_estimator_family():
    assert family(_spec()) == "xgboost" and is_estimator(_spec())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_estimators": 0}, r"n_estimators must be >= 1, got 0"),
        ({"max_depth": 0}, r"max_depth must be >= 1, got 0"),
        ({"learning_rate": 0.0}, r"learning_rate must be > 0, got 0.0"),
        ({"subsample": 1.5}, r"subsample must be in \(0, 1\], got 1.5"),
        ({"colsample_bytree": 0.0}, r"colsample_bytree must be in \(0, 1\], got 0.0"),
        ({"reg_lambda": -1.0}, r"reg_lambda must be >= 0, got -1.0"),
        ({"max_bin": 1}, r"max_bin must be >= 2, got 1"),
        ({"tree_method": "gpu_hist"}, r"param 'tree_method' must be one of \['hist', 'approx', 'exact'\]"),
        ({"n_estimators": 10.5}, r"param 'n_estimators' must be int, got 10.5"),
        ({"eta": 0.1}, r"unknown param\(s\) \['eta'\]"),
    ],
)
def test_bad_params_are_named(params, message):
    with pytest.raises(ValueError, match=rf"model 'xgboost': {message}"):
        build(_spec(**params))


def test_regression_predicts_one_label():
    with pytest.raises(ValueError, match=r"out_features must be 1, got 2"):
        build(_spec("regression", out_features=2))


def test_config_from_spec_refuses_another_kind():
    with pytest.raises(ValueError, match=r"must be of kind 'xgboost', got 'knn'"):
        config_from_spec({"kind": "knn", "params": {}})


# ---------------------------------------------------------------------------- build and params


def test_build_gives_the_scikit_learn_wrapper_with_the_config():
    model = build(_spec(n_estimators=7, max_depth=3, learning_rate=0.1, subsample=0.8, colsample_bytree=0.5,
                        min_child_weight=2.0, reg_lambda=0.5, reg_alpha=0.1, random_state=3))
    assert type(model) is XGBoostClassifier
    assert {k: model.get_params()[k] for k in ("n_estimators", "max_depth", "learning_rate", "subsample",
                                                "colsample_bytree", "min_child_weight", "reg_lambda",
                                                "reg_alpha", "tree_method", "max_bin", "random_state")} == {
        "n_estimators": 7, "max_depth": 3, "learning_rate": 0.1, "subsample": 0.8, "colsample_bytree": 0.5,
        "min_child_weight": 2.0, "reg_lambda": 0.5, "reg_alpha": 0.1, "tree_method": "hist", "max_bin": 256,
        "random_state": 3,
    }
    assert type(build(_spec("regression", out_features=1))) is XGBRegressor


@pytest.mark.parametrize(
    ("task", "out_features", "expected"),
    [
        ("classification", 1, {"objective": "binary:logistic", "eval_metric": ["logloss", "error"]}),
        ("classification", 2, {"objective": "binary:logistic", "eval_metric": ["logloss", "error"]}),
        ("classification", 3, {"objective": "multi:softprob", "num_class": 3, "eval_metric": ["mlogloss", "merror"]}),
        ("regression", 1, {"objective": "reg:squarederror", "eval_metric": ["rmse"]}),
    ],
)
def test_train_params_pick_the_objective_by_task_and_outputs(task, out_features, expected):
    params = train_params(config_from_spec(_spec(task, out_features, learning_rate=0.05, reg_lambda=2.0)))
    assert {k: params[k] for k in expected} == expected
    assert "num_class" in params if out_features >= 3 else "num_class" not in params
    assert params["eta"] == 0.05 and params["lambda"] == 2.0 and params["tree_method"] == "hist"
    assert params["seed"] == 0


def test_config_from_spec_merges_params_over_the_spec():
    config = config_from_spec({"kind": "xgboost", "params": {"n_estimators": 5}}, task="regression", out_features=1)
    assert (config.task, config.n_estimators, config.out_features) == ("regression", 5, 1)


def test_the_wrapper_and_xgboost_train_fit_the_same_model(iris):
    # one config, two ways to fit: the Ray path's xgboost.train params must mean what build() means
    _, _, x, y = iris
    spec = _spec(n_estimators=8, max_depth=3, learning_rate=0.2, subsample=0.7, colsample_bytree=0.75)
    wrapper = build(spec).fit(x["train"], y["train"])
    booster = _boost(spec, x["train"], y["train"])
    assert np.array_equal(wrapper.predict_proba(x["val"]), booster.predict(xgboost.DMatrix(x["val"])))


def test_the_wrapper_and_xgboost_train_agree_for_regression():
    _, _, frames, features = diabetes_regression()
    x = frames["train"].select(features.columns).to_numpy().astype(np.float32)
    y = frames["train"]["label"].to_numpy()
    spec = {"kind": "xgboost", "params": {"task": "regression", "out_features": 1,
                                          "n_estimators": 6, "reg_alpha": 0.5}}
    wrapper = build(spec).fit(x, y)
    assert np.array_equal(wrapper.predict(x), _boost(spec, x, y).predict(xgboost.DMatrix(x)))


def test_xgboost_train_needs_the_class_count_the_wrapper_learns_it():
    with pytest.raises(ValueError, match=r"xgboost.train needs param 'out_features' \(the class count\)"):
        train_params(config_from_spec({"kind": "xgboost", "params": {}}))
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    model = build({"kind": "xgboost", "params": {"n_estimators": 2}}).fit(x, ["b", "a", "c", "a", "b", "c"])
    assert model.classes_.tolist() == ["a", "b", "c"] and model.n_classes_ == 3 and model.n_features_in_ == 2
    assert model.model_.get_params()["eval_metric"] == ["mlogloss", "merror"]
    binary = build({"kind": "xgboost", "params": {"n_estimators": 2}}).fit(x, ["no", "yes"] * 3)
    assert binary.model_.get_params()["eval_metric"] == ["logloss", "error"]


def test_string_labels_are_encoded_for_xgboost_and_decoded_back(iris):
    _, _, x, y = iris
    names = np.array(SPECIES)
    wrapper = build(_spec(n_estimators=8, max_depth=3)).fit(x["train"], names[y["train"]])
    on_indices = build(_spec(n_estimators=8, max_depth=3)).fit(x["train"], y["train"])
    assert wrapper.classes_.tolist() == SPECIES
    np.testing.assert_array_equal(wrapper.predict(x["val"]), names[on_indices.predict(x["val"])])
    np.testing.assert_array_equal(wrapper.predict_proba(x["val"]), on_indices.predict_proba(x["val"]))
    with pytest.raises(ValueError, match=r"needs at least 2 classes in y, got \['setosa'\]"):
        build(_spec()).fit(x["train"][:3], ["setosa"] * 3)


# ---------------------------------------------------------------------------- save and load


@pytest.mark.parametrize("suffix", [".ubj", ".json"])
def test_save_load_round_trip_keeps_predictions_and_classes(iris, tmp_path, monkeypatch, suffix):
    _, _, x, y = iris
    booster = _boost(_spec(n_estimators=5), x["train"], y["train"])
    path = save_xgboost(booster, tmp_path / f"model{suffix}")

    def refuse(*args, **kwargs):
        raise AssertionError("loading an XGBoost model must not unpickle")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    model = load_xgboost(path, "classification")
    assert type(model) is XGBoostClassifier and type(model.model_) is XGBClassifier
    assert list(model.classes_) == [0, 1, 2] and model.n_classes_ == 3
    assert np.array_equal(model.predict_proba(x["val"]), booster.predict(xgboost.DMatrix(x["val"])))
    # what scoring and Bundle.predict call on any estimator
    pred, proba = predict_arrays(model, x["val"], "classification", 3)
    assert np.array_equal(pred, proba.argmax(axis=1)) and proba.shape == (len(x["val"]), 3)


def test_a_fitted_wrapper_saves_too_and_binary_classes_come_back(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    spec = {"kind": "xgboost", "params": {"task": "classification", "out_features": 1,
                                          "n_estimators": 4}}
    wrapper = build(spec).fit(x, y)
    model = load_xgboost(save_xgboost(wrapper, tmp_path / XGBOOST_FILE), "classification")
    assert list(model.classes_) == [0, 1]
    assert np.array_equal(model.predict_proba(x), wrapper.predict_proba(x))
    assert validation_scores(model, x, y, "classification", 1) == validation_scores(wrapper, x, y, "classification", 1)


def test_string_classes_are_stored_in_the_model_file_and_come_back(iris, tmp_path, monkeypatch):
    _, _, x, y = iris
    names = np.array(SPECIES)
    wrapper = build(_spec(n_estimators=4)).fit(x["train"], names[y["train"]])
    path = save_xgboost(wrapper, tmp_path / XGBOOST_FILE)
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("loading must not unpickle"))
    model = load_xgboost(path, "classification")
    assert model.classes_.tolist() == SPECIES
    np.testing.assert_array_equal(model.predict(x["val"]), wrapper.predict(x["val"]))
    np.testing.assert_allclose(model.predict_proba(x["val"]), wrapper.predict_proba(x["val"]))


def test_a_pickle_in_place_of_the_model_is_refused_not_run(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (marker.write_text, ("unpickled",))

    path = tmp_path / XGBOOST_FILE
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ValueError, match=r"model.ubj: not a model in XGBoost's JSON/UBJSON format"):
        load_xgboost(path, "classification")
    assert not marker.exists()


def test_as_estimator_wraps_a_booster_for_scoring(iris):
    _, _, x, y = iris
    booster = _boost(_spec(n_estimators=5), x["train"], y["train"])
    scores = validation_scores(as_estimator(booster, "classification"), x["val"], y["val"], "classification", 3)
    assert scores["val_rows"] == len(y["val"]) and scores["val_accuracy"] >= 0.85 and scores["val_loss"] > 0
    with pytest.raises(ValueError, match=r"task must be 'classification' or 'regression', got 'ranking'"):
        as_estimator(booster, "ranking")


# ---------------------------------------------------------------------------- checkpoint and bundle


def test_checkpoint_layout_is_what_read_state_expects(iris, tmp_path):
    _, _, x, y = iris
    spec = _spec(n_estimators=3)
    ckpt = write_xgboost_checkpoint(tmp_path / "c", _boost(spec, x["train"], y["train"]), spec,
                                    {"val_accuracy": 0.9}, epoch=2)
    assert sorted(p.name for p in ckpt.iterdir()) == ["model.ubj", "state.json"]
    assert read_state(ckpt) == {"epoch": 2, "global_step": 0, "spec": spec, "metrics": {"val_accuracy": 0.9},
                                "best_metrics": {}, "early_stopping": None}


def test_bundle_round_trip_answers_with_the_class_labels(iris, tmp_path):
    features, rows, x, y = iris
    spec = _spec(n_estimators=10)
    booster = _boost(spec, x["train"], y["train"])
    ckpt = write_xgboost_checkpoint(tmp_path / "ckpt", booster, spec, {"val_accuracy": 0.9}, epoch=9)
    bundle_dir = save_bundle(tmp_path / "bundle", checkpoint_dir=ckpt, features=features,
                             metrics={"test_accuracy": 0.95}, lineage={"bronze_version": 1})
    assert sorted(p.name for p in bundle_dir.iterdir()) == [
        "lineage.json", "metrics.json", "model.ubj", "preprocess.json", "spec.json"
    ]
    assert json.loads((bundle_dir / "spec.json").read_text()) == spec
    bundle = load_bundle(bundle_dir)
    assert bundle.is_estimator and type(bundle.model) is XGBoostClassifier
    answers = bundle.predict(rows)
    proba = booster.predict(xgboost.DMatrix(features.inputs(rows)))  # (N, 3)
    assert [a["label"] for a in answers] == [SPECIES[i] for i in proba.argmax(axis=1)]
    assert [[a["probabilities"][s] for s in SPECIES] for a in answers] == pytest.approx(proba, abs=1e-6)


def test_regression_bundle_predicts_floats(tmp_path):
    _, frame, frames, features = diabetes_regression()
    x = frames["train"].select(features.columns).to_numpy().astype(np.float32)
    spec = {"kind": "xgboost", "params": {"task": "regression", "out_features": 1,
                                          "n_estimators": 5}}
    booster = _boost(spec, x, frames["train"]["label"].to_numpy())
    ckpt = write_xgboost_checkpoint(tmp_path / "ckpt", booster, spec, {}, epoch=4)
    bundle = load_bundle(save_bundle(tmp_path / "b", checkpoint_dir=ckpt, features=features, metrics={},
                                     lineage={}))
    rows = frame.drop("target").head(5)
    values = bundle.predict(rows)
    assert all(isinstance(v, float) for v in values)
    assert values == pytest.approx(booster.predict(xgboost.DMatrix(features.inputs(rows))).tolist())


def test_loading_an_xgboost_bundle_without_its_model_file_names_it(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps(_spec()))
    with pytest.raises(FileNotFoundError, match=r"missing \['model.ubj', 'preprocess.json'\]"):
        load_bundle(tmp_path)


# ---------------------------------------------------------------------------- per-round metrics


def test_round_metrics_use_the_loop_names():
    log = {"train": {"mlogloss": [0.9, 0.5], "merror": [0.2, 0.1]}, "val": {"mlogloss": [1.0, 0.6], "merror": [0.3, 0.25]}}
    assert round_metrics(log, "classification") == {"train_loss": 0.5, "val_loss": 0.6, "val_accuracy": 0.75}
    log = {"train": {"rmse": [2.0, 1.5]}, "val": {"rmse": [3.0, 2.0]}}
    assert round_metrics(log, "regression") == {"train_loss": 2.25, "val_loss": 4.0, "val_rmse": 2.0}


@pytest.mark.parametrize(("interval", "reported"), [(0.0, [0, 1, 2]), (3600.0, [])])
def test_rounds_are_reported_no_faster_than_the_interval_and_all_kept(iris, monkeypatch, interval, reported):
    _, _, x, y = iris
    calls = []
    monkeypatch.setattr(ray.train, "report", lambda metrics, **kwargs: calls.append(metrics))
    config = config_from_spec(_spec(n_estimators=4))
    dtrain, dval = xgboost.DMatrix(x["train"], label=y["train"]), xgboost.DMatrix(x["val"], label=y["val"])
    callback = RoundReports("classification", last_round=3, min_interval_s=interval)
    xgboost.train(train_params(config), dtrain, 4, evals=[(dtrain, "train"), (dval, "val")],
                  callbacks=[callback], verbose_eval=False)
    assert [m["epoch"] for m in callback.history] == [0, 1, 2, 3]  # the last round is the caller's to report
    assert [m["epoch"] for m in calls] == reported
    assert set(callback.history[-1]) == {"epoch", "train_loss", "val_loss", "val_accuracy"}
