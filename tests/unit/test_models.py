"""Model registry and model modules: shapes, config errors, initialisation, train/eval behaviour."""

from __future__ import annotations

import math

import pytest
import torch

from components.config import ModelConfig
from components.models import build, kinds, register
from components.models.linear import LinearRegression
from components.models.mlp import MLP


def _mlp(**params) -> MLP:
    return build({"kind": "mlp", "params": {"in_features": 4, "out_features": 3, **params}})


# ---------------------------------------------------------------------------- registry


def test_kinds_lists_the_registered_models():
    assert {"linear_regression", "logistic_regression", "mlp"} <= set(kinds())
    assert kinds() == sorted(kinds())


@pytest.mark.parametrize(
    ("kind", "params", "out_shape"),
    [
        ("linear_regression", {"solver": "sgd", "in_features": 5, "out_features": 1}, (8, 1)),
        ("linear_regression", {"solver": "sgd", "in_features": 5, "out_features": 2}, (8, 2)),
        ("logistic_regression", {"solver": "adam", "in_features": 5, "out_features": 1}, (8, 1)),
        ("logistic_regression", {"solver": "adam", "in_features": 5, "out_features": 4}, (8, 4)),
        ("mlp", {"in_features": 5, "out_features": 3}, (8, 3)),
        ("mlp", {"in_features": 5, "out_features": 3, "hidden": [16, 8], "activation": "tanh"}, (8, 3)),
        ("mlp", {"in_features": 5, "out_features": 1, "hidden": []}, (8, 1)),
    ],
)
def test_build_each_kind_gives_the_output_shape(kind, params, out_shape):
    model = build({"kind": kind, "params": params})
    assert model(torch.randn(8, 5)).shape == out_shape


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu"])
def test_every_activation_builds_and_runs(activation):
    model = _mlp(hidden=[6, 5], activation=activation)
    assert model(torch.randn(3, 4)).shape == (3, 3)


def test_build_accepts_a_model_config_and_keyword_params():
    model = build(ModelConfig(kind="mlp", params={"hidden": [7]}), in_features=4, out_features=2)
    assert isinstance(model, MLP)
    assert model.config.hidden == [7] and model.config.in_features == 4
    assert model(torch.randn(2, 4)).shape == (2, 2)


def test_tuple_from_a_search_space_becomes_a_list():
    assert _mlp(hidden=(8, 4)).config.hidden == [8, 4]


def test_unknown_kind_names_it_and_the_registered_kinds():
    with pytest.raises(ValueError, match=r"unknown model kind 'transformr'.*'linear_regression'.*'mlp'"):
        build({"kind": "transformr", "params": {"in_features": 1, "out_features": 1}})


def test_unknown_param_names_it_and_the_allowed_ones():
    with pytest.raises(ValueError, match=r"'hiden'.*allowed.*'hidden'.*'activation'"):
        _mlp(hiden=[8])


def test_missing_feature_counts_are_named():
    with pytest.raises(ValueError, match=r"missing param\(s\) \['in_features'\]"):
        build({"kind": "linear_regression", "params": {"solver": "sgd", "out_features": 1}})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"activation": "swish"}, r"'activation' must be one of \['sigmoid', 'tanh', 'relu'.*got 'swish'"),
        ({"init": "lecun"}, r"'init' must be one of \['he', 'xavier', 'default'\], got 'lecun'"),
        ({"hidden": [8, "wide"]}, r"'hidden' must be a list of int, got \[8, 'wide'\]"),
        ({"hidden": 64}, r"'hidden' must be a list of int, got 64"),
        ({"hidden": [0]}, r"hidden widths must be >= 1, got \[0\]"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
        ({"batch_norm": "yes"}, r"'batch_norm' must be bool, got 'yes'"),
        ({"in_features": 0}, r"'in_features' must be >= 1, got 0"),
    ],
)
def test_invalid_param_values_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        _mlp(**params)


def test_spec_shape_errors():
    with pytest.raises(ValueError, match=r"unknown keys \['param'\]"):
        build({"kind": "mlp", "param": {}})
    with pytest.raises(ValueError, match="needs 'kind'"):
        build({"params": {}})


