"""Data drift: how far a window of served inputs (and the model's answers to them) has moved
from the training reference, per feature.

Numbers: the population stability index over the reference's deciles, the two-sample
Kolmogorov–Smirnov test, and the Wasserstein distance in units of the reference's standard
deviation. Categories: the chi-squared test of homogeneity and the Jensen–Shannon distance
(base 2, so 0..1). Each feature is judged by one test, chosen per kind in the monitoring
config; the others are reported beside it.

Tests judged by a distance (psi, wasserstein, js) flag drift when it exceeds the threshold;
tests judged by a p-value (ks, chi2) when the p-value falls below it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from scipy import stats
from scipy.spatial.distance import jensenshannon

NumericTest = Literal["psi", "ks", "wasserstein"]
CategoricalTest = Literal["chi2", "js"]
P_VALUE_TESTS = frozenset({"ks", "chi2"})
NULL = "<null>"  # a missing category is a category of its own: more of it is drift too

# The floor on a bin's share in PSI: an empty bin would make ln(c/r) infinite.
_PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class FeatureDrift:
    """One column's comparison: the deciding test and its value, and every statistic computed."""

    feature: str
    kind: Literal["numeric", "categorical"]
    test: str
    value: float
    threshold: float
    drifted: bool
    statistics: dict[str, float]
    reference_rows: int
    current_rows: int


@dataclass(frozen=True)
class DriftReport:
    features: list[FeatureDrift]
    prediction: FeatureDrift | None
    drift_share: float  # the share of drifted features that makes the data set drifted

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def share(self) -> float:
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    @property
    def drifted(self) -> bool:
        """The data set drifted: enough features moved, or the model's answers did."""
        by_features = bool(self.features) and self.share >= self.drift_share
        return by_features or bool(self.prediction and self.prediction.drifted)

    def to_dict(self) -> dict:
        def one(f: FeatureDrift) -> dict:
            return {**f.__dict__, "statistics": {k: _finite(v) for k, v in f.statistics.items()}}

        return {
            "drifted": self.drifted, "share": self.share, "drift_share": self.drift_share,
            "drifted_features": self.drifted_features,
            "features": [one(f) for f in self.features],
            "prediction": one(self.prediction) if self.prediction else None,
        }


# ---------------------------------------------------------------------------- statistics


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index: sum over bins of (c - r) * ln(c / r), where the bins are
    the reference's quantiles (so each holds about 1/bins of it) and r, c the two shares."""
    reference, current = _finite_values(reference), _finite_values(current)
    if reference.size == 0 or current.size == 0:
        return math.nan
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    # Bins (e[k-1], e[k]]: a discrete feature's values sit on the edges, and each must land
    # on the edge's own side for a value above all of the reference to count as new.
    r = _shares(np.searchsorted(inner, reference, side="left"), inner.size + 1)
    c = _shares(np.searchsorted(inner, current, side="left"), inner.size + 1)
    return float(np.sum((c - r) * np.log(c / r)))


