"""Numerical gradient checking, and the 2-2-2 sigmoid network worked by hand (Matt Mazur)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from components.training.grad_check import GradCheckRow, format_grad_check, gradient_check, passed


def _mse(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return F.mse_loss(model(batch["x"]), batch["y"])


def _batch(rows: int = 8, inputs: int = 3, outputs: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(rows, inputs, generator=g), "y": torch.randn(rows, outputs, generator=g)}


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))


class _DoubledWeightGrad(torch.autograd.Function):
    """y = x·w elementwise; the input's gradient is right, the weight's is twice the truth."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        return x * w  # (B, F)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, w = ctx.saved_tensors
        return grad * w, 2 * (grad * x).sum(0)


class _BuggyScale(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.linspace(0.5, 1.5, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _DoubledWeightGrad.apply(x, self.weight)


# ---------------------------------------------------------------------------- the check


def test_a_correct_model_agrees_to_float64_precision():
    rows = gradient_check(_mlp(), _batch(), _mse)
    assert [r.name for r in rows] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [r.shape for r in rows] == [(5, 3), (5,), (2, 5), (2,)]
    assert [r.checked for r in rows] == [15, 5, 10, 2]  # all entries: each tensor is under max_entries
    for row in rows:
        assert row.relative_error < 1e-7, row
        assert row.max_abs_error < 1e-8, row
    assert passed(rows)


def test_a_backward_that_doubles_the_gradient_shows_a_relative_error_of_one_third():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), _BuggyScale(4), nn.Linear(4, 2))
    rows = {r.name: r for r in gradient_check(model, _batch(), _mse)}
    # ||g − 2g|| / (||g|| + ||2g||) = ||g|| / 3||g||
    assert rows["2.weight"].relative_error == pytest.approx(1 / 3, abs=1e-6)
    for name in ("0.weight", "0.bias", "3.weight", "3.bias"):
        assert rows[name].relative_error < 1e-7, rows[name]
    assert not passed(list(rows.values()))
    assert passed([rows["0.weight"], rows["3.bias"]])


def test_the_callers_model_is_untouched():
    model = nn.Sequential(nn.Linear(3, 5), nn.Dropout(0.5), nn.Tanh(), nn.Linear(5, 2))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = gradient_check(model, _batch(), _mse)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].dtype == torch.float32 for k in before)
    assert all(p.grad is None for p in model.parameters())
    assert model.training and all(m.training for m in model.modules())
    # Dropout in train mode would make L(θ±ε) two different functions; the copy runs in eval mode.
    assert passed(rows, tolerance=1e-7)


def test_max_entries_limits_the_sample_and_the_generator_makes_it_repeatable():
    torch.manual_seed(0)
    model = nn.Linear(10, 3)
    batch = _batch(inputs=10, outputs=3)
    first = gradient_check(model, batch, _mse, max_entries=7, generator=torch.Generator().manual_seed(5))
    again = gradient_check(model, batch, _mse, max_entries=7, generator=torch.Generator().manual_seed(5))
    assert [(r.name, r.checked) for r in first] == [("weight", 7), ("bias", 3)]
    assert first == again
    assert passed(first)


