"""Epoch time of the project's Ray Train loop (1 worker) against a plain PyTorch loop.

Both sides train the same MLP (same spec, seed, optimizer, batch size) on the same rows
and run the same validation pass every epoch. The Ray side is the production path:
Delta tables written by `Lake`, read by `silver_datasets`, trained by `train_model` inside
a Train V2 `TorchTrainer` built as `make_trainer` builds it, on a local Ray started by
`flows.workspace.connect_ray` (which applies `RAY_ENV`). The only difference is the
session: `_TimedSession` is the project's `TrainSession` plus wall-clock stamps at each
phase, so nothing in project code changes.

    .venv/bin/python benchmarks/train_overhead.py [--epochs 6] [--rows 20000]
        [--variants production stream stream-delta poll=2]

Each Ray variant runs in its own subprocess with its own local Ray, so a variant's
environment (the Train controller's poll interval) reaches every Ray process it starts:

    production    project defaults: RAY_ENV, small tables materialized, small shards kept
                  in worker memory after the first pass (gives the headline ratio)
    stream        as production, but the worker re-streams its shard every epoch
                  (ShardBatches(keep_below_bytes=0)) from the materialized dataset
    stream-delta  as stream, and the dataset is not materialized either: every epoch reads
                  and packs the Delta files again, the path a table over 256 MiB takes
    poll=S        as production, with RAY_TRAIN_HEALTH_CHECK_INTERVAL_S=S (Ray's default: 2)

The first epoch of each side is warm-up and is discarded; the ratio compares medians.
Ray gives a 1-CPU worker OMP_NUM_THREADS=1, so the plain loop runs with
torch.set_num_threads(1) too (both sides report the thread count they ran with).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import polars as pl
import ray
import ray.train
import torch
from ray.train import CheckpointConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import by_epoch, run_child, table, waited, write_section  # noqa: E402

import components.training.ray_session as ray_session  # noqa: E402
from components.config import ProfileConfig, TrainingConfig  # noqa: E402
from components.data.lake import Lake  # noqa: E402
from components.data.preparation import LABEL, input_columns  # noqa: E402
from components.models import build  # noqa: E402
from components.training.checkpoint import save_checkpoint  # noqa: E402
from components.data.modalities import tabular_info  # noqa: E402
from components.training.loop import data_info, evaluate, loop_config, train_model  # noqa: E402
from components.training.tasks import Supervised  # noqa: E402
from components.training.losses import loss_fn  # noqa: E402
from components.training.optim import make_optimizer  # noqa: E402
from components.training.ray_session import ShardBatches, TrainSession  # noqa: E402
from flows.workspace import RAY_ENV, connect_ray  # noqa: E402

TARGET_RATIO = 1.10
N_CLASSES = 10
_POLL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
_CHILD_TIMEOUT_S = 240


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


# ---------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """One Ray-side run. None means "as the project does it"."""

    key: str
    poll_s: float | None = None  # RAY_TRAIN_HEALTH_CHECK_INTERVAL_S; None: RAY_ENV's value
    keep_below_bytes: int | None = None  # ShardBatches limit; None: the project's default
    materialize: bool = True  # False: never materialize in silver_datasets

    @property
    def label(self) -> str:
        if self.key == "production":
            return "Ray Train, as in production"
        if self.key == "stream":
            return "Ray Train, streaming every epoch"
        if self.key == "stream-delta":
            return "Ray Train, streaming from Delta every epoch"
        default = " (Ray's default)" if self.poll_s == 2.0 else ""
        return f"Ray Train, controller poll {self.poll_s:g} s{default}"

    @property
    def env(self) -> dict[str, str]:
        """What the child's environment sets before connect_ray; RAY_ENV fills in the rest."""
        return {} if self.poll_s is None else {_POLL_ENV: f"{self.poll_s:g}"}


def _variant(text: str) -> Variant:
    if text == "production":
        return Variant(text)
    if text == "stream":
        return Variant(text, keep_below_bytes=0)
    if text == "stream-delta":
        return Variant(text, keep_below_bytes=0, materialize=False)
    if text.startswith("poll="):
        try:
            return Variant(text, poll_s=float(text.removeprefix("poll=")))
        except ValueError:
            pass
    raise argparse.ArgumentTypeError(f"a variant is production, stream, stream-delta or poll=SECONDS, got {text!r}")


# ---------------------------------------------------------------------------- Ray side (child process)


