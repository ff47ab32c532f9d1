"""Bronze tagged sentences -> silver splits: assign splits, fit the word vocabulary on the
training split's tokens.

Silver tagged tables hold each sentence's token ids (`tokens`) and tag ids (`label`, one
per token); with `tagging.chars`, also its tokens as written (`words`), whose characters a
character vocabulary fitted on the training tokens reads. Batches are padded where they are
made (`pad_ids`, `pad_chars`): the inputs (B, T), or (B, T, 1 + W) with each token's
character ids after its id, and the tags (B, T), whose padding the inputs' own mask covers.
The vocabularies, the tag set, the length limits and the tags' training counts (for
cost-sensitive weights) travel in `TaggedState`, saved as the bundle's preprocess.json.
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
from components.data.modalities.text import pad_chars, pad_ids
from components.data.preparation import LABEL, SPLITS
from components.data.preprocessing import LabelIndex
from components.data.splits import assign_splits
from components.data.tokenizers import CharTokenizer, WordTokenizer, tokenizer_from_dict

TOKENS = "tokens"
WORDS = "words"


@dataclass(frozen=True)
class TaggedState:
    """Everything needed to turn sentences into model inputs and tag ids back into tags."""

    tokenizer: WordTokenizer
    tags: LabelIndex
    max_length: int  # tokens a model reads; longer requests are refused
    tag_counts: tuple[int, ...]  # tokens of each tag in the training split
    chars: CharTokenizer | None = None  # each token's characters too (tagging.chars)
    max_word_length: int = 0  # characters read per token, with `chars`

    modality: ClassVar[str] = "tagged"
    task: ClassVar[str] = "tagging"
    label_dtype: ClassVar[str] = "int64"

    @property
    def columns(self) -> list[str]:
        """The silver columns a model's inputs come from."""
        return [TOKENS, WORDS] if self.chars is not None else [TOKENS]

    @property
    def info(self) -> DataInfo:
        shape = (self.max_length, 1 + self.max_word_length) if self.chars is not None else (self.max_length,)
        return DataInfo(
            modality="tagged", task="tagging", input_shape=shape,
            classes=tuple(str(t) for t in self.tags.classes_), vocab_size=self.tokenizer.vocab_size_,
            class_counts=self.tag_counts, char_vocab_size=self.chars.vocab_size_ if self.chars is not None else None,
        )

    @property
    def out_features(self) -> int:
        return self.info.out_features

    def inputs(self, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        """(N, max_length) int64 ids of sentences given as tokens, or (N, max_length, 1 + W)
        with each token's character ids after its id: the one collate of training, scoring
        and serving."""
        ids = pad_ids([self.tokenizer.encode_tokens(list(tokens)) for tokens in sentences], self.max_length)
        return self._with_chars(ids, sentences)

    def batch_inputs(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Model inputs of a batch of silver rows (Ray Data's numpy batches)."""
        ids = pad_ids(list(batch[TOKENS]), self.max_length)
        return self._with_chars(ids, batch[WORDS]) if self.chars is not None else ids

    def _with_chars(self, ids: np.ndarray, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        if self.chars is None:
            return ids
        chars = pad_chars([[self.chars.encode(w) for w in words] for words in sentences], self.max_length,
                          self.max_word_length)  # (N, T, W)
        return np.concatenate([ids[:, :, None], chars], axis=2)  # (N, T, 1 + W)

    def batch_labels(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """(N, max_length) tag ids of a batch of silver rows; the padding is masked by the inputs'."""
        return pad_ids(list(batch[LABEL]), self.max_length)

    def tag_names(self, paths: Sequence[Sequence[int]]) -> list[list[str]]:
        """Tag ids -> tags, sentence by sentence."""
        return [self.tags.decode(list(path)) for path in paths]

    def to_dict(self) -> dict[str, Any]:
        chars = {"chars": self.chars.to_dict(), "max_word_length": self.max_word_length} if self.chars is not None else {}
        return {
            "modality": "tagged", "tokenizer": self.tokenizer.to_dict(), "tags": self.tags.to_dict(),
            "max_length": self.max_length, "tag_counts": list(self.tag_counts), **chars,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TaggedState":
        tokenizer = tokenizer_from_dict(d["tokenizer"])
        if not isinstance(tokenizer, WordTokenizer):
            raise ValueError(f"a tagged state's tokenizer is a word vocabulary, got kind {d['tokenizer'].get('kind')!r}")
        chars = tokenizer_from_dict(d["chars"]) if d.get("chars") is not None else None
        return cls(tokenizer=tokenizer, tags=LabelIndex.from_dict(d["tags"]), max_length=int(d["max_length"]),
                   tag_counts=tuple(int(c) for c in d["tag_counts"]), chars=chars,  # type: ignore[arg-type]
                   max_word_length=int(d.get("max_word_length", 0)))


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
    chars = CharTokenizer().fit(parts["train"]["tokens"].explode().to_list()) if tagging.chars else None
    state = TaggedState(tokenizer=tokenizer, tags=tags, max_length=tagging.max_length,
                        tag_counts=tuple(counts.get(t, 0) for t in tags.classes_), chars=chars,
                        max_word_length=tagging.chars.max_word_length if tagging.chars else 0)
    silver = {}
    for name, part in parts.items():
        columns = {TOKENS: [tokenizer.encode_tokens(s) for s in part["tokens"].to_list()],
                   LABEL: [tags.encode(s).tolist() for s in part["tags"].to_list()]}
        schema = {TOKENS: pl.List(pl.Int32), LABEL: pl.List(pl.Int32)}
        if chars is not None:
            columns[WORDS], schema[WORDS] = part["tokens"].to_list(), pl.List(pl.String)
        silver[name] = pl.DataFrame(columns, schema=schema)
    return silver, state
