"""`dates`: human-readable dates in several locales and forms -> ISO 8601, seeded, for
translation with attention (`Sunday, 7 March 2021` -> `2021-03-07`).

The forms are Babel's (CLDR's) date formats, so the words and orders are real ones:
English (US and UK), French, German and Spanish, in `medium`, `long` and `full` form, and
the numeric `short` form except the US one (month first would make `3/7/21` mean two
dates). Years run from 1950 to 2049, so a two-digit year is never in doubt.
"""

from __future__ import annotations

import datetime as dt
import random

import polars as pl
from babel.dates import format_date

LOCALES = ("en_US", "en_GB", "fr_FR", "de_DE", "es_ES")
FORMS = ("short", "medium", "long", "full")
_FIRST = dt.date(1950, 1, 1).toordinal()
_LAST = dt.date(2049, 12, 31).toordinal()


def date_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """`n` (human-readable date, ISO date) pairs, the same for the same seed."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        day = dt.date.fromordinal(rng.randint(_FIRST, _LAST))
        locale = rng.choice(LOCALES)
        forms = [f for f in FORMS if not (f == "short" and locale == "en_US")]
        text = format_date(day, format=rng.choice(forms), locale=locale)
        pairs.append((text.lower() if rng.random() < 0.2 else text, day.isoformat()))
    return pairs


def dates_frame(n: int, seed: int = 0) -> pl.DataFrame:
    """`date_pairs` as table rows: `source` (the date as written) and `target` (ISO)."""
    pairs = date_pairs(n, seed)
    return pl.DataFrame({"source": [s for s, _ in pairs], "target": [t for _, t in pairs]})
