"""CNN quality: transfer learning against training from scratch on a small budget, accuracy
under FGSM / PGD attack with and without adversarial training, and one-shot verification of
digits never trained on.

Three measurements in one run, with the project's own code and no Ray: every model is
trained by `train_model`, the loop Ray Train runs in production, in this process under the
project's `ArraySession` (in-memory arrays; what Ray changes is where the loop runs, not
what it computes). Settings are read from the pipeline configs themselves,
conf/pipelines/mnist_cnn.yaml, mnist_transfer.yaml and mnist_siamese.yaml (`load_pipeline`),
so the benchmark follows them when they change.

Data, for each config: its `source` landed by `write_bundled_images` (mnist: the 5,000
bundled MNIST digits; digits: scikit-learn's 8x8 UCI digits, the first `source.limit`),
read by `read_npz`, split and fitted by `prepare_images` with the config's `split` and
`images` (the digits resized to 28x28 grey), written by `write_silver` into a throwaway
`Lake`, and read back as arrays with `split_arrays`, the decoder the bundle uses.

    .venv/bin/python benchmarks/cnn_quality.py [--seeds 10] [--mnist-seeds 2] [--siamese-seeds 2] [--no-write]

1. Transfer. LeNet-5 is trained on MNIST as mnist_cnn.yaml says (model, training,
   augmentation; no tuning: the configured learning rate); its last checkpoint's weights
   (restored to the best epoch by early stopping, as the bundle takes them) are the source.
   The digits of mnist_transfer.yaml are then trained on with that config's `training` and
   `training.seed` 0, 1, ... (`--seeds`): from the source weights through `pretrained_init`
   and the loop's `init_from` (the config's `model.init_from`: `features` frozen, a new head,
   the other pretrained layers at `lr_scale` of the rate), and from scratch (the same config
   without `init_from`). Three more `init_from` settings bracket the config's, for context:
   every pretrained layer frozen (a new head on fixed features), nothing frozen at the full
   rate, and the config's freezing at lr_scale's default 0.1. Test accuracy on the config's
   test split.
2. Attacks. The MNIST models of 1. (`--mnist-seeds`) are the normally trained ones; each
   `--adversarial` attack trains another per seed with the same config plus
   `training.adversarial` (`--adv-eps` 0.1 in pixel units, ratio 0.5, PGD 3 steps: the
   project README's example). Each is scored on the MNIST test split with `score` (clean) and
   `evaluation_report`, the function the pipeline's register step calls, with mnist_cnn.yaml's
   `evaluation` section (attacks, eps, pgd_steps, seed; the visual report off): FGSM and PGD
   in pixel units, clamped to valid images. A stronger PGD (`--strong-pgd-steps`, 20) at the
   largest eps checks that robustness measured with the pipeline's 5 steps is not an
   artefact of a weak attack.
3. One-shot verification. mnist_siamese.yaml's Siamese network (model and training) is
   trained per `training.seed` (`--siamese-seeds`) on the digits its class split keeps for
   training; the held-out digits are the val and test splits. Each trained model is judged
   by `verification_report`, the function the register step calls for embedding models, on
   the test split's pairs at the last report's `val_threshold` (the threshold a bundle keeps
   and serves with). Two baselines are judged the same way, with the threshold
   `label_verification(..., threshold=None)` chooses on the val split's pairs: the untrained
   network of each seed (its weights before the first step) and the raw pixels (the
   processor-normalised inputs flattened and scaled to unit length, so distances lie in
   [0, 2] as the embeddings' do). Expected: trained > raw pixels, and trained >= the
   config's `registry.gates.test_accuracy.min`.

Everything runs with torch.set_num_threads(1) (`--threads`), as a 1-CPU Ray Train worker does.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import spread, table, write_section  # noqa: E402

from components.config import (  # noqa: E402
    EvaluationConfig, InitFrom, PipelineConfig, TrainingConfig, load_pipeline, robust_metric,
)
from components.data.image_preparation import prepare_images  # noqa: E402
from components.data.images import ImageSpec, read_npz, write_bundled_images  # noqa: E402
from components.data.lake import Lake  # noqa: E402
from components.data.modalities.info import DataInfo  # noqa: E402
from components.data.silver import SilverSnapshot, split_arrays, write_silver  # noqa: E402
from components.evaluation.report import evaluation_report, verification_report  # noqa: E402
from components.evaluation.robustness import pixel_statistics  # noqa: E402
from components.evaluation.scoring import score  # noqa: E402
from components.evaluation.verification import PAIRS, embed, label_verification  # noqa: E402
from components.models import build, training_task  # noqa: E402
from components.training.array_session import ArraySession  # noqa: E402
from components.artifacts.checkpoint_files import MODEL_FILE  # noqa: E402
from components.training.loop import loop_config, train_model  # noqa: E402
from components.training.transfer import HEAD, pretrained_init  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PRETRAIN_YAML = ROOT / "conf" / "pipelines" / "mnist_cnn.yaml"
TRANSFER_YAML = ROOT / "conf" / "pipelines" / "mnist_transfer.yaml"
SIAMESE_YAML = ROOT / "conf" / "pipelines" / "mnist_siamese.yaml"
GATE = "test_accuracy"  # the Siamese config's gate this benchmark checks the trained models against
# the digits models: mnist_transfer.yaml as it is, without `init_from`, and two other
# `init_from` settings that bracket it (every pretrained layer frozen; none, at the full rate)
TRANSFER, SCRATCH, HEAD_ONLY, NOTHING_FROZEN = "transfer", "scratch", "transfer, head only", "transfer, nothing frozen"
TENTH = "transfer, at lr_scale 0.1"  # the config's freezing with lr_scale's default
# the embeddings judged on the held-out digits' pairs
TRAINED, UNTRAINED, PIXELS = "siamese, trained", "siamese, untrained", "raw pixels, unit length"

Splits = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass
class Run:
    """One `train_model` call and the test accuracy of the model it left (all its test
    metrics, `test_`-prefixed, in `test_metrics`)."""

    label: str
    seed: int
    history: list[dict[str, float]]
    model: nn.Module
    weights: Path
    seconds: float
    test_accuracy: float
    test_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return len(self.history)

    @property
    def best_epoch(self) -> int:
        last = self.history[-1]
        return int(last.get("best_epoch", last["epoch"]))

    @property
    def val_accuracy(self) -> float:
        # with restore_best the last report carries the restored epoch's numbers
        return float(self.history[-1]["val_accuracy"])


@dataclass
class Attacked:
    """A model's attack metrics (`evaluation_report`'s names; the stronger PGD's prefixed
    `strong.`) and the seconds they took."""

    run: Run
    metrics: dict[str, float]
    seconds: float


@dataclass
class Verified:
    """An embedding judged on pairs: the threshold chosen on the val split's pairs and the
    val accuracy there, and `verification_report`'s test metrics at that threshold."""

    label: str
    seed: int | None
    threshold: float
    val_accuracy: float
    test: dict[str, float]
    run: Run | None = None  # the training behind a trained embedding


