"""Training word2vec in this process: pairs from `skipgrams`, noise words from
unigram^(3/4), Adam on the negative-sampling loss; on token ids (`fit_word2vec`) or on
raw text (`word2vec_on_text`, which returns the vectors by word)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from components.data.skipgrams import keep_probabilities, negative_distribution, skipgram_pairs
from components.data.tokenizers import SPECIALS, WordTokenizer
from components.data.word_vectors import WordVectors
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
    tokenizer = WordTokenizer(lower=True, min_freq=min_count).fit(text.splitlines())
    first = len(SPECIALS)
    ids = np.array([i for i in tokenizer.encode(text) if i >= first], dtype=np.int64)  # unknown words left out
    model, losses = fit_word2vec(ids, replace(config, vocab_size=tokenizer.vocab_size_), **options)  # type: ignore[arg-type]
    return WordVectors(tokenizer.vocab_[first:], model.vectors()[first:]), losses
