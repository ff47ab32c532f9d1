"""GloVe (Pennington et al. 2014): word vectors from global co-occurrence counts.

For every pair of words (i, j) that co-occur X_ij > 0 times, weighted least squares makes
the dot product of i's vector and j's context vector, plus a bias each, match log X_ij:

    loss = Σ f(X_ij) · (w_i·w̃_j + b_i + b̃_j − log X_ij)²,   f(x) = min(1, (x / x_max)^α)

so rare pairs count less and frequent ones are capped. The vectors kept are w + w̃.
As the pipeline kind `glove` it trains on running text read as co-occurrence counts
(`text.features: cooccurrence`), with the `glove` task.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from components.models.registry import register


@dataclass
class GloVeConfig:
    vocab_size: int
    embed_dim: int = 50
    x_max: float = 100.0  # counts above this weigh 1
    alpha: float = 0.75

    def __post_init__(self) -> None:
        if self.vocab_size < 1 or self.embed_dim < 1:
            raise ValueError(f"vocab_size and embed_dim must be >= 1, got {self.vocab_size}, {self.embed_dim}")
        if self.x_max <= 0 or self.alpha <= 0:
            raise ValueError(f"x_max and alpha must be > 0, got {self.x_max}, {self.alpha}")


def weighting(x: torch.Tensor, x_max: float, alpha: float) -> torch.Tensor:
    """f(x) = (x / x_max)^alpha below x_max, 1 from there."""
    return torch.clamp(x / x_max, max=1.0) ** alpha


@register("glove", task="glove")
class GloVe(nn.Module):
    def __init__(self, config: GloVeConfig) -> None:
        super().__init__()
        self.config = config
        self.words = nn.Embedding(config.vocab_size, config.embed_dim)  # w
        self.contexts = nn.Embedding(config.vocab_size, config.embed_dim)  # w̃
        self.word_bias = nn.Embedding(config.vocab_size, 1)  # b
        self.context_bias = nn.Embedding(config.vocab_size, 1)  # b̃
        # the reference implementation's start: uniform in ±0.5/D, biases too
        for table in (self.words, self.contexts, self.word_bias, self.context_bias):
            nn.init.uniform_(table.weight, -0.5 / config.embed_dim, 0.5 / config.embed_dim)

    def forward(self, i: torch.Tensor, j: torch.Tensor | None = None, x: torch.Tensor | None = None) -> torch.Tensor:
        """Without `j`: the word vectors w + w̃ (..., D) of ids `i` (...). With it: the weighted
        squared error summed over the pairs (B,) i, j with counts x (B,) > 0."""
        i = i.long()
        if j is None:
            return self.words(i) + self.contexts(i)
        j = j.long()
        score = (self.words(i) * self.contexts(j)).sum(dim=-1)  # (B,)
        score = score + self.word_bias(i).squeeze(-1) + self.context_bias(j).squeeze(-1)
        error = score - torch.log(x)
        return (weighting(x, self.config.x_max, self.config.alpha) * error**2).sum()

    def vectors(self) -> np.ndarray:
        """(V, D) the word vectors: w + w̃, as the paper keeps them."""
        return (self.words.weight + self.contexts.weight).detach().cpu().numpy().copy()
