"""Metric-learning losses for Siamese and triplet networks, with triplets mined in the batch.

Distances: triplet losses (plain, batch-all, batch-hard) compare squared Euclidean
distances, as in FaceNet's ||f(a) - f(p)||² - ||f(a) - f(n)||² + margin; the contrastive
loss uses the Euclidean distance d itself, as Hadsell et al. do, but without their ½
factor: same·d² + (1 - same)·max(margin - d, 0)², which only rescales the gradient.

Batch mining works on (B, D) embeddings and (B,) integer labels: a triplet (a, p, n) is
valid when a ≠ p, label[a] = label[p] and label[n] ≠ label[a]. A batch with no valid
triplet gives a zero loss that is still connected to the embeddings' graph, so
`loss.backward()` runs (giving zero gradients) instead of failing mid-epoch.
"""

from __future__ import annotations

from typing import Literal

import torch

Reduction = Literal["mean", "sum", "none"]


def triplet_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    margin: float,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """max(||a - p||² - ||a - n||² + margin, 0) per row of (B, D) embeddings, reduced."""
    _check_margin(margin)
    _check_embeddings(anchor, "anchor")
    for name, t in (("positive", positive), ("negative", negative)):
        if t.shape != anchor.shape:
            raise ValueError(f"{name} must have anchor's shape {tuple(anchor.shape)}, got {tuple(t.shape)}")
    d_ap = (anchor - positive).pow(2).sum(dim=1)  # (B,)
    d_an = (anchor - negative).pow(2).sum(dim=1)  # (B,)
    return _reduce(torch.relu(d_ap - d_an + margin), reduction)


def contrastive_loss(
    x1: torch.Tensor,
    x2: torch.Tensor,
    same: torch.Tensor,
    margin: float,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """same·d² + (1 - same)·max(margin - d, 0)² with d = ||x1 - x2||, per row of (B, D).

    same is (B,) bool or 0/1: similar pairs are pulled together, dissimilar ones pushed
    apart until they are margin away. No ½ factor (see the module docstring).
    """
    _check_margin(margin)
    _check_embeddings(x1, "x1")
    if x2.shape != x1.shape:
        raise ValueError(f"x2 must have x1's shape {tuple(x1.shape)}, got {tuple(x2.shape)}")
    s = _binary(same, "same", x1.shape[0]).to(x1.dtype)  # (B,)
    d2 = (x1 - x2).pow(2).sum(dim=1)  # (B,)
    # d = sqrt(d2) has an infinite gradient at 0; the double where makes it 0 there instead.
    d = torch.where(d2 > 0, torch.where(d2 > 0, d2, torch.ones_like(d2)).sqrt(), torch.zeros_like(d2))  # (B,)
    loss = s * d2 + (1 - s) * torch.relu(margin - d).pow(2)  # (B,)
    return _reduce(loss, reduction)


def pairwise_squared_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """(B, B) squared Euclidean distances between the rows of (B, D) embeddings.

    Uses ||a||² - 2a·b + ||b||², which rounding can push slightly below 0 for near-equal
    rows: it is clamped at 0, and the diagonal is exactly 0.
    """
    _check_embeddings(embeddings, "embeddings")
    # Distances ignore translation; centring first keeps the norms small, so the
    # cancellation in the expansion loses little precision far from the origin.
    e = embeddings - embeddings.mean(dim=0, keepdim=True)  # (B, D)
    sq = e.pow(2).sum(dim=1)  # (B,)
    d = sq[:, None] - 2 * e @ e.T + sq[None, :]  # (B, B)
    eye = torch.eye(embeddings.shape[0], dtype=torch.bool, device=embeddings.device)
    return d.clamp(min=0).masked_fill(eye, 0.0)


def batch_all_triplet_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, margin: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, fraction_positive) over every valid triplet in the batch.

    loss averages max(d(a, p) - d(a, n) + margin, 0) over the valid triplets where it is
    positive (easy triplets would otherwise dilute the mean towards 0); fraction_positive
    is that count over the number of valid triplets (a detached 0-dim tensor, 0 when there
    are none). Memory is B³.
    """
    _check_margin(margin)
    _check_labels(embeddings, labels)
    d = pairwise_squared_distances(embeddings)  # (B, B)
    same = labels[:, None] == labels[None, :]  # (B, B)
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    pos = same & ~eye  # (B, B) [a, p]
    valid = pos[:, :, None] & ~same[:, None, :]  # (B, B, B) [a, p, n]
    losses = torch.relu(d[:, :, None] - d[:, None, :] + margin) * valid  # (B, B, B)
    n_positive = (losses > 0).sum()
    loss = losses.sum() / n_positive.clamp(min=1)
    fraction = (n_positive / valid.sum().clamp(min=1)).to(embeddings.dtype)
    return loss, fraction.detach()


def batch_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over anchors of max(hardest d(a, p) - hardest d(a, n) + margin, 0).

    Per anchor the hardest positive is the farthest same-label example and the hardest
    negative the nearest other-label one (Hermans et al.). Anchors with no positive or no
    negative in the batch are skipped.
    """
    _check_margin(margin)
    _check_labels(embeddings, labels)
    d = pairwise_squared_distances(embeddings)  # (B, B)
    same = labels[:, None] == labels[None, :]  # (B, B)
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    pos, neg = same & ~eye, ~same  # (B, B)
    hardest_pos = torch.where(pos, d, torch.zeros_like(d)).max(dim=1).values  # (B,) d >= 0, so 0 never wins
    # A finite fill above every distance, so skipped anchors stay finite (no inf - inf).
    far = d.detach().max() + 1 if d.numel() else d.new_ones(())
    hardest_neg = torch.where(neg, d, far).min(dim=1).values  # (B,)
    has_both = pos.any(dim=1) & neg.any(dim=1)  # (B,)
    per_anchor = torch.relu(hardest_pos - hardest_neg + margin) * has_both  # (B,)
    return per_anchor.sum() / has_both.sum().clamp(min=1)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_margin(margin: float) -> None:
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0, got {margin}")


def _check_embeddings(t: torch.Tensor, name: str) -> None:
    if t.dim() != 2:
        raise ValueError(f"{name} must be (B, D) embeddings, got shape {tuple(t.shape)}")


def _check_labels(embeddings: torch.Tensor, labels: torch.Tensor) -> None:
    _check_embeddings(embeddings, "embeddings")
    if labels.shape != (embeddings.shape[0],):
        raise ValueError(f"labels must be (B,) = ({embeddings.shape[0]},) like embeddings, got {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex:
        raise ValueError(f"labels must hold integer class ids, got dtype {labels.dtype}")


def _binary(same: torch.Tensor, name: str, batch: int) -> torch.Tensor:
    if same.shape != (batch,):
        raise ValueError(f"{name} must be (B,) = ({batch},), got shape {tuple(same.shape)}")
    if not bool(((same == 0) | (same == 1)).all()):
        raise ValueError(f"{name} must hold bools or 0/1, got values {same.unique().tolist()}")
    return same
