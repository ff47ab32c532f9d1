"""word2vec as a pipeline kind: pairs drawn from batches of windows, the task's loss and its
validation, the report's numbers, the requests and the bundle's answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from components.artifacts.bundle import Bundle
from components.config import TrainingConfig
from components.data.corpus_preparation import LanguageModelState
from components.data.embedding_requests import EmbeddingQuery, embedding_queries_from_instances
from components.data.schema import InvalidInput
from components.data.skipgrams import window_pairs
from components.data.tokenizers import SPECIALS, WordTokenizer
from components.data.word_vectors import WordVectors
from components.evaluation.embeddings_report import embeddings_report, glove_agreement
from components.models import build
from components.models.word2vec import Word2Vec, Word2VecConfig
from components.training.tasks import WordEmbeddings

S = len(SPECIALS)  # ids below this are <PAD>, <UNK>, <BOS>, <EOS>


def test_window_pairs_within_reach_and_never_with_specials():
    x = torch.tensor([[4, 5, 6, 1, 7, 0, 0]])  # words 4 5 6, <UNK>, word 7, padding
    centers, contexts = window_pairs(x, window=1, keep=None)
    # reach is always 1 with window 1: neighbours only, both ways; <UNK> and <PAD> never pair
    assert sorted(zip(centers.tolist(), contexts.tolist())) == [(4, 5), (5, 4), (5, 6), (6, 5)]
    centers, contexts = window_pairs(x, window=4, keep=None, generator=torch.Generator().manual_seed(0))
    pairs = set(zip(centers.tolist(), contexts.tolist()))
    assert pairs <= {(a, b) for a in (4, 5, 6, 7) for b in (4, 5, 6, 7) if a != b} and (5, 4) in pairs
    # a word kept with chance 0 pairs with nothing
    keep = torch.ones(8)
    keep[5] = 0.0
    centers, contexts = window_pairs(x, window=1, keep=keep)
    assert len(centers) == 0
    assert len(window_pairs(torch.tensor([[4], [5]]), window=3, keep=None)[0]) == 0  # one-token windows


def _state(words: list[str], counts: list[int]) -> LanguageModelState:
    tokenizer = WordTokenizer(lower=True).fit([" ".join(w for w, c in zip(words, counts) for _ in range(c))])
    assert tokenizer.vocab_[S:] == words  # most frequent first
    return LanguageModelState(tokenizer=tokenizer, max_length=8, token_counts=(0,) * S + tuple(counts))


def test_the_task_learns_two_topics_and_validates_on_the_same_pairs_each_time():
    """Words 4-8 only ever appear among themselves, 9-13 likewise."""
    rng = np.random.default_rng(0)
    windows = np.stack([rng.integers(4, 9, 16) if i % 2 else rng.integers(9, 14, 16) for i in range(200)])
    counts = (0,) * S + tuple(int(c) for c in np.bincount(windows.ravel(), minlength=14)[S:])
    state = LanguageModelState(tokenizer=WordTokenizer().fit([" ".join(f"w{i}" for i in range(10))]), max_length=16,
                               token_counts=counts)
    model = build({"kind": "word2vec", "params": {"embed_dim": 8, "window": 2, "subsample": 0}}, state.info)
    task = WordEmbeddings(model, state.info, TrainingConfig())
    batch = {"x": torch.from_numpy(windows[:50]), "y": torch.from_numpy(windows[:50])}
    start = task.validation_step(batch)
    assert start["nll"] / start["pairs"] == pytest.approx(6 * math.log(2))  # zero output vectors: (1 + 5)·ln 2
    assert task.validation_step(batch) == start  # the same pairs and noise every time
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(30):
        for i in range(0, 200, 50):
            loss = task.loss(model, {"x": torch.from_numpy(windows[i : i + 50])})
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    done = task.metrics(task.validation_step(batch), {})
    assert done["loss"] < 0.8 * start["nll"] / start["pairs"]
    v = torch.nn.functional.normalize(model(torch.arange(4, 14)), dim=1)  # (10, 8)
    similarity = v @ v.T
    same = similarity[:5, :5].sum() - 5 + similarity[5:, 5:].sum() - 5
    assert same / 40 > similarity[:5, 5:].mean() + 0.3  # topics end up apart


def test_the_report_loss_starts_at_chance_and_agreement_is_spearmans():
    state = _state(["sea", "ship", "sail", "tree", "leaf"], [9, 8, 7, 6, 5])
    model = build({"kind": "word2vec", "params": {"embed_dim": 4, "subsample": 0}}, state.info)
    windows = np.array([[4, 5, 6, 7, 8, 4, 5, 6]])
    report = embeddings_report(model, windows, windows, state.tokenizer.vocab_, state.token_counts)
    assert report.metrics["test_loss"] == pytest.approx(6 * math.log(2)) and report.metrics["test_pairs"] > 0
    words = ["sea", "ship", "sail", "tree"]
    ours = WordVectors(words, np.array([[1, 0], [0.9, 0.1], [0.7, 0.3], [0, 1]], dtype=np.float32))
    assert glove_agreement(ours, ours) == pytest.approx(1.0)
    flipped = WordVectors(words, np.array([[0, 1], [0.1, 0.9], [0.3, 0.7], [1, 0]], dtype=np.float32))
    assert glove_agreement(ours, flipped) == pytest.approx(1.0)  # same similarities, other axes
    opposite = WordVectors(words, np.array([[1, 0], [0, 1], [0.7, 0.7], [0.9, 0.1]], dtype=np.float32))
    assert glove_agreement(ours, opposite) < 0.5


def _bundle() -> Bundle:
    state = _state(["king", "queen", "man", "woman", "apple"], [5, 4, 3, 2, 1])
    model = Word2Vec(Word2VecConfig(vocab_size=S + 5, embed_dim=3))
    with torch.no_grad():
        model.inputs.weight[S:] = torch.tensor([[1, 1, 0], [1, 0, 1], [0, 1, 0], [0, 0, 1], [1, -1, -1]])
    return Bundle(model=model, spec={"kind": "word2vec", "params": {"embed_dim": 3}}, features=state, metrics={},
                  lineage={})


def test_the_bundle_answers_words_and_analogies():
    bundle = _bundle()
    assert bundle.task == "embeddings"
    queries = embedding_queries_from_instances(
        ["King", {"positive": ["king", "woman"], "negative": ["man"], "k": 1}], bundle.features, 8)
    assert queries == [EmbeddingQuery(word="king"), EmbeddingQuery(positive=("king", "woman"), negative=("man",), k=1)]
    word, analogy = bundle.predict(queries)
    assert word["word"] == "king" and word["vector"] == [1.0, 1.0, 0.0]
    assert [n["word"] for n in word["nearest"]][:2] == ["man", "queen"]  # cosines 0.707, 0.5, then 0
    # unit vectors: king/√2 - man + woman = (0.707, -0.293, 1), whose cosine with queen (1, 0, 1)/√2 is 0.95857
    assert analogy == {"positive": ["king", "woman"], "negative": ["man"],
                       "nearest": [{"word": "queen", "similarity": 0.95857}]}


@pytest.mark.parametrize(("instances", "field", "says"), [
    (["emperor"], "instances[0].word", "'emperor' has no vector: it is not among the model's 5 words"),
    ([""], "instances[0].word", "must be a non-empty word"),
    ([{"word": "king", "k": 101}], "instances[0].k", "from 1 to 100"),
    ([{"positive": [], "negative": ["man"]}], "instances[0].positive", "at least one word"),
    ([{"positive": ["king"], "negative": "man"}], "instances[0].negative", "must be a list of words"),
    ([{"word": "king", "top": 3}], "instances[0].top", "unknown field"),
    ([3], "instances[0]", "must be"),
])
def test_bad_queries_name_the_field(instances, field, says):
    with pytest.raises(InvalidInput) as caught:
        embedding_queries_from_instances(instances, _bundle().features, 8)
    assert caught.value.field == field and says in caught.value.message
