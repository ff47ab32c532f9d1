"""word2vec: the negative-sampling distribution (unigram^(3/4) renormalised) and the
subsampling formula by hand, windows, and vectors that put co-occurring words together."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.data.skipgrams import keep_probabilities, negative_distribution, skipgram_pairs
from components.models.word2vec import Word2Vec, Word2VecConfig
from components.training.word_vectors_fit import fit_word2vec


def test_negatives_are_drawn_from_the_unigram_counts_to_the_three_quarters():
    p = negative_distribution(np.array([16, 1, 0, 81]))
    weights = np.array([16 ** 0.75, 1.0, 0.0, 81 ** 0.75])  # 8, 1, 0, 27
    assert p.tolist() == pytest.approx((weights / 36).tolist())
    assert p.sum() == pytest.approx(1.0) and p[2] == 0.0
    # the power flattens the distribution: a rare word is drawn more often than its share
    assert p[1] > 1 / 98


def test_frequent_words_are_subsampled_by_word2vecs_formula():
    counts = np.array([900, 90, 10, 0])
    keep = keep_probabilities(counts, t=0.01)
    f = 900 / 1000
    assert keep[0] == pytest.approx(np.sqrt(0.01 / f) + 0.01 / f)
    assert keep[2] == 1.0 and keep[3] == 1.0 and keep[0] < keep[1] <= 1.0


def test_pairs_stay_within_the_window():
    ids = np.arange(10)
    centers, contexts = skipgram_pairs(ids, 2, np.random.default_rng(0))
    gaps = np.abs(centers - contexts)
    assert gaps.min() == 1 and gaps.max() == 2
    # every neighbour at distance 1 is always paired: 9 pairs each way
    assert ((gaps == 1).sum()) == 18


def test_the_loss_by_hand():
    model = Word2Vec(Word2VecConfig(vocab_size=4, embed_dim=2))
    with torch.no_grad():
        model.inputs.weight.copy_(torch.tensor([[1.0, 0], [0, 1], [1, 1], [0, 0]]))
        model.outputs.weight.copy_(torch.tensor([[0.5, 0], [0, 2], [1, 0], [0, 0]]))
    loss = model(torch.tensor([0]), torch.tensor([2]), torch.tensor([[1, 3]]))
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    # v_c = (1, 0); u_o = (1, 0): dot 1; noise (0, 2) and (0, 0): dots 0 and 0
    expected = -(np.log(sig(1.0)) + np.log(sig(-0.0)) + np.log(sig(-0.0)))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("mode", ["skipgram", "cbow"])
def test_words_that_share_contexts_end_up_close(mode):
    """Two topics: words 0-4 only ever appear among themselves, 5-9 likewise."""
    rng = np.random.default_rng(0)
    corpus = np.concatenate([rng.integers(0, 5, 40) if i % 2 else rng.integers(5, 10, 40) for i in range(100)])
    model, losses = fit_word2vec(corpus, Word2VecConfig(vocab_size=10, embed_dim=8, mode=mode, window=2, subsample=1.0),
                                 epochs=4, batch_size=256, lr=0.05)
    assert losses[-1] < losses[0]
    v = model.vectors()
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    sim = unit @ unit.T
    within = np.mean([sim[i, j] for i in range(5) for j in range(5) if i != j])
    across = np.mean([sim[i, j] for i in range(5) for j in range(5, 10)])
    assert within > across + 0.5, (within, across)
