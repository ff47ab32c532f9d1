"""Batch scoring in process: each row answered as the endpoint would, other columns kept,
bad rows rejected with reasons, unusable input refused before any work."""

from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
import pytest

from components.artifacts.batch_scoring import REASON, check_scorable, score_rows, split_scored
from components.artifacts.bundle import load_bundle, save_bundle
from components.config import PipelineConfig
from components.data.bundled import bundled_frame
from components.data.preparation import prepare
from components.data.schema import SchemaError, check_rows
from components.models import build
from components.training.checkpoint import save_checkpoint
from components.training.optim import make_optimizer
from tests.conftest import iris_config

FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    config = PipelineConfig.model_validate(iris_config())
    bronze, _ = check_rows(bundled_frame("iris"), config.schema_, "iris.csv")
    _, features = prepare(bronze, config.schema_, config.split, config.preprocessing)
    spec = {"kind": "mlp", "params": {"hidden": [8], "in_features": 4, "out_features": 3}}
    model = build(spec)
    root = tmp_path_factory.mktemp("scoring")
    (root / "ckpt").mkdir()
    save_checkpoint(root / "ckpt", model=model, optimizers={"model": make_optimizer(model.parameters(), config.training.optimizer)},
                    schedulers={}, stopper=None, epoch=0, spec=spec, metrics={})
    return load_bundle(save_bundle(root / "bundle", checkpoint_dir=root / "ckpt", features=features,
                                   metrics={}, lineage={}))


def _text_rows() -> pl.DataFrame:
    """Six iris rows as a CSV would give them, with an id column, two bad rows and a
    missing value (imputed, as at serving)."""
    rows = bundled_frame("iris").head(6).select(FEATURES).with_columns(pl.all().cast(pl.String))
    rows = rows.with_columns(
        pl.when(pl.int_range(pl.len()) == 1).then(pl.lit("wide")).otherwise(pl.col("sepal_width_cm")).alias("sepal_width_cm"),
        pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("inf")).otherwise(pl.col("petal_width_cm")).alias("petal_width_cm"),
        pl.when(pl.int_range(pl.len()) == 5).then(pl.lit(None)).otherwise(pl.col("petal_length_cm")).alias("petal_length_cm"),
    )
    return rows.insert_column(0, pl.Series("id", [f"r{i}" for i in range(6)]))


def test_scores_every_good_row_as_the_endpoint_answers_it(bundle) -> None:
    scored, rejected = score_rows(bundle, _text_rows(), "in.csv")
    assert scored["id"].to_list() == ["r0", "r2", "r3", "r5"]  # other columns ride along, in order
    assert scored.columns == [*bundle.features.schema.features, "id", "prediction", "probability", "proba_0", "proba_1", "proba_2"]
    assert scored.schema["sepal_length_cm"] == pl.Float64  # the features as the model read them
    answers = bundle.predict(scored.select(FEATURES))
    assert scored["prediction"].to_list() == [a["label"] for a in answers]
    best = [max(a["probabilities"].values()) for a in answers]
    assert scored["probability"].to_list() == pytest.approx(best, abs=1e-6)
    assert scored.select("proba_0", "proba_1", "proba_2").sum_horizontal().to_list() == pytest.approx([1.0] * 4)

    assert rejected["_row"].to_list() == [1, 4]
    assert rejected["_reason"].to_list() == [
        "column 'sepal_width_cm': cannot parse 'wide' as float",
        "column 'petal_width_cm': cannot parse 'inf' as float (not a finite number)",
    ]
    assert json.loads(rejected["_raw"][0])["id"] == "r1"


def test_unscorable_input_is_refused_naming_what_is_wrong(bundle) -> None:
    with pytest.raises(SchemaError, match=r"in.csv: missing feature column\(s\) \['petal_width_cm'\] of the model"):
        score_rows(bundle, _text_rows().drop("petal_width_cm"), "in.csv")
    image_state = type("State", (), {"modality": "image"})()
    with pytest.raises(ValueError, match="batch scoring takes table models; this one reads images"):
        check_scorable(image_state, FEATURES, "in.csv")


def test_a_scored_batch_splits_into_answers_and_rejections() -> None:
    batch = pa.table({"x": [1.0, 2.0], "prediction": [0, None], REASON: [None, "bad x"], "_raw": [None, "{}"]})
    scored, rejected = split_scored(batch)
    assert scored.column_names == ["x", "prediction"] and scored.num_rows == 1
    assert rejected.to_pylist() == [{REASON: "bad x", "_raw": "{}"}]
