"""The fitted state of any modality, read back from its preprocess.json data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from components.data.image_preparation import ImageState
from components.data.preparation import FeatureState

FittedState = FeatureState | ImageState


def state_from_dict(d: dict[str, Any]) -> FittedState:
    """FeatureState for tables (files written before modalities existed say none), ImageState for images."""
    modality = d.get("modality", "tabular")
    if modality == "image":
        return ImageState.from_dict(d)
    if modality == "tabular":
        return FeatureState.from_dict(d)
    raise ValueError(f"preprocess state has unknown modality {modality!r}; known: tabular, image")


def batch_decoder(state: FittedState) -> Callable[[dict[str, np.ndarray]], np.ndarray] | None:
    """How a batch of silver rows becomes model inputs: None where the columns already are
    the inputs (tables), else the state's `batch_inputs` (images are decoded, resized, normalised)."""
    return None if state.modality == "tabular" else state.batch_inputs
