"""Seeing inside an image classifier: first-layer filters, activation maps, saliency, CAM,
Grad-CAM and activation maximisation, and PNG renderings of each.

Every function takes any `nn.Module` mapping (B, C, H, W) float images to logits (B, K).
A binary model with one logit (B, 1) is read as the score of class 1, and its negative as
the score of class 0, so classes {0, 1} are valid targets and the predicted class is
`logit > 0`. Functions run the model in eval mode and put back each module's mode after;
gradients are taken with `torch.autograd.grad`, so no `.grad` is ever written to the model.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from PIL import Image
from torch import nn

from components.evaluation.figures import png

ArrayLike = torch.Tensor | np.ndarray


# --- what the network computes ------------------------------------------------------


def first_layer_filters(model: nn.Module) -> np.ndarray:
    """The weights (F, C, kh, kw) of the first `nn.Conv2d` in module order, as a copy."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            # a copy: a caller editing the array must not edit the model
            return module.weight.detach().cpu().numpy().copy()  # (F, C, kh, kw)
    raise ValueError(f"model must contain an nn.Conv2d, got {type(model).__name__} with none")


def activation_maps(model: nn.Module, x: ArrayLike, layer: str) -> np.ndarray:
    """The output (C_out, h, w) of the module named `layer` for one image (1, C, H, W) or (C, H, W)."""
    x = torch.as_tensor(x)
    if x.ndim == 3:
        x = x[None]  # (1, C, H, W)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"x must be one image (1, C, H, W) or (C, H, W), got shape {tuple(x.shape)}")
    with _inspecting(model), torch.no_grad(), _captured(model, layer) as store:
        model(_placed(model, x))
    return store[0][0].cpu().numpy()  # (C_out, h, w)


def saliency(model: nn.Module, x: ArrayLike, target: ArrayLike | None = None) -> np.ndarray:
    """|d score_target / d x|, max over channels: (B, H, W). `target` (B,) None = predicted class."""
    x = _images(x)
    with _inspecting(model):
        x = _placed(model, x).requires_grad_(True)  # (B, C, H, W)
        logits = model(x)  # (B, K)
        scores = _class_scores(logits, _targets(logits, target))  # (B,)
        # samples are independent in eval mode, so one backward of the sum gives every sample's gradient
        (grad,) = torch.autograd.grad(scores.sum(), x)  # (B, C, H, W)
    return grad.abs().amax(dim=1).cpu().numpy()  # (B, H, W)


def cam(model: nn.Module, x: ArrayLike, target: ArrayLike | None = None, *, layer: str,
        head: str = "head") -> np.ndarray:
    """Class Activation Mapping (Zhou et al. 2016) of a global-average-pooling model: (B, H, W) in [0, 1].

    `layer` is the last conv block, whose output (B, C, h, w) is averaged into the linear `head`;
    the map is ReLU(sum_k w[target, k] A_k), upsampled bilinearly to (H, W), scaled per image.
    The head's bias is left out: it shifts every position alike.
    """
    x = _images(x)
    linear = _gap_head(model, head)
    with _inspecting(model), torch.no_grad(), _captured(model, layer) as store:
        logits = model(_placed(model, x))  # (B, K)
        t = _targets(logits, target)  # (B,)
    acts = store[0]  # (B, C, h, w)
    if linear.in_features != acts.shape[1]:
        raise ValueError(f"cam needs a global-average-pooling model: head {head!r} must take the "
                         f"{acts.shape[1]} channels of layer {layer!r}, got in_features={linear.in_features}")
    weights = linear.weight.detach()  # (K, C)
    if weights.shape[0] == 1:
        weights = torch.cat([-weights, weights])  # (2, C): class 0 scores the negated logit
    maps = torch.einsum("bc,bchw->bhw", weights[t], acts)  # (B, h, w)
    return _finish(maps, x.shape[-2:])


def grad_cam_weights(model: nn.Module, x: ArrayLike, target: ArrayLike | None = None, *,
                     layer: str) -> np.ndarray:
    """Grad-CAM's channel weights (B, C_layer): the spatial mean of d score_target / d A_k."""
    _, weights = _grad_cam_parts(model, _images(x), target, layer)
    return weights.cpu().numpy()  # (B, C)


