"""Config loading: a bad file fails at load with file, key path, value and what is allowed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from components.config import ConfigError, PipelineConfig, apply_overrides, load_pipeline, load_profile
from tests.conftest import iris_config, write_config

ROOT = Path(__file__).resolve().parents[2]


def _error(tmp_path: Path, config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_pipeline(write_config(tmp_path, config))
    return str(info.value)


def test_quickstart_config_loads():
    config = load_pipeline(ROOT / "conf" / "pipelines" / "quickstart.yaml")
    assert config.source.dataset == "breast_cancer"
    assert len(config.schema_.features) == 30
    assert config.tuning is not None and config.tuning.scheduler == "asha"
    assert config.training.num_workers == 1


@pytest.mark.parametrize("path", sorted((ROOT / "conf" / "pipelines").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_pipeline_loads_and_builds(path):
    import torch
    import torch.nn as nn

    from components.config_check import load_checked, planned_info
    from components.models import WORD_VECTOR_TASKS, build, training_task

    config = load_checked(path)
    info = planned_info(config)
    extra = {}
    if config.model.kind == "ensemble" and config.tuning and config.tuning.families:
        extra["members"] = [{"kind": kind} for kind in config.tuning.families]  # what the search will pick from
    specs = [(config.model, extra)] + [({"kind": k}, {}) for k in (config.tuning.families if config.tuning else {})]
    for spec, params in specs:
        model = build(spec, info, **params)
        if isinstance(model, nn.Module):  # a torch kind answers a batch of the planned inputs
            width = spec.params["embedding_dim"] if training_task(spec) == "metric_learning" else info.out_features
            x = torch.ones(2, *info.input_shape)
            if training_task(spec) in WORD_VECTOR_TASKS:  # a vector per word
                assert model(x).shape == (2, *info.input_shape, spec.params["embed_dim"])
                continue
            if training_task(spec) == "seq2seq":  # the decoder reads the target so far: 5 tokens here
                assert model(x, torch.ones(2, 5)).shape == (2, 5, width)
                continue
            # a tagger and a language model answer each of a sequence's tokens
            per_token = training_task(spec) in ("tagging", "language_model")
            shape = (2, *info.input_shape, width) if per_token else (2, width)
            assert model(x).shape == shape
        else:  # an estimator keeps its params unchanged (scikit-learn's contract)
            assert all(model.get_params()[k] == v for k, v in dict(spec.params if hasattr(spec, "params") else {}).items()
                       if k in model.get_params())


def test_unknown_key_is_named_with_its_path(tmp_path):
    config = iris_config()
    config["training"]["optimzer"] = {"lr": 0.1}
    message = _error(tmp_path, config)
    assert "iris.yaml" in message and "training.optimzer" in message and "Extra inputs" in message


def test_wrong_type_and_value(tmp_path):
    config = iris_config()
    config["training"]["epochs"] = "many"
    config["schema"]["columns"]["sepal_length_cm"] = "floaty"
    message = _error(tmp_path, config)
    assert "training.epochs" in message and "'many'" in message
    assert "schema.columns.sepal_length_cm.type" in message and "'float', 'int', 'str' or 'bool'" in message


def test_split_ratios_must_sum_to_one(tmp_path):
    config = iris_config()
    config["split"]["ratios"] = {"train": 0.7, "val": 0.3, "test": 0.1}
    assert "split.ratios: must sum to 1.0, got 1.1" in _error(tmp_path, config)


def test_cross_field_checks(tmp_path):
    config = iris_config()
    config["schema"]["target"] = "species"
    assert "target 'species' is not one of the declared columns" in _error(tmp_path, config)
    config = iris_config()
    config["preprocessing"] = {"one_hot": ["colour"]}
    assert "undeclared feature columns ['colour']" in _error(tmp_path, config)
    config = iris_config()
    config["tuning"] = {"space": {"epochs": {"choice": [1, 2]}}}
    assert "must start with 'model.' or 'training.'" in _error(tmp_path, config)
    config = iris_config()
    config["source"] = {"format": "sklearn"}
    assert "needs 'dataset'" in _error(tmp_path, config)
    config = iris_config()
    config["schema"]["columns"]["colour"] = "str"
    assert "str feature columns ['colour'] must be listed in preprocessing.one_hot" in _error(tmp_path, config)
    config = iris_config()
    config["schema"]["columns"]["_row"] = "int"
    assert "reserved for row metadata" in _error(tmp_path, config)


def test_stream_section_is_checked(tmp_path):
    config = iris_config()
    config["stream"] = {"schema_evolution": "merge", "max_files_per_batch": 0}
    message = _error(tmp_path, config)
    assert "stream.schema_evolution" in message and "'fail', 'add_new_columns', 'rescue' or 'ignore'" in message
    assert "stream.max_files_per_batch" in message
    config = iris_config(source={"format": "bundled_images", "dataset": "digits"}, stream={"schema_evolution": "rescue"})
    del config["schema"]
    assert "stream.schema_evolution is for table sources" in _error(tmp_path, config)


def test_kfold_takes_validation_from_the_folds(tmp_path):
    config = iris_config()
    config["split"] = {"method": "holdout", "ratios": {"train": 0.8, "val": 0.0, "test": 0.2}}
    assert "ratios.val must be > 0 for holdout" in _error(tmp_path, config)
    config["split"] = {"method": "kfold", "ratios": {"train": 0.8, "val": 0.0, "test": 0.2}, "folds": 4, "fold": 4}
    assert "fold must be < folds (4), got 4" in _error(tmp_path, config)
    config["split"]["fold"] = 3
    assert load_pipeline(write_config(tmp_path, config)).split.fold == 3


def test_missing_file_and_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_pipeline(tmp_path / "absent.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_pipeline(path)


def test_profile_defaults_and_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    profile = load_profile("local", tmp_path / "conf")
    assert profile.ray_address is None
    assert profile.lake == str(tmp_path / ".rayline" / "lake")
    assert profile.mlflow_tracking_uri == "http://127.0.0.1:5000"
    with pytest.raises(ConfigError, match="no file .* for profile 'cluster'"):
        load_profile("cluster", tmp_path / "conf")
    cluster = load_profile("cluster", ROOT / "conf")
    assert cluster.lake.endswith("lake")


def test_apply_overrides_sets_dotted_keys_without_touching_the_original():
    base = {"training": {"optimizer": {"lr": 0.1}}, "model": {"params": {}}}
    out = apply_overrides(base, {"training.optimizer.lr": 0.01, "model.params.hidden": [8]})
    assert out == {"training": {"optimizer": {"lr": 0.01}}, "model": {"params": {"hidden": [8]}}}
    assert base["training"]["optimizer"]["lr"] == 0.1


def test_cli_exits_2_on_a_bad_config_and_writes_nothing(tmp_path, monkeypatch):
    from flows.cli import app

    monkeypatch.chdir(tmp_path)
    config = iris_config()
    config["split"]["seed"] = "abc"
    path = write_config(tmp_path, config)
    before = sorted(os.listdir(tmp_path))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "split.seed" in result.output and "'abc'" in result.output
    assert sorted(os.listdir(tmp_path)) == before  # no .rayline, no landing files


def test_valid_iris_config_round_trips(tmp_path):
    config = load_pipeline(write_config(tmp_path, iris_config()))
    assert PipelineConfig.model_validate(yaml.safe_load(yaml.safe_dump(config.model_dump(by_alias=True)))) == config


def test_monitoring_and_recorder_sections_are_checked(tmp_path):
    config = iris_config(monitoring={"window": "2w", "numeric_test": "chi2", "drift_share": 0})
    config["serving"]["recorder"] = {"sample_rate": 1.5}
    message = _error(tmp_path, config)
    assert "monitoring.window: window must be a positive number with s, m, h or d" in message
    assert "monitoring.numeric_test" in message and "'psi', 'ks' or 'wasserstein'" in message
    assert "monitoring.drift_share" in message and "serving.serving" not in message
    assert "serving.recorder.sample_rate" in message
    loaded = load_pipeline(write_config(tmp_path, iris_config(monitoring={"numeric_test": "ks", "categorical_threshold": 0.3})))
    assert loaded.monitoring.thresholds == (0.01, 0.3)  # the test's default, and the one set
    assert loaded.serving.recorder.enabled and loaded.monitoring.window == "24h"


def test_stemming_and_stop_words_are_checked_at_load(tmp_path):
    config = yaml.safe_load(Path("conf/pipelines/sentiment_tfidf.yaml").read_text())
    config["text"]["tokenizer"] = {"kind": "char", "stem": "klingon", "stop_words": "english"}
    message = _error(tmp_path, config)
    assert "text.tokenizer.stem" in message and "got 'klingon'" in message and "english" in message
    config["text"]["tokenizer"] = {"kind": "char", "stop_words": "english"}
    assert "stop_words applies to the word tokenizer only; this one is 'char'" in _error(tmp_path, config)
    config["text"]["tokenizer"] = {"kind": "word", "stop_words": "english", "stem": "english"}
    loaded = load_pipeline(write_config(tmp_path, config))
    assert loaded.text.tokenizer.params() == {
        "lower": True, "min_freq": 1, "max_vocab": None, "stop_words": "english", "stem": "english"}
