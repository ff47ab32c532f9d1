"""Seeing inside a CNN, on hand-built nets whose filters, maps and gradients are known."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from components.evaluation.visualize import (
    activation_maps,
    activation_maximisation,
    cam,
    first_layer_filters,
    grad_cam,
    grad_cam_weights,
    heatmap_png,
    render_filters,
    render_heatmaps,
    render_maps,
    saliency,
    visual_report,
)


class TinyGap(nn.Module):
    """1x1 conv: channel 0 = input, channel 1 = -input; no ReLU; GAP; head: class k reads channel k."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, kernel_size=1, bias=False)
        self.head = nn.Linear(2, 2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
            self.head.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 3.0]]))
            self.head.bias.copy_(torch.tensor([0.5, -0.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv(x)  # (B, 2, H, W)
        return self.head(a.mean(dim=(2, 3)))  # (B, 2)


class ModeProbe(nn.Module):
    """Identity that records the mode it ran in."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(self.training)
        return x


class SmallCNN(nn.Module):
    """Two conv layers (the first followed by an in-place ReLU), then GAP + linear head, or a
    flattening head when `gap` is False."""

    def __init__(self, classes: int = 3, gap: bool = True, size: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(inplace=True), ModeProbe(),
            nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        )
        self.gap = gap
        self.head = nn.Linear(4 if gap else 4 * size * size, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.features(x)  # (B, 4, H, W)
        return self.head(a.mean(dim=(2, 3)) if self.gap else a.flatten(1))  # (B, K)


def _patch_image(extra: bool = False) -> torch.Tensor:
    """A 6x6 image, zero but for a bright 2x2 patch at the top-left corner."""
    x = torch.zeros(1, 1, 6, 6)
    x[0, 0, :2, :2] = torch.tensor([[1.0, 0.8], [0.6, 0.9]])
    if extra:
        x[0, 0, 4, 4] = 0.3
    return x


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _untouched(model: nn.Module, before: dict[str, torch.Tensor]) -> bool:
    same = all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    return same and all(p.grad is None for p in model.parameters())


def _png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG")
    image = Image.open(io.BytesIO(png))
    image.load()
    return image.size


def test_grad_cam_peaks_in_the_patch_and_reads_the_target_class():
    model, x = TinyGap(), _patch_image()
    heat = grad_cam(model, x, torch.tensor([0]), layer="conv")  # (1, 6, 6)
    assert heat.shape == (1, 6, 6)
    r, c = np.unravel_index(heat[0].argmax(), (6, 6))
    assert r < 2 and c < 2
    assert np.allclose(heat[0, 3:, 3:], 0.0)
    # class 0 weights channel 0 (the image) alone: the map is the image scaled to peak 1
    assert np.allclose(heat[0], x[0, 0].numpy() / 1.0, atol=1e-6)
    # class 1 reads -image: ReLU leaves nothing, and an empty map stays zero rather than NaN
    empty = grad_cam(model, x, torch.tensor([1]), layer="conv")
    assert np.isfinite(empty).all() and np.allclose(empty, 0.0)


def test_grad_cam_weights_follow_the_formula():
    model, x = TinyGap(), _patch_image()
    # score_0 = 2 * mean(A_0) + b: d/dA_0 = 2 / (h*w) everywhere, and channel 1 is unused
    assert np.allclose(grad_cam_weights(model, x, [0], layer="conv"), [[2 / 36, 0.0]])
    assert np.allclose(grad_cam_weights(model, x, [1], layer="conv"), [[0.0, 3 / 36]])

    class SumOfChannel(nn.Module):
        """score_0 = 5 * sum(A_1), score_1 = -2 * sum(A_0) on a 3x4 map."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = self.conv(x)  # (B, 2, h, w)
            return torch.stack([5 * a[:, 1].sum((1, 2)), -2 * a[:, 0].sum((1, 2))], dim=1)  # (B, 2)

    x = torch.rand(2, 1, 3, 4)
    # d score / d A_ij is the constant itself, and its spatial mean too
    assert np.allclose(grad_cam_weights(SumOfChannel(), x, [0, 1], layer="conv"), [[0.0, 5.0], [-2.0, 0.0]])


def test_binary_model_scores_class_zero_with_the_negated_logit():
    model = TinyGap()
    with torch.no_grad():
        model.head = nn.Linear(2, 1)
        model.head.weight.copy_(torch.tensor([[4.0, 0.0]]))
    x = _patch_image()
    assert np.allclose(grad_cam_weights(model, x, [1], layer="conv"), [[4 / 36, 0.0]])
    assert np.allclose(grad_cam_weights(model, x, [0], layer="conv"), [[-4 / 36, 0.0]])
    # class 0 weights the negated channel 0 = the image's negative: CAM is empty, class 1 is the image
    assert np.allclose(cam(model, x, [0], layer="conv"), 0.0)
    assert np.allclose(cam(model, x, [1], layer="conv")[0], x[0, 0].numpy())
    with pytest.raises(ValueError, match=r"target must be classes in \[0, 2\)"):
        saliency(model, x, torch.tensor([2]))


def test_cam_is_the_normalised_channel_zero_map():
    model, x = TinyGap(), _patch_image(extra=True)
    by_hand = torch.relu(2.0 * x[0, 0]).numpy()
    by_hand = by_hand / by_hand.max()
    heat = cam(model, x, torch.tensor([0]), layer="conv")
    assert np.allclose(heat[0], by_hand, atol=1e-6)
    # the prediction is class 0 (2 * mean > -3 * mean), so no target means the same map
    assert np.allclose(cam(model, x, layer="conv"), heat)
    assert np.allclose(cam(model, x, torch.tensor([1]), layer="conv"), 0.0)


def test_cam_refuses_a_model_without_global_average_pooling():
    model = SmallCNN(gap=False)
    with pytest.raises(ValueError, match="global-average-pooling.*in_features=256"):
        cam(model, torch.rand(1, 1, 8, 8), layer="features.4")
    with pytest.raises(ValueError, match="head must name the nn.Linear"):
        cam(model, torch.rand(1, 1, 8, 8), layer="features.4", head="features")


def test_cam_upsamples_a_smaller_layer_to_the_input():
    model = nn.Sequential(nn.Conv2d(1, 3, 2, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    torch.manual_seed(0)
    heat = cam(model, torch.rand(2, 1, 8, 8), layer="0", head="3")
    assert heat.shape == (2, 8, 8) and heat.min() >= 0
    # each image's map is scaled to [0, 1] on its own (an all-zero map stays zero)
    assert all(h.max() == pytest.approx(1.0) or not h.any() for h in heat)


def test_saliency_of_a_linear_model_is_its_weight_pattern():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, 3))
    x = torch.rand(2, 2, 3, 3)
    w = model[1].weight.detach().view(3, 2, 3, 3)  # (K, C, H, W)
    by_hand = w.abs().amax(dim=1).numpy()  # (K, H, W)
    assert np.allclose(saliency(model, x, torch.tensor([0, 2])), by_hand[[0, 2]])
    predicted = model(x).argmax(dim=1).numpy()
    assert np.allclose(saliency(model, x), by_hand[predicted])


def test_activation_maps_and_filters():
    model, x = TinyGap(), _patch_image()
    maps = activation_maps(model, x, "conv")
    assert np.allclose(maps, np.stack([x[0, 0].numpy(), -x[0, 0].numpy()]))
    assert np.allclose(activation_maps(model, x[0], "conv"), maps)  # (C, H, W) accepted too
    filters = first_layer_filters(model)
    assert filters.shape == (2, 1, 1, 1) and np.array_equal(filters, model.conv.weight.detach().numpy())
    filters[:] = 0  # a copy: the model keeps its weights
    assert model.conv.weight[0, 0, 0, 0].item() == 1.0


def test_activation_maps_are_captured_before_a_following_inplace_relu():
    model, x = SmallCNN(), torch.randn(1, 1, 8, 8)
    conv = model.features[0]
    by_hand = torch.nn.functional.conv2d(x, conv.weight, conv.bias, padding=1)[0].detach().numpy()
    maps = activation_maps(model, x, "features.0")
    assert (maps < 0).any() and np.allclose(maps, by_hand, atol=1e-6)


def test_bad_layer_names_and_missing_convs_are_explained():
    model = SmallCNN()
    with pytest.raises(ValueError, match=r"got 'features\.9'.*\['features\.0', 'features\.3'\]"):
        activation_maps(model, torch.rand(1, 1, 8, 8), "features.9")
    with pytest.raises(ValueError, match="must output feature maps"):
        grad_cam(model, torch.rand(1, 1, 8, 8), layer="head")
    with pytest.raises(ValueError, match=r"one image .* got shape \(2, 1, 8, 8\)"):
        activation_maps(model, torch.rand(2, 1, 8, 8), "features.0")
    with pytest.raises(ValueError, match="Sequential with none"):
        first_layer_filters(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))


def test_explanations_run_in_eval_mode_and_leave_the_model_as_it_was():
    model = SmallCNN()
    model.train()
    model.features[0].eval()  # a per-module mode must come back too
    probe: ModeProbe = model.features[2]
    before = _snapshot(model)
    x = torch.rand(2, 1, 8, 8)
    saliency(model, x)
    grad_cam(model, x, layer="features.3")
    cam(model, x, layer="features.3")
    activation_maps(model, x[:1], "features.3")
    activation_maximisation(model, 1, (1, 8, 8), steps=3)
    assert probe.seen and not any(probe.seen)
    assert model.training and model.features[2].training and not model.features[0].training
    assert _untouched(model, before)


def test_explanations_work_inside_inference_mode():
    model, x = TinyGap(), _patch_image()
    with torch.inference_mode():
        heat = grad_cam(model, x, layer="conv")
    assert np.allclose(heat[0], x[0, 0].numpy())


def test_activation_maximisation_finds_the_penalised_optimum_of_a_linear_model():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    w = model[1].weight.detach()[2].view(1, 4, 4).numpy()
    before = _snapshot(model)
    image = activation_maximisation(model, 2, (1, 4, 4), steps=100, lr=0.1, l2=0.05,
                                    generator=torch.Generator().manual_seed(0))
    # max w.x - l2 ||x||^2 is reached at x = w / (2 l2)
    assert image.shape == (1, 4, 4) and np.allclose(image, w / 0.1, atol=0.05)
    assert _untouched(model, before)


def test_activation_maximisation_raises_the_target_score():
    model = SmallCNN()
    before = _snapshot(model)
    start = 0.01 * torch.randn(1, 8, 8, generator=torch.Generator().manual_seed(1))
    image = activation_maximisation(model, 2, (1, 8, 8), steps=20, jitter=1, init=start,
                                    generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        gain = model(torch.as_tensor(image)[None])[0, 2] - model(start[None])[0, 2]
    assert gain > 0.02  # a small random net: its scores move little
    assert _untouched(model, before)
    with pytest.raises(ValueError, match=r"target_class must be classes in \[0, 3\)"):
        activation_maximisation(model, 3, (1, 8, 8), steps=1)


def test_renderings_are_pngs_of_the_expected_size():
    rng = np.random.default_rng(0)
    for shape in [(4, 3, 3, 3), (4, 1, 5, 5), (2, 5, 3, 3)]:
        assert _png_size(render_filters(rng.normal(size=shape))) > (50, 50)
    assert _png_size(render_maps(rng.random((4, 6, 6)), ["a", "b", "c", "d"])) == (640, 170)  # 4 tiles in a row
    assert _png_size(render_maps(rng.random((10, 6, 6)))) == (1280, 340)  # rows of 8
    images, heat = rng.normal(size=(3, 3, 8, 8)), rng.random((3, 8, 8))
    assert _png_size(render_heatmaps(images, heat, ["x", "y", "z"])) == (540, 380)
    with pytest.raises(ValueError, match=r"heatmaps must be \(B, H, W\) = \(3, 8, 8\)"):
        render_heatmaps(images, heat[:, :4])


def test_heatmap_png_is_the_heatmap_in_colour():
    h = np.zeros((5, 7))
    h[0, 0] = 1.0
    png = heatmap_png(h)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (7, 5)
    hot, cold = image.getpixel((0, 0)), image.getpixel((6, 4))
    assert hot[0] > hot[2] and cold[2] > cold[0]  # jet: red high, blue low


def test_visual_report_has_cam_only_for_gap_models():
    x, y = torch.rand(2, 1, 8, 8), np.array([0, 2])
    names = ["cat", "dog", "fox"]
    # "features" ends in the ReLU whose maps are pooled into the head
    report = visual_report(SmallCNN(), x, y, layer="features", classes=names, steps=3)
    assert set(report) == {"filters.png", "activations.png", "saliency.png", "grad_cam.png", "cam.png",
                           "activation_max.png"}
    assert all(png.startswith(b"\x89PNG") for png in report.values())
    flat = visual_report(SmallCNN(gap=False), x, y, layer="features", classes=names, steps=3)
    assert set(flat) == set(report) - {"cam.png"}
    # the conv before that ReLU has the head's width, but its maps are not what is pooled
    assert "cam.png" not in visual_report(SmallCNN(), x, y, layer="features.3", classes=names, steps=3)
    with pytest.raises(ValueError, match="labels must have one entry per sample"):
        visual_report(SmallCNN(), x, y[:1], layer="features", classes=names)
