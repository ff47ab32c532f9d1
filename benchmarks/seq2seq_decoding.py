"""Sequence to sequence: greedy decoding against beam search on the two shipped examples,
dates_seq2seq.yaml (generated dates -> ISO 8601) and cmudict_g2p.yaml (CMU dictionary
words -> ARPAbet phonemes).

Model quality first, decode time second, with the project's own code and no Ray: each model
is trained by `train_model`, the loop Ray Train runs in production, in this process under
tests/unit/test_loop.py's `MemorySession` (numpy arrays in memory; it keeps a copy of every
checkpoint the loop writes). Settings are read from the pipeline configs themselves
(`load_pipeline`), so the benchmark follows them when they change.

    .venv/bin/python benchmarks/seq2seq_decoding.py [--only dates|cmudict] [--cmudict-epochs N]
        [--beam-rows N] [--beams 2 4 8] [--threads 1] [--no-write]

Per config:

1. Data as the pipeline lands and prepares it: the bundled frame `stage_bundled` of
   flows/ingest.py writes (`dates_frame(10_000, seed=0)`, `cmudict_frame(20_000, seed=0)`,
   or `source.limit` rows) landed as `source.files` CSV files by `write_landing_files`, read
   back and checked with `checked_file` (the bronze rows ingest keeps: _source_file, _row),
   then `prepare_pairs` with the config's schema, split and pairs sections.
2. The config's model and training section (`training.seed` 0) through `loop_config` and
   `train_model`. With early stopping's restore_best the loop puts the best epoch's weights
   back into the model before its last checkpoint, so the model file of the last checkpoint
   (what a bundle takes) is loaded into a freshly built model; it is checked against the
   checkpoint written at the best epoch itself.
3. The test split decoded by greedy decoding, 256 sources per call (as `seq2seq_report`
   does), by greedy decoding one source per call (as the endpoint's `Bundle.translate`
   does), and by `beam_search` (one source per call, length-normalised with its default
   alpha 0.7) at each beam size, all with `max_target_length + 1` steps. Scored as
   `seq2seq_report` scores them: exact match of the decoded target text and sacrebleu's
   corpus BLEU against the test targets as the tokenizer gives them back. The greedy and
   beam-4 numbers are checked against `seq2seq_report` itself (the register step's call),
   run on the same rows. Also: how often each beam's answer differs from greedy's, and,
   where it does, which of the two is right.

Everything runs with torch.set_num_threads(1) (`--threads`), as a 1-CPU Ray Train worker does.
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import sacrebleu
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from _in_memory import Arrays, train_in_memory  # noqa: E402
from _common import table, write_section  # noqa: E402

from components.config import PipelineConfig, load_pipeline  # noqa: E402
from components.data.bundled import write_landing_files  # noqa: E402
from components.data.dates_synthetic import dates_frame  # noqa: E402
from components.data.pairs_preparation import TOKENS, PairsState, prepare_pairs  # noqa: E402
from components.data.preparation import LABEL  # noqa: E402
from components.data.pronunciations import cmudict_frame  # noqa: E402
from components.data.sources import file_hash  # noqa: E402
from components.data.streaming import checked_file  # noqa: E402
from components.data.tokenizers import BOS_ID, EOS_ID  # noqa: E402
from components.evaluation.report import seq2seq_report  # noqa: E402
from components.models.seq2seq import Seq2Seq  # noqa: E402
from components.training.loop import loop_config  # noqa: E402

CONFIGS = {
    "dates": ROOT / "conf" / "pipelines" / "dates_seq2seq.yaml",
    "cmudict": ROOT / "conf" / "pipelines" / "cmudict_g2p.yaml",
}
# flows/ingest.py lands this many pairs when source.limit does not say (DATE_PAIRS, CMUDICT_WORDS)
BUNDLED_ROWS = {"dates": 10_000, "cmudict": 20_000}
FRAMES: dict[str, Callable[..., pl.DataFrame]] = {"dates": dates_frame, "cmudict": cmudict_frame}
TARGET_CONFIG, TARGET = "dates", 0.95  # the goal: dates exact match >= 0.95
GREEDY, GREEDY_ONE = "greedy (256 per call)", "greedy (1 per call)"
REPORT_BATCH = 256  # seq2seq_report's greedy chunk
REPORT_BEAM = 4  # seq2seq_report's default beam_size
BEAM_ALPHA = inspect.signature(Seq2Seq.beam_search).parameters["alpha"].default  # length normalisation



@dataclass
class Decoded:
    """One decoder over the decoded rows: the target texts, wall seconds and scores."""

    label: str
    texts: list[str]
    seconds: float
    exact: float = 0.0
    bleu: float = 0.0
    ids: list[list[int]] = field(default_factory=list)  # target ids, without <BOS>/<EOS>

    @property
    def per_1000(self) -> float:
        return self.seconds / max(len(self.texts), 1) * 1000


@dataclass
class Run:
    key: str
    cfg: PipelineConfig
    rows: dict[str, int]
    state: PairsState
    bronze_files: int
    prep_s: float
    epochs_configured: int
    epochs_max: int
    history: list[dict[str, float]]
    train_s: float
    best_equals_last: bool
    truths: list[str]
    sources: list[str]
    target_tokens: float  # mean target length in tokens, test split
    beam_rows: int
    decoded: dict[str, Decoded] = field(default_factory=dict)
    report_check: dict[str, tuple[float, float]] = field(default_factory=dict)
    # beam size -> rows where it differs from greedy and its answer scores below greedy's answer
    search_errors: dict[str, int] = field(default_factory=dict)
    report_s: float = 0.0

    @property
    def best_epoch(self) -> int:
        last = self.history[-1]
        return int(last.get("best_epoch", last["epoch"]))

    @property
    def best_val(self) -> dict[str, float]:
        return self.history[-1]  # restore_best: the last report carries the best epoch's val numbers


# ---------------------------------------------------------------------------- data


def bronze(key: str, cfg: PipelineConfig, landing: Path) -> tuple[pl.DataFrame, int]:
    """The bundled frame landed as the ingest stage lands it and read back as ingest reads it."""
    if cfg.source.format != "bundled_pairs" or cfg.source.dataset != key:
        raise ValueError(f"{cfg.name}: expected a bundled_pairs source {key!r}, got "
                         f"{cfg.source.format} {cfg.source.dataset!r}")
    frame = FRAMES[key](cfg.source.limit or BUNDLED_ROWS[key], seed=0)
    landing.mkdir(parents=True)
    paths = write_landing_files(frame, landing, cfg.source.files, stem=cfg.source.dataset)
    good, bad = [], 0
    for path in paths:
        rows = checked_file(path, "csv", cfg.schema_, str(path.relative_to(landing)), file_hash(path))
        good.append(rows.good)
        bad += rows.bad.height
    if bad:
        raise RuntimeError(f"{cfg.name}: ingest would quarantine {bad} of the bundled rows")
    return pl.concat(good), len(paths)


def arrays(silver: dict[str, pl.DataFrame], state: PairsState) -> dict[str, Arrays]:
    """(sources, <BOS> target <EOS>) padded id arrays per split, by the state's own collate."""
    out = {}
    for split, frame in silver.items():
        batch = {TOKENS: np.array([np.array(r) for r in frame[TOKENS].to_list()], dtype=object),
                 LABEL: np.array([np.array(r) for r in frame[LABEL].to_list()], dtype=object)}
        out[split] = (state.batch_inputs(batch), state.batch_labels(batch))
    return out


