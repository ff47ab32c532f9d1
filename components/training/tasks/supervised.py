"""The supervised task: inputs -> outputs -> one loss against labels (classification or regression).

Batches are {"x": inputs of any shape (B, ...), "y": labels (B,)}; a model's output is
logits (B, C) or values (B, out). Training batches may be augmented on the device first
(images), then have a share of their examples replaced by attacks on the model being
trained (`training.adversarial`); validation, test and serving batches never are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from components.config import TrainingConfig
from components.data.modalities.info import DataInfo
from components.evaluation.metrics import classification_metrics, regression_metrics
from components.evaluation.robustness import attacked_inputs
from components.models.outputs import predict_output
from components.training.losses import loss_fn
from components.training.stepper import Stepper
from components.training.tasks.base import Batch, Sums, TrainingTask, as_numpy


class Supervised(TrainingTask):
    def __init__(self, model: nn.Module, info: DataInfo, training: TrainingConfig, **options: Any) -> None:
        super().__init__(model, info, training, **options)
        if training.adversarial is not None and info.task != "classification":
            raise ValueError(f"training.adversarial needs a classification task, got {info.task!r}")

    @property
    def criterion(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return loss_fn(self.info.task, self.info.out_features)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        out = _full(model(batch["x"]))  # (B, out)
        return self.criterion(out, batch["y"]) + self.regularisation(model)

    def training_step(self, batch: Batch, stepper: Stepper) -> dict[str, float]:
        if self.augment is not None:
            batch = {**batch, "x": self.augment(batch["x"], True)}
        if self.training.adversarial is not None:
            # attacks on the bare module: a DDP wrapper must see exactly one forward per backward
            bare = self.model.module if isinstance(self.model, DistributedDataParallel) else self.model
            batch = {**batch, "x": attacked_inputs(bare, batch["x"], batch["y"], self.training.adversarial, self.info)}
        with stepper.autocast():
            loss = self.loss(self.model, batch)
        stepper.step(loss)
        return {"loss": loss.item()}

    def validation_step(self, batch: Batch) -> Sums:
        y = batch["y"]
        out = _full(self.model(batch["x"]))  # (B, out)
        pred = self.predict(out)
        key = "class" if self.info.task == "classification" else "value"
        return {"loss": self.criterion(out, y).item() * len(y), "count": float(len(y)),
                "y_true": as_numpy(y), "y_pred": as_numpy(pred[key])}

    def metrics(self, sums: dict[str, float], arrays: dict[str, np.ndarray]) -> dict[str, float]:
        count = int(sums.get("count", 0))
        if count == 0:
            return {"loss": float("nan"), "rows": 0}
        y_true, y_pred = arrays["y_true"], arrays["y_pred"]
        if self.info.task == "classification":
            scores = classification_metrics(y_true.astype(np.int64), y_pred, max(2, self.info.out_features))
        else:
            scores = regression_metrics(y_true, y_pred)
        return {"loss": sums["loss"] / count, "rows": count, **{k: float(v) for k, v in scores.items()}}

    def predict(self, output: torch.Tensor) -> dict[str, torch.Tensor]:
        return predict_output(_full(output), self.info.task, self.info.out_features)


def _full(out: torch.Tensor) -> torch.Tensor:
    """Autocast's bf16/fp16 outputs back to at least fp32 for losses and probabilities
    (float64, as gradient checking runs, stays float64)."""
    return out.to(torch.promote_types(out.dtype, torch.float32))
