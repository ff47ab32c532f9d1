"""Pictures of a drift report: each feature's reference and current distributions overlaid,
and one bar per feature of its deciding statistic against the threshold."""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from components.evaluation.drift import DriftReport, FeatureDrift, category_counts
from components.evaluation.figures import png

_REFERENCE, _CURRENT, _DRIFTED = "#4c72b0", "#dd8452", "#c44e52"


def feature_png(drift: FeatureDrift, reference: pl.Series, current: pl.Series) -> bytes:
    """Histograms (numbers, shared bins) or category shares, reference against current."""
    fig = Figure(figsize=(5.5, 3.2))
    ax = fig.add_subplot()
    if drift.kind == "numeric":
        ref = reference.cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
        cur = current.cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
        both = np.concatenate([ref, cur])
        bins = np.histogram_bin_edges(both, bins=30) if both.size else 10
        ax.hist(ref, bins=bins, density=True, alpha=0.55, color=_REFERENCE, label=f"reference ({ref.size})")
        ax.hist(cur, bins=bins, density=True, alpha=0.55, color=_CURRENT, label=f"current ({cur.size})")
    else:
        categories, ref_counts, cur_counts = category_counts(reference, current)
        at = np.arange(len(categories))
        ax.bar(at - 0.2, ref_counts / max(ref_counts.sum(), 1), 0.4, color=_REFERENCE, label="reference")
        ax.bar(at + 0.2, cur_counts / max(cur_counts.sum(), 1), 0.4, color=_CURRENT, label="current")
        ax.set_xticks(at, categories, rotation=45 if len(categories) > 6 else 0, ha="right" if len(categories) > 6 else "center")
        ax.set_ylabel("share")
    verdict = "drifted" if drift.drifted else "stable"
    ax.set_title(f"{drift.feature}: {drift.test} {drift.value:.3g} (threshold {drift.threshold:g}) — {verdict}", fontsize=9)
    ax.legend(fontsize=8)
    return png(fig)


def summary_png(report: DriftReport) -> bytes:
    """One bar per feature (and the prediction), its deciding value, drifted ones in red."""
    judged = [*report.features, *([report.prediction] if report.prediction else [])]
    fig = Figure(figsize=(6.5, max(2.0, 0.28 * len(judged) + 1)))
    ax = fig.add_subplot()
    at = np.arange(len(judged))
    values = [0.0 if np.isnan(f.value) else f.value for f in judged]
    ax.barh(at, values, color=[_DRIFTED if f.drifted else _REFERENCE for f in judged])
    ax.set_yticks(at, [f"{f.feature} ({f.test})" for f in judged], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("statistic (p-value for ks and chi2); red: drifted")
    ax.set_title(f"{len(report.drifted_features)} of {len(report.features)} features drifted", fontsize=9)
    return png(fig)
