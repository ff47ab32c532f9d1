"""L-infinity adversarial attacks (FGSM, PGD) on classifiers, robust accuracy, and
adversarial batches for training.

The model maps inputs to logits: (B, C) for C >= 2 classes with int64 targets (B,), or
one column (B, 1) / (B,) for a binary model with 0/1 targets. Perturbations live in the
model's input space, so `eps` is in the units the model sees (after any normalisation).

Side effects are undone: attacks run every module in eval mode (no dropout, no
batch-norm statistic updates) and restore each module's own mode afterwards; gradients
are taken with `torch.autograd.grad` with respect to the input only, so parameters'
`.grad` are left exactly as they were, including gradients accumulated mid-step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

Attack = Literal["fgsm", "pgd"]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Clamp = tuple[float, float]


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    loss_fn: LossFn | None = None,
    clamp: Clamp | None = None,
) -> torch.Tensor:
    """Fast gradient sign method: x + eps * sign(∇x loss(model(x), y)), clamped if asked.

    loss_fn None picks cross-entropy for (B, C) logits and binary cross-entropy with logits
    when the model outputs one column. A loss_fn that returns per-sample losses is summed.
    Returns a detached tensor shaped like x.
    """
    _check_attack(x, y, eps, clamp)
    with _eval_mode(model):
        x_adv = x + eps * _grad_sign(model, x, y, loss_fn)
    return _clamp(x_adv, clamp)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    clamp: Clamp | None = None,
    loss_fn: LossFn | None = None,
) -> torch.Tensor:
    """Projected gradient descent (Madry et al.) in the L-infinity ball of radius eps around x.

    Starts from x (or a uniform point in the ball when random_start), then takes `steps`
    signed-gradient steps of step_size (default 2.5 * eps / steps, so the walk can cross the
    ball), each projected back onto the ball and into clamp. loss_fn as in `fgsm`.
    """
    _check_attack(x, y, eps, clamp)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    alpha = 2.5 * eps / steps if step_size is None else step_size
    if alpha < 0:
        raise ValueError(f"step_size must be >= 0, got {step_size}")
    x = x.detach()
    lo, hi = x - eps, x + eps  # the ball's faces, fixed for every step
    x_adv = x.clone()
    if random_start and eps > 0:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)  # [0, 1)
        x_adv = _clamp(x + (2 * noise - 1) * eps, clamp)
    with _eval_mode(model):
        for _ in range(steps):
            x_adv = x_adv + alpha * _grad_sign(model, x_adv, y, loss_fn)
            x_adv = _clamp(torch.minimum(torch.maximum(x_adv, lo), hi), clamp)
    return x_adv


def robust_accuracy(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    eps_list: list[float],
    attack: Attack = "fgsm",
    **attack_kwargs: Any,
) -> dict[float, float]:
    """{eps: accuracy on examples attacked with that eps}; eps 0 is the clean accuracy.

    batches is read once (a one-shot iterator is fine); every eps attacks the same batches.
    attack_kwargs go to `fgsm` or `pgd` (clamp, steps, generator, ...).
    """
    if not eps_list:
        raise ValueError("eps_list must hold at least one eps, got an empty list")
    if any(e < 0 for e in eps_list):
        raise ValueError(f"eps_list values must be >= 0, got {eps_list}")
    run = _attack_fn(attack)
    correct = {float(e): 0 for e in eps_list}
    total = 0
    for x, y in batches:
        for e in correct:
            x_e = x if e == 0 else run(model, x, y, e, **attack_kwargs)
            correct[e] += int((_predict(model, x_e) == y.reshape(-1).long()).sum())
        total += y.shape[0]
    if total == 0:
        raise ValueError("batches must yield at least one example, got none")
    return {e: c / total for e, c in correct.items()}


def adversarial_batch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    attack: Attack = "fgsm",
    ratio: float = 0.5,
    **kw: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x', y') with the first round(ratio * B) rows of x replaced by attacked copies.

    The first rows, not a random subset: loaders already shuffle, and a fixed slice keeps
    the call deterministic. Labels are unchanged (an attacked example keeps its true class),
    so y' is a copy of y. ratio 0.5 is Kurakin et al.'s half-clean, half-adversarial batch;
    ratio 1.0 is Madry et al.'s purely adversarial training. kw go to the attack.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    run = _attack_fn(attack)
    k = round(ratio * x.shape[0])
    x_out = x.detach().clone()
    if k > 0:
        x_out[:k] = run(model, x[:k], y[:k], eps, **kw)
    return x_out, y.clone()


def _grad_sign(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn | None) -> torch.Tensor:
    # enable_grad so attacks also work when called under torch.no_grad (e.g. in evaluation).
    with torch.enable_grad():
        x_var = x.detach().requires_grad_(True)
        logits = model(x_var)
        loss = (loss_fn or _default_loss(logits))(logits, y)
        if loss.dim() != 0:
            loss = loss.sum()
        (grad,) = torch.autograd.grad(loss, x_var)  # grads for x only; params' .grad untouched
    return grad.sign()


def _default_loss(logits: torch.Tensor) -> LossFn:
    # Summed, not averaged: the sign is the same, and a 1/B factor could underflow small gradients.
    if logits.dim() == 1 or logits.shape[1] == 1:
        return lambda z, t: F.binary_cross_entropy_with_logits(
            z.reshape(-1), t.reshape(-1).to(z.dtype), reduction="sum"
        )
    return lambda z, t: F.cross_entropy(z, t.reshape(-1).long(), reduction="sum")


def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with _eval_mode(model), torch.no_grad():
        logits = model(x)
    if logits.dim() == 1 or logits.shape[1] == 1:
        return (logits.reshape(-1) > 0).long()  # (B,) a logit > 0 is p > 0.5
    return logits.argmax(dim=1)  # (B,)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    # Per module, not model.train(was): a frozen batch-norm inside a training model stays frozen.
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _clamp(x: torch.Tensor, clamp: Clamp | None) -> torch.Tensor:
    return x.detach() if clamp is None else x.detach().clamp(clamp[0], clamp[1])


def _attack_fn(attack: str) -> Callable[..., torch.Tensor]:
    if attack == "fgsm":
        return fgsm
    if attack == "pgd":
        return pgd
    raise ValueError(f"attack must be 'fgsm' or 'pgd', got {attack!r}")


def _check_attack(x: torch.Tensor, y: torch.Tensor, eps: float, clamp: Clamp | None) -> None:
    if not x.dtype.is_floating_point:
        raise ValueError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() == 0 or y.reshape(-1).shape[0] != x.shape[0]:
        raise ValueError(f"y must hold one target per row of x ({tuple(x.shape)}), got shape {tuple(y.shape)}")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if clamp is not None and not (len(clamp) == 2 and clamp[0] <= clamp[1]):
        raise ValueError(f"clamp must be (low, high) with low <= high, got {clamp}")
