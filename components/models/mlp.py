"""Multi-layer perceptron: hidden blocks of Linear -> [BatchNorm] -> activation -> [Dropout].

The head is a plain Linear, so the output is logits (classification) or raw values
(regression); sigmoid/softmax belong to the loss and to prediction, not to the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
import torch.nn as nn

from components.models.registry import register

Activation = Literal["sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu"]
Init = Literal["he", "xavier", "default"]


@dataclass
class MLPConfig:
    in_features: int
    out_features: int
    hidden: list[int] = field(default_factory=lambda: [64])  # widths of the hidden layers; [] is a linear model
    activation: Activation = "relu"
    init: Init = "he"  # he: N(0, 2/n_in); xavier: N(0, 2/(n_in+n_out)); default: PyTorch's
    dropout: float = 0.0  # drop probability (1 − keep_prob), inverted: survivors scaled by 1/(1−p) in training
    batch_norm: bool = False  # normalise pre-activations; running averages are used in eval mode

    def __post_init__(self) -> None:
        if self.activation not in get_args(Activation):
            raise ValueError(f"activation must be one of {list(get_args(Activation))}, got {self.activation!r}")
        if self.init not in get_args(Init):
            raise ValueError(f"init must be one of {list(get_args(Init))}, got {self.init!r}")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden widths must be >= 1, got {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def _activation(name: str, width: int) -> nn.Module:
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "tanh":
        return nn.Tanh()
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01)
    if name == "prelu":
        return nn.PReLU(width)  # one learned slope per unit
    assert name == "elu", name  # MLPConfig validated the name
    return nn.ELU()


class Block(nn.Module):
    def __init__(self, n_in: int, n_out: int, config: MLPConfig) -> None:
        super().__init__()
        # batch norm's shift makes the linear bias redundant
        self.linear = nn.Linear(n_in, n_out, bias=not config.batch_norm)
        self.norm = nn.BatchNorm1d(n_out) if config.batch_norm else nn.Identity()
        self.act = _activation(config.activation, n_out)
        self.drop = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.norm(self.linear(x))  # (B, n_out)
        return self.drop(self.act(z))  # (B, n_out)


@register("mlp")
class MLP(nn.Module):
    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.in_features, *config.hidden]
        self.blocks = nn.ModuleList(Block(a, b, config) for a, b in zip(widths[:-1], widths[1:]))
        self.head = nn.Linear(widths[-1], config.out_features)
        if config.init != "default":
            self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        if not isinstance(module, nn.Linear):
            return
        if self.config.init == "he":
            # std = √(2/n_in): keeps the variance of ReLU-family activations constant across layers
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        else:
            # std = √(2/(n_in+n_out)): Glorot's balance of forward and backward variance for tanh/sigmoid
            nn.init.xavier_normal_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)  # (B, in_features): an image (B, C, H, W) is read pixel by pixel
        for block in self.blocks:
            x = block(x)  # (B, hidden[i])
        return self.head(x)  # (B, out) logits or raw values
