"""Transfer learning from a bundle of our own: load its weights, replace the head, freeze
layers by name, and let the pretrained layers that still train move at a fraction of the rate.

The loop config carries `init_from` as data (`pretrained_init`): the path of the source
bundle's weights, resolved from the registry before training starts, so every Ray worker
reads the same file.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn
from safetensors.torch import load_file

from components.config import InitFrom

HEAD = "head"  # the output layer every torch kind names `head` (see components.models)


def pretrained_init(init: InitFrom, weights: str, source: str) -> dict[str, Any]:
    """What the loop config carries: `init`'s settings, the weights file and a readable source."""
    return {"weights": weights, "source": source, **init.model_dump(include={"freeze", "replace_head", "lr_scale"})}


def word_vectors_init(weights: str, vectors: str, freeze: bool, lr_scale: float) -> dict[str, Any]:
    """The loop config's init for an `embed` layer started from word vectors (`weights`
    holds `embed.weight` alone, so every other layer starts fresh)."""
    return {"weights": weights, "source": f"text.embeddings {vectors}", "freeze": ["embed"] if freeze else [],
            "replace_head": True, "lr_scale": lr_scale}


def load_pretrained(model: nn.Module, init: dict[str, Any]) -> set[str]:
    """Copy the source weights into `model` (all but `head` with replace_head), freeze the
    parameters under the `freeze` prefixes; return the names of the parameters loaded."""
    state = load_file(init["weights"])
    if init["replace_head"]:
        state = {k: v for k, v in state.items() if not _under(k, HEAD)}
    own = model.state_dict()
    unknown = sorted(k for k in state if k not in own)
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in state if k in own and own[k].shape != state[k].shape]
    if unknown or mismatched:
        hint = "; with a different number of classes set replace_head: true" if any(_under(m, HEAD) for m in mismatched) else ""
        raise ValueError(
            f"model.init_from {init['source']}: its weights do not fit this model "
            f"(not in this model: {unknown[:5]}; source vs this model's shape: {mismatched[:5]}){hint}"
        )
    model.load_state_dict(state, strict=False)
    names = [name for name, _ in model.named_parameters()]
    for prefix in init["freeze"]:
        if not any(_under(name, prefix) for name in names):
            tops = sorted({name.split(".")[0] for name in names})
            raise ValueError(f"model.init_from.freeze: {prefix!r} names no parameters; the model's layers: {tops}")
    for name, param in model.named_parameters():
        if any(_under(name, prefix) for prefix in init["freeze"]):
            param.requires_grad_(False)
    return {name for name in names if name in state}


def param_groups(model: nn.Module, pretrained: set[str], lr: float, lr_scale: float) -> list[dict[str, Any]]:
    """Optimiser groups of the trainable parameters: new ones at `lr`, pretrained ones at
    `lr * lr_scale` (fine-tuning), frozen ones in none."""
    fresh, tuned = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (tuned if name in pretrained else fresh).append(param)
    groups = [{"params": fresh}] if fresh else []
    if tuned:
        groups.append({"params": tuned, "lr": lr * lr_scale})
    if not groups:
        raise ValueError("model.init_from.freeze froze every parameter: nothing left to train")
    return groups


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")