def truth_texts(labels: np.ndarray, state: PairsState) -> list[str]:
    """The test targets as `seq2seq_report` reads them: after <BOS>, up to <EOS>, as text."""
    out = []
    for row in labels.tolist():
        body = row[1:]
        out.append(state.target_text(body[: body.index(EOS_ID)] if EOS_ID in body else body))
    return out


# ---------------------------------------------------------------------------- training


# ---------------------------------------------------------------------------- decoding


def decode_greedy(model: nn.Module, x: np.ndarray, state: PairsState, per_call: int, label: str) -> Decoded:
    length = state.max_target_length + 1
    texts: list[str] = []
    ids: list[list[int]] = []
    t0 = time.perf_counter()
    for start in range(0, len(x), per_call):
        rows, _ = model.greedy(torch.from_numpy(np.ascontiguousarray(x[start : start + per_call])), length)
        texts += [state.target_text(r) for r in rows]
        ids += rows
    return Decoded(label, texts, time.perf_counter() - t0, ids=ids)


def decode_beam(model: nn.Module, x: np.ndarray, state: PairsState, beam: int, label: str) -> Decoded:
    length = state.max_target_length + 1
    texts: list[str] = []
    ids: list[list[int]] = []
    t0 = time.perf_counter()
    for i in range(len(x)):
        row = model.beam_search(torch.from_numpy(x[i : i + 1]), beam, length)[0]
        texts.append(state.target_text(row))
        ids.append(row)
    return Decoded(label, texts, time.perf_counter() - t0, ids=ids)


