"""Model kinds, params and search keys are checked at load, naming file, key path and value."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from components.config import ConfigError
from components.config_check import load_checked
from tests.conftest import iris_config, write_config


def _error(tmp_path: Path, config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_checked(write_config(tmp_path, config))
    return str(info.value)


def test_unknown_kind_names_the_registered_ones(tmp_path):
    message = _error(tmp_path, iris_config(model={"kind": "mlpp"}))
    assert "iris.yaml" in message and "model.kind" in message and "'mlpp'" in message
    assert "'mlp'" in message and "'knn'" in message


def test_unknown_and_mistyped_params(tmp_path):
    message = _error(tmp_path, iris_config(model={"kind": "mlp", "params": {"hiden": [8]}}))
    assert "model.params" in message and "unknown param(s) ['hiden']" in message and "'hidden'" in message
    message = _error(tmp_path, iris_config(model={"kind": "mlp", "params": {"hidden": "wide"}}))
    assert "param 'hidden' must be a list of int, got 'wide'" in message
    # a value the config rejects (dropout in [0, 1)) fails at load too
    message = _error(tmp_path, iris_config(model={"kind": "mlp", "params": {"dropout": 1.5}}))
    assert "dropout must be in [0, 1), got 1.5" in message


def test_data_fields_are_not_set_by_hand(tmp_path):
    message = _error(tmp_path, iris_config(model={"kind": "mlp", "params": {"in_features": 4}}))
    assert "model.params.in_features: is set from the data" in message


def test_search_key_that_names_no_field(tmp_path):
    config = iris_config(tuning={"space": {"training.optimzer.lr": {"loguniform": [1e-4, 1e-1]}}})
    message = _error(tmp_path, config)
    assert "tuning.space.training.optimzer.lr" in message
    assert "training has no field 'optimzer'" in message and "'optimizer'" in message


def test_search_values_must_fit_their_field(tmp_path):
    config = iris_config(tuning={"space": {"training.optimizer.name": {"choice": ["adam", "adamm"]}}})
    message = _error(tmp_path, config)
    assert "tuning.space.training.optimizer.name" in message and "'adamm'" in message
    config = iris_config(tuning={"space": {"model.params.hidden": {"grid": [[8], "x"]}}})
    assert "value 'x' is not valid there" in _error(tmp_path, config)
    config = iris_config(tuning={"space": {"model.params.widht": {"grid": [[8]]}}})
    assert "model 'mlp' has no param 'widht'" in _error(tmp_path, config)


def test_family_that_does_not_exist(tmp_path):
    config = iris_config(tuning={"families": {"knn": {}, "randomforest": {}}})
    message = _error(tmp_path, config)
    assert "tuning.families.randomforest: unknown model kind" in message and "'random_forest'" in message
    config = iris_config(tuning={"families": {"knn": {"model.params.kk": {"choice": [1, 3]}}}})
    assert "model 'knn' has no param 'kk'" in _error(tmp_path, config)


def test_a_good_search_loads(tmp_path):
    config = iris_config(tuning={"space": {
        "training.optimizer.lr": {"loguniform": [1e-3, 1e-1]},
        "model.params.hidden": {"grid": [[8], [16, 8]]},
    }})
    space = load_checked(write_config(tmp_path, config)).tuning.space
    assert sorted(space) == ["model.params.hidden", "training.optimizer.lr"]
    assert space["model.params.hidden"].grid == [[8], [16, 8]]


def test_cli_exits_2_before_writing_anything(tmp_path, monkeypatch):
    from flows.cli import app

    monkeypatch.chdir(tmp_path)
    path = write_config(tmp_path, iris_config(tuning={"space": {"training.optimzer.lr": {"grid": [0.1]}}}))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "training has no field 'optimzer'" in result.output
    assert not (tmp_path / ".rayline").exists()


def _siamese(**overrides) -> dict:
    config = {
        "name": "siamese", "source": {"format": "bundled_images", "dataset": "digits"},
        "split": {"method": "classes", "held_out": [7, 8, 9]},
        "model": {"kind": "siamese", "params": {"embedding_dim": 8}}, "serving": {"name": "siamese"},
    }
    return {**config, **overrides}


def test_an_embedding_model_loads_and_is_refused_what_needs_a_classifier(tmp_path):
    assert load_checked(write_config(tmp_path, _siamese())).model.kind == "siamese"
    message = _error(tmp_path, _siamese(evaluation={"attacks": ["fgsm"], "visual": True},
                                        training={"adversarial": {"attack": "fgsm", "eps": 0.1}}))
    for key in ("evaluation.attacks", "evaluation.visual", "training.adversarial"):
        assert f"{key}: needs a classifier; 'siamese' is an embedding model (metric_learning)" in message
    # image fields cannot come from a table
    message = _error(tmp_path, iris_config(model={"kind": "siamese"}))
    assert "model.kind: takes ['in_channels', 'height', 'width'] from its data, which a tabular source" in message


def test_a_class_split_is_only_for_embedding_models(tmp_path):
    message = _error(tmp_path, _siamese(model={"kind": "cnn", "params": {"arch": "lenet5"}}))
    assert "split.method: classes holds whole labels out of training" in message and "'cnn' is not one" in message




def test_word2vec_needs_running_text_read_as_words(tmp_path):
    import yaml

    lee = yaml.safe_load(Path("conf/pipelines/lee_word2vec.yaml").read_text())
    assert load_checked(write_config(tmp_path, lee)).model.kind == "word2vec"
    chars = {**lee, "text": {**lee["text"], "tokenizer": {"kind": "char"}}}
    message = _error(tmp_path, chars)
    assert "text.tokenizer.kind: word2vec learns a vector per word: it needs the word tokenizer (got 'char')" in message
    message = _error(tmp_path, iris_config(model={"kind": "word2vec"}))
    assert "model.kind: word2vec learns word vectors from running text" in message and "classification source" in message
    # and running text still trains language models only besides it
    assert "running text train language_model kinds" in _error(tmp_path, {**lee, "model": {"kind": "mlp"}})


def test_bucketing_is_for_token_sequences(tmp_path):
    message = _error(tmp_path, iris_config(training={"epochs": 1, "bucket_by_length": 8}))
    assert "training.bucket_by_length: groups token sequences by length; this pipeline's model reads no token ids" in message
    import yaml

    lee = yaml.safe_load(Path("conf/pipelines/hamlet_char_lm.yaml").read_text())
    lee["training"]["bucket_by_length"] = 16
    assert load_checked(write_config(tmp_path, lee)).training.bucket_by_length == 16


def test_glove_reads_running_text_as_counts_and_only_glove_does(tmp_path):
    import yaml

    glove = yaml.safe_load(Path("conf/pipelines/lee_glove.yaml").read_text())
    assert load_checked(write_config(tmp_path, glove)).text.features == "cooccurrence"
    tokens = {**glove, "text": {**glove["text"], "features": "tokens"}}
    assert "text.features: glove reads running text as cooccurrence (got 'tokens')" in _error(tmp_path, tokens)
    lm = {**glove, "model": {"kind": "rnn_lm"}}
    assert "co-occurrence counts train glove kinds; language models read tokens" in _error(tmp_path, lm)
    w2v = {**glove, "model": {"kind": "word2vec"}}
    assert "text.features: word2vec reads running text as tokens (got 'cooccurrence')" in _error(tmp_path, w2v)
