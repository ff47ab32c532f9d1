"""Verification thresholds and rates by hand, and balanced pair sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.evaluation.verification import choose_threshold, make_pairs, pair_distances, verification_metrics


def test_pair_distances_by_hand():
    a = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[3.0, 4.0], [1.0, 1.0]])
    np.testing.assert_allclose(pair_distances(a, b), [5.0, 0.0])
    np.testing.assert_allclose(pair_distances(a.numpy(), b.numpy()), [5.0, 0.0])


def test_choose_threshold_separable():
    # accepted same pairs at 0.1, 0.2; rejected different pairs at 0.6, 0.9
    threshold, accuracy = choose_threshold(np.array([0.1, 0.2, 0.6, 0.9]), np.array([1, 1, 0, 0]))
    assert 0.2 < threshold < 0.6
    assert threshold == pytest.approx(0.4)  # the midpoint
    assert accuracy == 1.0


def test_choose_threshold_non_separable():
    # sorted distances 0.1 0.3 0.4 0.5 0.8 with same 1 0 1 1 0 (2 different pairs);
    # accepting the k nearest: k=0 2/5, k=1 3/5, k=2 2/5, k=3 3/5, k=4 4/5, k=5 3/5
    distances = np.array([0.5, 0.1, 0.8, 0.3, 0.4])
    same = np.array([1, 1, 0, 0, 1])
    threshold, accuracy = choose_threshold(distances, same)
    assert threshold == pytest.approx(0.65)  # between 0.5 and 0.8
    assert accuracy == pytest.approx(0.8)
    grid = np.linspace(0, 1, 1001)
    assert max(np.mean((distances <= t) == same) for t in grid) == pytest.approx(0.8)


def test_choose_threshold_cannot_split_ties():
    # three equal distances: accept all (2/3) or none (1/3)
    threshold, accuracy = choose_threshold(np.array([0.5, 0.5, 0.5]), np.array([1, 0, 1]))
    assert threshold == 0.5 and accuracy == pytest.approx(2 / 3)


def test_choose_threshold_can_accept_nothing():
    distances, same = np.array([0.2, 0.3]), np.array([False, False])
    threshold, accuracy = choose_threshold(distances, same)
    assert threshold < 0.2 and accuracy == 1.0
    assert verification_metrics(distances, same, threshold)["accuracy"] == 1.0


def test_choose_threshold_agrees_with_verification_metrics():
    rng = np.random.default_rng(0)
    same = rng.random(200) < 0.5
    distances = np.where(same, rng.normal(1.0, 0.4, 200), rng.normal(2.0, 0.4, 200))
    threshold, accuracy = choose_threshold(distances, same)
    assert verification_metrics(distances, same, threshold)["accuracy"] == pytest.approx(accuracy)
    candidates = np.concatenate([distances, distances - 1e-9])
    assert max(np.mean((distances <= t) == same) for t in candidates) == pytest.approx(accuracy)


def test_verification_metrics_by_hand():
    # threshold 0.5 accepts the first three: tp 2, fp 1; rejected: fn 2, tn 1
    distances = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    same = np.array([1, 1, 0, 1, 1, 0])
    m = verification_metrics(distances, same, 0.5)
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["true_accept_rate"] == pytest.approx(2 / 4)
    assert m["false_accept_rate"] == pytest.approx(1 / 2)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 4)
    assert m["f1"] == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))  # 4/7


def test_verification_metrics_zero_denominators_are_zero():
    m = verification_metrics(np.array([0.9, 0.8]), np.array([1, 1]), 0.1)  # nothing accepted
    assert m["precision"] == 0.0 and m["false_accept_rate"] == 0.0 and m["f1"] == 0.0


@pytest.mark.parametrize("n_pairs", [100, 7])
def test_make_pairs_balanced_and_correct(n_pairs):
    labels = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    a, b, same = make_pairs(labels, n_pairs, np.random.default_rng(0))
    assert a.shape == b.shape == same.shape == (n_pairs,)
    assert same.sum() == n_pairs // 2
    assert np.array_equal(labels[a] == labels[b], same)
    assert np.all(a[same] != b[same])
    again = make_pairs(labels, n_pairs, np.random.default_rng(0))
    assert all(np.array_equal(x, y) for x, y in zip((a, b, same), again, strict=True))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: pair_distances(np.zeros((3, 2)), np.zeros((2, 2))), r"emb_b must have emb_a's shape \(3, 2\)"),
        (lambda: pair_distances(np.zeros(3), np.zeros(3)), r"emb_a must be \(N, D\)"),
        (lambda: choose_threshold(np.array([]), np.array([])), r"distances must be a non-empty"),
        (lambda: choose_threshold(np.array([0.1, 0.2]), np.array([1])), r"same must be \(n,\) = \(2,\)"),
        (lambda: choose_threshold(np.array([0.1, np.nan]), np.array([1, 0])), r"distances must be finite"),
        (lambda: verification_metrics(np.array([0.1]), np.array([2]), 0.5), r"same must hold bools or 0/1"),
        (lambda: make_pairs(np.array([0, 0, 1]), -2, np.random.default_rng(0)), r"n_pairs must be an integer >= 0"),
        (lambda: make_pairs(np.array([0, 0, 0]), 4, np.random.default_rng(0)), r"at least two classes"),
    ],
)
def test_errors_name_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()
