"""Online sequence-to-sequence requests: a source and how to decode its target.

An instance is a source string, or `{"source": "7 March 2021", "beam_size": 4,
"max_length": 12}` (beam_size 1 is greedy decoding; max_length the most tokens written,
at most the model's `max_target_length`). An empty or over-long source, an unknown field
or a value out of range is refused with the field named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.data.pairs_preparation import PairsState
from components.data.schema import InvalidInput, check_instances, instance_fields

MAX_BEAM = 16


@dataclass(frozen=True)
class Translation:
    source: str
    beam_size: int = 1
    max_length: int | None = None  # None: the model's max_target_length


def translations_from_instances(instances: Any, state: PairsState, max_instances: int) -> list[Translation]:
    check_instances(instances, max_instances, "sources")
    fields = set(Translation.__dataclass_fields__)
    requests = []
    for i, instance in enumerate(instances):
        where = f"instances[{i}]"
        instance = instance_fields(instance, where, fields, "source")
        source = instance.get("source")
        if not isinstance(source, str) or not source.strip():
            raise InvalidInput(f"{where}.source", "must be a non-empty string")
        count = len(state.source_tokenizer.encode(source))
        if count > state.max_source_length:
            raise InvalidInput(f"{where}.source", f"has {count} tokens; this model reads at most {state.max_source_length}")
        beam = instance.get("beam_size", 1)
        if not isinstance(beam, int) or isinstance(beam, bool) or not 1 <= beam <= MAX_BEAM:
            raise InvalidInput(f"{where}.beam_size", f"must be an integer from 1 to {MAX_BEAM}, got {beam!r}")
        length = instance.get("max_length", state.max_target_length)
        if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= state.max_target_length:
            raise InvalidInput(f"{where}.max_length",
                               f"must be an integer from 1 to {state.max_target_length}, got {length!r}")
        requests.append(Translation(source, beam, length))
    return requests
