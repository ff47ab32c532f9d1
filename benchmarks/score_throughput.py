"""Rows/s of batch scoring (`rayline score`) against the same rows through the live endpoint.

A small MLP is trained on breast_cancer and registered in a throwaway MLflow sqlite store
(`serve_overhead.train_bundle` / `register`). Its 569 rows are tiled and jittered (x(1 + 1%
noise), seeded) to --rows rows, with a `row_id` column, and written as one Parquet (or CSV)
file. A subprocess then starts a local Ray the production way (`flows.workspace.connect_ray`)
and, in that one Ray:

    batch     `flows.score.score_table.fn` (Prefect skipped) on the file, appending to a
              Delta table, twice in the same process: the first call starts Ray Data's actor
              pool and loads the bundle in each actor on a fresh Ray; the second finds the
              worker processes warm (imports done), though it builds a new pool
    endpoint  `serving.app.start([ServedModel(name, max_instances=--instances)])`, then the
              first --serve-rows rows of the same file as POST /v1/models/{name}:predict
              bodies of --instances rows each, --clients requests in flight (async httpx,
              keep-alive, bodies serialized before timing)

Before the endpoint is timed, --check-rows rows are answered by it and compared with the
rows the batch call wrote: same label, probabilities within the endpoint's 6-decimal rounding.
The in-process rows/s of `BatchScorer` itself (one process, no Ray) is printed beside them.

    .venv/bin/python benchmarks/score_throughput.py [--rows 200000] [--format parquet|csv]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import process_tree_cpu, run_child, table, write_section  # noqa: E402

MODEL = "bench_score"
HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------- data


def make_rows(n: int, seed: int = 0) -> pl.DataFrame:
    """`n` breast_cancer feature rows: the 569 tiled, each value x (1 + 1% noise); `row_id` first."""
    from components.config import SchemaConfig
    from components.data.bundled import bundled_frame, bundled_schema

    schema = SchemaConfig(columns=bundled_schema("breast_cancer"), target="target", task="classification")
    base = bundled_frame("breast_cancer").select(schema.features)
    x = base.to_numpy().astype(np.float64)  # (569, 30)
    rng = np.random.default_rng(seed)
    tiled = x[np.arange(n) % len(x)] * (1.0 + 0.01 * rng.standard_normal((n, x.shape[1])))
    return pl.DataFrame({"row_id": np.arange(n, dtype=np.int64)}).hstack(
        pl.DataFrame(tiled, schema=base.columns, orient="row")
    )


# ---------------------------------------------------------------------------- the Ray child


def _group(cmdline: str, is_root: bool) -> str:
    if is_root:
        return "driver + HTTP client"
    if "ServeReplica:" in cmdline:
        return "Gateway" if ":Gateway" in cmdline else "model replica"
    if "ProxyActor" in cmdline:
        return "proxy"
    if "ServeController" in cmdline:
        return "Serve controller"
    if "MapWorker" in cmdline or "MapBatches" in cmdline:
        return "Ray Data actors"
    if "ray::" in cmdline and "IDLE" not in cmdline:
        return "Ray tasks/other workers"
    return "Ray system + idle workers"


def _cpu() -> dict[str, float]:
    out: dict[str, float] = {}
    root = os.getpid()
    for pid, (cmdline, seconds) in process_tree_cpu(root).items():
        g = _group(cmdline, pid == root)
        out[g] = out.get(g, 0.0) + seconds
    return out


def _cpu_since(before: dict[str, float]) -> dict[str, float]:
    # A process that exited meanwhile drops out of the later reading; clamp at 0.
    now = _cpu()
    return {g: max(now.get(g, 0.0) - before.get(g, 0.0), 0.0) for g in set(now) | set(before)}


async def _drive(url: str, bodies: list[bytes], clients: int) -> tuple[float, list[float], int, list[dict]]:
    """All `bodies`, `clients` in flight; (elapsed s, latencies s, errors, answers of the first body)."""
    import httpx

    latencies: list[float] = []
    errors = 0
    first: list[dict] = []
    queue = list(enumerate(bodies))[::-1]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=120.0) as client:

        async def worker() -> None:
            nonlocal errors
            while queue:
                i, body = queue.pop()
                t0 = time.perf_counter()
                r = await client.post(url, content=body, headers={"content-type": "application/json"})
                if r.status_code != 200:
                    errors += 1
                    continue
                answer = r.json()
                latencies.append(time.perf_counter() - t0)
                if i == 0:
                    first.append(answer)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    return elapsed, latencies, errors, first


def _post(url: str, instances: list[dict]) -> list[Any]:
    import httpx

    r = httpx.post(url, json={"instances": instances}, timeout=120.0)
    r.raise_for_status()
    return r.json()["predictions"]


def _bodies(rows: pl.DataFrame, features: list[str], per_request: int) -> list[bytes]:
    records = rows.select(features).to_dicts()
    return [json.dumps({"instances": records[i : i + per_request]}).encode() for i in range(0, len(records), per_request)]


def _compare(answers: list[Any], scored: pl.DataFrame) -> dict[str, Any]:
    """The endpoint's answers against the batch output rows in the same order."""
    proba_cols = [c for c in scored.columns if c.startswith("proba_")]
    labels_equal = sum(str(a["label"]) == str(p) for a, p in zip(answers, scored["prediction"].to_list()))
    diff = 0.0
    for a, row in zip(answers, scored.select(proba_cols).iter_rows(named=True)):
        for c in proba_cols:
            diff = max(diff, abs(a["probabilities"][c.removeprefix("proba_")] - row[c]))
    return {"rows": len(answers), "labels_equal": labels_equal, "max_proba_diff": diff}


