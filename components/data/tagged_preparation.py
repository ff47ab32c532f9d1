"""Bronze tagged sentences -> silver splits: assign splits, fit the word vocabulary on the
training split's tokens.

Silver tagged tables hold each sentence's token ids (`tokens`) and tag ids (`label`, one
per token). Batches are padded where they are made (`pad_ids`): the inputs (B, T) and the
tags (B, T), whose padding the inputs' own mask (`x != 0`) covers. The vocabulary, the tag
set, the length limit and the tags' training counts (for cost-sensitive weights) travel in
`TaggedState`, saved as the bundle's preprocess.json.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl

from components.config import SplitConfig, TaggingConfig
from components.data.modalities.info import DataInfo
from components.data.modalities.text import pad_ids
from components.data.preparation import LABEL, SPLITS
from components.data.preprocessing import LabelIndex
from components.data.splits import assign_splits
from components.data.tokenizers import WordTokenizer, tokenizer_from_dict

TOKENS = "tokens"


@dataclass(frozen=True)
class TaggedState:
    """Everything needed to turn sentences into model inputs and tag ids back into tags."""

    tokenizer: WordTokenizer
    tags: LabelIndex
    max_length: int  # tokens a model reads; longer requests are refused
    tag_counts: tuple[int, ...]  # tokens of each tag in the training split

    modality: ClassVar[str] = "tagged"
    task: ClassVar[str] = "tagging"
    columns: ClassVar[list[str]] = [TOKENS]  # the silver columns a model's inputs come from
    label_dtype: ClassVar[str] = "int64"

    @property
    def info(self) -> DataInfo:
        return DataInfo(
            modality="tagged", task="tagging", input_shape=(self.max_length,),
            classes=tuple(str(t) for t in self.tags.classes_), vocab_size=self.tokenizer.vocab_size_,
            class_counts=self.tag_counts,
        )

    @property
    def out_features(self) -> int:
        return self.info.out_features

    def inputs(self, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        """(N, max_length) int64 ids of sentences given as tokens: the one collate of
        training, scoring and serving."""
        return pad_ids([self.tokenizer.encode_tokens(list(tokens)) for tokens in sentences], self.max_length)

    def batch_inputs(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Model inputs of a batch of silver rows (Ray Data's numpy batches)."""
        return pad_ids(list(batch[TOKENS]), self.max_length)

    def batch_labels(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """(N, max_length) tag ids of a batch of silver rows; the padding is masked by the inputs'."""
        return pad_ids(list(batch[LABEL]), self.max_length)

    def tag_names(self, paths: Sequence[Sequence[int]]) -> list[list[str]]:
        """Tag ids -> tags, sentence by sentence."""
        return [self.tags.decode(list(path)) for path in paths]

    def to_dict(self) -> dict[str, Any]:
        return {
            "modality": "tagged", "tokenizer": self.tokenizer.to_dict(), "tags": self.tags.to_dict(),
            "max_length": self.max_length, "tag_counts": list(self.tag_counts),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TaggedState":
        tokenizer = tokenizer_from_dict(d["tokenizer"])
        if not isinstance(tokenizer, WordTokenizer):
            raise ValueError(f"a tagged state's tokenizer is a word vocabulary, got kind {d['tokenizer'].get('kind')!r}")
        return cls(tokenizer=tokenizer, tags=LabelIndex.from_dict(d["tags"]), max_length=int(d["max_length"]),
                   tag_counts=tuple(int(c) for c in d["tag_counts"]))


def prepare_tagged(
    bronze: pl.DataFrame, split: SplitConfig, tagging: TaggingConfig
) -> tuple[dict[str, pl.DataFrame], TaggedState]:
    """Split `bronze` sentences, fit the vocabulary on the train sentences only, and return
    each split's silver frame with the state. The tag set is every tag in bronze (labels,
    not features: a tag only val holds still needs an index), counted on train."""
    if bronze.height == 0:
        raise ValueError("the bronze table has no sentences: ingest data before preprocessing")
    rows = bronze.with_columns(assign_splits(bronze, split, "tags"))
    parts = {name: rows.filter(pl.col("_split") == name) for name in SPLITS}
    if parts["train"].height == 0:
        raise ValueError(f"the train split has no sentences ({bronze.height} in bronze, split.ratios {split.ratios})")
    tokenizer = WordTokenizer(lower=tagging.lower, min_freq=tagging.min_freq, max_vocab=tagging.max_vocab)
    tokenizer.fit_tokens(parts["train"]["tokens"].to_list())
    tags = LabelIndex().fit(t for sentence in bronze["tags"].to_list() for t in sentence)
    counts = Counter(t for sentence in parts["train"]["tags"].to_list() for t in sentence)
    state = TaggedState(tokenizer=tokenizer, tags=tags, max_length=tagging.max_length,
                        tag_counts=tuple(counts.get(t, 0) for t in tags.classes_))
    silver = {
        name: pl.DataFrame(
            {TOKENS: [tokenizer.encode_tokens(s) for s in part["tokens"].to_list()],
             LABEL: [tags.encode(s).tolist() for s in part["tags"].to_list()]},
            schema={TOKENS: pl.List(pl.Int32), LABEL: pl.List(pl.Int32)},
        )
        for name, part in parts.items()
    }
    return silver, state
