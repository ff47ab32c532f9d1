"""Online text requests: KServe v1 `instances` as strings, checked before they reach a batch."""

from __future__ import annotations

from typing import Any

from components.data.schema import InvalidInput, check_instances
from components.data.text_preparation import TextState


def texts_from_instances(instances: Any, state: TextState, max_instances: int) -> list[str]:
    """The texts of a request; InvalidInput names the first one that is not a non-empty
    string within the model's `max_length` tokens. Unknown words are fine: they read as <UNK>."""
    check_instances(instances, max_instances, "texts")
    for i, text in enumerate(instances):
        where = f"instances[{i}]"
        if not isinstance(text, str):
            raise InvalidInput(where, f"must be a string of text, got {type(text).__name__}")
        if not text.strip():
            raise InvalidInput(where, "must not be empty")
        count = len(state.tokenizer.encode(text))
        if count > state.max_length:
            raise InvalidInput(where, f"has {count} tokens; this model reads at most {state.max_length}")
    return list(instances)
