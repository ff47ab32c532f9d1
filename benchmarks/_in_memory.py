"""Training a pipeline config's model in this process, for the quality benchmarks: the
project's `train_model` under tests/unit/test_loop.py's `MemorySession` (arrays in memory,
no Ray), the trained model read back from the last checkpoint as a pipeline would."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.unit.test_loop: MemorySession
from components.artifacts.checkpoint_files import MODEL_FILE  # noqa: E402
from components.models import build  # noqa: E402
from components.training.loop import train_model  # noqa: E402
from tests.unit.test_loop import MemorySession  # noqa: E402

Arrays = tuple[np.ndarray, np.ndarray]


def train_in_memory(label: str, config: dict[str, Any], data: dict[str, Arrays]
                    ) -> tuple[list[dict[str, float]], nn.Module, float, bool]:
    """`train_model(config)` on `data`'s train and val arrays: (history, the model of the last
    checkpoint, seconds, whether that checkpoint equals the one written at the best epoch,
    which it must when early stopping restores the best)."""
    session = MemorySession(*data["train"])
    session.data["val"] = data["val"]
    try:
        t0 = time.perf_counter()
        history = train_model(config, session)
        seconds = time.perf_counter() - t0
        last = session.checkpoints[-1]
        if last is None:
            raise RuntimeError(f"{label}: train_model wrote no checkpoint")
        weights = load_file(str(Path(last) / MODEL_FILE))
        model = build(config["model"])
        model.load_state_dict(weights, strict=True)
        best = int(history[-1].get("best_epoch", history[-1]["epoch"]))
        at_best = load_file(str(Path(session.checkpoints[best]) / MODEL_FILE))
        same = weights.keys() == at_best.keys() and all(torch.equal(v, at_best[k]) for k, v in weights.items())
    finally:
        shutil.rmtree(session.keep, ignore_errors=True)
    return history, model.eval(), seconds, same
