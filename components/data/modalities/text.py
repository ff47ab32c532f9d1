"""The text modality's model inputs, made the same way in training, scoring and serving.

Token id sequences become either one padded (N, T) int64 batch (`pad_ids`, for sequence
models) or (N, V) bag-of-words vectors (`BagOfWords`, for the kinds that read fixed-width
vectors). Every vocabulary gives `<PAD>` id 0 (components/data/tokenizers.py), so a padded
batch carries its own mask, `x != 0`; a model reads the lengths back with `lengths` and
never looks at the padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfTransformer

PAD_ID = 0


def word_ids(x: torch.Tensor) -> torch.Tensor:
    """(N, T) word ids of a batch: `x` itself, or its first column of each token when tokens
    carry their characters too ((N, T, 1 + W), `pad_chars`)."""
    return x[..., 0] if x.dim() == 3 else x


def pad_chars(words: Sequence[Sequence[Sequence[int]]], length: int, word_length: int) -> np.ndarray:
    """(N, length, word_length) int64 character ids of each sentence's words, each word cut
    at `word_length` and padded with PAD_ID, each sentence at `length` words."""
    out = np.full((len(words), length, word_length), PAD_ID, dtype=np.int64)
    for i, sentence in enumerate(words):
        for j, chars in enumerate(sentence[:length]):
            chars = np.asarray(chars, dtype=np.int64)[:word_length]
            out[i, j, : len(chars)] = chars
    return out


def pad_ids(sequences: Sequence[Sequence[int]], length: int) -> np.ndarray:
    """(N, length) int64: each sequence cut at `length` and padded with PAD_ID after it."""
    out = np.full((len(sequences), length), PAD_ID, dtype=np.int64)
    for i, ids in enumerate(sequences):
        ids = np.asarray(ids, dtype=np.int64)[:length]
        out[i, : len(ids)] = ids
    return out


def lengths(x: torch.Tensor) -> torch.Tensor:
    """(N,) tokens before the padding of each row of an (N, T) batch of ids (or (N, T, 1 + W)
    with characters)."""
    return (word_ids(x) != PAD_ID).sum(dim=1)


def cut_to_longest(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) (N, T) ids and per-token targets as int64, cut to the longest row of `x`:
    columns that are padding in every row carry nothing."""
    longest = max(int(lengths(x).max()), 1)
    return x.long()[:, :longest], y.long()[:, :longest]


class BagOfWords(BaseEstimator):
    """Token id sequences -> (N, V) vectors of token counts or TF-IDF weights, for the kinds
    that read a fixed-width vector (logistic regression, naive Bayes, an MLP).

    The counting is over the fitted tokenizer's ids (one column per vocabulary entry; a
    sequence holds no padding), and the weighting is scikit-learn's `TfidfTransformer`:
    idf = ln((1 + n) / (1 + df)) + 1 from the training split, tf raw or 1 + ln(tf)
    (`sublinear_tf`), each row scaled to unit length. Learned: `idf_` (tfidf only).
    """

    def __init__(self, *, vocab_size: int, weighting: Literal["counts", "tfidf"] = "tfidf", sublinear_tf: bool = False) -> None:
        self.vocab_size = vocab_size
        self.weighting = weighting
        self.sublinear_tf = sublinear_tf

    def fit(self, sequences: Sequence[Sequence[int]]) -> "BagOfWords":
        if self.weighting not in ("counts", "tfidf"):
            raise ValueError(f"weighting must be 'counts' or 'tfidf', got {self.weighting!r}")
        if self.weighting == "tfidf":
            self.idf_ = self._transformer().fit(self._counts(sequences)).idf_.tolist()
        else:
            self.idf_ = None
        return self

    def transform(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """(N, vocab_size) float32 counts, or TF-IDF rows of unit length."""
        if not hasattr(self, "idf_"):
            raise NotFittedError("BagOfWords is not fitted yet: call fit(sequences) first")
        counts = self._counts(sequences)
        if self.idf_ is None:
            return counts.toarray().astype(np.float32)
        transformer = self._transformer()
        transformer.idf_ = np.asarray(self.idf_)
        return transformer.transform(counts).toarray().astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size, "weighting": self.weighting, "sublinear_tf": self.sublinear_tf,
                "idf_": self.idf_}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BagOfWords":
        bag = cls(vocab_size=int(d["vocab_size"]), weighting=d["weighting"], sublinear_tf=bool(d["sublinear_tf"]))
        bag.idf_ = None if d["idf_"] is None else [float(v) for v in d["idf_"]]
        return bag

    def _transformer(self) -> TfidfTransformer:
        return TfidfTransformer(sublinear_tf=self.sublinear_tf)

    def _counts(self, sequences: Sequence[Sequence[int]]) -> sparse.csr_matrix:
        ids = [np.asarray(s, dtype=np.int64) for s in sequences]
        rows = np.repeat(np.arange(len(ids)), [len(s) for s in ids])
        cols = np.concatenate(ids) if ids else np.empty(0, dtype=np.int64)
        data = np.ones(len(cols), dtype=np.float64)
        # duplicates (a token twice in a row) are summed into counts
        return sparse.csr_matrix((data, (rows, cols)), shape=(len(ids), self.vocab_size))
