"""The named-entity curriculum's checks: the CRF against brute-force enumeration, BIO
constraints, the cost-sensitive class weights, focal loss, and entity F1 against seqeval."""

from __future__ import annotations

import itertools
import random

import pytest
import torch
import torch.nn.functional as F

from components.data.bio import Entity, entities
from components.evaluation.entities import entity_scores
from components.models.crf import CRF, bio_constraints
from components.training.losses import class_weights, focal_loss


def _brute_force(crf: CRF, emissions: torch.Tensor, n: int) -> tuple[torch.Tensor, list[tuple[int, ...]]]:
    """(the score of every tag sequence of length n, the sequences) for one row, by the formula."""
    start, transitions, end = crf._scores()
    paths = list(itertools.product(range(crf.num_tags), repeat=n))
    scores = []
    for path in paths:
        s = start[path[0]] + emissions[0, path[0]]
        for t in range(1, n):
            s = s + transitions[path[t - 1], path[t]] + emissions[t, path[t]]
        scores.append(s + end[path[-1]])
    return torch.stack(scores), paths


@pytest.mark.parametrize("constrained", [False, True])
def test_crf_likelihood_and_viterbi_equal_brute_force(constrained):
    torch.manual_seed(0)
    tags = ["O", "B-PER", "I-PER"]
    crf = CRF(3, bio_constraints(tags) if constrained else None)
    emissions = torch.randn(3, 4, 3)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    gold = torch.tensor([[0, 1, 2, 0], [1, 2, 0, 0], [0, 0, 0, 0]])
    with torch.no_grad():
        likelihoods = crf.log_likelihoods(emissions, gold, mask)
        decoded = crf.decode(emissions, mask)
        for row in range(3):
            n = int(mask[row].sum())
            scores, paths = _brute_force(crf, emissions[row], n)
            log_z = torch.logsumexp(scores, dim=0)
            expected = scores[paths.index(tuple(gold[row, :n].tolist()))] - log_z
            assert likelihoods[row].item() == pytest.approx(expected.item(), abs=1e-4)
            assert decoded[row] == list(paths[int(scores.argmax())])
        assert crf(emissions, gold, mask).item() == pytest.approx(likelihoods.sum().item(), abs=1e-4)
    if constrained:
        # nothing the constraints forbid is ever decoded, however strong its emissions
        pushy = torch.zeros(1, 3, 3)
        pushy[0, :, 2] = 50.0  # I-PER everywhere
        assert crf.decode(pushy, torch.ones(1, 3, dtype=torch.bool)) == [[1, 2, 2]]


def test_bio_constraints_allow_what_bio_allows():
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    start, transitions, end = bio_constraints(tags)
    assert start.tolist() == [True, True, False, True, False] and end.all()
    allowed = {(tags[i], tags[j]) for i in range(5) for j in range(5) if transitions[i, j]}
    into_i_per = {a for a, b in allowed if b == "I-PER"}
    assert into_i_per == {"B-PER", "I-PER"}
    assert ("O", "B-LOC") in allowed and ("I-PER", "B-PER") in allowed and ("B-LOC", "I-PER") not in allowed


def test_the_crf_learns_a_transition_the_emissions_cannot_tell():
    """Emissions say nothing about the second tag; only the transitions can learn it follows the first."""
    torch.manual_seed(0)
    crf = CRF(2)
    optimizer = torch.optim.Adam(crf.parameters(), lr=0.1)
    emissions = torch.tensor([[[3.0, -3.0], [0.0, 0.0]], [[-3.0, 3.0], [0.0, 0.0]]])  # (2, 2, 2)
    tags = torch.tensor([[0, 0], [1, 1]])
    mask = torch.ones(2, 2, dtype=torch.bool)
    for _ in range(100):
        optimizer.zero_grad()
        (-crf(emissions, tags, mask)).backward()
        optimizer.step()
    assert crf.decode(emissions, mask) == [[0, 0], [1, 1]]


def test_class_weights_are_each_class_ratio_to_the_largest():
    assert class_weights([800, 100, 50, 0]).tolist() == [1.0, 8.0, 16.0, 0.0]
    with pytest.raises(ValueError, match="class counts"):
        class_weights([0, 0])


def test_focal_loss_with_gamma_zero_is_cross_entropy_and_discounts_easy_examples():
    torch.manual_seed(0)
    logits, target = torch.randn(16, 5), torch.randint(0, 5, (16,))
    assert focal_loss(logits, target, gamma=0.0).item() == pytest.approx(F.cross_entropy(logits, target).item(), rel=1e-6)
    weight = class_weights([10, 5, 2, 1, 1])
    assert focal_loss(logits, target, gamma=0.0, weight=weight).item() == pytest.approx(
        F.cross_entropy(logits, target, weight=weight).item(), rel=1e-6)
    # by hand for one example with p_t = 0.9: -(0.1^2) ln 0.9
    easy = torch.log(torch.tensor([[0.9, 0.1]]))
    assert focal_loss(easy, torch.tensor([0]), gamma=2.0).item() == pytest.approx(-(0.1 ** 2) * torch.log(torch.tensor(0.9)).item())
    # an easy example loses far more of its loss than a hard one
    hard = torch.log(torch.tensor([[0.2, 0.8]]))
    ratio = lambda x: focal_loss(x, torch.tensor([0]), 2.0) / F.cross_entropy(x, torch.tensor([0]))  # noqa: E731
    assert ratio(easy) < 0.02 < 0.6 < ratio(hard)


def test_entities_follow_conlleval():
    assert entities(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-ORG", "I-ORG"]) == [
        Entity(0, 2, "PER"), Entity(3, 4, "LOC"), Entity(4, 5, "LOC"), Entity(5, 7, "ORG"),
    ]
    assert entities(["I-PER", "I-LOC", "O"]) == [Entity(0, 1, "PER"), Entity(1, 2, "LOC")]


def test_entity_scores_equal_seqeval():
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    rng = random.Random(0)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-DATE"]
    true = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(300)]
    predicted = [[t if rng.random() < 0.75 else rng.choice(tags) for t in s] for s in true]
    ours = entity_scores(true, predicted)
    for average in ("micro", "macro"):
        assert ours[f"{average}_f1"] == pytest.approx(f1_score(true, predicted, average=average))
        assert ours[f"{average}_precision"] == pytest.approx(precision_score(true, predicted, average=average))
        assert ours[f"{average}_recall"] == pytest.approx(recall_score(true, predicted, average=average))
    per_type = classification_report(true, predicted, output_dict=True)
    for kind in ("PER", "LOC", "ORG", "DATE"):
        assert ours[f"{kind}_f1"] == pytest.approx(per_type[kind]["f1-score"])
    assert entity_scores([["B-PER", "I-PER"]], [["B-PER", "O"]])["micro_f1"] == 0.0  # a wrong end is wrong
