"""Adversarial training in the supervised step, attacks in pixel units, and the evaluation
report (robust accuracy and the visual PNGs) that build_bundle adds for image models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from components.config import AdversarialTrainingConfig, EvaluationConfig, TrainingConfig
from components.data.image_preparation import ImageState
from components.data.images import encode_png
from components.data.modalities.image import ImageProcessor
from components.data.modalities.info import DataInfo
from components.data.preprocessing import LabelIndex
from components.evaluation.adversarial import fgsm
from components.evaluation.report import check_evaluation, evaluation_report
from components.evaluation.robustness import PixelSpace, attacked_inputs, pixel_statistics, robust_metrics
from components.training.stepper import Stepper
from components.training.tasks import Supervised

INFO = DataInfo(modality="tabular", task="classification", input_shape=(3,), classes=("a", "b", "c"))


def _batch(n: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(n, 3, generator=g), "y": torch.randint(0, 3, (n,), generator=g)}


def _task(adversarial: dict | None, info: DataInfo = INFO, model: nn.Module | None = None) -> tuple[Supervised, Stepper]:
    torch.manual_seed(0)
    model = model or nn.Linear(3, 3)
    training = TrainingConfig(optimizer={"name": "sgd", "lr": 0.1}, adversarial=adversarial)
    task = Supervised(model, info, training)
    return task, Stepper(task.configure_optimizers(), precision="fp32", device=torch.device("cpu"))


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_with_ratio_one_the_step_trains_on_attacked_examples(attack):
    task, stepper = _task({"attack": attack, "eps": 0.3, "ratio": 1.0, "steps": 3})
    batch = _batch()
    clean = task.loss(task.model, batch).item()  # the weights the step starts from
    trained_on = task.training_step(batch, stepper)["loss"]
    # a linear model's loss is convex in x: a signed-gradient step of eps can only raise it
    assert trained_on > clean + 1e-3


def test_with_ratio_zero_or_no_setting_the_step_trains_on_the_clean_batch():
    batch = _batch()
    for adversarial in (None, {"eps": 0.3, "ratio": 0.0}):
        task, stepper = _task(adversarial)
        clean = task.loss(task.model, batch).item()
        assert task.training_step(batch, stepper)["loss"] == pytest.approx(clean, abs=1e-6)


def test_half_the_batch_is_attacked_and_the_rest_is_left_exactly():
    task, _ = _task({"eps": 0.2, "ratio": 0.5})
    batch = _batch(10)
    x = attacked_inputs(task.model, batch["x"], batch["y"], task.training.adversarial, task.info)
    assert torch.equal(x[5:], batch["x"][5:])
    delta = (x[:5] - batch["x"][:5]).abs()
    assert torch.allclose(delta, torch.full_like(delta, 0.2))  # FGSM moves every input by eps


def test_validation_batches_are_never_attacked():
    task, _ = _task({"eps": 0.5, "ratio": 1.0})
    batch = _batch()
    sums = task.validation_step(batch)
    clean = F.cross_entropy(task.model(batch["x"]), batch["y"]).item() * len(batch["y"])
    assert sums["loss"] == pytest.approx(clean, rel=1e-6)


def test_the_attack_leaves_the_model_mode_and_its_gradients_alone():
    model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    task, _ = _task({"eps": 0.1, "ratio": 1.0}, model=model)
    model.train()
    batch = _batch()
    attacked_inputs(model, batch["x"], batch["y"], task.training.adversarial, task.info)
    assert model.training and all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


def test_adversarial_training_needs_a_classification_task():
    info = DataInfo(modality="tabular", task="regression", input_shape=(3,))
    with pytest.raises(ValueError, match="training.adversarial needs a classification task"):
        _task({"eps": 0.1}, info=info, model=nn.Linear(3, 1))


# ------------------------------------------------------------------ pixel units


MEAN, STD = [0.3], [0.25]


def _images(n: int = 6, seed: int = 0) -> torch.Tensor:
    pixels = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))  # [0, 1)
    return (pixels - MEAN[0]) / STD[0]  # (n, 1, 8, 8) as the processor normalises


class SmallCNN(nn.Module):
    """The cnn kinds' naming: a conv trunk `features`, a linear `head` after global average pooling."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))  # (B, classes)


