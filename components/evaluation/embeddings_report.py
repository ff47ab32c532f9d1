"""The test report of a word-vector model (word2vec or GloVe trained on running text).

    test_loss               word2vec: the negative-sampling loss per pair on the test windows,
                            pairs and noise drawn with a fixed seed ((1 + negatives)·ln 2
                            untrained); GloVe: the weighted squared error per pair of the
                            test text's own co-occurrence counts
    test_glove_spearman     how far the model's similarities agree with GloVe 6B 50d's: the
                            Spearman correlation of the cosine similarities of every pair of
                            its most frequent words that GloVe knows (0 for random vectors)
    test_analogy_accuracy   word2vec's analogy questions whose four words the model knows,
                            answered by 3CosAdd (with `test_analogy_questions`, how many)

GloVe and the questions are read from the packages `make setup` installs; without them the
report leaves those metrics out.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn as nn

from components.data.skipgrams import keep_probabilities, negative_distribution, sampled_pairs
from components.data.tokenizers import SPECIALS
from components.data.word_vectors import WordVectors, load_vectors
from components.evaluation.analogies import analogy_accuracy, covered, questions_file, read_questions
from components.evaluation.report import HoldoutReport
from components.models.glove import GloVe
from components.models.word2vec import pair_loss

_SEED = 1234
FREQUENT_WORDS = 300  # the words whose pairwise similarities are compared with GloVe's


def embeddings_report(model: nn.Module, inputs: np.ndarray, labels: np.ndarray, words: list[str],
                      counts: tuple[int, ...]) -> HoldoutReport:
    """`model` on the test split: a Word2Vec on windows `inputs` (N, T) ids, a GloVe on
    co-occurrence rows `inputs` (N, 2) with counts `labels` (N,); `words` is the tokenizer's
    vocabulary (specials first) and `counts` each id's training occurrences."""
    model.eval()
    with torch.no_grad():
        if isinstance(model, GloVe):
            x, y = torch.from_numpy(np.asarray(inputs)).long(), torch.from_numpy(np.asarray(labels, dtype=np.float32))
            pairs = len(x)
            total = model(x[:, 0], x[:, 1], y).item() if pairs else 0.0
        else:
            total, pairs = _word2vec_loss(model, inputs, counts)
    metrics = {"test_loss": total / pairs if pairs else math.nan, "test_pairs": float(pairs)}
    return HoldoutReport({**metrics, **_quality(words, model.vectors())})


def _word2vec_loss(model: nn.Module, inputs: np.ndarray, counts: tuple[int, ...], batch_size: int = 256
                   ) -> tuple[float, int]:
    """The summed negative-sampling loss of the windows' pairs, and how many pairs."""
    config = model.config
    counts_ = np.asarray(counts, dtype=np.float64)
    counts_[: len(SPECIALS)] = 0
    noise = torch.from_numpy(negative_distribution(counts_)).float()
    keep = torch.from_numpy(keep_probabilities(counts_, config.subsample)).float() if config.subsample > 0 else None
    generator = torch.Generator().manual_seed(_SEED)
    total, pairs = 0.0, 0
    for start in range(0, len(inputs), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(inputs[start : start + batch_size])).long()
        centers, contexts, negatives = sampled_pairs(x, config.window, config.negatives, noise, keep, generator)
        if len(centers):
            total += pair_loss(model, config.mode, centers, contexts, negatives).item() * len(centers)
            pairs += len(centers)
    return total, pairs


def _quality(words: list[str], vectors: np.ndarray) -> dict[str, float]:
    """Agreement with GloVe 6B 50d and analogy accuracy of the vectors (rows of `words`)."""
    metrics: dict[str, float] = {}
    first = len(SPECIALS)
    ours = WordVectors(words[first:], vectors[first:])
    try:
        glove = load_vectors("glove_6b_50d")
    except (FileNotFoundError, ImportError):
        glove = None
    if glove is not None:
        metrics["test_glove_spearman"] = glove_agreement(ours, glove)
    try:
        questions = covered(read_questions(questions_file().read_text(encoding="utf-8")), ours)
    except FileNotFoundError:
        questions = {}
    if questions:
        scores = analogy_accuracy(ours, questions, limit=len(ours.words))
        metrics["test_analogy_accuracy"] = scores["all"]
        metrics["test_analogy_questions"] = float(sum(len(q) for q in questions.values()))
    return metrics


def glove_agreement(ours: WordVectors, reference: WordVectors, words: int = FREQUENT_WORDS) -> float:
    """Spearman correlation between `ours` and `reference` cosine similarities over every pair of
    the first `words` of `ours` (most frequent first) that are words of letters `reference` has."""
    from scipy.stats import spearmanr

    shared = [w for w in ours.words if w.isalpha() and reference.row(w) is not None][:words]
    if len(shared) < 3:
        return math.nan
    a = _unit(np.stack([ours.vector(w) for w in shared]))
    b = _unit(np.stack([reference.vector(w) for w in shared]))
    upper = np.triu_indices(len(shared), k=1)
    return float(spearmanr((a @ a.T)[upper], (b @ b.T)[upper]).statistic)


def _unit(m: np.ndarray) -> np.ndarray:
    return m / (np.linalg.norm(m, axis=1, keepdims=True) + 1e-12)
