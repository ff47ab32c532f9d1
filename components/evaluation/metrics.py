"""Classification and regression metrics in plain numpy.

Conventions follow scikit-learn: confusion-matrix rows are true classes and columns are
predictions; a ratio with a zero denominator is 0.0; macro averages run over all
`n_classes` classes, micro averages pool the counts.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) int64 counts; entry [i, j] = samples of class i predicted as j."""
    t, p = _labels(y_true, y_pred, n_classes)
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """accuracy, precision/recall/f1 macro and micro for integer labels in [0, n_classes)."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(cm).astype(np.float64)  # (K,)
    predicted = cm.sum(axis=0).astype(np.float64)  # (K,) tp + fp
    actual = cm.sum(axis=1).astype(np.float64)  # (K,) tp + fn
    precision = _ratio(tp, predicted)  # (K,)
    recall = _ratio(tp, actual)  # (K,)
    f1 = _ratio(2 * precision * recall, precision + recall)  # (K,)
    p_micro = _ratio(tp.sum(), predicted.sum())
    r_micro = _ratio(tp.sum(), actual.sum())
    return {
        "accuracy": float(tp.sum() / cm.sum()),
        "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()),
        "f1_macro": float(f1.mean()),
        "precision_micro": float(p_micro),
        "recall_micro": float(r_micro),
        "f1_micro": float(_ratio(2 * p_micro * r_micro, p_micro + r_micro)),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """sse, mse, rmse, mae and r2 (R² averaged over outputs for (n, k) targets).

    (n,) and (n, 1) are treated alike. R² of a constant target is 1.0 when predicted
    exactly and 0.0 otherwise, as scikit-learn reports it.
    """
    t, p = _as_2d(y_true, "y_true"), _as_2d(y_pred, "y_pred")  # (n, k)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {np.shape(y_true)} and {np.shape(y_pred)}")
    if t.shape[0] == 0:
        raise ValueError("regression_metrics needs at least one sample, got 0")
    err = t - p  # (n, k)
    sse_k = (err**2).sum(axis=0)  # (k,)
    sst_k = ((t - t.mean(axis=0)) ** 2).sum(axis=0)  # (k,)
    r2_k = np.where(sst_k > 0, 1.0 - sse_k / np.where(sst_k > 0, sst_k, 1.0), np.where(sse_k == 0, 1.0, 0.0))
    mse = float((err**2).mean())
    return {
        "sse": float(sse_k.sum()),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.abs(err).mean()),
        "r2": float(r2_k.mean()),
    }


def _ratio(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _labels(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be an integer >= 1, got {n_classes!r}")
    t, p = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {t.shape[0]} and {p.shape[0]}")
    if t.size == 0:
        raise ValueError("classification metrics need at least one sample, got 0")
    for name, a in (("y_true", t), ("y_pred", p)):
        if not (np.issubdtype(a.dtype, np.integer) or np.all(np.mod(a, 1) == 0)):
            raise ValueError(f"{name} must hold integer class labels, got dtype {a.dtype}")
        if a.min() < 0 or a.max() >= n_classes:
            raise ValueError(f"{name} labels must be in [0, {n_classes}), got range [{a.min()}, {a.max()}]")
    return t.astype(np.int64), p.astype(np.int64)


def _as_2d(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        return a[:, None]  # (n, 1)
    if a.ndim != 2:
        raise ValueError(f"{name} must be (n,) or (n, k), got shape {a.shape}")
    return a
