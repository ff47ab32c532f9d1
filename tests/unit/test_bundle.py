"""Preparation and the bundle: transforms fitted on train only, identical at serving time."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch

from components.artifacts.bundle import load_bundle, save_bundle
from components.config import PipelineConfig
from components.data.bundled import bundled_frame
from components.data.preparation import FeatureState, prepare, raw_split
from components.data.schema import check_rows
from components.models import build
from components.training.checkpoint import save_checkpoint
from components.training.optim import make_optimizer
from tests.conftest import diabetes_regression, iris_config


@pytest.fixture(scope="module")
def prepared():
    config = PipelineConfig.model_validate(iris_config())
    bronze, _ = check_rows(bundled_frame("iris"), config.schema_, "iris.csv")
    frames, features = prepare(bronze, config.schema_, config.split, config.preprocessing)
    return config, bronze, frames, features


def test_splits_and_fit_on_train_only(prepared):
    config, bronze, frames, features = prepared
    assert {k: v.height for k, v in frames.items()} == {"train": 90, "val": 30, "test": 30}
    assert features.in_features == 4 and features.out_features == 3
    train_raw = raw_split(bronze, config.schema_, config.split, "train")
    stats = features.preprocessor.stats_["petal_length_cm"]
    assert stats["center"] == pytest.approx(train_raw["petal_length_cm"].mean())
    assert stats["center"] != pytest.approx(bronze["petal_length_cm"].mean(), abs=1e-6)
    # Standardised with train statistics: train columns have mean 0, the others need not.
    assert np.abs(frames["train"].select(features.columns).to_numpy().mean(axis=0)).max() < 1e-5
    assert sorted(frames["test"]["label"].unique().to_list()) == [0, 1, 2]  # stratified


def test_serving_path_reproduces_silver_exactly(prepared):
    config, bronze, frames, features = prepared
    restored = FeatureState.from_dict(json.loads(json.dumps(features.to_dict())))
    test_raw = raw_split(bronze, config.schema_, config.split, "test")
    served = restored.inputs(test_raw.drop("target"))
    assert np.array_equal(served, frames["test"].select(features.columns).to_numpy())


def _iris_mlp_checkpoint(tmp_path, config) -> tuple:
    """(a checkpoint folder, its model): an untrained MLP for iris's 4 features and 3 classes."""
    spec = {"kind": "mlp", "params": {"hidden": [8], "in_features": 4, "out_features": 3}}
    model = build(spec)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    save_checkpoint(ckpt, model=model, optimizers={"model": make_optimizer(model.parameters(), config.training.optimizer)},
                    schedulers={}, stopper=None, epoch=0, spec=spec, metrics={})
    return ckpt, model


def test_bundle_round_trip_and_predictions(prepared, tmp_path):
    config, bronze, frames, features = prepared
    ckpt, model = _iris_mlp_checkpoint(tmp_path, config)
    bundle_dir = save_bundle(tmp_path / "bundle", checkpoint_dir=ckpt, features=features,
                             metrics={"val_loss": 0.5}, lineage={"bronze_version": 3})
    assert sorted(p.name for p in bundle_dir.iterdir()) == [
        "lineage.json", "metrics.json", "model.safetensors", "preprocess.json", "spec.json"
    ]
    bundle = load_bundle(bundle_dir)
    rows = raw_split(bronze, config.schema_, config.split, "test").drop("target").head(4)
    answers = bundle.predict(rows)
    x = torch.from_numpy(features.inputs(rows))
    expected = torch.softmax(model.eval()(x), dim=1).argmax(dim=1).tolist()
    assert [a["label"] for a in answers] == expected
    assert all(set(a["probabilities"]) == {"0", "1", "2"} for a in answers)
    assert bundle.lineage["bronze_version"] == 3 and bundle.metrics == {"val_loss": 0.5}

    # Train/serve skew: preprocessing that is not the one the model was trained with is refused.
    import hashlib

    from components.artifacts.bundle import BundleSkewError

    assert bundle.lineage["preprocess_sha256"] == hashlib.sha256((bundle_dir / "preprocess.json").read_bytes()).hexdigest()
    state = json.loads((bundle_dir / "preprocess.json").read_text())
    state["preprocessor"]["stats"]["petal_length_cm"]["center"] += 1.0  # another training set's mean
    (bundle_dir / "preprocess.json").write_text(json.dumps(state))
    with pytest.raises(BundleSkewError, match="preprocess.json is not the preprocessing this model was trained with"):
        load_bundle(bundle_dir)


def test_loading_something_that_is_not_a_bundle_says_what_is_missing(tmp_path):
    (tmp_path / "spec.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"missing \['model.safetensors', 'preprocess.json'\]"):
        load_bundle(tmp_path)


def test_regression_bundle_predicts_numbers(tmp_path):
    config, frame, frames, features = diabetes_regression()
    assert features.labels is None and features.out_features == 1
    assert frames["train"]["label"].dtype == pl.Float32
    spec = {"kind": "linear_regression", "params": {"solver": "sgd", "in_features": 2, "out_features": 1}}
    model = build(spec)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    save_checkpoint(ckpt, model=model, optimizers={"model": make_optimizer(model.parameters(), config.training.optimizer)},
                    schedulers={}, stopper=None, epoch=0, spec=spec, metrics={})
    bundle = load_bundle(save_bundle(tmp_path / "b", checkpoint_dir=ckpt, features=features, metrics={}, lineage={}))
    values = bundle.predict(frame.drop("target").head(3))
    assert len(values) == 3 and all(isinstance(v, float) for v in values)


def test_the_drift_reference_is_raw_training_rows_with_the_models_answers(prepared, tmp_path):
    from components.artifacts.reference import REFERENCE_FILE, reference_frame, write_reference

    config, bronze, _, features = prepared
    ckpt, model = _iris_mlp_checkpoint(tmp_path, config)
    bundle = load_bundle(save_bundle(tmp_path / "b", checkpoint_dir=ckpt, features=features, metrics={}, lineage={}))
    train = raw_split(bronze, config.schema_, config.split, "train")
    names = bundle.features.schema.features  # the bundle keeps its columns sorted
    reference = reference_frame(bundle, train, max_rows=50, seed=1)
    assert reference.columns == [*names, "prediction", "probability"]
    assert reference.height == 50 and reference.select(names).is_duplicated().sum() <= 2
    # raw units, not the standardised inputs the model reads; answers as the endpoint gives them
    raw = train.select(names)
    assert reference.join(raw.unique(), on=names, how="anti").height == 0
    answers = bundle.predict(reference.select(names))
    assert reference["prediction"].to_list() == [a["label"] for a in answers]
    assert reference_frame(bundle, train, max_rows=500).height == train.height  # fewer rows than the cap: all
    assert pl.read_parquet(write_reference(tmp_path / "b", reference)).equals(reference)
    assert (tmp_path / "b" / REFERENCE_FILE).is_file()
    load_bundle(tmp_path / "b")  # a bundle with a reference still loads
