"""Triplet and contrastive losses by hand, batch mining against brute force, triplet sampling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from components.training.metric_losses import (
    batch_all_triplet_loss,
    batch_hard_triplet_loss,
    contrastive_loss,
    pairwise_squared_distances,
    triplet_loss,
)
from components.evaluation.verification import sample_triplets


def test_triplet_loss_by_hand():
    # row 0: A=(0,0) P=(1,0) N=(0,2): ||A-P||² = 1, ||A-N||² = 4, max(1 - 4 + 0.5, 0) = 0
    # row 1: A=(0,0) P=(2,0) N=(0,1): ||A-P||² = 4, ||A-N||² = 1, max(4 - 1 + 0.5, 0) = 3.5
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    p = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    n = torch.tensor([[0.0, 2.0], [0.0, 1.0]])
    torch.testing.assert_close(triplet_loss(a, p, n, 0.5, reduction="none"), torch.tensor([0.0, 3.5]))
    assert triplet_loss(a, p, n, 0.5).item() == pytest.approx(1.75)
    assert triplet_loss(a, p, n, 0.5, reduction="sum").item() == pytest.approx(3.5)


def test_triplet_loss_gradient_by_hand():
    # L = ||a-p||² - ||a-n||² + m on the violating row: dL/da = 2(n - p), dL/dp = 2(p - a), dL/dn = 2(a - n)
    a = torch.tensor([[0.0, 0.0]], requires_grad=True)
    p = torch.tensor([[2.0, 0.0]], requires_grad=True)
    n = torch.tensor([[0.0, 1.0]], requires_grad=True)
    triplet_loss(a, p, n, 0.5).backward()
    torch.testing.assert_close(a.grad, torch.tensor([[-4.0, 2.0]]))
    torch.testing.assert_close(p.grad, torch.tensor([[4.0, 0.0]]))
    torch.testing.assert_close(n.grad, torch.tensor([[0.0, -2.0]]))


def test_contrastive_loss_by_hand():
    # margin 2, no ½ factor:
    # same (0,0)-(3,4): d = 5, d² = 25
    # different (0,0)-(1,0): d = 1, max(2 - 1, 0)² = 1
    # different (0,0)-(0,3): d = 3, max(2 - 3, 0)² = 0
    # different (1,1)-(1,1): d = 0, max(2 - 0, 0)² = 4
    x1 = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]], requires_grad=True)
    x2 = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    same = torch.tensor([True, False, False, False])
    per_pair = contrastive_loss(x1, x2, same, 2.0, reduction="none")
    torch.testing.assert_close(per_pair, torch.tensor([25.0, 1.0, 0.0, 4.0]))
    loss = contrastive_loss(x1, x2, same.long(), 2.0)
    assert loss.item() == pytest.approx(30 / 4)
    loss.backward()
    assert torch.isfinite(x1.grad).all()  # the coincident dissimilar pair has no NaN gradient
    # same pair: d(d²)/dx1 = 2(x1 - x2) = (-6, -8), over the mean's 4
    torch.testing.assert_close(x1.grad[0], torch.tensor([-6.0, -8.0]) / 4)


def test_pairwise_squared_distances_match_brute_force_and_are_non_negative():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, generator=g)
    ref = (x[:, None, :] - x[None, :, :]).pow(2).sum(-1)  # (6, 6)
    torch.testing.assert_close(pairwise_squared_distances(x), ref)
    # near-duplicate rows far from the origin: uncentred, ||a||² - 2a·b + ||b||² in float32
    # comes out as large as ±0.5 here, negative for some pairs
    big = 1000 + 1e-4 * torch.randn(8, 3, generator=g)
    d = pairwise_squared_distances(big)
    assert (d >= 0).all()
    assert torch.equal(torch.diagonal(d), torch.zeros(8))
    torch.testing.assert_close(d, (big[:, None, :] - big[None, :, :]).pow(2).sum(-1), atol=1e-9, rtol=1e-3)


# 1-D embeddings, squared distances d(i, j) = (x_i - x_j)²
#   idx:   0  1  2 | 3  4 | 5
#   x:     0  1  3 | 2  6 | 10
#   label: 0  0  0 | 1  1 | 2   (class 2 is a singleton: never an anchor, still a negative)
HARD_X = torch.tensor([[0.0], [1.0], [3.0], [2.0], [6.0], [10.0]])
HARD_Y = torch.tensor([0, 0, 0, 1, 1, 2])


def test_batch_hard_picks_the_hand_identified_pairs():
    # anchor: hardest positive (farthest same label), hardest negative (nearest other label)
    #   0: pos 2 (d 9), neg 3 (d 4)            -> 9 - 4 + 1 = 6
    #   1: pos 2 (d 4), neg 3 (d 1)            -> 4 - 1 + 1 = 4
    #   2: pos 0 (d 9), neg 3 (d 1)            -> 9 - 1 + 1 = 9
    #   3: pos 4 (d 16), neg 1 or 2 (d 1)      -> 16 - 1 + 1 = 16
    #   4: pos 3 (d 16), neg 2 (d 9)           -> 16 - 9 + 1 = 8
    #   5: no positive, skipped; mean over 5 anchors = 43 / 5
    loss = batch_hard_triplet_loss(HARD_X, HARD_Y, margin=1.0)
    assert loss.item() == pytest.approx(43 / 5)
    anchors, positives, negatives = [0, 1, 2, 3, 4], [2, 2, 0, 4, 3], [3, 3, 3, 1, 2]
    explicit = triplet_loss(HARD_X[anchors], HARD_X[positives], HARD_X[negatives], 1.0)
    torch.testing.assert_close(loss, explicit)


def test_batch_hard_gradient_reaches_only_the_chosen_examples():
    # labels 0,0,1,1,1: anchor 0's hardest positive is 1, hardest negative is 2 (d 4 < 9, 16).
    # Give the other anchors no violation with margin 0 so only anchor 0 contributes.
    x = torch.tensor([[0.0], [3.0], [2.0], [20.0], [21.0]], requires_grad=True)
    y = torch.tensor([0, 0, 1, 1, 1])
    loss = batch_hard_triplet_loss(x, y, margin=0.0)
    # anchor 0: 9 - 4 = 5; anchor 1: pos 0 (9), neg 2 (1) -> 8; anchor 2: pos 4 (361), neg 1 (1) -> 360
    # anchor 3: pos 2 (324), neg 1 (289) -> 35; anchor 4: pos 2 (361), neg 1 (324) -> 37
    assert loss.item() == pytest.approx((5 + 8 + 360 + 35 + 37) / 5)
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_batch_all_by_hand():
    # x = 0, 1 (label 0) and 3, 4 (label 1); d: 0-1 1, 0-2 9, 0-3 16, 1-2 4, 1-3 9, 2-3 1.
    # 8 valid triplets (a, p, n) with margin 4:
    #   (0,1,2) 1-9+4<0  (0,1,3) 1-16+4<0  (1,0,2) 1-4+4=1  (1,0,3) 1-9+4<0
    #   (2,3,0) 1-9+4<0  (2,3,1) 1-4+4=1   (3,2,0) 1-16+4<0 (3,2,1) 1-9+4<0
    # 2 positive of 8 -> fraction 0.25, loss = (1 + 1) / 2
    x = torch.tensor([[0.0], [1.0], [3.0], [4.0]])
    loss, fraction = batch_all_triplet_loss(x, torch.tensor([0, 0, 1, 1]), margin=4.0)
    assert loss.item() == pytest.approx(1.0)
    assert fraction.item() == pytest.approx(0.25)


def test_batch_all_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(9, 3, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 0])
    margin = 0.7
    losses, n_valid = [], 0
    for a, p, n in itertools.product(range(9), repeat=3):
        if a != p and y[a] == y[p] and y[n] != y[a]:
            n_valid += 1
            value = ((x[a] - x[p]) ** 2).sum() - ((x[a] - x[n]) ** 2).sum() + margin
            if value > 0:
                losses.append(value.item())
    loss, fraction = batch_all_triplet_loss(x, y, margin)
    assert loss.item() == pytest.approx(sum(losses) / len(losses))
    assert fraction.item() == pytest.approx(len(losses) / n_valid)


@pytest.mark.parametrize("labels", [[0, 0, 0, 0], [0, 1, 2, 3]], ids=["no-negatives", "no-positives"])
def test_no_valid_triplet_gives_zero_loss_that_still_backpropagates(labels):
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(2), requires_grad=True)
    y = torch.tensor(labels)
    loss_all, fraction = batch_all_triplet_loss(x, y, 1.0)
    loss_hard = batch_hard_triplet_loss(x, y, 1.0)
    for loss in (loss_all, loss_hard):
        assert loss.item() == 0.0 and loss.requires_grad and loss.grad_fn is not None
    assert fraction.item() == 0.0
    (loss_all + loss_hard).backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_gradients_flow_through_batch_losses():
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(3), requires_grad=True)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    loss, _ = batch_all_triplet_loss(x, y, 5.0)
    (loss + batch_hard_triplet_loss(x, y, 5.0)).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_sample_triplets_are_valid_and_reproducible():
    labels = np.array([3, 3, 3, 7, 7, 9, 5, 5, 5, 5])  # class 9 is a singleton
    t = sample_triplets(labels, 500, np.random.default_rng(0))
    assert t.shape == (500, 3) and t.dtype == np.int64
    a, p, n = t.T
    assert np.all(a != p)
    assert np.all(labels[a] == labels[p])
    assert np.all(labels[n] != labels[a])
    assert not np.any(labels[a] == 9) and np.any(labels[n] == 9)
    # every other member of anchor 0's class shows up as its positive
    assert set(p[a == 0].tolist()) == {1, 2}
    assert np.array_equal(t, sample_triplets(labels, 500, np.random.default_rng(0)))
    assert sample_triplets(labels, 0, np.random.default_rng(0)).shape == (0, 3)


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: sample_triplets(np.array([1, 1, 1]), 5, np.random.default_rng(0)),
            r"at least two classes \(negatives come from another class\), got 1",
        ),
        (lambda: sample_triplets(np.array([0, 1, 2]), 5, np.random.default_rng(0)), r"a class with at least two"),
        (lambda: sample_triplets(np.array([0, 0, 1]), -1, np.random.default_rng(0)), r"n must be an integer >= 0"),
        (lambda: triplet_loss(torch.zeros(2, 3), torch.zeros(2, 2), torch.zeros(2, 3), 1.0), r"positive must have"),
        (lambda: triplet_loss(torch.zeros(3), torch.zeros(3), torch.zeros(3), 1.0), r"anchor must be \(B, D\)"),
        (lambda: triplet_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), -1.0), r"margin must be >= 0"),
        (
            lambda: triplet_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), 1.0, reduction="avg"),
            r"reduction must be 'mean', 'sum' or 'none', got 'avg'",
        ),
        (lambda: contrastive_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 2]), 1.0), r"same must hold"),
        (lambda: contrastive_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([1]), 1.0), r"same must be \(B"),
        (lambda: batch_hard_triplet_loss(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long), 1.0), r"labels must be"),
        (lambda: batch_all_triplet_loss(torch.zeros(3, 2), torch.zeros(3), 1.0), r"integer class ids"),
    ],
)
def test_errors_name_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()
