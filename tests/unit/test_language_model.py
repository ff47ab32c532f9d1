"""Running text and language models: passages with bad lines quarantined, windows shifted
by one, a tokenizer from the training passages, perplexity by hand, sampling with
temperature and top-k, and generation requests checked field by field."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from components.config import SplitConfig, TextConfig
from components.data.corpus import read_text_file
from components.data.corpus_preparation import TOKENS, prepare_corpus, windows
from components.data.fitted_state import state_from_dict
from components.data.generation_requests import generations_from_instances
from components.data.modalities.info import DataInfo
from components.data.preparation import LABEL
from components.data.schema import InvalidInput
from components.models import build
from components.training.loop import loop_config, train_model
from components.training.tasks import LanguageModel
from tests.unit.test_loop import MemorySession


def test_text_files_become_passages_and_bad_lines_are_quarantined():
    data = b"".join(f"line {i}\n".encode() for i in range(5)) + b"caf\xe9\n" + b"last\n"
    good, bad = read_text_file(data, "play.txt", lines_per_row=3)
    assert good["text"].to_list() == ["line 0\nline 1\nline 2\n", "line 3\nline 4\nlast\n"]
    assert bad.select("_row", "_reason").rows() == [(5, "line 6: not UTF-8 text")]


def test_windows_overlap_by_one_so_targets_are_the_inputs_shifted():
    assert windows(list(range(10)), 4) == [[0, 1, 2, 3, 4], [4, 5, 6, 7, 8], [8, 9]]
    assert windows([7], 4) == []  # one token predicts nothing


def _corpus() -> pl.DataFrame:
    texts = ["abcabcabcabc\n" * 3] * 30 + ["xyz\n"]
    return pl.DataFrame({"text": texts, "_source_file": ["f.txt"] * 31, "_row": list(range(31))})


def _arrays(silver, state, split):
    batch = {TOKENS: np.array([np.array(w) for w in silver[split][TOKENS].to_list()], dtype=object),
             LABEL: np.array([np.array(w) for w in silver[split][LABEL].to_list()], dtype=object)}
    return state.batch_inputs(batch), state.batch_labels(batch)


def test_the_tokenizer_comes_from_training_passages_and_inputs_shift_by_one():
    split = SplitConfig(ratios={"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)
    silver, state = prepare_corpus(_corpus(), split, TextConfig(tokenizer={"kind": "char", "lower": False}, max_length=8))
    from components.data.splits import assign_splits

    held_out_xyz = assign_splits(_corpus(), split, "text").to_list()[-1] != "train"
    assert ("x" in state.tokenizer.vocab_) != held_out_xyz
    x, y = _arrays(silver, state, "train")
    assert x.shape == y.shape and x.shape[1] == 8
    assert np.array_equal(x[0, 1:], y[0, :-1])  # each target is the next input
    assert state.info.task == "language_model" and state.info.out_features == state.tokenizer.vocab_size_
    again = state_from_dict(state.to_dict())
    assert again.tokenizer.encode("abc") == state.tokenizer.encode("abc") and again.max_length == 8


def test_perplexity_and_bits_are_the_exponential_and_base_two_of_the_loss():
    info = DataInfo(modality="text", task="language_model", input_shape=(4,), vocab_size=10)
    task = LanguageModel(build({"kind": "rnn_lm", "params": {"hidden": 4}}, info), info, _training())
    metrics = task.metrics({"nll": 12.0, "tokens": 6.0, "count": 2.0}, {})
    assert metrics["loss"] == 2.0 and metrics["perplexity"] == pytest.approx(math.exp(2.0))
    assert metrics["bits_per_token"] == pytest.approx(2.0 / math.log(2))


def _training():
    from components.config import TrainingConfig

    return TrainingConfig()


def test_a_language_model_learns_a_pattern_and_samples_it():
    split = SplitConfig(ratios={"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)
    silver, state = prepare_corpus(_corpus(), split, TextConfig(tokenizer={"kind": "char", "lower": False}, max_length=16))
    config = loop_config({"kind": "rnn_lm", "params": {"hidden": 16, "layers": 1, "embed_dim": 8}},
                         {"epochs": 8, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.03}}, state.info)
    session = MemorySession(*_arrays(silver, state, "train"))
    session.data["val"] = _arrays(silver, state, "val")
    history = train_model(config, session)
    # "abc" repeats: every next character is all but certain (log2 of the 7 characters is 2.8 bits)
    assert history[0]["val_bits_per_token"] > history[-1]["val_bits_per_token"]
    assert history[-1]["val_bits_per_token"] < 0.3, history
    model = build(config["model"])
    from safetensors.torch import load_file

    model.load_state_dict(load_file(f"{session.checkpoints[-1]}/model.safetensors"))
    model.eval()
    prompt = torch.tensor([state.tokenizer.encode("abcab")])
    greedy = model.generate(prompt, 9, temperature=1.0, top_k=1)
    assert state.tokenizer.decode(greedy[0].tolist()) == "abcab" + "cabcabcab"
    # seeded sampling repeats itself; top_k keeps every draw among the k likeliest
    a = model.generate(prompt, 20, 1.5, None, torch.Generator().manual_seed(3))
    b = model.generate(prompt, 20, 1.5, None, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    logits, state_ = model.step(prompt)
    top2 = set(torch.topk(logits[0, -1], 2).indices.tolist())
    draws = {int(model.generate(prompt, 1, 5.0, 2, torch.Generator().manual_seed(s))[0, -1]) for s in range(30)}
    assert draws <= top2


def test_a_word_language_model_learns_a_sentence_pattern_and_writes_words():
    texts = ["the cat sat on the mat .\n" * 4] * 30
    corpus = pl.DataFrame({"text": texts, "_source_file": ["f.txt"] * 30, "_row": list(range(30))})
    split = SplitConfig(ratios={"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)
    silver, state = prepare_corpus(corpus, split, TextConfig(tokenizer={"kind": "word"}, max_length=12))
    assert state.tokenizer.vocab_size_ == 4 + 6  # specials, then the, cat, sat, on, mat, "."
    config = loop_config({"kind": "rnn_lm", "params": {"hidden": 16, "layers": 1, "embed_dim": 8}},
                         {"epochs": 10, "batch_size": 8, "optimizer": {"name": "adam", "lr": 0.03}}, state.info)
    session = MemorySession(*_arrays(silver, state, "train"))
    session.data["val"] = _arrays(silver, state, "val")
    history = train_model(config, session)
    # after "the" comes cat or mat (1 bit); every other next word is certain: well under log2(10) bits
    assert history[-1]["val_bits_per_token"] < 0.5 < history[0]["val_bits_per_token"], history
    model = build(config["model"])
    from safetensors.torch import load_file

    model.load_state_dict(load_file(f"{session.checkpoints[-1]}/model.safetensors"))
    model.eval()
    written = model.generate(torch.tensor([state.tokenizer.encode("the cat sat")]), 4, temperature=1.0, top_k=1)
    assert state.tokenizer.decode(written[0].tolist()) == "the cat sat on the mat."


def test_generation_requests_name_the_bad_field():
    _, state = prepare_corpus(_corpus(), SplitConfig(), TextConfig(tokenizer={"kind": "char"}, max_length=5))
    ok = generations_from_instances([{"prompt": "abc", "max_tokens": 3, "top_k": 2, "seed": 1}, "ab"], state, 4)
    assert (ok[0].max_tokens, ok[0].top_k, ok[0].seed, ok[1].temperature) == (3, 2, 1, 1.0)
    vocab = state.tokenizer.vocab_size_
    for instance, field, message in (
        ({"prompt": ""}, "instances[0].prompt", "must be a non-empty string"),
        ({"prompt": "abcabc"}, "instances[0].prompt", "has 6 tokens; this model reads at most 5"),
        ({"prompt": "a", "max_tokens": 0}, "instances[0].max_tokens", "must be an integer from 1 to 1000, got 0"),
        ({"prompt": "a", "temperature": 0}, "instances[0].temperature", "must be a number above 0"),
        ({"prompt": "a", "top_k": vocab + 1}, "instances[0].top_k", f"must be an integer from 1 to {vocab}"),
        ({"prompt": "a", "beam": 3}, "instances[0].beam", "unknown field"),
        (7, "instances[0]", "must be {\"prompt\""),
    ):
        with pytest.raises(InvalidInput) as info:
            generations_from_instances([instance], state, 4)
        assert info.value.field == field and info.value.message.startswith(message)
