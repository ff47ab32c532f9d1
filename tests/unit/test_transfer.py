"""Transfer learning: weights from a bundle of our own, a new head, frozen layers, a scaled rate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from components.config import InitFrom
from components.data.modalities import tabular_info
from components.models import build
from components.training.loop import loop_config, train_model
from components.training.transfer import load_pretrained, param_groups, pretrained_init
from tests.unit.test_loop import MemorySession

SOURCE = {"kind": "mlp", "params": {"hidden": [8, 8]}}


def _source_weights(tmp_path, out_features: int = 3) -> str:
    source = build(SOURCE, tabular_info("classification", 2, out_features))
    path = str(tmp_path / "model.safetensors")
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, path)
    return path


def _init(weights: str, **settings) -> dict:
    return pretrained_init(InitFrom(model="src", **settings), weights, "src v1")


def test_weights_are_loaded_the_head_replaced_and_prefixes_frozen(tmp_path):
    weights = _source_weights(tmp_path)
    target = build(SOURCE, tabular_info("classification", 2, 1))  # binary here: the source had 3 classes
    loaded = load_pretrained(target, _init(weights, freeze=["blocks.0"]))
    source = load_file(weights)
    assert loaded == {"blocks.0.linear.weight", "blocks.0.linear.bias", "blocks.1.linear.weight", "blocks.1.linear.bias"}
    for name in loaded:
        torch.testing.assert_close(target.state_dict()[name], source[name])
    assert target.head.weight.shape == (1, 8)  # sized for this data, not copied
    frozen = {n for n, p in target.named_parameters() if not p.requires_grad}
    assert frozen == {"blocks.0.linear.weight", "blocks.0.linear.bias"}

    groups = param_groups(target, loaded, lr=0.01, lr_scale=0.1)
    assert [len(g["params"]) for g in groups] == [2, 2]  # the new head; the fine-tuned block
    assert "lr" not in groups[0] and groups[1]["lr"] == pytest.approx(0.001)


def test_mismatched_weights_and_unknown_prefixes_are_named(tmp_path):
    weights = _source_weights(tmp_path)
    keep_head = build(SOURCE, tabular_info("classification", 2, 1))
    with pytest.raises(ValueError, match=r"src v1: its weights do not fit .*head.weight \(3, 8\) vs \(1, 8\).*replace_head: true"):
        load_pretrained(keep_head, _init(weights, replace_head=False))
    with pytest.raises(ValueError, match=r"freeze: 'features' names no parameters; the model's layers: \['blocks', 'head'\]"):
        load_pretrained(build(SOURCE, tabular_info("classification", 2, 1)), _init(weights, freeze=["features"]))
    everything = build(SOURCE, tabular_info("classification", 2, 1))
    loaded = load_pretrained(everything, _init(weights, freeze=["blocks", "head"]))
    with pytest.raises(ValueError, match="froze every parameter"):
        param_groups(everything, loaded, 0.01, 0.1)


def test_the_loop_fine_tunes_from_the_source_and_never_moves_frozen_layers(tmp_path):
    weights = _source_weights(tmp_path)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 1, (60, 2)), rng.normal(2, 1, (60, 2))]).astype(np.float32)
    y = np.repeat([0, 1], 60).astype(np.int64)
    config = loop_config(SOURCE, {"epochs": 3, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.05}},
                         tabular_info("classification", 2, 1), init_from=_init(weights, freeze=["blocks.0"]))
    session = MemorySession(x, y)
    train_model(config, session)
    trained, source = load_file(f"{session.checkpoints[-1]}/model.safetensors"), load_file(weights)
    torch.testing.assert_close(trained["blocks.0.linear.weight"], source["blocks.0.linear.weight"])  # frozen
    assert not torch.allclose(trained["blocks.1.linear.weight"], source["blocks.1.linear.weight"])  # fine-tuned
    assert session.reports[-1]["val_accuracy"] >= 0.95
