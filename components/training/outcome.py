"""What a training run or a tuning trial leaves behind, whichever ran it."""

from __future__ import annotations

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
