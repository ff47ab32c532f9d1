"""The files every training checkpoint has, whichever family wrote it.

    model.safetensors   a torch model's weights (estimators and boosters use their own
                        formats: `estimator_io`, `xgboost_io`, `ensemble_io`)
    state.json          epoch, global step, model spec, metrics, best metrics and the
                        early-stopping counters

Bundles are assembled from these files and training writes them, so their names and the
state.json format live below both: the torch loop's optimiser and early-stopping files
stay with it (`components.training.checkpoint`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL_FILE = "model.safetensors"
STATE_FILE = "state.json"


def write_state(
    directory: str | Path,
    spec: dict[str, Any],
    metrics: dict[str, float],
    *,
    epoch: int = 0,
    best_metrics: dict[str, float] | None = None,
    early_stopping: dict[str, Any] | None = None,
    global_step: int = 0,
) -> Path:
    """Write state.json, the part every checkpoint has whatever its model's format: epoch,
    model spec, metrics. Returns the directory."""
    directory = Path(directory)
    state = {
        "epoch": epoch, "global_step": global_step, "spec": spec, "metrics": metrics,
        "best_metrics": best_metrics or {}, "early_stopping": early_stopping,
    }
    (directory / STATE_FILE).write_text(json.dumps(state, indent=2))
    return directory


def read_state(directory: str | Path) -> dict[str, Any]:
    """The checkpoint's state.json, as `write_state` wrote it."""
    return json.loads((Path(directory) / STATE_FILE).read_text())
