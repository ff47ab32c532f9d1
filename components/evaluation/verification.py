"""Pair verification for embedding models: "same identity iff distance <= threshold".

Distances are Euclidean between embeddings. Rates follow the face-verification usage:
true accept rate = accepted same pairs / same pairs (recall), false accept rate =
accepted different pairs / different pairs. A ratio with a zero denominator is 0.0, as
in `metrics.py`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

PAIRS = 2000  # balanced pairs drawn from a split's labels to judge verification on
PAIR_SEED = 0  # the same pairs every time the same split is judged, so epochs and runs compare


def embed(model: nn.Module, inputs: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, D) float64 embeddings of (N, ...) float32 inputs, in eval mode and in batches."""
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    with torch.no_grad():
        parts = [model(x[i : i + batch_size]).double() for i in range(0, len(x), batch_size)]
    return torch.cat(parts).numpy() if parts else np.zeros((0, 0))


def label_verification(
    embeddings: np.ndarray, labels: np.ndarray, threshold: float | None, n_pairs: int = PAIRS
) -> dict[str, float]:
    """Verification on `n_pairs` balanced pairs drawn (seeded) from `labels`: at `threshold`,
    or at the best threshold for these pairs when None. Returns accuracy, threshold,
    true_accept_rate, false_accept_rate and f1."""
    distances, same = label_pairs(embeddings, labels, n_pairs)
    chosen = choose_threshold(distances, same)[0] if threshold is None else threshold
    scores = verification_metrics(distances, same, chosen)
    return {"accuracy": scores["accuracy"], "threshold": chosen, "true_accept_rate": scores["true_accept_rate"],
            "false_accept_rate": scores["false_accept_rate"], "f1": scores["f1"]}


def label_pairs(embeddings: np.ndarray, labels: np.ndarray, n_pairs: int = PAIRS) -> tuple[np.ndarray, np.ndarray]:
    """(distances (n,), same (n,)) of `n_pairs` balanced pairs drawn (seeded) from `labels`."""
    idx_a, idx_b, same = make_pairs(labels, n_pairs, np.random.default_rng(PAIR_SEED))
    return pair_distances(embeddings[idx_a], embeddings[idx_b]), same


def pair_distances(emb_a: torch.Tensor | np.ndarray, emb_b: torch.Tensor | np.ndarray) -> np.ndarray:
    """(N,) float64 Euclidean distances between matching rows of two (N, D) embeddings."""
    a, b = _as_array(emb_a, "emb_a"), _as_array(emb_b, "emb_b")
    if a.ndim != 2:
        raise ValueError(f"emb_a must be (N, D) embeddings, got shape {a.shape}")
    if b.shape != a.shape:
        raise ValueError(f"emb_b must have emb_a's shape {a.shape}, got {b.shape}")
    return np.linalg.norm(a - b, axis=1)  # (N,)


