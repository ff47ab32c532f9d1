"""Sequence to sequence with attention: weights that sum to one and the context by hand,
each scoring function, teacher forcing, beam search of size 1 equal to greedy, and BLEU."""

from __future__ import annotations

import math

import pytest
import torch

from components.data.modalities.info import DataInfo
from components.models import build
from components.models.seq2seq import BOS_ID, EOS_ID, Attention

INFO = DataInfo(modality="pairs", task="seq2seq", input_shape=(6,), vocab_size=12, target_vocab_size=9)


def test_attention_weights_sum_to_one_and_the_context_is_their_average_by_hand():
    h = torch.tensor([[1.0, 0.0]])  # (1, H)
    enc = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])  # (1, S=3, H)
    mask = torch.tensor([[True, True, False]])  # the third position is padding
    weights, context = Attention(2, "dot")(h, enc, mask)
    # dot scores 2 and 0: softmax over the real positions only
    e2 = math.exp(2.0)
    assert weights[0].tolist() == pytest.approx([e2 / (e2 + 1), 1 / (e2 + 1), 0.0])
    assert context[0].tolist() == pytest.approx([2 * e2 / (e2 + 1), 1 / (e2 + 1)])
    for scoring in ("general", "concat"):
        torch.manual_seed(0)
        w, c = Attention(2, scoring)(h, enc, mask)
        assert w.sum().item() == pytest.approx(1.0) and w[0, 2].item() == 0.0
        assert torch.allclose(c, torch.bmm(w.unsqueeze(1), enc).squeeze(1))
    general = Attention(2, "general")
    with torch.no_grad():
        general.w.weight.copy_(torch.eye(2))  # W = I: general scoring is dot scoring
    assert torch.allclose(general(h, enc, mask)[0], weights)


