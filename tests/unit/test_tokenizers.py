"""Tokenizers: round trips, vocabularies learned from the training texts only, and the
order of BPE merges on a corpus counted by hand."""

from __future__ import annotations

import json

import pytest

from components.data.tokenizers import (
    SPECIALS, BPETokenizer, CharTokenizer, NotFittedError, WordTokenizer, make_tokenizer, tokenizer_from_dict,
)

TEXTS = ["To be, or not to be: that is the question.", "Whether 'tis nobler in the mind to suffer"]


def test_characters_round_trip_and_unseen_ones_are_unknown():
    tok = CharTokenizer().fit(TEXTS)
    assert tok.vocab_[:4] == list(SPECIALS)
    for text in TEXTS:
        assert tok.decode(tok.encode(text)) == text
    assert tok.encode("tz") == [tok.encode("t")[0], 1]  # 'z' never seen: <UNK>
    assert tok.encode("to", add_eos=True)[-1] == 3 and tok.decode(tok.encode("to", add_eos=True)) == "to"
    # the most frequent character first (a space), ties in character order
    assert tok.vocab_[4] == " " and tok.vocab_size_ == 4 + len(set("".join(TEXTS)))


def test_words_by_frequency_with_a_minimum_and_a_cap():
    tok = WordTokenizer(min_freq=2).fit(TEXTS)
    # to x3, be x2, the x2: most frequent first, ties alphabetical; each seen once is left out
    assert tok.vocab_ == [*SPECIALS, "to", "be", "the"]
    assert tok.tokenize("To be, or NOT?") == ["to", "be", ",", "or", "not", "?"]
    assert tok.encode("To be, or NOT?") == [4, 5, 1, 1, 1, 1]
    capped = WordTokenizer(max_vocab=6).fit(TEXTS)
    assert capped.vocab_ == [*SPECIALS, "to", "be"]
    full = WordTokenizer().fit(TEXTS)
    assert full.decode(full.encode(TEXTS[0])) == "to be, or not to be: that is the question."
    assert full.tokenize("don't o'clock 'tis") == ["don't", "o'clock", "'", "tis"]
    assert WordTokenizer(lower=False).fit(TEXTS).tokenize("To") == ["To"]


def test_bpe_learns_the_merges_counted_by_hand():
    # Each word gets a leading "▁". Pair counts: (u,g) 20; then (▁,p) 17; then (u,n) 16
    # (hug x10, pug x5, pun x12, bun x4, hugs x5: the Hugging Face course's corpus).
    corpus = ["hug"] * 10 + ["pug"] * 5 + ["pun"] * 12 + ["bun"] * 4 + ["hugs"] * 5
    alphabet = len(set("▁hugpnbs"))
    tok = BPETokenizer(vocab_size=len(SPECIALS) + alphabet + 3).fit(corpus)
    assert tok.merges() == [("u", "g"), ("▁", "p"), ("u", "n")]
    assert tok.vocab_size_ == 15 and tok.tokenize("pun hug") == ["▁p", "un", "▁", "h", "ug"]
    assert tok.decode(tok.encode("pun hug bug")) == "pun hug bug"
    assert tok.tokens(tok.encode("hux")) == ["▁", "h", "u", "<UNK>"]  # x was never seen


def test_bpe_round_trips_real_text_and_stays_within_its_vocabulary():
    text = " ".join(TEXTS * 20)
    tok = BPETokenizer(vocab_size=60).fit([text])
    assert tok.vocab_size_ <= 60 and len(tok.merges()) > 10
    for sentence in TEXTS:
        assert tok.decode(tok.encode(sentence)) == sentence
    assert len(tok.encode(TEXTS[0])) < len(TEXTS[0])  # merged: fewer tokens than characters


@pytest.mark.parametrize("tok", [
    CharTokenizer(), WordTokenizer(min_freq=1), WordTokenizer(stop_words="english", stem="english"),
    BPETokenizer(vocab_size=50),
])
def test_a_saved_tokenizer_encodes_as_the_fitted_one(tok):
    tok.fit(TEXTS * 3)
    restored = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert type(restored) is type(tok)
    for text in [*TEXTS, "an unseen sentence!"]:
        assert restored.encode(text) == tok.encode(text)
    assert restored.vocab_size_ == tok.vocab_size_
    texts = [*TEXTS, "an unseen sentence!", ""]
    assert restored.encode_batch(texts) == [tok.encode(t) for t in texts]  # the batch path, text by text


def test_stop_words_go_and_words_become_their_snowball_stems():
    tok = WordTokenizer(stop_words="english", stem="english").fit(["The runners were running; one runs."])
    assert tok.tokenize("The runners were running; one runs.") == ["runner", "run", ";", "run", "."]
    # the same stem whatever the inflection, so a word seen in one form is known in another
    assert tok.encode("Running!")[0] == tok.encode("runs")[0] != 1
    assert tok.tokenize("it is what it is") == ["it", "is", "what", "it", "is"]  # only stop words: kept, never empty
    tagged = WordTokenizer(stem="english").fit_tokens([["Cities", "grew"]])
    assert tagged.encode_tokens(["city", "grows"]) == tagged.encode_tokens(["Cities", "grew"])[:1] + [1]


def test_unfitted_and_wrong_parameters_are_named():
    with pytest.raises(NotFittedError, match="WordTokenizer is not fitted yet"):
        WordTokenizer().encode("x")
    with pytest.raises(NotFittedError, match="BPETokenizer is not fitted yet"):
        BPETokenizer().merges()
    with pytest.raises(ValueError, match="min_freq must be >= 1, got 0"):
        WordTokenizer(min_freq=0).fit(TEXTS)
    with pytest.raises(ValueError, match="max_vocab must be > 4"):
        WordTokenizer(max_vocab=4).fit(TEXTS)
    with pytest.raises(ValueError, match="vocab_size must be > 4"):
        BPETokenizer(vocab_size=3).fit(TEXTS)
    with pytest.raises(ValueError, match="stem must be None or one of arabic, .*english.*, got 'klingon'"):
        WordTokenizer(stem="klingon").fit(TEXTS)
    with pytest.raises(ValueError, match="stop_words must be None or 'english', got 'french'"):
        WordTokenizer(stop_words="french").fit(TEXTS)
    with pytest.raises(ValueError, match=r"tokenizer kind must be one of \['bpe', 'char', 'word'\], got 'sentencepiece'"):
        make_tokenizer("sentencepiece")
