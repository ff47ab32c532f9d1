"""The word-embeddings task: word2vec trained on windows of running text.

Batches are the language-model windows {"x": ids (B, T), ...} (padded with 0 at the tail);
the labels are not read. Each step draws the skip-gram pairs of its windows as word2vec
does (`components.data.skipgrams`, here on tensors): special tokens (<PAD>, <UNK>, ...)
never pair; a frequent word is dropped with word2vec's subsampling chance; each center's
reach is drawn from 1..`window`. Noise words come from the training split's counts^(3/4)
(`DataInfo.token_counts`). Dropped words leave a gap rather than closing it, so a window
reaches a little less far than in word2vec's tool.

Validation draws its pairs and noise with a fixed seed, so epochs are compared on the same
pairs: the metric is the negative-sampling loss per pair (`loss`; (1 + negatives)·ln 2 at
the start, with word2vec's zero output vectors).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from components.data.modalities.info import DataInfo
from components.data.skipgrams import keep_probabilities, negative_distribution, sampled_pairs
from components.data.tokenizers import SPECIALS
from components.config import TrainingConfig
from components.models.word2vec import pair_loss
from components.training.tasks.base import Batch, Sums, TrainingTask

_VALIDATION_SEED = 1234


class WordEmbeddings(TrainingTask):
    def __init__(self, model: nn.Module, info: DataInfo, training: TrainingConfig, **kwargs) -> None:
        super().__init__(model, info, training, **kwargs)
        if info.token_counts is None:
            raise ValueError("word embeddings train on running text with token counts (a corpus source's state)")
        counts = np.asarray(info.token_counts, dtype=np.float64)
        counts[: len(SPECIALS)] = 0  # specials are never words to predict or noise to draw
        self.config = getattr(model, "module", model).config  # window, negatives, subsample
        self.noise = torch.from_numpy(negative_distribution(counts)).float()
        self.keep = (torch.from_numpy(keep_probabilities(counts, self.config.subsample)).float()
                     if self.config.subsample > 0 else None)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return self._loss(model, batch, None)[0]

    def validation_step(self, batch: Batch) -> Sums:
        generator = torch.Generator(device=batch["x"].device).manual_seed(_VALIDATION_SEED)
        loss, pairs = self._loss(self.model, batch, generator)
        return {"nll": float(loss.item()) * pairs, "pairs": float(pairs), "count": float(len(batch["x"]))}

    def _loss(self, model: nn.Module, batch: Batch, generator: torch.Generator | None) -> tuple[torch.Tensor, int]:
        """The mean loss over the batch's pairs, and how many pairs there were."""
        x = batch["x"]
        keep = self.keep.to(x.device) if self.keep is not None else None
        centers, contexts, negatives = sampled_pairs(
            x, self.config.window, self.config.negatives, self.noise.to(x.device), keep, generator)
        if len(centers) == 0:  # windows of one word: nothing to learn from, and no gradient
            return sum(p.sum() * 0.0 for p in model.parameters()), 0
        # through the (DDP-wrapped) model's forward, so that gradients are all-reduced
        return pair_loss(model, self.config.mode, centers, contexts, negatives), len(centers)

    def metrics(self, sums: dict[str, float], arrays: dict[str, np.ndarray]) -> dict[str, float]:
        pairs = sums.get("pairs", 0.0)
        if not pairs:
            return {"loss": float("nan"), "rows": 0}
        return {"loss": sums["nll"] / pairs, "rows": int(sums["count"]), "pairs": int(pairs)}

    def predict(self, output: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"vectors": output}
