"""CURRICULUM §2 and §3 worked checks, computed by the project's own components."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.config import OptimizerConfig
from components.evaluation.metrics import regression_metrics
from components.models import build
from components.training.losses import loss_fn
from components.training.optim import make_optimizer
from components.training.stepper import Stepper

# ---------------------------------------------------------------------------- §2 linear regression

UNITS = np.array([1, 2, 3, 4, 4, 5, 6, 6, 7, 8, 9, 9, 10, 10], dtype=np.float64)
MINUTES = np.array([23, 29, 49, 64, 74, 87, 96, 97, 109, 119, 149, 145, 154, 166], dtype=np.float64)


def _ols(**params):
    """The `linear_regression` kind solved in closed form by scikit-learn."""
    spec = {"kind": "linear_regression", "params": {"solver": "ols", "task": "regression", **params}}
    return build(spec)


def _linear(**params) -> torch.nn.Module:
    """The `linear_regression` kind as the torch module gradient descent trains."""
    spec = {"kind": "linear_regression", "params": {"solver": "sgd", **params}}
    return build(spec, in_features=1, out_features=1).double()


def _predict(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x.reshape(-1, 1))).numpy()[:, 0]


def test_units_to_minutes_closed_form():
    model = _ols().fit(UNITS.reshape(-1, 1), MINUTES)  # (14, 1) -> (14,)
    assert model.intercept_ == pytest.approx(4.161654, abs=1e-6)
    assert model.coef_[0] == pytest.approx(15.50877, abs=1e-5)

    fitted = regression_metrics(MINUTES, model.predict(UNITS.reshape(-1, 1)))
    assert fitted["sse"] == pytest.approx(348.8484, abs=1e-4)

    baseline = regression_metrics(MINUTES, np.full_like(MINUTES, MINUTES.mean()))
    assert baseline["sse"] == pytest.approx(27768.36, abs=1e-2)
    assert fitted["r2"] == pytest.approx(1 - 348.8484 / 27768.36, abs=1e-6)


def test_units_to_minutes_by_gradient_descent_reaches_the_closed_form():
    closed = _ols().fit(UNITS.reshape(-1, 1), MINUTES)
    mu, sigma = UNITS.mean(), UNITS.std()
    x = torch.from_numpy((UNITS - mu) / sigma).reshape(-1, 1)  # (14, 1) standardised
    y = torch.from_numpy(MINUTES)  # (14,)
    torch.manual_seed(0)
    model = _linear()
    loss = loss_fn("regression", 1)
    opt = make_optimizer(model.parameters(), OptimizerConfig(name=model.config.solver, lr=0.1))
    for _ in range(2000):  # full-batch gradient descent
        opt.zero_grad()
        loss(model(x), y).backward()
        opt.step()
    w, b = model.linear.weight.item(), model.linear.bias.item()
    # undo the standardisation: y = w·(x − μ)/σ + b
    b1 = w / sigma
    b0 = b - w * mu / sigma
    assert b1 == pytest.approx(closed.coef_[0], abs=1e-2)
    assert b0 == pytest.approx(closed.intercept_, abs=1e-2)


# ---------------------------------------------------------------------------- §2 model selection

TRAIN_X, TRAIN_Y = np.arange(1, 6, dtype=np.float64), np.array([2, 5, 5, 10, 12], dtype=np.float64)
VAL_X, VAL_Y = np.array([6, 7, 8], dtype=np.float64), np.array([19, 25.5, 33])
SLOPES = [5, 4, 3, 2, 2.5, 2.25, 2.31]


def _through_origin(slope: float) -> torch.nn.Module:
    model = _linear(bias=False)
    with torch.no_grad():
        model.linear.weight.fill_(slope)  # y = a·x
    return model


def test_model_selection_by_validation_error():
    train_mse, val_mse = {}, {}
    for a in SLOPES:
        model = _through_origin(a)
        train_mse[a] = regression_metrics(TRAIN_Y, _predict(model, TRAIN_X))["mse"]
        val_mse[a] = regression_metrics(VAL_Y, _predict(model, VAL_X))["mse"]

    assert min(val_mse, key=val_mse.get) == 4
    assert val_mse[4] == pytest.approx(10.75)
    assert min(train_mse, key=train_mse.get) == 2.31
    assert train_mse[2.31] == pytest.approx(0.9491)

    # the least-squares slope through the origin, Σxy/Σx² = 127/55, is the 2.31 of the course
    fitted = _ols(bias=False).fit(TRAIN_X.reshape(-1, 1), TRAIN_Y)
    assert fitted.intercept_ == 0.0
    assert fitted.coef_[0] == pytest.approx(127 / 55)
    assert round(fitted.coef_[0], 2) == 2.31


# ---------------------------------------------------------------------------- §3 2-2-2 sigmoid net

X = [0.05, 0.10]
T = [0.01, 0.99]
W_HIDDEN = [[0.15, 0.20], [0.25, 0.30]]  # rows: h1 <- (w1, w2), h2 <- (w3, w4)
W_OUT = [[0.40, 0.45], [0.50, 0.55]]  # rows: o1 <- (w5, w6), o2 <- (w7, w8)
B1, B2 = 0.35, 0.60
ETA = 0.5


def _by_hand() -> dict[str, float]:
    """Forward pass, error and one backprop step in numpy, written out from the chain rule."""
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    x, t = np.array(X), np.array(T)
    w_h, w_o = np.array(W_HIDDEN), np.array(W_OUT)
    h = sig(w_h @ x + B1)  # (2,) hidden outputs
    o = sig(w_o @ h + B2)  # (2,) network outputs
    error = 0.5 * np.sum((t - o) ** 2)
    # ∂E/∂net_o = (o − t)·o(1 − o); ∂E/∂w5 = δ_o1·out_h1
    delta_o = (o - t) * o * (1 - o)  # (2,)
    # ∂E/∂net_h = (Σ_k δ_ok·w_kh)·h(1 − h); ∂E/∂w1 = δ_h1·i1
    delta_h = (w_o.T @ delta_o) * h * (1 - h)  # (2,)
    return {
        "o1": o[0], "o2": o[1], "error": error,
        "w5": w_o[0, 0] - ETA * delta_o[0] * h[0],
        "w1": w_h[0, 0] - ETA * delta_h[0] * x[0],
    }


def test_two_two_two_sigmoid_net_by_hand():
    hand = _by_hand()
    assert hand["o1"] == pytest.approx(0.75136507, abs=1e-8)  # the course rounds to 8-9 digits
    assert hand["o2"] == pytest.approx(0.772928465, abs=1e-9)
    assert hand["error"] == pytest.approx(0.298371109, abs=1e-9)
    assert hand["w5"] == pytest.approx(0.35891648, abs=1e-8)
    assert hand["w1"] == pytest.approx(0.149780716, abs=1e-9)


def test_two_two_two_sigmoid_net_with_the_mlp_kind():
    params = {"in_features": 2, "out_features": 2, "hidden": [2], "activation": "sigmoid"}
    model = build({"kind": "mlp", "params": params}).double()
    hidden, head = model.blocks[0].linear, model.head
    with torch.no_grad():
        hidden.weight.copy_(torch.tensor(W_HIDDEN, dtype=torch.float64))
        hidden.bias.fill_(B1)
        head.weight.copy_(torch.tensor(W_OUT, dtype=torch.float64))
        head.bias.fill_(B2)

    x = torch.tensor([X], dtype=torch.float64)  # (1, 2)
    t = torch.tensor([T], dtype=torch.float64)  # (1, 2)
    out = torch.sigmoid(model(x))  # (1, 2); the model returns the pre-sigmoid values
    error = 0.5 * ((t - out) ** 2).sum()

    hand = _by_hand()
    assert out[0].tolist() == pytest.approx([0.75136507, 0.772928465], abs=1e-9)
    assert out[0].tolist() == pytest.approx([hand["o1"], hand["o2"]], abs=1e-12)
    assert error.item() == pytest.approx(0.298371109, abs=1e-9)

    # the training loop's own step: the same Stepper every task calls
    opt = make_optimizer(model.parameters(), OptimizerConfig(name="sgd", lr=ETA))
    stepper = Stepper({"model": opt}, precision="fp32", device=torch.device("cpu"))
    stepper.step(error)
    assert stepper.global_step == 1
    assert head.weight[0, 0].item() == pytest.approx(0.35891648, abs=1e-8)
    assert hidden.weight[0, 0].item() == pytest.approx(0.149780716, abs=1e-9)
    assert head.weight[0, 0].item() == pytest.approx(hand["w5"], abs=1e-12)
    assert hidden.weight[0, 0].item() == pytest.approx(hand["w1"], abs=1e-12)
