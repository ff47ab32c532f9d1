"""Epoch time of the project's Ray Train loop (1 worker) against a plain PyTorch loop.

Both sides train the same MLP (same spec, seed, optimizer, batch size) on the same rows
and run the same validation pass every epoch. The Ray side is the production path:
Delta tables written by `Lake`, read by `silver_datasets`, trained by `train_model` inside
a Train V2 `TorchTrainer` built as `make_trainer` builds it. The only difference is the
session: `_TimedSession` is the project's `TrainSession` plus wall-clock stamps at each
phase, so nothing in project code changes.

    .venv/bin/python benchmarks/train_overhead.py [--epochs 6] [--rows 20000]

The first epoch of each side is warm-up and is discarded; the ratio compares medians.
Ray gives a 1-CPU worker OMP_NUM_THREADS=1, so the plain loop runs with
torch.set_num_threads(1) too (both sides report the thread count they ran with).
"""

from __future__ import annotations

import os

# Train V2 is the only trainer API the project uses (flows.workspace.connect_ray sets the same).
os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import polars as pl
import ray
import torch
from ray.train import CheckpointConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_section  # noqa: E402

from components.config import ProfileConfig, TrainingConfig  # noqa: E402
from components.data.lake import Lake  # noqa: E402
from components.data.preparation import LABEL, input_columns  # noqa: E402
from components.models import build  # noqa: E402
from components.training.checkpoint import save_checkpoint  # noqa: E402
from components.training.loop import evaluate, loop_config, train_model  # noqa: E402
from components.training.losses import loss_fn  # noqa: E402
from components.training.optim import make_optimizer  # noqa: E402
from components.training.ray_session import TrainSession, silver_datasets  # noqa: E402
from flows.workspace import connect_ray  # noqa: E402

TARGET_RATIO = 1.10
N_CLASSES = 10


# ---------------------------------------------------------------------------- data


def synthetic_silver(rows: int, features: int, seed: int) -> pl.DataFrame:
    """Silver-shaped rows (x000.. float32, label int64) whose label a small MLP can learn."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features), dtype=np.float32)  # (N, F)
    w = np.random.default_rng(1234).standard_normal((features, N_CLASSES)).astype(np.float32)  # same rule for every split
    logits = x @ w + 0.5 * rng.standard_normal((rows, N_CLASSES)).astype(np.float32)  # (N, C)
    frame = pl.DataFrame({name: x[:, i] for i, name in enumerate(input_columns(features))})
    return frame.with_columns(pl.Series(LABEL, logits.argmax(axis=1).astype(np.int64)))


def _tensors(frame: pl.DataFrame, features: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(frame.select(input_columns(features)).to_numpy().astype(np.float32))  # (N, F)
    y = torch.from_numpy(frame[LABEL].to_numpy().astype(np.int64))  # (N,)
    return x.contiguous(), y


# ---------------------------------------------------------------------------- Ray side


class _TimedSession(TrainSession):
    """The project's TrainSession, stamping (phase, epoch, wall time) as the loop calls it."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[tuple[str, float]] = []

    def batches(self, split: str, batch_size: int, shuffle: bool, seed: int):
        self.stamps.append((split, time.time()))
        return super().batches(split, batch_size, shuffle, seed)

    def report(self, metrics: dict[str, float], checkpoint_dir: str | None) -> None:
        self.stamps.append(("report", time.time()))
        super().report(metrics, checkpoint_dir)
        self.stamps.append(("reported", time.time()))


def _timed_worker(config: dict[str, Any]) -> dict[str, Any]:
    entered = time.time()
    session = _TimedSession()
    history = train_model(config, session)
    return {"entered": entered, "stamps": session.stamps, "threads": torch.get_num_threads(), "history": history}


def run_ray(config: dict[str, Any], tables: dict[str, tuple[str, int]], features: int, storage: str) -> dict[str, Any]:
    datasets = silver_datasets(tables, input_columns(features), LABEL, "int64")
    # Built exactly as components.training.ray_session.make_trainer builds it (num_workers=1,
    # CPU), with the timed worker function in place of train_loop_per_worker.
    trainer = TorchTrainer(
        _timed_worker,
        train_loop_config=config,
        torch_config=TorchConfig(backend="gloo"),
        scaling_config=ScalingConfig(num_workers=1, use_gpu=False),
        run_config=RunConfig(
            name="train-overhead", storage_path=storage, checkpoint_config=CheckpointConfig(num_to_keep=2)
        ),
        datasets=datasets,
    )
    fit_called = time.time()
    result = trainer.fit()
    fit_returned = time.time()
    if result.error is not None:
        raise RuntimeError(f"the Ray Train run failed: {result.error}")
    out = dict(result.return_value)
    out.update(fit_called=fit_called, fit_returned=fit_returned)
    return out


