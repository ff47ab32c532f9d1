"""YAML search spaces -> Ray Tune distributions.

Keys are dotted paths into the pipeline config (`training.optimizer.lr`); values are
one-key mappings naming the distribution: uniform, loguniform, randint, choice, grid.

Several model families in one search make a conditional space: `model.kind` is a grid
over the families (so each gets `num_samples` trials) and `model.params` is sampled from
the space of whichever kind the trial drew.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray import tune

from components.config import Choice, Distribution, Grid, LogUniform, RandInt, TuningConfig, Uniform, apply_overrides
from components.data.modalities.info import DataInfo
from components.models import data_fields

KIND_KEY = "model.kind"
PARAMS_KEY = "model.params"
# A family trial's own seed for its params, drawn by Tune's seeded sampler: Tune does not
# hand its random state to sample_from functions, and copies them between trials.
DRAW_KEY = "model.params_draw"


def to_tune_space(space: dict[str, Distribution]) -> dict[str, Any]:
    """Map each dotted key to its Ray Tune sampler (grid keys to grid_search)."""
    return {key: _sampler(dist) for key, dist in space.items()}


def tune_space(tuning: TuningConfig) -> dict[str, Any]:
    """The whole param space: `tuning.space`, plus the conditional family space if any."""
    space = to_tune_space(tuning.space)
    if not tuning.families:
        return space
    for kind, family in tuning.families.items():
        grids = [key for key, dist in family.items() if isinstance(dist, Grid)]
        if grids:
            raise ValueError(f"tuning.families.{kind}: use choice, not grid, inside a family (keys {grids})")
    samplers = {
        kind: {key.removeprefix(PARAMS_KEY + "."): _sampler(dist) for key, dist in family.items()}
        for kind, family in tuning.families.items()
    }
    return {
        **space, KIND_KEY: tune.grid_search(list(samplers)), DRAW_KEY: tune.randint(0, 2**31 - 1),
        PARAMS_KEY: tune.sample_from(_FamilyParams(samplers)),
    }


def space_keys(tuning: TuningConfig) -> list[str]:
    """The keys a trial's params are recorded under."""
    return [*tuning.space, *((KIND_KEY, PARAMS_KEY) if tuning.families else ())]


def trial_config(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The loop config one trial runs: `base` with the trial's params applied. A family
    trial swaps the model for its kind, its data-derived params filled from `base`'s data."""
    if KIND_KEY not in params:
        return apply_overrides(base, params)
    model = {"kind": params[KIND_KEY], "params": dict(params.get(PARAMS_KEY) or {})}
    model["params"].update(data_fields(model, DataInfo.from_dict(base["info"])))
    rest = {k: v for k, v in params.items() if k not in (KIND_KEY, PARAMS_KEY, DRAW_KEY)}
    return apply_overrides({**base, "model": model}, rest)


def trial_spec(params: dict[str, Any]) -> dict[str, Any]:
    """The model spec ({kind, params}) a family trial ran with, from its recorded params."""
    return {"kind": params[KIND_KEY], "params": dict(params.get(PARAMS_KEY) or {})}


class _FamilyParams:
    """Samples the params of the kind a trial drew, seeded by the trial's DRAW_KEY, so a
    search with the same `tuning.seed` draws the same params. A class, not a closure: Tune ships it."""

    def __init__(self, samplers: dict[str, dict[str, Any]]) -> None:
        self.samplers = samplers

    def __call__(self, spec: Any) -> dict[str, Any]:
        rng = np.random.default_rng(spec.config[DRAW_KEY])
        return {key: domain.sample(random_state=rng) for key, domain in self.samplers[spec.config[KIND_KEY]].items()}


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
