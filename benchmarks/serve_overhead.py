"""Latency and throughput of one model behind Ray Serve against plain FastAPI + uvicorn.

A small MLP is trained on breast_cancer, saved as a bundle and registered in a throwaway
MLflow sqlite store. Ray Serve loads it from the registry exactly as in production: a
subprocess starts a local Ray with `flows.workspace.connect_ray` and deploys with
`serving.app.start`. The baseline (`_plain_server.py`, a uvicorn subprocess) loads the same
bundle directory. Both listen on 127.0.0.1; this process is the client for every server and
sends the same request body, one instance per request:

    concurrency 1:  --warmup requests, then --requests-c1 timed one after another
    concurrency 16: --warmup requests, then --requests-c16 or --seconds-c16, whichever first

    .venv/bin/python benchmarks/serve_overhead.py [--variants deployed ray-defaults throughput]

Each Serve variant runs on its own fresh local Ray, so environment switches reach every
Ray process:

    deployed      `ServedModel` defaults (batch wait 0, max_ongoing_requests 64; headline)
    ray-defaults  max_ongoing_requests 5 and batch wait 0.005 s (Ray's own defaults)
    throughput    as deployed, with RAY_SERVE_THROUGHPUT_OPTIMIZED=1 in Ray's environment

`wait=S`, `ongoing=N` and `batch=N` set those `ServedModel` fields; `+throughput` adds the
environment switch, e.g. `ongoing=32+throughput`. The first variant gives the headline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import polars as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import process_tree_cpu, table, write_section  # noqa: E402
from _load import (  # noqa: E402
    ACCESS_LINE, Measured, drive, free_port, health,
    plain_server, serve_until_stdin_closes, serving_child, wait_ready,
)

from components.artifacts.bundle import Bundle, load_bundle, save_bundle  # noqa: E402
from components.artifacts.registry import register_bundle  # noqa: E402
from components.artifacts.tracking import end_run, start_run, use_tracking  # noqa: E402
from components.config import (  # noqa: E402
    PreprocessConfig, ProfileConfig, RecorderConfig, SchemaConfig, SplitConfig, TrainingConfig,
)
from components.data.bundled import bundled_frame, bundled_schema  # noqa: E402
from components.data.preparation import LABEL, FeatureState, prepare  # noqa: E402
from components.data.schema import frame_from_records  # noqa: E402
from components.models import build  # noqa: E402
from components.training.checkpoint import save_checkpoint  # noqa: E402
from components.models.outputs import predict_output  # noqa: E402
from components.training.losses import loss_fn  # noqa: E402
from components.training.optim import make_optimizer  # noqa: E402
from serving.app import ServedModel  # noqa: E402

MODEL = "bench_breast_cancer"
TARGET_P50_DIFF_MS = 3.0
TARGET_THROUGHPUT_RATIO = 0.3
THROUGHPUT_ENV = "RAY_SERVE_THROUGHPUT_OPTIMIZED"
HERE = Path(__file__).resolve().parent
_CHILD_START_S = 240.0
C1_TAG = "bench-c1"


# ---------------------------------------------------------------------------- the model


def _tensors(frame: pl.DataFrame, state: FeatureState) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(frame.select(state.columns).to_numpy().astype(np.float32))  # (N, F)
    y = torch.from_numpy(frame[LABEL].to_numpy().astype(np.float32))  # (N,)
    return x, y


def train_bundle(root: Path, epochs: int = 30) -> tuple[Path, dict[str, Any], float]:
    """Train a small MLP on breast_cancer in-process and save it as a bundle; return
    (bundle dir, one raw feature row for requests, val accuracy)."""
    bronze = bundled_frame("breast_cancer")
    schema = SchemaConfig(columns=bundled_schema("breast_cancer"), target="target", task="classification")
    silver, state = prepare(bronze, schema, SplitConfig(), PreprocessConfig())
    spec = {"kind": "mlp", "params": {"hidden": [64, 64], "in_features": state.in_features, "out_features": state.out_features}}
    cfg = TrainingConfig(epochs=epochs, batch_size=64)
    torch.manual_seed(cfg.seed)
    model = build(spec)
    optimizer = make_optimizer(model.parameters(), cfg.optimizer)
    criterion = loss_fn("classification", state.out_features)
    x, y = _tensors(silver["train"], state)
    for _ in range(cfg.epochs):
        model.train()
        for idx in torch.randperm(len(y)).split(cfg.batch_size):
            loss = criterion(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    xv, yv = _tensors(silver["val"], state)
    with torch.no_grad():
        pred = predict_output(model(xv), "classification", state.out_features)["class"]
    accuracy = float((pred.reshape(-1).float() == yv).float().mean())
    metrics = {"val_accuracy": accuracy}

    checkpoint_dir = root / "checkpoint"
    checkpoint_dir.mkdir()
    save_checkpoint(
        checkpoint_dir, model=model, optimizers={"model": optimizer}, schedulers={}, stopper=None,
        epoch=cfg.epochs - 1, spec=spec, metrics=metrics, best_metrics=metrics,
    )
    bundle_dir = save_bundle(
        root / "bundle", checkpoint_dir=checkpoint_dir, features=state, metrics=metrics,
        lineage={"source": "sklearn breast_cancer", "by": "benchmarks/serve_overhead.py"},
    )
    instance = bronze.select(schema.features).row(0, named=True)
    return bundle_dir, instance, accuracy


def register(bundle_dir: Path, root: Path, accuracy: float, name: str = MODEL) -> tuple[str, str]:
    """Register the bundle as `name`@champion in a new sqlite store; return (tracking uri, version)."""
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    experiment_id = use_tracking(tracking_uri, name, str(root / "mlartifacts"))
    run_id = start_run(experiment_id, name, {})
    registration = register_bundle(name, bundle_dir, run_id=run_id, metric="val_accuracy", value=accuracy, mode="max")
    end_run(run_id)
    assert registration.champion, registration
    return tracking_uri, registration.version


def in_process_costs(bundle_dir: Path, instance: Any, repeats: int = 300,
                     check: Callable[[Bundle, Any], Any] | None = None) -> dict[str, float]:
    """Median milliseconds of the per-request model work, without any server: `check`
    (the request check the servers run; tables: `frame_from_records`) and `Bundle.predict`."""
    bundle = load_bundle(bundle_dir)
    check = check or (lambda b, one: frame_from_records([one], b.features.schema, 1024))
    validate, predict = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        rows = check(bundle, instance)
        t1 = time.perf_counter()
        bundle.predict(rows)
        t2 = time.perf_counter()
        validate.append(t1 - t0)
        predict.append(t2 - t1)
    return {"validate_ms": statistics.median(validate) * 1e3, "predict_ms": statistics.median(predict) * 1e3}


# ---------------------------------------------------------------------------- load


@dataclass(frozen=True)
class Load:
    requests_c1: int
    requests_c16: int
    seconds_c16: float
    warmup: int
    seconds_c1: float = 60.0


@dataclass
class Run:
    """One server's measurements: predict at c=1 and c=16, healthz at c=1; `c16.cpu` holds
    the CPU seconds each of its processes (and the client) used during the timed c=16 requests."""

    c1: Measured
    c16: Measured
    health: Measured
    c1_logged: dict[str, float] | None = None  # see serve_log_breakdown


async def _measure(base_url: str, body: bytes, load: Load, server_pid: int, model: str) -> Run:
    url = f"{base_url}/v1/models/{model}:predict"
    bodies = [body]
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
        await health(client, f"{base_url}/healthz", 10)
        healthz = await health(client, f"{base_url}/healthz", 100)
        await drive(client, url, bodies, 1, load.warmup, load.seconds_c1)
        c1 = await drive(client, url, bodies, 1, load.requests_c1, load.seconds_c1, tag=C1_TAG)
        await drive(client, url, bodies, 16, load.warmup, load.seconds_c16)
        c16 = await drive(client, url, bodies, 16, load.requests_c16, load.seconds_c16,
                          cpu=lambda: cpu_by_process(server_pid))
    return Run(c1, c16, healthz)


def measure(base_url: str, body: bytes, load: Load, server_pid: int, model: str = MODEL) -> Run:
    """c=1 then c=16 closed-loop load of one request body against `model`'s :predict."""
    return asyncio.run(_measure(base_url, body, load, server_pid, model))


