"""Training pairs for word2vec (Mikolov et al. 2013) from a corpus of token ids.

    keep_probabilities     subsampling of frequent words: an occurrence of a word of corpus
                           frequency f is kept with probability min(1, sqrt(t / f) + t / f)
                           (the formula of word2vec's C code)
    negative_distribution  noise words for negative sampling: unigram counts ^ 3/4, renormalised
    skipgram_pairs         (center, context) pairs within a window shrunk at random per center,
                           so nearer words pair more often, as word2vec does
"""

from __future__ import annotations

import numpy as np


def keep_probabilities(counts: np.ndarray, t: float = 1e-3) -> np.ndarray:
    """(V,) chance of keeping each occurrence of each word; words never seen keep 1."""
    counts = np.asarray(counts, dtype=np.float64)
    freq = counts / max(counts.sum(), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = np.sqrt(t / freq) + t / freq
    return np.where(freq > 0, np.minimum(keep, 1.0), 1.0)


def negative_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """(V,) probabilities of drawing each word as a negative: count^power / sum(count^power)."""
    weights = np.asarray(counts, dtype=np.float64) ** power
    total = weights.sum()
    if total <= 0:
        raise ValueError("negative sampling needs at least one word with a count above 0")
    return weights / total


def skipgram_pairs(
    ids: np.ndarray, window: int, rng: np.random.Generator, keep: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(centers, contexts) int64 arrays of every pair within a window of each kept token;
    each center's window is drawn from 1..`window`."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    ids = np.asarray(ids, dtype=np.int64)
    if keep is not None:
        ids = ids[rng.random(len(ids)) < keep[ids]]
    reach = rng.integers(1, window + 1, size=len(ids))  # (N,) each center's window
    centers, contexts = [], []
    for offset in range(1, window + 1):
        for sign in (-1, 1):
            shift = sign * offset
            idx = np.arange(len(ids))
            other = idx + shift
            ok = (other >= 0) & (other < len(ids)) & (reach >= offset)
            centers.append(ids[idx[ok]])
            contexts.append(ids[other[ok]])
    return np.concatenate(centers), np.concatenate(contexts)
