"""Sequence to sequence with attention (Luong et al. 2015; Bahdanau et al. 2014): an
encoder reads the source, a decoder writes the target one token at a time, looking back at
every source position through attention.

    encoder   embeddings -> (bi)GRU/LSTM -> outputs (B, S, H) after a linear projection
    attention dot: h·e_s; general: h·W e_s (Luong); concat: v·tanh(W [h; e_s]) (Bahdanau)
    decoder   a GRU/LSTM cell fed [previous token; previous attentional state] (input
              feeding), then the attentional state tanh(W [h; context]) -> next-token logits

`forward` runs the decoder over the target with teacher forcing (each step reads the true
previous token with probability `teacher_forcing`, else its own best guess); `greedy` and
`beam_search` decode, returning the attention weights of every step for pictures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn as nn
import torch.nn.functional as F

from components.data.modalities.text import PAD_ID
from components.data.tokenizers import BOS_ID, EOS_ID
from components.models.registry import register

Scoring = Literal["dot", "general", "concat"]


@dataclass
class Seq2SeqConfig:
    vocab_size: int  # source vocabulary
    target_vocab_size: int
    cell: Literal["gru", "lstm"] = "gru"
    embed_dim: int = 32
    hidden: int = 64
    bidirectional: bool = True  # the encoder's; its two directions are projected to `hidden`
    attention: Scoring = "general"
    dropout: float = 0.0
    teacher_forcing: float = 1.0  # the chance each training step reads the true previous token

    def __post_init__(self) -> None:
        if self.attention not in get_args(Scoring):
            raise ValueError(f"attention must be one of {list(get_args(Scoring))}, got {self.attention!r}")
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must be in [0, 1], got {self.teacher_forcing}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class Attention(nn.Module):
    """Weights over the source positions for one decoder state, and their context vector."""

    def __init__(self, hidden: int, scoring: Scoring) -> None:
        super().__init__()
        self.scoring = scoring
        if scoring == "general":
            self.w = nn.Linear(hidden, hidden, bias=False)
        elif scoring == "concat":
            self.w = nn.Linear(2 * hidden, hidden, bias=False)
            self.v = nn.Linear(hidden, 1, bias=False)

    def forward(self, h: torch.Tensor, enc: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h (B, H), enc (B, S, H), mask (B, S) real source positions -> (weights (B, S), context (B, H))."""
        if self.scoring == "dot":
            scores = torch.bmm(enc, h.unsqueeze(2)).squeeze(2)  # (B, S)
        elif self.scoring == "general":
            scores = torch.bmm(self.w(enc), h.unsqueeze(2)).squeeze(2)  # (B, S)
        else:
            expanded = h.unsqueeze(1).expand_as(enc)  # (B, S, H)
            scores = self.v(torch.tanh(self.w(torch.cat([expanded, enc], dim=-1)))).squeeze(2)  # (B, S)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)  # (B, S), rows sum to 1
        return weights, torch.bmm(weights.unsqueeze(1), enc).squeeze(1)  # context (B, H)


