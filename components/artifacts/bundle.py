"""The model bundle: the unit that is registered, versioned and served.

    model.safetensors   weights of a torch model, or
    model.skops         a fitted scikit-learn estimator (`components.artifacts.estimator_io`), or
    model.ubj           an XGBoost booster in XGBoost's own format (`components.artifacts.xgboost_io`), or
    ensemble.json +     an ensemble: its members, each stored as above, and the combination
      members/, meta.skops                                   (`components.artifacts.ensemble_io`)
    spec.json           {kind, params} for `components.models.build`
    preprocess.json     the fitted feature state (schema, transforms, class labels)
    metrics.json        validation and test metrics
    lineage.json        Delta table versions read, config hash, code version
    reference.parquet   table models: training rows and the model's answers, for drift
                        monitoring (`components.artifacts.reference`); loading ignores it

Loading builds a torch model from spec.json and reads its weights with safetensors, reads
an estimator with skops against a type allowlist, or reads an XGBoost model with XGBoost's
own loader into its scikit-learn wrapper (`components.artifacts.model_files`); an
ensemble's members are read the same way: nothing is unpickled.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import torch
import torch.nn as nn

from components.artifacts.checkpoint_files import read_state
from components.artifacts.ensemble_io import ENSEMBLE_FILE, copy_ensemble, read_ensemble
from components.artifacts.model_files import MODEL_FILES, read_model
from components.data.fitted_state import FittedState, state_from_dict
from components.data.embedding_requests import EmbeddingQuery
from components.data.generation_requests import Generation
from components.data.pairs_requests import Translation
from components.data.tagged_requests import Sentence, tagged_answers
from components.data.tokenizers import SPECIALS
from components.data.word_vectors import WordVectors
from components.evaluation.verification import embed, pair_distances
from components.models import WORD_VECTOR_TASKS, family, training_task
from components.models.outputs import predict_arrays


def save_bundle(
    directory: str | Path,
    *,
    checkpoint_dir: str | Path,
    features: FittedState,
    metrics: dict[str, float],
    lineage: dict[str, Any],
) -> Path:
    """Assemble a bundle in `directory` from a training checkpoint and the feature state.

    The checkpoint holds torch weights (model.safetensors), a fitted estimator (model.skops),
    an XGBoost booster (model.ubj) or an ensemble (ensemble.json and its members); whichever
    it holds is copied.
    """
    directory = Path(directory)
    source = Path(checkpoint_dir)
    if (source / ENSEMBLE_FILE).is_file():
        directory.mkdir(parents=True, exist_ok=True)
        copy_ensemble(source, directory)
    else:
        present = [f for f in MODEL_FILES.values() if (source / f).is_file()]
        if not present:
            raise FileNotFoundError(
                f"checkpoint_dir {checkpoint_dir} holds no model: expected {' or '.join(MODEL_FILES.values())} "
                f"or {ENSEMBLE_FILE}"
            )
        if len(present) > 1:
            raise ValueError(f"checkpoint_dir {checkpoint_dir} must hold one model file, got {present}")
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / present[0], directory / present[0])
    _write_json(directory / "spec.json", read_state(checkpoint_dir)["spec"])
    _write_json(directory / "preprocess.json", features.to_dict())
    _write_json(directory / "metrics.json", metrics)
    # The preprocessing the model was trained with, by content: a bundle whose
    # preprocess.json no longer matches is refused at load (train/serve skew).
    _write_json(directory / "lineage.json", {**lineage, PREPROCESS_HASH: _sha256(directory / "preprocess.json")})
    return directory


PREPROCESS_HASH = "preprocess_sha256"


class BundleSkewError(ValueError):
    """A bundle's preprocessing differs from the one recorded when it was trained."""