def test_register_rejects_builders_without_a_dataclass_config_and_kind_clashes():
    with pytest.raises(TypeError, match="dataclass"):

        @register("not_a_model")
        def _builder(config: dict) -> torch.nn.Module:
            return torch.nn.Identity()

    with pytest.raises(ValueError, match="'mlp' is already registered"):

        @register("mlp")
        class Other(LinearRegression):
            pass


# ---------------------------------------------------------------------------- initialisation


def test_he_init_std_matches_sqrt_2_over_fan_in():
    torch.manual_seed(0)
    model = build({"kind": "mlp", "params": {"in_features": 1000, "out_features": 10, "hidden": [500]}})
    w = model.blocks[0].linear.weight  # (500, 1000)
    assert w.mean().item() == pytest.approx(0.0, abs=1e-3)
    assert w.std().item() == pytest.approx(math.sqrt(2 / 1000), rel=0.02)
    assert model.head.weight.std().item() == pytest.approx(math.sqrt(2 / 500), rel=0.05)
    assert torch.count_nonzero(model.blocks[0].linear.bias) == 0


def test_xavier_init_std_matches_glorot():
    torch.manual_seed(0)
    params = {"in_features": 1000, "out_features": 10, "hidden": [600], "activation": "tanh", "init": "xavier"}
    model = build({"kind": "mlp", "params": params})
    w = model.blocks[0].linear.weight  # (600, 1000)
    assert w.std().item() == pytest.approx(math.sqrt(2 / (1000 + 600)), rel=0.02)
    assert torch.count_nonzero(model.head.bias) == 0


def test_default_init_keeps_pytorch_uniform_bound():
    torch.manual_seed(0)
    model = build({"kind": "mlp", "params": {"in_features": 400, "out_features": 1, "hidden": [300], "init": "default"}})
    w = model.blocks[0].linear.weight  # (300, 400)
    # PyTorch's default is U(-1/√n_in, 1/√n_in), std 1/√(3·n_in)
    assert w.abs().max().item() <= 1 / math.sqrt(400)
    assert w.std().item() == pytest.approx(1 / math.sqrt(3 * 400), rel=0.03)


def test_leaky_relu_slope_is_one_hundredth():
    act = _mlp(hidden=[2], activation="leaky_relu").blocks[0].act
    assert act(torch.tensor([-2.0, 3.0])).tolist() == pytest.approx([-0.02, 3.0])


# ---------------------------------------------------------------------------- dropout and batch norm


def test_dropout_is_inverted_in_training_and_off_in_eval():
    torch.manual_seed(0)
    model = _mlp(hidden=[2000], dropout=0.5)
    drop = model.blocks[0].drop
    drop.train()
    out = drop(torch.ones(1, 100_000))
    assert set(out.unique().tolist()) == {0.0, 2.0}  # survivors scaled by 1/keep_prob
    assert out.mean().item() == pytest.approx(1.0, abs=0.02)

    x = torch.randn(16, 4)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    plain = _mlp(hidden=[2000])
    plain.load_state_dict(model.state_dict())
    plain.eval()
    torch.testing.assert_close(model(x), model(x))
    torch.testing.assert_close(model(x), plain(x))


def test_batch_norm_uses_running_statistics_in_eval():
    torch.manual_seed(0)
    model = _mlp(hidden=[8], batch_norm=True)
    norm = model.blocks[0].norm
    assert model.blocks[0].linear.bias is None  # BN's shift replaces it

    model.train()
    for _ in range(200):
        model(torch.randn(64, 4) * 3 + 5)
    assert not torch.allclose(norm.running_mean, torch.zeros(8))

    x = torch.randn(10, 4) * 3 + 5
    model.eval()
    batch_out = model(x)
    # each row alone gives the same answer: statistics come from the running averages
    rows_out = torch.cat([model(x[i : i + 1]) for i in range(10)])
    torch.testing.assert_close(batch_out, rows_out)

    z = model.blocks[0].linear(x)  # (10, 8)
    expected = (z - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps) * norm.weight + norm.bias
    torch.testing.assert_close(norm(z), expected)

    model.train()
    assert not torch.allclose(model(x), batch_out)
