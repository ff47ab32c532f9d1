"""Ensembles: the combiners on hand-made member outputs, greedy selection by hand, and the
fitted ensemble next to scikit-learn's own voting and stacking estimators."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier, StackingClassifier, VotingClassifier, VotingRegressor
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from components.models import build, family
from components.models import ensemble as ensemble_module
from components.models.ensemble import Combiner, greedy_weights, hard_vote, member_names, soft_vote, stack_features
from components.training.torch_estimator import fit_torch_member  # importing it sets the torch member fitter

A = np.array([[0.9, 0.1], [0.6, 0.4]])
B = np.array([[0.4, 0.6], [0.1, 0.9]])
BAD = np.array([[0.2, 0.8], [0.7, 0.3]])


def test_soft_vote_is_the_weighted_mean_of_probabilities():
    np.testing.assert_allclose(soft_vote([A, B, BAD], [1, 1, 1]), [[1.5 / 3, 1.5 / 3], [1.4 / 3, 1.6 / 3]])
    np.testing.assert_allclose(soft_vote([A, B], [3, 1]), [[0.775, 0.225], [0.475, 0.525]])


def test_hard_vote_counts_weighted_votes_and_breaks_ties_low():
    labels = [np.array([0, 1, 2]), np.array([0, 2, 1]), np.array([1, 2, 0])]
    shares = hard_vote(labels, [1, 1, 1], 3)
    np.testing.assert_allclose(shares, [[2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3], [1 / 3, 1 / 3, 1 / 3]])
    assert shares.argmax(axis=1).tolist() == [0, 2, 0]  # the three-way tie goes to class 0
    # one heavy voter outweighs two light ones
    assert hard_vote(labels, [1, 1, 3], 3).argmax(axis=1).tolist() == [1, 2, 0]


def test_stack_features_keep_one_column_per_binary_member():
    assert stack_features([A, B], "classification").tolist() == [[0.1, 0.6], [0.4, 0.9]]
    three = np.array([[0.2, 0.3, 0.5]])
    assert stack_features([three, three], "classification").shape == (1, 6)
    assert stack_features([np.array([1.0, 2.0]), np.array([3.0, 4.0])], "regression").tolist() == [[1, 3], [2, 4]]


def test_stacking_combiner_feeds_member_outputs_to_the_meta_learner():
    # a meta-learner that learned y = 2·m1 − m2 exactly answers 2·m1 − m2 on new outputs
    m1, m2 = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.5, -1.0, 2.0, 0.0])
    meta = LinearRegression().fit(np.stack([m1, m2], axis=1), 2 * m1 - m2)
    combine = Combiner("stacking", "regression", 0, (1.0, 1.0), meta=meta)
    np.testing.assert_allclose(combine([np.array([10.0]), np.array([4.0])]), [16.0])
    # classification: the meta-learner sees P(class 1) of each binary member
    meta = DecisionTreeClassifier(random_state=0).fit([[0.1, 0.6], [0.4, 0.9]], [0, 1])
    combine = Combiner("stacking", "classification", 2, (1.0, 1.0), meta=meta)
    np.testing.assert_allclose(combine([A, B]), [[1, 0], [0, 1]])


def test_greedy_selection_by_hand():
    # y = [0, 1]. Round 1: A and B tie at log loss (−ln .9 − ln .4)/2 = 0.511 -> A (the earlier).
    # Round 2: A+B averages to [.65, .65] on the true classes, loss 0.431 < 0.511 -> B.
    # Round 3: AAB and ABB tie (0.439) -> A. Round 4: AABB = AB again, loss 0.431 -> B.
    weights = greedy_weights([A, B, BAD], np.array([0, 1]), "classification", rounds=4)
    np.testing.assert_allclose(weights, [0.5, 0.5, 0.0])
    # regression: the member with the lowest MSE every round takes all the weight
    np.testing.assert_allclose(
        greedy_weights([np.array([0.0, 0.0]), np.array([1.0, 2.1])], np.array([1.0, 2.0]), "regression", 3), [0, 1]
    )
    with pytest.raises(ValueError, match="rounds must be >= 1, got 0"):
        greedy_weights([A], np.array([0, 1]), "classification", 0)


def test_a_degraded_combiner_drops_the_missing_members():
    voting = Combiner("voting", "classification", 2, (0.5, 0.3, 0.2))
    assert voting.without([1]).weights == (0.5, 0.2)
    np.testing.assert_allclose(voting.without([1])([A, B]), soft_vote([A, B], [0.5, 0.2]))
    # weighted selection may have given the members left no weight at all: then equal weights
    assert Combiner("weighted", "classification", 2, (1.0, 0.0, 0.0)).without([0]).weights == (1.0, 1.0)
    # the meta-learner needs every member: what is left is averaged
    stacking = Combiner("stacking", "classification", 2, (1.0, 1.0, 1.0), meta=object())
    degraded = stacking.without([2])
    assert (degraded.method, degraded.meta, degraded.weights) == ("voting", None, (1.0, 1.0))
    with pytest.raises(ValueError, match="no member left"):
        voting.without([0, 1, 2])


def test_member_names_are_unique_and_readable():
    specs = [{"kind": "knn"}, {"kind": "random_forest"}, {"kind": "knn", "params": {"k": 3}}]
    assert member_names(specs) == ["knn", "random_forest", "knn_2"]


# ---------------------------------------------------------------------------- fitted ensembles


def _iris():
    x, y = load_iris(return_X_y=True)
    return (x - x.mean(0)) / x.std(0), y


MEMBERS = [{"kind": "random_forest", "params": {"n_estimators": 30}}, {"kind": "naive_bayes"}, {"kind": "knn", "params": {"k": 7}}]
SK_MEMBERS = [("rf", RandomForestClassifier(n_estimators=30, random_state=0)), ("nb", GaussianNB()), ("knn", KNeighborsClassifier(7))]


def _ensemble(task: str = "classification", **params):
    return build({"kind": "ensemble", "params": {"members": MEMBERS, **params}}, task=task)


@pytest.mark.parametrize("voting", ["soft", "hard"])
def test_voting_matches_scikit_learn(voting):
    x, y = _iris()
    ours = _ensemble(voting=voting).fit(x, y)
    theirs = VotingClassifier(SK_MEMBERS, voting=voting).fit(x, y)
    assert family({"kind": "ensemble"}) == "ensemble"
    np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))
    if voting == "soft":
        np.testing.assert_allclose(ours.predict_proba(x), theirs.predict_proba(x), atol=1e-5)
    assert ours.names_ == ["random_forest", "naive_bayes", "knn"]


def test_stacking_matches_scikit_learn_out_of_fold():
    x, y = _iris()
    meta = {"kind": "decision_tree", "params": {"max_depth": 3}}
    ours = _ensemble(method="stacking", meta=meta, folds=5).fit(x, y)
    theirs = StackingClassifier(
        SK_MEMBERS, final_estimator=DecisionTreeClassifier(max_depth=3, random_state=0),
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
    ).fit(x, y)
    np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))
    assert ours.meta_.n_features_in_ == 9  # 3 members x 3 classes


def test_weighted_ensemble_learns_weights_on_out_of_fold_predictions():
    x, y = _iris()
    ours = _ensemble(method="weighted", rounds=10).fit(x, y)
    assert ours.weights_.sum() == pytest.approx(1.0)
    assert np.all(ours.weights_ * 10 == np.round(ours.weights_ * 10))  # counts over 10 rounds
    assert (ours.predict(x) == y).mean() > 0.93


def test_regression_voting_matches_scikit_learn():
    x, y = load_diabetes(return_X_y=True)
    members = [{"kind": "knn", "params": {"k": 9}}, {"kind": "decision_tree", "params": {"max_depth": 4}}]
    ours = build({"kind": "ensemble", "params": {"members": members}}, task="regression")
    theirs = VotingRegressor([("knn", KNeighborsRegressor(9)), ("tree", DecisionTreeRegressor(max_depth=4, random_state=0))])
    np.testing.assert_allclose(ours.fit(x, y).predict(x), theirs.fit(x, y).predict(x), rtol=1e-5)
    with pytest.raises(AttributeError, match="only available when task is 'classification'"):
        ours.predict_proba(x)


def test_a_torch_member_trains_with_the_loop():
    x, y = _iris()
    members = [{"kind": "mlp", "params": {"hidden": [16]}}, {"kind": "naive_bayes"}]
    training = {"epochs": 25, "batch_size": 16, "optimizer": {"lr": 0.01}}
    ours = build(
        {"kind": "ensemble", "params": {"members": members, "training": training}},
    ).fit(x, y)
    assert type(ours.members_[0]).__name__ == "MLP"  # the bare nn.Module, as a bundle stores it
    assert (ours.predict(x) == y).mean() > 0.93


def test_without_a_torch_member_fitter_the_error_names_what_to_import(monkeypatch):
    x, y = _iris()
    monkeypatch.setattr(ensemble_module, "_torch_member_fitter", None)
    members = [{"kind": "mlp", "params": {"hidden": [4]}}, {"kind": "naive_bayes"}]
    ours = build({"kind": "ensemble", "params": {"members": members}})
    with pytest.raises(RuntimeError, match=r"members \('mlp'\).*import components\.training\.torch_estimator"):
        ours.fit(x, y)
    # a caller that holds the fitter passes it to the job itself
    job = ours.plan(x, y)[0]
    module = job.run(x, y, {"epochs": 2, "batch_size": 32}, fit_torch_member)
    assert module(torch.from_numpy(x[:4]).float()).shape == (4, 3)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"members": [{"kind": "knn"}], "weights": [1.0, 2.0]}, r"weights needs one entry per member \(1\), got 2"),
        ({"members": [{"kind": "knnn"}]}, "unknown model kind 'knnn'"),
        ({"members": [{"kind": "ensemble"}]}, r"members\[0\]: an ensemble cannot be a member"),
        ({"members": ["knn"]}, "param 'members' must be a list of a mapping, got"),
        ({"members": [{"kind": "knn"}], "folds": 1}, "folds must be >= 2, got 1"),
        ({"members": []}, "param 'members' is empty"),
    ],
)
def test_bad_ensemble_params_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        build({"kind": "ensemble", "params": params})


def test_unfitted_ensemble_refuses_to_predict():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        _ensemble().predict(np.zeros((1, 4)))
