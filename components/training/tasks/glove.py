"""The GloVe task: weighted least squares on word co-occurrence counts.

Batches are co-occurrence rows {"x": (B, 2) ids [i, j], "y": (B,) counts X_ij}
(`text.features: cooccurrence`). The loss is the model's weighted squared error summed over
the batch, as the paper sums it (AdaGrad at 0.05 is its optimiser); the metric is that
error per pair (`loss`), on validation the pairs of the validation text's own counts.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from components.training.tasks.base import Batch, Sums, TrainingTask


class GloVeTask(TrainingTask):
    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        x, y = batch["x"], batch["y"].float()
        return model(x[:, 0], x[:, 1], y)

    def validation_step(self, batch: Batch) -> Sums:
        return {"error": float(self.loss(self.model, batch).item()), "pairs": float(len(batch["x"]))}

    def metrics(self, sums: dict[str, float], arrays: dict[str, np.ndarray]) -> dict[str, float]:
        pairs = sums.get("pairs", 0.0)
        if not pairs:
            return {"loss": float("nan"), "rows": 0}
        return {"loss": sums["error"] / pairs, "rows": int(pairs)}

    def predict(self, output: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"vectors": output}
