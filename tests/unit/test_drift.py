"""Drift statistics on distributions whose answers are known in closed form, and the
per-feature judgement built on them."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from components.evaluation.drift import (
    NULL, category_counts, chi2, drift_report, is_drift, js, ks, psi, wasserstein,
)

N = 200_000


def _normal(mean: float, sd: float = 1.0, n: int = N, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, sd, n)


def _psi_of_shift(shift: float, bins: int = 10) -> float:
    """PSI of N(shift, 1) against N(0, 1) over N(0, 1)'s deciles, from the normal CDF."""
    edges = np.concatenate([[-np.inf], stats.norm.ppf(np.linspace(0, 1, bins + 1)[1:-1]), [np.inf]])
    current = np.diff(stats.norm.cdf(edges - shift))
    reference = np.full(bins, 1 / bins)
    return float(np.sum((current - reference) * np.log(current / reference)))


@pytest.mark.parametrize("shift", [0.1, 0.5, 1.0])
def test_psi_matches_the_closed_form_for_a_shifted_normal(shift):
    assert psi(_normal(0), _normal(shift, seed=1)) == pytest.approx(_psi_of_shift(shift), rel=0.03, abs=2e-3)


def test_psi_is_zero_for_the_same_sample_and_symmetric_in_nothing_else():
    ref = _normal(0)
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-12)
    # Bins come from the reference: a wider current spills into the outer deciles.
    assert psi(ref, _normal(0, 2.0, seed=1)) > 0.3


def test_psi_survives_an_empty_bin_and_a_constant_reference():
    # Every current value above the reference's top decile: finite, large.
    assert 5 < psi(_normal(0), _normal(10, seed=1)) < 20
    # A constant reference has one bin edge left; values on both sides of it still compare.
    assert psi(np.zeros(100), np.zeros(100)) == pytest.approx(0.0)
    assert psi(np.zeros(100), np.ones(100)) > 1


def test_ks_matches_the_normal_cdf_gap_and_scipy():
    ref, cur = _normal(0), _normal(0.5, seed=1)
    statistic, p_value = ks(ref, cur)
    # sup |Phi(x) - Phi(x - 0.5)| is reached at x = 0.25
    assert statistic == pytest.approx(stats.norm.cdf(0.25) - stats.norm.cdf(-0.25), abs=0.005)
    assert p_value < 1e-100
    same_stat, same_p = ks(ref[:5000], _normal(0, n=5000, seed=2))
    assert (same_stat, same_p) == pytest.approx(tuple(stats.ks_2samp(ref[:5000], _normal(0, n=5000, seed=2))))
    assert same_p > 0.01


def test_wasserstein_is_in_reference_standard_deviations():
    assert wasserstein(_normal(0), _normal(0.5, seed=1)) == pytest.approx(0.5, abs=0.01)
    # the same shift in units of a feature four times as wide
    assert wasserstein(_normal(0, 4.0), _normal(2.0, 4.0, seed=1)) == pytest.approx(0.5, abs=0.01)


def test_nan_values_are_left_out_and_an_empty_side_is_nan():
    ref = np.array([0.0, 1.0, 2.0, np.nan])
    assert ks(ref, np.array([0.0, 1.0, 2.0]))[0] == 0.0
    assert math.isnan(psi(ref, np.array([np.nan])))
    assert math.isnan(wasserstein(np.array([]), ref))


def test_categories_align_across_both_sides_with_nulls_as_their_own():
    categories, ref, cur = category_counts(pl.Series("c", ["a", "a", "b", None]), pl.Series("c", ["b", "c", "c"]))
    assert categories == sorted(["a", "b", "c", NULL])
    assert dict(zip(categories, ref)) == {"a": 2, "b": 1, "c": 0, NULL: 1}
    assert dict(zip(categories, cur)) == {"a": 0, "b": 1, "c": 2, NULL: 0}