@torch.no_grad()
def sequence_score(model: nn.Module, source: np.ndarray, ids: list[int]) -> float:
    """The model's log-probability of writing `ids` then <EOS> for `source` (1, S), divided by
    length^alpha as `beam_search` ranks its finished hypotheses (its default alpha)."""
    y = [BOS_ID, *ids, EOS_ID]
    logits = model(torch.from_numpy(source).long(), torch.tensor([y[:-1]]))  # eval: reads the given target
    log_probs = torch.log_softmax(logits.float(), dim=-1)[0]
    total = float(sum(log_probs[t, tok] for t, tok in enumerate(y[1:])))
    return total / max(len(ids) + 1, 1) ** BEAM_ALPHA


def score(d: Decoded, truths: Sequence[str]) -> Decoded:
    """Exact match and corpus BLEU as `seq2seq_report` computes them."""
    truths = list(truths[: len(d.texts)])
    d.exact = float(np.mean([a == t for a, t in zip(d.texts, truths)])) if truths else 0.0
    d.bleu = sacrebleu.corpus_bleu(d.texts, [truths]).score
    return d


def run_config(key: str, args: argparse.Namespace, root: Path) -> Run:
    cfg = load_pipeline(CONFIGS[key])
    if cfg.task != "seq2seq" or cfg.pairs is None or cfg.schema_ is None:
        raise ValueError(f"{cfg.name}: expected a seq2seq config with pairs and schema sections")
    print(f"{cfg.name}: landing and preparing ...", flush=True)
    t0 = time.perf_counter()
    rows_in, n_files = bronze(key, cfg, root / key / "landing")
    silver, state = prepare_pairs(rows_in, cfg.schema_, cfg.split, cfg.pairs)
    data = arrays(silver, state)
    prep_s = time.perf_counter() - t0
    rows = {s: len(v[1]) for s, v in data.items()}
    print(f"  {rows_in.height:,} pairs in {n_files} files -> {rows}, source vocab {state.source_tokenizer.vocab_size_}, "
          f"target vocab {state.target_tokenizer.vocab_size_} ({prep_s:.1f} s)", flush=True)

    training = {**cfg.training.model_dump(), "seed": 0}
    epochs = args.cmudict_epochs if key == "cmudict" and args.cmudict_epochs else cfg.training.epochs
    training["epochs"] = epochs
    config = loop_config(cfg.model.model_dump(include={"kind", "params"}), training, state.info)
    print(f"  training {cfg.model.kind} for at most {epochs} epochs ...", flush=True)
    history, model, train_s, same = train_in_memory(cfg.name, config, data)
    for h in history:
        print(f"    epoch {int(h['epoch'])}: train loss {h['train_loss']:.4f}, val exact match "
              f"{h['val_exact_match']:.4f}", flush=True)
    x, y = data["test"]
    truths = truth_texts(y, state)
    sources = [state.source_tokenizer.decode(row[row != 0].tolist()) for row in x]
    target_tokens = float(((y != 0).sum(axis=1) - 2).mean())  # without <BOS> and <EOS>
    n_beam = len(x) if args.beam_rows <= 0 else min(args.beam_rows, len(x))
    run = Run(key, cfg, rows, state, n_files, prep_s, cfg.training.epochs, epochs, history, train_s, same, truths, sources,
              target_tokens, n_beam)
    print(f"  trained in {train_s:.0f} s, {len(history)} epochs (best {run.best_epoch}, val exact match "
          f"{run.best_val['val_exact_match']:.4f}); decoding {len(x):,} test sources"
          + (f" (beam search: the first {n_beam})" if n_beam < len(x) else "") + " ...", flush=True)

    run.decoded[GREEDY] = score(decode_greedy(model, x, state, REPORT_BATCH, GREEDY), truths)
    run.decoded[GREEDY_ONE] = score(decode_greedy(model, x, state, 1, GREEDY_ONE), truths)
    for label in (GREEDY, GREEDY_ONE):
        d = run.decoded[label]
        print(f"  {label}: exact match {d.exact:.4f}, BLEU {d.bleu:.2f}, {d.per_1000:.2f} s per 1,000", flush=True)
    for beam in args.beams:
        label = f"beam {beam}"
        d = run.decoded[label] = score(decode_beam(model, x[:n_beam], state, beam, label), truths)
        greedy_ids = run.decoded[GREEDY].ids
        run.search_errors[label] = sum(
            sequence_score(model, x[i : i + 1], greedy_ids[i]) > sequence_score(model, x[i : i + 1], row) + 1e-6
            for i, row in enumerate(d.ids) if row != greedy_ids[i]
        )
        print(f"  {label}: exact match {d.exact:.4f}, BLEU {d.bleu:.2f}, {d.per_1000:.2f} s per 1,000; "
              f"answers scoring below greedy's {run.search_errors[label]}", flush=True)

    # the register step's own call on the same rows: greedy and beam 4 must score the same
    t0 = time.perf_counter()
    metrics = seq2seq_report(model, x, y, state, beam_size=REPORT_BEAM, beam_rows=n_beam, pictures=0).metrics
    run.report_s = time.perf_counter() - t0
    run.report_check[GREEDY] = (metrics["test_exact_match"], metrics["test_bleu"])
    run.report_check[f"beam {REPORT_BEAM}"] = (metrics[f"test_exact_match_beam{REPORT_BEAM}"],
                                               metrics[f"test_bleu_beam{REPORT_BEAM}"])
    for label, (exact, bleu) in run.report_check.items():
        if label in run.decoded and not (math.isclose(exact, run.decoded[label].exact, abs_tol=1e-12)
                                         and math.isclose(bleu, run.decoded[label].bleu, abs_tol=1e-9)):
            raise RuntimeError(f"{cfg.name}: {label} scores {run.decoded[label].exact}, {run.decoded[label].bleu} "
                               f"here but seq2seq_report gives {exact}, {bleu}")
    print(f"  seq2seq_report agrees ({run.report_s:.0f} s)", flush=True)
    return run


