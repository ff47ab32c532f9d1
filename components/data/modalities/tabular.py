"""The tabular modality: rows of typed columns -> (N, F) float32 inputs.

Its fitted state is `components.data.preparation.FeatureState` (scalers, one-hot, labels),
whose `info` is the DataInfo below.
"""

from __future__ import annotations

from components.data.modalities.info import DataInfo, Task


def tabular_info(task: Task, in_features: int, out_features: int, classes: tuple[str, ...] | None = None) -> DataInfo:
    """DataInfo for rows of `in_features` numbers. Without class names, a classification
    with `out_features` 1 is binary and otherwise has `out_features` classes, named by index."""
    if classes is None and task == "classification":
        classes = tuple(str(i) for i in range(max(2, out_features)))
    return DataInfo(modality="tabular", task=task, input_shape=(in_features,), classes=classes or ())
