"""Optimisers, learning-rate schedules, losses, penalties and early stopping."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from components.config import OptimizerConfig, ScheduleConfig
from components.models import build
from components.training.early_stopping import EarlyStopping
from components.models.outputs import predict_output
from components.training.losses import loss_fn, penalty
from components.training.optim import make_optimizer, make_scheduler


def _quadratic_step(cfg: OptimizerConfig) -> tuple[torch.optim.Optimizer, torch.Tensor, torch.Tensor]:
    w = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = make_optimizer([w], cfg)
    before = w.detach().clone()
    for _ in range(3):
        opt.zero_grad()
        (w**2).sum().backward()
        opt.step()
    return opt, before, w.detach()


# ---------------------------------------------------------------------------- optimisers


@pytest.mark.parametrize(
    ("name", "cls"),
    [("sgd", torch.optim.SGD), ("momentum", torch.optim.SGD), ("rmsprop", torch.optim.RMSprop),
     ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)],
)
def test_each_optimizer_steps_downhill(name, cls):
    opt, before, after = _quadratic_step(OptimizerConfig(name=name, lr=0.1, weight_decay=0.01))
    assert type(opt) is cls
    assert opt.param_groups[0]["lr"] == 0.1
    assert opt.param_groups[0]["weight_decay"] == 0.01
    assert (after**2).sum() < (before**2).sum()


def test_sgd_and_momentum_take_the_textbook_steps():
    w = nn.Parameter(torch.tensor([1.0]))
    sgd = make_optimizer([w], OptimizerConfig(name="sgd", lr=0.1))
    assert sgd.param_groups[0]["momentum"] == 0
    (w**2).sum().backward()  # grad 2
    sgd.step()
    assert w.item() == pytest.approx(0.8)

    w = nn.Parameter(torch.tensor([1.0]))
    mom = make_optimizer([w], OptimizerConfig(name="momentum", lr=0.1, momentum=0.9))
    for _ in range(2):
        mom.zero_grad()
        (w**2).sum().backward()
        mom.step()
    # v1 = 2, w1 = 0.8; v2 = 0.9·2 + 1.6 = 3.4, w2 = 0.8 − 0.34
    assert w.item() == pytest.approx(0.46)


def test_adam_first_step_is_lr_times_sign_thanks_to_bias_correction():
    w = nn.Parameter(torch.tensor([3.0, -5.0]))
    opt = make_optimizer([w], OptimizerConfig(name="adam", lr=0.01))
    (w**2).sum().backward()
    opt.step()
    assert w.tolist() == pytest.approx([2.99, -4.99], abs=1e-6)


# ---------------------------------------------------------------------------- schedules


def _lrs(cfg: ScheduleConfig, epochs: int = 6, lr0: float = 0.2) -> list[float]:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr0)
    sched = make_scheduler(opt, cfg, epochs=epochs)
    lrs = []
    for _ in range(epochs + 1):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_time_based_decay():
    lrs = _lrs(ScheduleConfig(name="time", decay=0.5))
    assert lrs == pytest.approx([0.2 / (1 + 0.5 * t) for t in range(7)])
    assert lrs[3] == pytest.approx(0.2 / 2.5)


def test_step_decay():
    lrs = _lrs(ScheduleConfig(name="step", step_size=2, gamma=0.5))
    assert lrs == pytest.approx([0.2, 0.2, 0.1, 0.1, 0.05, 0.05, 0.025])


def test_exponential_decay():
    lrs = _lrs(ScheduleConfig(name="exponential", decay=0.3))
    assert lrs == pytest.approx([0.2 * math.exp(-0.3 * t) for t in range(7)])
    # 0.95^epoch·α0 is exponential decay with k = −ln 0.95
    assert _lrs(ScheduleConfig(name="exponential", decay=-math.log(0.95)))[4] == pytest.approx(0.2 * 0.95**4)


def test_cosine_reaches_min_lr_at_the_last_epoch():
    lrs = _lrs(ScheduleConfig(name="cosine", min_lr=0.02), epochs=6)
    expected = [0.02 + (0.2 - 0.02) * (1 + math.cos(math.pi * t / 6)) / 2 for t in range(7)]
    assert lrs == pytest.approx(expected)
    assert lrs[-1] == pytest.approx(0.02)


def test_no_schedule_is_none_and_schedulers_pickle():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    assert make_scheduler(opt, ScheduleConfig(name="none"), epochs=5) is None
    sched = make_scheduler(opt, ScheduleConfig(name="time", decay=0.1), epochs=5)
    opt.step()
    sched.step()
    state = pickle.loads(pickle.dumps(sched.state_dict()))
    other = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    fresh = make_scheduler(other, ScheduleConfig(name="time", decay=0.1), epochs=5)
    fresh.load_state_dict(state)
    assert fresh.last_epoch == 1


# ---------------------------------------------------------------------------- losses and predictions


def test_loss_choice_per_task():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, 0.0]])
    target = torch.tensor([0, 1])
    ce = loss_fn("classification", 3)
    assert ce(logits, target).item() == pytest.approx(F.cross_entropy(logits, target).item())

    binary = loss_fn("classification", 1)
    z, y = torch.tensor([[0.3], [-1.2]]), torch.tensor([1, 0])  # int targets are cast to float
    p = torch.sigmoid(z[:, 0])
    bce = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    assert binary(z, y).item() == pytest.approx(bce.item(), rel=1e-6)

    mse = loss_fn("regression", 1)
    assert mse(torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0])).item() == pytest.approx(2.5)
    mse2 = loss_fn("regression", 2)
    assert mse2(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]])).item() == pytest.approx(0.5)

    with pytest.raises(ValueError, match="task must be 'classification' or 'regression', got 'ranking'"):
        loss_fn("ranking", 1)


def test_predict_output_per_task():
    binary = predict_output(torch.tensor([[0.0], [2.0], [-1.0]]), "classification", 1)
    assert binary["class"].tolist() == [0, 1, 0]
    p = 1 / (1 + math.exp(-2.0))
    assert binary["proba"][1].tolist() == pytest.approx([1 - p, p])
    assert binary["proba"].sum(dim=1).tolist() == pytest.approx([1.0] * 3)

    multi = predict_output(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, -5.0]]), "classification", 3)
    e = [math.exp(v) for v in (1.0, 2.0, 3.0)]
    assert multi["proba"][0].tolist() == pytest.approx([v / sum(e) for v in e])
    assert multi["class"].tolist() == [2, 0]
    assert multi["class"].dtype == torch.int64

    assert predict_output(torch.tensor([[1.5], [2.5]]), "regression", 1)["value"].tolist() == [1.5, 2.5]
    assert predict_output(torch.ones(2, 3), "regression", 3)["value"].shape == (2, 3)
    with pytest.raises(ValueError, match=r"expected model output \(B, 3\), got \(2, 2\)"):
        predict_output(torch.ones(2, 2), "classification", 3)


# ---------------------------------------------------------------------------- penalties


def test_penalty_on_known_weights_skips_biases_and_norm_params():
    model = build({"kind": "mlp", "params": {"in_features": 2, "out_features": 1, "hidden": [2],
                                             "batch_norm": True, "activation": "prelu"}})
    with torch.no_grad():
        model.blocks[0].linear.weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.5]]))
        model.head.weight.copy_(torch.tensor([[-1.0, 2.0]]))
        model.head.bias.fill_(100.0)
        model.blocks[0].norm.weight.fill_(50.0)
    # Σ|w| = 1+2+3+0.5+1+2 = 9.5; Σw² = 1+4+9+0.25+1+4 = 19.25
    assert penalty(model, l1=0.1, l2=0.0).item() == pytest.approx(0.95)
    assert penalty(model, l1=0.0, l2=0.2).item() == pytest.approx(0.5 * 0.2 * 19.25)
    assert penalty(model, l1=0.1, l2=0.2).item() == pytest.approx(0.95 + 1.925)
    assert penalty(model, 0.0, 0.0).item() == 0.0


def test_l2_penalty_gradient_equals_sgd_weight_decay():
    torch.manual_seed(0)
    a = build({"kind": "linear_regression", "params": {"solver": "sgd", "in_features": 3, "out_features": 1}})
    b = build({"kind": "linear_regression", "params": {"solver": "sgd", "in_features": 3, "out_features": 1}})
    b.load_state_dict(a.state_dict())
    x, y = torch.randn(8, 3), torch.randn(8)
    loss = loss_fn("regression", 1)

    opt_a = make_optimizer(a.parameters(), OptimizerConfig(name="sgd", lr=0.1))
    (loss(a(x), y) + penalty(a, 0.0, 0.3)).backward()
    opt_a.step()
    # weight_decay also decays the bias; compare the weights only
    opt_b = make_optimizer(b.parameters(), OptimizerConfig(name="sgd", lr=0.1, weight_decay=0.3))
    loss(b(x), y).backward()
    opt_b.step()
    torch.testing.assert_close(a.linear.weight, b.linear.weight)


# ---------------------------------------------------------------------------- early stopping


def _model(value: float) -> nn.Module:
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(value)
        model.bias.fill_(-value)
    return model


def test_early_stopping_patience_and_best_epoch():
    stopper = EarlyStopping(patience=2)
    losses = [1.0, 0.8, 0.9, 0.7, 0.75, 0.72]
    stops = [stopper.step(loss, _model(i)) for i, loss in enumerate(losses)]
    assert stops == [False, False, False, False, False, True]
    assert stopper.best_value == 0.7
    assert stopper.best_epoch == 3
    assert stopper.should_stop


def test_min_delta_ignores_tiny_improvements():
    stopper = EarlyStopping(patience=2, min_delta=0.05)
    assert not stopper.step(1.0, _model(0))
    assert not stopper.step(0.97, _model(1))  # improves by 0.03 < min_delta: no improvement
    assert stopper.step(0.96, _model(2))
    assert stopper.best_value == 1.0 and stopper.best_epoch == 0


def test_nan_loss_counts_as_no_improvement():
    stopper = EarlyStopping(patience=1)
    stopper.step(0.5, _model(0))
    assert stopper.step(float("nan"), _model(1))


def test_restore_best_loads_the_best_weights_even_after_further_training():
    model = _model(1.0)
    stopper = EarlyStopping(patience=3)
    stopper.step(0.5, model)
    with torch.no_grad():
        model.weight.fill_(9.0)  # the kept copy must not alias the live parameters
    stopper.step(0.9, model)
    assert stopper.best_state["weight"].item() == 1.0
    assert stopper.restore(model)
    assert model.weight.item() == 1.0 and model.bias.item() == -1.0

    keep_none = EarlyStopping(patience=1, restore_best=False)
    keep_none.step(0.5, model)
    assert keep_none.best_state is None
    assert not keep_none.restore(model)


def test_state_round_trip_through_safetensors(tmp_path):
    stopper = EarlyStopping(patience=3, min_delta=0.01)
    for i, loss in enumerate([1.0, 0.6, 0.7, 0.65]):
        stopper.step(loss, _model(float(i)))
    state = stopper.state_dict()
    save_file(state["best_state"], tmp_path / "best.safetensors")
    scalars = {k: v for k, v in state.items() if k != "best_state"}

    resumed = EarlyStopping(patience=3, min_delta=0.01)
    resumed.load_state_dict({**scalars, "best_state": load_file(tmp_path / "best.safetensors")})
    assert (resumed.best_value, resumed.best_epoch, resumed.epoch, resumed.wait) == (0.6, 1, 4, 2)
    assert resumed.step(0.61, _model(4.0))  # third epoch without improvement
    model = _model(0.0)
    resumed.restore(model)
    assert model.weight.item() == 1.0

    with pytest.raises(ValueError, match="early-stopping state needs keys"):
        resumed.load_state_dict(scalars)


def test_early_stopping_on_a_metric_to_maximise():
    stopper = EarlyStopping(patience=2, min_delta=0.01, mode="max")
    accuracies = [0.5, 0.8, 0.805, 0.79, 0.9]
    stops = [stopper.step(a, _model(i)) for i, a in enumerate(accuracies)]
    assert stops == [False, False, False, True, False]  # 0.805 is within min_delta of 0.8
    assert (stopper.best_value, stopper.best_epoch) == (0.9, 4)
    assert stopper.best_state["weight"].item() == 4.0


def test_early_stopping_rejects_bad_settings():
    with pytest.raises(ValueError, match="patience must be an integer >= 1, got 0"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="min_delta must be >= 0, got -0.1"):
        EarlyStopping(patience=1, min_delta=-0.1)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max', got 'up'"):
        EarlyStopping(patience=1, mode="up")
