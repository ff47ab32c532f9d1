"""Convolutional networks for (B, C, H, W) images: one kind, `cnn`, five architectures.

- `layers`: a declarative layer list (conv, conv1x1, maxpool, avgpool, batchnorm, dropout,
  gap, flatten, dense), Keras-like, validated item by item.
- `lenet5`: LeCun et al. 1998, ReLU/max-pool rendition; 61,706 parameters on 1x32x32, 10 classes.
- `vgg`: stages of 3x3 convs (padding 1) closed by a 2x2 max-pool.
- `resnet`: torchvision's `BasicBlock`/`_make_layer` with a CIFAR-style 3x3 stem.
- `inception`: GoogLeNet modules (1x1; 1x1->3x3; 1x1->5x5; pool->1x1) concatenated on channels.

Every model is `features` (conv trunk) -> `avgpool` (global average pooling or Identity) ->
flatten -> `classifier` (hidden dense layers, often empty) -> dropout -> `head` (Linear to
`out_features`, logits). Transfer learning replaces `head` and freezes by name prefix; for
GAP architectures `features`' output feeds GAP and then `head` directly, as CAM requires.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch
import torch.nn as nn

from components.models.registry import register

Arch = Literal["layers", "lenet5", "vgg", "resnet", "inception"]
_ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "none")
_REQUIRED = object()
# allowed keys per layer type, with defaults; a pool's stride None means "= size"
_LAYER_KEYS: dict[str, dict[str, Any]] = {
    "conv": {"filters": _REQUIRED, "kernel": _REQUIRED, "stride": 1, "padding": 0, "bias": True, "activation": "relu"},
    "conv1x1": {"filters": _REQUIRED, "bias": True, "activation": "relu"},
    "maxpool": {"size": _REQUIRED, "stride": None},
    "avgpool": {"size": _REQUIRED, "stride": None},
    "batchnorm": {},
    "dropout": {"p": 0.5},
    "gap": {},
    "flatten": {},
    "dense": {"units": _REQUIRED, "activation": "relu"},
}
_SPATIAL = ("conv", "conv1x1", "maxpool", "avgpool")
_POSITIVE = ("filters", "kernel", "stride", "size", "units")


def _default_layers() -> list[dict]:
    return [
        {"type": "conv", "filters": 16, "kernel": 3, "padding": "same"},
        {"type": "maxpool", "size": 2},
        {"type": "conv", "filters": 32, "kernel": 3, "padding": "same"},
        {"type": "gap"},
    ]


@dataclass
class CNNConfig:
    in_channels: int
    height: int
    width: int
    out_features: int  # logits; 1 for binary classification and regression
    arch: Arch = "layers"
    layers: list[dict] = field(default_factory=_default_layers)  # arch "layers" only
    widths: list[int] = field(default_factory=lambda: [16, 32])  # vgg/resnet/inception: channels per stage
    convs_per_stage: int = 2  # vgg
    blocks: list[int] = field(default_factory=lambda: [1, 1])  # resnet: BasicBlocks per stage, one per width
    # None: the arch's own choice (on for resnet and inception, off for vgg); layers and lenet5
    # take no flag: a layer list places batch norm itself and LeNet-5 predates it
    batch_norm: bool | None = None
    dropout: float = 0.0  # before the head

    def __post_init__(self) -> None:
        if self.arch not in get_args(Arch):
            raise ValueError(f"arch must be one of {list(get_args(Arch))}, got {self.arch!r}")
        for name in ("in_channels", "height", "width", "out_features"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.batch_norm and self.arch in ("layers", "lenet5"):
            hint = "add {'type': 'batchnorm'} items" if self.arch == "layers" else "use arch 'layers'"
            raise ValueError(f"batch_norm must be unset for arch {self.arch!r} ({hint}), got True")
        if self.arch == "layers":
            _plan_layers(self.layers, self.input_shape)
        elif self.arch == "lenet5" and min(self.height, self.width) < 4:
            raise ValueError(f"lenet5 needs inputs of at least 4x4 (two 2x2 pools), got {self.height}x{self.width}")
        elif self.arch in ("vgg", "resnet", "inception"):
            self._check_stages()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.height, self.width)

    @property
    def norm(self) -> bool:
        """Whether batch norm follows each conv: the flag, else the arch's default."""
        return self.batch_norm if self.batch_norm is not None else self.arch in ("resnet", "inception")

    def _check_stages(self) -> None:
        least = 8 if self.arch == "inception" else 1  # an inception module splits its width four ways
        if not self.widths or any(w < least for w in self.widths):
            raise ValueError(f"widths must be a non-empty list of ints >= {least} for {self.arch}, got {self.widths}")
        if self.arch == "vgg":
            if self.convs_per_stage < 1:
                raise ValueError(f"convs_per_stage must be >= 1, got {self.convs_per_stage}")
            least_size = 2 ** len(self.widths)
            if min(self.height, self.width) < least_size:
                raise ValueError(
                    f"widths: vgg halves the map once per stage, so {len(self.widths)} stages need inputs of "
                    f"at least {least_size}x{least_size}, got {self.height}x{self.width}"
                )
        if self.arch == "resnet" and (len(self.blocks) != len(self.widths) or any(b < 1 for b in self.blocks)):
            raise ValueError(f"blocks must be one int >= 1 per width ({len(self.widths)}), got {self.blocks}")


