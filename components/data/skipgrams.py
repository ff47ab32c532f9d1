"""Training pairs for word2vec (Mikolov et al. 2013) from a corpus of token ids.

    keep_probabilities     subsampling of frequent words: an occurrence of a word of corpus
                           frequency f is kept with probability min(1, sqrt(t / f) + t / f)
                           (the formula of word2vec's C code)
    negative_distribution  noise words for negative sampling: unigram counts ^ 3/4, renormalised
    skipgram_pairs         (center, context) pairs within a window shrunk at random per center,
                           so nearer words pair more often, as word2vec does
    window_pairs           the same on a batch of padded windows of token ids (tensors), for
                           training on Ray: specials never pair, and a dropped word leaves a gap
    sampled_pairs          window_pairs with their noise words
"""

from __future__ import annotations

import numpy as np
import torch

from components.data.tokenizers import SPECIALS


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


def window_pairs(
    x: torch.Tensor, window: int, keep: torch.Tensor | None, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(centers, contexts) (N,) of the skip-gram pairs within each row of `x` (B, T): words
    (ids past the specials) at most `reach` apart, `reach` drawn per center from 1..`window`;
    each word kept with its chance in `keep` (V,) (None: every word)."""
    device = x.device
    word = x >= len(SPECIALS)  # (B, T)
    if keep is not None:
        word &= torch.rand(x.shape, generator=generator, device=device) < keep[x]
    reach = torch.randint(1, window + 1, x.shape, generator=generator, device=device)  # (B, T)
    centers, contexts = [], []
    for offset in range(1, min(window, x.shape[1] - 1) + 1):
        both = word[:, :-offset] & word[:, offset:]  # (B, T - offset): a word and the one `offset` after it
        for center, context, near in ((x[:, :-offset], x[:, offset:], reach[:, :-offset] >= offset),
                                      (x[:, offset:], x[:, :-offset], reach[:, offset:] >= offset)):
            ok = both & near
            centers.append(center[ok])
            contexts.append(context[ok])
    if not centers:  # windows of one token: no pairs
        return x.new_zeros(0), x.new_zeros(0)
    return torch.cat(centers), torch.cat(contexts)


def sampled_pairs(
    x: torch.Tensor, window: int, negatives: int, noise: torch.Tensor, keep: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`window_pairs` of `x` (B, T) and `negatives` noise ids per pair drawn from `noise` (V,):
    centers (N,), contexts (N,), noise ids (N, negatives)."""
    centers, contexts = window_pairs(x, window, keep, generator)
    drawn = torch.multinomial(noise, max(len(centers), 1) * negatives, replacement=True, generator=generator)
    return centers, contexts, drawn[: len(centers) * negatives].view(len(centers), negatives)
