"""The language-model task: predict every next token of a window of running text.

Batches are {"x": ids (B, T), "y": the same text one token later (B, T)}, padded at the
tail (`x != 0` marks the real positions); the model gives (B, T, V) logits. The loss is
cross-entropy per real token, backpropagated through time over the window (clipped by
`training.grad_clip`). Metrics: the loss per token, perplexity exp(loss) and bits per
token loss / ln 2 (bits per character for a character tokenizer).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from components.data.modalities.text import PAD_ID, cut_to_longest
from components.training.tasks.base import Batch, Sums, TrainingTask


class LanguageModel(TrainingTask):
    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        x, y = cut_to_longest(batch["x"], batch["y"])
        mask = x != PAD_ID
        logits = model(x).float()  # (B, T, V)
        return F.cross_entropy(logits[mask], y[mask]) + self.regularisation(model)

    def validation_step(self, batch: Batch) -> Sums:
        x, y = cut_to_longest(batch["x"], batch["y"])
        mask = x != PAD_ID
        logits = self.model(x).float()
        total = F.cross_entropy(logits[mask], y[mask], reduction="sum").item()
        return {"nll": total, "tokens": float(mask.sum()), "count": float(len(x))}

    def metrics(self, sums: dict[str, float], arrays: dict[str, np.ndarray]) -> dict[str, float]:
        tokens = sums.get("tokens", 0.0)
        if not tokens:
            return {"loss": float("nan"), "rows": 0}
        loss = sums["nll"] / tokens
        return {"loss": loss, "rows": int(sums["count"]), "perplexity": math.exp(min(loss, 50.0)),
                "bits_per_token": loss / math.log(2)}

    def predict(self, output: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"next": output.argmax(dim=-1)}

