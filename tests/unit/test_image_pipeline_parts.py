"""Image preparation (processor fitted on train only), its saved state, and request checks."""

from __future__ import annotations

import base64
import io

import numpy as np
import polars as pl
import pytest
from PIL import Image

from components.config import ImageConfig, SplitConfig
from components.data.fitted_state import batch_decoder, state_from_dict
from components.data.image_preparation import ImageState, prepare_images, raw_images
from components.data.image_requests import images_from_instances, pairs_from_instances
from components.data.images import ImageSpec, encode_png
from components.data.schema import InvalidInput

SPLIT = SplitConfig(ratios={"train": 0.5, "val": 0.25, "test": 0.25}, stratify=True, seed=0)


def _bronze(n: int = 40) -> pl.DataFrame:
    """n 4x4 grey images: class "a" dark (value i), class "b" bright (200 + i)."""
    labels = ["a" if i % 2 == 0 else "b" for i in range(n)]
    values = [i if label == "a" else 200 + i for i, label in enumerate(labels)]
    images = [encode_png(np.full((4, 4), v, dtype=np.uint8)) for v in values]
    return pl.DataFrame({
        "image": images, "label": labels, "height": [4] * n, "width": [4] * n, "channels": [1] * n,
        "_source_file": ["set.npz"] * n, "_row": list(range(n)),
    })


def test_the_processor_is_fitted_on_the_train_split_only():
    bronze = _bronze()
    frames, state = prepare_images(bronze, SPLIT, ImageConfig(size=[2, 2]))
    train = raw_images(bronze, SPLIT, "train")
    assert frames["train"].height == train.height == 20 and frames["test"].height == 10
    values = np.array([np.asarray(Image.open(io.BytesIO(b))).mean() for b in train["image"]]) / 255.0
    assert state.processor.mean_ == pytest.approx([values.mean()])
    assert state.processor.std_ == pytest.approx([values.std()], rel=1e-6)
    all_values = np.array([np.asarray(Image.open(io.BytesIO(b))).mean() for b in bronze["image"]]) / 255.0
    assert state.processor.mean_ != pytest.approx([all_values.mean()])  # would be, fitted on every split
    # silver holds each image decoded and resized once: (C, H, W) uint8 bytes
    assert frames["train"].schema == {"pixels": pl.Binary, "label": pl.Int64}
    stored = np.stack([np.frombuffer(b, dtype=np.uint8) for b in frames["train"]["pixels"]])
    np.testing.assert_array_equal(stored, np.repeat(values[:, None] * 255.0, 4, axis=1).round().astype(np.uint8))
    assert state.info.input_shape == (1, 2, 2) and state.info.classes == ("a", "b") and state.out_features == 1


def test_the_state_round_trips_and_decodes_batches_like_serving():
    bronze = _bronze()
    frames, state = prepare_images(bronze, SPLIT, ImageConfig(max_bytes=5000))
    again = state_from_dict(state.to_dict())
    assert isinstance(again, ImageState) and again.spec == ImageSpec(max_bytes=5000)
    batch = {"pixels": np.array(frames["val"]["pixels"].to_list(), dtype=object)}
    decoded = batch_decoder(again)(batch)  # what Ray Data's read tasks run
    encoded = raw_images(bronze, SPLIT, "val")["image"].to_list()
    np.testing.assert_array_equal(decoded, state.inputs(encoded))  # what the endpoint runs on a PNG
    arrays = [np.asarray(Image.open(io.BytesIO(b))) for b in encoded]
    np.testing.assert_array_equal(decoded, state.inputs(arrays))  # and on pixel arrays
    assert decoded.shape == (10, 1, 4, 4) and decoded.dtype == np.float32
    # a snapshot written before silver held pixels keeps reading its encoded images
    older = state_from_dict({k: v for k, v in state.to_dict().items() if k != "silver"})
    assert older.columns == ["image"]
    np.testing.assert_array_equal(batch_decoder(older)({"image": np.array(encoded, dtype=object)}), decoded)
    answers = state.answers(np.array([[0.9, 0.1], [0.2, 0.8]]))
    assert [a["label"] for a in answers] == ["a", "b"]


def test_request_images_are_checked_and_named():
    spec = ImageSpec(max_bytes=200)
    png = encode_png(np.zeros((4, 4), dtype=np.uint8))
    good = images_from_instances([{"b64": base64.b64encode(png).decode()}, [[0, 255], [1, 2]]], spec, 4)
    assert [g.shape for g in good] == [(4, 4, 1), (2, 2, 1)]
    cases = [
        ([{"b64": "@@"}], "instances[0].b64", "not valid base64"),
        ([{"image": "x"}], "instances[0]", "exactly one key 'b64'"),
        ([[[0, 1], [2]]], "instances[0]", "rectangular"),
        ([[[-1]]], "instances[0]", "0 to 255"),
        ([{"b64": base64.b64encode(b"x" * 400).decode()}], "instances[0].b64", "larger than 200 bytes"),
        ([], "instances", "must not be empty"),
        ([[[0]]] * 5, "instances", "at most 4"),
    ]
    for instances, field, says in cases:
        with pytest.raises(InvalidInput) as info:
            images_from_instances(instances, spec, 4)
        assert info.value.field == field and says in info.value.message


def test_a_class_split_indexes_held_out_labels_and_fits_pixels_on_train_only():
    bronze = _bronze(40).with_columns(pl.Series("label", ["a", "b", "c", "d"] * 10))
    split = SplitConfig(method="classes", held_out=["c", "d"], ratios={"train": 0.5, "val": 0.25, "test": 0.25})
    frames, state = prepare_images(bronze, split, ImageConfig())
    assert state.labels.classes_ == ["a", "b", "c", "d"]  # test pairs need indices for c and d
    assert sorted(set(frames["train"]["label"])) == [0, 1] and sorted(set(frames["test"]["label"])) == [2, 3]
    train = raw_images(bronze, split, "train")
    values = np.array([np.asarray(Image.open(io.BytesIO(b))).mean() for b in train["image"]]) / 255.0
    assert train.height == 20 and state.processor.mean_ == pytest.approx([values.mean()])


def test_request_pairs_are_checked_and_named():
    spec = ImageSpec(max_bytes=200)
    png = {"b64": base64.b64encode(encode_png(np.zeros((4, 4), dtype=np.uint8))).decode()}
    pairs = pairs_from_instances([{"a": png, "b": [[0, 255], [1, 2]]}], spec, 4)
    assert [(a.shape, b.shape) for a, b in pairs] == [((4, 4, 1), (2, 2, 1))]
    cases = [
        ([png], "instances[0]", "a pair is"),
        ([{"a": png}], "instances[0]", "got ['a']"),
        ([{"a": png, "b": png}, {"a": png, "b": {"b64": "@@"}}], "instances[1].b.b64", "not valid base64"),
        ([{"a": [[-1]], "b": png}], "instances[0].a", "0 to 255"),
        ([], "instances", "must not be empty"),
    ]
    for instances, field, says in cases:
        with pytest.raises(InvalidInput) as info:
            pairs_from_instances(instances, spec, 4)
        assert info.value.field == field and says in info.value.message
