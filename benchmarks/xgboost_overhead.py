"""The `xgboost` kind through Ray Train (1 worker) against plain `xgboost.train`, after start-up.

Both sides boost the same rows for the same rounds with the same params
(`components.models.boosting.train_params` of one spec), the same evals (train and val
every round) and one thread. The Ray side is the production path: Delta tables written by
`Lake`, read by `silver_datasets`, boosted by `xgboost_loop_per_worker` inside the Train V2
`XGBoostTrainer` that `make_xgboost_trainer` builds, on a local Ray started by
`flows.workspace.connect_ray` (which applies `RAY_ENV`). The only difference is a wrapper
around the loop function that stamps wall-clock times and wraps `xgboost.train` and
`ray.train.report` with timers in the worker process; project code is unchanged.

    .venv/bin/python benchmarks/xgboost_overhead.py [--rows 200000] [--rounds 200] [--repeats 3]
        [--variants production every-round]

What is compared ("after start-up"): the plain side times building the two DMatrices from
in-memory arrays plus `xgboost.train`. The Ray side times the worker's training function
from entry to return: reading its dataset shards from the object store into arrays, the
DMatrices, `xgboost.train` with the per-round reports, the final scoring on val, the
checkpoint write and its report. Start-up (`fit()` until the function is entered: the
controller, the worker group, the XGBoost backend) and the tail (function returned until
`fit()` returns) are reported apart. Each side runs `--repeats` times; the ratio compares
medians. The plain side runs first, before any Ray process competes for the 2 cores.

Variants, each in its own subprocess with its own local Ray:

    production    as the project runs it: a round is reported when the controller's poll
                  interval (RAY_TRAIN_HEALTH_CHECK_INTERVAL_S, 0.1 s in RAY_ENV) has passed
                  since the last report (gives the headline ratio)
    every-round   every round reported (`controller_poll_s` patched to 0 in the worker):
                  what the throttle avoids
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import ray
import xgboost
from sklearn.datasets import make_classification

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_child, table, write_section  # noqa: E402

import components.training.xgboost_fit as xgboost_fit  # noqa: E402
from components.config import ProfileConfig, TrainingConfig  # noqa: E402
from components.data.lake import Lake  # noqa: E402
from components.data.preparation import LABEL, input_columns  # noqa: E402
from components.data.silver import read_arrays  # noqa: E402
from components.models.boosting import config_from_spec, train_params  # noqa: E402
from components.data.modalities import tabular_info  # noqa: E402
from components.training.loop import loop_config  # noqa: E402
from components.training.ray_session import silver_datasets  # noqa: E402
from flows.workspace import RAY_ENV, connect_ray  # noqa: E402

TARGET_RATIO = 1.15
_VARIANTS = {
    "production": "Ray Train, as in production (reports throttled to the controller poll)",
    "every-round": "Ray Train, every round reported",
}
_CHILD_TIMEOUT_S = 600


# ---------------------------------------------------------------------------- data


def synthetic_silver(rows: int, val_rows: int, features: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Silver-shaped train and val frames (x000.. float32, label int64): a binary task
    from `make_classification`, half the features informative."""
    x, y = make_classification(
        n_samples=rows + val_rows, n_features=features, n_informative=features // 2, random_state=seed
    )
    frame = pl.DataFrame({name: x[:, i].astype(np.float32) for i, name in enumerate(input_columns(features))})
    frame = frame.with_columns(pl.Series(LABEL, y.astype(np.int64)))
    return frame.head(rows), frame.tail(val_rows)


# ---------------------------------------------------------------------------- plain side


def run_plain(config: dict[str, Any], train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
              repeats: int) -> list[dict[str, float]]:
    """DMatrices from in-memory arrays + `xgboost.train` with the loop's params, evals and
    rounds, one thread; `repeats` times."""
    model_config = config_from_spec(config["model"], task=config["task"])
    params = {**train_params(model_config), "nthread": 1}
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        dtrain = xgboost.DMatrix(train[0], label=train[1], nthread=1)
        dval = xgboost.DMatrix(val[0], label=val[1], nthread=1)
        t1 = time.perf_counter()
        cpu = time.process_time()
        log: dict[str, Any] = {}
        xgboost.train(params, dtrain, num_boost_round=model_config.n_estimators,
                      evals=[(dtrain, "train"), (dval, "val")], evals_result=log, verbose_eval=False)
        t2 = time.perf_counter()
        runs.append({
            "total": t2 - t0, "data": t1 - t0, "boost": t2 - t1, "final": 0.0, "reports": 0, "report_s": 0.0,
            "cpu_per_wall": (time.process_time() - cpu) / (t2 - t1), "val_accuracy": 1.0 - log["val"]["error"][-1],
        })
    return runs


