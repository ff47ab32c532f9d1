"""Seeded, batched image augmentation for training batches, built from a list of ops.

Ops come from config as dicts, e.g. `[{"type": "flip"}, {"type": "rotate", "degrees": 15}]`,
and run in order as Kornia augmentations on the batch's own device (no torchvision). The
augmenter draws its randomness from a seed and a call counter, so the same seed and the
same sequence of calls give the same batches, and the global torch RNG is left as it was.
Augmentation is for training only: `augmenter(batch, training=False)` returns the batch
itself, and callers say which mode they are in on every call.

| type   | params (default)                          | Kornia op                                 |
|--------|-------------------------------------------|-------------------------------------------|
| flip   | p (0.5)                                   | RandomHorizontalFlip                      |
| shift  | max (required, fraction of size), p (1.0) | RandomAffine(degrees=0, translate=max)    |
| rotate | degrees (required), p (1.0)               | RandomRotation(+-degrees)                 |
| crop   | padding (4), size (the batch's), p (1.0)  | RandomCrop(size, padding): pad, then crop |
| noise  | std (required), p (1.0)                   | RandomGaussianNoise(mean 0, std)          |
| cutout | size (0.25, side as fraction), p (0.5)    | RandomErasing of a square, filled with 0  |

Noise and cutout act on the tensor values as given: on normalised batches `std` is in
units of the normalised values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from kornia import augmentation as K
from torch import nn

# type -> {param: default}; `_REQUIRED` marks params without a default.
_REQUIRED = object()
_PARAMS: dict[str, dict[str, Any]] = {
    "flip": {"p": 0.5},
    "shift": {"max": _REQUIRED, "p": 1.0},
    "rotate": {"degrees": _REQUIRED, "p": 1.0},
    "crop": {"padding": 4, "size": None, "p": 1.0},
    "noise": {"std": _REQUIRED, "p": 1.0},
    "cutout": {"size": 0.25, "p": 0.5},
}
AUGMENT_OPS: tuple[str, ...] = tuple(_PARAMS)


def validate_ops(ops: Sequence[Mapping[str, Any]]) -> None:
    """Check a list of augmentation ops without building anything; ValueError naming `augment[i].param`."""
    _normalised(ops)


def make_augmenter(ops: Sequence[Mapping[str, Any]], seed: int) -> "Augmenter":
    """An `Augmenter` applying `ops` in order, seeded with `seed`."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return Augmenter(_normalised(ops), int(seed))


class Augmenter:
    """Applies the configured ops to (B, C, H, W) float batches during training.

    Call n (counting training calls from 0) runs under a torch RNG seeded from
    (seed, n) inside `torch.random.fork_rng`, so results are reproducible and the
    caller's RNG streams are untouched. Gradients flow through (no `no_grad`), so the
    augmenter also serves differentiable-augmentation setups.
    """

    def __init__(self, ops: list[dict[str, Any]], seed: int) -> None:
        self.ops = ops
        self.seed = seed
        self.calls = 0
        self._pipelines: dict[tuple[int, int], nn.Module] = {}

    def __call__(self, batch: torch.Tensor, training: bool) -> torch.Tensor:
        """The augmented batch (same shape) when `training`, else `batch` itself."""
        if not training:
            return batch
        if not isinstance(batch, torch.Tensor) or batch.ndim != 4:
            shape = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
            raise ValueError(f"augmenter needs a (B, C, H, W) tensor, got {shape}")
        if not batch.is_floating_point():
            raise ValueError(f"augmenter needs a floating-point batch, got {batch.dtype}")
        if not self.ops or batch.shape[0] == 0:
            self.calls += 1
            return batch
        pipeline = self._pipeline(batch.shape[-2], batch.shape[-1])
        call_seed = int(np.random.SeedSequence([self.seed, self.calls]).generate_state(1, dtype=np.uint64)[0] >> 1)
        self.calls += 1
        cuda = [batch.device.index if batch.device.index is not None else torch.cuda.current_device()] \
            if batch.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            # Seed only the generators in play: Kornia samples parameters on the CPU and
            # noise on the batch's device.
            torch.default_generator.manual_seed(call_seed)
            if cuda:
                torch.cuda.default_generators[cuda[0]].manual_seed(call_seed)
            out = pipeline(batch)
        assert out.shape == batch.shape, f"augmentation changed the shape {tuple(batch.shape)} -> {tuple(out.shape)}"
        return out

    def state_dict(self) -> dict[str, int]:
        """Where the random stream stands, for checkpoints: resuming continues the same sequence."""
        return {"seed": self.seed, "calls": self.calls}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        if int(state["seed"]) != self.seed:
            raise ValueError(f"augmenter state is for seed {state['seed']}, this augmenter has seed {self.seed}")
        self.calls = int(state["calls"])

    def _pipeline(self, height: int, width: int) -> nn.Module:
        key = (int(height), int(width))
        if key not in self._pipelines:
            self._pipelines[key] = nn.Sequential(*(_build(i, op, key) for i, op in enumerate(self.ops)))
        return self._pipelines[key]


