"""Online generation requests for language models: a prompt and how to sample its continuation.

An instance is `{"prompt": "To be", "max_tokens": 100, "temperature": 0.8, "top_k": 10,
"seed": 1}`; everything but the prompt is optional. A prompt longer than the model's
window, an empty one, an unknown field or a value out of range is refused with the field
named. Characters or words the tokenizer never saw read as <UNK>.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.data.corpus_preparation import LanguageModelState
from components.data.schema import InvalidInput, check_instances, instance_fields

MAX_TOKENS = 1000  # the most tokens one request may ask for


@dataclass(frozen=True)
class Generation:
    prompt: str
    max_tokens: int = 100
    temperature: float = 1.0
    top_k: int | None = None
    seed: int | None = None


def generations_from_instances(instances: Any, state: LanguageModelState, max_instances: int) -> list[Generation]:
    check_instances(instances, max_instances, "generation requests")
    fields = set(Generation.__dataclass_fields__)
    requests = []
    for i, instance in enumerate(instances):
        where = f"instances[{i}]"
        instance = instance_fields(instance, where, fields, "prompt")
        prompt = instance.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise InvalidInput(f"{where}.prompt", "must be a non-empty string")
        count = len(state.tokenizer.encode(prompt))
        if count > state.max_length:
            raise InvalidInput(f"{where}.prompt", f"has {count} tokens; this model reads at most {state.max_length}")
        request = Generation(prompt=prompt)
        for name, low, high in (("max_tokens", 1, MAX_TOKENS), ("top_k", 1, state.tokenizer.vocab_size_)):
            value = instance.get(name, getattr(request, name))
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high):
                raise InvalidInput(f"{where}.{name}", f"must be an integer from {low} to {high}, got {value!r}")
        temperature = instance.get("temperature", 1.0)
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not 0 < temperature <= 10:
            raise InvalidInput(f"{where}.temperature", f"must be a number above 0 and at most 10, got {temperature!r}")
        seed = instance.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise InvalidInput(f"{where}.seed", f"must be an integer >= 0, got {seed!r}")
        requests.append(Generation(prompt, instance.get("max_tokens", 100), float(temperature), instance.get("top_k"), seed))
    return requests
