"""GloVe: co-occurrence counts by GloVe's 1/distance, the weighting function and the weighted
least-squares loss by hand, and vectors that learn which words share contexts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from components.data.cooccurrence import cooccurrence
from components.models.glove import GloVe, GloVeConfig, weighting
from components.training.word_vectors_fit import fit_glove, glove_on_text


def test_counts_weigh_each_neighbour_by_one_over_its_distance_both_ways():
    # stream: a b c a   (ids 0 1 2 0), window 2
    x = cooccurrence(np.array([0, 1, 2, 0]), vocab_size=3, window=2).toarray()
    # a-b: distance 1 (first a) and 2 (b to the last a): 1 + 1/2; a-c: 1/2 (first a) + 1 (last a)
    # b-c: 1; a-a: distance 3 is outside the window
    assert x.tolist() == [[0, 1.5, 1.5], [1.5, 0, 1.0], [1.5, 1.0, 0]]
    assert (x == x.T).all()
    # ids below first_word (specials) count with nothing
    y = cooccurrence(np.array([0, 1, 2, 0]), vocab_size=3, window=2, first_word=1).toarray()
    assert y.tolist() == [[0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]]
    with pytest.raises(ValueError, match="window must be >= 1, got 0"):
        cooccurrence(np.array([0, 1]), 2, window=0)


def test_the_weighting_and_the_loss_by_hand():
    assert weighting(torch.tensor([50.0, 100.0, 400.0]), 100.0, 0.75).tolist() == pytest.approx([0.5**0.75, 1.0, 1.0])
    model = GloVe(GloVeConfig(vocab_size=2, embed_dim=2, x_max=10.0))
    with torch.no_grad():
        model.words.weight.copy_(torch.tensor([[1.0, 2.0], [0.0, 1.0]]))
        model.contexts.weight.copy_(torch.tensor([[0.5, 0.5], [1.0, -1.0]]))
        model.word_bias.weight.copy_(torch.tensor([[0.1], [0.2]]))
        model.context_bias.weight.copy_(torch.tensor([[0.3], [-0.4]]))
    loss = model(torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([5.0, 20.0]))
    # pair (0, 1): w0·w̃1 = 1 - 2 = -1, + 0.1 - 0.4 = -1.3, - ln 5; f(5) = 0.5^0.75
    # pair (1, 0): w1·w̃0 = 0.5, + 0.2 + 0.3 = 1.0, - ln 20; f(20) = 1
    expected = 0.5**0.75 * (-1.3 - math.log(5)) ** 2 + (1.0 - math.log(20)) ** 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert model.vectors().tolist() == [[1.5, 2.5], [1.0, 0.0]]  # w + w̃


def test_words_that_share_contexts_end_up_close():
    """Two topics: words 0-4 only ever appear among themselves, 5-9 likewise."""
    rng = np.random.default_rng(0)
    corpus = np.concatenate([rng.integers(0, 5, 40) if i % 2 else rng.integers(5, 10, 40) for i in range(100)])
    counts = cooccurrence(corpus, 10, window=3)
    model, losses = fit_glove(counts, GloVeConfig(vocab_size=10, embed_dim=8, x_max=10.0), epochs=60, batch_size=16)
    assert losses[-1] < 0.1 * losses[0]
    v = model.vectors()
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    similarity = v @ v.T - 2 * np.eye(10)  # a word is not its own neighbour
    nearest = np.argsort(-similarity, axis=1)[:, :4]  # (10, 4)
    assert ((nearest < 5) == (np.arange(10) < 5)[:, None]).all()  # each word's 4 nearest are its topic's


def test_glove_on_text_reads_words_seen_often_enough():
    text = "the cat sat on the mat\n" * 20 + "a rare word\n"
    vectors, losses = glove_on_text(text, GloVeConfig(vocab_size=1, embed_dim=4), min_count=3, window=2, epochs=5)
    assert vectors.words == ["the", "cat", "mat", "on", "sat"] and vectors.vectors.shape == (5, 4)
    assert losses[-1] < losses[0]
    with pytest.raises(ValueError, match="GloVe needs co-occurrence counts"):
        glove_on_text("lonely", GloVeConfig(vocab_size=1), min_count=1)


def test_running_text_read_as_counts_trains_the_glove_kind():
    import polars as pl

    from components.config import SplitConfig, TextConfig
    from components.data.corpus_preparation import TOKENS, prepare_corpus
    from components.data.fitted_state import state_from_dict
    from components.data.preparation import LABEL
    from components.training.loop import loop_config, train_model
    from tests.unit.test_loop import MemorySession

    rng = np.random.default_rng(0)
    topics = (["sea", "ship", "sail", "wave", "port"], ["tree", "leaf", "root", "wood", "bark"])
    texts = [" ".join(rng.choice(topics[i % 2], 30)) + "\n" for i in range(60)]
    corpus = pl.DataFrame({"text": texts, "_source_file": ["f.txt"] * 60, "_row": list(range(60))})
    split = SplitConfig(ratios={"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)
    silver, state = prepare_corpus(corpus, split, TextConfig(tokenizer={"kind": "word"}, features="cooccurrence", window=3))
    rows = silver["train"]
    assert rows.schema[LABEL] == pl.Float32 and rows.height > 0 and min(rows[LABEL]) > 0
    # the counts rows are the split's co-occurrence matrix, entry by entry
    ids = [state.tokenizer.encode("".join(t for t, s in zip(texts, _splits(corpus, split)) if s == "train"))]
    expected = cooccurrence(np.array(ids[0]), state.tokenizer.vocab_size_, 3, first_word=4)
    assert rows.height == expected.nnz
    i, j = rows[TOKENS][0].to_list()
    assert rows[LABEL][0] == pytest.approx(expected[i, j])
    batch = {TOKENS: np.array([np.array(p) for p in rows[TOKENS].to_list()], dtype=object), LABEL: rows[LABEL].to_numpy()}
    x, y = state.batch_inputs(batch), state.batch_labels(batch)
    assert x.shape == (rows.height, 2) and y.dtype == np.float32 and state.info.input_shape == (2,)
    assert state_from_dict(state.to_dict()).features == "cooccurrence"

    config = loop_config({"kind": "glove", "params": {"embed_dim": 8, "x_max": 10.0}},
                         {"epochs": 40, "batch_size": 64, "optimizer": {"name": "adagrad", "lr": 0.1}}, state.info)
    session = MemorySession(x, y)
    session.data["val"] = (x, y)
    history = train_model(config, session)
    assert history[-1]["val_loss"] < 0.2 * history[0]["val_loss"]


def _splits(corpus, split):
    from components.data.splits import assign_splits

    return assign_splits(corpus, split, "text").to_list()