# ---------------------------------------------------------------------------- CPU per process


def _process_group(cmdline: str, is_root: bool) -> str:
    """Which part of the serving path a process is, from the title Ray gives its workers."""
    if "ServeReplica:" in cmdline:
        return "Gateway" if cmdline.rstrip().endswith(":Gateway") or ":Gateway " in cmdline else "model replica"
    if "ProxyActor" in cmdline:
        return "proxy"
    if "ServeController" in cmdline:
        return "Serve controller"
    return "server" if is_root and "_plain_server.py" in cmdline else "Ray system + driver"


def cpu_by_process(root_pid: int) -> dict[int, tuple[str, float]]:
    """pid -> (group, CPU seconds) for `root_pid` and all its descendants."""
    tree = process_tree_cpu(root_pid)
    return {pid: (_process_group(cmdline, pid == root_pid), cpu) for pid, (cmdline, cpu) in tree.items()}


def one_answer(base_url: str, body: bytes) -> dict[str, Any]:
    r = httpx.post(f"{base_url}/v1/models/{MODEL}:predict", content=body, headers={"content-type": "application/json"})
    r.raise_for_status()
    return r.json()


# ---------------------------------------------------------------------------- Serve's access logs

def serve_log_breakdown(session_dir: str, tag: str) -> dict[str, float] | None:
    """Median milliseconds each tier spent on the tagged requests, from the access logs the
    proxy and both replicas write per request (same request id in all three): the proxy's
    whole handling, the Gateway's, and the model replica's `predict` call. None when a tier
    logged none of them (RAY_SERVE_THROUGHPUT_OPTIMIZED buffers and may not flush them)."""
    logged: dict[str, dict[str, float]] = {"proxy": {}, "gateway": {}, "model": {}}
    for path in Path(session_dir, "logs", "serve").glob("*.log"):
        tier = (
            "proxy" if path.name.startswith("proxy_") else "gateway" if "_Gateway_" in path.name
            else "model" if "_model-" in path.name else None
        )
        if tier is None:
            continue
        for line in path.read_text(errors="replace").splitlines():
            match = ACCESS_LINE.match(line)
            if match and match["id"].startswith(f"{tag}-"):
                logged[tier][match["id"]] = float(match["ms"])
    ids = set(logged["proxy"]) & set(logged["gateway"]) & set(logged["model"])
    if not ids:
        return None
    proxy, gateway, model = ([logged[t][i] for i in ids] for t in ("proxy", "gateway", "model"))
    return {
        "n": len(ids),
        "proxy": statistics.median(proxy),
        "proxy_to_gateway": statistics.median(p - g for p, g in zip(proxy, gateway)),
        "gateway_and_hop": statistics.median(g - m for g, m in zip(gateway, model)),
        "model": statistics.median(model),
    }


