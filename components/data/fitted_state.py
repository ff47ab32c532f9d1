"""The fitted state of any modality, read back from its preprocess.json data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from components.data.corpus_preparation import LanguageModelState
from components.data.image_preparation import ImageState
from components.data.pairs_preparation import PairsState
from components.data.preparation import FeatureState
from components.data.tagged_preparation import TaggedState
from components.data.text_preparation import TextState

FittedState = FeatureState | ImageState | TextState | TaggedState | LanguageModelState | PairsState


def state_from_dict(d: dict[str, Any]) -> FittedState:
    """FeatureState for tables (files written before modalities existed say none), ImageState
    for images, TextState for text (LanguageModelState for running text), TaggedState for
    tagged sentences, PairsState for sequence pairs."""
    modality = d.get("modality", "tabular")
    states = {"tabular": FeatureState, "image": ImageState, "text": TextState, "tagged": TaggedState,
              "pairs": PairsState}
    if modality not in states:
        raise ValueError(f"preprocess state has unknown modality {modality!r}; known: {', '.join(states)}")
    if modality == "text" and d.get("task") == "language_model":
        return LanguageModelState.from_dict(d)
    return states[modality].from_dict(d)


def batch_decoder(state: FittedState) -> Callable[[dict[str, np.ndarray]], np.ndarray] | None:
    """How a batch of silver rows becomes model inputs: None where the columns already are
    the inputs (tables), else the state's `batch_inputs` (images are decoded, resized and
    normalised; token ids padded)."""
    return None if state.modality == "tabular" else state.batch_inputs


def label_decoder(state: FittedState) -> Callable[[dict[str, np.ndarray]], np.ndarray] | None:
    """How a batch of silver rows becomes labels: None where the label column is one value
    per row, else the state's `batch_labels` (a tag per token, padded)."""
    return getattr(state, "batch_labels", None)


def packed_row_bytes(state: FittedState) -> int | None:
    """The bytes of one training row once packed (inputs and label), where every row packs
    to the same size (images); None where it varies or is the stored row itself."""
    return getattr(state, "packed_row_bytes", None)
