"""The text modality: config, tokens fitted on train only, the one collate, requests, the rnn kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch

from components.config import ConfigError, SchemaConfig, SplitConfig, TextConfig
from components.config_check import load_checked
from components.data.bundled_text import bundled_text_frame
from components.data.fitted_state import state_from_dict
from components.data.modalities.text import lengths, pad_ids
from components.data.schema import InvalidInput
from components.data.modalities.text import BagOfWords
from components.data.preprocessing import LabelIndex
from components.data.text_preparation import TOKENS, TextState, prepare_text
from components.data.text_requests import texts_from_instances
from components.data.tokenizers import UNK, WordTokenizer
from components.models import build
from tests.conftest import write_config


def text_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": "reviews",
        "source": {"format": "csv"},
        "schema": {"target": "label", "task": "classification",
                   "columns": {"text": {"type": "str", "nullable": False}, "label": "str"}},
        "text": {"column": "text", "max_length": 8},
        "model": {"kind": "rnn", "params": {"hidden": 8}},
        "serving": {"name": "reviews"},
    }
    return {**config, **overrides}


def _error(tmp_path: Path, config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_checked(write_config(tmp_path, config))
    return str(info.value)


def test_a_text_section_makes_a_text_pipeline(tmp_path):
    config = load_checked(write_config(tmp_path, text_config()))
    assert config.modality == "text" and config.text.tokenizer.params() == {"lower": True, "min_freq": 1, "max_vocab": None, "stop_words": None, "stem": None}
    assert "text.column 'label' is the target" in _error(tmp_path, text_config(text={"column": "label"}))
    schema = text_config()["schema"]
    message = _error(tmp_path, text_config(text={"column": "body"}))
    assert "text.column 'body' must be a declared str column" in message
    wide = {**schema, "columns": {**schema["columns"], "stars": "int"}}
    assert "other feature columns ['stars']" in _error(tmp_path, text_config(schema=wide))
    message = _error(tmp_path, text_config(source={"format": "bundled_text", "dataset": "rotten_tomatoes"}, text=None))
    assert "'bundled_text' holds text: a 'text' section names its column" in message
    message = _error(tmp_path, text_config(model={"kind": "logistic_regression"}))
    assert "text.features: model.kind 'logistic_regression' reads one vector per text: set text.features to " \
           "bag_of_words or tfidf" in message
    message = _error(tmp_path, text_config(text={"column": "text", "features": "tfidf"}))
    assert "text.features: model.kind 'rnn' reads token ids: set text.features to tokens" in message
    tfidf = load_checked(write_config(tmp_path, text_config(
        text={"column": "text", "features": "tfidf"}, model={"kind": "naive_bayes", "params": {"variant": "multinomial"}},
    )))
    assert tfidf.text.features == "tfidf"
    message = _error(tmp_path, text_config(model={"kind": "rnn", "params": {"cell": "transformer"}}))
    assert "param 'cell' must be one of ['rnn', 'gru', 'lstm'], got 'transformer'" in message


def test_rotten_tomatoes_ships_with_two_labels():
    df = bundled_text_frame("rotten_tomatoes")
    assert df.columns == ["text", "label"] and df.height == 12_808
    assert df["label"].value_counts().sort("label").rows() == [("fresh", 7403), ("rotten", 5405)]
    assert df["text"].str.len_chars().min() > 0


def test_pad_ids_cuts_and_pads_and_lengths_reads_them_back():
    x = pad_ids([[5, 6, 7], [8], []], 2)
    assert x.dtype == np.int64 and x.tolist() == [[5, 6], [8, 0], [0, 0]]
    assert lengths(torch.from_numpy(x)).tolist() == [2, 1, 0]


def _bronze() -> pl.DataFrame:
    train_words = ["good film", "bad film", "good good plot", "bad plot again"] * 5
    return pl.DataFrame({
        "text": train_words + ["zebra film"],
        "label": ["pos", "neg", "pos", "neg"] * 5 + ["pos"],
        "_source_file": ["a.csv"] * 21,
        "_row": list(range(21)),
    })


def test_tokens_are_fitted_on_the_training_split_only():
    schema = SchemaConfig(columns={"text": "str", "label": "str"}, target="label", task="classification")
    split = SplitConfig(ratios={"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    bronze = _bronze()
    assert _splits(bronze, split)[-1] == "val"  # "zebra film" is held out with this seed
    silver, state = prepare_text(bronze, schema, split, TextConfig(column="text", max_length=2))
    train_texts = bronze.filter(pl.Series(_splits(bronze, split)) == "train")["text"]
    # the vocabulary is the training rows' words, so a word seen only outside train is unknown
    assert set(state.tokenizer.vocab_[4:]) == {w for t in train_texts for w in t.split()}
    assert state.tokenizer.encode("zebra") == [state.tokenizer.vocab_.index(UNK)]
    assert sum(part.height for part in silver.values()) == 21
    assert max(len(ids) for part in silver.values() for ids in part[TOKENS].to_list()) == 3  # kept whole
    # the collate cuts at max_length, in training batches as in requests
    assert state.batch_inputs({TOKENS: np.array([np.array([4, 5, 6])], dtype=object)}).tolist() == [[4, 5]]
    assert state.inputs(["good good plot"]).shape == (1, 2)
    assert state.info.vocab_size == len(state.tokenizer.vocab_) and state.info.input_shape == (2,)
    assert state.info.classes == ("neg", "pos")

    # The bundle's JSON gives back the same inputs and answers.
    again = state_from_dict(state.to_dict())
    texts = ["good plot", "unseen words here"]
    assert np.array_equal(again.inputs(texts), state.inputs(texts))
    assert again.inputs(pl.DataFrame({"text": texts})).tolist() == state.inputs(texts).tolist()
    assert again.answers(np.array([[0.2, 0.8]]))[0]["label"] == "pos"


def test_tfidf_by_hand_equals_the_vectors():
    """idf = ln((1 + n) / (1 + df)) + 1, tf-idf rows of unit length: scikit-learn's smooth idf."""
    train = ["a a b", "b c", "c c c d"] * 2
    tokenizer = WordTokenizer().fit(train)
    ids = [tokenizer.encode(t) for t in train]
    labels = LabelIndex().fit(["x", "y"])

    def state_of(weighting: str) -> TextState:
        bag = BagOfWords(vocab_size=tokenizer.vocab_size_, weighting=weighting).fit(ids)
        return TextState(tokenizer=tokenizer, labels=labels, column="text", max_length=10, vectors=bag)

    state = state_of("tfidf")
    vocab = tokenizer.vocab_
    got = state.inputs(["a a b", "d d e"])  # e: unknown
    assert got.shape == (2, len(vocab))
    n, df = 6, {"a": 2, "b": 4, "c": 4, "d": 2}
    idf = {w: np.log((1 + n) / (1 + d)) + 1 for w, d in df.items()}
    first = {"a": 2 * idf["a"], "b": 1 * idf["b"]}
    norm = np.sqrt(sum(v * v for v in first.values()))
    assert got[0, vocab.index("a")] == pytest.approx(first["a"] / norm, rel=1e-6)
    assert got[0, vocab.index("b")] == pytest.approx(first["b"] / norm, rel=1e-6)
    assert got[0].sum() == pytest.approx((first["a"] + first["b"]) / norm, rel=1e-6)
    # <UNK> never occurs in training: df 0, idf ln(7) + 1
    unk = np.log(7) + 1
    second = np.array([2 * idf["d"], unk]) / np.hypot(2 * idf["d"], unk)
    assert got[1, [vocab.index("d"), vocab.index(UNK)]] == pytest.approx(second, rel=1e-6)
    # and scikit-learn's own vectorizer over the same words agrees
    from sklearn.feature_extraction.text import TfidfVectorizer

    sk = TfidfVectorizer(token_pattern=r"\w+").fit(train)
    want = sk.transform(["a a b"]).toarray()[0]
    assert [got[0, vocab.index(w)] for w in sk.get_feature_names_out()] == pytest.approx(want.tolist(), rel=1e-6)

    counts = state_of("counts")
    assert counts.info.input_shape == (len(vocab),) and counts.info.vocab_size == len(vocab)
    assert counts.inputs(["c c c d"])[0, [vocab.index("c"), vocab.index("d")]].tolist() == [3.0, 1.0]
    assert state_from_dict(state.to_dict()).inputs(["a a b"]).tolist() == got[:1].tolist()