# ---------------------------------------------------------------------------- the servers


def run_plain(bundle_dir: Path, version: str, body: bytes, load: Load) -> tuple[Run, dict[str, Any]]:
    with plain_server(bundle_dir, MODEL, version) as (base, proc):
        answer = one_answer(base, body)
        return measure(base, body, load, proc.pid), answer


@dataclass(frozen=True)
class Variant:
    """A Serve deployment to measure: `ServedModel` fields and extra environment for Ray."""

    key: str
    fields: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def model(self) -> ServedModel:
        return replace(ServedModel(name=MODEL), **self.fields)

    @property
    def label(self) -> str:
        m = self.model
        name = {"deployed": "as deployed", "ray-defaults": "Ray's defaults", "throughput": THROUGHPUT_ENV + "=1"}
        settings = f"batch wait {m.batch_wait_s:g}, max_ongoing_requests {m.max_ongoing_requests}"
        if m.max_batch_size != ServedModel(name=MODEL).max_batch_size:
            settings += f", max_batch_size {m.max_batch_size}"
        if self.key in name:
            return f"Ray Serve, {name[self.key]} ({settings})"
        return f"Ray Serve ({settings}{', ' + THROUGHPUT_ENV + '=1' if self.env else ''})"


def _variant(text: str) -> Variant:
    """`deployed`, `ray-defaults`, `throughput`, or `wait=S`, `ongoing=N`, `batch=N`, `throughput` joined by `+`."""
    if text == "deployed":
        return Variant(text)
    if text == "ray-defaults":
        return Variant(text, {"batch_wait_s": 0.005, "max_ongoing_requests": 5})
    if text == "throughput":
        return Variant(text, env={THROUGHPUT_ENV: "1"})
    fields: dict[str, Any] = {}
    env: dict[str, str] = {}
    for part in text.split("+"):
        key, _, value = part.partition("=")
        try:
            if key == "wait":
                fields["batch_wait_s"] = float(value)
            elif key == "ongoing":
                fields["max_ongoing_requests"] = int(value)
            elif key == "batch":
                fields["max_batch_size"] = int(value)
            elif part == "throughput":
                env[THROUGHPUT_ENV] = "1"
            elif part == "deployed":
                pass
            else:
                raise ValueError
        except ValueError:
            raise argparse.ArgumentTypeError(
                "a variant is deployed, ray-defaults, throughput, or parts deployed, wait=SECONDS, ongoing=N, "
                f"batch=N, throughput joined by '+'; got {part!r} in {text!r}"
            ) from None
    return Variant(text, fields, env)