# ---------------------------------------------------------------------------- Ray side (child process)


def _timed_loop(config: dict[str, Any]) -> dict[str, Any]:
    """`xgboost_loop_per_worker` as the trainer runs it, with wall-clock stamps around it and
    timers around `xgboost.train` and `ray.train.report` (module attributes the loop calls)."""
    entered = time.time()
    import ray.train
    import xgboost

    import components.training.xgboost_fit as loop_module

    config = dict(config)
    every_round = config.pop("_every_round")
    stamps: dict[str, float] = {}
    reports: list[tuple[float, float, bool]] = []
    train, report = xgboost.train, ray.train.report

    def timed_train(*args: Any, **kwargs: Any) -> Any:
        stamps["boost_start"], cpu = time.time(), time.process_time()
        booster = train(*args, **kwargs)
        stamps["boost_end"] = time.time()
        stamps["boost_cpu"] = time.process_time() - cpu
        return booster

    def timed_report(metrics: dict[str, Any], checkpoint: Any = None, **kwargs: Any) -> None:
        t0 = time.time()
        report(metrics, checkpoint=checkpoint, **kwargs)
        reports.append((t0, time.time(), checkpoint is not None))

    xgboost.train, ray.train.report = timed_train, timed_report
    if every_round:
        loop_module.controller_poll_s = lambda: 0.0
    try:
        history = loop_module.xgboost_loop_per_worker(config)
    finally:
        xgboost.train, ray.train.report = train, report
    return {
        "entered": entered, "left": time.time(), "stamps": stamps, "reports": reports, "history_len": len(history),
        "final": history[-1], "omp": os.environ.get("OMP_NUM_THREADS"), "code": _code_dir(),
    }


def _code_dir() -> str:
    """Where this process imports the project from (driver and workers must agree)."""
    return str(Path(xgboost_fit.__file__).resolve().parent.parent)


def ray_child(spec_path: str) -> int:
    """One variant on its own local Ray: connect_ray, silver_datasets, `repeats` timed
    trainer runs, shutdown. Writes its measurements as JSON next to the spec."""
    spec = json.loads(Path(spec_path).read_text())
    tables = {split: tuple(t) for split, t in spec["tables"].items()}
    t0 = time.perf_counter()
    connect_ray(ProfileConfig())
    init_s = time.perf_counter() - t0
    runs = []
    try:
        t0 = time.perf_counter()
        datasets = silver_datasets(tables, input_columns(spec["features"]), LABEL, "int64")
        datasets_s = time.perf_counter() - t0
        # make_xgboost_trainer builds the trainer exactly as production does; only the
        # function it hands the workers is the timed wrapper around the same loop
        xgboost_fit.xgboost_loop_per_worker = _timed_loop
        config = {**spec["config"], "_every_round": spec["variant"] == "every-round"}
        for i in range(spec["repeats"]):
            trainer = xgboost_fit.make_xgboost_trainer(
                config, datasets, num_workers=1, storage_path=spec["storage"], name=f"xgboost-overhead-{i}"
            )
            fit_called = time.time()
            result = trainer.fit()
            fit_returned = time.time()
            if result.error is not None:
                raise RuntimeError(f"the Ray Train run failed: {result.error}")
            runs.append({**result.return_value, "fit_called": fit_called, "fit_returned": fit_returned})
    finally:
        ray.shutdown()
    out = {"runs": runs, "ray_init_s": init_s, "datasets_s": datasets_s, "driver_code": _code_dir(),
           "poll_s": os.environ.get("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S")}
    Path(spec["out"]).write_text(json.dumps(out))
    return 0