def ray_phases(out: dict[str, Any]) -> list[dict[str, float]]:
    """Per epoch: start, train, val (+ checkpoint write), report and whole-cycle seconds."""
    epochs: list[dict[str, float]] = []
    current: dict[str, float] = {}
    for phase, t in out["stamps"]:
        current[phase] = t
        if phase == "reported":
            epochs.append(current)
            current = {}
    rows = []
    for i, e in enumerate(epochs):
        previous_end = epochs[i - 1]["reported"] if i else e["train"]
        rows.append({
            "train": e["val"] - e["train"],
            "val": e["report"] - e["val"],
            "report": e["reported"] - e["report"],
            "epoch": e["reported"] - previous_end,
            "start": e["train"],
            "end": e["reported"],
        })
    return rows


# ---------------------------------------------------------------------------- plain side


def run_plain(
    config: dict[str, Any], train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor]
) -> tuple[list[dict[str, float]], dict[str, float]]:
    """The same model, optimizer, batch size and validation pass as the loop, without Ray."""
    cfg = TrainingConfig.model_validate(config["training"])
    spec = config["model"]
    out_features = int(spec["params"]["out_features"])
    torch.manual_seed(cfg.seed)
    model = build(spec)
    optimizer = make_optimizer(model.parameters(), cfg.optimizer)
    criterion = loss_fn(config["task"], out_features)
    session = SimpleNamespace(world_rank=0, world_size=1, device=torch.device("cpu"))
    x_train, y_train = train
    x_val, y_val = val
    generator = torch.Generator().manual_seed(cfg.seed)
    rows, last = [], {}
    for _ in range(cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(y_train), generator=generator)
        total, count = 0.0, 0
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            x, y = x_train[idx], y_train[idx]  # (B, F), (B,)
            loss = criterion(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        t1 = time.perf_counter()
        val_batches = (
            {"x": x_val[s : s + cfg.batch_size], "y": y_val[s : s + cfg.batch_size]}
            for s in range(0, len(y_val), cfg.batch_size)
        )
        last = {"train_loss": total / count, **evaluate(model, criterion, val_batches, config["task"], out_features, session)}
        t2 = time.perf_counter()
        rows.append({"train": t1 - t0, "val": t2 - t1, "report": 0.0, "epoch": t2 - t0})
    return rows, last


def checkpoint_write_s(config: dict[str, Any], repeats: int = 5) -> float:
    """Median time of the loop's per-epoch `save_checkpoint` call for this model (to a temp dir)."""
    cfg = TrainingConfig.model_validate(config["training"])
    model = build(config["model"])
    optimizer = make_optimizer(model.parameters(), cfg.optimizer)
    loss = model(torch.zeros(2, int(config["model"]["params"]["in_features"]))).sum()
    loss.backward()
    optimizer.step()  # populate the optimizer state, as after a real epoch
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            save_checkpoint(
                tmp, model=model, optimizer=optimizer, scheduler=None, stopper=None,
                epoch=0, spec=config["model"], metrics={}, best_metrics={},
            )
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def data_only_epochs(tables: dict[str, tuple[str, int]], features: int, batch_size: int, epochs: int) -> dict[str, float]:
    """Median seconds to stream each split once through Ray Data in the driver, no model:
    the same datasets and the same `iter_torch_batches` arguments the session uses."""
    datasets = silver_datasets(tables, input_columns(features), LABEL, "int64")
    out = {}
    for split, shuffle in (("train", True), ("val", False)):
        times = []
        for epoch in range(epochs):
            t0 = time.perf_counter()
            for _ in datasets[split].iter_torch_batches(
                batch_size=batch_size,
                local_shuffle_buffer_size=batch_size * 16 if shuffle else None,
                local_shuffle_seed=epoch if shuffle else None,
            ):
                pass
            times.append(time.perf_counter() - t0)
        out[split] = statistics.median(times[1:])
    return out


# ---------------------------------------------------------------------------- main

_POLL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def _ray_run(
    poll_s: str, config: dict[str, Any], tables: dict[str, tuple[str, int]], args: argparse.Namespace, storage: str,
    measure_data: bool,
) -> dict[str, Any]:
    """One local Ray session: ray.init, the timed Train run, optionally Ray Data alone, shutdown.
    The controller reads its poll interval from the environment it inherits at ray.init."""
    previous = os.environ.pop(_POLL_ENV, None)
    if poll_s != "default":
        os.environ[_POLL_ENV] = poll_s
    try:
        t0 = time.perf_counter()
        connect_ray(ProfileConfig())
        init_s = time.perf_counter() - t0
        out = run_ray(config, tables, args.features, storage)
        out["ray_init_s"] = init_s
        if measure_data:
            out["data_only"] = data_only_epochs(tables, args.features, args.batch_size, epochs=4)
        return out
    finally:
        ray.shutdown()
        os.environ.pop(_POLL_ENV, None)
        if previous is not None:
            os.environ[_POLL_ENV] = previous


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--val-rows", type=int, default=4_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument(
        "--poll", nargs="+", default=["default", "0.1"],
        help=f"Train controller poll intervals to run the Ray side with ({_POLL_ENV}); 'default' leaves it unset "
        "(Ray's 2.0 s). The first is the headline ratio.",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if args.epochs < 3:
        parser.error(f"--epochs must be >= 3 (the first is discarded as warm-up), got {args.epochs}")

    training = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size).model_dump()
    config = loop_config(
        {"kind": "mlp", "params": {"hidden": args.hidden}}, training,
        task="classification", in_features=args.features, out_features=N_CLASSES,
    )

    with tempfile.TemporaryDirectory(prefix="rayline-bench-train-") as tmp:
        lake = Lake(f"{tmp}/lake")
        tables = {
            "train": (lake.uri("silver_train"), lake.overwrite("silver_train", synthetic_silver(args.rows, args.features, 0))),
            "val": (lake.uri("silver_val"), lake.overwrite("silver_val", synthetic_silver(args.val_rows, args.features, 1))),
        }

        # Plain loop first, on the rows read back from the same Delta tables, before Ray
        # starts any process that could compete for the two cores.
        torch.set_num_threads(1)
        plain_train = _tensors(lake.read("silver_train", tables["train"][1]), args.features)
        plain_val = _tensors(lake.read("silver_val", tables["val"][1]), args.features)
        plain_rows, plain_last = run_plain(config, plain_train, plain_val)
        ckpt_s = checkpoint_write_s(config)

        runs = {
            poll: _ray_run(poll, config, tables, args, f"{tmp}/runs-{i}", measure_data=i == 0)
            for i, poll in enumerate(args.poll)
        }

    steady_plain = plain_rows[1:]
    plain_median = _median(steady_plain, "epoch")

    def label(poll: str) -> str:
        return "Ray Train, controller poll 2.0 s (default)" if poll == "default" else f"Ray Train, {_POLL_ENV}={poll}"

    def line(name: str, rows: list[dict[str, float]], threads: int) -> list[object]:
        return [
            name, threads, f"{_median(rows, 'epoch'):.3f}", f"{_median(rows, 'epoch') / plain_median:.2f}",
            f"{min(r['epoch'] for r in rows):.3f}", f"{max(r['epoch'] for r in rows):.3f}",
            f"{_median(rows, 'train'):.3f}", f"{_median(rows, 'val'):.3f}", f"{_median(rows, 'report'):.3f}",
        ]

    lines = [line("plain PyTorch", steady_plain, 1)]
    startup_rows: list[list[object]] = []
    ratios: dict[str, float] = {}
    accuracies = [f"plain {plain_last.get('val_accuracy', float('nan')):.3f}"]
    for poll, out in runs.items():
        rows = ray_phases(out)
        steady = rows[1:]
        ratios[poll] = _median(steady, "epoch") / plain_median
        lines.append(line(label(poll), steady, out["threads"]))
        accuracies.append(f"{label(poll)} {out['history'][-1].get('val_accuracy', float('nan')):.3f}")
        first = rows[0]["end"]
        startup_rows.append([
            label(poll), f"{out['ray_init_s']:.2f}", f"{out['entered'] - out['fit_called']:.2f}",
            f"{first - out['entered']:.2f}", f"{first - out['fit_called']:.2f}", f"{rows[0]['epoch']:.2f}",
            f"{out['fit_returned'] - rows[-1]['end']:.2f}", f"{out['fit_returned'] - out['fit_called']:.2f}",
        ])

    epochs_table = table(
        ["loop", "torch threads", "median epoch s", "ratio to plain", "min s", "max s",
         "train phase s", "val phase s", "report s"],
        lines,
    )
    startup_table = table(
        ["Ray run", "ray.init s", "fit() -> worker fn entered s", "worker entered -> 1st report s",
         "fit() -> 1st report s", "1st epoch s", "last report -> fit() returns s", "fit() total s"],
        startup_rows,
    )
    headline_poll = args.poll[0]
    ratio = ratios[headline_poll]
    verdict = (
        "met" if ratio <= TARGET_RATIO
        else f"missed by {ratio - TARGET_RATIO:.2f} ({(ratio / TARGET_RATIO - 1) * 100:.0f}% over)"
    )
    data_only = runs[headline_poll].get("data_only", {})
    summary = (
        f"Workload: synthetic {args.rows:,} train / {args.val_rows:,} val rows x {args.features} float32 features, "
        f"{N_CLASSES} classes, Delta tables written with `Lake.overwrite`; MLP hidden {args.hidden}, Adam lr 1e-3, "
        f"batch size {args.batch_size}, {args.epochs} epochs, epoch 0 discarded on both sides "
        f"({len(steady_plain)} steady epochs each). Plain first epoch (discarded): {plain_rows[0]['epoch']:.3f} s.\n\n"
        f"**Epoch-time ratio Ray/plain (medians, {label(headline_poll)}): {ratio:.2f}** "
        f"(target <= {TARGET_RATIO:.2f}: {verdict}).\n\n"
        f"Final val accuracy (sanity check that every side trained): {', '.join(accuracies)}.\n"
    )
    notes = [
        "- Epoch time on the Ray side is report-end to report-end: everything the worker does per epoch. "
        "\"val phase\" runs from the val-batch request to the report call, so it includes the loop's "
        f"`save_checkpoint` to a temp dir (measured alone: {ckpt_s * 1000:.1f} ms for this model). "
        "\"report s\" is the time blocked inside `ray.train.report` (checkpoint persisted to the run's "
        "storage path, then the result handed to the controller).",
        "- `ray.train.report` puts each result on a per-worker queue of size 1 that the Train V2 controller "
        f"drains once per poll ({_POLL_ENV}, default 2.0 s). A loop that reports more often than every 2 s "
        "therefore blocks in report until the next poll: with the default, epochs cannot be shorter than ~2 s.",
        "- The plain loop shuffles in-memory tensors with `torch.randperm` each epoch, calls the loop's own "
        "`evaluate` for validation, and writes no checkpoint; the Ray loop streams both Delta tables through "
        "Ray Data every epoch (`read_delta` -> `map_batches` packing -> `iter_torch_batches`, local shuffle "
        "buffer of 16 batches).",
        "- Torch threads: 1 on both sides (Ray sets OMP_NUM_THREADS=1 for a 1-CPU worker; the plain loop calls "
        "`torch.set_num_threads(1)`).",
    ]
    if data_only:
        notes.append(
            f"- Ray Data alone (driver, no model, same datasets and iterator arguments): one pass over train "
            f"{data_only['train']:.3f} s, over val {data_only['val']:.3f} s (medians of 3 after one warm-up)."
        )
    body = f"{summary}\n{epochs_table}\n\nStart-up (not in the ratio):\n\n{startup_table}\n\n" + "\n".join(notes) + "\n"
    print(body)
    for poll, out in runs.items():
        print(f"per-epoch seconds, {label(poll)}: {[round(r['epoch'], 3) for r in ray_phases(out)]}")
    print(f"per-epoch seconds, plain PyTorch: {[round(r['epoch'], 3) for r in plain_rows]}")
    if not args.no_write:
        write_section("train_overhead", "Ray Train loop overhead (train_overhead.py)", body)
        print("wrote benchmarks/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
