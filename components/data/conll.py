"""CoNLL files -> bronze sentence rows (`tokens`, `tags`), with bad sentences quarantined.

A file holds one `token<TAB>tag` line per token (or more whitespace-separated columns, as
CoNLL-2003 has: the first is the token, the last the tag) and a blank line after each
sentence; `-DOCSTART-` lines and runs of blank lines separate nothing more. Tags are BIO:
`O`, `B-<type>` or `I-<type>`. A sentence with a line that is not UTF-8, has fewer than two
columns or carries another kind of tag goes to quarantine with the line and the reason;
the file's other sentences are kept. `_row` counts sentences from 0 in file order.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl

from components.data.sources import part_sizes, write_landing_file

BRONZE_TAGGED_SCHEMA = pl.Schema({
    "tokens": pl.List(pl.String()), "tags": pl.List(pl.String()), "_source_file": pl.String(), "_row": pl.Int64(),
})
QUARANTINE_SCHEMA = pl.Schema(
    {"_source_file": pl.String(), "_row": pl.Int64(), "_reason": pl.String(), "_raw": pl.String()}
)
_TAG = re.compile(r"O|[BI]-\S+")
_SHOWN_LINES = 5  # of a quarantined sentence, in `_raw`


def read_conll(data: bytes, source_file: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(good sentences, quarantined sentences) of one CoNLL file's bytes."""
    good: dict[str, list] = {name: [] for name in BRONZE_TAGGED_SCHEMA}
    bad: dict[str, list] = {name: [] for name in QUARANTINE_SCHEMA}
    for row, lines in enumerate(_sentences(data)):
        tokens, tags, reason = [], [], None
        for number, raw in lines:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                reason = f"line {number}: not UTF-8 text"
                break
            columns = text.split()
            if len(columns) < 2:
                reason = f"line {number}: expected a token and a tag, got {len(columns)} column ({text.strip()!r})"
                break
            if not _TAG.fullmatch(columns[-1]):
                reason = f"line {number}: tag {columns[-1]!r} is not O, B-<type> or I-<type>"
                break
            tokens.append(columns[0])
            tags.append(columns[-1])
        if reason is None:
            for name, value in zip(BRONZE_TAGGED_SCHEMA, (tokens, tags, source_file, row)):
                good[name].append(value)
        else:
            shown = [raw.decode("utf-8", errors="replace").rstrip("\r\n") for _, raw in lines[:_SHOWN_LINES]]
            raw_json = json.dumps({"first_line": lines[0][0], "lines": shown, "line_count": len(lines)})
            for name, value in zip(QUARANTINE_SCHEMA, (source_file, row, reason, raw_json)):
                bad[name].append(value)
    return pl.DataFrame(good, schema=BRONZE_TAGGED_SCHEMA), pl.DataFrame(bad, schema=QUARANTINE_SCHEMA)


def _sentences(data: bytes) -> list[list[tuple[int, bytes]]]:
    """The file's sentences as their (1-based line number, line bytes) lists."""
    sentences: list[list[tuple[int, bytes]]] = []
    current: list[tuple[int, bytes]] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip() or line.startswith(b"-DOCSTART-"):
            if current:
                sentences.append(current)
                current = []
            continue
        current.append((number, line))
    if current:
        sentences.append(current)
    return sentences


def write_landing_conll(text: str, folder: Path, n_files: int, stem: str) -> list[Path]:
    """CoNLL `text` split at sentence boundaries into `n_files` files `{stem}-part-{i:03d}.conll`
    (written as `write_landing_file` writes: untouched when the bytes match)."""
    sentences = [s + "\n\n" for s in text.strip("\n").split("\n\n")] if text.strip() else []
    if not 1 <= n_files <= max(len(sentences), 1):
        raise ValueError(f"n_files must be between 1 and the number of sentences ({len(sentences)}), got {n_files}")
    paths, offset = [], 0
    for i, size in enumerate(part_sizes(len(sentences), n_files)):
        path = folder / f"{stem}-part-{i:03d}.conll"
        write_landing_file(path, "".join(sentences[offset : offset + size]).encode())
        offset += size
        paths.append(path)
    return paths
