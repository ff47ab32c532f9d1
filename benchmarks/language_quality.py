"""Language quality: the BANNER paper's comparison of losses and decoders for named-entity
recognition on the generated NER set, and sentiment on Rotten Tomatoes from TF-IDF with a
logistic regression, an LSTM from scratch and the same LSTM started from GloVe.

Model quality, not speed, with the project's own code and no Ray: every torch model is
trained by `train_model`, the loop Ray Train runs in production, in this process under
tests/unit/test_loop.py's `MemorySession` (numpy arrays in memory; it keeps a copy of every
checkpoint the loop writes). What Ray changes is where the loop runs, not what it computes.
Settings are read from the pipeline configs themselves (`load_pipeline` of
conf/pipelines/ner_bilstm_crf.yaml, sentiment_lstm.yaml and sentiment_tfidf.yaml), so the
benchmark follows them when they change.

    .venv/bin/python benchmarks/language_quality.py [--ner-seeds 3] [--text-seeds 2] [--threads 1] [--no-write]

1. NER. ner_bilstm_crf.yaml's source: `ner_sentences(3000, seed=0)` landed as its CoNLL
   files (`conll_text`, `write_landing_conll`) and read back by `read_conll`, the bronze
   rows ingest keeps (tokens, tags, _source_file, _row); `prepare_tagged` with the config's
   split (0.7/0.15/0.15, seed 0) and tagging section (min_freq 2, max_length 48). The
   config's `tagger` (BiLSTM, embed_dim 64, hidden 64, dropout 0.2) and training (at most 6
   epochs, batch 32, Adam lr 0.005, grad_clip 5, early stopping on val_micro_f1, patience
   2, restore best) for five rows: a softmax decoder trained with cross-entropy, with the
   cost-sensitive weights (`training.class_weights`), with focal loss
   (`training.focal_gamma` 2), with both, and the config's own CRF decoder; each for
   `training.seed` 0, 1, 2 (`--ner-seeds`). The model file of the last checkpoint the loop
   wrote (restore-best puts the best epoch's weights there, as a bundle takes them) is
   loaded into a freshly built model and scored on the test split by `tagging_report`, the
   call the register step makes: entity micro and macro F1, F1 per type, token accuracy.
2. Sentiment. `bundled_text_frame("rotten_tomatoes")`, split (stratified 0.8/0.1/0.1, seed
   0) and tokenized (word, lower, min_freq 2, max_length 64) by `prepare_text` as each
   sentiment config says: (a) sentiment_tfidf.yaml, TF-IDF (sublinear tf) vectors into the
   `logistic_regression` estimator (C 4), built by `components.models.build` and fitted on
   the train split's inputs; (b) sentiment_lstm.yaml's `rnn` (bidirectional LSTM,
   embed_dim 50, max pooling) without its `text.embeddings`, from scratch; (c) the same with
   them: GloVe 6B 50d rows for the fitted vocabulary (`load_vectors(...).embedding_matrix`,
   seeded with training.seed as flows/train.py does), written as `{"embed.weight": ...}` and
   passed as the loop's `init_from` (`word_vectors_init`). (b) and (c) for `training.seed`
   0 and 1 (`--text-seeds`); (a) is deterministic. Scored on the test split by
   `holdout_report` (accuracy, ROC AUC), the register step's call.

Everything runs with torch.set_num_threads(1) (`--threads`), as a 1-CPU Ray Train worker does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.nn as nn
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from _in_memory import Arrays, train_in_memory  # noqa: E402
from _common import spread_cell, table, write_section  # noqa: E402

from components.config import PipelineConfig, load_pipeline  # noqa: E402
from components.data.bundled_text import bundled_text_frame  # noqa: E402
from components.data.conll import read_conll, write_landing_conll  # noqa: E402
from components.data.ner_synthetic import conll_text, ner_sentences  # noqa: E402
from components.data.preparation import LABEL  # noqa: E402
from components.data.tagged_preparation import TOKENS as TAG_TOKENS, TaggedState, prepare_tagged  # noqa: E402
from components.data.text_preparation import TOKENS as TEXT_TOKENS, TextState, prepare_text  # noqa: E402
from components.data.word_vectors import load_vectors  # noqa: E402
from components.evaluation.entities import entity_counts  # noqa: E402
from components.evaluation.report import holdout_report, tagging_report  # noqa: E402
from components.models import build  # noqa: E402
from components.training.loop import loop_config  # noqa: E402
from components.training.transfer import word_vectors_init  # noqa: E402

NER_YAML = ROOT / "conf" / "pipelines" / "ner_bilstm_crf.yaml"
LSTM_YAML = ROOT / "conf" / "pipelines" / "sentiment_lstm.yaml"
TFIDF_YAML = ROOT / "conf" / "pipelines" / "sentiment_tfidf.yaml"
NER_SENTENCES = 3000  # flows/ingest.py lands this many when source.limit does not say
TYPES = ("PER", "LOC", "ORG", "DATE")

# NER rows: (label, decoder, training.class_weights, training.focal_gamma)
BASELINE, CRF = "softmax + cross-entropy", "CRF (ner_bilstm_crf.yaml)"
NER_ROWS = [
    (BASELINE, "softmax", False, 0.0),
    ("softmax + cost-sensitive weights", "softmax", True, 0.0),
    ("softmax + focal loss (gamma 2)", "softmax", False, 2.0),
    ("softmax + cost-sensitive + focal", "softmax", True, 2.0),
    (CRF, "crf", False, 0.0),
]
# NER columns: (title, tagging_report metric)
NER_COLUMNS = [("micro F1", "test_micro_f1"), ("macro F1", "test_macro_f1"),
               *((f"{t} F1", f"test_{t}_f1") for t in TYPES), ("token acc", "test_token_accuracy")]
TFIDF, SCRATCH, GLOVE = "TF-IDF + logistic_regression", "LSTM from scratch", "LSTM from GloVe 6B 50d"



@dataclass
class Trained:
    """One `train_model` call: its reports, the model rebuilt from its last checkpoint, the
    seconds `train_model` took, and whether that checkpoint's weights equal the best epoch's."""

    label: str
    seed: int
    history: list[dict[str, float]]
    model: nn.Module
    seconds: float
    best_equals_last: bool
    test: dict[str, float]

    @property
    def epochs(self) -> int:
        return len(self.history)

    @property
    def best_epoch(self) -> int:
        last = self.history[-1]
        return int(last.get("best_epoch", last["epoch"]))


# ---------------------------------------------------------------------------- training


def _model_spec(pipeline: PipelineConfig, **params: Any) -> dict[str, Any]:
    spec = pipeline.model.model_dump(include={"kind", "params"})
    return {"kind": spec["kind"], "params": {**spec["params"], **params}}


# ---------------------------------------------------------------------------- 1. NER


def ner_data(cfg: PipelineConfig, root: Path) -> tuple[dict[str, Arrays], TaggedState, pl.DataFrame]:
    """The config's bronze sentences as ingest keeps them, split and fitted by `prepare_tagged`;
    (inputs, tags) arrays per split as `_arrays` of tests/unit/test_tagged_modality.py makes them."""
    if cfg.source.format != "bundled_ner" or cfg.tagging is None:
        raise ValueError(f"{cfg.name}: expected a bundled_ner source with a tagging section")
    n = cfg.source.limit or NER_SENTENCES
    paths = write_landing_conll(conll_text(ner_sentences(n, seed=0)), root / "landing", cfg.source.files,
                                stem=cfg.source.dataset)
    parts = [read_conll(p.read_bytes(), p.name) for p in paths]
    if any(bad.height for _, bad in parts):
        raise RuntimeError(f"{cfg.name}: generated sentences were quarantined")
    bronze = pl.concat([good for good, _ in parts])
    silver, state = prepare_tagged(bronze, cfg.split, cfg.tagging)
    arrays = {}
    for split, frame in silver.items():
        batch = {TAG_TOKENS: np.array([np.array(r) for r in frame[TAG_TOKENS].to_list()], dtype=object),
                 LABEL: np.array([np.array(r) for r in frame[LABEL].to_list()], dtype=object)}
        arrays[split] = (state.batch_inputs(batch), state.batch_labels(batch))
    return arrays, state, bronze


def ner_runs(cfg: PipelineConfig, data: dict[str, Arrays], state: TaggedState, seeds: int) -> dict[str, list[Trained]]:
    runs: dict[str, list[Trained]] = {label: [] for label, *_ in NER_ROWS}
    x, y = data["test"]
    for i in range(seeds):
        seed = cfg.training.seed + i
        print(f"NER, ner_bilstm_crf.yaml, seed {seed} ...", flush=True)
        for label, decoder, weights, gamma in NER_ROWS:
            training = {**cfg.training.model_dump(), "seed": seed, "class_weights": weights, "focal_gamma": gamma}
            config = loop_config(_model_spec(cfg, decoder=decoder), training, state.info)
            history, model, seconds, same = train_in_memory(label, config, data)
            test = tagging_report(model, x, y, state.info.classes).metrics
            run = Trained(label, seed, history, model, seconds, same, test)
            runs[label].append(run)
            print(f"  {label}: test micro F1 {test['test_micro_f1']:.4f}, DATE F1 {test['test_DATE_f1']:.4f}, "
                  f"{run.epochs} epochs (best {run.best_epoch}), {seconds:.1f} s", flush=True)
    return runs


# ---------------------------------------------------------------------------- 2. sentiment


def text_arrays(silver: dict[str, pl.DataFrame], state: TextState) -> dict[str, Arrays]:
    """(inputs, labels) per split: the silver token ids through the state's one collate
    (`batch_inputs`, what `state.inputs` applies to raw texts)."""
    return {split: (state.batch_inputs({TEXT_TOKENS: frame[TEXT_TOKENS].to_list()}), frame[LABEL].to_numpy())
            for split, frame in silver.items()}


def scored(model: Any, data: dict[str, Arrays], info: Any) -> dict[str, float]:
    x, y = data["test"]
    return holdout_report(model, x, y, "classification", info.out_features, list(info.classes)).metrics


def sentiment_runs(tfidf_cfg: PipelineConfig, lstm_cfg: PipelineConfig, seeds: int, root: Path) -> dict[str, Any]:
    for key in ("split", "source"):
        if getattr(tfidf_cfg, key) != getattr(lstm_cfg, key):
            raise ValueError(f"{TFIDF_YAML.name} and {LSTM_YAML.name} differ in {key}: not a side-by-side comparison")
    if tfidf_cfg.text is None or lstm_cfg.text is None or tfidf_cfg.schema_ is None or lstm_cfg.schema_ is None:
        raise ValueError("both sentiment configs need text and schema sections")
    emb = lstm_cfg.text.embeddings
    if emb is None:
        raise ValueError(f"{LSTM_YAML.name} has no text.embeddings: nothing to compare the scratch LSTM with")
    raw = bundled_text_frame(lstm_cfg.source.dataset)

    # (a) TF-IDF + logistic regression
    print("sentiment, sentiment_tfidf.yaml ...", flush=True)
    t0 = time.perf_counter()
    silver, tf_state = prepare_text(raw, tfidf_cfg.schema_, tfidf_cfg.split, tfidf_cfg.text)
    tf_data = text_arrays(silver, tf_state)
    prep_s = time.perf_counter() - t0
    estimator = build(_model_spec(tfidf_cfg), tf_state.info)
    t0 = time.perf_counter()
    estimator.fit(*tf_data["train"])
    fit_s = time.perf_counter() - t0
    tf_test = scored(estimator, tf_data, tf_state.info)
    print(f"  {TFIDF}: test accuracy {tf_test['test_accuracy']:.4f}, AUC {tf_test['test_roc_auc']:.4f}, "
          f"fit {fit_s:.1f} s", flush=True)

    # (b), (c) the LSTM, without and with text.embeddings
    silver, state = prepare_text(raw, lstm_cfg.schema_, lstm_cfg.split, lstm_cfg.text)
    data = text_arrays(silver, state)
    same_rows = all(np.array_equal(data[s][1], tf_data[s][1]) for s in data) and \
        tf_state.tokenizer.vocab_size_ == state.tokenizer.vocab_size_
    vocab = state.tokenizer.tokens(range(state.tokenizer.vocab_size_))
    vectors = load_vectors(emb.vectors)
    runs: dict[str, list[Trained]] = {SCRATCH: [], GLOVE: []}
    found = 0
    for i in range(seeds):
        seed = lstm_cfg.training.seed + i
        print(f"sentiment, sentiment_lstm.yaml, seed {seed} ...", flush=True)
        training = {**lstm_cfg.training.model_dump(), "seed": seed}
        matrix, found = vectors.embedding_matrix(vocab, seed=seed)
        weights = root / f"{lstm_cfg.name}-{emb.vectors}-seed{seed}.safetensors"
        save_file({"embed.weight": torch.from_numpy(matrix)}, str(weights))
        inits = {SCRATCH: None, GLOVE: word_vectors_init(str(weights), emb.vectors, emb.freeze, emb.lr_scale)}
        for label, init in inits.items():
            config = loop_config(_model_spec(lstm_cfg), training, state.info, init_from=init)
            history, model, seconds, same = train_in_memory(label, config, data)
            test = scored(model, data, state.info)
            runs[label].append(Trained(label, seed, history, model, seconds, same, test))
            print(f"  {label}: test accuracy {test['test_accuracy']:.4f}, AUC {test['test_roc_auc']:.4f}, "
                  f"{len(history)} epochs, {seconds:.1f} s", flush=True)
    return {"tfidf": tf_test, "tfidf_fit_s": fit_s, "tfidf_prep_s": prep_s, "runs": runs, "data": data,
            "found": found, "vocab": len(vocab), "same_rows": same_rows, "embeddings": emb}


# ---------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ner-seeds", type=int, default=3, help="training seeds of each NER row")
    parser.add_argument("--text-seeds", type=int, default=2, help="training seeds of each LSTM row")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if args.ner_seeds < 2 or args.text_seeds < 2:
        parser.error("--ner-seeds and --text-seeds must be >= 2 to show a spread")

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    ner_cfg, lstm_cfg, tfidf_cfg = load_pipeline(NER_YAML), load_pipeline(LSTM_YAML), load_pipeline(TFIDF_YAML)
    with tempfile.TemporaryDirectory(prefix="rayline-bench-langq-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        ner, tag_state, bronze = ner_data(ner_cfg, tmp / "ner")
        ner_prep_s = time.perf_counter() - t0
        print(f"NER data: {bronze.height} sentences in {bronze['_source_file'].n_unique()} CoNLL files, "
              f"{ {s: len(v[1]) for s, v in ner.items()} } ({ner_prep_s:.1f} s)", flush=True)
        t0 = time.perf_counter()
        runs = ner_runs(ner_cfg, ner, tag_state, args.ner_seeds)
        ner_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        sentiment = sentiment_runs(tfidf_cfg, lstm_cfg, args.text_seeds, tmp)
        sentiment_s = time.perf_counter() - t0
    total_s = time.perf_counter() - started

    body = _report(args, ner_cfg, lstm_cfg, tfidf_cfg, ner, tag_state, runs, sentiment, ner_prep_s, ner_s,
                   sentiment_s, total_s)
    print(body)
    if not args.no_write:
        title = "Language quality: NER losses and decoders, sentiment TF-IDF vs LSTM vs GloVe (language_quality.py)"
        write_section("language_quality", title, body)
        print("wrote benchmarks/RESULTS.md")
    return 0


# ---------------------------------------------------------------------------- report




def _seeds(first: int, n: int) -> str:
    return str(first) if n == 1 else f"{first}..{first + n - 1}"


def _gold(data: dict[str, Arrays], classes: tuple[str, ...]) -> dict[str, int]:
    """Gold entities per type in the test split."""
    x, y = data["test"]
    n = (x != 0).sum(axis=1)
    true = [[classes[t] for t in row[:k]] for row, k in zip(y.tolist(), n)]
    counts = entity_counts(true, true)
    return {t: int(counts.get(f"gold:{t}", 0)) for t in TYPES}


def _versus(runs: list[Trained], base: list[Trained], key: str) -> tuple[float, bool, int, int]:
    """(difference of the means in points, whether the two min-max ranges over the seeds
    overlap, seeds ahead, seeds behind: same seed against same seed)."""
    a, b = [r.test[key] for r in runs], [r.test[key] for r in base]
    overlap = min(a) <= max(b) and min(b) <= max(a)
    ahead = sum(x > z for x, z in zip(a, b))
    behind = sum(x < z for x, z in zip(a, b))
    return (statistics.fmean(a) - statistics.fmean(b)) * 100, overlap, ahead, behind


def _report(args: argparse.Namespace, ner_cfg: PipelineConfig, lstm_cfg: PipelineConfig, tfidf_cfg: PipelineConfig,
            ner: dict[str, Arrays], tag_state: TaggedState, runs: dict[str, list[Trained]], sentiment: dict[str, Any],
            ner_prep_s: float, ner_s: float, sentiment_s: float, total_s: float) -> str:
    """The RESULTS.md section: tables, which differences are within seed noise, notes."""
    classes = tag_state.info.classes
    rows = {s: len(v[1]) for s, v in ner.items()}
    gold = _gold(ner, classes)
    tokens_test = int((ner["test"][0] != 0).sum())
    tr = ner_cfg.training

    # ---- 1. NER
    ner_table = table(
        ["row", "decoder / loss", *(t for t, _ in NER_COLUMNS), "epochs run (best), mean", "train s"],
        [[label, _loss_text(decoder, weights, gamma),
          *(spread_cell([r.test[k] for r in runs[label]]) for _, k in NER_COLUMNS),
          f"{statistics.fmean(r.epochs for r in runs[label]):.1f} "
          f"({statistics.fmean(r.best_epoch for r in runs[label]):.1f})",
          spread_cell([r.seconds for r in runs[label]], 1)]
         for label, decoder, weights, gamma in NER_ROWS],
    )
    per_seed = table(
        ["row", *(f"seed {r.seed}: micro F1 / DATE F1" for r in runs[BASELINE])],
        [[label, *(f"{r.test['test_micro_f1']:.4f} / {r.test['test_DATE_f1']:.4f}" for r in runs[label])]
         for label, *_ in NER_ROWS],
    )

    def versus_row(label: str, base: str) -> list[object]:
        cells = []
        for _, key in NER_COLUMNS:
            diff, overlap, ahead, behind = _versus(runs[label], runs[base], key)
            cells.append(f"{diff:+.2f} {'noise' if overlap else '**beyond**'} ({ahead}/{behind})")
        return [f"{label} − {base}", *cells]

    compare_table = table(
        ["difference (points)", *(t for t, _ in NER_COLUMNS)],
        [versus_row(label, BASELINE) for label, *_ in NER_ROWS if label != BASELINE]
        + [versus_row(CRF, label) for label, *_ in NER_ROWS if label not in (BASELINE, CRF)],
    )
    pairs = [*((label, BASELINE) for label, *_ in NER_ROWS if label != BASELINE),
             *((CRF, label) for label, *_ in NER_ROWS if label not in (BASELINE, CRF))]
    beyond = {f"{label} − {base}": [title for title, key in NER_COLUMNS if not _versus(runs[label], runs[base], key)[1]]
              for label, base in pairs}
    beyond = {pair: titles for pair, titles in beyond.items() if titles}
    beyond_text = (
        "every difference in the table is within seed noise (each pair of rows' ranges over the seeds overlap)"
        if not beyond else
        "outside it (the two rows' ranges over the seeds do not overlap): "
        + "; ".join(f"{pair}: {', '.join(titles)}" for pair, titles in beyond.items())
        + ". Every other difference in the table is within seed noise"
        + ("" if len(beyond) == len(pairs) else ", and so is every column of "
           + ", ".join(f"{a} − {b}" for a, b in pairs if f"{a} − {b}" not in beyond))
    )
    means = {label: statistics.fmean(r.test["test_micro_f1"] for r in runs[label]) for label in runs}
    best = max(means, key=lambda k: means[k])

    # ---- 2. sentiment
    tf, srun = sentiment["tfidf"], sentiment["runs"]
    n_test = len(sentiment["data"]["test"][1])
    tf_acc = tf["test_accuracy"]
    binom = (tf_acc * (1 - tf_acc) / n_test) ** 0.5 * 100
    sent_rows = [[TFIDF, "sentiment_tfidf.yaml: tfidf, sublinear_tf, C 4", "deterministic (lbfgs)",
                  f"**{tf_acc:.4f}**", f"**{tf['test_roc_auc']:.4f}**", "", f"{sentiment['tfidf_fit_s']:.1f} (fit)"]]
    for label, text in ((SCRATCH, "sentiment_lstm.yaml without text.embeddings"),
                        (GLOVE, f"sentiment_lstm.yaml: embeddings {sentiment['embeddings'].vectors}, "
                                f"freeze {sentiment['embeddings'].freeze}, lr_scale {sentiment['embeddings'].lr_scale:g}")):
        rs = srun[label]
        sent_rows.append([label, text, _seeds(lstm_cfg.training.seed, args.text_seeds),
                          spread_cell([r.test["test_accuracy"] for r in rs]), spread_cell([r.test["test_roc_auc"] for r in rs]),
                          f"{statistics.fmean(r.epochs for r in rs):.1f} ({statistics.fmean(r.best_epoch for r in rs):.1f})",
                          spread_cell([r.seconds for r in rs], 1)])
    sent_table = table(["model", "config", "training.seed", "test accuracy mean (min-max)", "test ROC AUC mean (min-max)",
                        "epochs run (best), mean", "train s"], sent_rows)
    sent_seed = table(
        ["training.seed", *(f"{label}: acc / AUC" for label in srun), "GloVe − scratch acc (points)"],
        [[s.seed, *(f"{srun[label][i].test['test_accuracy']:.4f} / {srun[label][i].test['test_roc_auc']:.4f}"
                    for label in srun),
          f"{(srun[GLOVE][i].test['test_accuracy'] - s.test['test_accuracy']) * 100:+.2f}"]
         for i, s in enumerate(srun[SCRATCH])],
    )
    g_acc = [r.test["test_accuracy"] for r in srun[GLOVE]]
    s_acc = [r.test["test_accuracy"] for r in srun[SCRATCH]]
    g_auc = [r.test["test_roc_auc"] for r in srun[GLOVE]]
    s_auc = [r.test["test_roc_auc"] for r in srun[SCRATCH]]

    def noise(a: list[float], b: list[float]) -> str:
        overlap = min(a) <= max(b) and min(b) <= max(a)
        return "within seed noise (the ranges overlap)" if overlap else "beyond seed noise (the ranges do not overlap)"

    def versus_tfidf(vals: list[float], ref: float, what: str) -> str:
        above = sum(v > ref for v in vals)
        return (f"{(statistics.fmean(vals) - ref) * 100:+.2f} points in {what} ({above} of {len(vals)} seeds above "
                f"TF-IDF's {ref:.4f})")

    sent_verdicts = [
        f"- GloVe − scratch: accuracy {(statistics.fmean(g_acc) - statistics.fmean(s_acc)) * 100:+.2f} points, "
        f"{noise(g_acc, s_acc)}; ROC AUC {(statistics.fmean(g_auc) - statistics.fmean(s_auc)) * 100:+.2f} points, "
        f"{noise(g_auc, s_auc)}.",
        f"- LSTM from GloVe − TF-IDF: {versus_tfidf(g_acc, tf_acc, 'accuracy')}, "
        f"{versus_tfidf(g_auc, tf['test_roc_auc'], 'ROC AUC')}.",
        f"- LSTM from scratch − TF-IDF: {versus_tfidf(s_acc, tf_acc, 'accuracy')}, "
        f"{versus_tfidf(s_auc, tf['test_roc_auc'], 'ROC AUC')}.",
        f"- Test-set resolution: one review is {100 / n_test:.3f} points of accuracy, and the binomial standard "
        f"error of an accuracy near {tf_acc:.2f} on {n_test:,} reviews is {binom:.1f} points: a difference of "
        "about a point is not established by one split even where the seeds agree.",
    ]

    t_rows = {s: len(v[1]) for s, v in sentiment["data"].items()}
    lt = lstm_cfg.training
    checks = [r.best_equals_last for group in (*runs.values(), *srun.values()) for r in group]
    summary = (
        f"Every torch model is `train_model` in this process under `MemorySession` (tests/unit/test_loop.py), "
        f"{args.threads} torch thread(s), scored on the test split from the model file of the last checkpoint "
        f"loaded into a freshly built model. NER: ner_bilstm_crf.yaml's {bronze_n(rows)} generated sentences "
        f"({rows['train']:,} train / {rows['val']} val / {rows['test']} test; {tokens_test:,} test tokens, gold "
        f"test entities " + ", ".join(f"{t} {gold[t]}" for t in TYPES) + f"), its tagger "
        f"({_params_text(ner_cfg.model.params)}) and training (at most {tr.epochs} epochs, batch {tr.batch_size}, "
        f"{tr.optimizer.name} lr {tr.optimizer.lr:g}, grad_clip {tr.grad_clip:g}, early stopping on "
        f"{tr.early_stopping.metric if tr.early_stopping else 'nothing'}), training.seed "
        f"{_seeds(tr.seed, args.ner_seeds)}. Sentiment: the {sum(t_rows.values()):,} Rotten Tomatoes reviews "
        f"({t_rows['train']:,} train / {t_rows['val']:,} val / {t_rows['test']:,} test, stratified), vocabulary "
        f"{sentiment['vocab']:,} words; LSTM training at most {lt.epochs} epochs, batch {lt.batch_size}, "
        f"{lt.optimizer.name} lr {lt.optimizer.lr:g}, grad_clip {lt.grad_clip:g}, early stopping on "
        f"{lt.early_stopping.metric if lt.early_stopping else 'nothing'}, training.seed "
        f"{_seeds(lt.seed, args.text_seeds)}. Whole run {total_s:.0f} s (NER {ner_s:.0f} s, sentiment "
        f"{sentiment_s:.0f} s).\n"
    )
    return (
        f"{summary}\n"
        f"### 1. NER on ner_synthetic: softmax losses vs CRF (test split, mean and min-max over "
        f"{args.ner_seeds} seeds)\n\n{ner_table}\n\n"
        f"Differences of the means in points (×100), against softmax + cross-entropy and then against the CRF; "
        f"\"noise\": the two rows' min-max ranges over the seeds overlap, \"beyond\": they do not; (a/b): seeds on "
        f"which the row is ahead / behind on the same seed:\n\n{compare_table}\n\n"
        f"Per seed, test micro F1 / DATE F1:\n\n{per_seed}\n\n"
        f"- Seed noise: {beyond_text}. Best mean micro F1: {best} ({means[best]:.4f}). With "
        f"{sum(gold.values())} gold test entities one missed entity moves micro recall by "
        f"{100 / sum(gold.values()):.2f} points, and DATE ({gold['DATE']} test entities) moves by "
        f"{100 / max(gold['DATE'], 1):.1f} points per entity; {args.ner_seeds} seeds on one split say little "
        "about differences of a point or less, and non-overlapping ranges over so few seeds are a weak claim.\n\n"
        f"### 2. Sentiment on Rotten Tomatoes ({t_rows['test']:,} test reviews; one review is "
        f"{100 / t_rows['test']:.3f} points)\n\n{sent_table}\n\nPer seed:\n\n{sent_seed}\n\n"
        + "\n".join(sent_verdicts) + "\n\n"
        + "\n".join(_notes(args, ner_cfg, tag_state, tfidf_cfg, sentiment, checks, ner_prep_s)) + "\n"
    )


def bronze_n(rows: dict[str, int]) -> str:
    return f"{sum(rows.values()):,}"


def _loss_text(decoder: str, weights: bool, gamma: float) -> str:
    if decoder == "crf":
        return "CRF, sentence log-likelihood"
    parts = ["cross-entropy" if not gamma else f"focal_gamma {gamma:g}"]
    if weights:
        parts.append("class_weights")
    return "softmax, " + " + ".join(parts)


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in params.items() if k != "decoder")


def _notes(args: argparse.Namespace, ner_cfg: PipelineConfig, tag_state: TaggedState, tfidf_cfg: PipelineConfig,
           sentiment: dict[str, Any], checks: list[bool], ner_prep_s: float) -> list[str]:
    counts = dict(zip(tag_state.info.classes, tag_state.tag_counts))
    largest = max(counts.values())
    weights = ", ".join(f"{t} {largest / c:.1f}" for t, c in counts.items() if c)
    emb = sentiment["embeddings"]
    return [
        "- Notes:",
        f"  - NER data: `ner_sentences({ner_cfg.source.limit or NER_SENTENCES}, seed=0)` landed as ner_bilstm_crf.yaml lands it (`conll_text`, "
        f"`write_landing_conll` into {ner_cfg.source.files} files) and read back with `read_conll`; `prepare_tagged` "
        "orders rows by (_source_file, _row) before splitting, so the split is the pipeline's. The vocabulary is "
        f"fitted on the training sentences (min_freq {ner_cfg.tagging.min_freq if ner_cfg.tagging else '?'}): "
        f"{tag_state.tokenizer.vocab_size_:,} entries; names seen once or only in held-out sentences read as <UNK>. "
        f"Preparation took {ner_prep_s:.1f} s.",
        f"  - Cost-sensitive weights are `class_weights` of the training tag counts (largest / count): {weights}. "
        "Focal loss is `focal_loss` with gamma 2 (and the same weights when both are on). The CRF row is the "
        "config as it is (BIO transition constraints, Viterbi decoding); the softmax rows decode by argmax per "
        "token, so they can emit an I- tag after O, which the entity counting takes as it comes.",
        "  - Seeds vary the initial weights and the batch order; the split is fixed. The four softmax rows start "
        "from the same weights for the same seed (the loss does not change what is built), so their per-seed "
        "comparison is paired. The CRF row builds the same embedding, LSTM and emission layers first, so they "
        "start equal too; its start, end and transition scores are drawn after them, which shifts the random "
        "stream its dropout masks come from.",
        "  - Every row is scored with the weights of the last checkpoint the loop wrote; with restore-best these "
        "are the best validation epoch's. Checked against the checkpoint written at the best epoch: "
        f"{'equal in every run' if all(checks) else 'NOT equal in some runs: ' + str(checks)}. \"train s\" is "
        "`train_model` end to end, validation and checkpoint copies included.",
        f"  - Sentiment data: `bundled_text_frame` in the order the package ships it. The pipeline lands those "
        f"rows as {tfidf_cfg.source.files} contiguous CSV files and splits in (_source_file, _row) order, the same "
        "order, so the split matches the pipeline's as long as ingest quarantines nothing (no review is blank). "
        f"The TF-IDF and LSTM preparations kept the same rows in every split and the same vocabulary: "
        f"{'yes' if sentiment['same_rows'] else 'NO'}. TF-IDF inputs are `TextState.batch_inputs` of the silver "
        "token ids (the collate `state.inputs` applies to raw texts: counts over the first max_length tokens, "
        f"sublinear tf, idf from the training split), dense ({sentiment['vocab']:,} columns).",
        f"  - GloVe: {sentiment['found']:,} of {sentiment['vocab']:,} vocabulary entries found in {emb.vectors}; the "
        "others start random with the vectors' spread (seeded with training.seed, as flows/train.py seeds it), "
        f"<PAD> at zero; fine-tuned (freeze {emb.freeze}) at lr_scale {emb.lr_scale:g}. The scratch row is the "
        "same model spec without `init_from`, so under the same seed only the embedding layer starts differently.",
        "  - Test ROC AUC is `holdout_report`'s `test_roc_auc` (class index 1, \"rotten\", as positive; the "
        "binary AUC is the same either way round); accuracy its `test_accuracy`.",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
