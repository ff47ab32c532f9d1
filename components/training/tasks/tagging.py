"""The tagging task: one tag per token (named entities in BIO), trained sentence by sentence.

Batches are {"x": token ids (B, T), "y": tag ids (B, T)}, both padded; the inputs' mask
(`x != 0`) says which positions are real, and a batch is cut to its longest sentence
first. The model gives (B, T, K) emission scores. With a CRF decoder the loss is the
sentences' mean negative log-likelihood; with a softmax decoder it is per-token
cross-entropy over the real tokens, weighted by each tag's ratio to the largest tag
(`training.class_weights`, the BANNER paper's cost-sensitive loss) and/or focal
(`training.focal_gamma`). Validation decodes (Viterbi with the CRF) and counts entities,
so the metrics are entity precision, recall and F1, micro, macro and per type, plus
per-token accuracy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from components.config import TrainingConfig
from components.data.modalities.info import DataInfo
from components.data.modalities.text import PAD_ID, cut_to_longest, lengths, word_ids
from components.evaluation.entities import entity_counts, scores_from_counts
from components.training.losses import class_weights, focal_loss
from components.training.tasks.base import Batch, Sums, TrainingTask


class Tagging(TrainingTask):
    def __init__(self, model: nn.Module, info: DataInfo, training: TrainingConfig, **options: Any) -> None:
        super().__init__(model, info, training, **options)
        uses_crf = getattr(self._bare, "crf", None) is not None
        if uses_crf and (training.class_weights or training.focal_gamma):
            raise ValueError("training.class_weights and focal_gamma weigh per-token softmax losses; "
                             "a CRF decoder trains on whole sentences: set model.params.decoder to softmax")
        self.weight = None
        if training.class_weights:
            if info.class_counts is None:
                raise ValueError("training.class_weights needs the tags' training counts, which this data lacks")
            self.weight = class_weights(list(info.class_counts))
        # entity types from the tag names: every rank reports a count for each, zeros too,
        # so the sums line up when they are all-reduced
        self.types = sorted({c[2:] for c in info.classes if c[:2] in ("B-", "I-")})

    @property
    def _bare(self) -> nn.Module:
        return getattr(self.model, "module", self.model)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        x, y = cut_to_longest(batch["x"], batch["y"])
        mask = word_ids(x) != PAD_ID
        emissions = model(x).float()  # (B, T, K)
        crf = getattr(getattr(model, "module", model), "crf", None)
        if crf is not None:
            loss = -crf(emissions, y, mask) / len(x)
        else:
            logits, targets = emissions[mask], y[mask]  # (N, K), (N,) real tokens only
            weight = self.weight.to(logits.device) if self.weight is not None else None
            if self.training.focal_gamma:
                loss = focal_loss(logits, targets, self.training.focal_gamma, weight)
            else:
                loss = F.cross_entropy(logits, targets, weight=weight)
        return loss + self.regularisation(model)

    def validation_step(self, batch: Batch) -> Sums:
        x, y = cut_to_longest(batch["x"], batch["y"])
        loss = self.loss(self.model, batch).item()
        paths = self._bare.decode(x)
        n = lengths(x).tolist()
        classes = self.info.classes
        true = [[classes[t] for t in row[:k]] for row, k in zip(y.tolist(), n)]
        predicted = [[classes[t] for t in path] for path in paths]
        counts = {f"{kind}:{t}": 0.0 for t in self.types for kind in ("hits", "gold", "guessed")}
        counts.update(entity_counts(true, predicted))
        correct = sum(a == b for t, p in zip(true, predicted) for a, b in zip(t, p))
        return {"loss": loss * len(x), "count": float(len(x)), "tokens": float(sum(n)), "correct": float(correct),
                **counts}

    def metrics(self, sums: dict[str, float], arrays: dict[str, np.ndarray]) -> dict[str, float]:
        count = int(sums.get("count", 0))
        if count == 0:
            return {"loss": float("nan"), "rows": 0}
        scores = scores_from_counts(sums)
        return {"loss": sums["loss"] / count, "rows": count, "token_accuracy": sums["correct"] / sums["tokens"],
                **scores}

    def predict(self, output: torch.Tensor) -> dict[str, torch.Tensor]:
        # Emissions alone cannot give a CRF's answer (Viterbi needs the transitions and the mask).
        raise NotImplementedError("a tagger's answers come from its decode(x): Viterbi with a CRF, argmax without")

