"""Bronze sequence pairs -> silver splits: assign splits, fit a tokenizer per side on the
training pairs only.

Silver pair tables hold each source's token ids (`tokens`) and its target's (`label`,
wrapped in <BOS> ... <EOS>). Batches are padded where they are made: sources cut at
`max_source_length`, targets at `max_target_length` tokens plus the two markers. The two
tokenizers and the limits travel in `PairsState`, saved as the bundle's preprocess.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl

from components.config import PairsConfig, SchemaConfig, SplitConfig
from components.data.modalities.info import DataInfo
from components.data.modalities.text import pad_ids
from components.data.preparation import LABEL, SPLITS
from components.data.splits import assign_splits
from components.data.tokenizers import BOS_ID, EOS_ID, Tokenizer, make_tokenizer, tokenizer_from_dict

TOKENS = "tokens"


@dataclass(frozen=True)
class PairsState:
    source_tokenizer: Tokenizer
    target_tokenizer: Tokenizer
    source_column: str
    max_source_length: int
    max_target_length: int

    modality: ClassVar[str] = "pairs"
    task: ClassVar[str] = "seq2seq"
    columns: ClassVar[list[str]] = [TOKENS]
    label_dtype: ClassVar[str] = "int64"

    @property
    def info(self) -> DataInfo:
        return DataInfo(modality="pairs", task="seq2seq", input_shape=(self.max_source_length,),
                        vocab_size=self.source_tokenizer.vocab_size_,
                        target_vocab_size=self.target_tokenizer.vocab_size_)

    @property
    def out_features(self) -> int:
        return self.target_tokenizer.vocab_size_

    def inputs(self, sources: pl.DataFrame | Sequence[str]) -> np.ndarray:
        """(N, max_source_length) ids of raw rows (their source column) or of source texts."""
        texts = sources[self.source_column].to_list() if isinstance(sources, pl.DataFrame) else list(sources)
        return pad_ids(self.source_tokenizer.encode_batch(texts), self.max_source_length)

    def batch_inputs(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return pad_ids(list(batch[TOKENS]), self.max_source_length)

    def batch_labels(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """(N, max_target_length + 2) target ids: <BOS>, the target cut to its limit, <EOS>."""
        return pad_ids([_wrap(ids, self.max_target_length) for ids in batch[LABEL]], self.max_target_length + 2)

    def target_text(self, ids: Sequence[int]) -> str:
        return self.target_tokenizer.decode(list(ids))

    def to_dict(self) -> dict[str, Any]:
        return {"modality": "pairs", "source_tokenizer": self.source_tokenizer.to_dict(),
                "target_tokenizer": self.target_tokenizer.to_dict(), "source_column": self.source_column,
                "max_source_length": self.max_source_length, "max_target_length": self.max_target_length}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PairsState":
        return cls(tokenizer_from_dict(d["source_tokenizer"]), tokenizer_from_dict(d["target_tokenizer"]),
                   str(d["source_column"]), int(d["max_source_length"]), int(d["max_target_length"]))


def _wrap(ids: Sequence[int], length: int) -> list[int]:
    return [BOS_ID, *list(ids)[:length], EOS_ID]


def prepare_pairs(
    bronze: pl.DataFrame, schema: SchemaConfig, split: SplitConfig, pairs: PairsConfig
) -> tuple[dict[str, pl.DataFrame], PairsState]:
    """Split `bronze` pairs, fit each side's tokenizer on the train pairs only, and return
    each split's silver frame with the state."""
    if bronze.height == 0:
        raise ValueError("the bronze table has no pairs: ingest data before preprocessing")
    rows = bronze.with_columns(assign_splits(bronze, split, schema.target))
    parts = {name: rows.filter(pl.col("_split") == name) for name in SPLITS}
    if parts["train"].height == 0:
        raise ValueError(f"the train split has no pairs ({bronze.height} in bronze, split.ratios {split.ratios})")
    source = make_tokenizer(pairs.source_tokenizer.kind, **pairs.source_tokenizer.params())
    target = make_tokenizer(pairs.target_tokenizer.kind, **pairs.target_tokenizer.params())
    source.fit(parts["train"][pairs.source].to_list())
    target.fit(parts["train"][schema.target].to_list())
    state = PairsState(source, target, pairs.source, pairs.max_source_length, pairs.max_target_length)
    silver = {
        name: pl.DataFrame(
            {TOKENS: source.encode_batch(part[pairs.source].to_list()),
             LABEL: target.encode_batch(part[schema.target].to_list())},
            schema={TOKENS: pl.List(pl.Int32), LABEL: pl.List(pl.Int32)},
        )
        for name, part in parts.items()
    }
    return silver, state
