"""Linear and logistic (softmax) regression, plus closed-form least squares.

Both modules are a single nn.Linear; they differ in what the output means and so in the
loss the training code picks: linear regression outputs the prediction (MSE), logistic
regression outputs logits (sigmoid + binary cross-entropy when out_features == 1,
softmax + cross-entropy when out_features > 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from components.models.registry import register


@dataclass
class LinearRegressionConfig:
    in_features: int
    out_features: int
    bias: bool = True  # False fits y = a·x through the origin


@dataclass
class LogisticRegressionConfig:
    in_features: int
    out_features: int  # 1: binary (sigmoid); > 1: softmax regression over that many classes
    bias: bool = True


@register("linear_regression")
class LinearRegression(nn.Module):
    def __init__(self, config: LinearRegressionConfig) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.in_features, config.out_features, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)  # (B, in) -> (B, out)


@register("logistic_regression")
class LogisticRegression(nn.Module):
    def __init__(self, config: LogisticRegressionConfig) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.in_features, config.out_features, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)  # (B, in) -> (B, out) logits; log-odds when out == 1


# ---------------------------------------------------------------------------- closed form


def ols_fit(x: np.ndarray, y: np.ndarray, fit_intercept: bool = True) -> tuple[float, np.ndarray]:
    """Ordinary least squares: minimise Σ(y − b0 − x·b)²; returns (b0, b) with b of shape (d,).

    x is (n, d) or (n,) for one feature, y is (n,). Solved with lstsq on [1 | x], which is the
    normal-equation solution (XᵀX)⁻¹Xᵀy without forming XᵀX; for one feature it equals
    b1 = (Σxy − n·x̄ȳ)/(Σx² − n·x̄²), b0 = ȳ − b1·x̄. Without an intercept b0 is 0.0.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]  # (n, 1)
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"ols_fit expects x (n, d) and y (n,), got x {x.shape} and y {y.shape}")
    if x.shape[0] == 0:
        raise ValueError("ols_fit needs at least one row, got 0")
    design = np.hstack([np.ones((x.shape[0], 1)), x]) if fit_intercept else x  # (n, d+1) or (n, d)
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)  # (d+1,) or (d,)
    if fit_intercept:
        return float(beta[0]), beta[1:]
    return 0.0, beta


def polynomial_features(x: np.ndarray, degree: int) -> np.ndarray:
    """Powers 1..degree of every feature, grouped by power: [x, x², ..., x^degree], (n, d·degree).

    No constant column (the intercept is the model's bias) and no cross terms.
    """
    if not isinstance(degree, (int, np.integer)) or isinstance(degree, bool) or degree < 1:
        raise ValueError(f"degree must be an integer >= 1, got {degree!r}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]  # (n, 1)
    if x.ndim != 2:
        raise ValueError(f"polynomial_features expects x (n,) or (n, d), got {x.shape}")
    return np.hstack([x**p for p in range(1, degree + 1)])  # (n, d·degree)


def load_ols(model: LinearRegression, intercept: float, coef: np.ndarray) -> LinearRegression:
    """Copy an OLS solution into a single-output LinearRegression's weight and bias; returns it."""
    coef = np.asarray(coef, dtype=np.float64).reshape(-1)
    weight = model.linear.weight  # (1, in)
    if weight.shape != (1, coef.shape[0]):
        raise ValueError(
            f"load_ols needs a model with out_features 1 and in_features {coef.shape[0]}, "
            f"got out_features {weight.shape[0]} and in_features {weight.shape[1]}"
        )
    if model.linear.bias is None and intercept != 0.0:
        raise ValueError(f"load_ols: the model has no bias (bias=False) but intercept is {intercept}")
    with torch.no_grad():
        weight.copy_(torch.as_tensor(coef, dtype=weight.dtype).view(1, -1))
        if model.linear.bias is not None:
            model.linear.bias.fill_(float(intercept))
    return model