def grad_cam(model: nn.Module, x: ArrayLike, target: ArrayLike | None = None, *, layer: str) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): ReLU(sum_k w_k A_k) at `layer`, upsampled to (B, H, W) in [0, 1].

    w_k is the spatial mean of the target score's gradient w.r.t. channel k; an all-zero map stays zero.
    """
    x = _images(x)
    acts, weights = _grad_cam_parts(model, x, target, layer)
    maps = torch.einsum("bc,bchw->bhw", weights, acts)  # (B, h, w)
    return _finish(maps, x.shape[-2:])


def activation_maximisation(model: nn.Module, target_class: int, input_shape: Sequence[int], *,
                            steps: int = 100, lr: float = 0.1, l2: float = 1e-3, jitter: int = 0,
                            init: ArrayLike | None = None,
                            generator: torch.Generator | None = None) -> np.ndarray:
    """The image (C, H, W) that gradient ascent (Adam) finds for score_target - l2 * ||image||^2.

    Starts from `init` or from noise of std 0.01; `jitter` > 0 rolls the image by up to that many
    pixels each step, which discourages high-frequency patterns. The model's weights are not touched.
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
    if steps < 1 or lr <= 0 or l2 < 0 or jitter < 0:
        raise ValueError(f"need steps >= 1, lr > 0, l2 >= 0, jitter >= 0; got steps={steps}, lr={lr}, "
                         f"l2={l2}, jitter={jitter}")
    shape = tuple(int(s) for s in input_shape)
    if init is None:
        start = 0.01 * torch.randn(shape, generator=generator)  # (C, H, W); CPU, where the generator lives
    else:
        start = torch.as_tensor(init)
        if tuple(start.shape) != shape:
            raise ValueError(f"init must have input_shape {shape}, got {tuple(start.shape)}")
    with _inspecting(model):
        image = _placed(model, start[None]).requires_grad_(True)  # (1, C, H, W)
        optimiser = torch.optim.Adam([image], lr=lr)
        target = None
        for _ in range(steps):
            shifted = image
            if jitter:
                dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
                shifted = torch.roll(image, shifts=(dy, dx), dims=(2, 3))
            logits = model(shifted)  # (1, K)
            if target is None:
                target = _targets(logits, torch.tensor([target_class]), name="target_class")
            loss = l2 * image.pow(2).sum() - _class_scores(logits, target).sum()
            # autograd.grad, not backward: the model's parameters must not collect .grad
            (image.grad,) = torch.autograd.grad(loss, image)
            optimiser.step()
    return image.detach()[0].cpu().numpy()  # (C, H, W)


# --- pictures -------------------------------------------------------------------------


def render_filters(filters: np.ndarray, *, max_filters: int = 64) -> bytes:
    """A grid of first-layer filters (F, C, kh, kw) as PNG: colour when C == 3, else one grey tile
    per input channel (a row per filter). Each filter is scaled to its own range."""
    filters = np.asarray(filters, dtype=np.float64)
    if filters.ndim != 4:
        raise ValueError(f"filters must be (F, C, kh, kw), got shape {filters.shape}")
    filters = filters[:max_filters]
    n, c = filters.shape[:2]
    if c == 3:
        tiles = _unit(filters, axes=(1, 2, 3)).transpose(0, 2, 3, 1)  # (F, kh, kw, 3)
        cols = min(n, 8)
    else:
        tiles = _unit(filters, axes=(1, 2, 3)).reshape(n * c, *filters.shape[2:])  # (F*C, kh, kw)
        cols = c if c > 1 else min(n, 8)
    mosaic = _mosaic(tiles, cols)
    rows = math.ceil(len(tiles) / cols)
    fig = Figure(figsize=(min(12.0, 1.0 + 0.5 * cols), min(12.0, 1.3 + 0.5 * rows)))
    ax = fig.subplots()
    ax.imshow(mosaic, cmap="gray", interpolation="nearest", vmin=0, vmax=1)
    ax.set_title(f"first-layer filters ({n} shown)")
    ax.axis("off")
    return png(fig)


