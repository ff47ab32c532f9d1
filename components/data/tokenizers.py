"""Tokenizers: text -> token ids and back, fitted on the training split only and saved in
the bundle as data.

    CharTokenizer   one token per character
    WordTokenizer   words and punctuation; lower-casing, minimum frequency, maximum vocabulary,
                    optional stop-word removal and Snowball stemming
    BPETokenizer    byte-pair encoding learned by Hugging Face `tokenizers`; `merges()` lists
                    the learned merges in the order they were made

They follow scikit-learn's contract: `__init__` stores the parameters, `fit(texts)` learns
the vocabulary and returns self, learned state ends in `_`, and using an unfitted one is a
clear error. Every vocabulary starts with the same special tokens, so padding is id 0 for
all of them and a token never seen in training becomes `<UNK>`.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

PAD, UNK, BOS, EOS = "<PAD>", "<UNK>", "<BOS>", "<EOS>"
SPECIALS = (PAD, UNK, BOS, EOS)  # ids 0, 1, 2, 3 in every vocabulary
BOS_ID, EOS_ID = SPECIALS.index(BOS), SPECIALS.index(EOS)

# a word (with an inner apostrophe: don't, o'clock) or one punctuation mark
_WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def stemmers() -> list[str]:
    """The Snowball stemmers `WordTokenizer(stem=...)` can use."""
    import snowballstemmer

    return list(snowballstemmer.algorithms())


@functools.cache
def _stemmer(language: str) -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer(language)


@functools.cache
def _stop_words(language: str) -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return ENGLISH_STOP_WORDS


class NotFittedError(ValueError):
    """A tokenizer was used before `fit`."""


class _Vocabulary:
    """Shared by the tokenizers whose vocabulary is a list of strings (`vocab_`)."""

    vocab_: list[str]

    @property
    def vocab_size_(self) -> int:
        """Tokens in the learned vocabulary, specials included."""
        return len(self._fitted().vocab_)

    def tokenize(self, text: str) -> list[str]:
        raise NotImplementedError

    def encode(self, text: str, add_eos: bool = False) -> list[int]:
        """Token ids of `text`; unknown tokens are `<UNK>` (1); `add_eos` appends `<EOS>` (3)."""
        index = self._fitted()._index
        ids = [index.get(token, 1) for token in self.tokenize(text)]
        return ids + [3] if add_eos else ids

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        """`encode` of each text."""
        return [self.encode(text) for text in texts]

    def tokens(self, ids: Iterable[int]) -> list[str]:
        vocab = self._fitted().vocab_
        return [vocab[i] for i in ids]

    def _fitted(self) -> Any:
        if not hasattr(self, "vocab_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(texts) first")
        return self

    def _learn(self, counts: Counter[str], min_freq: int, max_vocab: int | None) -> None:
        # most frequent first, ties alphabetical, so the same texts give the same ids
        kept = sorted((t for t, c in counts.items() if c >= min_freq and t not in SPECIALS), key=lambda t: (-counts[t], t))
        if max_vocab is not None:
            kept = kept[: max(max_vocab - len(SPECIALS), 0)]
        self.vocab_ = [*SPECIALS, *kept]
        self._index = {token: i for i, token in enumerate(self.vocab_)}


class CharTokenizer(_Vocabulary):
    """One token per character."""

    kind = "char"

    def __init__(self, *, lower: bool = False) -> None:
        self.lower = lower

    def fit(self, texts: Iterable[str]) -> "CharTokenizer":
        self._learn(Counter(ch for text in texts for ch in self._prepare(text)), 1, None)
        return self

    def tokenize(self, text: str) -> list[str]:
        return list(self._prepare(text))

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        return "".join(t for t in self.tokens(ids) if not (skip_special and t in SPECIALS))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": {"lower": self.lower}, "vocab": self._fitted().vocab_}

    def _prepare(self, text: str) -> str:
        return text.lower() if self.lower else text


class WordTokenizer(_Vocabulary):
    """Words and punctuation marks. Words seen fewer than `min_freq` times in training, or
    beyond the `max_vocab` most frequent (specials included), are `<UNK>`.

    `stop_words="english"` drops scikit-learn's English stop words (a text made of stop
    words only keeps them: no text becomes empty); `stem` names a Snowball stemmer
    ("english", "german", ...) that maps each word to its stem (running, runs -> run).
    """

    kind = "word"

    def __init__(
        self, *, lower: bool = True, min_freq: int = 1, max_vocab: int | None = None,
        stop_words: str | None = None, stem: str | None = None,
    ) -> None:
        self.lower = lower
        self.min_freq = min_freq
        self.max_vocab = max_vocab
        self.stop_words = stop_words
        self.stem = stem

    def fit(self, texts: Iterable[str]) -> "WordTokenizer":
        self._check_params()
        self._learn(Counter(t for text in texts for t in self.tokenize(text)), self.min_freq, self.max_vocab)
        return self

    def tokenize(self, text: str) -> list[str]:
        tokens = _WORD.findall(text.lower() if self.lower else text)
        if self.stop_words is not None:
            kept = [t for t in tokens if t.lower() not in _stop_words(self.stop_words)]
            tokens = kept or tokens
        return [self._stemmed(t) for t in tokens] if self.stem is not None else tokens

    def spans(self, text: str) -> list[tuple[str, int, int]]:
        """(token, start, end) of each token of `text`, the offsets into `text` as given."""
        return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]

    def fit_tokens(self, sentences: Iterable[list[str]]) -> "WordTokenizer":
        """`fit` on sentences already split into tokens (tagged data keeps its own tokens)."""
        self._check_params()
        counts = Counter(self._case(t) for tokens in sentences for t in tokens)
        self._learn(counts, self.min_freq, self.max_vocab)
        return self

    def encode_tokens(self, tokens: list[str]) -> list[int]:
        """Ids of tokens already split; unknown ones are `<UNK>` (1)."""
        index = self._fitted()._index
        return [index.get(self._case(t), 1) for t in tokens]

    def _case(self, token: str) -> str:
        token = token.lower() if self.lower else token
        return self._stemmed(token) if self.stem is not None else token

    def _stemmed(self, token: str) -> str:
        # Stemming a word costs microseconds and texts repeat their words: remember each one.
        cache = self.__dict__.setdefault("_stems", {})
        if token not in cache:
            cache[token] = _stemmer(self.stem).stemWord(token)
        return cache[token]

    def _check_params(self) -> None:
        if self.stop_words not in (None, "english"):
            raise ValueError(f"stop_words must be None or 'english', got {self.stop_words!r}")
        if self.stem is not None and self.stem not in stemmers():
            raise ValueError(f"stem must be None or one of {', '.join(stemmers())}, got {self.stem!r}")
        if self.min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {self.min_freq}")
        if self.max_vocab is not None and self.max_vocab <= len(SPECIALS):
            raise ValueError(f"max_vocab must be > {len(SPECIALS)} (the special tokens), got {self.max_vocab}")

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """Tokens joined by spaces, with no space before punctuation."""
        text = " ".join(t for t in self.tokens(ids) if not (skip_special and t in SPECIALS))
        return re.sub(r" ([^\w\s<])", r"\1", text)

    def to_dict(self) -> dict[str, Any]:
        params = {"lower": self.lower, "min_freq": self.min_freq, "max_vocab": self.max_vocab,
                  "stop_words": self.stop_words, "stem": self.stem}
        return {"kind": self.kind, "params": params, "vocab": self._fitted().vocab_}


class BPETokenizer:
    """Byte-pair encoding (Sennrich et al.), learned with Hugging Face `tokenizers`: words
    split on whitespace, each marked with a leading `▁` so that decoding restores the
    spaces; merges are learned until the vocabulary holds `vocab_size` tokens."""

    kind = "bpe"

    def __init__(self, *, vocab_size: int = 1000, min_frequency: int = 2, lower: bool = False) -> None:
        self.vocab_size = vocab_size
        self.min_frequency = min_frequency
        self.lower = lower

    def fit(self, texts: Iterable[str]) -> "BPETokenizer":
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        if self.vocab_size <= len(SPECIALS):
            raise ValueError(f"vocab_size must be > {len(SPECIALS)} (the special tokens), got {self.vocab_size}")
        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        if self.lower:
            tokenizer.normalizer = normalizers.Lowercase()
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(
            vocab_size=self.vocab_size, min_frequency=self.min_frequency, special_tokens=list(SPECIALS),
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts, trainer=trainer)
        self.tokenizer_ = tokenizer
        return self

    @property
    def vocab_size_(self) -> int:
        """Tokens in the learned vocabulary, specials included (at most `vocab_size`)."""
        return self._fitted().get_vocab_size()

    def tokenize(self, text: str) -> list[str]:
        return self._fitted().encode(text).tokens

    def encode(self, text: str, add_eos: bool = False) -> list[int]:
        ids = self._fitted().encode(text).ids
        return ids + [3] if add_eos else ids

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        """`encode` of each text, all at once: Hugging Face's Rust loop over the batch (on
        several threads) instead of one Python call per text."""
        return [e.ids for e in self._fitted().encode_batch(list(texts))]

    def tokens(self, ids: Iterable[int]) -> list[str]:
        tokenizer = self._fitted()
        return [tokenizer.id_to_token(i) for i in ids]

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        return self._fitted().decode(list(ids), skip_special_tokens=skip_special)

    def merges(self) -> list[tuple[str, str]]:
        """The learned merges, first made first."""
        model = json.loads(self._fitted().to_str())["model"]
        return [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]

    def to_dict(self) -> dict[str, Any]:
        params = {"vocab_size": self.vocab_size, "min_frequency": self.min_frequency, "lower": self.lower}
        return {"kind": self.kind, "params": params, "tokenizer": self._fitted().to_str()}

    def _fitted(self) -> Any:
        if not hasattr(self, "tokenizer_"):
            raise NotFittedError("this BPETokenizer is not fitted yet: call fit(texts) first")
        return self.tokenizer_


Tokenizer = CharTokenizer | WordTokenizer | BPETokenizer
_KINDS: dict[str, type] = {"char": CharTokenizer, "word": WordTokenizer, "bpe": BPETokenizer}


def make_tokenizer(kind: str, **params: Any) -> Tokenizer:
    """An unfitted tokenizer of `kind` (char, word or bpe)."""
    if kind not in _KINDS:
        raise ValueError(f"tokenizer kind must be one of {sorted(_KINDS)}, got {kind!r}")
    return _KINDS[kind](**params)


def tokenizer_from_dict(data: dict[str, Any]) -> Tokenizer:
    """A fitted tokenizer back from `to_dict()` (a bundle's JSON): nothing is re-learned."""
    tokenizer = make_tokenizer(data["kind"], **data["params"])
    if isinstance(tokenizer, BPETokenizer):
        from tokenizers import Tokenizer as HFTokenizer

        tokenizer.tokenizer_ = HFTokenizer.from_str(data["tokenizer"])
    else:
        tokenizer.vocab_ = list(data["vocab"])
        tokenizer._index = {token: i for i, token in enumerate(tokenizer.vocab_)}
    return tokenizer