def ks(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """(statistic, p-value) of the two-sample Kolmogorov–Smirnov test."""
    reference, current = _finite_values(reference), _finite_values(current)
    if reference.size == 0 or current.size == 0:
        return math.nan, math.nan
    result = stats.ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """Earth mover's distance between the two samples, in reference standard deviations
    (so one threshold fits features of any scale); a constant reference: in raw units."""
    reference, current = _finite_values(reference), _finite_values(current)
    if reference.size == 0 or current.size == 0:
        return math.nan
    scale = float(np.std(reference)) or 1.0
    return float(stats.wasserstein_distance(reference, current)) / scale


def category_counts(reference: pl.Series, current: pl.Series) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(categories, reference counts, current counts) over the union of both sides' values,
    nulls counted as their own category; categories sorted for a stable report."""
    ref = _counts(reference)
    cur = _counts(current)
    categories = sorted(set(ref) | set(cur))
    return (
        categories,
        np.array([ref.get(c, 0) for c in categories], dtype=np.float64),
        np.array([cur.get(c, 0) for c in categories], dtype=np.float64),
    )


def chi2(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """(statistic, p-value) of the chi-squared test that both samples share one category
    distribution (a 2 x k contingency table, no continuity correction)."""
    table = np.vstack([reference_counts, current_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0  # one category on both sides (or an empty side): nothing can differ
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def js(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2: 0 identical, 1 disjoint) between the category shares."""
    if reference_counts.sum() == 0 or current_counts.sum() == 0:
        return math.nan
    return float(jensenshannon(reference_counts, current_counts, base=2))


# ---------------------------------------------------------------------------- per feature


def numeric_drift(
    feature: str, reference: pl.Series, current: pl.Series, test: NumericTest, threshold: float
) -> FeatureDrift:
    ref = reference.cast(pl.Float64).to_numpy()
    cur = current.cast(pl.Float64).to_numpy()
    statistic, p_value = ks(ref, cur)
    statistics = {
        "psi": psi(ref, cur), "ks": statistic, "ks_pvalue": p_value, "wasserstein": wasserstein(ref, cur),
        "reference_mean": _mean(ref), "current_mean": _mean(cur),
        "reference_null_share": _null_share(reference), "current_null_share": _null_share(current),
    }
    value = statistics["ks_pvalue" if test == "ks" else test]
    return _judged(feature, "numeric", test, value, threshold, statistics, reference, current)


def categorical_drift(
    feature: str, reference: pl.Series, current: pl.Series, test: CategoricalTest, threshold: float
) -> FeatureDrift:
    categories, ref, cur = category_counts(reference, current)
    statistic, p_value = chi2(ref, cur)
    statistics = {
        "chi2": statistic, "chi2_pvalue": p_value, "js": js(ref, cur),
        "categories": float(len(categories)),
        "unseen_share": float(cur[ref == 0].sum() / cur.sum()) if cur.sum() else math.nan,
    }
    value = statistics["chi2_pvalue" if test == "chi2" else test]
    return _judged(feature, "categorical", test, value, threshold, statistics, reference, current)


def drift_report(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    numeric: list[str],
    categorical: list[str],
    *,
    numeric_test: NumericTest,
    numeric_threshold: float,
    categorical_test: CategoricalTest,
    categorical_threshold: float,
    drift_share: float,
    prediction: Literal["numeric", "categorical"] | None = None,
    current_predictions: pl.DataFrame | None = None,
) -> DriftReport:
    """Every feature of `reference` and `current` compared; with `prediction`, the
    `prediction` column too (of `current_predictions` when given: the rows one model
    version answered, since answers of other versions say nothing about this one)."""
    missing = [c for c in (*numeric, *categorical) if c not in reference.columns or c not in current.columns]
    if missing:
        raise ValueError(f"drift: feature column(s) {missing} are missing from the reference or the current rows")

    def judge(name: str, ref: pl.Series, cur: pl.Series, kind: str) -> FeatureDrift:
        if kind == "numeric":
            return numeric_drift(name, ref, cur, numeric_test, numeric_threshold)
        return categorical_drift(name, ref, cur, categorical_test, categorical_threshold)

    features = [judge(c, reference[c], current[c], "numeric") for c in numeric]
    features += [judge(c, reference[c], current[c], "categorical") for c in categorical]
    answered = current if current_predictions is None else current_predictions
    predicted = None
    if prediction is not None and answered.height:
        predicted = judge("prediction", reference["prediction"], answered["prediction"], prediction)
    return DriftReport(features, predicted, drift_share)


def is_drift(test: str, value: float, threshold: float) -> bool:
    if math.isnan(value):
        return False
    return value < threshold if test in P_VALUE_TESTS else value > threshold


# ---------------------------------------------------------------------------- helpers


def _judged(
    feature: str, kind: str, test: str, value: float, threshold: float, statistics: dict[str, float],
    reference: pl.Series, current: pl.Series,
) -> FeatureDrift:
    return FeatureDrift(
        feature, kind, test, value, threshold, is_drift(test, value, threshold), statistics,  # type: ignore[arg-type]
        reference.len(), current.len(),
    )


def _finite_values(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values)]


def _shares(bin_index: np.ndarray, n_bins: int) -> np.ndarray:
    counts = np.bincount(bin_index, minlength=n_bins).astype(np.float64)
    return np.maximum(counts / counts.sum(), _PSI_FLOOR)


def _counts(values: pl.Series) -> dict[str, int]:
    text = values.cast(pl.String).fill_null(NULL)
    counted = text.value_counts()
    return dict(zip(counted[text.name].to_list(), counted["count"].to_list()))


def _mean(values: np.ndarray) -> float:
    finite = _finite_values(values)
    return float(finite.mean()) if finite.size else math.nan


def _null_share(values: pl.Series) -> float:
    return values.null_count() / values.len() if values.len() else math.nan


def _finite(value: float) -> float | None:
    return None if isinstance(value, float) and not math.isfinite(value) else value
