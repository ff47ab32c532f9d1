"""Online tagging requests and answers: sentences in, entities with character offsets out.

An instance is a sentence as a string (split into words and punctuation as the word
tokenizer splits text) or as a list of tokens (read as they are, joined by single spaces
for the offsets). Each answer lists the sentence's tokens, their tags and its entities,
each with its type, text, character offsets (`start`, `end`: `text[start:end]` is the
entity) and token offsets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.data.bio import entities
from components.data.schema import InvalidInput, check_instances
from components.data.tagged_preparation import TaggedState


@dataclass(frozen=True)
class Sentence:
    text: str
    tokens: list[str]
    spans: list[tuple[int, int]]  # each token's character offsets in `text`


def sentences_from_instances(instances: Any, state: TaggedState, max_instances: int) -> list[Sentence]:
    """The request's sentences; InvalidInput names the first that is not a non-empty string
    or list of strings within the model's `max_length` tokens."""
    check_instances(instances, max_instances, "sentences")
    sentences = []
    for i, instance in enumerate(instances):
        where = f"instances[{i}]"
        if isinstance(instance, str):
            found = state.tokenizer.spans(instance)
            sentence = Sentence(instance, [t for t, _, _ in found], [(s, e) for _, s, e in found])
        elif isinstance(instance, list) and all(isinstance(t, str) and t and not t.isspace() for t in instance):
            sentence = _joined(instance)
        else:
            raise InvalidInput(where, "must be a sentence: a string, or a list of non-empty token strings")
        if not sentence.tokens:
            raise InvalidInput(where, "must not be empty")
        if len(sentence.tokens) > state.max_length:
            raise InvalidInput(where, f"has {len(sentence.tokens)} tokens; this model reads at most {state.max_length}")
        sentences.append(sentence)
    return sentences


def tagged_answers(sentences: list[Sentence], tags: list[list[str]]) -> list[dict[str, Any]]:
    """One {"tokens", "tags", "entities"} answer per sentence."""
    answers = []
    for sentence, sentence_tags in zip(sentences, tags):
        found = []
        for entity in entities(sentence_tags):
            start, end = sentence.spans[entity.start][0], sentence.spans[entity.end - 1][1]
            found.append({"type": entity.type, "text": sentence.text[start:end], "start": start, "end": end,
                          "token_start": entity.start, "token_end": entity.end})
        answers.append({"tokens": sentence.tokens, "tags": sentence_tags, "entities": found})
    return answers


def _joined(tokens: list[str]) -> Sentence:
    spans, at = [], 0
    for token in tokens:
        spans.append((at, at + len(token)))
        at += len(token) + 1
    return Sentence(" ".join(tokens), list(tokens), spans)