def test_frozen_parameters_are_skipped_and_unused_ones_check_as_zero():
    torch.manual_seed(0)
    model = nn.ModuleDict({"used": nn.Linear(3, 2), "unused": nn.Linear(2, 2)})
    model["used"].bias.requires_grad_(False)
    rows = gradient_check(model, _batch(), lambda m, b: F.mse_loss(m["used"](b["x"]), b["y"]))
    assert [r.name for r in rows] == ["used.weight", "unused.weight", "unused.bias"]
    assert rows[1].relative_error == 0.0 and rows[1].max_abs_error == 0.0


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"eps": 0.0}, "eps must be > 0, got 0.0"), ({"max_entries": 0}, "max_entries must be an integer >= 1, got 0")],
)
def test_bad_arguments_name_the_parameter(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        gradient_check(_mlp(), _batch(), _mse, **kwargs)


def test_integer_targets_stay_integers_for_a_classification_loss():
    torch.manual_seed(0)
    batch = {"x": torch.randn(6, 3), "y": torch.tensor([0, 1, 2, 1, 0, 2])}
    rows = gradient_check(nn.Linear(3, 3), batch, lambda m, b: F.cross_entropy(m(b["x"]), b["y"]))
    assert passed(rows, tolerance=1e-7)


def test_a_model_without_trainable_parameters_is_refused():
    model = nn.Linear(2, 1).requires_grad_(False)
    with pytest.raises(ValueError, match="model has no parameters with requires_grad=True"):
        gradient_check(model, _batch(inputs=2, outputs=1), _mse)


def test_a_non_scalar_loss_is_refused():
    with pytest.raises(ValueError, match=r"loss_of must return a scalar tensor, got shape \(8, 2\)"):
        gradient_check(_mlp(), _batch(), lambda m, b: (m(b["x"]) - b["y"]) ** 2)


def test_the_table_is_aligned_and_marks_failures():
    rows = [GradCheckRow("0.weight", (5, 3), 15, 1.2e-10, 3e-12), GradCheckRow("scale", (4,), 4, 1 / 3, 0.25)]
    text = format_grad_check(rows)
    header, first, second = text.splitlines()
    assert header.split()[:3] == ["parameter", "shape", "checked"]
    assert "0.weight" in first and "5×3" in first and first.endswith("ok")
    assert "3.333e-01" in second and second.endswith("FAIL")
    assert header.index("relative error") + len("relative error") == first.index("1.200e-10") + len("1.200e-10")


# ---------------------------------------------------------------------------- Matt Mazur's 2-2-2 example


class _MazurNet(nn.Module):
    """h = σ(W1·x + b1), out = σ(W2·h + b2), with w1..w8, b1, b2 from the worked example."""

    def __init__(self) -> None:
        super().__init__()
        # float64 from the start: the example's weights rounded to float32 already move E by 1e-9.
        self.hidden = nn.Linear(2, 2, dtype=torch.float64)
        self.output = nn.Linear(2, 2, dtype=torch.float64)
        with torch.no_grad():
            # nn.Linear weights are (out, in): row j holds the weights into unit j.
            self.hidden.weight.copy_(torch.tensor([[0.15, 0.20], [0.25, 0.30]], dtype=torch.float64))  # w1 w2 / w3 w4
            self.hidden.bias.fill_(0.35)
            self.output.weight.copy_(torch.tensor([[0.40, 0.45], [0.50, 0.55]], dtype=torch.float64))  # w5 w6 / w7 w8
            self.output.bias.fill_(0.60)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.output(torch.sigmoid(self.hidden(x))))  # (B, 2)


def _half_squared_error(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return 0.5 * ((batch["y"] - model(batch["x"])) ** 2).sum()  # E = ½Σ(target − out)²


_MAZUR = {"x": torch.tensor([[0.05, 0.10]], dtype=torch.float64),  # i1, i2
          "y": torch.tensor([[0.01, 0.99]], dtype=torch.float64)}  # targets of o1, o2


def test_mazur_error_gradients_and_one_step_by_hand():
    model = _MazurNet()
    error = _half_squared_error(model, _MAZUR)
    assert error.item() == pytest.approx(0.298371109, abs=1e-9)
    error.backward()
    assert model.output.weight.grad[0, 0].item() == pytest.approx(0.082167041, abs=1e-9)  # ∂E/∂w5
    assert model.hidden.weight.grad[0, 0].item() == pytest.approx(0.000438568, abs=1e-9)  # ∂E/∂w1

    torch.optim.SGD(model.parameters(), lr=0.5).step()
    w1, w2, w3, w4 = model.hidden.weight.detach().flatten().tolist()
    w5, w6, w7, w8 = model.output.weight.detach().flatten().tolist()
    assert w5 == pytest.approx(0.35891648, abs=1e-8)
    assert w1 == pytest.approx(0.149780716, abs=1e-9)
    # The other six, as the example prints them (hidden updates use the old w5..w8, as here).
    assert [w6, w7, w8] == pytest.approx([0.408666186, 0.511301270, 0.561370121], abs=1e-9)
    assert [w2, w3, w4] == pytest.approx([0.19956143, 0.24975114, 0.29950229], abs=1e-8)


def test_mazur_network_passes_the_gradient_check():
    rows = gradient_check(_MazurNet(), _MAZUR, _half_squared_error)
    assert passed(rows, tolerance=1e-7), format_grad_check(rows)
    assert sum(r.checked for r in rows) == 12  # 4 + 2 + 4 + 2: every entry
    assert not math.isnan(sum(r.relative_error for r in rows))