class _Pixels(nn.Module):
    """The raw-pixel "embedding": the inputs flattened and scaled to unit length, so its
    distances share the [0, 2] range of a Siamese embedding and a threshold means the same."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x.flatten(1), dim=1)  # (B, C*H*W)


class _KeptSession(ArraySession):
    """The loop's in-memory session, keeping the model file of the last checkpoint written:
    what a bundle takes from the trial's checkpoint in production."""

    def __init__(self, splits: Splits, keep: Path) -> None:
        super().__init__({s: splits[s] for s in ("train", "val")})
        self.keep = keep

    def report(self, metrics: dict[str, float], checkpoint_dir: str | None) -> None:
        super().report(metrics, checkpoint_dir)
        if checkpoint_dir is not None:
            shutil.copyfile(Path(checkpoint_dir) / MODEL_FILE, self.keep)


# ---------------------------------------------------------------------------- data


def silver(pipeline: PipelineConfig, root: Path) -> SilverSnapshot:
    """The pipeline's ingest and preprocess steps for `pipeline`'s bundled image source."""
    source, images = pipeline.source, pipeline.images
    if source.format != "bundled_images" or images is None:
        raise ValueError(f"{pipeline.name}: expected a bundled_images source with an images section")
    (path,) = write_bundled_images(source.dataset, root / "landing", source.limit)
    bronze, quarantined = read_npz(path, ImageSpec(max_bytes=images.max_bytes, max_size=images.max_size))
    if quarantined.height:
        raise RuntimeError(f"{pipeline.name}: {quarantined.height} bundled images were quarantined")
    frames, state = prepare_images(bronze, pipeline.split, images)
    return write_silver(Lake(str(root / "lake")), frames, state, bronze_version=0)


def arrays(snapshot: SilverSnapshot) -> Splits:
    """{split: (inputs (N, C, H, W) float32, labels (N,) int64)}, decoded as the bundle decodes."""
    out = {}
    for split in ("train", "val", "test"):
        x, y = split_arrays(snapshot, split)
        out[split] = (x, np.asarray(y).astype(np.int64))
    return out


# ---------------------------------------------------------------------------- training