def _splits(bronze: pl.DataFrame, split: SplitConfig) -> list[str]:
    from components.data.splits import assign_splits

    return assign_splits(bronze, split, "label").to_list()


def test_text_requests_name_the_bad_instance():
    schema = SchemaConfig(columns={"text": "str", "label": "str"}, target="label", task="classification")
    _, state = prepare_text(_bronze(), schema, SplitConfig(), TextConfig(column="text", max_length=3))
    assert texts_from_instances(["a zebra", "good film"], state, 8) == ["a zebra", "good film"]
    for instances, field, message in (
        (["fine", 3], "instances[1]", "must be a string of text, got int"),
        (["fine", "  "], "instances[1]", "must not be empty"),
        (["good good good film"], "instances[0]", "has 4 tokens; this model reads at most 3"),
        ("good film", "instances", "must be a list of texts, got str"),
    ):
        with pytest.raises(InvalidInput) as info:
            texts_from_instances(instances, state, 8)
        assert (info.value.field, info.value.message) == (field, message)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_an_rnn_answer_does_not_depend_on_the_padding(cell, pooling):
    from components.data.modalities.info import DataInfo

    info = DataInfo(modality="text", task="classification", input_shape=(12,), classes=("a", "b", "c"), vocab_size=30)
    torch.manual_seed(0)
    model = build({"kind": "rnn", "params": {"cell": cell, "pooling": pooling, "bidirectional": True, "layers": 2,
                                            "embed_dim": 6, "hidden": 5}}, info).eval()
    x = torch.from_numpy(pad_ids([[4, 5, 6], [7, 8], [9]], 12))  # (3, 12)
    with torch.no_grad():
        out = model(x)  # (3, 3)
        assert out.shape == (3, 3)
        assert torch.allclose(out, model(x[:, :3]), atol=1e-6)  # less padding
        assert torch.allclose(out[2:], model(x[2:]), atol=1e-6)  # alone in its batch
        assert torch.allclose(out, model(x.float()), atol=1e-6)  # ids as floats, as predict_arrays once sent them
        # the tokens matter: a different last token changes the answer
        y = x.clone()
        y[0, 2] = 10
        assert not torch.allclose(out[0], model(y)[0])