def served_model_json(model: ServedModel) -> dict[str, Any]:
    """`model`'s fields as JSON for a child's spec (`recorder` as its dict)."""
    fields = asdict(model)  # copies the nested RecorderConfig as is, which JSON cannot take
    fields["recorder"] = model.recorder.model_dump()
    return fields


def served_model_from_json(fields: dict[str, Any]) -> ServedModel:
    """The `ServedModel` that `served_model_json` wrote (a spec without `recorder` gets the default)."""
    recorder = fields.get("recorder")
    if isinstance(recorder, dict):
        fields = {**fields, "recorder": RecorderConfig(**recorder)}
    return ServedModel(**fields)


def serve_child(spec_path: str) -> int:
    """One variant on its own local Ray, started the production way; deployed with
    `serving.app.start` (with the spec's `lake`, when it has one, the model records its
    inference log there). Writes where it listens once the model answers, then serves until
    its stdin closes, then shuts Serve and Ray down."""
    import ray
    from ray import serve

    from flows.workspace import connect_ray
    from serving.app import start

    spec = json.loads(Path(spec_path).read_text())
    model = served_model_from_json(spec["model"])
    t0 = time.perf_counter()
    connect_ray(ProfileConfig())
    init_s = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        base = start([model], spec["tracking_uri"], "127.0.0.1", spec["port"], lake=spec.get("lake"))
        wait_ready(f"{base}/v1/models/{MODEL}", _CHILD_START_S)
        deploy_s = time.perf_counter() - t0
        ready = {
            "base": base, "ray_init_s": init_s, "deploy_s": deploy_s, "env": os.environ.get(THROUGHPUT_ENV),
            "session_dir": ray._private.worker.global_worker.node.get_session_dir_path(),
        }
        serve_until_stdin_closes(spec["ready"], ready)
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0


