"""YAML search spaces -> Ray Tune distributions.

Keys are dotted paths into the pipeline config (`training.optimizer.lr`); values are
one-key mappings naming the distribution: uniform, loguniform, randint, choice, grid.
"""

from __future__ import annotations

from typing import Any

from ray import tune

from components.config import Choice, Distribution, Grid, LogUniform, RandInt, Uniform


def to_tune_space(space: dict[str, Distribution]) -> dict[str, Any]:
    """Map each dotted key to its Ray Tune sampler (grid keys to grid_search)."""
    return {key: _sampler(dist) for key, dist in space.items()}


def _sampler(dist: Distribution) -> Any:
    if isinstance(dist, Uniform):
        return tune.uniform(*dist.uniform)
    if isinstance(dist, LogUniform):
        return tune.loguniform(*dist.loguniform)
    if isinstance(dist, RandInt):
        low, high = dist.randint
        return tune.randint(low, high + 1)  # YAML bounds are inclusive; Tune's upper is not
    if isinstance(dist, Choice):
        return tune.choice(dist.choice)
    if isinstance(dist, Grid):
        return tune.grid_search(dist.grid)
    raise TypeError(f"unknown distribution {dist!r}")
