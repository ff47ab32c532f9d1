"""Numerical gradient checking: compare backprop's gradient with the two-sided difference
(L(θ+ε) − L(θ−ε)) / 2ε, entry by entry, for every trainable parameter tensor.

The check is for custom layers, losses and autograd Functions: a wrong backward shows as a
relative error far above the ~1e-10 that float64 differences reach.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from components.training.tasks.base import Batch, LossOf




@dataclass(frozen=True)
class GradCheckRow:
    """The result for one parameter tensor, over its `checked` sampled entries."""

    name: str
    shape: tuple[int, ...]
    checked: int
    relative_error: float  # ||g_num − g_ana|| / (||g_num|| + ||g_ana||), 0 when both are 0
    max_abs_error: float


def gradient_check(
    model: nn.Module,
    batch: Batch,
    loss_of: LossOf,
    *,
    eps: float = 1e-6,
    max_entries: int = 64,
    generator: torch.Generator | None = None,
) -> list[GradCheckRow]:
    """One row per parameter with requires_grad, in `named_parameters` order.

    Runs on a float64 deep copy of the model (floating batch tensors are cast too): the
    caller's model is untouched, and float64 keeps the difference's rounding error
    (~1e-16·L/ε) far below any real bug. The copy is in eval mode because dropout would
    draw a fresh mask for every loss evaluation and batch norm would normalise with batch
    statistics, so L(θ+ε) and L(θ−ε) would not be the same function; in eval mode the check
    covers the deterministic network. A tensor with more than `max_entries` entries has that
    many sampled without replacement with `generator` (torch's global generator when None).
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
        raise ValueError(f"max_entries must be an integer >= 1, got {max_entries!r}")
    probe = copy.deepcopy(model).to(torch.float64).eval()
    params = [(name, p) for name, p in probe.named_parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no parameters with requires_grad=True to check")
    batch64 = {k: v.to(torch.float64) if v.is_floating_point() else v for k, v in batch.items()}

    def loss_value() -> float:
        return float(_scalar(loss_of(probe, batch64)))

    for _, p in params:
        p.grad = None
    with torch.enable_grad():
        _scalar(loss_of(probe, batch64)).backward()

    rows = []
    with torch.no_grad():
        for name, p in params:
            analytic = torch.zeros_like(p) if p.grad is None else p.grad  # None: p does not reach the loss
            picks = [_unravel(flat, tuple(p.shape)) for flat in _sample(p.numel(), max_entries, generator)]
            numeric = torch.empty(len(picks), dtype=torch.float64)
            values = p.detach()  # writes through to the parameter
            for j, index in enumerate(picks):
                original = values[index].item()
                values[index] = original + eps
                plus = loss_value()
                values[index] = original - eps
                minus = loss_value()
                values[index] = original  # a float64 round trip: exact
                numeric[j] = (plus - minus) / (2 * eps)
            expected = torch.tensor([analytic[index].item() for index in picks], dtype=torch.float64)
            rows.append(_row(name, tuple(p.shape), numeric, expected))
    return rows


def passed(rows: list[GradCheckRow], tolerance: float = 1e-5) -> bool:
    """True when every row's relative error is at most `tolerance` (and not nan)."""
    return all(row.relative_error <= tolerance for row in rows)


def format_grad_check(rows: list[GradCheckRow], *, tolerance: float = 1e-5) -> str:
    """An aligned text table, one line per parameter tensor, marking rows above `tolerance`."""
    header = ("parameter", "shape", "checked", "relative error", "max abs error", "")
    lines = [
        (r.name, "×".join(map(str, r.shape)) or "scalar", str(r.checked), f"{r.relative_error:.3e}",
         f"{r.max_abs_error:.3e}", "ok" if r.relative_error <= tolerance else "FAIL")
        for r in rows
    ]
    widths = [max(len(cells[c]) for cells in [header, *lines]) for c in range(len(header))]
    numeric = {2, 3, 4}  # right-aligned columns

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.rjust(w) if c in numeric else cell.ljust(w)
                         for c, (cell, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([fmt(header), *map(fmt, lines)])


def _scalar(loss: torch.Tensor) -> torch.Tensor:
    if loss.numel() != 1:
        raise ValueError(f"loss_of must return a scalar tensor, got shape {tuple(loss.shape)}")
    return loss.reshape(())


def _sample(numel: int, max_entries: int, generator: torch.Generator | None) -> list[int]:
    if numel <= max_entries:
        return list(range(numel))
    return sorted(torch.randperm(numel, generator=generator)[:max_entries].tolist())


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    index = []
    for size in reversed(shape):
        flat, i = divmod(flat, size)
        index.append(i)
    return tuple(reversed(index))


def _row(name: str, shape: tuple[int, ...], numeric: torch.Tensor, analytic: torch.Tensor) -> GradCheckRow:
    diff = (numeric - analytic).norm().item()
    scale = numeric.norm().item() + analytic.norm().item()
    relative = 0.0 if scale == 0 else diff / scale
    max_abs = (numeric - analytic).abs().max().item() if numeric.numel() else 0.0
    if not math.isfinite(relative):
        relative = math.nan  # an inf gradient gives inf/inf; nan makes `passed` fail it
    return GradCheckRow(name, shape, len(numeric), relative, max_abs)