def choose_threshold(distances: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy) maximising the accuracy of "same iff distance <= threshold".

    Candidates are the midpoints between consecutive distinct sorted distances, plus one
    just below the smallest (accept nothing) and the largest (accept everything). Ties in
    accuracy go to the smallest threshold, the one with fewer false accepts.
    """
    d, s = _pairs(distances, same)
    n = d.shape[0]
    order = np.argsort(d, kind="stable")
    ds, ss = d[order], s[order]  # (n,) by distance
    # Accepting the k nearest pairs: tp = same pairs among them, tn = different pairs beyond.
    tp = np.concatenate([[0], np.cumsum(ss)])  # (n + 1,)
    fp = np.arange(n + 1) - tp  # (n + 1,)
    accuracy = (tp + (n - ss.sum()) - fp) / n  # (n + 1,)
    lo, hi = ds[:-1], ds[1:]  # (n - 1,) neighbours
    mid = lo + (hi - lo) / 2
    mid = np.where(mid < hi, mid, lo)  # adjacent floats: the midpoint may round up onto hi
    thresholds = np.concatenate([[np.nextafter(ds[0], -np.inf)], mid, [ds[-1]]])  # (n + 1,)
    # Cutting between equal distances is impossible: "<= threshold" accepts both or neither.
    cut = np.concatenate([[True], lo < hi, [True]])  # (n + 1,)
    best = int(np.argmax(np.where(cut, accuracy, -1.0)))
    return float(thresholds[best]), float(accuracy[best])


def verification_metrics(distances: np.ndarray, same: np.ndarray, threshold: float) -> dict[str, float]:
    """accuracy, true_accept_rate, false_accept_rate, precision, recall, f1 of accepting
    pairs with distance <= threshold as "same"."""
    d, s = _pairs(distances, same)
    accept = d <= threshold  # (n,)
    tp = float(np.sum(accept & s))
    fp = float(np.sum(accept & ~s))
    fn = float(np.sum(~accept & s))
    tn = float(np.sum(~accept & ~s))
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "accuracy": (tp + tn) / d.shape[0],
        "true_accept_rate": recall,
        "false_accept_rate": _ratio(fp, fp + tn),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
    }


def make_pairs(labels: np.ndarray, n_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(idx_a, idx_b, same): n_pairs index pairs, n_pairs // 2 same-label and the rest
    (one more when n_pairs is odd) different-label, in random order.

    Pairs come from `sample_triplets`: (anchor, positive) for same pairs and (anchor,
    negative) for different ones, so idx_a is always drawn from classes with two or more
    examples; a singleton class appears only on the idx_b side.
    """
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 0:
        raise ValueError(f"n_pairs must be an integer >= 0, got {n_pairs!r}")
    n_same = n_pairs // 2
    t = sample_triplets(labels, n_pairs, rng)  # (n_pairs, 3)
    idx_a = t[:, 0]
    idx_b = np.concatenate([t[:n_same, 1], t[n_same:, 2]])
    same = np.arange(n_pairs) < n_same
    shuffle = rng.permutation(n_pairs)
    return idx_a[shuffle], idx_b[shuffle], same[shuffle]


def sample_triplets(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) int64 index triplets (anchor, positive, negative) for offline mining.

    The anchor is uniform over examples whose class has at least two members (so classes
    weigh by size), the positive uniform over the anchor's other class members, the
    negative uniform over all examples of other classes.
    """
    y = np.asarray(labels).reshape(-1)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    if len(classes) < 2:
        raise ValueError(
            f"labels must hold at least two classes (negatives come from another class), got {len(classes)}"
        )
    eligible = np.flatnonzero(counts[inverse] >= 2)  # examples that have a positive
    if eligible.size == 0:
        raise ValueError("labels must have a class with at least two examples (an anchor needs a positive), got none")
    order = np.argsort(inverse, kind="stable")  # examples grouped by class
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])  # (K,) each class's first slot in order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(y)) - starts[inverse[order]]  # position of each example within its class
    anchor = rng.choice(eligible, size=n)  # (n,)
    c = inverse[anchor]  # (n,)
    # Positive: one of the class's other count-1 members; skipping the anchor's own slot.
    k = rng.integers(0, counts[c] - 1)  # (n,)
    k = k + (k >= rank[anchor])
    positive = order[starts[c] + k]
    # Negative: one of the len(y) - count slots outside the class's block in `order`.
    j = rng.integers(0, len(y) - counts[c])  # (n,)
    j = j + counts[c] * (j >= starts[c])
    negative = order[j]
    return np.stack([anchor, positive, negative], axis=1).astype(np.int64)  # (n, 3)


def _pairs(distances: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(distances, dtype=np.float64)
    s = np.asarray(same)
    if d.ndim != 1 or d.shape[0] == 0:
        raise ValueError(f"distances must be a non-empty (n,) array, got shape {d.shape}")
    if s.shape != d.shape:
        raise ValueError(f"same must be (n,) = {d.shape} like distances, got shape {s.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError("distances must be finite, got NaN or inf")
    if not np.all((s == 0) | (s == 1)):
        raise ValueError(f"same must hold bools or 0/1, got values {np.unique(s).tolist()}")
    return d, s.astype(bool)


def _as_array(x: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    if isinstance(x, np.ndarray):
        return x.astype(np.float64, copy=False)
    raise TypeError(f"{name} must be a torch.Tensor or np.ndarray, got {type(x).__name__}")


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0
