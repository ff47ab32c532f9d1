"""Online requests to word-vector models: a word's vector and nearest words, or an analogy.

An instance is a word (`"king"`, or `{"word": "king", "k": 5}`): its vector and the `k`
words nearest to it; or an analogy, `{"positive": ["king", "woman"], "negative": ["man"],
"k": 5}`: the words nearest to the sum of the positive words' unit vectors less the
negative ones' (3CosAdd; king - man + woman -> queen), the question's words left out.
Words are read as the model's tokenizer reads them (lower-cased, stemmed where it does);
a word the model has no vector for, an empty one, an unknown field or a `k` out of range is
refused with the field named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.data.corpus_preparation import LanguageModelState
from components.data.schema import InvalidInput, check_instances, instance_fields
from components.data.tokenizers import SPECIALS

MAX_K = 100  # the most neighbours one query may ask for


@dataclass(frozen=True)
class EmbeddingQuery:
    word: str | None = None  # a word's vector and neighbours
    positive: tuple[str, ...] = ()  # or an analogy: words added ...
    negative: tuple[str, ...] = ()  # ... and words subtracted
    k: int = 10


def embedding_queries_from_instances(instances: Any, state: LanguageModelState, max_instances: int
                                     ) -> list[EmbeddingQuery]:
    check_instances(instances, max_instances, "words or analogies")
    queries = []
    for i, instance in enumerate(instances):
        where = f"instances[{i}]"
        key = "positive" if isinstance(instance, dict) and "positive" in instance else "word"
        fields = {"positive", "negative", "k"} if key == "positive" else {"word", "k"}
        instance = instance_fields(instance, where, fields, "word")
        k = instance.get("k", 10)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise InvalidInput(f"{where}.k", f"must be an integer from 1 to {MAX_K}, got {k!r}")
        if key == "word":
            queries.append(EmbeddingQuery(word=_known(instance.get("word"), f"{where}.word", state), k=k))
            continue
        words = {}
        for side in ("positive", "negative"):
            given = instance.get(side, [])
            if not isinstance(given, list):
                raise InvalidInput(f"{where}.{side}", f"must be a list of words, got {type(given).__name__}")
            words[side] = tuple(_known(w, f"{where}.{side}[{j}]", state) for j, w in enumerate(given))
        if not words["positive"]:
            raise InvalidInput(f"{where}.positive", "must name at least one word")
        queries.append(EmbeddingQuery(positive=words["positive"], negative=words["negative"], k=k))
    return queries


def _known(word: Any, where: str, state: LanguageModelState) -> str:
    if not isinstance(word, str) or not word.strip():
        raise InvalidInput(where, f"must be a non-empty word, got {word!r}")
    (token_id,) = state.tokenizer.encode_tokens([word.strip()])
    if token_id < len(SPECIALS):
        raise InvalidInput(where, f"{word!r} has no vector: it is not among the model's "
                                  f"{state.tokenizer.vocab_size_ - len(SPECIALS):,} words")
    return state.tokenizer.vocab_[token_id]
