"""The sequence-to-sequence task: write the target one token at a time, reading the source.

Batches are {"x": source ids (B, S), "y": <BOS> target <EOS> ids (B, T + 2)}, padded; the
model reads y without its last token (teacher forcing, as `teacher_forcing` in the model's
config allows) and is scored on y without its first: cross-entropy per real target token.
Validation also decodes greedily and counts exact matches (the whole target right) and
right tokens, so the metrics are the loss, `exact_match` and `token_accuracy`; BLEU and
beam search are in the test report (components/evaluation/report.py).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from components.data.modalities.text import PAD_ID, lengths
from components.data.tokenizers import EOS_ID
from components.training.tasks.base import Batch, Sums, TrainingTask


class Seq2SeqTask(TrainingTask):
    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        x, y = _cut(batch)
        logits = model(x, y[:, :-1]).float()  # (B, T, V)
        target = y[:, 1:]
        mask = target != PAD_ID
        return F.cross_entropy(logits[mask], target[mask]) + self.regularisation(model)

    def validation_step(self, batch: Batch) -> Sums:
        x, y = _cut(batch)
        loss = self.loss(self.model, batch).item()
        bare = getattr(self.model, "module", self.model)
        decoded, _ = bare.greedy(x, max_length=y.shape[1] - 1)
        exact = right = tokens = 0
        for row, guess in zip(y[:, 1:].tolist(), decoded):
            truth = row[: row.index(EOS_ID)] if EOS_ID in row else row
            exact += guess == truth
            right += sum(a == b for a, b in zip(truth, guess))
            tokens += len(truth)
        return {"loss": loss * len(x), "count": float(len(x)), "exact": float(exact), "right": float(right),
                "tokens": float(tokens)}

    def metrics(self, sums: dict[str, float], arrays: dict[str, np.ndarray]) -> dict[str, float]:
        count = int(sums.get("count", 0))
        if count == 0:
            return {"loss": float("nan"), "rows": 0}
        return {"loss": sums["loss"] / count, "rows": count, "exact_match": sums["exact"] / count,
                "token_accuracy": sums["right"] / max(sums["tokens"], 1.0)}

    def predict(self, output: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError("a sequence-to-sequence model's answers come from its greedy or beam_search decoding")


def _cut(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(sources cut to their longest row, targets cut to theirs)."""
    x, y = batch["x"].long(), batch["y"].long()
    return x[:, : max(int(lengths(x).max()), 1)], y[:, : max(int(lengths(y).max()), 2)]