def ray_child(spec_path: str) -> int:
    import ray
    from ray import serve

    from _load import free_port, wait_ready
    from components.config import ProfileConfig
    from components.data.lake import Lake
    from flows.score import score_table
    from flows.workspace import connect_ray
    from serving.app import ServedModel, start

    spec = json.loads(Path(spec_path).read_text())
    profile = ProfileConfig(**spec["profile"])
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    connect_ray(profile)
    out["ray_init_s"] = time.perf_counter() - t0
    try:
        lake = Lake(f"{profile.lake}/{MODEL}")
        out["batch"] = []
        for i in range(spec["batch_runs"]):
            cpu0 = _cpu()
            t0 = time.perf_counter()
            report = score_table.fn(
                profile, MODEL, spec["version"], spec["source"], f"scored_{i}", spec["actors"], spec["batch_size"]
            )
            wall = time.perf_counter() - t0
            out["batch"].append({"wall_s": wall, "report_s": report.seconds, "rows": report.rows,
                                 "rejected": report.rejected, "cpu": _cpu_since(cpu0)})
            print(f"batch run {i}: {report.rows} rows in {wall:.1f}s", flush=True)
        scored = lake.read("scored_0").sort("row_id")
        out["batch_columns"] = scored.columns

        t0 = time.perf_counter()
        model = ServedModel(name=MODEL, max_instances=spec["instances"])
        base = start([model], profile.mlflow_tracking_uri, "127.0.0.1", free_port())
        wait_ready(f"{base}/v1/models/{MODEL}", 240)
        out["deploy_s"] = time.perf_counter() - t0
        url = f"{base}/v1/models/{MODEL}:predict"

        rows = pl.read_parquet(spec["rows_parquet"]).head(spec["serve_rows"])
        features = [c for c in rows.columns if c != "row_id"]
        # The check: rows spread over the sample, answered by the endpoint, against the batch output.
        idx = np.linspace(0, len(rows) - 1, spec["check_rows"]).astype(int)
        check = rows[idx]
        answers: list[Any] = []
        for i in range(0, len(check), spec["instances"]):
            answers += _post(url, check[i : i + spec["instances"]].select(features).to_dicts())
        expected = scored.filter(pl.col("row_id").is_in(check["row_id"].implode())).sort("row_id")
        out["check"] = _compare(answers, expected)

        bodies = _bodies(rows, features, spec["instances"])
        asyncio.run(_drive(url, bodies[: spec["clients"] * 3], spec["clients"]))  # warm-up
        cpu0 = _cpu()
        elapsed, latencies, errors, first = asyncio.run(_drive(url, bodies, spec["clients"]))
        out["serve"] = {
            "elapsed_s": elapsed, "requests": len(bodies), "ok": len(latencies), "errors": errors,
            "rows": len(rows), "p50_ms": float(np.percentile(latencies, 50)) * 1e3,
            "p99_ms": float(np.percentile(latencies, 99)) * 1e3, "cpu": _cpu_since(cpu0),
            "body_bytes": int(np.mean([len(b) for b in bodies])),
        }
    finally:
        serve.shutdown()
        ray.shutdown()
    Path(spec["out"]).write_text(json.dumps(out))
    return 0


# ---------------------------------------------------------------------------- in process


