"""word2vec (Mikolov et al. 2013): a word's vector from the words around it.

    skipgram  the center word's input vector v_c scores each context word's output vector
              u_o against k noise words drawn from unigram^(3/4) (negative sampling):
              loss = -log σ(u_o·v_c) - Σ_k log σ(-u_k·v_c)
    cbow      the mean of the context words' input vectors scores the center word the same way

The input vectors are the word vectors kept (`vectors()`); `forward(ids)` looks them up,
`forward(source, target, negatives)` is the loss (as nanoGPT's `forward(idx, targets)`).
As the pipeline kind `word2vec` it trains on running text with the `word_embeddings` task,
which draws the pairs from each batch of windows (`window`, `negatives` and `subsample` are
its hyperparameters, as in word2vec's own tool).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from components.models.registry import register


@dataclass
class Word2VecConfig:
    vocab_size: int
    embed_dim: int = 50
    mode: Literal["skipgram", "cbow"] = "skipgram"
    window: int = 5  # the most words either side that pair with a center (drawn 1..window per center)
    negatives: int = 5  # noise words per pair, from unigram^(3/4)
    subsample: float = 1e-3  # t of the subsampling of frequent words (0: keep every word)

    def __post_init__(self) -> None:
        if self.mode not in ("skipgram", "cbow"):
            raise ValueError(f"mode must be 'skipgram' or 'cbow', got {self.mode!r}")
        if self.vocab_size < 1 or self.embed_dim < 1:
            raise ValueError(f"vocab_size and embed_dim must be >= 1, got {self.vocab_size}, {self.embed_dim}")
        if self.window < 1 or self.negatives < 1:
            raise ValueError(f"window and negatives must be >= 1, got {self.window}, {self.negatives}")
        if self.subsample < 0:
            raise ValueError(f"subsample must be >= 0, got {self.subsample}")


@register("word2vec", task="word_embeddings")
class Word2Vec(nn.Module):
    def __init__(self, config: Word2VecConfig) -> None:
        super().__init__()
        self.config = config
        self.inputs = nn.Embedding(config.vocab_size, config.embed_dim)
        self.outputs = nn.Embedding(config.vocab_size, config.embed_dim)
        # word2vec's start: small random input vectors, zero output vectors
        nn.init.uniform_(self.inputs.weight, -0.5 / config.embed_dim, 0.5 / config.embed_dim)
        nn.init.zeros_(self.outputs.weight)

    def forward(
        self, source: torch.Tensor, target: torch.Tensor | None = None, negatives: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Without `target`: the word vectors (..., D) of token ids `source` (...). With it:
        the mean negative-sampling loss. skipgram: source (B,) centers, target (B,) contexts;
        cbow: source (B, C) context ids, target (B,) centers. negatives (B, K) noise ids."""
        v = self.inputs(source.long())  # (..., D)
        if target is None:
            return v
        if v.dim() == 3:
            v = v.mean(dim=1)  # (B, D) the context's mean
        positive = (self.outputs(target) * v).sum(dim=-1)  # (B,)
        negative = torch.bmm(self.outputs(negatives), v.unsqueeze(2)).squeeze(2)  # (B, K)
        return -(F.logsigmoid(positive) + F.logsigmoid(-negative).sum(dim=1)).mean()

    def vectors(self) -> np.ndarray:
        """(V, D) the learned word vectors (the input embeddings)."""
        return self.inputs.weight.detach().cpu().numpy().copy()


def pair_loss(model: nn.Module, mode: str, centers: torch.Tensor, contexts: torch.Tensor, negatives: torch.Tensor
              ) -> torch.Tensor:
    """The negative-sampling loss of (center, context) pairs through `model`'s forward (DDP-
    wrapped or not): skipgram scores each context from its center, cbow the center from its
    context (one context word per pair)."""
    if mode == "cbow":
        return model(contexts.unsqueeze(1), centers, negatives)
    return model(centers, contexts, negatives)