def train(label: str, config: dict[str, Any], splits: Splits, info: DataInfo, workdir: Path) -> Run:
    """`train_model(config)` under an in-memory session; the trained model scored on test
    as the register step scores its bundle: `score` for classifiers, `verification_report` at
    the last report's `val_threshold` for embedding models."""
    seed = int(config["training"]["seed"])
    keep = workdir / f"{re.sub(r'[^a-z0-9]+', '-', label)}-seed{seed}.{MODEL_FILE}"
    session = _KeptSession(splits, keep)
    t0 = time.perf_counter()
    history = train_model(config, session)
    seconds = time.perf_counter() - t0
    model = session.model
    assert model is not None and keep.is_file(), "train_model reported no checkpoint"
    x, y = splits["test"]
    if training_task(config["model"]) == "metric_learning":
        metrics = verification_report(model, x, y, float(history[-1]["val_threshold"])).metrics
    else:
        metrics = {f"test_{k}": float(v) for k, v in score(model, x, y, info.task, info.out_features).items()}
    accuracy = metrics["test_accuracy"]
    print(f"  {label}, seed {seed}: test accuracy {accuracy:.4f}, {len(history)} epochs, {seconds:.1f} s", flush=True)
    return Run(label, seed, history, model, keep, seconds, float(accuracy), metrics)


def verified(label: str, model: nn.Module, splits: Splits, seed: int | None = None) -> Verified:
    """`model`'s embeddings judged as the pipeline judges a Siamese model, with the threshold
    chosen on the val split's pairs by the call the loop's validation makes."""
    x, y = splits["val"]
    val = label_verification(embed(model, x), y, threshold=None)
    x, y = splits["test"]
    report = verification_report(model, x, y, val["threshold"])
    return Verified(label, seed, val["threshold"], val["accuracy"], report.metrics)


def untrained(config: dict[str, Any]) -> nn.Module:
    """The network `train_model(config)` starts from: seeded and built as the loop does it."""
    torch.manual_seed(int(config["training"]["seed"]))
    return build(config["model"])


def attacked(model: nn.Module, splits: Splits, info: DataInfo, evaluation: EvaluationConfig) -> dict[str, float]:
    """The attack metrics the pipeline's evaluation report gives `model` on the test split."""
    x, y = splits["test"]
    n = evaluation.attack_samples or len(y)
    report = evaluation_report(model, x[:n], y[:n], evaluation, classes=list(info.classes),
                               pixels=pixel_statistics(info))
    return report.metrics


def _unchanged(model: nn.Module, source_weights: Path, prefix: str) -> bool:
    """Whether every parameter under `prefix` still equals the source's."""
    source = load_file(str(source_weights))
    own = {k: v for k, v in model.state_dict().items() if k.startswith(prefix + ".")}
    return bool(own) and all(torch.equal(v, source[k]) for k, v in own.items())


