"""Kornia augmentation: seeded determinism, shapes, op semantics, training-only, config errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from components.data.augmentation import AUGMENT_OPS, make_augmenter, validate_ops

ALL_OPS = [
    {"type": "flip"},
    {"type": "shift", "max": 0.1},
    {"type": "rotate", "degrees": 15},
    {"type": "crop", "size": [12, 10], "padding": 2},
    {"type": "noise", "std": 0.1},
    {"type": "cutout", "size": 0.25, "p": 0.5},
]


@pytest.fixture
def batch() -> torch.Tensor:
    return torch.rand(6, 3, 12, 10, generator=torch.Generator().manual_seed(0))


def test_ops_names() -> None:
    assert AUGMENT_OPS == ("flip", "shift", "rotate", "crop", "noise", "cutout")


def test_same_seed_same_calls_give_identical_batches(batch: torch.Tensor) -> None:
    a, b = make_augmenter(ALL_OPS, seed=3), make_augmenter(ALL_OPS, seed=3)
    first = [a(batch, training=True) for _ in range(3)]
    second = [b(batch, training=True) for _ in range(3)]
    assert all(torch.equal(x, y) for x, y in zip(first, second, strict=True))
    assert not torch.equal(first[0], first[1])  # each call draws anew
    assert not torch.equal(first[0], make_augmenter(ALL_OPS, seed=4)(batch, training=True))
    assert all(x.shape == batch.shape for x in first)


def test_global_rng_is_left_alone_and_state_resumes(batch: torch.Tensor) -> None:
    before = torch.get_rng_state()
    aug = make_augmenter(ALL_OPS, seed=1)
    aug(batch, training=True)
    assert torch.equal(torch.get_rng_state(), before)
    state = aug.state_dict()
    expected = aug(batch, training=True)
    resumed = make_augmenter(ALL_OPS, seed=1)
    resumed.load_state_dict(state)
    assert torch.equal(resumed(batch, training=True), expected)


def test_training_false_returns_the_very_same_tensor(batch: torch.Tensor) -> None:
    aug = make_augmenter(ALL_OPS, seed=0)
    assert aug(batch, training=False) is batch
    assert aug.calls == 0  # evaluation calls do not move the random stream


def test_flip_with_p_1_is_torch_flip(batch: torch.Tensor) -> None:
    out = make_augmenter([{"type": "flip", "p": 1.0}], seed=0)(batch, training=True)
    assert torch.equal(out, torch.flip(batch, dims=[-1]))


def test_noise_has_the_asked_std() -> None:
    zeros = torch.zeros(32, 1, 16, 16)
    out = make_augmenter([{"type": "noise", "std": 0.1}], seed=0)(zeros, training=True)
    assert out.std().item() == pytest.approx(0.1, rel=0.05)
    assert out.mean().abs().item() < 0.01


def test_crop_is_a_window_of_the_padded_batch(batch: torch.Tensor) -> None:
    out = make_augmenter([{"type": "crop", "padding": 2}], seed=5)(batch, training=True)
    padded = F.pad(batch, (2, 2, 2, 2))
    for i in range(batch.shape[0]):
        windows = [padded[i, :, dy:dy + 12, dx:dx + 10] for dy in range(5) for dx in range(5)]
        assert any(torch.allclose(out[i], w, atol=1e-6) for w in windows)


def test_cutout_erases_a_square_of_the_asked_area() -> None:
    ones = torch.ones(4, 1, 16, 16)
    out = make_augmenter([{"type": "cutout", "size": 0.5, "p": 1.0}], seed=0)(ones, training=True)
    zeroed = (out == 0).float().mean(dim=(1, 2, 3))
    assert torch.allclose(zeroed, torch.full((4,), 0.25), atol=0.05)


def test_gradients_flow_through(batch: torch.Tensor) -> None:
    x = batch.clone().requires_grad_(True)
    make_augmenter([{"type": "rotate", "degrees": 10}], seed=0)(x, training=True).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([{"type": "flip"}, {"type": "rotate", "degrees": -5}], r"augment\[1\]\.degrees must be >= 0, got -5"),
        ([{"type": "blur"}], r"augment\[0\]\.type must be one of flip, shift, rotate, crop, noise, cutout, got 'blur'"),
        ([{"type": "flip", "prob": 1}], r"augment\[0\] \(flip\) has unknown key\(s\) \['prob'\]; allowed: p"),
        ([{"type": "shift"}], r"augment\[0\]\.max is required for type 'shift'"),
        ([{"type": "flip", "p": 1.5}], r"augment\[0\]\.p must be <= 1, got 1.5"),
        ([{"type": "noise", "std": True}], r"augment\[0\]\.std must be a number, got True"),
        ([{"type": "crop", "padding": 1.5}], r"augment\[0\]\.padding must be an integer number of pixels"),
        ([{"type": "cutout", "size": 0}], r"augment\[0\]\.size must be > 0, got 0"),
        ({"type": "flip"}, "augment must be a list of ops, got dict"),
    ],
)
def test_bad_ops_name_the_index_and_param(ops: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_ops(ops)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        make_augmenter(ops, seed=0)  # type: ignore[arg-type]


def test_crop_size_must_match_the_batch(batch: torch.Tensor) -> None:
    aug = make_augmenter([{"type": "crop", "size": [8, 8]}], seed=0)
    with pytest.raises(ValueError, match=r"augment\[0\]\.size \[8, 8\] must equal the batch's image size 12x10"):
        aug(batch, training=True)
