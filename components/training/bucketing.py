"""Bucketing by length: training batches of token sequences regrouped so that each batch
holds rows of about the same length, and the models, which cut a batch to its longest row,
spend little on padding.

`by_length` pools `pool` consecutive batches, orders the pooled rows by their token count
(ties broken at random, seeded), cuts them into batches of the sizes the pool had, and yields
those in a seeded random order: every row once per epoch as before, the same number of
batches of the same sizes (so data-parallel workers stay in step), and order enough left
for stochastic gradients. It works on whatever the session streams, in memory or from Ray
Data, pool by pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

from components.data.modalities.text import lengths
from components.training.tasks import Batch


def by_length(batches: Iterable[Batch], pool: int, seed: int) -> Iterator[Batch]:
    """`batches` ({"x": (B, T[, 1 + W]) token ids, ...}) regrouped by length, `pool` at a time."""
    if pool < 2:
        raise ValueError(f"pool must be >= 2 batches, got {pool}")
    generator = torch.Generator().manual_seed(seed)
    pooled: list[Batch] = []
    for batch in batches:
        pooled.append(batch)
        if len(pooled) == pool:
            yield from _regrouped(pooled, generator)
            pooled = []
    if pooled:
        yield from _regrouped(pooled, generator)


def _regrouped(pooled: list[Batch], generator: torch.Generator) -> Iterator[Batch]:
    sizes = [len(b["x"]) for b in pooled]
    rows = {key: _joined([b[key] for b in pooled]) for key in pooled[0]}
    n = lengths(rows["x"]).float()  # (N,) tokens per row
    order = torch.argsort(n + torch.rand(len(n), generator=generator) * 0.5)  # by length, ties at random
    starts = torch.tensor([0, *sizes]).cumsum(0).tolist()
    for i in torch.randperm(len(sizes), generator=generator).tolist():
        index = order[starts[i] : starts[i + 1]]
        yield {key: value[index] for key, value in rows.items()}


def _joined(parts: list[torch.Tensor]) -> torch.Tensor:
    """Batches of one key joined along the rows; sequences of a batch cut to its longest row
    are padded back to the widest (with 0, the padding id)."""
    width = max(p.shape[1] for p in parts) if parts[0].dim() > 1 else None
    if width is not None:
        parts = [torch.nn.functional.pad(p, (0, 0) * (p.dim() - 2) + (0, width - p.shape[1])) for p in parts]
    return torch.cat(parts)