class _TimedSession(TrainSession):
    """The project's TrainSession, stamping (phase, wall time) as the loop calls it; with
    `keep_below_bytes` set, shards are built with that limit instead of the default."""

    def __init__(self, keep_below_bytes: int | None) -> None:
        super().__init__()
        self.stamps: list[tuple[str, float]] = []
        self._keep_below = keep_below_bytes
        self._own: dict[str, ShardBatches] = {}

    def batches(self, split: str, batch_size: int, shuffle: bool, seed: int):
        self.stamps.append((split, time.time()))
        if self._keep_below is None:
            return waited(self.stamps, split, super().batches(split, batch_size, shuffle, seed))
        if split not in self._own:
            self._own[split] = ShardBatches(ray.train.get_dataset_shard(split), keep_below_bytes=self._keep_below)
        return waited(self.stamps, split, self._own[split](batch_size, shuffle, seed))

    def report(self, metrics: dict[str, float], checkpoint_dir: str | None) -> None:
        self.stamps.append(("report", time.time()))
        super().report(metrics, checkpoint_dir)
        self.stamps.append(("reported", time.time()))

    def kept_in_memory(self) -> bool:
        # Sanity check of what the row claims; reads ShardBatches' private state.
        shard = (self._own or getattr(self, "_shards", {})).get("train")
        return getattr(shard, "_kept", None) is not None


def _timed_worker(config: dict[str, Any]) -> dict[str, Any]:
    """The loop as `train_loop_per_worker` runs it, with `_TimedSession` as its session."""
    entered = time.time()
    config = dict(config)
    session = _TimedSession(config.pop("_keep_below_bytes"))
    history = train_model(config, session)
    return {
        "entered": entered, "stamps": session.stamps, "threads": torch.get_num_threads(), "history": history,
        "kept": session.kept_in_memory(), "code": _code_dir(),
    }


def _code_dir() -> str:
    """Where this process imports the project from (driver and workers must agree)."""
    return str(Path(ray_session.__file__).resolve().parent.parent)


def data_only_passes(datasets: dict[str, Any], batch_size: int, epochs: int) -> dict[str, float]:
    """Median seconds to stream each split once through Ray Data in the driver, no model:
    the same datasets and the same `iter_torch_batches` arguments `ShardBatches` uses."""
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


def ray_child(spec_path: str) -> int:
    """One variant on its own local Ray: connect_ray, silver_datasets, the timed Train run,
    Ray Data alone, shutdown. Writes its measurements as JSON next to the spec."""
    spec = json.loads(Path(spec_path).read_text())
    variant = Variant(**spec["variant"])
    tables = {split: tuple(t) for split, t in spec["tables"].items()}
    if not variant.materialize:
        ray_session.CACHE_BELOW_BYTES = -1  # this process only: every table streams from Delta
    t0 = time.perf_counter()
    connect_ray(ProfileConfig())
    init_s = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        datasets = ray_session.silver_datasets(tables, input_columns(spec["features"]), LABEL, "int64")
        datasets_s = time.perf_counter() - t0
        config = {**spec["config"], "_keep_below_bytes": variant.keep_below_bytes}
        # Built exactly as components.training.ray_session.make_trainer builds it (num_workers=1,
        # CPU), with the timed worker function in place of train_loop_per_worker.
        trainer = TorchTrainer(
            _timed_worker,
            train_loop_config=config,
            torch_config=TorchConfig(backend="gloo"),
            scaling_config=ScalingConfig(num_workers=1, use_gpu=False),
            run_config=RunConfig(
                name="train-overhead", storage_path=spec["storage"], checkpoint_config=CheckpointConfig(num_to_keep=2)
            ),
            datasets=datasets,
        )
        fit_called = time.time()
        result = trainer.fit()
        fit_returned = time.time()
        if result.error is not None:
            raise RuntimeError(f"the Ray Train run failed: {result.error}")
        out = dict(result.return_value)
        out.update(
            fit_called=fit_called, fit_returned=fit_returned, ray_init_s=init_s, datasets_s=datasets_s,
            poll_s=os.environ.get(_POLL_ENV), data_only=data_only_passes(datasets, spec["batch_size"], epochs=4),
            blocks={
                split: ds.num_blocks() if type(ds).__name__ == "MaterializedDataset" else None
                for split, ds in datasets.items()
            },
            driver_code=_code_dir(),
        )
    finally:
        ray.shutdown()
    Path(spec["out"]).write_text(json.dumps(out))
    return 0


