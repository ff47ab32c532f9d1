"""Training word vectors in this process, on token ids or on raw text (`*_on_text`, which
return the vectors by word):

    word2vec  pairs from `skipgrams`, noise words from unigram^(3/4), Adam on the
              negative-sampling loss (`fit_word2vec`); the pipeline kind trains the same
              model on Ray
    GloVe     weighted least squares on the corpus's co-occurrence counts with AdaGrad, as
              the paper does (`fit_glove`)
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

import scipy.sparse as sparse

from components.data.cooccurrence import cooccurrence
from components.data.skipgrams import keep_probabilities, negative_distribution, skipgram_pairs
from components.data.tokenizers import SPECIALS, WordTokenizer
from components.data.word_vectors import WordVectors
from components.models.glove import GloVe, GloVeConfig
from components.models.word2vec import Word2Vec, Word2VecConfig


def fit_word2vec(
    ids: np.ndarray, config: Word2VecConfig, *, epochs: int = 5, batch_size: int = 1024, lr: float = 0.01,
    seed: int = 0,
) -> tuple[Word2Vec, list[float]]:
    """The trained model and its mean loss per epoch. `ids` is the corpus as one stream of
    token ids (0..vocab_size-1); pairs are drawn again each epoch (subsampling, windows)."""
    ids = np.asarray(ids, dtype=np.int64)
    counts = np.bincount(ids, minlength=config.vocab_size).astype(np.float64)
    keep = keep_probabilities(counts, config.subsample) if config.subsample > 0 else None
    window, negatives = config.window, config.negatives
    noise = torch.from_numpy(negative_distribution(counts))
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model = Word2Vec(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        centers, contexts = skipgram_pairs(ids, window, rng, keep)
        order = rng.permutation(len(centers))
        total, seen = 0.0, 0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            center, context = torch.from_numpy(centers[idx]), torch.from_numpy(contexts[idx])
            drawn = torch.multinomial(noise, len(idx) * negatives, replacement=True).view(len(idx), negatives)
            # cbow reads the context to score the center; one context word per pair here
            source, target = (center, context) if config.mode == "skipgram" else (context.unsqueeze(1), center)
            loss = model(source, target, drawn)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        losses.append(total / max(seen, 1))
    return model, losses


def word2vec_on_text(text: str, config: Word2VecConfig, min_count: int = 3, **options: object
                     ) -> tuple[WordVectors, list[float]]:
    """Word vectors of `text` (its lines are the documents): lower-cased words seen at least
    `min_count` times, in order of frequency, and the loss per epoch. `options` go to
    `fit_word2vec`; `config.vocab_size` is set from the words kept."""
    tokenizer, ids = _corpus_ids(text, min_count)
    model, losses = fit_word2vec(ids, replace(config, vocab_size=tokenizer.vocab_size_), **options)  # type: ignore[arg-type]
    return WordVectors(tokenizer.vocab_[len(SPECIALS):], model.vectors()[len(SPECIALS):]), losses


def fit_glove(
    counts: sparse.spmatrix, config: GloVeConfig, *, epochs: int = 25, batch_size: int = 1024, lr: float = 0.05,
    seed: int = 0,
) -> tuple[GloVe, list[float]]:
    """The trained model and its weighted squared error per nonzero count, per epoch, on the
    (V, V) co-occurrence counts (`components.data.cooccurrence`)."""
    pairs = sparse.coo_matrix(counts)
    if pairs.nnz == 0:
        raise ValueError("GloVe needs co-occurrence counts: the corpus has no two words within the window")
    i, j = torch.from_numpy(pairs.row.astype(np.int64)), torch.from_numpy(pairs.col.astype(np.int64))
    x = torch.from_numpy(pairs.data.astype(np.float32))
    torch.manual_seed(seed)
    model = GloVe(config)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            loss = model(i[idx], j[idx], x[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        losses.append(total / len(x))
    return model, losses


def glove_on_text(text: str, config: GloVeConfig, min_count: int = 3, window: int = 10, **options: object
                  ) -> tuple[WordVectors, list[float]]:
    """GloVe vectors of `text` as `word2vec_on_text` reads it, from counts within `window`
    words; `options` go to `fit_glove`."""
    tokenizer, ids = _corpus_ids(text, min_count)
    counts = cooccurrence(ids, tokenizer.vocab_size_, window, first_word=len(SPECIALS))
    model, losses = fit_glove(counts, replace(config, vocab_size=tokenizer.vocab_size_), **options)  # type: ignore[arg-type]
    return WordVectors(tokenizer.vocab_[len(SPECIALS):], model.vectors()[len(SPECIALS):]), losses


def _corpus_ids(text: str, min_count: int) -> tuple[WordTokenizer, np.ndarray]:
    """A word tokenizer fitted on `text`'s lines and the text as one stream of ids, unknown
    (rarer) words left out."""
    tokenizer = WordTokenizer(lower=True, min_freq=min_count).fit(text.splitlines())
    first = len(SPECIALS)
    return tokenizer, np.array([i for i in tokenizer.encode(text) if i >= first], dtype=np.int64)
