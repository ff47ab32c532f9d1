"""Curriculum §2 checks through the project's scikit-learn-backed kinds: kNN, AdaBoost, gradient boosting.

Each check computes the course's numbers by hand in the test and compares them with what
the fitted estimator learned, so a change of default (metric, algorithm) shows up here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from components.data.preprocessing import LabelIndex
from components.models import build


def _build(kind: str, task: str, **params):
    return build({"kind": kind, "params": params}, task=task)


# ---------------------------------------------------------------------------- kNN


MOVIES = np.array([[100, 15], [20, 95], [90, 5], [10, 85]], dtype=float)  # T1..T4
GENRES = ["Action", "Comedy", "Action", "Comedy"]
QUERY = np.array([[50, 50]], dtype=float)


def test_knn_movie_distances_match_the_course():
    labels = LabelIndex().fit(GENRES)
    model = _build("knn", "classification", k=1).fit(MOVIES, labels.encode(GENRES))
    distances, indices = model.kneighbors(QUERY, n_neighbors=4)
    by_movie = dict(zip(indices[0].tolist(), distances[0].tolist()))
    assert [by_movie[i] for i in range(4)] == pytest.approx([61.03277808, 54.08326913, 60.20797289, 53.15072906])
    assert indices[0].tolist() == [3, 1, 2, 0]  # nearest first: T4, T2, T3, T1
    # by hand: the Euclidean distance √((x−50)² + (y−50)²)
    assert by_movie[0] == pytest.approx(math.hypot(100 - 50, 15 - 50))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_knn_movie_votes_comedy_for_k_1_2_3(k):
    labels = LabelIndex().fit(GENRES)
    assert labels.encode(["Action", "Comedy"]).tolist() == [0, 1]
    model = _build("knn", "classification", k=k).fit(MOVIES, labels.encode(GENRES))
    # k=2: the two nearest (T4, T2) are both Comedy, so scikit-learn's tie rule (lowest class
    # index wins a tied vote) never comes into play; k=3 adds T3 (Action) and Comedy wins 2-1
    assert labels.decode(model.predict(QUERY).tolist()) == ["Comedy"]


# ---------------------------------------------------------------------------- AdaBoost


def test_adaboost_first_round_matches_the_hand_computed_stump_alpha_and_weights():
    x = np.arange(1, 7, dtype=float)  # (6,)
    y = np.array([1, 1, 1, -1, -1, 1])

    # round 1 by hand: uniform weights; the best stump says +1 for x <= 3.5 and -1 above,
    # wrong only on x = 6
    w = np.full(6, 1 / 6)
    h1 = np.where(x <= 3.5, 1, -1)
    eps1 = w[h1 != y].sum()
    assert eps1 == pytest.approx(1 / 6)
    alpha1 = 0.5 * math.log((1 - eps1) / eps1)
    w2 = w * np.exp(-alpha1 * y * h1)
    w2 /= w2.sum()
    # correct points shrink by e^-α, the wrong one grows by e^α; e^2α = 5 here
    assert w2 == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.1, 0.5])

    model = _build("adaboost", "classification", n_estimators=2).fit(x[:, None], y)
    stumps = model.estimators_
    assert stumps[0].get_depth() == 1
    assert np.array_equal(stumps[0].predict(x[:, None]), h1)
    assert model.estimator_errors_[0] == pytest.approx(eps1)
    # scikit-learn's SAMME weighs a stump by ln((1−ε)/ε) + ln(K−1). With K = 2 classes the
    # second term is 0, so its weight is 2α: twice the course's ½·ln((1−ε)/ε). The factor is
    # common to every stump, so the weighted vote sign(Σ αₜ·hₜ(x)) is unchanged.
    n_classes = len(model.classes_)
    assert n_classes == 2
    assert model.estimator_weights_[0] == pytest.approx(math.log((1 - eps1) / eps1) + math.log(n_classes - 1))
    assert model.estimator_weights_[0] == pytest.approx(2 * alpha1)
    # SAMME multiplies only the misclassified weights by e^(2α) before normalising; the course
    # multiplies by e^(−α·y·h). The ratio wrong/right is e^(2α) either way, so after
    # normalisation both give w2: the second stump's error under w2 must be what it recorded.
    h2 = stumps[1].predict(x[:, None])
    assert 0 < model.estimator_errors_[1] < 0.5
    assert model.estimator_errors_[1] == pytest.approx(w2[h2 != y].sum())


# ---------------------------------------------------------------------------- gradient boosting


def test_gradient_boosting_first_stump_is_mean_plus_shrunk_leaf_residual_means():
    x = np.arange(1, 8, dtype=float)  # (7,)
    y = np.array([3.0, 1.0, 2.0, 8.0, 12.0, 10.0, 11.0])

    # by hand: F0 = mean(y); the stump splits the residuals where their squared error is least
    f0 = y.mean()
    residual = y - f0
    thresholds = (x[:-1] + x[1:]) / 2

    def sse(t: float) -> float:
        left, right = residual[x <= t], residual[x > t]
        return ((left - left.mean()) ** 2).sum() + ((right - right.mean()) ** 2).sum()

    best = min(thresholds, key=sse)
    assert best == 3.5
    leaf_mean = np.where(x <= best, residual[x <= best].mean(), residual[x > best].mean())
    expected = f0 + 0.1 * leaf_mean  # shrinkage ν = 0.1

    model = _build("gradient_boosting", "regression", n_estimators=1, learning_rate=0.1, max_depth=1)
    model.fit(x[:, None], y)
    assert model.predict(x[:, None]) == pytest.approx(expected)
    assert model.predict(np.array([[0.0], [100.0]])) == pytest.approx([expected[0], expected[-1]])
