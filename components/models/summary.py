"""Seeing a torch model's structure: parameter and multiply counts, and a per-layer summary
(name, type, output shape, parameters) traced with forward hooks on one example. Works for
any nn.Module and input shape; each training run prints it and logs it to MLflow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence


def parameter_count(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared ones once); only those with requires_grad if `trainable_only`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def multiply_count(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of conv and linear layers for one example of `input_shape` ((C, H, W) for images)."""
    total = 0

    def hook(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k_h, k_w = module.kernel_size
            total += output.numel() * (module.in_channels // module.groups) * k_h * k_w  # out_h·out_w·out_c·…
        else:
            total += output.numel() * module.in_features

    targets = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    _trace(model, input_shape, [(m, hook) for m in targets])
    return total


@dataclass(frozen=True)
class LayerSummary:
    name: str
    type: str
    output_shape: tuple[int, ...]  # one example, no batch dimension
    parameters: int


def summary(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerSummary]:
    """One row per leaf module in call order (Identity and empty containers left out)."""
    rows: list[LayerSummary] = []

    def row(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
            shape = _example_shape(output)
            rows.append(LayerSummary(name, type(module).__name__, shape, parameter_count(module)))

        return hook

    leaves = [
        (m, row(name)) for name, m in model.named_modules()
        if next(m.children(), None) is None and not isinstance(m, (nn.Identity, nn.Sequential, nn.ModuleList))
    ]
    _trace(model, input_shape, leaves)
    return rows


def _example_shape(output: Any) -> tuple[int, ...]:
    """One example's output shape; a recurrent layer's (steps, state) gives its steps'."""
    if isinstance(output, tuple) and output:
        output = output[0]
    if isinstance(output, PackedSequence):
        output, _ = pad_packed_sequence(output, batch_first=True)  # (B, T, D * H)
    return tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else ()


def format_summary(rows: list[LayerSummary]) -> str:
    """An aligned text table of `summary` rows, closed by a 'total parameters: N' line."""
    table = [("layer", "type", "output shape", "parameters")]
    table += [(r.name, r.type, str(r.output_shape), str(r.parameters)) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(4)]
    lines = [
        "  ".join([*(cell.ljust(w) for cell, w in zip(line[:3], widths)), line[3].rjust(widths[3])])
        for line in table
    ]
    total = sum({r.name: r.parameters for r in rows}.values())  # a module called twice counts once
    return "\n".join([*lines, f"total parameters: {total}"])


def _trace(
    model: nn.Module, input_shape: tuple[int, ...], hooks: list[tuple[nn.Module, Callable[..., None]]]
) -> None:
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    handles = [m.register_forward_hook(h) for m, h in hooks]
    was_training = model.training
    model.eval()  # batch norm cannot take batch statistics from one example
    try:
        with torch.no_grad():
            # Ones, not zeros: a model over token ids would read zeros as padding alone.
            model(torch.ones(1, *input_shape, device=device, dtype=dtype))  # (1, C, H, W) or (1, T)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
