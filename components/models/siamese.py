"""Siamese networks: one embedding network applied to every image of a pair or triplet.

The embedding is a `cnn` trunk whose head outputs `embedding_dim` numbers, scaled to unit
length so distances live in [0, 2] and a verification threshold keeps its meaning across
runs. Trained by the `metric_learning` task with a triplet (or contrastive) loss on labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from components.models.cnn import CNN, CNNConfig
from components.models.registry import register

Loss = Literal["triplet", "contrastive"]
Mining = Literal["batch_hard", "batch_all"]


@dataclass
class SiameseConfig:
    in_channels: int
    height: int
    width: int
    embedding_dim: int = 32
    arch: str = "lenet5"  # the cnn architecture of the embedding network
    cnn: dict[str, Any] = field(default_factory=dict)  # its other cnn params (layers, widths, ...)
    loss: Loss = "triplet"
    mining: Mining = "batch_all"  # triplets mined from each batch's labels; batch_hard collapses early here
    margin: float = 0.5  # α in max(‖f(A)−f(P)‖² − ‖f(A)−f(N)‖² + α, 0)

    def __post_init__(self) -> None:
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {self.embedding_dim}")
        if not self.margin > 0:
            raise ValueError(f"margin must be > 0, got {self.margin}")
        if self.loss not in ("triplet", "contrastive"):
            raise ValueError(f"loss must be 'triplet' or 'contrastive', got {self.loss!r}")
        if self.mining not in ("batch_hard", "batch_all"):
            raise ValueError(f"mining must be 'batch_hard' or 'batch_all', got {self.mining!r}")
        reserved = sorted(set(self.cnn) & {"arch", "in_channels", "height", "width", "out_features"})
        if reserved:
            raise ValueError(f"cnn must not set {reserved}: they come from the data and from arch/embedding_dim")


@register("siamese", task="metric_learning")
class Siamese(nn.Module):
    def __init__(self, config: SiameseConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = CNN(CNNConfig(
            in_channels=config.in_channels, height=config.height, width=config.width,
            out_features=config.embedding_dim, arch=config.arch, **config.cnn,
        ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.embed(x), dim=1)  # (B, D), unit length
