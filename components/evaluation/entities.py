"""Entities from BIO tags, and entity-level precision, recall and F1 (micro, macro and per
type), counted the way CoNLL's conlleval and `seqeval` count them: an entity is right only
when its type and both of its ends are right.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Entity:
    start: int  # the first token's index
    end: int  # one past the last token's index
    type: str


def entities(tags: list[str]) -> list[Entity]:
    """The entities of one sentence's tags, conlleval's way: B-X starts one; I-X continues an
    X entity and starts one after anything else (a sentence may open with I-X, or switch
    type mid-run); O ends one."""
    found: list[Entity] = []
    start, kind = None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        if prefix not in ("B", "I") or not label:
            prefix, label = "O", None
        ends = kind is not None and (prefix in ("O", "B") or label != kind)
        if ends:
            found.append(Entity(start, i, kind))
            start, kind = None, None
        if prefix == "B" or (prefix == "I" and kind is None):
            start, kind = i, label
    return found


def entity_scores(true: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """Entity precision, recall and F1: `micro_*` over every entity, `macro_*` the mean over
    types, and `<TYPE>_*` per type (a type no sentence holds or predicts is left out)."""
    if len(true) != len(predicted):
        raise ValueError(f"{len(true)} true sentences against {len(predicted)} predicted")
    hits, gold, guessed = Counter(), Counter(), Counter()
    for i, (t, p) in enumerate(zip(true, predicted)):
        if len(t) != len(p):
            raise ValueError(f"sentence {i}: {len(t)} true tags against {len(p)} predicted")
        want, got = set(entities(t)), set(entities(p))
        gold.update(e.type for e in want)
        guessed.update(e.type for e in got)
        hits.update(e.type for e in want & got)
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
