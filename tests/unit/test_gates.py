"""Promotion gates: every bound checked against a version's metrics, a missing metric named
with the ones that exist, and the summary saying which gate failed and by how much."""

from __future__ import annotations

import math

import pytest

from components.artifacts.registry import GateResult, Registration, check_gates
from components.config import GateConfig

METRICS = {"val_loss": 0.12, "test_accuracy": 0.977, "test_fgsm_accuracy.eps_0.1": 0.41}


def _gates(**bounds: dict[str, float]) -> dict[str, GateConfig]:
    return {name.replace("__", "."): GateConfig(**b) for name, b in bounds.items()}


def test_a_gate_that_holds_passes_with_no_shortfall():
    (result,) = check_gates(_gates(test_accuracy={"min": 0.95}), METRICS)
    assert result.passed and result.shortfall == 0.0
    assert result.describe() == "test_accuracy >= 0.95 passed (0.977)"


def test_a_failing_gate_says_by_how_much():
    (result,) = check_gates(_gates(test_accuracy={"min": 0.99}), METRICS)
    assert not result.passed and result.shortfall == pytest.approx(0.013)
    assert result.describe() == "test_accuracy >= 0.99 failed by 0.013 (0.977)"
    (upper,) = check_gates(_gates(val_loss={"max": 0.1}), METRICS)
    assert not upper.passed and upper.shortfall == pytest.approx(0.02)
    assert upper.describe().startswith("val_loss <= 0.1 failed by 0.02")


def test_min_and_max_are_two_checks_and_the_boundary_passes():
    results = check_gates(_gates(test_accuracy={"min": 0.9, "max": 0.976}), METRICS)
    assert [(r.op, r.passed) for r in results] == [(">=", True), ("<=", False)]
    assert results[1].shortfall == pytest.approx(0.001)
    (boundary,) = check_gates(_gates(test_accuracy={"min": 0.977}), METRICS)
    assert boundary.passed


def test_robust_accuracy_gates_read_dotted_metric_names():
    (result,) = check_gates(_gates(test_fgsm_accuracy__eps_0__1={"min": 0.5}), METRICS)
    assert result.metric == "test_fgsm_accuracy.eps_0.1" and not result.passed
    assert result.shortfall == pytest.approx(0.09)


def test_a_gate_on_a_metric_not_computed_fails_and_names_what_was():
    (result,) = check_gates(_gates(test_roc_auc={"min": 0.9}), METRICS)
    assert not result.passed and result.value is None and result.shortfall is None
    message = result.describe()
    assert "'test_roc_auc' was not computed" in message
    assert all(name in message for name in METRICS)


def test_a_nan_metric_fails_its_gate():
    (result,) = check_gates(_gates(val_loss={"max": 1.0}), {"val_loss": math.nan})
    assert not result.passed and "NaN" in result.describe()


def test_no_gates_no_results():
    assert check_gates({}, METRICS) == ()


def test_the_summary_names_the_failed_gate_and_the_champion_that_stays():
    from flows.summary import _champion

    failed = check_gates(_gates(test_accuracy={"min": 0.99}), METRICS)
    blocked = Registration("mnist-cnn", "4", False, "3", "val_accuracy", 0.98, failed)
    assert blocked.failed_gates == failed
    assert _champion(blocked) == "not champion: gate test_accuracy >= 0.99 failed by 0.013 (0.977); v3 stays"
    first = Registration("mnist-cnn", "1", False, None, "val_accuracy", 0.98, failed)
    assert _champion(first).endswith("; no champion yet")
    passed = Registration("mnist-cnn", "5", True, "3", "val_accuracy", 0.99,
                          check_gates(_gates(test_accuracy={"min": 0.95}), METRICS))
    assert _champion(passed) == "champion" and passed.failed_gates == ()
    worse = Registration("mnist-cnn", "6", False, "5", "val_accuracy", 0.9)
    assert _champion(worse) == "not champion (v5 stays)"
    # what the pipeline deploys: a champion, unless the first version failed its gate
    assert [r.has_champion for r in (blocked, first, passed, worse)] == [True, False, True, True]


def test_gate_results_are_plain_values():
    a = GateResult("test_accuracy", ">=", 0.9, 0.95)
    assert a == GateResult("test_accuracy", ">=", 0.9, 0.95) and a.passed
