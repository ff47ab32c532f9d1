"""Tagged sentences: CoNLL files with bad sentences quarantined, the generated NER set, the
vocabulary fitted on train, the tagger's learning and decoding, and answers with offsets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from components.config import ConfigError, SplitConfig, TaggingConfig
from components.config_check import load_checked
from components.data.conll import read_conll, write_landing_conll
from components.data.fitted_state import state_from_dict
from components.data.ner_synthetic import conll_text, ner_sentences
from components.data.preparation import LABEL
from components.data.schema import InvalidInput
from components.data.tagged_preparation import TOKENS, prepare_tagged
from components.data.tagged_requests import sentences_from_instances, tagged_answers
from components.training.loop import loop_config, train_model
from tests.conftest import write_config
from tests.unit.test_loop import MemorySession


def test_conll_sentences_are_kept_or_quarantined_whole_with_the_line():
    data = (b"-DOCSTART- -X- O O\n\nJohn\tB-PER\nlives\tO\n\n\nin Paris\n\nx\tX-PER\n\n\xff\tO\n\n"
            b"EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n")
    good, bad = read_conll(data, "f.conll")
    assert good.rows() == [(["John", "lives"], ["B-PER", "O"], "f.conll", 0), (["EU", "rejects"], ["B-ORG", "O"], "f.conll", 4)]
    assert bad["_row"].to_list() == [1, 2, 3]
    assert bad["_reason"].to_list() == [
        "line 7: tag 'Paris' is not O, B-<type> or I-<type>",
        "line 9: tag 'X-PER' is not O, B-<type> or I-<type>",
        "line 11: not UTF-8 text",
    ]
    lone, _ = read_conll(b"word\n", "g.conll")[1], None
    assert lone["_reason"].to_list() == ["line 1: expected a token and a tag, got 1 column ('word')"]


def test_ner_synthetic_is_seeded_skewed_and_lands_as_conll(tmp_path: Path):
    sentences = ner_sentences(2000, seed=0)
    assert sentences == ner_sentences(2000, seed=0) and sentences != ner_sentences(2000, seed=1)
    counts = Counter(t for _, tags in sentences for t in tags)
    share = {kind: sum(c for t, c in counts.items() if t.endswith(kind)) / sum(counts.values())
             for kind in ("O", "PER", "LOC", "ORG", "DATE")}
    assert share["O"] > 0.5 and share["PER"] > share["LOC"] > share["DATE"] and share["DATE"] < 0.05
    paths = write_landing_conll(conll_text(sentences), tmp_path, 3, stem="ner")
    read = [read_conll(p.read_bytes(), p.name) for p in paths]
    assert sum(good.height for good, _ in read) == 2000 and all(bad.height == 0 for _, bad in read)
    assert read[0][0].row(0)[:2] == sentences[0]
    stamps = [p.stat().st_mtime_ns for p in paths]
    assert write_landing_conll(conll_text(sentences), tmp_path, 3, stem="ner") == paths
    assert [p.stat().st_mtime_ns for p in paths] == stamps  # the same bytes: untouched


def _bronze(n: int = 600) -> pl.DataFrame:
    sentences = ner_sentences(n, seed=3)
    return pl.DataFrame({"tokens": [t for t, _ in sentences], "tags": [g for _, g in sentences],
                         "_source_file": ["f"] * n, "_row": list(range(n))})


def _arrays(silver: dict[str, pl.DataFrame], state, split: str) -> tuple[np.ndarray, np.ndarray]:
    batch = {TOKENS: np.array([np.array(r) for r in silver[split][TOKENS].to_list()], dtype=object),
             LABEL: np.array([np.array(r) for r in silver[split][LABEL].to_list()], dtype=object)}
    return state.batch_inputs(batch), state.batch_labels(batch)


def test_the_vocabulary_comes_from_the_training_sentences_and_the_state_round_trips():
    bronze = _bronze()
    split = SplitConfig(ratios={"train": 0.7, "val": 0.15, "test": 0.15}, seed=0)
    silver, state = prepare_tagged(bronze, split, TaggingConfig(min_freq=1, max_length=12))
    train_tokens = {t for s in silver["train"][TOKENS].to_list() for t in s}
    assert 1 not in train_tokens  # every training token is in the vocabulary
    held_out = [t for part in ("val", "test") for s in silver[part][TOKENS].to_list() for t in s]
    assert 1 in held_out  # some names only held-out sentences have are <UNK>
    assert state.info.task == "tagging" and state.info.out_features == len(state.tags.classes_) == 9
    train_tags = Counter(t for s in bronze.filter(pl.Series(_split_of(bronze, split)) == "train")["tags"].to_list() for t in s)
    assert dict(zip(state.tags.classes_, state.tag_counts)) == dict(train_tags)
    x, y = _arrays(silver, state, "val")
    assert x.shape == y.shape == (silver["val"].height, 12)
    again = state_from_dict(state.to_dict())
    assert np.array_equal(again.inputs([["Anna", "flew", "to", "Lima"]]), state.inputs([["Anna", "flew", "to", "Lima"]]))


def _split_of(bronze: pl.DataFrame, split: SplitConfig) -> list[str]:
    from components.data.splits import assign_splits

    return assign_splits(bronze, split, "tags").to_list()


@pytest.mark.parametrize("decoder", ["crf", "softmax"])
def test_a_tagger_learns_entities_and_checkpoints(decoder):
    silver, state = prepare_tagged(_bronze(800), SplitConfig(ratios={"train": 0.7, "val": 0.15, "test": 0.15}),
                                   TaggingConfig(max_length=24))
    model = {"kind": "tagger", "params": {"decoder": decoder, "embed_dim": 24, "hidden": 24}}
    config = loop_config(model, {"epochs": 5, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.01}}, state.info)
    session = MemorySession(*_arrays(silver, state, "train"))
    session.data["val"] = _arrays(silver, state, "val")
    history = train_model(config, session)
    # after one epoch a tagger finds some entities; five epochs on 560 sentences find most
    assert history[0]["val_micro_f1"] < history[-1]["val_micro_f1"]
    assert history[-1]["val_micro_f1"] > 0.8 and history[-1]["val_token_accuracy"] > 0.9
    assert {"val_PER_f1", "val_DATE_f1", "val_macro_f1"} <= set(history[-1])
    from components.artifacts.checkpoint_files import read_state

    saved = read_state(session.checkpoints[-1])  # the last epoch, with the tags its CRF constraints came from
    assert saved["epoch"] == 4 and saved["spec"]["params"]["classes"] == list(state.tags.classes_)


def test_cost_sensitive_and_focal_losses_are_for_the_softmax_decoder(tmp_path: Path):
    from components.models import build
    from components.training.tasks import Tagging
    from components.config import TrainingConfig

    _, state = prepare_tagged(_bronze(200), SplitConfig(), TaggingConfig())
    crf = build({"kind": "tagger", "params": {"decoder": "crf"}}, state.info)
    with pytest.raises(ValueError, match="a CRF decoder trains on whole sentences"):
        Tagging(crf, state.info, TrainingConfig(class_weights=True))
    softmax = build({"kind": "tagger", "params": {"decoder": "softmax"}}, state.info)
    task = Tagging(softmax, state.info, TrainingConfig(class_weights=True))
    largest = max(state.tag_counts)
    assert task.weight.tolist() == pytest.approx([largest / c for c in state.tag_counts])


def test_sentences_come_with_offsets_and_bad_ones_are_named():
    _, state = prepare_tagged(_bronze(200), SplitConfig(), TaggingConfig(max_length=8))
    sentences = sentences_from_instances(["Anna Smith flew to New York.", ["Omar", "visited", "Lima"]], state, 8)
    assert sentences[0].tokens == ["Anna", "Smith", "flew", "to", "New", "York", "."]
    answers = tagged_answers(sentences, [["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"], ["B-PER", "O", "B-LOC"]])
    first = answers[0]["entities"]
    assert [(e["type"], e["text"], e["start"], e["end"]) for e in first] == [("PER", "Anna Smith", 0, 10),
                                                                              ("LOC", "New York", 19, 27)]
    assert answers[1]["entities"][1] == {"type": "LOC", "text": "Lima", "start": 13, "end": 17,
                                         "token_start": 2, "token_end": 3}
    for instances, field, message in (
        ([""], "instances[0]", "must not be empty"),
        (["ok", 5], "instances[1]", "must be a sentence: a string, or a list of non-empty token strings"),
        ([["ok", ""]], "instances[0]", "must be a sentence"),
        (["one two three four five six seven eight nine"], "instances[0]", "has 9 tokens; this model reads at most 8"),
    ):
        with pytest.raises(InvalidInput) as info:
            sentences_from_instances(instances, state, 8)
        assert info.value.field == field and info.value.message.startswith(message)


def test_tagged_configs_are_checked_at_load(tmp_path: Path):
    base = {"name": "ner", "source": {"format": "bundled_ner", "dataset": "ner_synthetic"},
            "model": {"kind": "tagger"}, "serving": {"name": "ner"}}
    config = load_checked(write_config(tmp_path, base))
    assert config.modality == "tagged" and config.task == "tagging" and config.tagging.max_length == 128
    with pytest.raises(ConfigError, match="tagged sentences train tagging kinds"):
        load_checked(write_config(tmp_path, {**base, "model": {"kind": "rnn"}}))
    with pytest.raises(ConfigError, match="unstratified"):
        load_checked(write_config(tmp_path, {**base, "split": {"stratify": True}}))
    schema = {"target": "y", "task": "classification", "columns": {"y": "int"}}
    with pytest.raises(ConfigError, match="leave out 'schema'"):
        load_checked(write_config(tmp_path, {**base, "schema": schema}))


def _shapes(n: int, seed: int) -> pl.DataFrame:
    """Sentences of made-up words where a capitalised word is a PER: its context says
    nothing, only its shape does."""
    rng = np.random.default_rng(seed)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    tokens, tags = [], []
    for _ in range(n):
        words = ["".join(rng.choice(letters, rng.integers(3, 8))) for _ in range(rng.integers(4, 9))]
        named = rng.random(len(words)) < 0.3
        tokens.append([w.capitalize() if p else w for w, p in zip(words, named)])
        tags.append(["B-PER" if p else "O" for p in named])
    return pl.DataFrame({"tokens": tokens, "tags": tags, "_source_file": ["f"] * n, "_row": list(range(n))})


def _with_words(silver: dict[str, pl.DataFrame], state, split: str) -> tuple[np.ndarray, np.ndarray]:
    from components.data.tagged_preparation import WORDS

    batch = {c: np.array([np.array(r) for r in silver[split][c].to_list()], dtype=object) for c in (TOKENS, LABEL, WORDS)}
    return state.batch_inputs(batch), state.batch_labels(batch)


def test_tokens_carry_their_characters_the_same_way_in_training_and_serving():
    silver, state = prepare_tagged(_shapes(50, 0), SplitConfig(seed=0), TaggingConfig(max_length=10, chars={"max_word_length": 5}))
    x, y = _with_words(silver, state, "train")
    assert x.shape == (silver["train"].height, 10, 6) and y.shape == (silver["train"].height, 10)
    sentence = silver["train"]["words"][0].to_list()
    assert np.array_equal(x[0], state.inputs([sentence])[0])  # the one collate of training and serving
    first = sentence[0]
    assert state.chars.decode(x[0, 0, 1:].tolist()) == first[:5]  # the word's characters, cut at 5
    assert x[0, len(sentence):].sum() == 0  # padding words: no id, no characters
    again = state_from_dict(state.to_dict())
    assert np.array_equal(again.inputs([["Zorro", "qq"]]), state.inputs([["Zorro", "qq"]]))
    assert state.info.input_shape == (10, 6) and state.info.char_vocab_size == state.chars.vocab_size_


def test_a_character_cnn_tags_words_it_never_saw_by_their_shape():
    split = SplitConfig(ratios={"train": 0.7, "val": 0.3, "test": 0.0}, seed=0)
    silver, state = prepare_tagged(_shapes(500, 1), split, TaggingConfig(max_length=10, min_freq=2,
                                                                         chars={"max_word_length": 8}))
    scores = {}
    for filters in (0, 16):
        model = {"kind": "tagger", "params": {"decoder": "softmax", "embed_dim": 16, "hidden": 16, "char_filters": filters}}
        config = loop_config(model, {"epochs": 6, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.02}}, state.info)
        session = MemorySession(*_with_words(silver, state, "train"))
        session.data["val"] = _with_words(silver, state, "val")
        scores[filters] = train_model(config, session)[-1]["val_micro_f1"]
    # made-up words are all but unique: without characters a name is an unknown word like any other
    assert scores[16] > 0.95 and scores[0] < 0.6, scores


def test_a_character_cnn_needs_the_characters(tmp_path: Path):
    base = {"name": "ner", "source": {"format": "bundled_ner", "dataset": "ner_synthetic"},
            "model": {"kind": "tagger", "params": {"char_filters": 8}}, "serving": {"name": "ner"}}
    with pytest.raises(ConfigError, match="char_filters needs the words' characters: set tagging.chars"):
        load_checked(write_config(tmp_path, base))
    assert load_checked(write_config(tmp_path, {**base, "tagging": {"chars": {}}})).tagging.chars.max_word_length == 20
    with pytest.raises(ConfigError, match="char_kernel must be odd"):
        load_checked(write_config(tmp_path, {**base, "tagging": {"chars": {}},
                                             "model": {"kind": "tagger", "params": {"char_filters": 8, "char_kernel": 4}}}))