def render_maps(maps: np.ndarray, titles: Sequence[str] | None = None, *, cmap: str = "viridis",
                max_maps: int = 32) -> bytes:
    """A grid of 2-D maps (N, h, w) as PNG, each scaled to its own range; at most `max_maps` drawn."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, h, w), got shape {maps.shape}")
    titles = _titles(titles, len(maps), "maps")
    maps, titles = maps[:max_maps], titles[:max_maps]
    cols = min(len(maps), 8)
    rows = math.ceil(len(maps) / cols)
    fig = Figure(figsize=(1.6 * cols, 1.7 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, m, title in zip(axes.flat, maps, titles):
        ax.imshow(m, cmap=cmap, interpolation="nearest")
        ax.set_title(title, fontsize=8)
    return png(fig)


def render_heatmaps(images: ArrayLike, heatmaps: ArrayLike, titles: Sequence[str] | None = None, *,
                    alpha: float = 0.5, cmap: str = "jet") -> bytes:
    """PNG with a column per image: the image (B, C, H, W), raw or normalised, above it with
    its heatmap (B, H, W) laid over. Images are rescaled to [0, 1] each for display."""
    images = _displayable(images)  # (B, H, W, 3)
    heatmaps = np.asarray(heatmaps, dtype=np.float64)
    if heatmaps.shape != images.shape[:3]:
        raise ValueError(f"heatmaps must be (B, H, W) = {images.shape[:3]} to match images, "
                         f"got {heatmaps.shape}")
    titles = _titles(titles, len(images), "images")
    cols = len(images)
    fig = Figure(figsize=(1.8 * cols, 3.8))
    axes = fig.subplots(2, cols, squeeze=False)
    for j in range(cols):
        axes[0, j].imshow(images[j], interpolation="nearest")
        axes[0, j].set_title(titles[j], fontsize=8)
        axes[1, j].imshow(images[j], interpolation="nearest")
        axes[1, j].imshow(heatmaps[j], cmap=cmap, alpha=alpha, vmin=0, vmax=1, interpolation="nearest")
    for ax in axes.flat:
        ax.axis("off")
    return png(fig)


def heatmap_png(heatmap: ArrayLike, *, cmap: str = "jet") -> bytes:
    """One heatmap (H, W) with values in [0, 1] as an H x W colour PNG (values outside are clipped).

    Pillow rather than pyplot: this serves HTTP requests, possibly from several threads at once.
    """
    h = np.nan_to_num(np.asarray(heatmap, dtype=np.float64))
    if h.ndim != 2:
        raise ValueError(f"heatmap must be (H, W), got shape {h.shape}")
    rgba = matplotlib.colormaps[cmap](np.clip(h, 0.0, 1.0))  # (H, W, 4) floats in [0, 1]
    buffer = io.BytesIO()
    Image.fromarray((rgba[..., :3] * 255).round().astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def visual_report(model: nn.Module, samples: ArrayLike, labels: ArrayLike, *, layer: str,
                  classes: list[str], gap_head: str | None = "head", max_images: int = 8,
                  steps: int = 30, activation_classes: Sequence[int] | None = None) -> dict[str, bytes]:
    """PNGs by file name: filters, `layer`'s activations for the first sample, saliency, Grad-CAM,
    CAM (only for a global-average-pooling model with head `gap_head`) for the predicted class of up
    to `max_images` samples, and activation maximisation (`steps` steps) for `activation_classes`
    (class indices; None: the first four classes).

    `layer` names the maps that are pooled into the head (the last conv block, after its ReLU);
    CAM is drawn only when the logits equal `gap_head` applied to their spatial mean.
    """
    x = _images(samples)[:max_images]  # (N, C, H, W)
    y = np.asarray(labels).reshape(-1)
    if len(y) < len(x):
        raise ValueError(f"labels must have one entry per sample ({len(x)}), got {len(y)}")
    with _inspecting(model), torch.no_grad():
        logits = model(_placed(model, x))  # (N, K)
    predicted = _predicted(logits).cpu().numpy()
    n_classes = 2 if logits.shape[1] == 1 else logits.shape[1]
    shown = list(range(min(n_classes, 4)) if activation_classes is None else activation_classes)
    if not shown or any(not 0 <= int(c) < n_classes for c in shown):
        raise ValueError(f"activation_classes must be class indices in [0, {n_classes}), got {list(shown)}")
    titles = [f"pred {_name(classes, p)}\ntrue {_name(classes, t)}" for p, t in zip(predicted, y)]

    maps = activation_maps(model, x[:1], layer)  # (C_out, h, w)
    images = {
        "filters.png": render_filters(first_layer_filters(model)),
        "activations.png": render_maps(maps, [f"{layer}[{k}]" for k in range(len(maps))]),
        "saliency.png": render_heatmaps(x, _unit(saliency(model, x), axes=(1, 2)), titles),
        "grad_cam.png": render_heatmaps(x, grad_cam(model, x, layer=layer), titles),
    }
    if gap_head is not None and _is_gap(model, x[:1], layer, gap_head):
        images["cam.png"] = render_heatmaps(x, cam(model, x, layer=layer, head=gap_head), titles)
    generator = torch.Generator().manual_seed(0)  # the same picture for the same model, run after run
    optimised = np.stack([activation_maximisation(model, c, tuple(x.shape[1:]), steps=steps, jitter=1,
                                                  generator=generator) for c in shown])  # (n, C, H, W)
    images["activation_max.png"] = _render_images(optimised, [_name(classes, c) for c in shown])
    return images


# --- helpers --------------------------------------------------------------------------


@contextmanager
def _inspecting(model: nn.Module) -> Iterator[None]:
    """Eval mode with autograd on (even inside `torch.inference_mode`, as in serving), then each
    module's own mode back: a model with, say, frozen batch norm returns exactly as it came."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


