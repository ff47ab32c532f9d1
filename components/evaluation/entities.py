"""Entity-level precision, recall and F1 (micro, macro and per type), counted the way
CoNLL's conlleval and `seqeval` count them: an entity (components/data/bio.py) is right
only when its type and both of its ends are right.
"""

from __future__ import annotations

from collections import Counter

from components.data.bio import entities


def entity_scores(true: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """Entity precision, recall and F1: `micro_*` over every entity, `macro_*` the mean over
    types, and `<TYPE>_*` per type (a type no sentence holds or predicts is left out)."""
    return scores_from_counts(entity_counts(true, predicted))


def entity_counts(true: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """`hits:<TYPE>`, `gold:<TYPE>` and `guessed:<TYPE>` entity counts: sums that add up
    across batches and workers, for `scores_from_counts`."""
    if len(true) != len(predicted):
        raise ValueError(f"{len(true)} true sentences against {len(predicted)} predicted")
    counts: Counter[str] = Counter()
    for i, (t, p) in enumerate(zip(true, predicted)):
        if len(t) != len(p):
            raise ValueError(f"sentence {i}: {len(t)} true tags against {len(p)} predicted")
        want, got = set(entities(t)), set(entities(p))
        counts.update(f"gold:{e.type}" for e in want)
        counts.update(f"guessed:{e.type}" for e in got)
        counts.update(f"hits:{e.type}" for e in want & got)
    return {k: float(v) for k, v in counts.items()}


def scores_from_counts(counts: dict[str, float]) -> dict[str, float]:
    """`entity_scores` from (summed) `entity_counts`; other keys are ignored."""
    hits, gold, guessed = Counter(), Counter(), Counter()
    for key, value in counts.items():
        kind, _, label = key.partition(":")
        if kind in ("hits", "gold", "guessed") and label:
            {"hits": hits, "gold": gold, "guessed": guessed}[kind][label] += int(value)
    scores: dict[str, float] = {}
    for kind in sorted(set(gold) | set(guessed)):
        scores.update({f"{kind}_{k}": v for k, v in _prf(hits[kind], guessed[kind], gold[kind]).items()})
    micro = _prf(sum(hits.values()), sum(guessed.values()), sum(gold.values()))
    scores.update({f"micro_{k}": v for k, v in micro.items()})
    kinds = sorted(set(gold) | set(guessed))
    for k in ("precision", "recall", "f1"):
        scores[f"macro_{k}"] = sum(scores[f"{kind}_{k}"] for kind in kinds) / len(kinds) if kinds else 0.0
    return scores


def _prf(hits: int, guessed: int, gold: int) -> dict[str, float]:
    precision = hits / guessed if guessed else 0.0
    recall = hits / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