def test_image_attacks_move_pixels_by_eps_and_stay_valid_images():
    model = SmallCNN()
    x, y = _images(), torch.tensor([0, 1, 2, 0, 1, 2])
    settings = AdversarialTrainingConfig(eps=0.1, ratio=1.0)
    info = DataInfo(modality="image", task="classification", input_shape=(1, 6, 6), classes=("a", "b", "c"),
                    pixel_mean=tuple(MEAN), pixel_std=tuple(STD))
    attacked = attacked_inputs(model, x, y, settings, info)
    space = PixelSpace(model, MEAN, STD)
    before, after = space.pixels(x), space.pixels(attacked)
    assert after.min() >= -1e-6 and after.max() <= 1 + 1e-6  # clamped to the pixel range
    assert (after - before).abs().max() <= 0.1 + 1e-5
    # in the model's (normalised) units the step is eps / std
    assert (attacked - x).abs().max() == pytest.approx(0.1 / STD[0], rel=1e-3)
    assert torch.allclose(space(before), model(x), atol=1e-5)  # PixelSpace normalises, then runs the model


def test_pixel_statistics_come_from_the_fitted_processor():
    images = [encode_png(np.full((4, 4), v, dtype=np.uint8)) for v in (0, 255)]
    state = ImageState(ImageProcessor().fit(images), LabelIndex().fit(["a", "b"]))
    mean, std = pixel_statistics(state.info)
    assert mean == pytest.approx([0.5]) and std == pytest.approx([0.5])
    assert DataInfo.from_dict(state.info.to_dict()) == state.info  # they travel with the loop config
    raw = ImageState(ImageProcessor(normalize=False).fit(images), LabelIndex().fit(["a", "b"]))
    assert pixel_statistics(raw.info) == ([0.0], [1.0])
    tables = DataInfo(modality="tabular", task="classification", input_shape=(4,), classes=("a", "b"))
    assert pixel_statistics(tables) is None  # tables: attacked in their own units


def test_robust_metrics_are_named_per_attack_and_eps_and_eps_zero_is_clean_accuracy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))  # (B, 1, 8, 8) -> (B, 3), sensitive to every pixel
    xt = _images(40)
    with torch.no_grad():
        yt = model(xt).argmax(1)  # labels the model gets right, so an attack has something to break
    yt[::4] = (yt[::4] + 1) % 3  # and a quarter it gets wrong
    x, y = xt.numpy(), yt.numpy()
    metrics = robust_metrics(model, x, y, attacks=["fgsm", "pgd"], eps=[0.0, 0.3], pixels=(MEAN, STD),
                             pgd_steps=3)
    assert list(metrics) == ["test_fgsm_accuracy.eps_0", "test_fgsm_accuracy.eps_0.3",
                             "test_pgd_accuracy.eps_0", "test_pgd_accuracy.eps_0.3"]
    assert metrics["test_fgsm_accuracy.eps_0"] == metrics["test_pgd_accuracy.eps_0"] == pytest.approx(0.75)
    space = PixelSpace(model, MEAN, STD)
    attacked = fgsm(space, space.pixels(xt), yt, 0.3, clamp=(0.0, 1.0))  # by hand, on the [0, 1] pixels
    with torch.no_grad():
        expected = float((space(attacked).argmax(1) == yt).float().mean())
    assert metrics["test_fgsm_accuracy.eps_0.3"] == pytest.approx(expected) and expected < 0.75
    again = robust_metrics(model, x, y, attacks=["pgd"], eps=[0.3], pixels=(MEAN, STD), pgd_steps=3)
    assert again["test_pgd_accuracy.eps_0.3"] == metrics["test_pgd_accuracy.eps_0.3"]  # seeded random starts


def test_the_evaluation_report_of_an_image_model():
    model = SmallCNN()
    x, y = _images(12).numpy(), np.arange(12) % 3
    settings = EvaluationConfig(attacks=["fgsm"], eps=[0.1], visual_samples=4, activation_max_steps=3,
                                activation_max_classes=[2])
    report = evaluation_report(model, x, y, settings, classes=["a", "b", "c"], pixels=(MEAN, STD))
    assert list(report.metrics) == ["test_fgsm_accuracy.eps_0.1"]
    assert set(report.images) == {"filters.png", "activations.png", "saliency.png", "grad_cam.png", "cam.png",
                                  "activation_max.png"}
    assert all(png.startswith(b"\x89PNG") for png in report.images.values())
    # tables and estimators: no pictures, and no attacks without gradients
    assert evaluation_report(model, x, y, EvaluationConfig(), classes=["a", "b", "c"], pixels=None).images == {}
    forest = evaluation_report(object(), x, y, settings, classes=["a", "b", "c"], pixels=None)
    assert forest.metrics == {} and forest.images == {}


