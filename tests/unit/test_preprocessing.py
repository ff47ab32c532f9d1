"""Preprocessor (impute, scale, one-hot) fitted on train only, and LabelIndex; JSON round trips."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from components.data.preprocessing import LabelIndex, Preprocessor


@pytest.fixture
def frame() -> pl.DataFrame:
    return pl.DataFrame({
        "a": [1.0, None, 3.0, 4.0, 100.0, 200.0],
        "b": [2, 2, 2, 2, 7, 9],
        "color": ["red", "blue", None, "red", "green", "green"],
        "_split": ["train", "train", "train", "train", "test", "test"],
    })


def _train(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col("_split") == "train")


def test_init_stores_params_unchanged() -> None:
    numeric = ["a"]
    pre = Preprocessor(numeric=numeric, categorical=[], impute="median", scale="minmax")
    assert pre.numeric is numeric
    assert pre.get_params() == {"numeric": ["a"], "categorical": [], "impute": "median", "scale": "minmax"}
    assert not hasattr(clone(pre), "stats_")


def test_stats_come_from_the_train_split_only(frame: pl.DataFrame) -> None:
    pre = Preprocessor(numeric=["a", "b"], categorical=["color"]).fit(_train(frame))
    a = pre.stats_["a"]
    # train a = [1, (8/3 imputed), 3, 4]: mean 8/3; the test rows (100, 200) play no part.
    assert a["fill"] == pytest.approx(8 / 3)
    assert a["center"] == pytest.approx(8 / 3)
    assert a["scale"] == pytest.approx(np.std([1.0, 8 / 3, 3.0, 4.0]))
    assert pre.stats_["b"] == {"fill": 2.0, "center": 2.0, "scale": 1.0}  # constant in train: std 0 -> 1
    assert pre.categories_ == {"color": ["blue", "red"]}  # "green" only occurs in test
    assert pre.category_fill_ == {"color": "red"}
    assert pre.feature_names_out_ == ["a", "b", "color=blue", "color=red"]


def test_transform_matches_sklearn_imputer_and_scaler(frame: pl.DataFrame) -> None:
    train = _train(frame)
    ours = Preprocessor(numeric=["a", "b"], categorical=[]).fit(train).transform(frame)
    ref = make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()).fit(train.select("a", "b").to_numpy())
    assert ours.dtype == np.float32 and ours.shape == (6, 2)
    np.testing.assert_allclose(ours, ref.transform(frame.select("a", "b").to_numpy()), rtol=1e-6)


def test_one_hot_with_unseen_and_missing_category(frame: pl.DataFrame) -> None:
    pre = Preprocessor(numeric=[], categorical=["color"]).fit(_train(frame))
    out = pre.transform(frame)
    assert out.tolist() == [[0, 1], [1, 0], [0, 1], [0, 1], [0, 0], [0, 0]]  # null -> "red", green unseen

    keep_null = Preprocessor(numeric=[], categorical=["color"], impute="none").fit(_train(frame))
    assert keep_null.transform(frame)[2].tolist() == [0, 0]


@pytest.mark.parametrize(
    ("impute", "scale", "fill", "center", "scale_value"),
    [
        ("median", "minmax", 3.0, 1.0, 3.0),
        ("most_frequent", "none", 1.0, 0.0, 1.0),
        ("mean", "minmax", 8 / 3, 1.0, 3.0),
    ],
)
def test_impute_and_scale_choices(
    frame: pl.DataFrame, impute: str, scale: str, fill: float, center: float, scale_value: float
) -> None:
    pre = Preprocessor(numeric=["a"], categorical=[], impute=impute, scale=scale).fit(_train(frame))
    assert pre.stats_["a"] == pytest.approx({"fill": fill, "center": center, "scale": scale_value})
    out = pre.transform(pl.DataFrame({"a": [None, 4.0]}))
    assert out[:, 0].tolist() == pytest.approx([(fill - center) / scale_value, (4.0 - center) / scale_value])


def test_impute_none_refuses_missing_values_at_transform(frame: pl.DataFrame) -> None:
    pre = Preprocessor(numeric=["a"], categorical=[], impute="none").fit(_train(frame))
    assert pre.stats_["a"]["fill"] is None
    assert pre.stats_["a"]["center"] == pytest.approx(8 / 3)  # mean of the observed 1, 3, 4
    assert pre.transform(pl.DataFrame({"a": [1.0]})).shape == (1, 1)
    with pytest.raises(ValueError, match=r"numeric column 'a' has 1 missing values and impute is 'none'"):
        pre.transform(frame)


def test_round_trip_through_json_is_bit_identical(frame: pl.DataFrame) -> None:
    pre = Preprocessor(numeric=["a", "b"], categorical=["color"], impute="median").fit(_train(frame))
    state = json.loads(json.dumps(pre.to_dict()))
    back = Preprocessor.from_dict(state)
    assert back.get_params() == pre.get_params()
    assert back.feature_names_out_ == pre.feature_names_out_
    assert pre.transform(frame).tobytes() == back.transform(frame).tobytes()


def test_not_fitted_error() -> None:
    pre = Preprocessor(numeric=["a"], categorical=[])
    for call in (lambda: pre.transform(pl.DataFrame({"a": [1.0]})), pre.to_dict):
        with pytest.raises(NotFittedError, match=r"Preprocessor is not fitted; call fit\(\) first"):
            call()


def test_bad_params_and_columns_are_named(frame: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"impute must be one of mean, median, most_frequent, none, got 'mode'"):
        Preprocessor(numeric=["a"], categorical=[], impute="mode").fit(frame)
    with pytest.raises(ValueError, match=r"fit needs column\(s\) \['zz'\]"):
        Preprocessor(numeric=["zz"], categorical=[]).fit(frame)
    pre = Preprocessor(numeric=["a"], categorical=[]).fit(frame)
    with pytest.raises(ValueError, match=r"transform needs column\(s\) \['a'\]"):
        pre.transform(frame.drop("a"))
    with pytest.raises(ValueError, match=r"preprocess state is missing key\(s\) \['stats'"):
        Preprocessor.from_dict({k: v for k, v in pre.to_dict().items() if k != "stats"})


def test_label_index_round_trip() -> None:
    labels = LabelIndex().fit(pl.Series([2, 0, 1, 2, 0]))
    assert labels.classes_ == [0, 1, 2]
    encoded = labels.encode(np.array([2, 2, 0, 1]))
    assert encoded.dtype == np.int64 and encoded.tolist() == [2, 2, 0, 1]
    assert labels.decode(encoded) == [2, 2, 0, 1]
    back = LabelIndex.from_dict(json.loads(json.dumps(labels.to_dict())))
    assert back.classes_ == [0, 1, 2] and back.encode([1]).tolist() == [1]

    names = LabelIndex().fit(["malignant", "benign", "benign"])
    assert names.classes_ == ["benign", "malignant"] and names.encode(["malignant"]).tolist() == [1]


def test_label_index_errors() -> None:
    labels = LabelIndex().fit([0, 1])
    with pytest.raises(ValueError, match=r"unknown label\(s\) 7; known classes are \[0, 1\]"):
        labels.encode([0, 7])
    with pytest.raises(ValueError, match=r"indices must be between 0 and 1, got \[2\]"):
        labels.decode([0, 2])
    with pytest.raises(NotFittedError, match="LabelIndex is not fitted"):
        LabelIndex().encode([0])
    with pytest.raises(ValueError, match="labels must not be missing"):
        LabelIndex().fit([0, None])
