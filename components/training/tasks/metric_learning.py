"""The metric-learning task: an embedding trained so that same-label examples lie close.

Batches are {"x": images (B, C, H, W), "y": labels (B,)}; the model returns embeddings
(B, D). Training mines triplets (or pairs) from each batch's labels. Validation embeds
every example, draws balanced same/different pairs, and reports the triplet loss and
one-shot verification: the distance threshold with the best accuracy on these pairs
(`val_threshold`, kept in the bundle's metrics and used when serving pairs) and that
accuracy (`val_accuracy`), so selection and the champion rule work as for classifiers.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from components.evaluation.verification import label_verification
from components.training.metric_losses import batch_all_triplet_loss, batch_hard_triplet_loss, contrastive_loss
from components.training.stepper import Stepper
from components.training.tasks.base import Batch, Sums, TrainingTask, as_numpy


class MetricLearning(TrainingTask):
    @property
    def settings(self) -> object:
        """The embedding model's config: loss, mining and margin are declared there."""
        return getattr(self.model, "module", self.model).config

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        embeddings = model(batch["x"]).float()  # (B, D)
        return self.embedding_loss(embeddings, batch["y"]) + self.regularisation(model)

    def embedding_loss(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cfg = self.settings
        if cfg.loss == "contrastive":
            # consecutive pairs of the shuffled batch: about 1/k of them share a label
            half = len(labels) // 2
            same = (labels[:half] == labels[half : 2 * half]).float()
            return contrastive_loss(embeddings[:half], embeddings[half : 2 * half], same, cfg.margin)
        if cfg.mining == "batch_all":
            return batch_all_triplet_loss(embeddings, labels, cfg.margin)[0]
        return batch_hard_triplet_loss(embeddings, labels, cfg.margin)

    def training_step(self, batch: Batch, stepper: Stepper) -> dict[str, float]:
        if self.augment is not None:
            batch = {**batch, "x": self.augment(batch["x"], True)}
        with stepper.autocast():
            loss = self.loss(self.model, batch)
        stepper.step(loss)
        return {"loss": loss.item()}

    def validation_step(self, batch: Batch) -> Sums:
        embeddings, labels = self.model(batch["x"]).float(), batch["y"]
        # the loss per batch, as in training (batch_all holds B³ triplets: never the whole split)
        loss = self.embedding_loss(embeddings, labels).item() * len(labels)
        return {"loss": loss, "count": float(len(labels)), "embeddings": as_numpy(embeddings), "labels": as_numpy(labels)}

    def metrics(self, sums: dict[str, float], arrays: dict[str, np.ndarray]) -> dict[str, float]:
        count = int(sums.get("count", 0))
        if count == 0:
            return {"loss": float("nan"), "rows": 0}
        scores = label_verification(arrays["embeddings"], arrays["labels"], threshold=None)
        return {"loss": sums["loss"] / count, "rows": count, **scores}

    def predict(self, output: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"embedding": output.float()}