def _build(index: int, op: dict[str, Any], size: tuple[int, int]) -> nn.Module:
    kind, p = op["type"], op["p"]
    if kind == "flip":
        return K.RandomHorizontalFlip(p=p)
    if kind == "shift":
        return K.RandomAffine(degrees=0.0, translate=(op["max"], op["max"]), p=p)
    if kind == "rotate":
        return K.RandomRotation(degrees=op["degrees"], p=p)
    if kind == "crop":
        if op["size"] is not None and tuple(op["size"]) != size:
            raise ValueError(
                f"augment[{index}].size {list(op['size'])} must equal the batch's image size {size[0]}x{size[1]} "
                "(crop keeps the size; leave size out to use the batch's)"
            )
        return K.RandomCrop(size, padding=op["padding"], p=p)
    if kind == "noise":
        return K.RandomGaussianNoise(mean=0.0, std=op["std"], p=p)
    if kind == "cutout":
        area = op["size"] ** 2
        return K.RandomErasing(scale=(area, area), ratio=(1.0, 1.0), value=0.0, p=p)
    raise AssertionError(f"unhandled augmentation type {kind!r}")  # _normalised rejects unknown types


# ---------------------------------------------------------------------------- validation


def _normalised(ops: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ops with defaults filled in; ValueError naming the index and param of the first problem."""
    if isinstance(ops, (str, bytes, Mapping)) or not isinstance(ops, Sequence):
        raise ValueError(f"augment must be a list of ops, got {type(ops).__name__}")
    out: list[dict[str, Any]] = []
    for i, op in enumerate(ops):
        where = f"augment[{i}]"
        if not isinstance(op, Mapping):
            raise ValueError(f"{where} must be a mapping with a 'type', got {type(op).__name__}")
        kind = op.get("type")
        if kind not in _PARAMS:
            raise ValueError(f"{where}.type must be one of {', '.join(AUGMENT_OPS)}, got {kind!r}")
        allowed = _PARAMS[kind]
        unknown = sorted(k for k in op if k != "type" and k not in allowed)
        if unknown:
            raise ValueError(f"{where} ({kind}) has unknown key(s) {unknown}; allowed: {', '.join(allowed)}")
        params: dict[str, Any] = {"type": kind}
        for name, default in allowed.items():
            if name not in op:
                if default is _REQUIRED:
                    raise ValueError(f"{where}.{name} is required for type {kind!r}")
                params[name] = default
                continue
            params[name] = _CHECKS[name if name != "size" else f"{kind}.size"](f"{where}.{name}", op[name])
        out.append(params)
    return out


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{where} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{where} must be finite, got {value!r}")
    return float(value)


def _in_range(low: float, high: float, *, low_open: bool = False) -> Callable[[str, Any], float]:
    def check(where: str, value: Any) -> float:
        x = _number(where, value)
        if x < low or (low_open and x == low):
            raise ValueError(f"{where} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
        if x > high:
            raise ValueError(f"{where} must be <= {high:g}, got {value!r}")
        return x
    return check


def _padding(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{where} must be an integer number of pixels, got {value!r}")
    if value < 0:
        raise ValueError(f"{where} must be >= 0, got {value!r}")
    return int(value)


def _crop_size(where: str, value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    ok = (
        isinstance(value, (list, tuple)) and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in value)
    )
    if not ok:
        raise ValueError(f"{where} must be [height, width] with positive integers, got {value!r}")
    return (int(value[0]), int(value[1]))


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "p": _in_range(0.0, 1.0),
    "max": _in_range(0.0, 1.0),
    "degrees": _in_range(0.0, 180.0),
    "std": _in_range(0.0, math.inf),
    "padding": _padding,
    "crop.size": _crop_size,
    "cutout.size": _in_range(0.0, 1.0, low_open=True),
}
