"""Accuracy under FGSM and PGD attack on a held-out split, and attacked training batches.

Image models see normalised inputs, (x / 255 - mean) / std per channel. An eps in those
units would mean a different amount of change for every data set and channel, so for
images eps is in pixel units, a fraction of the 0..255 range (eps 0.1 is 25.5 grey
levels, the usual MNIST setting): the attack runs on the un-normalised image through
`PixelSpace` (normalise, then the model) and is clamped to [0, 1], so every attacked image
is a valid image. Models on tables are attacked in the units they see (standardised
features), without a clamp.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from components.config import AdversarialTrainingConfig, robust_metric
from components.data.modalities.info import DataInfo
from components.evaluation.adversarial import adversarial_batch, robust_accuracy

PixelStats = tuple[list[float], list[float]]  # per-channel (mean, std) of the [0, 1] pixels
_PIXEL_RANGE = (0.0, 1.0)


class PixelSpace(nn.Module):
    """`model` fed un-normalised images (B, C, H, W) in [0, 1]: model((x - mean) / std)."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        param = next((p for p in model.parameters() if p.is_floating_point()), None)
        device = param.device if param is not None else None
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32, device=device).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32, device=device).view(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalised(pixels))  # (B, K)

    def pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised inputs (B, C, H, W) back to [0, 1] pixels."""
        return x * self.std + self.mean

    def normalised(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self.mean) / self.std


def pixel_statistics(info: DataInfo) -> PixelStats | None:
    """(mean, std) per channel that image inputs were normalised with (0 and 1 when they were
    not); None for tables, whose models are attacked in their own units."""
    if info.pixel_mean is None or info.pixel_std is None:
        return None
    return list(info.pixel_mean), list(info.pixel_std)


def robust_metrics(
    model: nn.Module,
    inputs: np.ndarray,
    labels: np.ndarray,
    *,
    attacks: Sequence[str],
    eps: Sequence[float],
    pixels: PixelStats | None,
    pgd_steps: int = 10,
    pgd_step_size: float | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, float]:
    """{`test_<attack>_accuracy.eps_<eps>`: accuracy} of `model` on (inputs (N, ...), labels (N,))
    attacked with each of `attacks` at each of `eps` (eps 0: the clean accuracy).

    `pixels` given: inputs are normalised images and eps is in pixel units (see the module
    docstring); None: eps is in the model's input units. PGD starts at random points drawn
    from a generator seeded with `seed`, so the numbers repeat run after run."""
    if len(labels) == 0:
        raise ValueError("cannot attack an empty split")
    model.eval()
    space = None if pixels is None else PixelSpace(model, *pixels)
    target, clamp = (model, None) if space is None else (space, _PIXEL_RANGE)
    metrics: dict[str, float] = {}
    for attack in attacks:
        kwargs: dict[str, Any] = {"clamp": clamp}
        if attack == "pgd":
            kwargs.update(steps=pgd_steps, step_size=pgd_step_size, generator=torch.Generator().manual_seed(seed))
        batches = _batches(target, inputs, labels, batch_size, space)
        for e, accuracy in robust_accuracy(target, batches, list(eps), attack, **kwargs).items():
            metrics[robust_metric(attack, e)] = float(accuracy)
    return metrics


def attacked_inputs(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, settings: AdversarialTrainingConfig, info: DataInfo
) -> torch.Tensor:
    """`x` (B, ...) with its first round(ratio * B) rows replaced by attacks on `model`, as
    `settings` (training.adversarial) says; in pixel units for images (`info`'s statistics)."""
    kwargs: dict[str, Any] = {}
    if settings.attack == "pgd":
        kwargs.update(steps=settings.steps, step_size=settings.step_size)
    pixels = pixel_statistics(info)
    if pixels is None:
        return adversarial_batch(model, x, y, settings.eps, settings.attack, settings.ratio, **kwargs)[0]
    space = PixelSpace(model, *pixels)
    attacked, _ = adversarial_batch(
        space, space.pixels(x), y, settings.eps, settings.attack, settings.ratio, clamp=_PIXEL_RANGE, **kwargs
    )
    k = round(settings.ratio * x.shape[0])  # the rows adversarial_batch attacked; the rest stay exact
    return torch.cat([space.normalised(attacked[:k]), x[k:]]).detach()


def _batches(
    model: nn.Module, inputs: np.ndarray, labels: np.ndarray, batch_size: int, space: PixelSpace | None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(x, y) batches on the model's device; x un-normalised to [0, 1] pixels when `space` is given."""
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    device = param.device if param is not None else torch.device("cpu")
    for start in range(0, len(labels), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(inputs[start : start + batch_size], dtype=np.float32)).to(device)
        y = torch.from_numpy(np.asarray(labels[start : start + batch_size]).astype(np.int64)).to(device)
        yield (x if space is None else space.pixels(x).clamp(*_PIXEL_RANGE)), y