# ---------------------------------------------------------------------------- layer lists


@dataclass
class _Trunk:
    """What an arch builder returns: the conv trunk and what the head needs to know."""

    features: nn.Module
    out_dim: int  # width of the flattened vector the head (or classifier) reads
    gap: bool = False
    classifier: nn.Sequential = field(default_factory=nn.Sequential)


@dataclass(frozen=True)
class _Layer:
    type: str
    args: dict[str, Any]
    in_shape: tuple[int, ...]  # one example: (C, H, W), or (D,) once flat
    out_shape: tuple[int, ...]


def _plan_layers(layers: list[Any], in_shape: tuple[int, int, int]) -> list[_Layer]:
    """Validate a layer list and trace one example's shape through it; raises ValueError
    naming the item (`layers[i]`) and the bad key, value or feature-map size."""
    if not isinstance(layers, (list, tuple)):
        raise ValueError(f"layers must be a list of mappings, got {layers!r}")
    plan, shape = [], tuple(in_shape)
    for i, item in enumerate(layers):
        where = f"layers[{i}]"
        kind, args = _layer_args(where, item)
        if len(shape) == 1 and (kind in _SPATIAL or kind in ("gap", "flatten")):
            raise ValueError(f"{where}: {kind!r} needs a (C, H, W) feature map, but an earlier item made it flat")
        out = _layer_shape(where, kind, args, shape, in_shape)
        plan.append(_Layer(kind, args, shape, out))
        shape = out
    return plan


def _layer_args(where: str, item: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(item, Mapping) or "type" not in item:
        raise ValueError(f"{where} must be a mapping with a 'type', got {item!r}")
    kind = item["type"]
    if kind not in _LAYER_KEYS:
        raise ValueError(f"{where}: unknown layer type {kind!r}; allowed: {list(_LAYER_KEYS)}")
    spec = _LAYER_KEYS[kind]
    unknown = sorted(set(item) - set(spec) - {"type"})
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} for {kind!r}; allowed: {list(spec)}")
    missing = [k for k, v in spec.items() if v is _REQUIRED and k not in item]
    if missing:
        raise ValueError(f"{where}: {kind!r} needs {missing}")
    args = {**spec, **{k: v for k, v in item.items() if k != "type"}}
    for key, value in args.items():
        if key in _POSITIVE and not (key == "stride" and value is None and kind != "conv"):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{where}.{key} must be an int >= 1, got {value!r}")
            if value < 1:
                raise ValueError(f"{where}.{key} must be >= 1, got {value}")
    if kind == "conv":
        pad = args["padding"]
        if pad != "same" and (not isinstance(pad, int) or isinstance(pad, bool) or pad < 0):
            raise ValueError(f"{where}.padding must be an int >= 0 or 'same', got {pad!r}")
        if pad == "same" and args["stride"] != 1:
            raise ValueError(f"{where}.padding 'same' needs stride 1, got stride {args['stride']}")
    if "bias" in args and not isinstance(args["bias"], bool):
        raise ValueError(f"{where}.bias must be true or false, got {args['bias']!r}")
    if "activation" in args and args["activation"] not in _ACTIVATIONS:
        raise ValueError(f"{where}.activation must be one of {list(_ACTIVATIONS)}, got {args['activation']!r}")
    if kind == "dropout":
        p = args["p"]
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
            raise ValueError(f"{where}.p must be in [0, 1), got {p!r}")
    return kind, args


