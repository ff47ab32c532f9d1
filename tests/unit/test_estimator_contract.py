"""Every estimator kind follows scikit-learn's contract: built from its params alone (no
sizes), it learns the features and the classes at `fit`, labels of any kind (here the iris
species names), predicts those labels, clones, and refuses to predict before `fit`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone, is_classifier
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError

from components.artifacts.ensemble_io import read_ensemble, write_ensemble
from components.artifacts.model_files import SPEC_FILE, read_model, write_model
from components.data.modalities import tabular_info
from components.models import build, is_estimator
from components.models.ensemble import Ensemble, encode_labels
from components.training.torch_estimator import TorchEstimator

# the minimal params of every estimator kind (small ensembles keep the suite fast)
KINDS = {
    "knn": {"k": 3},
    "knn k: auto": {"k": "auto"},
    "naive_bayes": {},
    "decision_tree": {},
    "random_forest": {"n_estimators": 10},
    "bagging": {"n_estimators": 5},
    "adaboost": {"n_estimators": 10},
    "gradient_boosting": {"n_estimators": 10},
    "logistic_regression": {"solver": "lbfgs", "max_iter": 500},
    "xgboost": {"n_estimators": 10},
    "ensemble voting": {"members": [{"kind": "knn", "params": {"k": 3}}, {"kind": "naive_bayes"},
                                    {"kind": "xgboost", "params": {"n_estimators": 5}}]},
    "ensemble hard voting": {"voting": "hard", "members": [{"kind": "knn", "params": {"k": 5}},
                                                           {"kind": "decision_tree", "params": {"max_depth": 3}}]},
    "ensemble weighted": {"method": "weighted", "folds": 3, "rounds": 5,
                          "members": [{"kind": "knn", "params": {"k": 5}}, {"kind": "naive_bayes"}]},
    "ensemble stacking": {"method": "stacking", "folds": 3,
                          "members": [{"kind": "naive_bayes"}, {"kind": "decision_tree", "params": {"max_depth": 2}}]},
}


def _spec(name: str) -> dict:
    return {"kind": name.split(" ")[0], "params": KINDS[name]}


@pytest.fixture(scope="module")
def species():
    data = load_iris()
    x = (data.data - data.data.mean(0)) / data.data.std(0)
    return x, data.target_names[data.target]  # (150, 4), ['setosa', ...]


def test_every_estimator_kind_is_covered():
    from components.models import kinds

    estimator_kinds = {k for k in kinds() if is_estimator({"kind": k})}
    assert estimator_kinds == {_spec(name)["kind"] for name in KINDS} | {"linear_regression"}


@pytest.mark.parametrize("name", list(KINDS))
def test_a_bare_spec_fits_string_labels_and_predicts_them(name, species):
    x, y = species
    model = build(_spec(name))  # no sizes, no task: classification by default
    assert is_classifier(model)
    assert model.fit(x, y) is model
    assert model.classes_.tolist() == ["setosa", "versicolor", "virginica"] and model.n_features_in_ == 4
    pred = model.predict(x)
    assert pred.shape == (150,) and set(pred.tolist()) <= set(y.tolist())
    assert np.mean(pred == y) > 0.85  # chance is 1/3
    proba = model.predict_proba(x)
    assert proba.shape == (150, 3) and np.allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.classes_[proba.argmax(axis=1)], pred)


@pytest.mark.parametrize("name", list(KINDS))
def test_clone_round_trips_the_params_and_predict_before_fit_is_refused(name, species):
    x, y = species
    model = build(_spec(name))
    params = model.get_params(deep=False)
    copy = clone(model)
    assert copy is not model and type(copy) is type(model)
    copied = copy.get_params(deep=False)
    assert copied.keys() == params.keys()
    for key, value in params.items():
        if hasattr(value, "get_params"):  # a nested estimator (bagging's base) is cloned, not shared
            assert type(copied[key]) is type(value) and copied[key] is not value
        else:
            assert copied[key] == value, key
    assert clone(model).set_params(**params).get_params(deep=False) == params
    with pytest.raises(NotFittedError):
        model.predict(x)
    model.fit(x, y)
    assert not hasattr(clone(model), "classes_")  # a clone is unfitted


def test_the_data_sets_the_task_and_a_regression_pipeline_gets_regressors(species):
    x, _ = species
    info = tabular_info("regression", 4, 1)
    target = x[:, 0] * 2.0 + x[:, 1]
    for name in ("knn", "decision_tree", "random_forest", "xgboost", "ensemble hard voting"):
        model = build(_spec(name), info)
        assert not is_classifier(model), name
        assert model.fit(x, target).predict(x).dtype.kind == "f"


# ---------------------------------------------------------------------------- the course's kNN


MOVIES = np.array([[100, 15], [20, 95], [90, 5], [10, 85]], dtype=float)  # T1..T4
GENRES = ["Action", "Comedy", "Action", "Comedy"]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_knn_movie_query_is_comedy_for_k_1_2_3(k):
    model = build({"kind": "knn", "params": {"k": k}}).fit(MOVIES, GENRES)
    assert model.predict([[50.0, 50.0]]).tolist() == ["Comedy"]


# ---------------------------------------------------------------------------- label encoding


def test_encode_labels_maps_to_the_given_order_and_names_unknown_labels():
    classes = np.array(["b", "a", "c"])
    assert encode_labels(classes, np.array(["a", "c", "b", "a"])).tolist() == [1, 2, 0, 1]
    with pytest.raises(ValueError, match=r"y has labels not in classes \['b', 'a', 'c'\]: \['z'\]"):
        encode_labels(classes, np.array(["a", "z"]))


def test_an_ensemble_with_classes_given_keeps_a_column_for_a_class_missing_from_y(species):
    x, y = species
    keep = y != "versicolor"
    model = Ensemble(members=[{"kind": "naive_bayes"}, {"kind": "knn", "params": {"k": 3}}],
                     classes=["setosa", "versicolor", "virginica"]).fit(x[keep], y[keep])
    proba = model.predict_proba(x)
    assert model.classes_.tolist() == ["setosa", "versicolor", "virginica"] and proba.shape == (150, 3)
    assert np.all(proba[:, 1] == 0.0) and set(model.predict(x).tolist()) <= {"setosa", "virginica"}
    with pytest.raises(ValueError, match=r"y has labels not in classes"):
        Ensemble(members=[{"kind": "naive_bayes"}], classes=["setosa", "virginica"]).fit(x, y)


def test_an_ensemble_needs_two_classes(species):
    x, y = species
    with pytest.raises(ValueError, match=r"needs at least 2 classes, got \['setosa'\]"):
        Ensemble(members=[{"kind": "naive_bayes"}]).fit(x[:10], y[:10])


def test_a_stored_ensemble_answers_with_its_labels_and_old_descriptions_with_indices(species, tmp_path):
    x, y = species
    ensemble = build(_spec("ensemble voting")).fit(x, y)
    write_ensemble(tmp_path, ensemble)
    back = read_ensemble(tmp_path)
    assert back.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    np.testing.assert_array_equal(back.predict(x), ensemble.predict(x))
    # an ensemble.json from before the labels were stored answers with the class indices
    path = tmp_path / "ensemble.json"
    description = json.loads(path.read_text())
    del description["classes"]
    path.write_text(json.dumps(description))
    indices = encode_labels(ensemble.classes_, ensemble.predict(x))
    np.testing.assert_array_equal(read_ensemble(tmp_path).predict(x), indices)


def test_estimator_specs_stored_with_sizes_still_load(species, tmp_path):
    """spec.json files written before estimators dropped their sizes name in/out_features."""
    x, y = species
    labels = encode_labels(np.unique(y), y)
    old = {"in_features": 4, "out_features": 3, "task": "classification"}
    for kind, params in (("random_forest", {"n_estimators": 5}), ("xgboost", {"n_estimators": 5})):
        model = build({"kind": kind, "params": params}).fit(x, labels)
        directory = write_model(tmp_path / kind, model, {"kind": kind, "params": {**params, **old}})
        np.testing.assert_array_equal(read_model(directory).predict(x), model.predict(x))
    # and a new spec may leave the task to its default
    model = build({"kind": "xgboost", "params": {"n_estimators": 3}}).fit(x, y)
    directory = write_model(tmp_path / "bare", model, {"kind": "xgboost", "params": {"n_estimators": 3}})
    assert json.loads((directory / SPEC_FILE).read_text())["params"] == {"n_estimators": 3}
    np.testing.assert_array_equal(read_model(directory).predict(x), model.predict(x))


# ---------------------------------------------------------------------------- torch behind the API


def test_torch_estimator_learns_string_classes_and_predicts_them(species):
    x, y = species
    model = TorchEstimator(model={"kind": "mlp", "params": {"hidden": [16]}},
                           training={"epochs": 30, "batch_size": 16, "optimizer": {"lr": 0.01}})
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.predict(x)
    model.fit(x, y)
    assert model.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert model.spec_["params"]["out_features"] == 3 and model.spec_["params"]["in_features"] == 4
    assert np.mean(model.predict(x) == y) > 0.85
    assert model.predict_proba(x).shape == (150, 3)


def test_torch_estimator_with_classes_given_keeps_every_output(species):
    x, y = species
    keep = y != "virginica"
    model = TorchEstimator(model={"kind": "mlp", "params": {"hidden": [4]}},
                           classes=["setosa", "versicolor", "virginica"], training={"epochs": 2}).fit(x[keep], y[keep])
    assert model.spec_["params"]["out_features"] == 3 and model.predict_proba(x).shape == (150, 3)


# ---------------------------------------------------------------------------- the pipeline's paths


@pytest.fixture(scope="module")
def silver_without_a_class(tmp_path_factory):
    """Iris in Delta tables as the pipeline writes them, versicolor (index 1) gone from train."""
    import polars as pl

    from components.config import PipelineConfig
    from components.data.bundled import bundled_frame
    from components.data.lake import Lake
    from components.data.streaming import FileRows, IngestStream
    from components.data.preparation import prepare
    from components.data.schema import check_rows
    from components.data.silver import write_silver
    from tests.conftest import iris_config

    config = PipelineConfig.model_validate(iris_config())
    lake = Lake(str(tmp_path_factory.mktemp("lake")))
    good, bad = check_rows(bundled_frame("iris"), config.schema_, "iris.csv")
    IngestStream(lake, "ingest").commit([FileRows("iris.csv", "0" * 64, good, bad)])
    frames, features = prepare(lake.read("bronze"), config.schema_, config.split, config.preprocessing)
    frames["train"] = frames["train"].filter(pl.col("label") != 1)
    snapshot = write_silver(lake, frames, features, lake.version("bronze"))
    return config, snapshot


def _pipeline_config(config, snapshot, model: dict) -> dict:
    from components.training.loop import loop_config

    return loop_config(model, config.training.model_dump(), snapshot.features.info)


def test_fit_estimator_takes_label_indices_and_scores_over_every_class(silver_without_a_class, tmp_path):
    from components.artifacts.checkpoint_files import read_state
    from components.training.estimator_fit import fit_estimator

    config, snapshot = silver_without_a_class
    run = _pipeline_config(config, snapshot, {"kind": "random_forest", "params": {"n_estimators": 5}})
    assert run["model"]["params"] == {"n_estimators": 5, "task": "classification"}  # no sizes
    # xgboost's Ray Train path gets the class count it must name before boosting
    assert _pipeline_config(config, snapshot, {"kind": "xgboost"})["model"]["params"] == {
        "task": "classification", "out_features": 3}
    tables = {s: snapshot.tables[s] for s in ("train", "val")}
    metrics = fit_estimator(run, tables, snapshot.features.columns, "int64", str(tmp_path))
    assert 0.5 <= metrics["val_accuracy"] < 1.0 and np.isfinite(metrics["val_loss"])  # versicolor is never right
    assert read_state(tmp_path)["spec"]["params"]["task"] == "classification"
    model = read_model(tmp_path, read_state(tmp_path)["spec"])
    assert model.classes_.tolist() == [0, 2]


def test_fit_ensemble_keeps_a_column_for_every_class_of_the_data(silver_without_a_class, tmp_path):
    from components.artifacts.ensemble_io import read_combiner, read_description
    from components.training.ensemble_fit import fit_ensemble

    config, snapshot = silver_without_a_class
    members = [{"kind": "naive_bayes"}, {"kind": "knn", "params": {"k": 3}}, {"kind": "mlp", "params": {"hidden": [4]}}]
    run = {**_pipeline_config(config, snapshot, {"kind": "ensemble", "params": {"members": members}}),
           "training": {"epochs": 2}}
    tables = {s: snapshot.tables[s] for s in ("train", "val")}
    outcomes = fit_ensemble(run, tables, snapshot.features.columns, "int64", str(tmp_path), parallel=False)
    assert [o.trial_id for o in outcomes] == ["ensemble", "ensemble-member-naive_bayes", "ensemble-member-knn",
                                             "ensemble-member-mlp"]
    description = read_description(tmp_path)
    assert description["classes"] == [0, 1, 2] and description["n_classes"] == 3 and description["out_features"] == 3
    ensemble = read_ensemble(tmp_path)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    outputs = ensemble.member_outputs(x)
    proba = ensemble.predict_proba(x)  # serving's columns are the label indices, the absent one too
    assert proba.shape == (5, 3) and all(o.shape == (5, 3) for o in outputs)
    assert np.all(outputs[0][:, 1] == 0.0) and np.all(outputs[1][:, 1] == 0.0)  # estimators never saw it
    np.testing.assert_allclose(read_combiner(tmp_path)(outputs), proba)
    # the torch member kept an output for the absent class
    assert description["members"][2]["spec"]["params"]["out_features"] == 3