@pytest.mark.parametrize("attention", ["dot", "general", "concat"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_beam_search_of_size_one_is_greedy(attention, cell):
    torch.manual_seed(1)
    model = build({"kind": "seq2seq", "params": {"attention": attention, "cell": cell, "hidden": 16}}, INFO).eval()
    x = torch.tensor([[4, 5, 6, 7, 0, 0]])
    greedy, greedy_attention = model.greedy(x, max_length=8)
    beam, beam_attention, _ = model.beam_search(x, beam_size=1, max_length=8)
    assert beam == greedy[0]
    assert torch.allclose(beam_attention, greedy_attention[0])
    assert beam_attention.shape[1] == 4  # the source's real tokens
    assert torch.allclose(beam_attention.sum(dim=1), torch.ones(len(beam_attention)))


def test_a_wider_beam_never_scores_worse_and_the_model_learns_to_copy():
    """Reversing a short sequence: learnable in a few hundred steps with attention."""
    torch.manual_seed(0)
    info = DataInfo(modality="pairs", task="seq2seq", input_shape=(5,), vocab_size=10, target_vocab_size=10)
    model = build({"kind": "seq2seq", "params": {"hidden": 32, "embed_dim": 16}}, info)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(300):
        src = torch.randint(4, 10, (32, 4))
        tgt = torch.cat([torch.full((32, 1), BOS_ID), src.flip(1), torch.full((32, 1), EOS_ID)], dim=1)
        logits = model(src, tgt[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 10), tgt[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    src = torch.randint(4, 10, (20, 4))
    decoded, _ = model.greedy(src, max_length=6)
    assert sum(d == s.flip(0).tolist() for d, s in zip(decoded, src)) >= 18
    for row in src[:5]:
        _, _, narrow = model.beam_search(row[None], beam_size=1, max_length=6, alpha=0.0)
        _, _, wide = model.beam_search(row[None], beam_size=4, max_length=6, alpha=0.0)
        assert wide >= narrow - 1e-6


def test_teacher_forcing_zero_feeds_the_model_its_own_guesses():
    torch.manual_seed(0)
    forced = build({"kind": "seq2seq", "params": {"hidden": 8, "teacher_forcing": 1.0}}, INFO).train()
    free = build({"kind": "seq2seq", "params": {"hidden": 8, "teacher_forcing": 0.0}}, INFO).train()
    free.load_state_dict(forced.state_dict())
    x = torch.tensor([[4, 5, 6, 0, 0, 0]])
    y_in = torch.tensor([[BOS_ID, 7, 7, 7, 7]])
    a, b = forced(x, y_in), free(x, y_in)
    assert torch.allclose(a[:, 0], b[:, 0])  # the first step reads <BOS> either way
    guesses = a.argmax(-1)[0, :-1]
    if not torch.equal(guesses, y_in[0, 1:]):
        assert not torch.allclose(a, b)
    free.eval()  # evaluation always reads the given target
    assert torch.allclose(free(x, y_in), forced.eval()(x, y_in))


def test_dates_are_seeded_real_locale_forms_and_never_ambiguous():
    from components.data.dates_synthetic import date_pairs

    pairs = date_pairs(3000, seed=0)
    assert pairs == date_pairs(3000, seed=0) and pairs != date_pairs(3000, seed=1)
    assert all(len(iso) == 10 and "1950-01-01" <= iso <= "2049-12-31" for _, iso in pairs)
    sources = [s for s, _ in pairs]
    assert any("März" in s for s in sources) and any(" de " in s for s in sources) and any("mars" in s for s in sources)
    # month-first numbers (the US short form) would make 3/7/21 two dates: none is written
    import re

    slashed = [(s, iso) for s, iso in pairs if re.fullmatch(r"\d+/\d+/\d+", s)]
    assert slashed and all(int(s.split("/")[0]) == int(iso[8:]) for s, iso in slashed)


def _pairs_state(n: int = 400):
    import polars as pl

    from components.config import PairsConfig, SchemaConfig, SplitConfig
    from components.data.dates_synthetic import dates_frame
    from components.data.pairs_preparation import prepare_pairs

    frame = dates_frame(n, seed=0).with_columns(_source_file=pl.lit("d.csv"), _row=pl.int_range(n))
    schema = SchemaConfig(columns={"source": "str", "target": "str"}, target="target")
    split = SplitConfig(ratios={"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)
    return prepare_pairs(frame, schema, split, PairsConfig(source="source", max_source_length=40, max_target_length=10))


def test_pairs_tokenize_each_side_and_wrap_targets_in_markers():
    import numpy as np

    from components.data.fitted_state import state_from_dict
    from components.data.pairs_preparation import TOKENS
    from components.data.preparation import LABEL

    silver, state = _pairs_state()
    assert set(state.target_tokenizer.vocab_[4:]) == set("0123456789-")
    assert state.info.vocab_size == state.source_tokenizer.vocab_size_ and state.info.out_features == 15
    batch = {TOKENS: np.array([np.array(silver["val"][TOKENS][0])], dtype=object),
             LABEL: np.array([np.array(silver["val"][LABEL][0])], dtype=object)}
    y = state.batch_labels(batch)[0].tolist()
    assert y[0] == BOS_ID and y[11] == EOS_ID and state.target_text(y[1:11]) == state.target_text(silver["val"][LABEL][0])
    again = state_from_dict(state.to_dict())
    assert np.array_equal(again.inputs(["7 March 2021"]), state.inputs(["7 March 2021"]))


def test_translation_requests_name_the_bad_field():
    from components.data.pairs_requests import translations_from_instances
    from components.data.schema import InvalidInput

    _, state = _pairs_state(100)
    ok = translations_from_instances(["7 March 2021", {"source": "8 May 1999", "beam_size": 3}], state, 4)
    assert (ok[0].beam_size, ok[1].beam_size, ok[1].max_length) == (1, 3, 10)
    for instance, field, message in (
        ({"source": " "}, "instances[0].source", "must be a non-empty string"),
        ({"source": "x" * 41}, "instances[0].source", "has 41 tokens; this model reads at most 40"),
        ({"source": "7 May", "beam_size": 0}, "instances[0].beam_size", "must be an integer from 1 to 16"),
        ({"source": "7 May", "max_length": 11}, "instances[0].max_length", "must be an integer from 1 to 10"),
        ({"source": "7 May", "temperature": 1}, "instances[0].temperature", "unknown field"),
    ):
        with pytest.raises(InvalidInput) as info:
            translations_from_instances([instance], state, 4)
        assert info.value.field == field and info.value.message.startswith(message)


def test_the_test_report_scores_greedy_and_beam_decodes_with_sacrebleu():
    import sacrebleu

    from components.evaluation.report import seq2seq_report

    silver, state = _pairs_state(200)
    torch.manual_seed(0)
    model = build({"kind": "seq2seq", "params": {"hidden": 8}}, state.info).eval()  # untrained: wrong answers
    from tests.unit.test_language_model import _arrays

    x, y = _arrays(silver, state, "test")
    report = seq2seq_report(model, x, y, state, beam_size=2, pictures=1)
    decoded = [state.target_text(r) for r in model.greedy(torch.from_numpy(x), 11)[0]]
    truths = [state.target_text(ids) for ids in silver["test"]["label"].to_list()]
    assert report.metrics["test_bleu"] == pytest.approx(sacrebleu.corpus_bleu(decoded, [truths]).score)
    assert report.metrics["test_exact_match"] == sum(d == t for d, t in zip(decoded, truths)) / len(truths)
    assert {"test_bleu_beam2", "test_exact_match_beam2"} <= set(report.metrics)
    assert report.images["attention_0.png"].startswith(b"\x89PNG")


def _scripted(table: dict[tuple[int, ...], dict[int, float]]):
    """A seq2seq model whose decoder gives the next-token probabilities `table` lists for each
    prefix of generated ids (the state carries the prefix; every other token gets 1e-6)."""
    model = build({"kind": "seq2seq", "params": {"hidden": 4, "embed_dim": 4}}, INFO).eval()
    vocab = INFO.target_vocab_size

    def encode(x):
        return torch.zeros(1, 3, 4), torch.ones(1, 3, dtype=torch.bool), ()

    def step(token, feed, state, enc, mask):
        prefix = state + ((int(token[0]),) if int(token[0]) != BOS_ID else ())
        probs = torch.full((vocab,), 1e-6)
        for t, p in table.get(prefix, {}).items():
            probs[t] = p
        return torch.log(probs / probs.sum()).unsqueeze(0), feed, prefix, torch.full((1, 3), 1 / 3)

    model.encode, model.step = encode, step
    return model


def test_beam_search_keeps_looking_while_an_open_hypothesis_can_still_win():
    a, b = 4, 5
    model = _scripted({(): {a: 0.6, EOS_ID: 0.4}, (a,): {b: 0.5, EOS_ID: 0.5}, (a, b): {EOS_ID: 1.0}})
    # After two steps two hypotheses have ended: () (ln 0.4 / 1) and (a) (ln 0.3 / 2^0.7). Stopping
    # there, as a search that counts finished hypotheses does, misses (a, b): ln 0.3 / 3^0.7, the best.
    ids, _, score = model.beam_search(torch.ones(1, 3, dtype=torch.long), beam_size=2, max_length=5, alpha=0.7)
    assert ids == [a, b]
    assert score == pytest.approx(math.log(0.6 * 0.5 * 1.0) / 3**0.7, rel=1e-4)
    assert math.log(0.6 * 0.5) / 3**0.7 > max(math.log(0.4), math.log(0.3) / 2**0.7)  # the case is the one described


def test_greedy_stops_once_every_row_has_ended():
    calls = []
    model = _scripted({(): {4: 0.9}, (4,): {EOS_ID: 0.9}})
    step = model.step
    model.step = lambda *args: calls.append(1) or step(*args)
    rows, attention = model.greedy(torch.ones(1, 3, dtype=torch.long), max_length=20)
    assert rows == [[4]] and len(calls) == 2 and attention[0].shape == (2, 3)
