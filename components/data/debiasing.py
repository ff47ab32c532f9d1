"""Debiasing word vectors (Bolukbasi et al. 2016, "Man is to computer programmer as woman
is to homemaker?"): a bias direction learned from definitional pairs, words that should be
neutral projected off it (neutralise), and pairs that differ only by it moved to stand
symmetric about it (equalise), with the projections to show before and after.
"""

from __future__ import annotations

import numpy as np

from components.data.word_vectors import WordVectors

# Pairs that differ by gender by definition: their differences average to the direction.
GENDER_PAIRS = (("woman", "man"), ("girl", "boy"), ("she", "he"), ("mother", "father"), ("daughter", "son"),
                ("her", "his"), ("female", "male"), ("queen", "king"))


def bias_direction(vectors: WordVectors, pairs: tuple[tuple[str, str], ...] = GENDER_PAIRS) -> np.ndarray:
    """The mean of the pairs' differences (first minus second), as a unit vector."""
    diffs = [vectors.vector(a) - vectors.vector(b) for a, b in pairs]
    g = np.mean(diffs, axis=0)
    return g / np.linalg.norm(g)


def projection(e: np.ndarray, g: np.ndarray) -> float:
    """The cosine of `e` with the bias direction `g`: how far along it the word leans."""
    return float(np.dot(e, g) / (np.linalg.norm(e) * np.linalg.norm(g) + 1e-12))


def neutralize(e: np.ndarray, g: np.ndarray) -> np.ndarray:
    """`e` without its component along `g`: e - (e·g / |g|²) g, orthogonal to `g`."""
    return e - (np.dot(e, g) / np.dot(g, g)) * g


def equalize(e1: np.ndarray, e2: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A pair (actress, actor) moved to share everything but the bias component, which
    becomes equal and opposite: two unit vectors equally far from every neutralised word
    (Bolukbasi et al.'s equalise, on the unit vectors of the pair)."""
    e1, e2 = e1 / np.linalg.norm(e1), e2 / np.linalg.norm(e2)
    mu = (e1 + e2) / 2
    mu_b = np.dot(mu, g) / np.dot(g, g) * g
    mu_orth = mu - mu_b
    scale = np.sqrt(abs(1 - np.dot(mu_orth, mu_orth)))
    out = []
    for e in (e1, e2):
        e_b = np.dot(e, g) / np.dot(g, g) * g
        direction = (e_b - mu_b) / np.linalg.norm(e_b - mu_b)
        out.append(mu_orth + scale * direction)
    return out[0], out[1]