def run_serve(
    variant: Variant, tracking_uri: str, body: bytes, load: Load, workdir: Path
) -> tuple[Run, dict[str, Any], dict[str, Any]]:
    """Start `serve_child` for the variant, measure it from here, stop it."""
    tag = "".join(c if c.isalnum() else "_" for c in variant.key)
    workdir = Path(tempfile.mkdtemp(prefix=f"serve-{tag}-", dir=workdir))  # a variant may be listed twice
    spec_path, ready_path, log_path = (workdir / name for name in ("spec.json", "ready.json", "child.log"))
    spec_path.write_text(json.dumps({
        "model": served_model_json(variant.model), "tracking_uri": tracking_uri, "port": free_port(),
        "ready": str(ready_path),
    }))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS" and k != THROUGHPUT_ENV}  # always a local Ray
    env.update(variant.env)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-child", str(spec_path)]
    with serving_child(cmd, env, ready_path, log_path, _CHILD_START_S + 60, variant.label) as (proc, ready):
        answer = one_answer(ready["base"], body)
        run = measure(ready["base"], body, load, proc.pid)
    run.c1_logged = serve_log_breakdown(ready["session_dir"], C1_TAG)  # complete once the replicas exited
    return run, answer, ready


# ---------------------------------------------------------------------------- report


def _row(name: str, run: Run, plain: Run) -> list[object]:
    return [
        name, f"{run.health.pct_ms(50):.2f}", f"{run.c1.pct_ms(50):.2f}", f"{run.c1.pct_ms(99):.2f}",
        f"{run.c1.pct_ms(50) - plain.c1.pct_ms(50):+.2f}", f"{run.c16.pct_ms(50):.1f}", f"{run.c16.pct_ms(99):.1f}",
        f"{run.c16.rps:.0f}", f"{run.c16.rps / plain.c16.rps:.2f}", f"{run.c1.ok}/{run.c16.ok}",
        run.c1.errors + run.c16.errors + run.health.errors,
    ]


_CPU_GROUPS = ["client", "server", "proxy", "Gateway", "model replica", "Serve controller", "Ray system + driver"]


def _cpu_row(name: str, run: Run) -> list[object]:
    per_request = {group: seconds / run.c16.ok * 1e3 for group, seconds in run.c16.cpu.items()}
    cells = [f"{per_request[g]:.2f}" if g in per_request else "-" for g in _CPU_GROUPS]
    total = sum(run.c16.cpu.values())
    return [
        name, *cells, f"{total / run.c16.ok * 1e3:.2f}", f"{total / run.c16.elapsed_s:.2f}",
        f"{run.c16.others_cores:.2f}",
    ]


def _hop_ms(run: Run, plain: Run) -> tuple[float, float]:
    """(proxy + Gateway path, Gateway -> model hop) at c=1 in ms, from the healthz probe:
    healthz isolates the HTTP path up to the ingress; what predict adds beyond plain's own
    model work is the handle call to the model replica and its request handling."""
    path = run.health.pct_ms(50) - plain.health.pct_ms(50)
    model_hop = (run.c1.pct_ms(50) - run.health.pct_ms(50)) - (plain.c1.pct_ms(50) - plain.health.pct_ms(50))
    return path, model_hop


def _tier_row(name: str, run: Run) -> list[object]:
    logged = run.c1_logged
    if logged is None:
        return [name, f"{run.c1.pct_ms(50):.2f}", "-", "-", "-", "-", 0]
    return [
        name, f"{run.c1.pct_ms(50):.2f}", f"{logged['proxy']:.2f}", f"{logged['proxy_to_gateway']:.2f}",
        f"{logged['gateway_and_hop']:.2f}", f"{logged['model']:.2f}", logged["n"],
    ]


def _serve_cpu_ms(run: Run) -> float:
    return sum(v for g, v in run.c16.cpu.items() if g != "client") / run.c16.ok * 1e3


