"""Sequence tagging (named entities, the BANNER paper's shape): token embeddings (and,
with `char_filters`, a character CNN per word: Ma & Hovy 2016) -> a bidirectional LSTM or
GRU -> per-token emission scores -> a softmax per token, or a CRF over the whole sentence
(`components/models/crf.py`) whose BIO constraints come from the tag names.

Inputs are (B, T) token ids padded with id 0, or (B, T, 1 + W) when the data carries each
word's W character ids after its id (`tagging.chars`); `forward` gives (B, T, K) emission scores
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

from components.data.modalities.text import PAD_ID, lengths, word_ids
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
    char_vocab_size: int | None = None  # from the data, when it carries characters (tagging.chars)
    char_filters: int = 0  # a character CNN of this many filters per word (0: none)
    char_embed_dim: int = 16
    char_kernel: int = 3  # characters each filter reads

    def __post_init__(self) -> None:
        if self.decoder not in get_args(Decoder):
            raise ValueError(f"decoder must be one of {list(get_args(Decoder))}, got {self.decoder!r}")
        if self.classes and len(self.classes) != self.out_features:
            raise ValueError(f"classes names {len(self.classes)} tags for out_features {self.out_features}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.char_filters < 0 or self.char_embed_dim < 1 or self.char_kernel < 1:
            raise ValueError(f"char_filters must be >= 0, char_embed_dim and char_kernel >= 1, got "
                             f"{self.char_filters}, {self.char_embed_dim}, {self.char_kernel}")
        if self.char_kernel % 2 == 0:
            raise ValueError(f"char_kernel must be odd (the output keeps each word's length), got {self.char_kernel}")
        if self.char_filters and not self.char_vocab_size:
            raise ValueError("char_filters needs the words' characters: set tagging.chars in the pipeline config")


class CharCNN(nn.Module):
    """Each word from its characters: embeddings -> a 1-D convolution -> ReLU -> the max over
    the word's positions, so a word never seen in training still has a shape (capitals,
    suffixes, digits) to go by."""

    def __init__(self, config: TaggerConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(config.char_vocab_size, config.char_embed_dim, padding_idx=PAD_ID)
        self.conv = nn.Conv1d(config.char_embed_dim, config.char_filters, config.char_kernel,
                              padding=config.char_kernel // 2)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        b, t, w = chars.shape  # (B, T, W) character ids
        e = self.embed(chars.reshape(b * t, w)).transpose(1, 2)  # (B*T, C, W)
        h = torch.relu(self.conv(e))  # (B*T, F, W): an odd kernel with half its width of padding
        h = h.masked_fill(chars.reshape(b * t, 1, w) == PAD_ID, 0.0)  # padding never wins the max
        return h.max(dim=-1).values.reshape(b, t, -1)  # (B, T, F)


@register("tagger", task="tagging")
class Tagger(nn.Module):
    def __init__(self, config: TaggerConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=PAD_ID)
        self.chars = CharCNN(config) if config.char_filters else None
        cell = nn.LSTM if config.cell == "lstm" else nn.GRU
        self.rnn = cell(config.embed_dim + config.char_filters, config.hidden, num_layers=config.layers, batch_first=True,
                        bidirectional=True, dropout=config.dropout if config.layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(2 * config.hidden, config.out_features)
        self.crf = None
        if config.decoder == "crf":
            constraints = bio_constraints(config.classes) if config.constrain_bio and config.classes else None
            self.crf = CRF(config.out_features, constraints)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = word_ids(x).long()  # (B, T) ids
        n = lengths(idx).clamp(min=1)  # (B,)
        e = self.embed(idx)  # (B, T, E)
        if self.chars is not None:
            if x.dim() != 3:
                raise ValueError(f"char_filters needs each word's characters: inputs (B, T, 1 + W), got {tuple(x.shape)}")
            e = torch.cat([e, self.chars(x[..., 1:].long())], dim=-1)  # (B, T, E + F)
        e = self.drop(e)
        packed = pack_padded_sequence(e, n.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        steps, _ = pad_packed_sequence(out, batch_first=True, total_length=idx.shape[1])  # (B, T, 2H)
        return self.head(self.drop(steps))  # (B, T, K) emissions

    @torch.no_grad()
    def decode(self, x: torch.Tensor) -> list[list[int]]:
        """Each row's best tag ids over its real tokens (Viterbi with the CRF)."""
        emissions = self(x)  # (B, T, K)
        mask = word_ids(x).long() != PAD_ID
        if self.crf is not None:
            return self.crf.decode(emissions, mask)
        best = emissions.argmax(dim=-1)  # (B, T)
        return [row[:n] for row, n in zip(best.tolist(), mask.sum(dim=1).tolist())]
