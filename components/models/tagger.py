"""Sequence tagging (named entities, the BANNER paper's shape): token embeddings -> a
bidirectional LSTM or GRU -> per-token emission scores -> a softmax per token, or a CRF
over the whole sentence (`components/models/crf.py`) whose BIO constraints come from the
tag names.

Inputs are (B, T) token ids padded with id 0; `forward` gives (B, T, K) emission scores
(logits for the softmax decoder), `decode` each sentence's best tag ids over its real
tokens. The training task (`components/training/tasks/tagging.py`) picks the loss: the
CRF's negative log-likelihood, or per-token cross-entropy (cost-sensitive or focal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from components.data.modalities.text import PAD_ID, lengths
from components.models.crf import CRF, bio_constraints
from components.models.registry import register

Decoder = Literal["softmax", "crf"]


@dataclass
class TaggerConfig:
    vocab_size: int
    out_features: int  # tags
    classes: list[str] = field(default_factory=list)  # the tags' names: BIO constraints for the CRF
    cell: Literal["gru", "lstm"] = "lstm"
    embed_dim: int = 64
    hidden: int = 64  # units per direction
    layers: int = 1
    dropout: float = 0.0  # on the embeddings, between stacked layers and before the emissions
    decoder: Decoder = "crf"
    constrain_bio: bool = True  # crf: forbid transitions BIO does not allow (needs classes)

    def __post_init__(self) -> None:
        if self.decoder not in get_args(Decoder):
            raise ValueError(f"decoder must be one of {list(get_args(Decoder))}, got {self.decoder!r}")
        if self.classes and len(self.classes) != self.out_features:
            raise ValueError(f"classes names {len(self.classes)} tags for out_features {self.out_features}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@register("tagger", task="tagging")
class Tagger(nn.Module):
    def __init__(self, config: TaggerConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=PAD_ID)
        cell = nn.LSTM if config.cell == "lstm" else nn.GRU
        self.rnn = cell(config.embed_dim, config.hidden, num_layers=config.layers, batch_first=True,
                        bidirectional=True, dropout=config.dropout if config.layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(2 * config.hidden, config.out_features)
        self.crf = None
        if config.decoder == "crf":
            constraints = bio_constraints(config.classes) if config.constrain_bio and config.classes else None
            self.crf = CRF(config.out_features, constraints)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = x.long()  # (B, T) ids
        n = lengths(idx).clamp(min=1)  # (B,)
        e = self.drop(self.embed(idx))  # (B, T, E)
        packed = pack_padded_sequence(e, n.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        steps, _ = pad_packed_sequence(out, batch_first=True, total_length=idx.shape[1])  # (B, T, 2H)
        return self.head(self.drop(steps))  # (B, T, K) emissions

    @torch.no_grad()
    def decode(self, x: torch.Tensor) -> list[list[int]]:
        """Each row's best tag ids over its real tokens (Viterbi with the CRF)."""
        emissions = self(x)  # (B, T, K)
        mask = x.long() != PAD_ID
        if self.crf is not None:
            return self.crf.decode(emissions, mask)
        best = emissions.argmax(dim=-1)  # (B, T)
        return [row[:n] for row, n in zip(best.tolist(), mask.sum(dim=1).tolist())]