def test_a_model_without_global_average_pooling_gets_no_cam():
    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU())
            self.head = nn.Linear(2 * 8 * 8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.features(x).flatten(1))

    report = evaluation_report(Flat(), _images(4).numpy(), np.arange(4) % 3,
                               EvaluationConfig(activation_max_steps=2), classes=["a", "b", "c"], pixels=(MEAN, STD))
    assert "cam.png" not in report.images and "grad_cam.png" in report.images


def test_evaluation_settings_the_model_cannot_honour_are_named():
    model = SmallCNN()
    with pytest.raises(ValueError, match=r"evaluation.gradcam_layer 'conv9' names no module.*features\.0"):
        check_evaluation(EvaluationConfig(gradcam_layer="conv9"), model, 3, image=True)
    with pytest.raises(ValueError, match=r"activation_max_classes must be class indices below 3, got \[3\]"):
        check_evaluation(EvaluationConfig(activation_max_classes=[0, 3]), model, 3, image=True)
    check_evaluation(EvaluationConfig(gradcam_layer="features.0"), model, 3, image=True)  # any conv layer by name
    check_evaluation(EvaluationConfig(gradcam_layer="conv9"), model, 3, image=False)  # tables: no pictures


# ------------------------------------------------------------------ before training


def _planned(tmp_path, **sections):
    from components.config import PipelineConfig, ProfileConfig
    from components.data.silver import SilverSnapshot
    from flows.register import plan_evaluation
    from flows.workspace import Workspace

    config = PipelineConfig.model_validate({
        "name": "digits", "source": {"format": "bundled_images", "dataset": "digits"},
        "model": {"kind": "cnn", "params": {"arch": "lenet5"}}, "serving": {"name": "digits"}, **sections,
    })
    rng = np.random.default_rng(0)
    images = [encode_png(rng.integers(0, 256, (12, 12), dtype=np.uint8)) for _ in range(4)]
    state = ImageState(ImageProcessor().fit(images), LabelIndex().fit(["a", "b", "c"]))
    snapshot = SilverSnapshot({}, 0, 0, state)
    plan_evaluation.fn(Workspace(config, ProfileConfig(root=str(tmp_path))), snapshot)
    return state


def test_the_data_description_carries_the_processor_statistics_to_adversarial_training(tmp_path):
    state = _planned(tmp_path, training={"adversarial": {"eps": 0.1}})
    assert list(state.info.pixel_mean) == state.processor.mean_ and list(state.info.pixel_std) == state.processor.std_


def test_before_training_a_layer_or_class_the_model_lacks_stops_the_run(tmp_path):
    with pytest.raises(ValueError, match="evaluation.gradcam_layer 'conv9' names no module"):
        _planned(tmp_path, evaluation={"gradcam_layer": "conv9"})
    with pytest.raises(ValueError, match=r"activation_max_classes must be class indices below 3, got \[5\]"):
        _planned(tmp_path, evaluation={"activation_max_classes": [5]})
    _planned(tmp_path, evaluation={"gradcam_layer": "features"})


def test_before_training_attacks_on_an_estimator_stop_the_run(tmp_path):
    from components.config import PipelineConfig, ProfileConfig
    from components.data.silver import SilverSnapshot
    from flows.register import plan_evaluation
    from flows.workspace import Workspace
    from tests.conftest import iris_config, iris_species

    _, _, _, features, _ = iris_species()
    snapshot = SilverSnapshot({}, 0, 0, features)
    forest = PipelineConfig.model_validate(iris_config(model={"kind": "random_forest"}, evaluation={"attacks": ["fgsm"]}))
    with pytest.raises(ValueError, match="evaluation.attacks .* need the gradients of a torch kind; model.kind 'random_forest'"):
        plan_evaluation.fn(Workspace(forest, ProfileConfig(root=str(tmp_path))), snapshot)
    mlp = PipelineConfig.model_validate(iris_config(evaluation={"attacks": ["fgsm"]}, training={"adversarial": {"eps": 0.1}}))
    plan_evaluation.fn(Workspace(mlp, ProfileConfig(root=str(tmp_path))), snapshot)  # a torch kind: allowed
    assert features.info.pixel_mean is None  # tables: attacked in the model's units