@dataclass
class Bundle:
    """A loaded bundle, ready to answer: raw feature rows in, predictions out."""

    model: nn.Module | Any  # Any: a fitted scikit-learn estimator (XGBoost's wrapper included)
    spec: dict[str, Any]
    features: FittedState
    metrics: dict[str, float]
    lineage: dict[str, Any]

    @property
    def task(self) -> str:
        """What the model answers: classification, regression or tagging, as its data says,
        or verification for embedding models (same or different, for pairs)."""
        if family(self.spec) == "torch" and training_task(self.spec) == "metric_learning":
            return "verification"
        if family(self.spec) == "torch" and training_task(self.spec) in WORD_VECTOR_TASKS:
            return "embeddings"
        return self.features.task

    @property
    def threshold(self) -> float:
        """Verification models: "same" iff distance <= this, chosen on validation."""
        if "val_threshold" not in self.metrics:
            raise ValueError(f"{self.spec.get('kind')!r} bundle has no val_threshold in metrics.json: "
                             f"it holds {sorted(self.metrics)}")
        return float(self.metrics["val_threshold"])

    @property
    def is_estimator(self) -> bool:
        """Whether the model is a scikit-learn estimator (else an nn.Module)."""
        return not isinstance(self.model, nn.Module)

    def predict(self, rows: pl.DataFrame | list[Any]) -> list[Any]:
        """One answer per row (a table's raw feature rows, images, or (image, image) pairs):
        {"label", "probabilities"} for classifiers, {"distance", "same", "threshold"} for
        verification models, a number otherwise."""
        if self.task == "verification":
            return self.verify(rows)
        if self.task == "embeddings":
            return self.embed_words(rows)
        if self.task == "tagging":
            return self.tag(rows)
        if self.task == "language_model":
            return self.generate(rows)
        if self.task == "seq2seq":
            return self.translate(rows)
        pred, proba = predict_arrays(self.model, self.features.inputs(rows), self.task, self.features.out_features)
        return self.features.answers(proba if proba is not None else pred)

    def tag(self, sentences: list[Sentence]) -> list[dict[str, Any]]:
        """Tags and entities (with character offsets) of each sentence."""
        if not sentences:
            return []
        x = torch.from_numpy(self.features.inputs([s.tokens for s in sentences]))  # (N, T) ids
        self.model.eval()
        paths = self.model.decode(x)
        return tagged_answers(sentences, self.features.tag_names(paths))

    def generate(self, requests: list[Generation]) -> list[dict[str, Any]]:
        """Each prompt's sampled continuation: {"prompt", "text" (the continuation), "tokens"}."""
        tokenizer = self.features.tokenizer
        self.model.eval()
        answers = []
        for request in requests:
            prompt = torch.tensor([tokenizer.encode(request.prompt)])  # (1, T)
            generator = torch.Generator().manual_seed(request.seed) if request.seed is not None else None
            ids = self.model.generate(prompt, request.max_tokens, request.temperature, request.top_k, generator)
            new = ids[0, prompt.shape[1]:].tolist()
            answers.append({"prompt": request.prompt, "text": tokenizer.decode(new), "tokens": len(new)})
        return answers

    def translate(self, requests: list[Translation]) -> list[dict[str, Any]]:
        """Each source's target, greedy (beam_size 1) or by beam search: {"source", "text"}."""
        state = self.features
        self.model.eval()
        answers = []
        for request in requests:
            x = torch.from_numpy(state.inputs([request.source]))  # (1, S)
            length = (request.max_length or state.max_target_length) + 1  # room for <EOS>
            if request.beam_size == 1:
                ids = self.model.greedy(x, length)[0][0]
            else:
                ids = self.model.beam_search(x, request.beam_size, length)[0]
            answers.append({"source": request.source, "text": state.target_text(ids)})
        return answers

    @functools.cached_property
    def word_vectors(self) -> WordVectors:
        """A word-vector model's vectors by word (its tokenizer's words, specials left out)."""
        first = len(SPECIALS)
        return WordVectors(self.features.tokenizer.vocab_[first:], self.model.vectors()[first:])

    def embed_words(self, queries: list[EmbeddingQuery]) -> list[dict[str, Any]]:
        """A word's vector and nearest words, or an analogy's nearest words, per query."""
        vectors, answers = self.word_vectors, []
        for q in queries:
            if q.word is not None:
                nearest = vectors.nearest(q.word, q.k)
                answer: dict[str, Any] = {"word": q.word, "vector": vectors.vector(q.word).round(5).tolist()}
            else:
                nearest = vectors.combination(q.positive, q.negative, q.k)
                answer = {"positive": list(q.positive), "negative": list(q.negative)}
            answers.append({**answer, "nearest": [{"word": w, "similarity": round(s, 5)} for w, s in nearest]})
        return answers

    def verify(self, pairs: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
        """Distance and same/different at the bundle's threshold for each (image, image) pair."""
        if not pairs:
            return []
        firsts, seconds = zip(*pairs)
        embeddings = embed(self.model, self.features.inputs([*firsts, *seconds]))  # (2N, D)
        distances = pair_distances(embeddings[: len(pairs)], embeddings[len(pairs) :])  # (N,)
        threshold = self.threshold
        return [{"distance": float(d), "same": bool(d <= threshold), "threshold": threshold} for d in distances]


def load_bundle(directory: str | Path) -> Bundle:
    """Read a bundle written by `save_bundle`: a torch model, a scikit-learn estimator, an
    XGBoost model (in XGBoost's scikit-learn wrapper) or an ensemble of those."""
    directory = Path(directory)
    spec = _read_json(directory / "spec.json")
    # spec.json says which model file to expect; without a usable kind, report the torch one
    model_family = family(spec) if isinstance(spec, dict) and isinstance(spec.get("kind"), str) else "torch"
    model_file = ENSEMBLE_FILE if model_family == "ensemble" else MODEL_FILES[model_family]
    missing = [f for f in (model_file, "spec.json", "preprocess.json") if not (directory / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory} is not a model bundle: missing {missing}")
    lineage = _read_json(directory / "lineage.json")
    recorded = lineage.get(PREPROCESS_HASH) if isinstance(lineage, dict) else None
    if recorded is not None and recorded != _sha256(directory / "preprocess.json"):
        raise BundleSkewError(
            f"{directory}: preprocess.json is not the preprocessing this model was trained with (its sha256 differs "
            f"from lineage.json's {PREPROCESS_HASH} {recorded[:12]}...); refusing to serve it"
        )
    features = state_from_dict(_read_json(directory / "preprocess.json"))
    model = read_ensemble(directory) if model_family == "ensemble" else read_model(directory, spec)
    return Bundle(
        model=model,
        spec=spec,
        features=features,
        metrics=_read_json(directory / "metrics.json"),
        lineage=lineage,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else {}
