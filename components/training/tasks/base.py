"""The training-task contract: what one kind of training optimises and how it measures.

The epoch loop (`components.training.loop`) is the same for every model; a task says
what happens inside it, with Lightning's names:

    configure_optimizers()          {name: optimizer} (a GAN names two)
    training_step(batch, stepper)   one update; calls stepper.step(loss, name) per optimiser;
                                    returns per-example means to report as train_* (by
                                    default one step on `loss`)
    validation_step(batch)          evaluation sums for one batch: numbers are summed,
                                    arrays concatenated, across batches and ranks
    metrics(sums, arrays)           those totals -> metrics (reported as val_*)
    predict(output)                 model output -> predictions, for scoring and serving

A task never iterates, all-reduces, checkpoints or decides to stop: the loop does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
import numpy as np
import torch
import torch.nn as nn

from components.config import TrainingConfig
from components.data.modalities.info import DataInfo
from components.training.losses import penalty
from components.training.optim import make_optimizer
from components.training.stepper import Stepper
from components.training.transfer import param_groups

Batch = dict[str, torch.Tensor]
Sums = dict[str, float | np.ndarray]
LossOf = Callable[[nn.Module, Batch], torch.Tensor]  # a model's scalar loss on a batch (TrainingTask.loss)
# augment(inputs, training) -> inputs: applied to training batches only, on their device
Augment = Callable[[torch.Tensor, bool], torch.Tensor]


class TrainingTask(ABC):
    def __init__(
        self,
        model: nn.Module,
        info: DataInfo,
        training: TrainingConfig,
        augment: Augment | None = None,
        pretrained: set[str] | None = None,
        lr_scale: float = 1.0,
    ) -> None:
        self.model = model  # as prepared by the session (DDP-wrapped on several workers)
        self.info = info
        self.training = training
        self.augment = augment
        self.pretrained = pretrained or set()  # parameters loaded by transfer learning
        self.lr_scale = lr_scale

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One optimiser over every trainable parameter, as `training.optimizer` says;
        pretrained parameters (transfer learning) at `lr_scale` of its rate."""
        bare = getattr(self.model, "module", self.model)  # DDP prefixes names with "module."
        groups = param_groups(bare, self.pretrained, self.training.optimizer.lr, self.lr_scale)
        return {"model": make_optimizer(groups, self.training.optimizer)}

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The scalar training loss of `model` on `batch`, for tasks that have one: what
        gradient checking and the learning-rate range test differentiate."""
        raise NotImplementedError(f"{type(self).__name__} has no single loss to check or sweep")

    def training_step(self, batch: Batch, stepper: Stepper) -> dict[str, float]:
        """One optimiser step on `loss`, under the run's precision (tasks that augment or
        attack their batches, or train two networks, override it)."""
        with stepper.autocast():
            loss = self.loss(self.model, batch)
        stepper.step(loss)
        return {"loss": loss.item()}

    @abstractmethod
    def validation_step(self, batch: Batch) -> Sums: ...

    @abstractmethod
    def metrics(self, sums: dict[str, float], arrays: dict[str, np.ndarray]) -> dict[str, float]: ...

    @abstractmethod
    def predict(self, output: torch.Tensor) -> dict[str, torch.Tensor]: ...

    def regularisation(self, model: nn.Module) -> torch.Tensor | float:
        """training.l1 / l2 on `model`'s weights (0 when neither is set)."""
        if not (self.training.l1 or self.training.l2):
            return 0.0
        return penalty(model, self.training.l1, self.training.l2)


def batch_size(batch: Batch) -> int:
    """Examples in a batch: the length of its first tensor."""
    return len(next(iter(batch.values())))


def move(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def as_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy() if t.is_floating_point() else t.detach().cpu().numpy()