def test_the_rnn_summary_shows_its_steps():
    from components.data.modalities.info import DataInfo
    from components.models.summary import summary

    info = DataInfo(modality="text", task="classification", input_shape=(16,), classes=("a", "b"), vocab_size=30)
    model = build({"kind": "rnn", "params": {"bidirectional": True, "hidden": 5, "embed_dim": 4}}, info)
    rows = {r.name: r for r in summary(model, info.input_shape)}
    assert rows["embed"].output_shape == (16, 4) and rows["embed"].parameters == 30 * 4
    # 16 steps of both directions' 5 units; 4 gates of (input + hidden + 2 biases) per direction
    assert rows["rnn"].output_shape == (16, 10) and rows["rnn"].parameters == 2 * 4 * 5 * (4 + 5 + 2)
    assert rows["head"].output_shape == (1,)


def test_word_vectors_start_the_embedding_rows_of_the_vocabulary(tmp_path):
    from safetensors.torch import save_file

    from components.data.modalities.info import DataInfo
    from components.data.word_vectors import WordVectors, load_vectors
    from components.training.transfer import load_pretrained, word_vectors_init

    vectors = WordVectors(["the", "king", "▁queen"], np.arange(6, dtype=np.float32).reshape(3, 2) + 1)
    vocab = ["<PAD>", "<UNK>", "<BOS>", "<EOS>", "The", "king", "▁king", "zebra"]
    matrix, found = vectors.embedding_matrix(vocab, seed=0)
    assert found == 3  # "The" lower-cased, "king", and "▁king" without its word marker
    assert matrix[0].tolist() == [0.0, 0.0]  # <PAD>
    assert matrix[4].tolist() == [1.0, 2.0] and matrix[5].tolist() == matrix[6].tolist() == [3.0, 4.0]
    assert np.abs(matrix[7]).sum() > 0  # a missing word starts random, not at zero
    assert np.array_equal(vectors.embedding_matrix(vocab, seed=0)[0], matrix)  # seeded

    # The real vectors: the first row of glove.6B.50d.txt is "the 0.418 0.24968 -0.41242 ...".
    glove = load_vectors("glove_6b_50d")
    assert glove.dim == 50 and len(glove.words) == 400_000
    assert glove.vectors[glove.index["the"], :3].tolist() == pytest.approx([0.418, 0.24968, -0.41242])

    # Loaded like a transfer-learning source: only `embed` comes from the file, frozen on request.
    info = DataInfo(modality="text", task="classification", input_shape=(8,), classes=("a", "b"), vocab_size=len(vocab))
    model = build({"kind": "rnn", "params": {"embed_dim": 2, "hidden": 3}}, info)
    path = tmp_path / "vectors.safetensors"
    save_file({"embed.weight": torch.from_numpy(matrix)}, str(path))
    loaded = load_pretrained(model, word_vectors_init(str(path), "glove_6b_50d", freeze=True, lr_scale=1.0))
    assert loaded == {"embed.weight"} and torch.equal(model.embed.weight, torch.from_numpy(matrix))
    assert not model.embed.weight.requires_grad and model.head.weight.requires_grad


def test_word_vectors_are_checked_at_load(tmp_path):
    glove = {"column": "text", "embeddings": {"vectors": "glove_6b_50d"}}
    message = _error(tmp_path, text_config(text=glove))
    assert "model.params.embed_dim: must be 50 to start from glove_6b_50d (got 64)" in message
    load_checked(write_config(tmp_path, text_config(text=glove, model={"kind": "rnn", "params": {"embed_dim": 50}})))
    message = _error(tmp_path, text_config(text={**glove, "features": "tfidf"}, model={"kind": "logistic_regression"}))
    assert "text.embeddings start a sequence model's embedding layer: text.features must be tokens" in message
