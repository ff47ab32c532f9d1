"""Word analogies as word2vec measured them: `questions-words.txt` (gensim's test data; a
`: section` line, then `a b c d` lines meaning a is to b as c is to d), answered by
3CosAdd over the most frequent words, accuracy per section and over all."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from components.data.word_vectors import WordVectors


def questions_file() -> Path:
    """gensim's copy of word2vec's questions-words.txt (gensim installed without its
    dependencies and never imported: the file is read)."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("questions-words.txt is read from gensim's test data: "
                                "pip install --no-deps gensim==4.4.0 (make setup does)")
    return Path(spec.origin).parent / "test" / "test_data" / "questions-words.txt"


def read_questions(text: str) -> dict[str, list[tuple[str, str, str, str]]]:
    """Questions by section, lower-cased."""
    sections: dict[str, list[tuple[str, str, str, str]]] = {}
    current = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if line.startswith(":"):
            current = line[1:].strip()
            sections.setdefault(current, [])
            continue
        words = line.lower().split()
        if current is None or len(words) != 4:
            raise ValueError(f"line {number}: expected ': section' or four words, got {line!r}")
        sections[current].append(tuple(words))  # type: ignore[arg-type]
    return sections


def covered(questions: dict[str, list[tuple[str, str, str, str]]], vectors: WordVectors
            ) -> dict[str, list[tuple[str, str, str, str]]]:
    """The questions whose four words `vectors` has, by section (sections left empty dropped)."""
    kept = {k: [q for q in v if all(w in vectors.index for w in q)] for k, v in questions.items()}
    return {k: v for k, v in kept.items() if v}


def analogy_accuracy(vectors: WordVectors, questions: dict[str, list[tuple[str, str, str, str]]],
                     limit: int = 30_000, per_section: int | None = None) -> dict[str, float]:
    """Accuracy of `vectors` per section and over all (`all`), searching the `limit` most
    frequent words as word2vec's evaluation does (a question with a word outside them is
    skipped; `coverage` says what share was asked); the same answers as
    `WordVectors.analogy`, computed a section at a time. `per_section` caps each section."""
    words = list(vectors.words[:limit])
    index = {w: i for i, w in enumerate(words)}
    matrix = np.asarray(vectors.vectors[:limit], dtype=np.float32)
    unit = matrix / (np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-12)  # (V, D)
    scores: dict[str, float] = {}
    right = asked = total = 0
    for section, items in questions.items():
        items = items[:per_section] if per_section else items
        total += len(items)
        ids = np.array([[index[w] for w in q] for q in items if all(w in index for w in q)], dtype=np.int64)
        if len(ids) == 0:
            continue
        hits = 0
        for chunk in np.array_split(ids, max(1, len(ids) // 500)):
            query = unit[chunk[:, 1]] - unit[chunk[:, 0]] + unit[chunk[:, 2]]  # (Q, D): b - a + c
            similarity = query @ unit.T  # (Q, V); the query's own length does not change the order
            rows = np.arange(len(chunk))[:, None]
            similarity[rows, chunk[:, :3]] = -np.inf  # the question's words are never the answer
            hits += int((similarity.argmax(axis=1) == chunk[:, 3]).sum())
        scores[section] = hits / len(ids)
        right += hits
        asked += len(ids)
    scores["all"] = right / asked if asked else 0.0
    scores["coverage"] = asked / total if total else 0.0
    return scores
