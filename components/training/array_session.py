"""The loop's session over in-memory arrays: for models fitted inside another job.

An ensemble fits its torch members once per fold inside a Ray task (or in-process in
tests); starting a Ray Train worker group or a Ray Data pipeline per fold would cost more
than the fit. The loop is the same one Ray Train runs; only batches and reports differ.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn as nn

from components.training.loop import Batch


def memory_batches(kept: Batch, batch_size: int, shuffle: bool, seed: int) -> Iterator[Batch]:
    """Mini-batches of tensors held in memory, in a seeded random order when `shuffle`."""
    n = len(kept["y"])
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        yield {key: value[index] for key, value in kept.items()}


class ArraySession:
    """One process, no checkpoints kept: the trained model is the one `prepare_model` saw."""

    world_rank = 0
    world_size = 1
    device = torch.device("cpu")

    def __init__(self, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        self._splits = {
            name: {"x": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), "y": torch.from_numpy(y)}
            for name, (x, y) in splits.items()
        }
        self.model: nn.Module | None = None
        self.history: list[dict[str, float]] = []

    def batches(self, split: str, batch_size: int, shuffle: bool, seed: int) -> Iterator[Batch]:
        return memory_batches(self._splits[split], batch_size, shuffle, seed)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        self.model = model
        return model

    def latest_checkpoint(self) -> contextlib.AbstractContextManager[str | None]:
        return contextlib.nullcontext(None)

    def report(self, metrics: dict[str, float], checkpoint_dir: str | None) -> None:
        self.history.append(metrics)
