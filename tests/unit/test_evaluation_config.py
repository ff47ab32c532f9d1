"""The evaluation, registry.gates and training.adversarial sections: defaults, and every bad
value stopping the load (exit 2 from the CLI) with its key path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from components.config import ConfigError, load_pipeline, robust_metric
from tests.conftest import iris_config, write_config

ROOT = Path(__file__).resolve().parents[2]


def _error(tmp_path: Path, config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_pipeline(write_config(tmp_path, config))
    return str(info.value)


def _digits(**sections) -> dict:
    return {"name": "digits", "source": {"format": "bundled_images", "dataset": "digits"},
            "model": {"kind": "cnn", "params": {"arch": "lenet5"}}, "serving": {"name": "digits"}, **sections}


def test_defaults_draw_pictures_attack_nothing_and_gate_nothing(tmp_path):
    config = load_pipeline(write_config(tmp_path, iris_config()))
    assert config.evaluation.visual and config.evaluation.gradcam_layer is None
    assert config.evaluation.attacks == [] and config.evaluation.robust_metrics == []
    assert config.registry.gates == {} and config.training.adversarial is None


def test_a_full_example_loads(tmp_path):
    config = load_pipeline(write_config(tmp_path, _digits(
        evaluation={"visual": True, "gradcam_layer": "features.3", "activation_max_classes": [0, 7],
                    "attacks": ["fgsm", "pgd"], "eps": [0.05, 0.1], "pgd_steps": 5, "pgd_step_size": 0.03,
                    "attack_samples": 300},
        registry={"gates": {"test_accuracy": {"min": 0.95}, "test_pgd_accuracy.eps_0.1": {"min": 0.2},
                            "val_loss": {"max": 0.5}}},
        training={"adversarial": {"attack": "pgd", "eps": 0.1, "ratio": 0.5, "steps": 3}},
    )))
    assert config.evaluation.robust_metrics == [
        "test_fgsm_accuracy.eps_0.05", "test_fgsm_accuracy.eps_0.1",
        "test_pgd_accuracy.eps_0.05", "test_pgd_accuracy.eps_0.1",
    ]
    assert config.registry.gates["val_loss"].max == 0.5 and config.registry.gates["val_loss"].min is None
    assert config.training.adversarial.attack == "pgd"


def test_metric_names_are_ones_mlflow_accepts():
    from mlflow.utils.validation import _validate_metric_name

    for attack, eps in (("fgsm", 0.1), ("pgd", 0.05), ("fgsm", 0), ("pgd", 1e-5)):
        _validate_metric_name(robust_metric(attack, eps))
    assert robust_metric("fgsm", 0.1) == "test_fgsm_accuracy.eps_0.1"


@pytest.mark.parametrize(("section", "says"), [
    ({"evaluation": {"gradcam_layer": 3}}, "evaluation.gradcam_layer: Input should be a valid string"),
    ({"evaluation": {"gradcam_layer": ""}}, "evaluation.gradcam_layer: String should have at least 1 character"),
    ({"evaluation": {"visual": "maybe"}}, "evaluation.visual"),
    ({"evaluation": {"attacks": ["fgsm", "cw"]}}, "evaluation.attacks.1: Input should be 'fgsm' or 'pgd'"),
    ({"evaluation": {"attacks": ["fgsm", "fgsm"]}}, "evaluation.attacks: must not repeat an entry"),
    ({"evaluation": {"eps": [0.1, -0.1]}}, "evaluation.eps: every eps must be a finite number >= 0"),
    ({"evaluation": {"eps": []}}, "evaluation.eps: List should have at least 1 item"),
    ({"evaluation": {"eps": [0.1, 0.10]}}, "evaluation.eps: must not repeat an eps"),
    ({"evaluation": {"pgd_steps": 0}}, "evaluation.pgd_steps"),
    ({"evaluation": {"pgd_step_size": 0}}, "evaluation.pgd_step_size"),
    ({"evaluation": {"activation_max_classes": [-1]}}, "evaluation.activation_max_classes.0"),
    ({"evaluation": {"activation_max_classes": ["1"]}}, "evaluation.activation_max_classes.0"),
    ({"evaluation": {"attack_samples": 0}}, "evaluation.attack_samples"),
    ({"evaluation": {"atacks": ["fgsm"]}}, "evaluation.atacks: Extra inputs are not permitted"),
    ({"registry": {"gates": {"test_accuracy": {}}}}, "registry.gates.test_accuracy: a gate needs min, max or both"),
    ({"registry": {"gates": {"test_accuracy": {"min": 0.9, "max": 0.8}}}}, "min must be <= max"),
    ({"registry": {"gates": {"test_accuracy": {"minimum": 0.9}}}}, "registry.gates.test_accuracy.minimum: Extra"),
    ({"registry": {"gates": {"test_accuracy": {"min": "high"}}}}, "registry.gates.test_accuracy.min"),
    ({"registry": {"gates": {"accuracy": {"min": 0.9}}}}, "registry.gates: gates are on the bundle's val_* and test_*"),
    ({"registry": {"gates": {"test_fgsm_accuracy.eps_0.3": {"min": 0.5}}}, "evaluation": {"attacks": ["fgsm"]}},
     "registry.gates.test_fgsm_accuracy.eps_0.3: evaluation computes no such metric"),
    ({"registry": {"gates": {"test_pgd_accuracy@0.1": {"min": 0.5}}}}, "evaluation computes no such metric"),
    ({"registry": {"gate": {}}}, "registry.gate: Extra inputs are not permitted"),
    ({"training": {"adversarial": {"attack": "fgsm"}}}, "training.adversarial.eps: required key is missing"),
    ({"training": {"adversarial": {"eps": 0.1, "ratio": 1.5}}}, "training.adversarial.ratio"),
    ({"training": {"adversarial": {"eps": 0.1, "attack": "cw"}}}, "training.adversarial.attack"),
    ({"training": {"adversarial": {"eps": 0.1, "steps": 0}}}, "training.adversarial.steps"),
    ({"training": {"adversarial": {"eps": 0.1, "pixel_mean": [0.5]}}}, "training.adversarial.pixel_mean"),
])
def test_bad_values_stop_the_load_with_their_key_path(tmp_path, section, says):
    assert says in _error(tmp_path, _digits(**section))


def test_attacks_and_adversarial_training_need_a_classification_task(tmp_path):
    config = iris_config()
    config["schema"]["task"] = "regression"
    config["split"]["stratify"] = False
    config["evaluation"] = {"attacks": ["fgsm"]}
    assert "evaluation.attacks measure accuracy: they need a classification task" in _error(tmp_path, config)
    del config["evaluation"]
    config["training"]["adversarial"] = {"eps": 0.1}
    assert "training.adversarial needs a classification task" in _error(tmp_path, config)


def test_the_cli_exits_2_on_a_bad_gate_before_anything_runs(tmp_path, monkeypatch):
    from flows.cli import app

    monkeypatch.chdir(tmp_path)
    config = iris_config(registry={"gates": {"test_accuracy": {"min": "high"}}})
    path = write_config(tmp_path, config)
    before = sorted(os.listdir(tmp_path))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "registry.gates.test_accuracy.min" in result.output and "'high'" in result.output
    assert sorted(os.listdir(tmp_path)) == before


def test_a_search_may_tune_the_adversarial_settings(tmp_path):
    from components.config_check import load_checked

    config = _digits(training={"adversarial": {"eps": 0.1}},
                     tuning={"space": {"training.adversarial.eps": {"choice": [0.05, 0.1]}}})
    assert load_checked(write_config(tmp_path, config)).tuning.space["training.adversarial.eps"].choice == [0.05, 0.1]
    config["tuning"]["space"] = {"training.adversarial.eps": {"choice": [0.05, -1]}}
    with pytest.raises(ConfigError, match="tuning.space.training.adversarial.eps: value -1 is not valid"):
        load_checked(write_config(tmp_path, config))


def test_the_mnist_example_attacks_draws_and_gates():
    config = load_pipeline(ROOT / "conf" / "pipelines" / "mnist_cnn.yaml")
    assert config.evaluation.visual and set(config.evaluation.attacks) == {"fgsm", "pgd"}
    assert "test_accuracy" in config.registry.gates
