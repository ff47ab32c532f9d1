"""Bronze passages -> silver windows for a language model: assign splits, fit the tokenizer
on the training passages only, and cut each split's running text into windows; or, with
`text.features: cooccurrence` (GloVe), count each split's word co-occurrences instead.

A split's passages are joined in file order and tokenized into one stream, cut into
windows of `max_length + 1` tokens that overlap by one, so each window is `max_length`
inputs and the same tokens shifted by one as targets. Silver holds each window's ids in
`tokens` and in `label` (the targets are read from it, shifted). Co-occurrence silver holds
one row per pair of words that co-occur in the split: `tokens` [i, j] and `label` the count
X_ij (1/distance each, `components/data/cooccurrence.py`). The tokenizer, the window length
and what the rows are travel in `LanguageModelState`, saved as the bundle's preprocess.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl

from components.config import SplitConfig, TextConfig
from components.data.modalities.info import DataInfo
from components.data.cooccurrence import cooccurrence
from components.data.modalities.text import pad_ids
from components.data.preparation import LABEL, SPLITS
from components.data.splits import assign_splits
from components.data.tokenizers import SPECIALS, Tokenizer, make_tokenizer, tokenizer_from_dict

TOKENS = "tokens"


@dataclass(frozen=True)
class LanguageModelState:
    """The tokenizer and the window length of a language model."""

    tokenizer: Tokenizer
    max_length: int  # tokens a model reads at once; a prompt may be no longer
    token_counts: tuple[int, ...] | None = None  # each id's occurrences in the training text (word2vec's sampling)
    features: str = "tokens"  # windows of tokens, or "cooccurrence": pairs of words and their counts (GloVe)
    window: int = 10  # cooccurrence: words on each side that count

    modality: ClassVar[str] = "text"
    task: ClassVar[str] = "language_model"
    columns: ClassVar[list[str]] = [TOKENS]

    @property
    def label_dtype(self) -> str:
        return "float32" if self.features == "cooccurrence" else "int64"

    @property
    def info(self) -> DataInfo:
        shape = (2,) if self.features == "cooccurrence" else (self.max_length,)
        return DataInfo(modality="text", task="language_model", input_shape=shape,
                        vocab_size=self.tokenizer.vocab_size_, token_counts=self.token_counts)

    @property
    def out_features(self) -> int:
        return self.tokenizer.vocab_size_

    def batch_inputs(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """(N, max_length) ids: each window but its last token; co-occurrence rows: (N, 2) [i, j]."""
        if self.features == "cooccurrence":
            return np.stack([np.asarray(p, dtype=np.int64) for p in batch[TOKENS]]) if len(batch[TOKENS]) else \
                np.zeros((0, 2), dtype=np.int64)
        return pad_ids([w[:-1] for w in batch[TOKENS]], self.max_length)

    def batch_labels(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """(N, max_length) targets: each window but its first token (the next token of each input);
        co-occurrence rows: (N,) float32 counts."""
        if self.features == "cooccurrence":
            return np.asarray(batch[LABEL], dtype=np.float32)
        return pad_ids([w[1:] for w in batch[LABEL]], self.max_length)

    def to_dict(self) -> dict[str, Any]:
        return {"modality": "text", "task": "language_model", "tokenizer": self.tokenizer.to_dict(),
                "max_length": self.max_length, "features": self.features, "window": self.window,
                "token_counts": list(self.token_counts) if self.token_counts is not None else None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LanguageModelState":
        counts = d.get("token_counts")
        return cls(tokenizer=tokenizer_from_dict(d["tokenizer"]), max_length=int(d["max_length"]),
                   token_counts=tuple(int(c) for c in counts) if counts is not None else None,
                   features=d.get("features", "tokens"), window=int(d.get("window", 10)))


def windows(ids: list[int], length: int) -> list[list[int]]:
    """`ids` cut into windows of `length + 1` tokens overlapping by one; the last may be shorter
    (a window of one token predicts nothing and is dropped)."""
    return [ids[i : i + length + 1] for i in range(0, max(len(ids) - 1, 0), length)]


def prepare_corpus(
    bronze: pl.DataFrame, split: SplitConfig, text: TextConfig
) -> tuple[dict[str, pl.DataFrame], LanguageModelState]:
    """Split `bronze` passages, fit the tokenizer on the train passages only, and return each
    split's silver windows with the state."""
    if bronze.height == 0:
        raise ValueError("the bronze table has no text: ingest data before preprocessing")
    rows = bronze.with_columns(assign_splits(bronze, split, "text")).sort("_source_file", "_row")
    parts = {name: rows.filter(pl.col("_split") == name)["text"].to_list() for name in SPLITS}
    if not parts["train"]:
        raise ValueError(f"the train split has no passages ({bronze.height} in bronze, split.ratios {split.ratios})")
    tokenizer = make_tokenizer(text.tokenizer.kind, **text.tokenizer.params())
    tokenizer.fit(parts["train"])
    streams = {name: tokenizer.encode("".join(passages)) for name, passages in parts.items()}
    counts = np.bincount(np.asarray(streams["train"], dtype=np.int64), minlength=tokenizer.vocab_size_)
    state = LanguageModelState(tokenizer=tokenizer, max_length=text.max_length, token_counts=tuple(counts.tolist()),
                               features=text.features, window=text.window)
    if text.features == "cooccurrence":
        return {name: _cooccurrence_rows(stream, tokenizer.vocab_size_, text.window) for name, stream in streams.items()}, state
    silver = {}
    for name, stream in streams.items():
        cut = windows(stream, text.max_length)
        silver[name] = pl.DataFrame({TOKENS: cut, LABEL: cut}, schema={TOKENS: pl.List(pl.Int32), LABEL: pl.List(pl.Int32)})
    return silver, state


def _cooccurrence_rows(stream: list[int], vocab_size: int, window: int) -> pl.DataFrame:
    """One row per pair of words that co-occur in `stream`: [i, j] and X_ij (specials count with nothing)."""
    pairs = cooccurrence(np.asarray(stream, dtype=np.int64), vocab_size, window, first_word=len(SPECIALS)).tocoo()
    ids = np.stack([pairs.row, pairs.col], axis=1).astype(np.int32)  # (P, 2)
    return pl.DataFrame({TOKENS: ids.tolist(), LABEL: pairs.data.astype(np.float32)},
                        schema={TOKENS: pl.List(pl.Int32), LABEL: pl.Float32})
