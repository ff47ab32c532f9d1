"""The `cnn` model kind: worked conv/pool examples, sizes, parameter and multiply counts,
every architecture's shapes, config errors, residual skips and inspection helpers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from components.data.modalities.info import DataInfo
from components.models import build
from components.models.cnn import CNN, BasicBlock, conv_output_size, last_conv_name
from components.models.summary import LayerSummary, format_summary, multiply_count, parameter_count, summary

ARCHS = ["layers", "lenet5", "vgg", "resnet", "inception"]


def _cnn(shape: tuple[int, int, int] = (1, 8, 8), out: int = 1, **params) -> CNN:
    c, h, w = shape
    return build({"kind": "cnn", "params": {"in_channels": c, "height": h, "width": w, "out_features": out, **params}})


def _image(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)[None, None]  # (1, 1, H, W)


# ---------------------------------------------------------------------------- worked examples


def test_vertical_edge_filter_on_the_worked_6x6_example():
    model = _cnn((1, 6, 6), layers=[{"type": "conv", "filters": 1, "kernel": 3, "bias": False, "activation": "none"}])
    with torch.no_grad():
        model.features[0].weight.copy_(torch.tensor([[1.0, 0, -1], [1, 0, -1], [1, 0, -1]]).view(1, 1, 3, 3))
    a = _image([
        [3, 0, 1, 2, 7, 4], [1, 5, 8, 9, 3, 1], [2, 7, 2, 5, 1, 3],
        [0, 1, 3, 1, 7, 8], [4, 2, 1, 6, 2, 8], [2, 4, 5, 2, 3, 9],
    ])
    out = model.features(a)  # (1, 1, 4, 4): cross-correlation, the kernel is not flipped
    expected = [[-5, -4, 0, 8], [-10, -2, 2, 3], [0, -2, -4, -7], [-3, -2, -3, -16]]
    assert out[0, 0].tolist() == expected


@pytest.mark.parametrize(
    ("kind", "expected"), [("maxpool", [[8, 9], [9, 4]]), ("avgpool", [[3.5, 6.25], [4.5, 2.5]])]
)
def test_2x2_stride_2_pooling_on_the_worked_4x4_example(kind, expected):
    model = _cnn((1, 4, 4), layers=[{"type": kind, "size": 2}])  # stride defaults to the size
    x = _image([[1, 4, 6, 3], [1, 8, 9, 7], [2, 9, 1, 2], [3, 4, 4, 3]])
    assert model.features(x)[0, 0].tolist() == expected
    assert model.head.in_features == 4


@pytest.mark.parametrize(
    ("n", "kernel", "padding", "stride", "out"),
    [(6, 3, 0, 1, 4), (7, 3, 0, 2, 3), (28, 5, 2, 1, 28), (32, 5, 0, 1, 28), (28, 2, 0, 2, 14), (5, 5, 0, 1, 1)],
)
def test_conv_output_size(n, kernel, padding, stride, out):
    assert conv_output_size(n, kernel, padding, stride) == out


def test_conv_output_size_rejects_a_kernel_that_does_not_fit():
    with pytest.raises(ValueError, match=r"3x3 kernel .* side of 2: output size 0"):
        conv_output_size(2, 3)
    with pytest.raises(ValueError, match="stride must be >= 1, got 0"):
        conv_output_size(6, 3, stride=0)


# ---------------------------------------------------------------------------- counts


def test_lenet5_has_the_classic_61706_parameters():
    model = _cnn((1, 32, 32), out=10, arch="lenet5")
    per_layer = {r.name: r.parameters for r in summary(model, (1, 32, 32)) if r.parameters}
    assert per_layer == {
        "features.0": 1 * 6 * 5 * 5 + 6,  # 156
        "features.3": 6 * 16 * 5 * 5 + 16,  # 2,416
        "classifier.0": 16 * 5 * 5 * 120 + 120,  # 48,120
        "classifier.2": 120 * 84 + 84,  # 10,164
        "head": 84 * 10 + 10,  # 850
    }
    assert parameter_count(model) == 61_706
    # conv1 28·28·6·25 + conv2 10·10·16·6·25 + fc 400·120 + 120·84 + 84·10
    assert multiply_count(model, (1, 32, 32)) == 117_600 + 240_000 + 48_000 + 10_080 + 840


def test_parameter_count_of_a_layer_list_and_of_its_trainable_part():
    layers = [
        {"type": "conv", "filters": 8, "kernel": 3, "padding": "same"},  # 3·8·9 + 8 = 224
        {"type": "batchnorm"},  # γ and β: 16 (running statistics are buffers)
        {"type": "maxpool", "size": 2},  # (8, 4, 4)
        {"type": "conv1x1", "filters": 4},  # 8·4 + 4 = 36
        {"type": "flatten"},  # 64
        {"type": "dense", "units": 10},  # 64·10 + 10 = 650
    ]
    model = _cnn((3, 8, 8), out=2, layers=layers)  # head 10·2 + 2 = 22
    assert parameter_count(model) == 224 + 16 + 36 + 650 + 22
    for p in model.features.parameters():
        p.requires_grad_(False)
    assert parameter_count(model, trainable_only=True) == 650 + 22


def test_multiply_count_of_one_conv():
    model = _cnn((1, 6, 6), layers=[{"type": "conv", "filters": 4, "kernel": 3, "bias": False}])
    # conv: 4·4 positions · 4 filters · 1 channel · 3·3 = 576; head: 64 inputs · 1 output
    assert multiply_count(model, (1, 6, 6)) == 576 + 64
    strided = _cnn((2, 7, 7), layers=[{"type": "conv", "filters": 3, "kernel": 3, "stride": 2}])
    assert multiply_count(strided, (2, 7, 7)) == 3 * 3 * 3 * 2 * 9 + 27  # 3x3 output, then head


# ---------------------------------------------------------------------------- architectures


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 16, 16)])
def test_every_arch_gives_logits_and_gradients(arch, shape):
    torch.manual_seed(0)
    model = _cnn(shape, out=3, arch=arch)
    logits = model(torch.randn(2, *shape))
    assert logits.shape == (2, 3)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert isinstance(model.head, nn.Linear) and model.head.out_features == 3


def test_build_fills_the_image_fields_from_data_info():
    info = DataInfo(modality="image", task="classification", input_shape=(1, 28, 28), classes=tuple("0123456789"))
    model = build({"kind": "cnn", "params": {"arch": "lenet5"}}, info)
    assert (model.config.in_channels, model.config.height, model.config.width) == (1, 28, 28)
    assert model(torch.zeros(4, 1, 28, 28)).shape == (4, 10)


def test_lenet5_summary_on_28x28_pads_the_first_conv():
    rows = summary(_cnn((1, 28, 28), out=10, arch="lenet5"), (1, 28, 28))
    assert [(r.name, r.type, r.output_shape) for r in rows] == [
        ("features.0", "Conv2d", (6, 28, 28)),  # 'same': 28x28 keeps LeNet's 32x32 geometry
        ("features.1", "ReLU", (6, 28, 28)),
        ("features.2", "MaxPool2d", (6, 14, 14)),
        ("features.3", "Conv2d", (16, 10, 10)),
        ("features.4", "ReLU", (16, 10, 10)),
        ("features.5", "MaxPool2d", (16, 5, 5)),
        ("classifier.0", "Linear", (120,)),
        ("classifier.1", "ReLU", (120,)),
        ("classifier.2", "Linear", (84,)),
        ("classifier.3", "ReLU", (84,)),
        ("head", "Linear", (10,)),
    ]


def test_lenet5_on_8x8_pads_both_convs():
    rows = {r.name: r.output_shape for r in summary(_cnn((1, 8, 8), out=10, arch="lenet5"), (1, 8, 8))}
    assert rows["features.3"] == (16, 4, 4) and rows["features.5"] == (16, 2, 2)


def test_format_summary_aligns_columns_and_totals():
    rows = [LayerSummary("features.0", "Conv2d", (6, 28, 28), 156), LayerSummary("head", "Linear", (10,), 850)]
    lines = format_summary(rows).splitlines()
    assert lines[0].split() == ["layer", "type", "output", "shape", "parameters"]
    assert len({len(line) for line in lines[:3]}) == 1  # parameters right-aligned to one edge
    assert lines[1].index("Conv2d") == lines[2].index("Linear") == lines[0].index("type")
    assert lines[-1] == "total parameters: 1006"


@pytest.mark.parametrize(
    ("arch", "params"),
    [
        ("resnet", {}),
        ("inception", {}),
        ("layers", {"layers": [{"type": "conv", "filters": 5, "kernel": 3}, {"type": "gap"}]}),
    ],
)
def test_gap_archs_feed_the_last_map_straight_to_the_head(arch, params):
    model = _cnn((1, 8, 8), out=2, arch=arch, **params).eval()
    x = torch.randn(3, 1, 8, 8)
    fmap = model.features(x)  # (B, C, H, W)
    assert isinstance(model.avgpool, nn.AdaptiveAvgPool2d) and len(model.classifier) == 0
    # CAM's identity: logits = Σ_k w_k · mean(A_k) + b
    torch.testing.assert_close(model(x), fmap.mean((2, 3)) @ model.head.weight.T + model.head.bias)


@pytest.mark.parametrize("arch", ARCHS)
def test_last_conv_name_resolves_to_a_conv_on_the_main_path(arch):
    model = _cnn((1, 8, 8), arch=arch)
    name = last_conv_name(model)
    assert isinstance(model.get_submodule(name), nn.Conv2d)
    assert name.startswith("features.") and "downsample" not in name
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        last_conv_name(_cnn((1, 4, 4), layers=[{"type": "dense", "units": 3}]))


@pytest.mark.parametrize(("inplanes", "planes", "stride"), [(4, 4, 1), (4, 8, 2)])
def test_residual_block_with_a_zero_branch_is_relu_of_the_shortcut(inplanes, planes, stride):
    torch.manual_seed(0)
    block = BasicBlock(inplanes, planes, stride).eval()
    with torch.no_grad():
        block.conv2.weight.zero_()
    x = torch.randn(2, inplanes, 6, 6)
    shortcut = x if block.downsample is None else block.downsample(x)
    assert (block.downsample is None) == (stride == 1 and inplanes == planes)
    assert shortcut.shape == (2, planes, 6 // stride, 6 // stride)
    torch.testing.assert_close(block(x), torch.relu(shortcut))


def test_he_init_for_relu_layers_glorot_for_tanh_and_zero_biases():
    torch.manual_seed(0)
    layers = [
        {"type": "conv", "filters": 64, "kernel": 3, "padding": 1},
        {"type": "conv", "filters": 64, "kernel": 3, "activation": "tanh"},
    ]
    model = _cnn((16, 6, 6), layers=layers)
    relu_conv, tanh_conv = model.features[0], model.features[2]
    assert relu_conv.weight.std().item() == pytest.approx(math.sqrt(2 / (16 * 9)), rel=0.05)
    assert tanh_conv.weight.std().item() == pytest.approx(math.sqrt(2 / (64 * 9 + 64 * 9)), rel=0.05)
    assert torch.count_nonzero(relu_conv.bias) == 0 and torch.count_nonzero(model.head.bias) == 0


def test_summary_and_multiply_count_leave_training_mode_alone():
    model = _cnn((1, 8, 8), arch="resnet").train()
    summary(model, (1, 8, 8))
    multiply_count(model, (1, 8, 8))
    assert model.training and all(m.training for m in model.modules())


def test_dropout_before_the_head_and_batch_norm_flag():
    model = _cnn((1, 8, 8), arch="vgg", dropout=0.3, batch_norm=True)
    assert isinstance(model.drop, nn.Dropout) and model.drop.p == 0.3
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 4  # 2 stages x 2 convs
    plain = _cnn((1, 8, 8), arch="resnet", batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())


# ---------------------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"layers": [{"type": "conv", "filters": 2, "kernel": 3}, {"type": "gap"}, {"type": "convv"}]},
            r"layers\[2\]: unknown layer type 'convv'; allowed: \['conv', 'conv1x1', 'maxpool'",
        ),
        ({"layers": [{"type": "conv", "filters": 2, "kernel": 0}]}, r"layers\[0\]\.kernel must be >= 1, got 0"),
        (
            {"layers": [{"type": "conv", "filters": "8", "kernel": 3}]},
            r"layers\[0\]\.filters must be an int >= 1, got '8'",
        ),
        (
            {"layers": [{"type": "conv", "filter": 8, "kernel": 3}]},
            r"layers\[0\]: unknown key\(s\) \['filter'\] for 'conv'; allowed: \['filters', 'kernel'",
        ),
        ({"layers": [{"type": "dense"}]}, r"layers\[0\]: 'dense' needs \['units'\]"),
        ({"layers": ["conv"]}, r"'layers' must be a list of a mapping, got \['conv'\]"),  # the registry's check
        ({"layers": [{"filters": 8}]}, r"layers\[0\] must be a mapping with a 'type', got \{'filters': 8\}"),
        (
            {"layers": [{"type": "conv", "filters": 2, "kernel": 5}, {"type": "conv", "filters": 2, "kernel": 5}]},
            r"layers\[1\] \(conv\) shrinks the 4x4 feature map to 0x0; inputs are 8x8",
        ),
        (
            {"layers": [{"type": "conv", "filters": 2, "kernel": 3, "stride": 2, "padding": "same"}]},
            r"layers\[0\]\.padding 'same' needs stride 1, got stride 2",
        ),
        (
            {"layers": [{"type": "flatten"}, {"type": "conv", "filters": 2, "kernel": 1}]},
            r"layers\[1\]: 'conv' needs a \(C, H, W\) feature map",
        ),
        ({"layers": [{"type": "conv", "filters": 2, "kernel": 3, "activation": "gelu"}]}, r"layers\[0\]\.activation"),
        ({"layers": [{"type": "dropout", "p": 1.0}]}, r"layers\[0\]\.p must be in \[0, 1\), got 1.0"),
        ({"batch_norm": True}, r"batch_norm must be unset for arch 'layers'"),
        ({"arch": "alexnet"}, r"'arch' must be one of \['layers', 'lenet5', 'vgg', 'resnet', 'inception'\]"),
        ({"arch": "resnet", "blocks": [1, 1, 1]}, r"blocks must be one int >= 1 per width \(2\), got \[1, 1, 1\]"),
        ({"arch": "inception", "widths": [16, 4]}, r"widths must be a non-empty list of ints >= 8 for inception"),
        ({"arch": "vgg", "widths": [4, 4, 4, 4]}, r"4 stages need inputs of at least 16x16, got 8x8"),
        ({"arch": "vgg", "convs_per_stage": 0}, r"convs_per_stage must be >= 1, got 0"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ],
)
def test_bad_configs_name_the_param(params, message):
    with pytest.raises(ValueError, match=message):
        _cnn((1, 8, 8), **params)


def test_a_layer_list_too_deep_for_the_input_names_the_layer_and_size():
    layers = [{"type": "maxpool", "size": 2}] * 4
    message = r"model 'cnn': layers\[3\] \(maxpool\) shrinks the 1x1 feature map to 0x0; inputs are 8x8"
    with pytest.raises(ValueError, match=message):
        _cnn((1, 8, 8), layers=layers)
    with pytest.raises(ValueError, match=r"lenet5 needs inputs of at least 4x4.*got 3x3"):
        _cnn((1, 3, 3), arch="lenet5")
