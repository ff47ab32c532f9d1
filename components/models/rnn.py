"""Recurrent networks over token ids: embedding -> RNN / GRU / LSTM (stacked, optionally
bidirectional) -> a classification head (`rnn`, many-to-one: sentiment, topics), or a
next-token head at every step (`rnn_lm`, a language model over characters or words that
samples new text one-to-many).

Inputs are (B, T) token ids padded with id 0 (components/data/modalities/text.py); the
padding is packed away, so a row's answer does not depend on how long the batch's longest
row is. Backprop through time runs over the packed steps; `training.grad_clip` clips it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from components.data.modalities.text import PAD_ID, lengths
from components.models.registry import register

Cell = Literal["rnn", "gru", "lstm"]
Pooling = Literal["last", "mean", "max"]
_CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


@dataclass
class RNNConfig:
    vocab_size: int
    out_features: int
    cell: Cell = "lstm"
    embed_dim: int = 64
    hidden: int = 128  # units per direction
    layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0  # on the embeddings, between stacked layers and before the head
    # many-to-one: the last step's hidden state (both directions' ends when bidirectional),
    # or the mean / max of every step's outputs over the real tokens
    pooling: Pooling = "last"

    def __post_init__(self) -> None:
        if self.cell not in get_args(Cell):
            raise ValueError(f"cell must be one of {list(get_args(Cell))}, got {self.cell!r}")
        if self.pooling not in get_args(Pooling):
            raise ValueError(f"pooling must be one of {list(get_args(Pooling))}, got {self.pooling!r}")
        for name in ("vocab_size", "out_features", "embed_dim", "hidden", "layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@register("rnn")
class RNNClassifier(nn.Module):
    def __init__(self, config: RNNConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=PAD_ID)
        self.rnn = _CELLS[config.cell](
            config.embed_dim, config.hidden, num_layers=config.layers, batch_first=True,
            bidirectional=config.bidirectional, dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(config.dropout)
        directions = 2 if config.bidirectional else 1
        self.head = nn.Linear(directions * config.hidden, config.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = x.long()  # (B, T) ids; serving may hand them over as floats
        n = lengths(idx).clamp(min=1)  # (B,) an empty text still reads one <PAD>
        idx = idx[:, : int(n.max())]  # columns that are padding in every row carry nothing
        e = self.drop(self.embed(idx))  # (B, T, E)
        packed = pack_padded_sequence(e, n.cpu(), batch_first=True, enforce_sorted=False)
        out, h = self.rnn(packed)
        if isinstance(h, tuple):  # an LSTM's (hidden, cell)
            h = h[0]
        if self.config.pooling == "last":
            # h: (layers * D, B, H); the last layer's directions, each at its own end of the row
            directions = 2 if self.config.bidirectional else 1
            features = torch.cat(list(h[-directions:]), dim=-1)  # (B, D * H)
        else:
            steps, _ = pad_packed_sequence(out, batch_first=True, total_length=idx.shape[1])  # (B, T, D * H)
            real = (torch.arange(idx.shape[1], device=idx.device)[None, :] < n[:, None]).unsqueeze(-1)  # (B, T, 1)
            if self.config.pooling == "mean":
                features = (steps * real).sum(dim=1) / n[:, None].to(steps.dtype)
            else:
                features = steps.masked_fill(~real, float("-inf")).amax(dim=1)
        return self.head(self.drop(features))  # (B, out)


@dataclass
class RNNLMConfig:
    vocab_size: int  # inputs and outputs: the next token over the whole vocabulary
    cell: Cell = "gru"
    embed_dim: int = 64
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.cell not in get_args(Cell):
            raise ValueError(f"cell must be one of {list(get_args(Cell))}, got {self.cell!r}")
        for name in ("vocab_size", "embed_dim", "hidden", "layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@register("rnn_lm", task="language_model")
class RNNLanguageModel(nn.Module):
    """A language model (characters or words): each step predicts the next token (one-to-many
    when sampling). `forward` gives (B, T, V) logits for every position; `generate` continues
    a prompt, carrying the recurrent state from step to step."""

    def __init__(self, config: RNNLMConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=PAD_ID)
        self.rnn = _CELLS[config.cell](config.embed_dim, config.hidden, num_layers=config.layers, batch_first=True,
                                       dropout=config.dropout if config.layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.vocab_size)

    def forward(self, x: torch.Tensor, state: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> torch.Tensor:
        return self.step(x, state)[0]  # (B, T, V)

    def step(self, x: torch.Tensor, state: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None):
        """(logits (B, T, V), the recurrent state after the last step). Padding only ever
        trails a window, and the loss ignores it, so no packing is needed."""
        e = self.drop(self.embed(x.long()))  # (B, T, E)
        out, state = self.rnn(e, state)  # (B, T, H)
        return self.head(self.drop(out)), state

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """`idx` (1, T) prompt ids followed by `max_new_tokens` sampled ones: softmax of the
        logits / temperature, restricted to the `top_k` likeliest when given (nanoGPT's
        `generate`)."""
        logits, state = self.step(idx)
        out = [idx]
        for _ in range(max_new_tokens):
            last = logits[:, -1, :].float() / temperature  # (1, V)
            if top_k is not None:
                kth = torch.topk(last, min(top_k, last.shape[-1])).values[:, -1:]
                last = last.masked_fill(last < kth, float("-inf"))
            last[:, PAD_ID] = float("-inf")  # padding is never text
            nxt = torch.multinomial(torch.softmax(last, dim=-1), 1, generator=generator)  # (1, 1)
            out.append(nxt)
            logits, state = self.step(nxt, state)
        return torch.cat(out, dim=1)
