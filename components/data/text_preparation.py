"""Bronze text rows -> silver splits: assign splits, fit the tokenizer (and the bag of
words' weights) on train only.

Silver text tables hold each row's token ids (`tokens`) and its class index (`label`).
Model inputs are made where batches are made, in Ray Data's read tasks for training and in
the endpoint for serving: padded ids cut at `text.max_length` (`pad_ids`) or bag-of-words
vectors (`BagOfWords`). The tokenizer, the labels, the length limit and the vectors'
weights travel in `TextState`, saved as the bundle's preprocess.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl

from components.config import SchemaConfig, SplitConfig, TextConfig
from components.data.modalities.info import DataInfo
from components.data.modalities.text import BagOfWords, pad_ids
from components.data.preparation import LABEL, SPLITS, class_answers
from components.data.preprocessing import LabelIndex
from components.data.splits import assign_splits
from components.data.tokenizers import Tokenizer, make_tokenizer, tokenizer_from_dict

TOKENS = "tokens"


@dataclass(frozen=True)
class TextState:
    """Everything needed to turn texts into model inputs and outputs into answers."""

    tokenizer: Tokenizer
    labels: LabelIndex
    column: str  # the raw rows' text column
    max_length: int  # tokens a model reads; longer requests are refused
    vectors: BagOfWords | None = None  # bag_of_words / tfidf: (N, V) vectors instead of (N, T) ids

    modality: ClassVar[str] = "text"
    task: ClassVar[str] = "classification"
    columns: ClassVar[list[str]] = [TOKENS]  # the silver columns a model's inputs come from
    label_dtype: ClassVar[str] = "int64"

    @property
    def info(self) -> DataInfo:
        vocab = self.tokenizer.vocab_size_
        return DataInfo(
            modality="text", task="classification", input_shape=(vocab,) if self.vectors else (self.max_length,),
            classes=tuple(str(c) for c in self.labels.classes_), vocab_size=vocab,
        )

    @property
    def out_features(self) -> int:
        return self.info.out_features

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, unknown tokens as <UNK> (not cut)."""
        return self.tokenizer.encode_batch(texts)

    def inputs(self, rows: pl.DataFrame | Sequence[str]) -> np.ndarray:
        """Model inputs of raw rows (their text column) or of texts."""
        texts = rows[self.column].to_list() if isinstance(rows, pl.DataFrame) else list(rows)
        return self._collate(self.encode(texts))

    def batch_inputs(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Model inputs of a batch of silver rows (Ray Data's numpy batches)."""
        return self._collate(list(batch[TOKENS]))

    def _collate(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """The one collate of training, scoring and serving: (N, max_length) int64 ids, or
        (N, V) float32 vectors (counted within the first max_length tokens)."""
        if self.vectors is not None:
            return self.vectors.transform([ids[: self.max_length] for ids in sequences])
        return pad_ids(sequences, self.max_length)

    def answers(self, output: np.ndarray) -> list[Any]:
        return class_answers(self.labels, output)

    def to_dict(self) -> dict[str, Any]:
        return {
            "modality": "text", "tokenizer": self.tokenizer.to_dict(), "labels": self.labels.to_dict(),
            "column": self.column, "max_length": self.max_length,
            "vectors": self.vectors.to_dict() if self.vectors is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TextState":
        return cls(
            tokenizer=tokenizer_from_dict(d["tokenizer"]), labels=LabelIndex.from_dict(d["labels"]),
            column=str(d["column"]), max_length=int(d["max_length"]),
            vectors=BagOfWords.from_dict(d["vectors"]) if d.get("vectors") else None,
        )


def prepare_text(
    bronze: pl.DataFrame, schema: SchemaConfig, split: SplitConfig, text: TextConfig
) -> tuple[dict[str, pl.DataFrame], TextState]:
    """Split `bronze` (stratified by label when asked), fit the tokenizer and the labels on
    the train rows only, and return each split's silver frame with the state."""
    if bronze.height == 0:
        raise ValueError("the bronze table has no rows: ingest data before preprocessing")
    rows = bronze.with_columns(assign_splits(bronze, split, schema.target, schema.time))
    parts = {name: rows.filter(pl.col("_split") == name) for name in SPLITS}
    if parts["train"].height == 0:
        raise ValueError(f"the train split has no rows ({bronze.height} in bronze, split.ratios {split.ratios})")
    tokenizer = make_tokenizer(text.tokenizer.kind, **text.tokenizer.params())
    tokenizer.fit(parts["train"][text.column].to_list())
    labels = LabelIndex().fit(parts["train"][schema.target].to_list())
    ids = {name: tokenizer.encode_batch(part[text.column].to_list()) for name, part in parts.items()}
    vectors = None
    if text.features != "tokens":
        weighting = "tfidf" if text.features == "tfidf" else "counts"
        vectors = BagOfWords(vocab_size=tokenizer.vocab_size_, weighting=weighting, sublinear_tf=text.sublinear_tf)
        vectors.fit([s[: text.max_length] for s in ids["train"]])
    state = TextState(tokenizer=tokenizer, labels=labels, column=text.column, max_length=text.max_length, vectors=vectors)
    silver = {
        name: pl.DataFrame(
            {TOKENS: ids[name], LABEL: state.labels.encode(part[schema.target].to_list())},
            schema={TOKENS: pl.List(pl.Int32), LABEL: pl.Int64},
        )
        for name, part in parts.items()
    }
    return silver, state
