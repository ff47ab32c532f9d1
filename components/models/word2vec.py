"""word2vec (Mikolov et al. 2013): a word's vector from the words around it.

    skipgram  the center word's input vector v_c scores each context word's output vector
              u_o against k noise words drawn from unigram^(3/4) (negative sampling):
              loss = -log σ(u_o·v_c) - Σ_k log σ(-u_k·v_c)
    cbow      the mean of the context words' input vectors scores the center word the same way

The input vectors are the word vectors kept (`vectors()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Word2VecConfig:
    vocab_size: int
    embed_dim: int = 50
    mode: Literal["skipgram", "cbow"] = "skipgram"

    def __post_init__(self) -> None:
        if self.mode not in ("skipgram", "cbow"):
            raise ValueError(f"mode must be 'skipgram' or 'cbow', got {self.mode!r}")
        if self.vocab_size < 1 or self.embed_dim < 1:
            raise ValueError(f"vocab_size and embed_dim must be >= 1, got {self.vocab_size}, {self.embed_dim}")


class Word2Vec(nn.Module):
    def __init__(self, config: Word2VecConfig) -> None:
        super().__init__()
        self.config = config
        self.inputs = nn.Embedding(config.vocab_size, config.embed_dim)
        self.outputs = nn.Embedding(config.vocab_size, config.embed_dim)
        # word2vec's start: small random input vectors, zero output vectors
        nn.init.uniform_(self.inputs.weight, -0.5 / config.embed_dim, 0.5 / config.embed_dim)
        nn.init.zeros_(self.outputs.weight)

    def forward(self, source: torch.Tensor, target: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """Mean negative-sampling loss. skipgram: source (B,) centers, target (B,) contexts;
        cbow: source (B, C) context ids (0 pads nothing here: every slot is a word), target
        (B,) centers. negatives (B, K) noise ids."""
        v = self.inputs(source)  # (B, D) or (B, C, D)
        if v.dim() == 3:
            v = v.mean(dim=1)  # (B, D) the context's mean
        positive = (self.outputs(target) * v).sum(dim=-1)  # (B,)
        negative = torch.bmm(self.outputs(negatives), v.unsqueeze(2)).squeeze(2)  # (B, K)
        return -(F.logsigmoid(positive) + F.logsigmoid(-negative).sum(dim=1)).mean()

    def vectors(self) -> np.ndarray:
        """(V, D) the learned word vectors (the input embeddings)."""
        return self.inputs.weight.detach().cpu().numpy().copy()