def _notes(plain: Run, results: list[tuple[Variant, Run, dict[str, Any]]], costs: dict[str, float]) -> list[str]:
    """Where the extra milliseconds go, from this run's numbers."""
    head, run, _ = results[0]
    lines = []
    path, hop = _hop_ms(run, plain)
    diff = run.c1.pct_ms(50) - plain.c1.pct_ms(50)
    in_process = costs["validate_ms"] + costs["predict_ms"]
    text = (
        f"c=1, {head.label}: {diff:+.2f} ms over plain at p50, with the same model work on both sides "
        f"(`frame_from_records` {costs['validate_ms']:.2f} ms + `Bundle.predict` {costs['predict_ms']:.2f} ms in "
        f"process). The healthz probe puts {path:.2f} ms of the gap on the HTTP path up to the ingress (proxy "
        f"actor -> `Gateway` replica's FastAPI app, vs uvicorn answering directly) and {hop:.2f} ms on the model "
        "hop (`DeploymentHandle` call Gateway -> `ModelServer`, its `@serve.batch` queue, the reply back)."
    )
    logged = run.c1_logged
    if logged is not None:
        text += (
            f" Serve's access logs split the whole request by tier: {logged['proxy_to_gateway']:.2f} ms between the proxy and "
            f"the Gateway, {logged['gateway_and_hop']:.2f} ms in the Gateway and its handle call, and "
            f"{logged['model']:.2f} ms inside the model replica's `predict`, of which {in_process:.2f} ms is model "
            f"work: no single tier dominates; each process boundary costs milliseconds on this machine."
        )
    lines.append(text)
    serving = {g: v / run.c16.ok * 1e3 for g, v in run.c16.cpu.items() if g != "client"}
    top = sorted(serving.items(), key=lambda kv: -kv[1])
    plain_server = plain.c16.cpu.get("server", 0.0)
    lines.append(
        f"c=16, {head.label}: {run.c16.rps:.0f} req/s vs {plain.c16.rps:.0f} plain. Serve keeps "
        f"{sum(run.c16.cpu.values()) / run.c16.elapsed_s:.2f} of the 2 cores busy (client included), so it is "
        f"CPU-bound: its processes spend {_serve_cpu_ms(run):.2f} ms of CPU per request ("
        + ", ".join(f"{g} {v:.2f}" for g, v in top[:3])
        + f" ms) against {plain_server / plain.c16.ok * 1e3:.2f} ms in uvicorn, whose single process used "
        f"{plain_server / plain.c16.elapsed_s:.2f} cores. That CPU per request, in three Python processes that "
        "each parse, route and (de)serialize every request, is what limits throughput; the model replica, where "
        f"the batching happens, accounts for {serving.get('model replica', 0.0) / _serve_cpu_ms(run) * 100:.0f}% of it."
    )
    for variant, other, _ in results[1:]:
        o_path, o_hop = _hop_ms(other, plain)
        c1_delta = other.c1.pct_ms(50) - run.c1.pct_ms(50)
        if variant.key == "ray-defaults":
            lines.append(
                f"{variant.label}: batch wait 0.005 s adds {c1_delta:+.2f} ms at c=1 p50 against as deployed (a "
                "lone request waits out the timeout for a batch that never fills). At c=16 max_ongoing_requests 5 "
                "lets only 5 requests into each replica; the router holds the rest and retries with backoff "
                f"(25 ms doubling to 500 ms), and batches never exceed 5: {other.c16.rps:.0f} req/s, p50 "
                f"{other.c16.pct_ms(50):.0f} ms, p99 {other.c16.pct_ms(99):.0f} ms, against {run.c16.rps:.0f} req/s "
                f"and p50 {run.c16.pct_ms(50):.0f} ms as deployed, with the cores partly idle "
                f"({sum(other.c16.cpu.values()) / other.c16.elapsed_s:.2f} busy)."
            )
        elif variant.env.get(THROUGHPUT_ENV) == "1":
            errors = other.c1.errors + other.c16.errors + other.health.errors
            lines.append(
                f"{variant.label}: Ray's switch turns on, in every Serve process, user code and the router on the "
                "main event loop (no separate threads), gRPC between deployments, a GC freeze after start-up, "
                "no logs to stderr, buffered request-path logs, and direct ingress (the Gateway replica also "
                "listens on its own HTTP port from 30000 up, on 127.0.0.1 here; this client still goes through "
                f"the proxy's port, as production clients do). Against as deployed: c=1 p50 {c1_delta:+.2f} ms "
                f"({other.c1.pct_ms(50) - plain.c1.pct_ms(50):+.2f} ms over plain; path {o_path:.2f} ms, model hop "
                f"{o_hop:.2f} ms), c=16 {other.c16.rps:.0f} req/s ({other.c16.rps / run.c16.rps:.2f}x; "
                f"{other.c16.rps / plain.c16.rps:.2f} of plain), {_serve_cpu_ms(other):.2f} ms of Serve CPU per "
                f"request instead of {_serve_cpu_ms(run):.2f}; {errors} errors."
                + (
                    " The proxy and replica log files stayed empty for this run (the access-log table shows "
                    "\"-\"): per-request logs are held in a buffer and none reached disk before shutdown."
                    if other.c1_logged is None else ""
                )
            )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", type=_variant, default=["deployed", "ray-defaults", "throughput"])
    parser.add_argument("--requests-c1", type=int, default=300)
    parser.add_argument("--requests-c16", type=int, default=1500)
    parser.add_argument("--seconds-c16", type=float, default=20.0)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--serve-child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child:
        return serve_child(args.serve_child)
    # argparse applies `type` to given values only, not to a list default.
    variants = [v if isinstance(v, Variant) else _variant(v) for v in args.variants]
    load = Load(args.requests_c1, args.requests_c16, args.seconds_c16, args.warmup)
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory(prefix="rayline-bench-serve-") as tmp:
        root = Path(tmp)
        bundle_dir, instance, accuracy = train_bundle(root)
        tracking_uri, version = register(bundle_dir, root, accuracy)
        body = json.dumps({"instances": [instance]}).encode()
        costs = in_process_costs(bundle_dir, instance)

        # The baseline first, before any Ray process shares the two cores.
        print("measuring plain FastAPI + uvicorn ...", flush=True)
        plain, plain_answer = run_plain(bundle_dir, version, body, load)
        results = []
        for variant in variants:
            print(f"measuring {variant.label} ...", flush=True)
            results.append(run_serve(variant, tracking_uri, body, load, root))

    differing = [v.label for v, (_, answer, _) in zip(variants, results) if answer != plain_answer]
    runs = [(v, run, ready) for v, (run, _, ready) in zip(variants, results)]

    rows = [_row("plain FastAPI + uvicorn", plain, plain)] + [_row(v.label, run, plain) for v, run, _ in runs]
    results_table = table(
        ["server", "healthz p50 ms", "c=1 p50 ms", "c=1 p99 ms", "p50 diff ms", "c=16 p50 ms", "c=16 p99 ms",
         "c=16 req/s", "req/s ratio", "ok c1/c16", "errors"],
        rows,
    )
    tier_table = table(
        ["server", "c=1 p50 ms (client)", "proxy logged ms", "proxy -> Gateway ms", "Gateway + handle hop ms",
         "ModelServer.predict ms", "requests"],
        [_tier_row(v.label, run) for v, run, _ in runs],
    )
    cpu_table = table(
        ["server", *[f"{g} ms" for g in _CPU_GROUPS], "total ms", "cores busy", "other processes, cores"],
        [_cpu_row("plain FastAPI + uvicorn", plain)] + [_cpu_row(v.label, run) for v, run, _ in runs],
    )
    head, head_run, _ = runs[0]
    p50_diff = head_run.c1.pct_ms(50) - plain.c1.pct_ms(50)
    ratio = head_run.c16.rps / plain.c16.rps

    def verdict(ok: bool, miss: str) -> str:
        return "met" if ok else f"missed by {miss}"

    summary = (
        f"Model: MLP [64, 64] on breast_cancer ({len(instance)} features, val accuracy {accuracy:.3f}), bundle "
        f"registered as `{MODEL}`@champion v{version} in a throwaway MLflow sqlite store. Request: one instance "
        f"({len(body)} bytes JSON). Load: async httpx client in the benchmark process, keep-alive; c=1: "
        f"{load.warmup} warm-up + {load.requests_c1} requests; c=16: {load.warmup} warm-up + up to "
        f"{load.requests_c16} requests or {load.seconds_c16:g} s.\n\n"
        f"Headline ({head.label}):\n\n"
        f"- **p50 difference at c=1: {p50_diff:+.2f} ms** (target <= {TARGET_P50_DIFF_MS:g} ms: "
        f"{verdict(p50_diff <= TARGET_P50_DIFF_MS, f'{p50_diff - TARGET_P50_DIFF_MS:.2f} ms')})\n"
        f"- **throughput ratio Serve/plain at c=16: {ratio:.2f}** (target >= {TARGET_THROUGHPUT_RATIO:g}: "
        f"{verdict(ratio >= TARGET_THROUGHPUT_RATIO, f'{TARGET_THROUGHPUT_RATIO - ratio:.2f}')})\n"
    )
    setup_table = table(
        ["step", "value"],
        [
            ["in-process `frame_from_records` (1 instance), median ms", f"{costs['validate_ms']:.3f}"],
            ["in-process `Bundle.predict` (1 row), median ms", f"{costs['predict_ms']:.3f}"],
            *[[f"ray.init (`connect_ray`), {v.label} s", f"{ready['ray_init_s']:.2f}"] for v, _, ready in runs],
            *[[f"deploy -> model answers, {v.label} s", f"{ready['deploy_s']:.2f}"] for v, _, ready in runs],
        ],
    )
    notes = [
        "The plain server is one uvicorn process (`benchmarks/_plain_server.py`), async handler, no batching, "
        "no access log, torch threads 1; it was measured before any Ray started. Each Serve row ran on its own "
        "local Ray started by `flows.workspace.connect_ray` in a subprocess and deployed by `serving.app.start` "
        "unchanged: proxy -> `Gateway` (FastAPI ingress, 0.25 CPU) -> `DeploymentHandle` -> `ModelServer` "
        "(0.5 CPU, `@serve.batch`, max_batch_size 32).",
        "All servers answered the same body identically." if not differing
        else f"Answers differed from plain for: {', '.join(differing)} (see the script output).",
        "The client shares the 2 cores with the servers. CPU per request is user + system time from /proc over "
        "the timed c=16 requests, for the server's processes grouped by the title Ray gives them, and the "
        "client's own; \"Ray system + driver\" is raylet, GCS, agents, idle workers and the subprocess that "
        "started Ray. \"other processes\" is what the rest of the machine used meanwhile (from /proc/stat): "
        "a row measured while it was high is not comparable with the others.",
        *_notes(plain, runs, costs),
    ]
    body_md = (
        f"{summary}\n{results_table}\n\n"
        "Where a c=1 request spends its time in Serve, from the durations the proxy, the Gateway replica and the "
        "model replica write to their access logs for the same request id (the client sets `x-request-id`): "
        "medians over the timed c=1 requests of proxy - Gateway, Gateway - model and the model replica's own "
        "duration. The proxy's logged time runs until the response is finished, so it can exceed the client's "
        "p50. \"-\": Serve wrote no access log lines for these requests.\n\n"
        f"{tier_table}\n\nCPU per request at c=16 (ms of CPU time per answered request):\n\n"
        f"{cpu_table}\n\n{setup_table}\n\n" + "".join(f"- {line}\n" for line in notes)
    )
    print(body_md)
    if differing:
        print(f"plain answered {plain_answer}; serve answers: {[a for _, a, _ in results]}")
    if not args.no_write:
        write_section("serve_overhead", "Ray Serve overhead (serve_overhead.py)", body_md)
        print("wrote benchmarks/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
