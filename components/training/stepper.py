"""How a training task turns a loss into an optimiser step: precision, scaling, clipping.

Tasks own their optimisers (a GAN has two) and call `Stepper.step(loss, name)` once per
update, manual-optimisation style; the stepper keeps what must be identical for every
task: autocast (`training.precision`), the fp16 gradient scaler, gradient clipping, and
the global step count that checkpoints carry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn as nn

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Stepper:
    def __init__(
        self,
        optimizers: dict[str, torch.optim.Optimizer],
        *,
        precision: str,
        device: torch.device,
        grad_clip: float | None = None,
    ) -> None:
        if precision not in ("fp32", *_DTYPES):
            raise ValueError(f"precision must be one of fp32, bf16, fp16, got {precision!r}")
        if precision == "fp16" and device.type != "cuda":
            raise ValueError(f"precision 'fp16' needs a CUDA device, got {device.type!r}; use 'bf16'")
        self.optimizers = optimizers
        self.precision = precision
        self.device = device
        self.grad_clip = grad_clip
        # fp16's narrow range underflows small gradients; bf16 keeps fp32's exponent and needs no scaler
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        self.global_step = 0

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Run the forward pass and loss in the configured precision (a no-op for fp32)."""
        if self.precision == "fp32":
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=_DTYPES[self.precision]):
            yield

    def step(self, loss: torch.Tensor, name: str = "model") -> None:
        """Backpropagate `loss` (outside autocast) and update optimiser `name`'s parameters."""
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], self.grad_clip)
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()
        self.global_step += 1

    def state_dict(self) -> dict[str, object]:
        return {"global_step": self.global_step, "scaler": self.scaler.state_dict() if self.scaler else None}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.global_step = int(state.get("global_step", 0))  # type: ignore[arg-type]
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])  # type: ignore[arg-type]