def test_chi2_matches_the_contingency_table_by_hand():
    ref, cur = np.array([30.0, 50.0, 20.0]), np.array([20.0, 40.0, 40.0])
    table = np.vstack([ref, cur])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    by_hand = float(((table - expected) ** 2 / expected).sum())
    statistic, p_value = chi2(ref, cur)
    assert statistic == pytest.approx(by_hand)
    assert p_value == pytest.approx(stats.chi2.sf(by_hand, df=2))
    # a category neither side has is not a degree of freedom; one category alone: nothing differs
    assert chi2(np.append(ref, 0), np.append(cur, 0)) == pytest.approx((statistic, p_value))
    assert chi2(np.array([5.0]), np.array([9.0])) == (0.0, 1.0)


def test_js_distance_of_known_distributions():
    # p = (1/2, 1/2, 0), q = (0, 1/2, 1/2): each is 1/2 bit from their mixture; distance sqrt(1/2)
    assert js(np.array([1.0, 1.0, 0.0]), np.array([0.0, 2.0, 2.0])) == pytest.approx(math.sqrt(0.5))
    assert js(np.array([3.0, 1.0]), np.array([6.0, 2.0])) == pytest.approx(0.0, abs=1e-7)
    assert js(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


def test_p_value_tests_flag_below_and_distances_above_the_threshold():
    assert is_drift("ks", 0.001, 0.01) and not is_drift("ks", 0.2, 0.01)
    assert is_drift("chi2", 0.001, 0.01)
    assert is_drift("psi", 0.3, 0.2) and not is_drift("psi", 0.1, 0.2)
    assert not is_drift("js", math.nan, 0.1)


def _frames(shift: float, fresh_share: float, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = 3000
    return pl.DataFrame({
        "x": rng.normal(shift, 1.0, n),
        "y": rng.normal(0.0, 1.0, n),
        "colour": rng.choice(["red", "green"], n, p=[1 - fresh_share, fresh_share]),
        "prediction": rng.choice(["yes", "no"], n, p=[0.5, 0.5]),
    })


SETTINGS = dict(numeric_test="psi", numeric_threshold=0.2, categorical_test="chi2", categorical_threshold=0.01)


def test_report_flags_the_moved_features_only():
    reference = _frames(0.0, 0.2, seed=0)
    same = drift_report(reference, _frames(0.0, 0.2, seed=1), ["x", "y"], ["colour"], drift_share=0.5,
                        prediction="categorical", **SETTINGS)
    assert same.drifted_features == [] and not same.drifted and not same.prediction.drifted

    moved = drift_report(reference, _frames(1.0, 0.6, seed=1), ["x", "y"], ["colour"], drift_share=0.5,
                         prediction="categorical", **SETTINGS)
    assert moved.drifted_features == ["x", "colour"]
    assert moved.share == pytest.approx(2 / 3) and moved.drifted
    x = moved.features[0]
    assert (x.test, x.value) == ("psi", x.statistics["psi"]) and x.value > 0.2
    assert moved.features[2].statistics["js"] > 0.1
    # two of three is below a share of 0.8, and the answers did not move
    assert not drift_report(reference, _frames(1.0, 0.6, seed=1), ["x", "y"], ["colour"], drift_share=0.8,
                            prediction="categorical", **SETTINGS).drifted


def test_prediction_drift_alone_makes_the_data_set_drifted_and_reads_its_own_rows():
    reference = _frames(0.0, 0.2, seed=0)
    current = _frames(0.0, 0.2, seed=1)
    answers = current.with_columns(pl.lit("yes").alias("prediction"))
    report = drift_report(reference, current, ["x"], [], drift_share=0.5, prediction="categorical",
                          current_predictions=answers, **SETTINGS)
    assert report.drifted_features == [] and report.prediction.drifted and report.drifted
    data = report.to_dict()
    assert data["prediction"]["feature"] == "prediction" and data["drifted"] is True


def test_a_feature_missing_from_the_current_rows_is_named():
    with pytest.raises(ValueError, match=r"\['colour'\]"):
        drift_report(_frames(0, 0.2, 0), _frames(0, 0.2, 1).drop("colour"), ["x"], ["colour"], drift_share=0.5, **SETTINGS)