@contextmanager
def _captured(model: nn.Module, layer: str) -> Iterator[list[torch.Tensor]]:
    """A list that receives the output (B, C, h, w) of module `layer` during one forward pass."""
    modules = dict(model.named_modules())
    if not layer or layer not in modules:
        convs = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
        raise ValueError(f"layer must name a module of {type(model).__name__}, got {layer!r}; "
                         f"conv layers: {convs or 'none'}")
    store: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        if store:
            raise ValueError(f"layer {layer!r} runs more than once per forward pass: its maps are ambiguous")
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(f"layer {layer!r} must output feature maps (B, C, h, w), got {shape}")
        store.append(output)
        # the rest of the network gets a copy, so an in-place op after it (ReLU(inplace=True))
        # cannot overwrite the captured maps
        return output.clone()

    handle = modules[layer].register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


def _grad_cam_parts(model: nn.Module, x: torch.Tensor, target: ArrayLike | None,
                    layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The activations (B, C, h, w) of `layer` and Grad-CAM's channel weights (B, C)."""
    with _inspecting(model), _captured(model, layer) as store:
        # an input that needs grad keeps the layer in the graph even when every weight is frozen
        logits = model(_placed(model, x).requires_grad_(True))  # (B, K)
        scores = _class_scores(logits, _targets(logits, target))  # (B,)
        acts = store[0]  # (B, C, h, w)
        (grads,) = torch.autograd.grad(scores.sum(), acts, allow_unused=True)
    if grads is None:
        raise ValueError(f"layer {layer!r} does not feed the logits of {type(model).__name__}")
    return acts.detach(), grads.mean(dim=(2, 3))  # (B, C, h, w), (B, C)


def _finish(maps: torch.Tensor, size: torch.Size) -> np.ndarray:
    """ReLU, bilinear upsampling to `size` (H, W), and per-image scaling to [0, 1]: (B, H, W)."""
    maps = maps.clamp(min=0)  # (B, h, w)
    if maps.shape[-2:] != size:
        maps = F.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    return _unit(maps.cpu().numpy(), axes=(1, 2))  # (B, H, W)


def _unit(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Min-max scaling to [0, 1] over `axes`; a constant block becomes 0 rather than NaN."""
    a = np.asarray(a, dtype=np.float64)
    low, high = a.min(axis=axes, keepdims=True), a.max(axis=axes, keepdims=True)
    span = high - low
    return np.where(span > 0, (a - low) / np.where(span > 0, span, 1.0), 0.0)


def _class_scores(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Each row's score (B,) for its target class; a single logit scores class 1, its negative class 0."""
    if logits.shape[1] == 1:
        return torch.where(target == 1, logits[:, 0], -logits[:, 0])
    return logits.gather(1, target[:, None])[:, 0]


def _predicted(logits: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)


def _targets(logits: torch.Tensor, target: ArrayLike | None, name: str = "target") -> torch.Tensor:
    """Validated target classes (B,) on the logits' device; None means the predicted classes."""
    if logits.ndim != 2:
        raise ValueError(f"model must return logits (B, K), got shape {tuple(logits.shape)}")
    if target is None:
        return _predicted(logits).detach()
    t = torch.as_tensor(target).to(logits.device).long().reshape(-1)
    n_classes = 2 if logits.shape[1] == 1 else logits.shape[1]
    if t.shape[0] != logits.shape[0]:
        raise ValueError(f"{name} must have one class per image ({logits.shape[0]}), got {t.shape[0]}")
    if (t < 0).any() or (t >= n_classes).any():
        raise ValueError(f"{name} must be classes in [0, {n_classes}), got {t.tolist()}")
    return t


def _images(x: ArrayLike) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.ndim != 4:
        raise ValueError(f"x must be images (B, C, H, W), got shape {tuple(x.shape)}")
    return x


def _placed(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A fresh copy of `x` on the model's device, in its floating dtype (float32 when it has none)."""
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    device, dtype = (param.device, param.dtype) if param is not None else (x.device, torch.float32)
    return x.detach().to(device=device, dtype=dtype).clone()


def _gap_head(model: nn.Module, head: str) -> nn.Linear:
    module = dict(model.named_modules()).get(head)
    if not isinstance(module, nn.Linear):
        raise ValueError(f"head must name the nn.Linear after global average pooling in "
                         f"{type(model).__name__}, got {head!r} ({type(module).__name__})")
    return module


def _is_gap(model: nn.Module, x: torch.Tensor, layer: str, head: str) -> bool:
    """Whether the logits are `head` applied to the spatial mean of `layer`'s maps (a GAP model).

    Checked on the numbers, not on in_features alone: a hidden layer between pooling and head
    may happen to be as wide as the layer has channels.
    """
    module = dict(model.named_modules()).get(head)
    if not isinstance(module, nn.Linear):
        return False
    with _inspecting(model), torch.no_grad(), _captured(model, layer) as store:
        logits = model(_placed(model, x))  # (B, K)
    pooled = store[0].mean(dim=(2, 3))  # (B, C)
    if module.in_features != pooled.shape[1]:
        return False
    return bool(torch.allclose(module(pooled), logits, rtol=1e-4, atol=1e-5))


def _name(classes: Sequence[str], index: int) -> str:
    return classes[index] if 0 <= index < len(classes) else str(index)


def _titles(titles: Sequence[str] | None, n: int, what: str) -> list[str]:
    if titles is None:
        return [""] * n
    if len(titles) != n:
        raise ValueError(f"titles must have one entry per {what} ({n}), got {len(titles)}")
    return list(titles)


def _displayable(images: ArrayLike) -> np.ndarray:
    """Images (B, C, H, W) as RGB (B, H, W, 3) in [0, 1]: each rescaled to its own range; one
    channel becomes grey, channel counts other than 1 and 3 their mean."""
    a = np.asarray(images.detach().cpu() if isinstance(images, torch.Tensor) else images, dtype=np.float64)
    if a.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {a.shape}")
    if a.shape[1] != 3:
        a = np.repeat(a.mean(axis=1, keepdims=True), 3, axis=1)  # (B, 3, H, W)
    return _unit(a, axes=(1, 2, 3)).transpose(0, 2, 3, 1)  # (B, H, W, 3)


def _mosaic(tiles: np.ndarray, cols: int, pad: int = 1) -> np.ndarray:
    """Tiles (N, h, w) or (N, h, w, 3) laid in rows of `cols` with white gaps: one image to draw."""
    n, h, w = tiles.shape[:3]
    rows = math.ceil(n / cols)
    canvas = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, *tiles.shape[3:]))
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = tile
    return canvas


def _render_images(images: np.ndarray, titles: Sequence[str]) -> bytes:
    """A row of images (N, C, H, W), each rescaled to its own range, as PNG."""
    shown = _displayable(images)  # (N, H, W, 3)
    fig = Figure(figsize=(1.8 * len(shown), 2.0))
    axes = fig.subplots(1, len(shown), squeeze=False)
    for ax, image, title in zip(axes.flat, shown, titles):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    return png(fig)



def explain_images(model: nn.Module, x: ArrayLike) -> tuple[str, str | None, np.ndarray]:
    """Why `model` predicts what it does for images `x` (B, C, H, W): (method, layer, heatmaps
    (B, H, W) in [0, 1]). Grad-CAM on the convolutional trunk's output (`features`, after its
    activations and pooling, as the `cnn` kinds name it; else the last convolution), or
    saliency scaled to [0, 1] per image for models without convolutions; both explain the
    predicted class. Pre-activation maps make ReLU(sum w_k A_k) all zero too often."""
    layer = default_layer(model)
    if layer is not None:
        return "grad_cam", layer, grad_cam(model, x, layer=layer)
    maps = saliency(model, x)  # (B, H, W)
    peak = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1)
    return "saliency", None, np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)


def default_layer(model: nn.Module) -> str | None:
    """The layer to explain when none is named: the convolutional trunk `features` (as the
    `cnn` kinds name it, its output after activations and pooling) when it holds the
    convolutions, else the last convolution; None for a model without convolutions."""
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        return None
    return "features" if any(c.startswith("features.") for c in convs) else convs[-1]