def run_variant(variant: str, spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """`ray_child` in a fresh interpreter with a local Ray of its own."""
    env = {k: v for k, v in os.environ.items() if k not in RAY_ENV and k != "RAY_ADDRESS"}  # always a local Ray
    out = run_child(__file__, {**spec, "variant": variant}, workdir, variant, _VARIANTS[variant], env, _CHILD_TIMEOUT_S)
    codes = {out["driver_code"], *(r["code"] for r in out["runs"])}
    if codes != {_code_dir()}:
        raise RuntimeError(f"{_VARIANTS[variant]} imported project code from {codes}, not {_code_dir()}")
    return out


def ray_phases(run: dict[str, Any]) -> dict[str, float]:
    """One Ray run's phases in seconds: the compared window and its parts, start-up, tail."""
    s = run["stamps"]
    during = [(t1 - t0) for t0, t1, ckpt in run["reports"] if not ckpt]
    final = [(t1 - t0) for t0, t1, ckpt in run["reports"] if ckpt]
    boost = s["boost_end"] - s["boost_start"]
    return {
        "total": run["left"] - run["entered"],
        "data": s["boost_start"] - run["entered"],
        "boost": boost,
        "final": run["left"] - s["boost_end"],
        "final_report": sum(final),
        "reports": len(during),
        "report_s": sum(during),
        "cpu_per_wall": s["boost_cpu"] / boost,
        "startup": run["entered"] - run["fit_called"],
        "tail": run["fit_returned"] - run["left"],
        "fit": run["fit_returned"] - run["fit_called"],
        "val_accuracy": run["final"]["val_accuracy"],
    }


# ---------------------------------------------------------------------------- main


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--val-rows", type=int, default=40_000)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--max-depth", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", nargs="+", choices=list(_VARIANTS), default=list(_VARIANTS),
                        help="Ray-side runs, each on its own local Ray; the first gives the headline ratio")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--ray-child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ray_child:
        return ray_child(args.ray_child)

    config = loop_config(
        {"kind": "xgboost", "params": {"n_estimators": args.rounds, "max_depth": args.max_depth}},
        TrainingConfig().model_dump(), tabular_info("classification", args.features, 1),
    )
    with tempfile.TemporaryDirectory(prefix="rayline-bench-xgboost-") as tmp:
        lake = Lake(f"{tmp}/lake")
        train_frame, val_frame = synthetic_silver(args.rows, args.val_rows, args.features, 0)
        tables = {
            "train": (lake.uri("silver_train"), lake.overwrite("silver_train", train_frame)),
            "val": (lake.uri("silver_val"), lake.overwrite("silver_val", val_frame)),
        }
        columns = input_columns(args.features)
        print("running plain xgboost.train ...", flush=True)
        plain = run_plain(config, read_arrays(*tables["train"], columns, "int64"),
                          read_arrays(*tables["val"], columns, "int64"), args.repeats)
        spec = {"tables": tables, "features": args.features, "config": config, "repeats": args.repeats}
        outs = {}
        for i, variant in enumerate(args.variants):
            print(f"running {_VARIANTS[variant]} ...", flush=True)
            outs[variant] = run_variant(variant, {**spec, "storage": f"{tmp}/runs-{i}"}, Path(tmp))

    phases = {v: [ray_phases(r) for r in out["runs"]] for v, out in outs.items()}
    plain_total = _median(plain, "total")

    def line(name: str, rows: list[dict[str, float]], threads: str) -> list[object]:
        return [
            name, threads, len(rows), f"{_median(rows, 'total'):.3f}", f"{_median(rows, 'total') / plain_total:.3f}",
            f"{min(r['total'] for r in rows):.3f}", f"{max(r['total'] for r in rows):.3f}",
            f"{_median(rows, 'data'):.3f}", f"{_median(rows, 'boost'):.3f}",
            f"{_median(rows, 'boost') / args.rounds * 1000:.1f}", f"{_median(rows, 'reports'):.0f}",
            f"{_median(rows, 'report_s'):.3f}", f"{_median(rows, 'final'):.3f}", f"{_median(rows, 'cpu_per_wall'):.2f}",
            f"{_median(rows, 'val_accuracy'):.4f}",
        ]

    lines = [line("plain xgboost.train", plain, "nthread=1")]
    startup_rows = []
    for v, rows in phases.items():
        omp = {r["omp"] for r in outs[v]["runs"]}
        lines.append(line(_VARIANTS[v], rows, f"OMP_NUM_THREADS={','.join(sorted(map(str, omp)))}"))
        startup_rows.append([
            _VARIANTS[v], f"{outs[v]['ray_init_s']:.2f}", f"{outs[v]['datasets_s']:.2f}",
            f"{_median(rows, 'startup'):.2f}", f"{_median(rows, 'tail'):.2f}", f"{_median(rows, 'fit'):.2f}",
        ])
    runs_table = table(
        ["side", "threads", "runs", "median s", "ratio to plain", "min s", "max s", "data s", "boosting s",
         "ms per round", "round reports", "blocked in reports s", "final s", "CPU/wall boosting",
         "val accuracy"],
        lines,
    )
    startup_table = table(
        ["Ray run", "ray.init s", "silver_datasets s", "fit() -> loop entered s", "loop returned -> fit() returns s",
         "fit() total s"],
        startup_rows,
    )
    headline = args.variants[0]
    ratio = _median(phases[headline], "total") / plain_total
    verdict = (
        "met" if ratio <= TARGET_RATIO
        else f"missed by {ratio - TARGET_RATIO:.2f} ({(ratio / TARGET_RATIO - 1) * 100:.0f}% over)"
    )
    p, h = plain, phases[headline]
    gap = _median(h, "total") - plain_total
    summary = (
        f"Workload: `make_classification` {args.rows:,} train / {args.val_rows:,} val rows x {args.features} float32 "
        f"features (binary, {args.features // 2} informative), Delta tables written with `Lake.overwrite`; spec "
        f"`xgboost` with n_estimators {args.rounds}, max_depth {args.max_depth}, otherwise the config's defaults "
        f"(hist, eta 0.3): `binary:logistic`, eval metrics logloss and error on train and val every round. "
        f"{args.repeats} runs per side.\n\n"
        f"**Time ratio Ray/plain after start-up (medians, {_VARIANTS[headline]}): {ratio:.3f}** "
        f"(target <= {TARGET_RATIO:.2f}: {verdict}).\n"
    )
    notes = [
        "- Plain: the two `xgboost.DMatrix` built from in-memory arrays (read from the same Delta tables beforehand, "
        "untimed) plus `xgboost.train` with `nthread=1`. Ray: the worker's training function from entry to return: "
        "\"data s\" is entry until `xgboost.train` starts (config, both dataset shards from the object store into "
        "arrays, the DMatrices), \"boosting s\" is `xgboost.train` with the per-round reports, \"final s\" is "
        "scoring val with `validation_scores`, writing the checkpoint (model.ubj + state.json) and the final "
        "report with it. The plain side has no final step (0).",
        "- Threads: Ray gives the 1-CPU worker OMP_NUM_THREADS=1 and the loop leaves XGBoost's nthread at its "
        "default (OpenMP's), so both sides boost on one thread; \"CPU/wall boosting\" (process CPU time over wall "
        "time while `xgboost.train` ran) checks it: about 1 means one busy thread.",
        f"- Gap of the headline row: {gap:+.3f} s per run = data {_median(h, 'data') - _median(p, 'data'):+.3f} s, "
        f"boosting {_median(h, 'boost') - _median(p, 'boost'):+.3f} s, final {_median(h, 'final'):+.3f} s (the "
        f"report with the checkpoint: {_median(h, 'final_report'):.3f} s) (medians, so the parts need not add up "
        f"exactly). Of the boosting part, {_median(h, 'report_s'):.3f} s is blocked in {_median(h, 'reports'):.0f} "
        f"round reports ({_median(h, 'report_s') / max(1, _median(h, 'reports')) * 1000:.0f} ms each: every "
        "`ray.train.report` waits on a call to Train's synchronization actor, checkpoint or not); the other "
        f"{_median(h, 'boost') - _median(p, 'boost') - _median(h, 'report_s'):+.3f} s is the rounds themselves "
        "running slower, most likely because the Train controller and Ray's own processes share the 2 cores.",
    ]
    if "every-round" in phases:
        e = phases["every-round"]
        notes.append(
            f"- **every round reported**: {_median(e, 'reports'):.0f} reports blocked "
            f"{_median(e, 'report_s'):.3f} s in all ({_median(e, 'report_s') / max(1, _median(e, 'reports')) * 1000:.0f} "
            f"ms each): the Train controller takes one report per worker per poll "
            f"({outs['every-round']['poll_s']} s here) from a queue of size 1, so a loop that reports more often "
            f"than that waits for the next poll. Rounds here take about "
            f"{_median(p, 'boost') / args.rounds * 1000:.0f} ms; the production loop reports a round only when a "
            "poll interval has passed since the last report (every round still goes into the run's history)."
        )
    notes.append(
        "- Start-up and tail are not in the ratio: each `fit()` starts a Train controller, a worker group and "
        "XGBoost's backend before the loop runs, and stops them after."
    )
    body = f"{summary}\n{runs_table}\n\nStart-up (not in the ratio):\n\n{startup_table}\n\n" + "\n".join(notes) + "\n"
    print(body)
    if not args.no_write:
        write_section("xgboost_overhead", "XGBoost through Ray Train vs plain xgboost.train (xgboost_overhead.py)", body)
        print("wrote benchmarks/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
