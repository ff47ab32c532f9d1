"""BIO tags -> entities: the spans a sentence's tags mark, read the way CoNLL's conlleval
reads them. Shared by scoring (entity F1) and serving (entities with offsets)."""

from __future__ import annotations

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