@register("seq2seq", task="seq2seq")
class Seq2Seq(nn.Module):
    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = config
        h, e = config.hidden, config.embed_dim
        rnn = nn.GRU if config.cell == "gru" else nn.LSTM
        self.src_embed = nn.Embedding(config.vocab_size, e, padding_idx=PAD_ID)
        self.encoder = rnn(e, h, batch_first=True, bidirectional=config.bidirectional)
        directions = 2 if config.bidirectional else 1
        self.enc_proj = nn.Linear(directions * h, h)  # encoder outputs in the decoder's space
        self.bridge = nn.Linear(directions * h, h)  # the decoder's first state from the encoder's last
        self.tgt_embed = nn.Embedding(config.target_vocab_size, e, padding_idx=PAD_ID)
        cell = nn.GRUCell if config.cell == "gru" else nn.LSTMCell
        self.decoder = cell(e + h, h)
        self.attention = Attention(h, config.attention)
        self.combine = nn.Linear(2 * h, h)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(h, config.target_vocab_size)

    def encode(self, x: torch.Tensor):
        """(encoder outputs (B, S, H), source mask (B, S), the decoder's first state)."""
        x = x.long()
        mask = x != PAD_ID
        n = mask.sum(dim=1).clamp(min=1)
        packed = nn.utils.rnn.pack_padded_sequence(self.drop(self.src_embed(x)), n.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        out, last = self.encoder(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])  # (B, S, D*H)
        last = last[0] if isinstance(last, tuple) else last  # (D, B, H)
        h0 = torch.tanh(self.bridge(torch.cat(list(last), dim=-1)))  # (B, H)
        state = (h0, torch.zeros_like(h0)) if self.config.cell == "lstm" else h0
        return self.enc_proj(out), mask, state

    def step(self, token: torch.Tensor, feed: torch.Tensor, state, enc: torch.Tensor, mask: torch.Tensor):
        """One decoder step: (logits (B, V), attentional state (B, H), new state, weights (B, S))."""
        state = self.decoder(torch.cat([self.drop(self.tgt_embed(token)), feed], dim=-1), state)
        h = state[0] if isinstance(state, tuple) else state  # (B, H)
        weights, context = self.attention(h, enc, mask)
        attentional = torch.tanh(self.combine(torch.cat([h, context], dim=-1)))  # (B, H)
        return self.head(self.drop(attentional)), attentional, state, weights

    def forward(self, x: torch.Tensor, y_in: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T, V) for each target position, `y_in` (B, T) being <BOS> and the target
        before its last token (without it, the first step's: (B, 1, V))."""
        if y_in is None:
            y_in = torch.full((x.shape[0], 1), BOS_ID, dtype=torch.long, device=x.device)
        enc, mask, state = self.encode(x)
        feed = enc.new_zeros(enc.shape[0], self.config.hidden)
        token, logits = y_in[:, 0].long(), []
        for t in range(y_in.shape[1]):
            out, feed, state, _ = self.step(token, feed, state, enc, mask)
            logits.append(out)
            if t + 1 < y_in.shape[1]:
                forced = not self.training or torch.rand(()) < self.config.teacher_forcing
                token = y_in[:, t + 1].long() if forced else out.argmax(dim=-1)
        return torch.stack(logits, dim=1)

    @torch.no_grad()
    def greedy(self, x: torch.Tensor, max_length: int) -> tuple[list[list[int]], list[torch.Tensor]]:
        """The likeliest next token each step, until <EOS>: (ids per row, without <BOS>/<EOS>;
        attention (T, S) per row)."""
        enc, mask, state = self.encode(x)
        feed = enc.new_zeros(enc.shape[0], self.config.hidden)
        token = torch.full((x.shape[0],), BOS_ID, dtype=torch.long, device=x.device)
        steps, weights = [], []
        ended = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        for _ in range(max_length):
            out, feed, state, w = self.step(token, feed, state, enc, mask)
            token = out.argmax(dim=-1)
            steps.append(token)
            weights.append(w)
            ended |= token == EOS_ID
            if bool(ended.all()):  # every row has its <EOS>: later steps would be cut off anyway
                break
        ids, attn = torch.stack(steps, dim=1).tolist(), torch.stack(weights, dim=1)  # (B, T), (B, T, S)
        rows = [row[: row.index(EOS_ID)] if EOS_ID in row else row for row in ids]
        return rows, [attn[i, : len(r) + 1, : int(mask[i].sum())] for i, r in enumerate(rows)]

    @torch.no_grad()
    def beam_search(self, x: torch.Tensor, beam_size: int, max_length: int, alpha: float = 0.7
                    ) -> tuple[list[int], torch.Tensor, float]:
        """The best sequence of one source (1, S) by beam search: (ids without <BOS>/<EOS>,
        attention (T, S), score). Finished hypotheses are ranked by log-probability / length^alpha
        (alpha 0: raw log-probability, which favours short outputs). The search goes on until no
        open hypothesis can still beat the best finished one: a log-probability only falls as
        tokens are added, so an open one's best is its log-probability now / max_length^alpha."""
        enc, mask, state = self.encode(x)
        beams = [([], 0.0, enc.new_zeros(1, self.config.hidden), state, [])]  # (ids, logp, feed, state, weights)
        finished: list[tuple[list[int], float, list[torch.Tensor]]] = []
        for _ in range(max_length):
            candidates = []
            for ids, logp, feed, st, ws in beams:
                token = torch.tensor([ids[-1] if ids else BOS_ID], device=x.device)
                out, new_feed, new_st, w = self.step(token, feed, st, enc, mask)
                log_probs = torch.log_softmax(out.float(), dim=-1)[0]  # (V,)
                top = torch.topk(log_probs, beam_size)
                for lp, nxt in zip(top.values.tolist(), top.indices.tolist()):
                    candidates.append((ids + [nxt], logp + lp, new_feed, new_st, ws + [w[0]]))
            candidates.sort(key=lambda c: c[1], reverse=True)
            beams = []
            for ids, logp, feed, st, ws in candidates:
                if ids[-1] == EOS_ID:
                    finished.append((ids[:-1], logp, ws))
                else:
                    beams.append((ids, logp, feed, st, ws))
                if len(beams) == beam_size:
                    break
            if not beams:
                break
            if finished:
                best = max(logp / max(len(ids) + 1, 1) ** alpha for ids, logp, _ in finished)
                reachable = max(logp for _, logp, _, _, _ in beams) / max_length**alpha
                if best >= reachable:
                    break
        if not finished:  # nothing ended within max_length: take the open hypotheses
            finished = [(ids, logp, ws) for ids, logp, _, _, ws in beams]
        ids, logp, ws = max(finished, key=lambda f: f[1] / max(len(f[0]) + 1, 1) ** alpha)
        return ids, torch.stack(ws)[:, : int(mask[0].sum())], logp / max(len(ids) + 1, 1) ** alpha