def _trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---------------------------------------------------------------------------- main



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10,
                        help="training seeds of each digits model (cheap: under a second a run)")
    parser.add_argument("--mnist-seeds", type=int, default=2,
                        help="training seeds of each MNIST model (the first normal one is the transfer source)")
    parser.add_argument("--adversarial", nargs="+", choices=("pgd", "fgsm"), default=["pgd", "fgsm"],
                        help="training.adversarial.attack of each adversarially trained model")
    parser.add_argument("--adv-eps", type=float, default=0.1, help="training.adversarial.eps, pixel units")
    parser.add_argument("--strong-pgd-steps", type=int, default=20, help="the extra PGD at the largest eps")
    parser.add_argument("--siamese-seeds", type=int, default=2,
                        help="training seeds of mnist_siamese.yaml's network (each with its untrained baseline)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error(f"--seeds must be >= 2 to show a spread, got {args.seeds}")
    if args.mnist_seeds < 1:
        parser.error(f"--mnist-seeds must be >= 1, got {args.mnist_seeds}")
    if args.siamese_seeds < 1:
        parser.error(f"--siamese-seeds must be >= 1, got {args.siamese_seeds}")

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    pre_cfg, tr_cfg = load_pipeline(PRETRAIN_YAML), load_pipeline(TRANSFER_YAML)
    init = tr_cfg.model.init_from
    if init is None:
        raise RuntimeError(f"{TRANSFER_YAML.name} has no model.init_from: nothing to compare against scratch")
    evaluation = pre_cfg.evaluation.model_copy(update={"visual": False})
    if not evaluation.attacks:
        raise RuntimeError(f"{PRETRAIN_YAML.name}: evaluation.attacks is empty: no attacks to measure")
    strong = EvaluationConfig(visual=False, attacks=["pgd"], eps=[max(evaluation.eps)],
                              pgd_steps=args.strong_pgd_steps, seed=evaluation.seed)
    sia_cfg = load_pipeline(SIAMESE_YAML)
    gate = sia_cfg.registry.gates.get(GATE)
    if gate is None or gate.min is None:
        raise RuntimeError(f"{SIAMESE_YAML.name}: registry.gates.{GATE}.min is not set: no gate to check against")

    with tempfile.TemporaryDirectory(prefix="rayline-bench-cnnq-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        mnist_snap, digits_snap = silver(pre_cfg, tmp / "mnist"), silver(tr_cfg, tmp / "digits")
        sia_snap = silver(sia_cfg, tmp / "siamese")
        mnist, digits, pairs = arrays(mnist_snap), arrays(digits_snap), arrays(sia_snap)
        mnist_info, digits_info = mnist_snap.features.info, digits_snap.features.info
        sia_info = sia_snap.features.info
        prep_s = time.perf_counter() - t0
        rows = {name: {s: len(d[s][1]) for s in d}
                for name, d in (("mnist", mnist), ("digits", digits), ("siamese", pairs))}
        print(f"data: MNIST {rows['mnist']}, digits {rows['digits']}, MNIST by class {rows['siamese']} "
              f"({prep_s:.1f} s)", flush=True)

        # ---- the MNIST models: the normal one is also the source of transfer
        pre_model = pre_cfg.model.model_dump(include={"kind", "params"})
        augment = pre_cfg.images.augment if pre_cfg.images is not None else None
        adv_settings = {a: {"attack": a, "eps": args.adv_eps, "ratio": 0.5, "steps": 3} for a in args.adversarial}
        mnist_runs: dict[str, list[Run]] = {"normal": [], **{f"adversarial {a}": [] for a in args.adversarial}}
        for i in range(args.mnist_seeds):
            training = {**pre_cfg.training.model_dump(), "seed": pre_cfg.training.seed + i}
            print(f"MNIST, mnist_cnn.yaml, seed {training['seed']} ...", flush=True)
            mnist_runs["normal"].append(
                train("normal", loop_config(pre_model, training, mnist_info, augment), mnist, mnist_info, tmp))
            for attack, adv in adv_settings.items():
                adv_training = TrainingConfig.model_validate({**training, "adversarial": adv}).model_dump()
                mnist_runs[f"adversarial {attack}"].append(train(
                    f"adversarial {attack}", loop_config(pre_model, adv_training, mnist_info, augment), mnist,
                    mnist_info, tmp))
        normal = mnist_runs["normal"][0]

        # ---- 1. transfer vs scratch on the digits, and two other init_from settings for context
        tr_model = tr_cfg.model.model_dump(include={"kind", "params"})
        tr_augment = tr_cfg.images.augment if tr_cfg.images is not None else None
        layers = sorted({name.split(".")[0] for name, _ in normal.model.named_parameters()} - {HEAD})
        inits = {
            TRANSFER: init,
            HEAD_ONLY: init.model_copy(update={"freeze": layers}),
            NOTHING_FROZEN: init.model_copy(update={"freeze": [], "lr_scale": 1.0}),
            TENTH: init.model_copy(update={"lr_scale": 0.1}),
        }
        sources = {k: pretrained_init(v, str(normal.weights), "LeNet-5 trained on MNIST in this run")
                   for k, v in inits.items()}
        digit_runs: dict[str, list[Run]] = {k: [] for k in (TRANSFER, SCRATCH, HEAD_ONLY, NOTHING_FROZEN, TENTH)}
        frozen_ok: list[bool] = []
        for i in range(args.seeds):
            training = {**tr_cfg.training.model_dump(), "seed": tr_cfg.training.seed + i}
            print(f"digits, mnist_transfer.yaml, seed {training['seed']} ...", flush=True)
            for label in digit_runs:
                config = loop_config(tr_model, training, digits_info, tr_augment, sources.get(label))
                digit_runs[label].append(train(label, config, digits, digits_info, tmp))
            frozen_ok.append(all(_unchanged(digit_runs[TRANSFER][-1].model, normal.weights, p) for p in init.freeze))

        # ---- 2. attacks
        print("attacks ...", flush=True)
        attacks: dict[str, list[Attacked]] = {}
        for label, runs in mnist_runs.items():
            for run in runs:
                t1 = time.perf_counter()
                metrics = {**attacked(run.model, mnist, mnist_info, evaluation),
                           **{f"strong.{k}": v for k, v in attacked(run.model, mnist, mnist_info, strong).items()}}
                attacks.setdefault(label, []).append(Attacked(run, metrics, time.perf_counter() - t1))

        # ---- 3. one-shot verification on the held-out digits
        sia_model = sia_cfg.model.model_dump(include={"kind", "params"})
        sia_augment = sia_cfg.images.augment if sia_cfg.images is not None else None
        verification: dict[str, list[Verified]] = {TRAINED: [], UNTRAINED: []}
        for i in range(args.siamese_seeds):
            training = {**sia_cfg.training.model_dump(), "seed": sia_cfg.training.seed + i}
            print(f"MNIST by class, mnist_siamese.yaml, seed {training['seed']} ...", flush=True)
            config = loop_config(sia_model, training, sia_info, sia_augment)
            run = train(TRAINED, config, pairs, sia_info, tmp)
            threshold = float(run.history[-1]["val_threshold"])  # what the bundle keeps and serves with
            verification[TRAINED].append(
                Verified(TRAINED, run.seed, threshold, run.val_accuracy, run.test_metrics, run))
            verification[UNTRAINED].append(verified(UNTRAINED, untrained(config), pairs, run.seed))
        verification[PIXELS] = [verified(PIXELS, _Pixels(), pairs)]
        rechosen = [label_verification(embed(v.run.model, pairs["val"][0]), pairs["val"][1], None)["threshold"]
                    for v in verification[TRAINED] if v.run is not None]
    total_s = time.perf_counter() - started

    held_out = sorted({sia_info.classes[c] for split in ("val", "test") for c in np.unique(pairs[split][1])})
    body = _report(args, pre_cfg, tr_cfg, sia_cfg, rows, digit_runs, frozen_ok, attacks, adv_settings, evaluation,
                   inits, verification, rechosen, held_out, prep_s, total_s)
    print(body)
    if not args.no_write:
        title = "CNN quality: transfer vs scratch, adversarial training, one-shot verification (cnn_quality.py)"
        write_section("cnn_quality", title, body)
        print("wrote benchmarks/RESULTS.md")
    return 0


def _report(args: argparse.Namespace, pre_cfg: PipelineConfig, tr_cfg: PipelineConfig, sia_cfg: PipelineConfig,
            rows: dict[str, dict[str, int]], digit_runs: dict[str, list[Run]], frozen_ok: list[bool],
            attacks: dict[str, list[Attacked]], adv_settings: dict[str, dict[str, Any]], evaluation: EvaluationConfig,
            inits: dict[str, InitFrom], verification: dict[str, list[Verified]], rechosen: list[float],
            held_out: list[str], prep_s: float, total_s: float) -> str:
    """The RESULTS.md section: verdicts, tables, notes."""
    transfer, scratch = digit_runs[TRANSFER], digit_runs[SCRATCH]
    n_train, n_test = rows["digits"]["train"], rows["digits"]["test"]
    n_mnist_test = rows["mnist"]["test"]

    # ---- 1. transfer
    def init_text(label: str) -> str:
        if label == SCRATCH:
            return "from scratch (mnist_transfer.yaml without `init_from`)"
        i = inits[label]
        where = "mnist_transfer.yaml's `init_from`" if label == TRANSFER else "not in the config, for context"
        return f"from MNIST, freeze {i.freeze or 'nothing'}, new head, lr_scale {i.lr_scale:g} ({where})"

    def summary_line(label: str) -> list[object]:
        runs = digit_runs[label]
        accs = [r.test_accuracy for r in runs]
        mean, lo, hi = spread(accs)
        return [init_text(label), _trainable(runs[0].model), f"**{mean:.4f}**", f"{lo:.4f}", f"{hi:.4f}",
                f"{statistics.pstdev(accs):.4f}", f"{statistics.fmean(r.val_accuracy for r in runs):.4f}",
                f"{statistics.fmean(r.history[0]['val_accuracy'] for r in runs):.4f}",
                f"{statistics.fmean(r.epochs for r in runs):.1f}", f"{statistics.fmean(r.seconds for r in runs):.2f}"]

    transfer_table = table(
        ["initialisation", "trainable params", "test acc mean", "min", "max", "std", "val acc mean (best epoch)",
         "val acc after epoch 0 (mean)", "epochs run (mean)", "s per run (mean)"],
        [summary_line(label) for label in (TRANSFER, SCRATCH, HEAD_ONLY, NOTHING_FROZEN, TENTH)],
    )
    per_seed = table(
        ["training.seed", *(f"{label}: test acc" for label in digit_runs), "transfer − scratch (points)",
         "epochs run (best), transfer / scratch"],
        [[t.seed, *(f"{digit_runs[label][i].test_accuracy:.4f}" for label in digit_runs),
          f"{(t.test_accuracy - s.test_accuracy) * 100:+.1f}",
          f"{t.epochs} ({t.best_epoch}) / {s.epochs} ({s.best_epoch})"]
         for i, (t, s) in enumerate(zip(transfer, scratch))],
    )
    t_mean, t_lo, t_hi = spread([r.test_accuracy for r in transfer])
    s_mean, s_lo, s_hi = spread([r.test_accuracy for r in scratch])
    wins = sum(t.test_accuracy > s.test_accuracy for t, s in zip(transfer, scratch))
    losses = sum(t.test_accuracy < s.test_accuracy for t, s in zip(transfer, scratch))
    transfer_verdict = (
        f"| transfer > scratch: mnist_transfer.yaml with its `init_from` against without, {n_train} training digits, "
        f"mean test accuracy over {args.seeds} seeds | {'**held**' if t_mean > s_mean else '**did not hold**'}: "
        f"{t_mean:.4f} vs {s_mean:.4f} ({(t_mean - s_mean) * 100:+.1f} points; ranges {t_lo:.4f}-{t_hi:.4f} vs "
        f"{s_lo:.4f}-{s_hi:.4f}); transfer ahead on {wins} seeds, behind on {losses}, level on "
        f"{args.seeds - wins - losses} |"
    )

    means = {k: statistics.fmean(r.test_accuracy for r in runs) for k, runs in digit_runs.items()}
    ranking = (
        "- Mean test accuracy on the digits, best first: "
        + ", ".join(f"{k} {v:.4f}" for k, v in sorted(means.items(), key=lambda kv: -kv[1]))
        + f" (one test digit is {100 / n_test:.2f} points; from scratch the seeds alone spread it by a std of "
        f"{statistics.pstdev(r.test_accuracy for r in scratch):.4f})."
    )

    # ---- 2. attacks
    names = [(a, e) for a in evaluation.attacks for e in evaluation.eps]
    strong_key = f"strong.{robust_metric('pgd', max(evaluation.eps))}"
    columns = [*(robust_metric(a, e) for a, e in names), strong_key]
    column_titles = [*(f"{a.upper()}{f'-{evaluation.pgd_steps}' if a == 'pgd' else ''} eps {e:g}" for a, e in names),
                     f"PGD-{args.strong_pgd_steps} eps {max(evaluation.eps):g}"]

    def adv_text(label: str) -> str:
        if label == "normal":
            return "none"
        adv = adv_settings[label.split()[-1]]
        return f"{adv['attack']}, eps {adv['eps']:g}, ratio {adv['ratio']:g}" + (
            f", {adv['steps']} steps" if adv["attack"] == "pgd" else "")

    attack_table = table(
        ["model", "training.adversarial", "seed", "epochs run (best)", "train s", "clean test acc", *column_titles,
         "attack s"],
        [[a.run.label, adv_text(label), a.run.seed, f"{a.run.epochs} ({a.run.best_epoch})", f"{a.run.seconds:.1f}",
          f"{a.run.test_accuracy:.4f}", *(f"{a.metrics[c]:.4f}" for c in columns), f"{a.seconds:.1f}"]
         for label, group in attacks.items() for a in group],
    )

    def mean(label: str, key: str) -> float:
        return statistics.fmean(a.run.test_accuracy if key == "clean" else a.metrics[key] for a in attacks[label])

    adv_verdicts = []
    for label in attacks:
        if label == "normal":
            continue
        gains = {c: mean(label, c) - mean("normal", c) for c in columns}
        held = all(g > 0 for g in gains.values())
        clean = mean(label, "clean") - mean("normal", "clean")
        adv_verdicts.append(
            f"| {label} ({adv_text(label)}) > normal under every attack"
            f"{'' if args.mnist_seeds == 1 else f' (means over {args.mnist_seeds} seeds)'} | "
            f"{'**held**' if held else '**did not hold**'}: "
            + ", ".join(f"{t} {g * 100:+.1f}" for t, g in zip(column_titles, gains.values()))
            + f" points. Clean accuracy {clean * 100:+.1f} points ({mean(label, 'clean'):.4f} vs "
            f"{mean('normal', 'clean'):.4f}): {'a cost' if clean < 0 else 'no cost in this run'} |"
        )

    # ---- 3. verification
    sia_rows = rows["siamese"]
    gate = sia_cfg.registry.gates[GATE].min
    assert gate is not None, "main checks the gate before training"

    def epochs_text(v: Verified) -> str:
        return "" if v.run is None else f"{v.run.epochs} ({v.run.best_epoch})"

    verification_table = table(
        ["embedding", "training.seed", "epochs run (best)", "train s", "threshold (chosen on val)", "val acc",
         "test acc", "test true accept rate", "test false accept rate", "test f1"],
        [[v.label, "" if v.seed is None else v.seed, epochs_text(v), "" if v.run is None else f"{v.run.seconds:.1f}",
          f"{v.threshold:.4f}", f"{v.val_accuracy:.4f}", f"**{v.test['test_accuracy']:.4f}**",
          f"{v.test['test_true_accept_rate']:.4f}", f"{v.test['test_false_accept_rate']:.4f}",
          f"{v.test['test_f1']:.4f}"]
         for group in verification.values() for v in group],
    )
    trained, pixels = verification[TRAINED], verification[PIXELS][0]
    v_accs = [v.test["test_accuracy"] for v in trained]
    v_mean, v_lo, v_hi = spread(v_accs)
    px = pixels.test["test_accuracy"]
    over = "" if len(trained) == 1 else f", mean over {len(trained)} seeds"
    ahead = sum(a > px for a in v_accs)
    passed = sum(a >= gate for a in v_accs)
    per_seed_text = ", ".join(f"seed {v.seed} {a:.4f}" for v, a in zip(trained, v_accs))
    verification_verdicts = [
        f"| siamese trained > raw pixels: mnist_siamese.yaml's network, pairs of the held-out digits "
        f"{', '.join(held_out)}, test accuracy at the val threshold{over} | "
        f"{'**held**' if v_mean > px else '**did not hold**'}: {v_mean:.4f} vs {px:.4f} "
        f"({(v_mean - px) * 100:+.1f} points); trained ahead on {ahead} of {len(trained)} seeds "
        f"({per_seed_text}) |",
        f"| siamese trained >= registry.gates.{GATE}.min {gate:g}, every seed (each would be a bundle facing "
        "the gate) | "
        f"{'**held**' if passed == len(trained) else '**did not hold**'}: {passed} of {len(trained)} seeds "
        f"at or above it (range {v_lo:.4f}-{v_hi:.4f}) |",
    ]

    tr_training, pre_training = tr_cfg.training, pre_cfg.training
    sia_training = sia_cfg.training
    summary = (
        f"Data: MNIST as conf/pipelines/mnist_cnn.yaml lands and splits it ({rows['mnist']['train']:,} train / "
        f"{rows['mnist']['val']:,} val / {n_mnist_test:,} test, 28x28 grey); the UCI 8x8 digits as "
        f"conf/pipelines/mnist_transfer.yaml does (the first {tr_cfg.source.limit} of scikit-learn's 1,797, resized "
        f"to 28x28 grey, {n_train} train / {rows['digits']['val']} val / {n_test} test). Every model is "
        f"`train_model` under an in-memory `ArraySession`, {args.threads} torch thread(s). MNIST models: "
        f"mnist_cnn.yaml's model and training (at most {pre_training.epochs} epochs, batch {pre_training.batch_size}, "
        f"{pre_training.optimizer.name} lr {pre_training.optimizer.lr:g}, early stopping on val_accuracy, its "
        f"shift/rotate augmentation), training.seed {_seeds(pre_training.seed, args.mnist_seeds)}. Digits models: "
        f"mnist_transfer.yaml's training (at most {tr_training.epochs} epochs, batch {tr_training.batch_size}, "
        f"{tr_training.optimizer.name} lr {tr_training.optimizer.lr:g}, early stopping on val_accuracy), "
        f"training.seed {_seeds(tr_training.seed, args.seeds)}. Siamese models: the MNIST digits as "
        f"conf/pipelines/mnist_siamese.yaml splits them by class ({sia_rows['train']:,} train images of the other "
        f"digits; the held-out {', '.join(held_out)} shared {sia_rows['val']:,} val / {sia_rows['test']:,} test), its "
        f"model ({sia_cfg.model.kind}) and training (at most {sia_training.epochs} epochs, batch "
        f"{sia_training.batch_size}, "
        f"{sia_training.optimizer.name} lr {sia_training.optimizer.lr:g}, early stopping on "
        f"{sia_training.early_stopping.metric if sia_training.early_stopping else 'nothing'}), "
        f"training.seed {_seeds(sia_training.seed, args.siamese_seeds)}. Whole run {total_s:.0f} s.\n\n"
        "| expectation | verdict |\n|---|---|\n"
        + "\n".join([transfer_verdict, *adv_verdicts, *verification_verdicts]) + "\n"
    )
    return (
        f"{summary}\n### 1. Transfer from MNIST vs from scratch, {n_train} training digits "
        f"({n_test} test digits: one digit is {100 / n_test:.2f} points)\n\n{transfer_table}\n\n"
        f"Per seed:\n\n{per_seed}\n\n"
        f"### 2. MNIST test accuracy under attack ({n_mnist_test} test digits; eps in pixel units, a fraction of "
        f"0..255; mnist_cnn.yaml's evaluation section, PGD from random starts seeded {evaluation.seed})\n\n"
        f"{attack_table}\n\n"
        f"### 3. One-shot verification of digits never trained on ({', '.join(held_out)}; {sia_rows['val']} val / "
        f"{sia_rows['test']} test images, {PAIRS:,} balanced pairs drawn from each split)\n\n"
        f"{verification_table}\n\n"
        + "\n".join([ranking, *_notes(args, attacks["normal"][0].run, frozen_ok, inits[TRANSFER], prep_s, evaluation),
                     *_verification_notes(verification, rechosen)])
        + "\n"
    )


def _seeds(first: int, n: int) -> str:
    return str(first) if n == 1 else f"{first}..{first + n - 1}"


def _notes(args: argparse.Namespace, source: Run, frozen_ok: list[bool], init: InitFrom, prep_s: float,
           evaluation: EvaluationConfig) -> list[str]:
    names = dict(source.model.named_parameters())
    total = sum(p.numel() for p in names.values())
    frozen = sum(p.numel() for n, p in names.items() if any(n.startswith(f + ".") for f in init.freeze))
    step = ("step 2.5 eps / steps" if evaluation.pgd_step_size is None else f"step {evaluation.pgd_step_size:g}")
    return [
        f"- The source of transfer is the \"normal\" MNIST model of table 2 with training.seed {source.seed} (test "
        f"accuracy {source.test_accuracy:.4f}): the model file of its last checkpoint, which early stopping's "
        "restore-best set to the best epoch's weights, as a bundle takes it. `pretrained_init` with "
        "mnist_transfer.yaml's `model.init_from` settings points the loop's `init_from` at that file instead of a "
        "registry download. The pipeline would take the tuned champion (mnist_cnn.yaml searches the learning "
        "rate); this run trains once at the configured rate.",
        f"- `{', '.join(init.freeze)}` unchanged after fine-tuning (compared tensor by tensor with the source): "
        f"{'yes, every seed' if all(frozen_ok) else 'NO: ' + str(frozen_ok)}. The frozen layers hold {frozen:,} of "
        f"LeNet-5's {total:,} parameters; the dense `classifier` layers, which the config fine-tunes at "
        f"{init.lr_scale:g} of the rate, hold most of the rest. The digits are normalised with their own training "
        "split's statistics (the transfer pipeline fits its own processor). An 8x8 digit resized to 28x28 fills "
        "the frame, where an MNIST digit sits in a 20x20 box with a 4-pixel margin: the pretrained layers see "
        "strokes at another scale and place.",
        "- Seeds vary the initial weights (the new head, or the whole network from scratch) and the batch order; "
        "the data split is the config's throughout. Test accuracy is `score` of the model the loop left (restored "
        "to its best validation epoch), the clean number the pipeline reports. \"val acc after epoch 0\" shows how "
        "far one pass over the training digits takes each initialisation.",
        f"- Attacks: `evaluation_report` with mnist_cnn.yaml's evaluation section ({', '.join(evaluation.attacks)}; "
        f"eps {', '.join(f'{e:g}' for e in evaluation.eps)}; PGD {evaluation.pgd_steps} steps, {step}), "
        f"visual report off; the PGD-{args.strong_pgd_steps} column is the same call with more steps at the largest "
        "eps, a check that the robust accuracy does not come from a weak attack. Adversarial training is the "
        f"project's `training.adversarial` (eps {args.adv_eps:g}, ratio 0.5: the first half of every augmented batch "
        "replaced by attacks on the model being trained; PGD 3 steps) on the same config; early stopping watches "
        "clean val_accuracy, as in the pipeline, so the models may train for different numbers of epochs.",
        f"- Preparing the three data sets (land, split, fit, write silver, decode) took {prep_s:.1f} s.",
    ]


def _verification_notes(verification: dict[str, list[Verified]], rechosen: list[float]) -> list[str]:
    trained = verification[TRAINED]
    drift = max(abs(v.threshold - t) for v, t in zip(trained, rechosen))
    given_back = "exactly" if drift == 0 else f"within {drift:.1e}"
    net = trained[0].run.model.config if trained[0].run is not None else None
    assert net is not None, "trained rows carry their run"
    return [
        "- Verification: \"same\" iff the Euclidean distance of two embeddings is at most the threshold. Every row "
        f"is judged on the same {PAIRS:,} pairs per split (`label_pairs`, seeded: half same-digit, half different), "
        f"drawn with replacement from the split's images, so pairs share images and one pair ({100 / PAIRS:.2f} "
        "points) overstates the resolution. The trained models' threshold is the last report's `val_threshold` (the "
        "epoch early stopping restored), the number a bundle keeps and `verification_report` applies in the "
        "register step; the baselines' is chosen on the val pairs by `label_verification(..., threshold=None)`, "
        "the call the loop's validation makes. Choosing it that way on the trained models' restored weights gives "
        f"back the reported `val_threshold` {given_back}.",
        f"- Training: the `metric_learning` task's {net.loss} loss ({net.mining} mining from each batch's labels, "
        f"margin {net.margin:g}; {net.arch} trunk, embedding_dim {net.embedding_dim}) on the train split's "
        "digits only; early stopping watches val_accuracy, the verification accuracy on the held-out digits' val "
        "pairs, so validation picks the epoch and the threshold and the test pairs stay untouched. The untrained "
        "row is the same spec built after `torch.manual_seed(training.seed)`, as `train_model` builds it: each "
        "seed's starting point. Raw pixels are the inputs as the model receives them (normalised with the train "
        "split's statistics), flattened and scaled to unit length, so their distances, like the embeddings', lie "
        "in [0, 2].",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