def run_variant(variant: Variant, spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """`ray_child` in a fresh interpreter whose environment carries only this variant's settings."""
    env = {k: v for k, v in os.environ.items() if k not in RAY_ENV and k != "RAY_ADDRESS"}  # always a local Ray
    env.update(variant.env)
    out = run_child(__file__, {**spec, "variant": asdict(variant)}, workdir, variant.key, variant.label, env,
                    _CHILD_TIMEOUT_S)
    if {out["code"], out["driver_code"]} != {_code_dir()}:
        raise RuntimeError(f"{variant.label} imported project code from {out['driver_code']} (driver) and "
                           f"{out['code']} (worker), not {_code_dir()}")
    return out


def ray_phases(out: dict[str, Any]) -> list[dict[str, float]]:
    """Per epoch: train, val (+ checkpoint write), report and whole-cycle seconds, and the
    seconds the loop waited for batches (all of them; the first of each split)."""
    epochs = [{phase: values[0] for phase, values in e.items()} for e in by_epoch(out["stamps"])]
    rows = []
    for i, e in enumerate(epochs):
        previous_end = epochs[i - 1]["reported"] if i else e["train"]
        rows.append({
            "train": e["val"] - e["train"],
            "val": e["report"] - e["val"],
            "report": e["reported"] - e["report"],
            "wait": e["train_wait"] + e["val_wait"],
            "first": e["train_first"] + e["val_first"],
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
    task = Supervised(model, data_info(config), cfg)  # only its validation pass: the loop's own `evaluate`
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
        wait = time.perf_counter() - t0
        for start in range(0, len(order), cfg.batch_size):
            w0 = time.perf_counter()
            idx = order[start : start + cfg.batch_size]
            x, y = x_train[idx], y_train[idx]  # (B, F), (B,)
            wait += time.perf_counter() - w0
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
        last = {"train_loss": total / count, **evaluate(task, val_batches, session)}
        t2 = time.perf_counter()
        rows.append({"train": t1 - t0, "val": t2 - t1, "report": 0.0, "wait": wait, "first": 0.0, "epoch": t2 - t0})
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
                tmp, model=model, optimizers={"model": optimizer}, schedulers={}, stopper=None,
                epoch=0, spec=config["model"], metrics={}, best_metrics={},
            )
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ---------------------------------------------------------------------------- main


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def _fit_s(out: dict[str, Any]) -> float:
    return out["fit_returned"] - out["fit_called"]


def _notes(
    runs: dict[Variant, dict[str, Any]], steady: dict[Variant, list[dict[str, float]]],
    plain: list[dict[str, float]], ckpt_s: float,
) -> list[str]:
    """What each row is and, from this run's numbers, what makes up each gap to plain."""
    by_key = {v.key: v for v in runs}
    med = {v: _median(rows, "epoch") for v, rows in steady.items()}
    plain_median = _median(plain, "epoch")
    notes = [
        "- Epoch time is report-end to report-end on the Ray side: everything the worker does per epoch. "
        "\"val phase\" runs from the val-batch request to the report call, so it includes the loop's "
        f"`save_checkpoint` to a temp dir (measured alone: {ckpt_s * 1000:.1f} ms for this model); "
        "\"report s\" is the time blocked in `ray.train.report` (checkpoint persisted to the run's storage path, "
        "result handed to the controller). The plain loop shuffles in-memory tensors with `torch.randperm`, runs "
        "the loop's own `evaluate`, and writes no checkpoint. Torch threads: 1 on both sides.",
        "- Every Ray row runs in its own subprocess whose Ray was started by `flows.workspace.connect_ray`, which "
        f"applies `RAY_ENV` ({', '.join(f'{k}={v}' for k, v in RAY_ENV.items())}) before `ray.init`; only the "
        "controller-poll row overrides one of them in that subprocess's environment.",
    ]
    production = by_key.get("production")
    if production is not None:
        p = steady[production]
        blocks = runs[production]["blocks"]
        notes.append(
            f"- **as in production**: `silver_datasets` materializes both tables (each far below 256 MiB; "
            f"{blocks['train']} + {blocks['val']} blocks in the object store); the worker's `ShardBatches` streams "
            f"its shard once in epoch 0 and then keeps it (train shard kept in memory: "
            f"{'yes' if runs[production]['kept'] else 'NO'}), so epochs 1+ reshuffle in-memory tensors like the "
            f"plain loop (batch wait {_median(p, 'wait') * 1000:.0f} ms vs {_median(plain, 'wait') * 1000:.0f} ms "
            f"plain). What is left of the gap, {(med[production] - plain_median) * 1000:+.0f} ms per epoch, splits "
            f"into `ray.train.report` {_median(p, 'report') * 1000:.0f} ms, val phase "
            f"{(_median(p, 'val') - _median(plain, 'val')) * 1000:+.0f} ms (the checkpoint write) and train phase "
            f"{(_median(p, 'train') - _median(plain, 'train')) * 1000:+.0f} ms (medians, so the parts need not add "
            f"up exactly); the production epochs themselves spread over "
            f"{(max(r['epoch'] for r in p) - min(r['epoch'] for r in p)) * 1000:.0f} ms."
        )
    for key, what in (
        ("stream", "re-streams its shard of the materialized dataset every epoch (`ShardBatches(shard, "
         "keep_below_bytes=0)` in a session subclass)"),
        ("stream-delta", "re-streams every epoch and its datasets are not materialized either (`CACHE_BELOW_BYTES` "
         "set to -1 in that subprocess), so each epoch reads and packs the Delta files again: the path a table "
         "over 256 MiB takes"),
    ):
        v = by_key.get(key)
        if v is None:
            continue
        rows, data = steady[v], runs[v]["data_only"]
        base, base_name = (steady[production], "production") if production is not None else (plain, "plain")
        extra = _median(rows, "epoch") - _median(base, "epoch")
        more_wait = _median(rows, "wait") - _median(base, "wait")
        relaunch = ", which launches the Delta read and pack tasks again" if not v.materialize else ""
        notes.append(
            f"- **{v.label.removeprefix('Ray Train, ')}**: the worker {what}. {extra:+.3f} s per epoch against "
            f"{base_name}, of which {more_wait:+.3f} s ({more_wait / extra * 100:.0f}%) is the loop waiting for "
            f"batches: {_median(rows, 'first'):.3f} s until the first batch of train and of val arrives (each pass "
            f"has the dataset's SplitCoordinator actor start a new streaming execution{relaunch}) and the rest "
            "while later blocks arrive, one coordinator call each. The other "
            f"{extra - more_wait:+.3f} s is outside the waits: the model steps ran slower, most likely because "
            "Ray Data's prefetching in the worker and its executor shared the 2 cores with them. The same "
            "datasets iterated in the driver with the same arguments, without Train's split (after the run): "
            f"{data['train']:.3f} s per train pass, {data['val']:.3f} s per val pass."
        )
    for v in runs:
        if v.poll_s is None:
            continue
        rows = steady[v]
        notes.append(
            f"- **{v.label.removeprefix('Ray Train, ')}**: `ray.train.report` puts each result on a per-worker "
            f"queue of size 1 that the Train V2 controller drains once per poll ({_POLL_ENV}). With {v.poll_s:g} s "
            f"a loop that reports more often blocks in report until the next poll: median {_median(rows, 'report'):.3f} s "
            f"blocked per epoch, epoch {med[v]:.3f} s ({med[v] / plain_median:.1f}x plain)"
            + (
                f", and fit() takes {_fit_s(runs[v]):.1f} s end to end instead of {_fit_s(runs[production]):.1f} s"
                if production is not None else ""
            )
            + ". `RAY_ENV`'s 0.1 s is what the production row runs with."
        )
    return notes



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--val-rows", type=int, default=4_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument(
        "--variants", nargs="+", type=_variant, default=["production", "stream", "stream-delta", "poll=2"],
        help="Ray-side runs, each on its own local Ray: production, stream, stream-delta, poll=SECONDS "
        "(see the module docstring). The first gives the headline ratio.",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--ray-child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ray_child:
        return ray_child(args.ray_child)
    # argparse applies `type` to given values only, not to a list default.
    args.variants = [v if isinstance(v, Variant) else _variant(v) for v in args.variants]
    if args.epochs < 3:
        parser.error(f"--epochs must be >= 3 (the first is discarded as warm-up), got {args.epochs}")

    training = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size).model_dump()
    config = loop_config(
        {"kind": "mlp", "params": {"hidden": args.hidden}}, training,
        tabular_info("classification", args.features, N_CLASSES),
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

        spec = {"tables": tables, "features": args.features, "batch_size": args.batch_size, "config": config}
        runs = {}
        for i, v in enumerate(args.variants):
            print(f"running {v.label} ...", flush=True)
            runs[v] = run_variant(v, {**spec, "storage": f"{tmp}/runs-{i}"}, Path(tmp))

    steady_plain = plain_rows[1:]
    plain_median = _median(steady_plain, "epoch")

    def line(name: str, rows: list[dict[str, float]], threads: int) -> list[object]:
        return [
            name, threads, f"{_median(rows, 'epoch'):.3f}", f"{_median(rows, 'epoch') / plain_median:.2f}",
            f"{min(r['epoch'] for r in rows):.3f}", f"{max(r['epoch'] for r in rows):.3f}",
            f"{_median(rows, 'train'):.3f}", f"{_median(rows, 'val'):.3f}", f"{_median(rows, 'report'):.3f}",
            f"{_median(rows, 'wait'):.3f}",
        ]

    lines = [line("plain PyTorch", steady_plain, 1)]
    startup_rows: list[list[object]] = []
    steady: dict[Variant, list[dict[str, float]]] = {}
    accuracies = [f"plain {plain_last.get('val_accuracy', float('nan')):.3f}"]
    for v, out in runs.items():
        rows = ray_phases(out)
        steady[v] = rows[1:]
        lines.append(line(v.label, steady[v], out["threads"]))
        accuracies.append(f"{v.label.removeprefix('Ray Train, ')} {out['history'][-1].get('val_accuracy', float('nan')):.3f}")
        first = rows[0]["end"]
        startup_rows.append([
            v.label, out["poll_s"], f"{out['ray_init_s']:.2f}", f"{out['datasets_s']:.2f}",
            f"{out['entered'] - out['fit_called']:.2f}", f"{first - out['entered']:.2f}",
            f"{first - out['fit_called']:.2f}", f"{rows[0]['epoch']:.2f}",
            f"{out['fit_returned'] - rows[-1]['end']:.2f}", f"{_fit_s(out):.2f}",
        ])

    epochs_table = table(
        ["loop", "torch threads", "median epoch s", "ratio to plain", "min s", "max s",
         "train phase s", "val phase s", "report s", "batch wait s"],
        lines,
    )
    startup_table = table(
        ["Ray run", f"{_POLL_ENV}", "ray.init s", "silver_datasets s", "fit() -> worker fn entered s",
         "worker entered -> 1st report s", "fit() -> 1st report s", "1st epoch s",
         "last report -> fit() returns s", "fit() total s"],
        startup_rows,
    )
    headline = args.variants[0]
    ratio = _median(steady[headline], "epoch") / plain_median
    verdict = (
        "met" if ratio <= TARGET_RATIO
        else f"missed by {ratio - TARGET_RATIO:.2f} ({(ratio / TARGET_RATIO - 1) * 100:.0f}% over)"
    )
    summary = (
        f"Workload: synthetic {args.rows:,} train / {args.val_rows:,} val rows x {args.features} float32 features, "
        f"{N_CLASSES} classes, Delta tables written with `Lake.overwrite`; MLP hidden {args.hidden}, Adam lr 1e-3, "
        f"batch size {args.batch_size}, {args.epochs} epochs, epoch 0 discarded on both sides "
        f"({len(steady_plain)} steady epochs each). Plain first epoch (discarded): {plain_rows[0]['epoch']:.3f} s.\n\n"
        f"**Epoch-time ratio Ray/plain (medians, {headline.label}): {ratio:.2f}** "
        f"(target <= {TARGET_RATIO:.2f}: {verdict}).\n\n"
        f"Final val accuracy (sanity check that every side trained): {', '.join(accuracies)}.\n"
    )
    notes = _notes(runs, steady, steady_plain, ckpt_s)
    body = f"{summary}\n{epochs_table}\n\nStart-up (not in the ratio):\n\n{startup_table}\n\n" + "\n".join(notes) + "\n"
    print(body)
    for v, out in runs.items():
        print(f"per-epoch seconds, {v.label}: {[round(r['epoch'], 3) for r in ray_phases(out)]}")
    print(f"per-epoch seconds, plain PyTorch: {[round(r['epoch'], 3) for r in plain_rows]}")
    if not args.no_write:
        write_section("train_overhead", "Ray Train loop overhead (train_overhead.py)", body)
        print("wrote benchmarks/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