# ---------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=sorted(CONFIGS), action="append", help="one data set (default both)")
    parser.add_argument("--cmudict-epochs", type=int, default=None,
                        help="cap cmudict_g2p.yaml's training.epochs (default: the config's)")
    parser.add_argument("--beam-rows", type=int, default=0,
                        help="beam-search only the first N test sources, the same N for every beam size (0: all)")
    parser.add_argument("--beams", type=int, nargs="+", default=[2, 4, 8], help="beam sizes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if REPORT_BEAM not in args.beams:
        parser.error(f"--beams must include {REPORT_BEAM}: it is compared with greedy and checked against seq2seq_report")
    if any(b < 1 for b in args.beams) or (args.cmudict_epochs is not None and args.cmudict_epochs < 1):
        parser.error("beam sizes and --cmudict-epochs must be >= 1")

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    keys = [k for k in CONFIGS if not args.only or k in args.only]
    with tempfile.TemporaryDirectory(prefix="rayline-bench-seq2seq-") as tmp:
        runs = [run_config(key, args, Path(tmp)) for key in keys]
    total_s = time.perf_counter() - started

    body = _report(args, runs, total_s)
    print(body)
    if not args.no_write:
        title = "Sequence to sequence: greedy vs beam search on dates and pronunciations (seq2seq_decoding.py)"
        write_section("seq2seq_decoding", title, body)
        print("wrote benchmarks/RESULTS.md")
    return 0


# ---------------------------------------------------------------------------- report


def sign_test(a: int, b: int) -> float:
    """Two-sided exact binomial p-value of a vs b wins at even odds (McNemar's exact test)."""
    n = a + b
    if n == 0:
        return 1.0
    k = min(a, b)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def versus_greedy(run: Run, label: str) -> tuple[int, int, int, int, int]:
    """(rows compared, rows where `label` differs from greedy, greedy right there, beam right
    there, neither right there)."""
    beam, greedy = run.decoded[label].texts, run.decoded[GREEDY].texts
    diff = [i for i, b in enumerate(beam) if b != greedy[i]]
    g_right = sum(greedy[i] == run.truths[i] for i in diff)
    b_right = sum(beam[i] == run.truths[i] for i in diff)
    return len(beam), len(diff), g_right, b_right, len(diff) - g_right - b_right


def _section(run: Run) -> str:
    cfg, n_test = run.cfg, run.rows["test"]
    subset = run.beam_rows < n_test
    rows = []
    for label, d in run.decoded.items():
        rows.append([label, f"{d.exact:.4f}", f"{d.bleu:.2f}", f"{d.per_1000:.1f}"])
        if label == GREEDY_ONE and subset:
            g = score(Decoded(f"greedy, first {run.beam_rows}", run.decoded[GREEDY].texts[: run.beam_rows], 0.0),
                      run.truths)
            rows.append([f"greedy on the first {run.beam_rows} (beam rows)", f"{g.exact:.4f}", f"{g.bleu:.2f}", ""])
    main_table = table(["decoder", "exact match", "BLEU", "s per 1,000 sources"], rows)

    beams = [label for label in run.decoded if label.startswith("beam ")]
    vs_rows = []
    for label in beams:
        n, diff, g_right, b_right, neither = versus_greedy(run, label)
        vs_rows.append([label, f"{diff} of {n} ({diff / n:.1%})", g_right, b_right, neither,
                        f"{sign_test(g_right, b_right):.2g}" if diff else "", run.search_errors[label]])
    vs_table = table(["decoder", "answers ≠ greedy", "greedy right there", "beam right there", "neither",
                      "sign test p", "beam's answer scores below greedy's"], vs_rows)

    n4, diff4, g4, b4, neither4 = versus_greedy(run, f"beam {REPORT_BEAM}")
    if diff4 == 0:
        beam4 = f"beam {REPORT_BEAM} gives greedy's answer for every one of the {n4:,} sources"
    else:
        who = ("beam search is right more often" if b4 > g4 else "greedy is right more often" if g4 > b4
               else "each is right equally often")
        beam4 = (f"beam {REPORT_BEAM}'s answer differs from greedy's for {diff4} of {n4:,} sources ({diff4 / n4:.1%}); "
                 f"there greedy is right {g4} times, beam search {b4}, neither {neither4}: {who} "
                 f"(net {b4 - g4:+d} sources, {(b4 - g4) / n4 * 100:+.2f} points of exact match; exact sign test "
                 f"p = {sign_test(g4, b4):.2g})")
    examples = _examples(run)
    one_same = sum(a == b for a, b in zip(run.decoded[GREEDY].texts, run.decoded[GREEDY_ONE].texts))
    verdicts = [f"- Beam {REPORT_BEAM} vs greedy: {beam4}."]
    errors = {label: n for label, n in run.search_errors.items() if n}
    if errors:
        verdicts.append(
            "- Search errors: where a beam's answer differs from greedy's, the model scores the beam's answer "
            "lower (length-normalised log-probability, teacher-forced; see the notes) on "
            + ", ".join(f"{n} of {versus_greedy(run, label)[1]} ({label})" for label, n in errors.items())
            + " sources: answers the search lost, not the model.")
    if run.key == TARGET_CONFIG:
        met = [label for label, d in run.decoded.items() if d.exact >= TARGET]
        missed = [label for label, d in run.decoded.items() if d.exact < TARGET]
        verdicts.append(
            f"- Target exact match ≥ {TARGET:.2f}: "
            + (f"met by {', '.join(met)}" if met else "met by no decoder")
            + (f"; missed by {', '.join(f'{m} ({run.decoded[m].exact:.4f})' for m in missed)}" if missed else "")
            + (f" (beam search on the first {run.beam_rows} sources only)" if subset else "") + "."
        )
    gate = cfg.registry.gates.get("test_exact_match")
    if gate is not None and gate.min is not None:
        g = run.decoded[GREEDY].exact
        verdicts.append(f"- {cfg.name}'s registry gate test_exact_match ≥ {gate.min:g} (greedy's, as the register "
                        f"step scores it): {'passes' if g >= gate.min else 'fails'} at {g:.4f}.")
    one = run.decoded[GREEDY_ONE]
    quicker = [f"{label} ({run.decoded[label].per_1000:.1f} s)" for label in beams
               if run.decoded[label].per_1000 < one.per_1000]
    verdicts.append(f"- Greedy one source per call gives the same answer as 256 per call for {one_same:,} of "
                    f"{n_test:,} sources; its time is the endpoint's way of decoding, the batched one the report's"
                    + (f". One per call ({one.per_1000:.1f} s per 1,000) it is slower than {', '.join(quicker)}: "
                       "greedy runs every step up to the length limit (see the notes)" if quicker else "")
                    + ". "
                    f"One source is {100 / n_test:.2f} points of exact match"
                    + (f" ({100 / run.beam_rows:.2f} on the beam rows)." if subset else "."))
    title = {"dates": f"dates_seq2seq.yaml: {sum(run.rows.values()):,} generated dates -> ISO 8601",
             "cmudict": f"cmudict_g2p.yaml: {sum(run.rows.values()):,} CMU dictionary words -> ARPAbet phonemes"}[run.key]
    beam_text = "all of them" if not subset else f"beam search on the first {run.beam_rows}"
    return (f"### {title} ({n_test:,} test sources; {beam_text})\n\n{main_table}\n\n"
            f"Where each beam size's answer differs from greedy's (256 per call):\n\n{vs_table}\n\n"
            + (f"{examples}\n\n" if examples else "")
            + "\n".join(verdicts) + "\n")


def _examples(run: Run, per_kind: int = 2) -> str:
    """Sources where beam 4 (else the first beam size that does) answers differently from
    greedy: up to `per_kind` where beam search is right, where greedy is, and where neither is."""
    beams = [label for label in run.decoded if label.startswith("beam ")]
    differing = [b for b in beams if versus_greedy(run, b)[1]]
    if not differing:
        return ""
    label = f"beam {REPORT_BEAM}" if f"beam {REPORT_BEAM}" in differing else differing[0]
    beam, greedy = run.decoded[label].texts, run.decoded[GREEDY].texts
    kinds: dict[str, list[int]] = {"beam right": [], "greedy right": [], "neither": []}
    for i, b in enumerate(beam):
        if b == greedy[i]:
            continue
        kind = "beam right" if b == run.truths[i] else "greedy right" if greedy[i] == run.truths[i] else "neither"
        if len(kinds[kind]) < per_kind:
            kinds[kind].append(i)
    rows = [[kind, f"`{run.sources[i]}`", f"`{run.truths[i]}`", f"`{greedy[i]}`", f"`{beam[i]}`"]
            for kind, idx in kinds.items() for i in idx]
    return (f"Examples where {label} and greedy disagree (first of each kind in test order):\n\n"
            + table(["", "source", "target", "greedy", label], rows))


def _training_text(run: Run) -> str:
    cfg, tr = run.cfg, run.cfg.training
    es = tr.early_stopping
    epochs, configured = len(run.history), run.epochs_configured
    return (
        f"{cfg.name}: {sum(run.rows.values()):,} pairs ({run.rows['train']:,} train / {run.rows['val']:,} val / "
        f"{run.rows['test']:,} test), source vocabulary {run.state.source_tokenizer.vocab_size_} "
        f"({cfg.pairs.source_tokenizer.kind}), target vocabulary {run.state.target_tokenizer.vocab_size_} "
        f"({cfg.pairs.target_tokenizer.kind}); {cfg.model.kind} "
        f"({', '.join(f'{k} {v}' for k, v in cfg.model.params.items())}); at most {run.epochs_max} epochs"
        + (f" (the config says {configured}; capped with --cmudict-epochs)" if run.epochs_max != configured else "")
        + f", batch {tr.batch_size}, {tr.optimizer.name} lr {tr.optimizer.lr:g}, grad_clip {tr.grad_clip:g}, early "
        f"stopping on {es.metric if es else 'nothing'}"
        + (f" (patience {es.patience}, restore_best {es.restore_best})" if es else "")
        + f", training.seed 0: {epochs} epochs run, best epoch {run.best_epoch} (val exact match "
        f"{run.best_val['val_exact_match']:.4f}), {run.train_s:.0f} s"
        + (" (the best epoch is the last one: val exact match was still rising when training stopped)"
           if run.best_epoch == epochs - 1 and epochs > 1 else "")
        + f". Test targets average {run.target_tokens:.1f} tokens; max_target_length {cfg.pairs.max_target_length}."
    )


def _report(args: argparse.Namespace, runs: list[Run], total_s: float) -> str:
    threads = f"{args.threads} torch thread{'s' if args.threads != 1 else ''}"
    summary = [
        f"Each model is `train_model` in this process under `MemorySession` (tests/unit/test_loop.py), {threads}, "
        "on the data the pipeline lands and prepares; the test split is decoded from the model file of the last "
        "checkpoint (the best epoch's weights, restore_best) loaded into a freshly built model. Exact match and "
        "corpus BLEU (sacrebleu) as `seq2seq_report` computes them; greedy and beam 4 are checked equal to "
        f"`seq2seq_report`'s own numbers. Whole run {total_s:.0f} s.",
        "",
        *(f"- {_training_text(r)}" for r in runs),
        "",
        "Headline (exact match / BLEU):",
        "",
        *(f"- {r.cfg.name}: " + "; ".join(f"{label} {d.exact:.4f} / {d.bleu:.2f}" for label, d in r.decoded.items()
                                          if label != GREEDY_ONE) for r in runs),
    ]
    sections = [_section(r) for r in runs]
    return "\n".join(summary) + "\n\n" + "\n".join(sections) + "\n" + "\n".join(_notes(args, runs)) + "\n"


def _notes(args: argparse.Namespace, runs: list[Run]) -> list[str]:
    notes = [
        "- Notes:",
        "  - Data: the bundled frame `stage_bundled` (flows/ingest.py) lands, `dates_frame(10_000, seed=0)` / "
        "`cmudict_frame(20_000, seed=0)`, written as the config's `source.files` CSV files by "
        "`write_landing_files`, read back by `checked_file` (nothing quarantined) and split by `prepare_pairs`, "
        "which orders rows by (_source_file, _row) first: the pipeline's split and tokenizers. "
        + "; ".join(f"{r.cfg.name} preparation {r.prep_s:.1f} s" for r in runs) + ".",
        "  - Decoders: greedy (256 sources per call) is `Seq2Seq.greedy` as `seq2seq_report` calls it; greedy "
        "(1 per call) the same one source at a time, as the endpoint's `Bundle.translate` runs a `beam_size` 1 "
        "request; beam k is `Seq2Seq.beam_search(x, k, max_target_length + 1)`, one source per call, finished "
        "hypotheses ranked by log-probability / length^0.7. The beam search expands its k hypotheses one "
        "decoder step call each, so its time per source grows about linearly with k; it stops once no open "
        "hypothesis can beat the best finished one. `greedy` stops once every row of the call has its <EOS> "
        "(at most max_target_length + 1 steps: " + "; ".join(f"{r.cfg.name}: {r.cfg.pairs.max_target_length + 1} "
                                                         f"for targets of {r.target_tokens:.1f} tokens on average"
                                                         for r in runs)
        + "), so 256 sources per call run as long as their longest answer. The batched greedy time is the cheapest "
        "way the project decodes and is not comparable with the one-per-call rows.",
        "  - Exact match compares the decoded text with the test target as the target tokenizer gives it back "
        "(cut to max_target_length; a token unseen in training reads as <UNK>, which no decoder can write). "
        "BLEU is sacrebleu's corpus BLEU with its default 13a tokenisation: an ISO date is scored as five "
        "words (`2021 - 03 - 07`), a pronunciation as its phonemes, so the two data sets' BLEU are not on "
        "the same scale.",
        f"  - \"Beam's answer scores below greedy's\": both answers rescored by the model (teacher-forced "
        f"log-probability of the tokens and <EOS>, divided by length^{BEAM_ALPHA:g}, as `beam_search` ranks "
        "its finished hypotheses). Where the beam's answer scores lower, beam search lost a better sequence "
        "than the one it returned: the greedy path was pruned from the beam. (Before 2026-11-30 `beam_search` "
        "also stopped as soon as beam_size hypotheses had ended, dropping better open ones one token before "
        "their <EOS>: 26 of beam 4's 141 cmudict answers that differed from greedy's scored below it then, "
        "and beam 2 lost 2 dates.)",
        "  - Sign test: the exact two-sided binomial test on the sources where one of the two is right and the "
        "other wrong (McNemar's exact test); a small p says the difference is unlikely to be chance on this "
        "split, not that it carries over to another seed.",
        "  - Checked: the last checkpoint's weights equal the checkpoint written at the best epoch: "
        + "; ".join(f"{r.cfg.name} {'yes' if r.best_equals_last else 'NO'}" for r in runs) + ". "
        + "seq2seq_report on the same rows (greedy and beam 4, no pictures): "
        + "; ".join(f"{r.cfg.name} equal, {r.report_s:.0f} s" for r in runs) + ".",
        "  - Times are wall seconds on a shared 2-core machine (see the load average above): compare rows of the "
        "same run, not runs. One model per data set and one seed: the decoders' differences are paired (same "
        "weights, same sources), but say nothing about seed-to-seed variation of the model itself.",
    ]
    if any(r.beam_rows < r.rows["test"] for r in runs):
        notes.append(f"  - Beam search decoded the first {args.beam_rows} test sources only (`--beam-rows`), the "
                     "same sources for every beam size; the greedy rows cover the whole test split, and greedy on "
                     "the beam rows is listed for the like-for-like comparison.")
    return notes


if __name__ == "__main__":
    raise SystemExit(main())
