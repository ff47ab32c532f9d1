"""The leaderboard: every candidate of a search, best first, on the selection metric."""

from __future__ import annotations

import math
from typing import Any

from components.evaluation.outcome import TrialOutcome


def leaderboard(outcomes: list[TrialOutcome], metric: str, mode: str) -> list[dict[str, Any]]:
    """One row per trial: rank, trial id, the metric, epochs run, params, status.
    Failed trials and trials without a finite metric rank last."""
    def key(o: TrialOutcome) -> tuple[int, float]:
        value = o.value(metric)
        usable = o.error is None and math.isfinite(value)
        return (0 if usable else 1, (value if mode == "min" else -value) if usable else 0.0)

    rows = []
    for rank, outcome in enumerate(sorted(outcomes, key=key), start=1):
        rows.append(
            {
                "rank": rank,
                "trial": outcome.trial_id,
                metric: outcome.value(metric),
                "epochs": len(outcome.history),
                "params": outcome.params,
                "status": "failed" if outcome.error else "ok",
            }
        )
    return rows
