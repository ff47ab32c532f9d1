"""The learning-rate range test: schedule, smoothing, divergence, restoration, suggestion, plot."""

from __future__ import annotations

import math

import numpy as np

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from components.config import OptimizerConfig
from components.training.lr_range import lr_range_test, render_lr_range
from components.training.optim import make_optimizer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _sgd(params, lr: float) -> torch.optim.Optimizer:
    return make_optimizer(params, OptimizerConfig(name="sgd", lr=lr))


def _mse(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return F.mse_loss(model(batch["x"]), batch["y"])


def _constant(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Loss 1 whatever the weights: nothing diverges, every step is taken."""
    return 1.0 + 0.0 * sum(p.sum() for p in model.parameters())


def _standardized_regression(rows: int = 64) -> dict[str, torch.Tensor]:
    """y = 3x + 1 + noise with x of mean 0 and (population) variance 1 exactly."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(rows, 1, generator=g)
    x = (x - x.mean()) / x.std(unbiased=False)
    return {"x": x, "y": 3 * x + 1 + 0.1 * torch.randn(rows, 1, generator=g)}


def test_learning_rates_are_geometric_from_start_to_end():
    result = lr_range_test(nn.Linear(2, 1), [{"x": torch.zeros(1)}], _constant, _sgd,
                           start_lr=1e-3, end_lr=10.0, steps=5)
    assert result.lrs == pytest.approx([1e-3, 1e-2, 1e-1, 1.0, 10.0], rel=1e-12)
    assert result.lrs[0] == 1e-3 and result.lrs[-1] == 10.0
    assert not result.stopped_early
    assert result.raw_losses == [1.0] * 5


def test_smoothing_is_bias_corrected_exponential_averaging():
    raw = iter([4.0, 2.0, 3.0])
    result = lr_range_test(nn.Linear(1, 1), [{}], lambda m, b: next(raw) + 0.0 * m.weight.sum(), _sgd,
                           steps=3, smoothing=0.5, diverge_factor=10.0)
    # averages 2, 2, 2.5 over the weights 1 − 0.5^t = 0.5, 0.75, 0.875
    assert result.losses == pytest.approx([4.0, 8 / 3, 2.5 / 0.875])
    assert result.raw_losses == [4.0, 2.0, 3.0]


def test_the_model_is_restored_bit_for_bit_with_its_modes_and_gradients():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.2), nn.Tanh(), nn.Linear(4, 1))
    model.eval()
    model[2].train()  # a mixed state must come back mixed
    model[0].weight.grad = torch.full_like(model[0].weight, 0.5)
    params = list(model.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    g = torch.Generator().manual_seed(1)
    batches = [{"x": torch.randn(8, 3, generator=g), "y": torch.randn(8, 1, generator=g)} for _ in range(3)]
    seen = []

    def loss_of(m: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        seen.append(m[0].weight.detach().clone())
        assert m.training  # the test trains
        return _mse(m, batch)

    lr_range_test(model, batches, loss_of, _sgd, start_lr=1e-3, end_lr=1.0, steps=6)
    assert not torch.equal(seen[0], seen[-1])  # weights did move during the test
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats and num_batches_tracked too
    assert [m.training for m in model.modules()] == modes
    assert list(model.parameters()) == params and all(a is b for a, b in zip(model.parameters(), params))
    assert torch.equal(model[0].weight.grad, torch.full_like(model[0].weight, 0.5))
    assert all(p.grad is None for p in params[1:])


def test_the_model_is_restored_when_the_loss_raises():
    model = nn.Linear(2, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []

    def loss_of(m: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return m(torch.ones(1, 2)).pow(2).sum()

    with pytest.raises(RuntimeError, match="boom"):
        lr_range_test(model, [{}], loss_of, _sgd, start_lr=0.1, end_lr=1.0, steps=5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_sgd_on_standardized_linear_regression_suggests_a_rate_below_divergence():
    # MSE over (w, b) on x with mean 0 and variance 1 has Hessian 2·I, so λmax = 2 and SGD
    # diverges for lr > 2/λmax = 1: the error is multiplied by (1 − 2·lr) every step. Below
    # lr = 1 the loss only falls (and so does its smoothed average), so the test cannot stop
    # there; above it the loss grows geometrically and must trip the 4× rule before lr = 10.
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    result = lr_range_test(model, [_standardized_regression()], _mse, _sgd, start_lr=1e-5, end_lr=10.0, steps=100)
    assert result.stopped_early
    assert 1.0 < result.lrs[-1] < 10.0
    assert len(result.lrs) < 100
    assert 1e-4 < result.suggested_lr < 1.0
    # Converged to the noise floor, the excess error needs many steps above lr = 1 to regrow,
    # and the smoothed loss lags, so its minimum sits late (lr ≈ 5.7): /10 lands just below 1.
    assert 1e-4 < result.min_loss_lr < 1.0
    assert result.suggested_lr in result.lrs[:-1]  # chosen before the diverging point


def test_a_nan_loss_stops_at_the_first_step():
    model = nn.Linear(2, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = lr_range_test(model, [{}], lambda m, b: m.weight.sum() * math.nan, _sgd, start_lr=1e-4)
    assert result.stopped_early
    assert result.lrs == [1e-4]
    assert math.isnan(result.raw_losses[0])
    assert math.isnan(result.suggested_lr) and math.isnan(result.min_loss_lr)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert render_lr_range(result).startswith(PNG_MAGIC)


def test_batches_cycle_and_may_come_from_a_callable():
    a, b = {"id": torch.tensor(0.0)}, {"id": torch.tensor(1.0)}
    order = []

    def loss_of(m: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        order.append(int(batch["id"]))
        return _constant(m, batch)

    lr_range_test(nn.Linear(1, 1), [a, b], loss_of, _sgd, steps=5)
    assert order == [0, 1, 0, 1, 0]
    order.clear()
    lr_range_test(nn.Linear(1, 1), lambda: iter([b, a]), loss_of, _sgd, steps=3)
    assert order == [1, 0, 1]


def test_empty_batches_are_refused():
    with pytest.raises(ValueError, match="batches yielded no batch"):
        lr_range_test(nn.Linear(1, 1), [], _constant, _sgd, steps=3)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"start_lr": 0.0}, "start_lr must be > 0, got 0.0"),
        ({"start_lr": 1.0, "end_lr": 1.0}, r"end_lr must be > start_lr \(1.0\), got 1.0"),
        ({"steps": 1}, "steps must be an integer >= 2, got 1"),
        ({"smoothing": 0.0}, r"smoothing must be in \(0, 1\], got 0.0"),
        ({"diverge_factor": 1.0}, "diverge_factor must be > 1, got 1.0"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        lr_range_test(nn.Linear(1, 1), [{}], _constant, _sgd, **kwargs)


def test_steepest_descent_and_min_rules_on_a_known_curve():
    raw = iter([5.0, 4.8, 2.0, 1.0, 50.0])
    result = lr_range_test(nn.Linear(1, 1), [{}], lambda m, b: next(raw) + 0.0 * m.weight.sum(), _sgd,
                           start_lr=1e-3, end_lr=10.0, steps=5, smoothing=1.0)  # 1: no smoothing
    assert result.losses == pytest.approx([5.0, 4.8, 2.0, 1.0, 50.0])
    assert result.stopped_early and result.usable == 4  # 50 > 4 × 1
    # d(loss)/d(log10 lr) over the first four: −0.2, −1.4, −1.9, −1.0 → steepest at lr 0.1
    assert result.suggested_lr == pytest.approx(0.1, rel=1e-12)
    assert result.min_loss_lr == pytest.approx(0.1, rel=1e-12)  # min at lr 1 (the diverged 50 ignored), / 10


def test_the_plot_is_a_png():
    torch.manual_seed(0)
    result = lr_range_test(nn.Linear(1, 1), [_standardized_regression(16)], _mse, _sgd, steps=30)
    image = render_lr_range(result)
    assert image.startswith(PNG_MAGIC) and len(image) > 1000


def test_the_sweep_of_a_loop_config_uses_its_model_task_and_optimizer():
    from components.data.modalities import tabular_info
    from components.training.loop import loop_config
    from components.training.lr_range import sweep_loop_config

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 1, (60, 2)), rng.normal(2, 1, (60, 2))]).astype(np.float32)
    y = np.repeat([0, 1], 60).astype(np.int64)
    config = loop_config({"kind": "mlp", "params": {"hidden": [8]}}, {"batch_size": 16, "optimizer": {"name": "sgd"}},
                         tabular_info("classification", 2, 1))
    result = sweep_loop_config(config, x, y, start_lr=1e-4, end_lr=1e4, steps=80)
    assert result.stopped_early and len(result.lrs) < 80  # plain SGD diverges long before lr 1e4
    assert result.lrs[:2] == pytest.approx([1e-4, 1e-4 * (1e8 ** (1 / 79))])
    assert 1e-3 < result.suggested_lr < 1e2