def _layer_shape(
    where: str, kind: str, args: dict[str, Any], shape: tuple[int, ...], image: tuple[int, int, int]
) -> tuple[int, ...]:
    if kind in ("batchnorm", "dropout"):
        return shape
    if kind == "dense":
        return (args["units"],)
    c, h, w = shape
    if kind == "gap":
        return (c,)
    if kind == "flatten":
        return (c * h * w,)
    if kind == "conv1x1":
        return (args["filters"], h, w)
    if kind == "conv":
        c, k, s, p = args["filters"], args["kernel"], args["stride"], args["padding"]
        # torch pads an even 'same' kernel asymmetrically, which still keeps the size exactly
        size = (h, w) if p == "same" else ((h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
    else:  # maxpool, avgpool
        k = args["size"]
        s = args["stride"] or k
        size = ((h - k) // s + 1, (w - k) // s + 1)
    if min(size) < 1:
        raise ValueError(
            f"{where} ({kind}) shrinks the {h}x{w} feature map to {size[0]}x{size[1]}; "
            f"inputs are {image[1]}x{image[2]}"
        )
    return (c, *size)


def _layers_trunk(plan: list[_Layer], in_shape: tuple[int, int, int]) -> _Trunk:
    features: list[nn.Module] = []  # until the map goes flat
    classifier: list[nn.Module] = []  # after
    gap = False
    for layer in plan:
        a, flat = layer.args, len(layer.in_shape) == 1
        into = classifier if flat or layer.type == "dense" else features
        if layer.type == "conv":
            c_in = layer.in_shape[0]
            into.append(_conv2d(c_in, a["filters"], a["kernel"], a["stride"], a["padding"], a["bias"], a["activation"]))
        elif layer.type == "conv1x1":
            into.append(_conv2d(layer.in_shape[0], a["filters"], 1, bias=a["bias"], activation=a["activation"]))
        elif layer.type in ("maxpool", "avgpool"):
            pool = nn.MaxPool2d if layer.type == "maxpool" else nn.AvgPool2d
            into.append(pool(a["size"], a["stride"] or a["size"]))
        elif layer.type == "batchnorm":
            into.append(nn.BatchNorm1d(layer.in_shape[0]) if flat else nn.BatchNorm2d(layer.in_shape[0]))
        elif layer.type == "dropout":
            into.append(nn.Dropout(a["p"]))
        elif layer.type == "gap":
            gap = True
        elif layer.type == "dense":
            into.append(_linear(layer.in_shape[0] if flat else _numel(layer.in_shape), a["units"], a["activation"]))
        if layer.type in ("conv", "conv1x1", "dense") and a["activation"] != "none":
            into.append(_activation(a["activation"]))
    out = plan[-1].out_shape if plan else in_shape
    return _Trunk(nn.Sequential(*features), _numel(out), gap, nn.Sequential(*classifier))


def _lenet5_layers(height: int, width: int) -> list[dict]:
    # The 1998 net expects 32x32 inputs; each conv whose input is smaller than in that design
    # (32x32 for C1, 14x14 for C3) pads 'same' instead: 28x28 MNIST keeps the classic
    # 16x5x5 map, 8x8 digits give 16x2x2, and the 400 -> 120 -> 84 shape is kept where it can be.
    pad1 = "same" if min(height, width) < 32 else 0
    h, w = ((height, width) if pad1 else (height - 4, width - 4))
    pad2 = "same" if min(h // 2, w // 2) < 14 else 0
    return [
        {"type": "conv", "filters": 6, "kernel": 5, "padding": pad1},  # C1
        {"type": "maxpool", "size": 2},  # S2
        {"type": "conv", "filters": 16, "kernel": 5, "padding": pad2},  # C3: full 6->16 connections
        {"type": "maxpool", "size": 2},  # S4
        {"type": "flatten"},
        {"type": "dense", "units": 120},  # C5
        {"type": "dense", "units": 84},  # F6; the head replaces the RBF output layer
    ]


def _list_trunk(config: CNNConfig) -> _Trunk:
    layers = config.layers if config.arch == "layers" else _lenet5_layers(config.height, config.width)
    return _layers_trunk(_plan_layers(layers, config.input_shape), config.input_shape)


# ---------------------------------------------------------------------------- vgg


def _vgg_trunk(config: CNNConfig) -> _Trunk:
    layers: list[nn.Module] = []
    c = config.in_channels
    for width in config.widths:
        for _ in range(config.convs_per_stage):
            # batch norm's shift makes the conv bias redundant
            layers.append(_conv2d(c, width, 3, padding=1, bias=not config.norm))
            if config.norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU())
            c = width
        layers.append(nn.MaxPool2d(2))
    shrink = 2 ** len(config.widths)  # each 2x2 pool floors the size in half
    return _Trunk(nn.Sequential(*layers), c * (config.height // shrink) * (config.width // shrink))


# ---------------------------------------------------------------------------- resnet


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """3x3 convolution with padding 1: keeps the size at stride 1, halves it at stride 2."""
    return _conv2d(in_planes, out_planes, 3, stride, padding=1, bias=bias)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """1x1 convolution: mixes channels, changes width, and with stride 2 subsamples."""
    return _conv2d(in_planes, out_planes, 1, stride, bias=bias)


class BasicBlock(nn.Module):
    """Two 3x3 convs plus a skip: relu(F(x) + shortcut(x)), He et al. 2015."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, batch_norm: bool = True) -> None:
        super().__init__()
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            # 1x1 projection so the shortcut matches the residual's shape (the paper's option B).
            # Registered before conv1/conv2 so conv2 is the block's last Conv2d by name.
            projection = conv1x1(inplanes, planes, stride, not batch_norm)
            self.downsample = nn.Sequential(projection, _norm(planes, batch_norm))
        self.conv1 = conv3x3(inplanes, planes, stride, not batch_norm)
        self.bn1 = _norm(planes, batch_norm)
        self.relu = nn.ReLU()  # not in-place: Grad-CAM's backward hooks reject in-place edits of outputs
        self.conv2 = conv3x3(planes, planes, 1, not batch_norm)
        self.bn2 = _norm(planes, batch_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)  # (B, planes, H', W')
        out = self.relu(self.bn1(self.conv1(x)))  # (B, planes, H', W')
        out = self.bn2(self.conv2(out))  # (B, planes, H', W')
        return self.relu(out + identity)


def _make_layer(inplanes: int, planes: int, blocks: int, stride: int, batch_norm: bool) -> nn.Sequential:
    layers = [BasicBlock(inplanes, planes, stride, batch_norm)]
    layers += [BasicBlock(planes, planes, 1, batch_norm) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def _resnet_trunk(config: CNNConfig) -> _Trunk:
    bn, widths = config.norm, config.widths
    # CIFAR-style stem (one 3x3 conv, no 7x7/stride-2/max-pool): inputs here are 8x8 to 32x32
    stem = nn.Sequential(conv3x3(config.in_channels, widths[0], 1, not bn), _norm(widths[0], bn), nn.ReLU())
    stages: list[tuple[str, nn.Module]] = [("stem", stem)]
    inplanes = widths[0]
    for i, (planes, blocks) in enumerate(zip(widths, config.blocks)):
        # every stage after the first halves the map and widens it
        stages.append((f"layer{i + 1}", _make_layer(inplanes, planes, blocks, 1 if i == 0 else 2, bn)))
        inplanes = planes
    return _Trunk(nn.Sequential(OrderedDict(stages)), inplanes, gap=True)


# ---------------------------------------------------------------------------- inception


class BasicConv2d(nn.Module):
    """Conv -> [BatchNorm] -> ReLU, the unit of every inception branch."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, padding: int = 0, batch_norm: bool = True
    ) -> None:
        super().__init__()
        self.conv = _conv2d(in_channels, out_channels, kernel, padding=padding, bias=not batch_norm)
        self.bn = _norm(out_channels, batch_norm)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))  # (B, out_channels, H, W)


class Inception(nn.Module):
    """GoogLeNet's module: four branches at one resolution, concatenated on channels. The 1x1
    bottlenecks before the 3x3 and 5x5 convs cut their multiplies by in/reduced channels."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool = True) -> None:
        super().__init__()
        ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj = _inception_widths(out_channels)
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1, batch_norm=batch_norm)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, 1, batch_norm=batch_norm),
            BasicConv2d(ch3x3red, ch3x3, 3, padding=1, batch_norm=batch_norm),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, 1, batch_norm=batch_norm),
            BasicConv2d(ch5x5red, ch5x5, 5, padding=2, batch_norm=batch_norm),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1), BasicConv2d(in_channels, pool_proj, 1, batch_norm=batch_norm)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, 1)  # (B, out_channels, H, W)


def _inception_widths(width: int) -> tuple[int, int, int, int, int, int]:
    # GoogLeNet 3a's proportions (64 | 96->128 | 16->32 | 32 of 256): 1/4, 1/2, 1/8, the rest
    ch1x1, ch3x3, ch5x5 = width // 4, width // 2, width // 8
    return ch1x1, 3 * width // 8, ch3x3, max(1, width // 16), ch5x5, width - ch1x1 - ch3x3 - ch5x5


def _inception_trunk(config: CNNConfig) -> _Trunk:
    bn, widths = config.norm, config.widths
    stages: list[tuple[str, nn.Module]] = [("stem", BasicConv2d(config.in_channels, widths[0], 3, 1, bn))]
    inplanes = widths[0]
    for i, width in enumerate(widths):
        if i > 0:
            # 3x3/2 with padding 1 halves the map and never shrinks it below 1x1
            stages.append((f"pool{i}", nn.MaxPool2d(3, stride=2, padding=1)))
        stages.append((f"inception{i + 1}", Inception(inplanes, width, bn)))
        inplanes = width
    return _Trunk(nn.Sequential(OrderedDict(stages)), inplanes, gap=True)


# ---------------------------------------------------------------------------- model


_TRUNKS: dict[str, Callable[[CNNConfig], _Trunk]] = {
    "layers": _list_trunk,
    "lenet5": _list_trunk,
    "vgg": _vgg_trunk,
    "resnet": _resnet_trunk,
    "inception": _inception_trunk,
}


@register("cnn")
class CNN(nn.Module):
    """features -> avgpool -> flatten -> classifier -> dropout -> head; returns logits."""

    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        self.config = config
        trunk = _TRUNKS[config.arch](config)
        self.features = trunk.features
        self.avgpool = nn.AdaptiveAvgPool2d(1) if trunk.gap else nn.Identity()
        self.classifier = trunk.classifier
        self.drop = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.head = _linear(trunk.out_dim, config.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, C', H', W')
        x = torch.flatten(self.avgpool(x), 1)  # (B, C') after GAP, else (B, C'·H'·W')
        x = self.classifier(x)  # (B, D)
        return self.head(self.drop(x))  # (B, out_features) logits


def _conv2d(
    in_channels: int, out_channels: int, kernel: int, stride: int = 1, padding: int | str = 0,
    bias: bool = True, activation: str = "relu",
) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding, bias=bias)
    _init(conv, activation)
    return conv


def _linear(in_features: int, out_features: int, activation: str = "relu") -> nn.Linear:
    linear = nn.Linear(in_features, out_features)
    _init(linear, activation)
    return linear


def _init(module: nn.Conv2d | nn.Linear, activation: str) -> None:
    if activation in ("tanh", "sigmoid"):
        # Glorot: std √(2/(fan_in+fan_out)) balances forward and backward variance for saturating units
        nn.init.xavier_normal_(module.weight)
    else:
        # He: std √(2/fan_in), fan_in = in_channels·k·k; ReLU zeroes half its inputs, so the
        # factor 2 keeps the activation variance constant through a deep stack
        nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def _norm(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


def _activation(name: str) -> nn.Module:
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01)
    assert name == "relu", name  # _layer_args validated the name
    return nn.ReLU()


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# ---------------------------------------------------------------------------- inspection


def conv_output_size(n: int, kernel: int, padding: int = 0, stride: int = 1) -> int:
    """Output side of a conv or pool: floor((n + 2p - f) / s) + 1; ValueError if it is < 1."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    out = (n + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise ValueError(
            f"a {kernel}x{kernel} kernel with padding {padding} and stride {stride} does not fit a side of {n}: "
            f"output size {out}"
        )
    return out


def last_conv_name(model: nn.Module) -> str:
    """Dotted name of the model's last nn.Conv2d (registration order), for Grad-CAM hooks.
    For CAM itself hook `features`: its output is exactly the map GAP averages."""
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no nn.Conv2d layer")
    return names[-1]