def in_process(bundle_dir: Path, rows: pl.DataFrame, batch_size: int) -> dict[str, float]:
    """`score_rows` (what each `BatchScorer` call does, lineage columns apart) over the rows in
    batches, one process, no Ray, no Delta write; and `Bundle.predict` on the same batches."""
    import torch

    from components.artifacts.batch_scoring import score_rows
    from components.artifacts.bundle import load_bundle

    torch.set_num_threads(1)  # a Ray actor with 1 CPU gets OMP_NUM_THREADS=1
    t0 = time.perf_counter()
    bundle = load_bundle(bundle_dir)
    load_s = time.perf_counter() - t0
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    t0 = time.perf_counter()
    for b in batches:
        score_rows(bundle, b, "bench")
    score_s = time.perf_counter() - t0
    features = [c for c in rows.columns if c != "row_id"]
    t0 = time.perf_counter()
    for b in batches:
        bundle.predict(b.select(features))
    predict_s = time.perf_counter() - t0
    return {"load_s": load_s, "score_rows_per_s": len(rows) / score_s, "predict_rows_per_s": len(rows) / predict_s}


# ---------------------------------------------------------------------------- main


def _cpu_cells(cpu: dict[str, float], rows: int) -> str:
    top = sorted(((g, s) for g, s in cpu.items() if s >= 0.05), key=lambda kv: -kv[1])
    return ", ".join(f"{g} {s / rows * 1e6:.1f}" for g, s in top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows batch-scored")
    parser.add_argument("--serve-rows", type=int, default=20_000, help="the first rows of those, sent to the endpoint")
    parser.add_argument("--instances", type=int, default=256, help="rows per request (ServedModel.max_instances)")
    parser.add_argument("--clients", type=int, default=8, help="requests in flight")
    parser.add_argument("--actors", type=int, default=2, help="score_table's actor pool max size (the flow's default)")
    parser.add_argument("--batch-size", type=int, default=4096, help="score_table's batch size (the flow's default)")
    parser.add_argument("--batch-runs", type=int, default=2, help="score_table calls in the same process")
    parser.add_argument("--check-rows", type=int, default=1000, help="rows compared between the two paths")
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet", help="the input file")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--ray-child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ray_child:
        return ray_child(args.ray_child)
    args.serve_rows = min(args.serve_rows, args.rows)

    from serve_overhead import register, train_bundle

    from components.config import ProfileConfig

    with tempfile.TemporaryDirectory(prefix="rayline-bench-score-") as tmp:
        root = Path(tmp)
        print("training and registering the model ...", flush=True)
        bundle_dir, _, accuracy = train_bundle(root)
        tracking_uri, version = register(bundle_dir, root, accuracy, name=MODEL)
        profile = ProfileConfig(
            root=str(root), landing=str(root / "landing"), lake=str(root / "lake"), runs=str(root / "runs"),
            mlflow_tracking_uri=tracking_uri, mlflow_artifacts=str(root / "mlartifacts"),
        )
        rows = make_rows(args.rows)
        rows_parquet = root / "rows.parquet"
        rows.write_parquet(rows_parquet)
        source = rows_parquet
        if args.format == "csv":
            source = root / "rows.csv"
            rows.write_csv(source)
        file_mb = source.stat().st_size / 1e6

        print("in-process scorer ...", flush=True)
        local = in_process(bundle_dir, rows.head(min(args.rows, 50_000)), args.batch_size)

        print("Ray child: batch scoring, then the endpoint ...", flush=True)
        spec = {
            "profile": profile.model_dump(), "version": version, "source": str(source),
            "rows_parquet": str(rows_parquet), "actors": args.actors, "batch_size": args.batch_size,
            "batch_runs": args.batch_runs, "instances": args.instances, "clients": args.clients,
            "serve_rows": args.serve_rows, "check_rows": min(args.check_rows, args.serve_rows),
        }
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # always a local Ray
        res = run_child(__file__, spec, root, "score", "the Ray child", env, timeout_s=900)

    batch, serve, check = res["batch"], res["serve"], res["check"]
    batch_rps = [b["rows"] / b["wall_s"] for b in batch]
    serve_rps = serve["rows"] / serve["elapsed_s"] if serve["errors"] == 0 else float("nan")
    agree = check["labels_equal"] == check["rows"] and check["max_proba_diff"] <= 1e-6
    warm = batch_rps[-1]

    rows_table = table(
        ["path", "rows", "seconds", "rows/s", "÷ endpoint", "CPU µs per row, by process group"],
        [
            *[[f"`score_table` call {i + 1}" + (" (fresh Ray: actor pool start + bundle load)" if i == 0 else " (same Ray, warm workers)"),
               f"{b['rows']:,}", f"{b['wall_s']:.2f}", f"{r:,.0f}", f"{r / serve_rps:.1f}", _cpu_cells(b["cpu"], b["rows"])]
              for i, (b, r) in enumerate(zip(batch, batch_rps))],
            [f"endpoint, {args.instances} rows/request, {args.clients} in flight", f"{serve['rows']:,}",
             f"{serve['elapsed_s']:.2f}", f"{serve_rps:,.0f}", "1.0", _cpu_cells(serve["cpu"], serve["rows"])],
            ["in process, no Ray: `score_rows` per batch (1 thread)", "", "", f"{local['score_rows_per_s']:,.0f}",
             f"{local['score_rows_per_s'] / serve_rps:.1f}", ""],
            ["in process, no Ray: `Bundle.predict` per batch (1 thread)", "", "", f"{local['predict_rows_per_s']:,.0f}",
             f"{local['predict_rows_per_s'] / serve_rps:.1f}", ""],
        ],
    )
    summary = (
        f"Model: MLP [64, 64] on breast_cancer (30 float features, val accuracy {accuracy:.3f}), registered as "
        f"`{MODEL}` v{version} in a throwaway MLflow sqlite store. Rows: the 569 tiled to {args.rows:,} and jittered, "
        f"one {args.format} file of {file_mb:.1f} MB. Batch: `flows.score.score_table.fn` (actors {args.actors}, "
        f"batch_size {args.batch_size}, the flow's defaults), appending to a Delta table, {len(batch)} calls in one "
        f"process on one local Ray. Endpoint: `serving.app.start` with `ServedModel(max_instances={args.instances})`, "
        f"otherwise defaults (1 replica, max_batch_size 32, batch wait 0), the first {serve['rows']:,} rows as "
        f"{serve['requests']} requests of up to {args.instances} rows (~{serve['body_bytes'] / 1e3:.0f} kB JSON), "
        f"{args.clients} in flight from an async httpx client in the driver process, after "
        f"{min(args.clients * 3, serve['requests'])} warm-up requests.\n\n"
        f"- **batch, warm: {warm:,.0f} rows/s; endpoint: {serve_rps:,.0f} rows/s; ratio {warm / serve_rps:.1f}x** "
        f"(first call, cold: {batch_rps[0]:,.0f} rows/s, {batch_rps[0] / serve_rps:.1f}x)\n"
        f"- endpoint latency per {args.instances}-row request: p50 {serve['p50_ms']:.0f} ms, p99 {serve['p99_ms']:.0f} ms; "
        f"{serve['errors']} errors\n"
        f"- predictions agree: {'yes' if agree else 'NO'} — {check['labels_equal']}/{check['rows']} labels equal, "
        f"max probability difference {check['max_proba_diff']:.1e} (the endpoint rounds to 6 decimals), on "
        f"{check['rows']} rows spread over the endpoint's sample\n"
    )
    setup_table = table(
        ["step", "seconds"],
        [
            ["ray.init (`connect_ray`)", f"{res['ray_init_s']:.2f}"],
            *[[f"`score_table` call {i + 1}, its own `ScoreReport.seconds`", f"{b['report_s']:.2f}"] for i, b in enumerate(batch)],
            ["deploy -> model answers (`serving.app.start`)", f"{res['deploy_s']:.2f}"],
            ["`load_bundle` in process", f"{local['load_s']:.3f}"],
        ],
    )
    notes = [
        "Both paths run on the same 2 cores as everything else. The batch call's CPU includes Ray Data's "
        "read tasks and the Delta write in the driver; the endpoint's includes this process's HTTP client "
        "(\"driver + HTTP client\") and the proxy, Gateway and model replica processes. A process that exited before the end of a call "
        "(Ray Data's actors, when a call ends by tearing its pool down) drops out of that call's CPU, so the batch "
        "rows undercount it.",
        "The second `score_table` call still builds a new actor pool and each actor downloads and loads the bundle "
        "again (`BatchScorer.__init__`); what it saves is Ray's worker start-up and imports. Its rows/s is the "
        "closest to \"Ray Data once warm\" that the unchanged flow allows; the in-process rows show the model "
        "work alone.",
        "The endpoint validates every instance value in Python (`frame_from_records`) and answers in JSON with "
        "one dict per row; the batch path reads typed columns with no per-value Python.",
    ]
    body_md = f"{summary}\n{rows_table}\n\n{setup_table}\n\n" + "".join(f"- {n}\n" for n in notes)
    print(body_md)
    if not args.no_write:
        write_section("score_throughput", "Batch scoring vs the endpoint (score_throughput.py)", body_md)
        print("wrote benchmarks/RESULTS.md")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
