"""ImageProcessor: statistics from the training images only, resize modes, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from components.data.images import InvalidImage, encode_png
from components.data.modalities.image import ImageProcessor

# Two 2x2 grey training images and one test image far from both.
TRAIN = [np.array([[0, 51], [102, 153]], np.uint8), np.array([[255, 255], [0, 10]], np.uint8)]
TEST = np.array([[200, 200], [200, 200]], np.uint8)


def _png(a: np.ndarray) -> bytes:
    return encode_png(a)


def test_init_stores_params_unchanged() -> None:
    size = (4, 4)
    proc = ImageProcessor(size=size, resize="pad", channels=3, normalize=False)
    assert proc.size is size
    assert proc.get_params() == {"size": (4, 4), "resize": "pad", "channels": 3, "normalize": False}
    assert not hasattr(clone(proc.fit([_png(TRAIN[0])])), "mean_")


def test_mean_and_std_come_from_the_training_images_only() -> None:
    proc = ImageProcessor().fit([_png(a) for a in TRAIN])
    stacked = np.stack(TRAIN).astype(np.float64) / 255.0
    assert proc.mean_ == [pytest.approx(stacked.mean(), rel=1e-12)]
    assert proc.std_ == [pytest.approx(stacked.std(), rel=1e-12)]
    assert proc.size_ == (2, 2) and proc.channels_ == 1 and proc.info_shape == (1, 2, 2)
    # the test image plays no part: fitting on train+test changes the statistics
    assert ImageProcessor().fit([_png(a) for a in [*TRAIN, TEST]]).mean_ != proc.mean_


def test_transform_is_the_hand_formula() -> None:
    proc = ImageProcessor().fit([_png(a) for a in TRAIN])
    out = proc.transform([_png(TEST), _png(TRAIN[0])])
    assert out.shape == (2, 1, 2, 2) and out.dtype == np.float32
    mean, std = np.float32(proc.mean_[0]), np.float32(proc.std_[0])
    expected = (np.stack([TEST, TRAIN[0]])[:, None].astype(np.float32) / np.float32(255) - mean) / std
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    raw = ImageProcessor(normalize=False).fit([_png(a) for a in TRAIN]).transform([_png(TEST)])
    np.testing.assert_allclose(raw, TEST[None, None] / 255.0, rtol=1e-6)


def test_rgb_statistics_are_per_channel() -> None:
    rng = np.random.default_rng(0)
    train = [rng.integers(0, 256, (3, 5, 3), dtype=np.uint8) for _ in range(2)]
    train[1][:, :, 2] = 7  # channel statistics differ
    proc = ImageProcessor().fit([_png(a) for a in train])
    stacked = np.stack(train).astype(np.float64) / 255.0  # (N, H, W, C)
    np.testing.assert_allclose(proc.mean_, stacked.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(proc.std_, stacked.std(axis=(0, 1, 2)), rtol=1e-12)
    assert proc.info_shape == (3, 3, 5)


def test_constant_images_get_the_std_floor() -> None:
    proc = ImageProcessor().fit([_png(np.full((2, 2), 9, np.uint8))])
    assert proc.std_ == [1e-6]
    assert np.isfinite(proc.transform([_png(TEST)])).all()


def test_resize_modes() -> None:
    wide = np.zeros((4, 8), np.uint8)
    wide[:, 2:6] = 200  # a bright middle band
    resized = ImageProcessor(size=(6, 3), normalize=False).fit([_png(wide)])
    assert resized.transform([_png(wide)]).shape == (1, 1, 6, 3)
    assert resized.info_shape == (1, 6, 3)

    crop = ImageProcessor(size=(4, 4), resize="center_crop", normalize=False).fit([_png(wide)])
    np.testing.assert_array_equal(crop.transform([_png(wide)])[0, 0] * 255, np.full((4, 4), 200.0))  # the middle

    small = np.full((2, 2), 255, np.uint8)
    pad = ImageProcessor(size=(4, 6), resize="pad", normalize=False).fit([_png(small)])
    out = pad.transform([_png(small)])[0, 0]
    expected = np.zeros((4, 6))
    expected[1:3, 2:4] = 1.0
    np.testing.assert_array_equal(out, expected)  # padded, not scaled
    big = np.full((8, 4), 255, np.uint8)
    out = pad.transform([_png(big)])[0, 0]  # shrunk to 4x2 (aspect kept), then padded
    assert out.shape == (4, 6) and out[:, 2:4].min() == 1.0 and out[:, :2].max() == 0.0 and out[:, 4:].max() == 0.0


def test_size_none_requires_the_training_size() -> None:
    proc = ImageProcessor()
    with pytest.raises(ValueError, match=r"images\[1\] is 3x2, expected 2x2"):
        proc.fit([_png(TRAIN[0]), _png(np.zeros((3, 2), np.uint8))])
    proc.fit([_png(a) for a in TRAIN])
    with pytest.raises(ValueError, match=r"images\[0\] is 3x2, expected 2x2 \(size=None keeps"):
        proc.transform([_png(np.zeros((3, 2), np.uint8))])


def test_channel_conversion() -> None:
    gray, rgb = TRAIN[0], np.stack([TRAIN[0], TRAIN[1], TEST], axis=-1)
    to_rgb = ImageProcessor(channels=3, normalize=False).fit([_png(gray)])
    out = to_rgb.transform([_png(gray)])
    assert out.shape == (1, 3, 2, 2)
    for c in range(3):
        np.testing.assert_allclose(out[0, c], gray / 255.0, rtol=1e-6)
    to_gray = ImageProcessor(channels=1, normalize=False).fit([_png(rgb)])
    wide = rgb.astype(np.int64)
    luma = (wide[..., 0] * 299 + wide[..., 1] * 587 + wide[..., 2] * 114) / 1000  # Pillow's L conversion
    np.testing.assert_allclose(to_gray.transform([_png(rgb)])[0, 0] * 255, luma, atol=1.0)
    # channels=None: one RGB image makes the set RGB
    assert ImageProcessor().fit([_png(gray), _png(rgb)]).channels_ == 3


def test_to_dict_round_trip_gives_identical_output() -> None:
    rng = np.random.default_rng(1)
    train = [rng.integers(0, 256, (5, 7, 3), dtype=np.uint8) for _ in range(3)]
    proc = ImageProcessor(size=(4, 4), resize="center_crop").fit([_png(a) for a in train])
    state = json.loads(json.dumps(proc.to_dict()))
    again = ImageProcessor.from_dict(state)
    batch = [_png(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)) for _ in range(2)]
    assert np.array_equal(proc.transform(batch), again.transform(batch))
    assert again.to_dict() == proc.to_dict() and again.get_params() == proc.get_params()
    with pytest.raises(ValueError, match=r"missing key\(s\) \['mean_'\]"):
        ImageProcessor.from_dict({k: v for k, v in state.items() if k != "mean_"})


def test_transform_arrays_matches_encoded_input() -> None:
    proc = ImageProcessor(size=(3, 3)).fit([_png(a) for a in TRAIN])
    np.testing.assert_array_equal(proc.transform_arrays([TEST.tolist(), TRAIN[1]]),
                                  proc.transform([_png(TEST), _png(TRAIN[1])]))
    with pytest.raises(ValueError, match=r"images\[1\] must hold whole numbers 0..255, got values from 0 to 300"):
        proc.transform_arrays([TEST, [[0, 300], [1, 2]]])
    with pytest.raises(ValueError, match=r"images\[0\] must have shape \(H, W\), \(H, W, 1\) or \(H, W, 3\)"):
        proc.transform_arrays([[1, 2, 3]])


def test_unfitted_and_bad_input_errors() -> None:
    proc = ImageProcessor()
    for call in (lambda: proc.transform([_png(TEST)]), lambda: proc.info_shape, proc.to_dict):
        with pytest.raises(NotFittedError, match="ImageProcessor is not fitted"):
            call()
    with pytest.raises(ValueError, match="resize must be one of resize, center_crop, pad, got 'zoom'"):
        ImageProcessor(resize="zoom").fit([_png(TEST)])
    with pytest.raises(ValueError, match=r"size must be None or two positive integers \(height, width\), got \(0, 4\)"):
        ImageProcessor(size=(0, 4)).fit([_png(TEST)])
    with pytest.raises(ValueError, match="channels must be 1, 3 or None, got 4"):
        ImageProcessor(channels=4).fit([_png(TEST)])
    with pytest.raises(ValueError, match="fit needs at least one image"):
        ImageProcessor().fit([])
    fitted = ImageProcessor().fit([_png(TEST)])
    with pytest.raises(InvalidImage, match=r"images\[1\]: cannot decode: not a PNG or JPEG image"):
        fitted.transform([_png(TEST), b"junk"])


def test_fitting_in_steps_decodes_apart_from_scaling() -> None:
    """fit = fit_geometry, pixels (decode, convert, resize: what silver stores), fit_statistics;
    transform = scale(pixels): the steps can run in different places with the same result."""
    images = [_png(a) for a in TRAIN]
    whole = ImageProcessor(size=(2, 2)).fit(images)
    steps = ImageProcessor(size=(2, 2)).fit_geometry(images)
    pixels = steps.pixels(images)
    assert pixels.dtype == np.uint8 and pixels.shape == (2, 1, 2, 2)
    np.testing.assert_array_equal(pixels[:, 0], np.stack(TRAIN))
    steps.fit_statistics(pixels)
    assert (steps.mean_, steps.std_) == (whole.mean_, whole.std_)
    np.testing.assert_array_equal(steps.scale(steps.pixels([_png(TEST)])), whole.transform([_png(TEST)]))
    # a chunk of a longer list names its images by their place in the whole list
    with pytest.raises(InvalidImage, match=r"images\[41\]: cannot decode"):
        steps.pixels([_png(TEST), b"junk"], start=40)
    with pytest.raises(ValueError, match=r"pixels must be \(N, 1, 2, 2\) with N > 0, got \(1, 1, 3, 3\)"):
        steps.fit_statistics(np.zeros((1, 1, 3, 3), np.uint8))
    with pytest.raises(NotFittedError, match="ImageProcessor is not fitted"):
        ImageProcessor().pixels(images)
