"""What a training run or a tuning trial leaves behind, whichever ran it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrialOutcome:
    trial_id: str
    params: dict[str, Any]  # the overrides this trial ran with (empty for plain training)
    history: list[dict[str, Any]]  # one metrics dict per reported epoch
    checkpoint: str | None  # the last checkpoint (best weights when restore-best is on)
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # the last report

    def value(self, metric: str) -> float:
        return float(self.metrics.get(metric, float("nan")))


def best_of(outcomes: list[TrialOutcome], metric: str, mode: str) -> TrialOutcome:
    """The finished outcome with the best last-reported `metric`; a clear error if none."""
    usable = [o for o in outcomes if o.checkpoint and o.error is None and math.isfinite(o.value(metric))]
    if not usable:
        errors = "; ".join(f"{o.trial_id}: {o.error}" for o in outcomes if o.error) or "no checkpoints reported"
        raise RuntimeError(f"no trial finished with a finite {metric!r}: {errors}")
    pick = min if mode == "min" else max
    return pick(usable, key=lambda o: o.value(metric))


def best_per_kind(outcomes: list[TrialOutcome], metric: str, mode: str, kind_key: str) -> list[TrialOutcome]:
    """The best finished outcome of each model kind (`params[kind_key]`), kinds in the
    order they first appear; kinds with no finished trial are left out."""
    kinds = list(dict.fromkeys(o.params.get(kind_key) for o in outcomes if o.params.get(kind_key)))
    best = []
    for kind in kinds:
        try:
            best.append(best_of([o for o in outcomes if o.params.get(kind_key) == kind], metric, mode))
        except RuntimeError:
            continue
    return best
