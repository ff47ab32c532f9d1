"""One-image request p50 and throughput through Ray Serve vs plain FastAPI, same model.

serve_overhead.py measures Ray Serve's cost on a small tabular request; this script measures
it where the model work per request is larger: LeNet-5 on 28x28 grey MNIST digits, one
base64 PNG per request, decoded, checked, resized and normalised by the fitted processor
and run through the CNN on every request.

The model is the pipeline's: the 5,000 bundled MNIST digits landed by `write_bundled_images`,
read by `read_npz`, split and fitted by `prepare_images` (the split of
conf/pipelines/mnist_cnn.yaml, `ImageConfig(channels=1)`), LeNet-5 trained for a few
epochs by the loop itself (`train_model`) under an in-memory `ArraySession`, its last
checkpoint bundled with `save_bundle` and registered in a throwaway MLflow sqlite store.
The baseline (`_plain_server.py`, a uvicorn subprocess) loads the same bundle directory and
checks each request with `images_from_instances`, as the Serve `ModelServer` does. Ray Serve
runs in a subprocess that starts a local Ray with `flows.workspace.connect_ray` and deploys
with `serving.app.start`, the `ServedModel` defaults unchanged. Both listen on 127.0.0.1;
this process is the client for both and sends the same body, `{"instances": [{"b64": ...}]}`
holding one test digit:

    concurrency 1:  --warmup requests, then --requests-c1 timed one after another
    concurrency 16: --warmup requests, then --requests-c16 or --seconds-c16, whichever first

    .venv/bin/python benchmarks/image_serving.py [--epochs 4] [--no-write]

No target is set for images; serve_overhead.py's tabular targets (p50 difference <= 3 ms,
req/s ratio >= 0.3) are printed next to the numbers for comparison.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_section  # noqa: E402
from _load import free_port, plain_server, serve_until_stdin_closes, serving_child, wait_ready  # noqa: E402
from serve_overhead import (  # noqa: E402
    C1_TAG, TARGET_P50_DIFF_MS, TARGET_THROUGHPUT_RATIO, THROUGHPUT_ENV, Load, Run, in_process_costs, measure, register,
    serve_log_breakdown,
)

from components.artifacts.bundle import load_bundle, save_bundle  # noqa: E402
from components.config import ImageConfig, ProfileConfig, SplitConfig, TrainingConfig  # noqa: E402
from components.data.image_preparation import IMAGE, PIXELS, ImageState, prepare_images, raw_images  # noqa: E402
from components.data.image_requests import images_from_instances  # noqa: E402
from components.data.images import ImageSpec, read_npz, write_bundled_images  # noqa: E402
from components.data.preparation import LABEL  # noqa: E402
from components.training.array_session import ArraySession  # noqa: E402
from components.training.loop import loop_config, train_model  # noqa: E402
from serving.app import ServedModel  # noqa: E402

MODEL = "bench_mnist_lenet5"
SPEC = {"kind": "cnn", "params": {"arch": "lenet5"}}
SPLIT = SplitConfig(ratios={"train": 0.8, "val": 0.1, "test": 0.1}, stratify=True, seed=0)  # conf/pipelines/mnist_cnn.yaml
IMAGES = ImageConfig(channels=1)
HERE = Path(__file__).resolve().parent
_CHILD_START_S = 240.0


# ---------------------------------------------------------------------------- the model


def mnist_splits(root: Path) -> tuple[dict[str, pl.DataFrame], ImageState, list[bytes], float]:
    """The pipeline's ingest and preprocess steps on the bundled MNIST digits, without the
    lake (nothing here reads Delta): silver frames per split, the fitted state, the test
    split's encoded PNGs (what requests send), seconds taken."""
    t0 = time.perf_counter()
    (path,) = write_bundled_images("mnist", root / "landing")
    bronze, quarantined = read_npz(path, ImageSpec(max_bytes=IMAGES.max_bytes, max_size=IMAGES.max_size))
    if quarantined.height:
        raise RuntimeError(f"{quarantined.height} bundled MNIST images were quarantined")
    frames, state = prepare_images(bronze, SPLIT, IMAGES)
    return frames, state, raw_images(bronze, SPLIT, "test")[IMAGE].to_list(), time.perf_counter() - t0


class _KeepLastCheckpoint(ArraySession):
    """The in-memory session, keeping a copy of the last checkpoint the loop reports: the loop
    writes each one to a temporary directory that is gone once `report` returns."""

    def __init__(self, splits: dict[str, tuple[np.ndarray, np.ndarray]], keep: Path) -> None:
        super().__init__(splits)
        self.keep = keep

    def report(self, metrics: dict[str, float], checkpoint_dir: str | None) -> None:
        super().report(metrics, checkpoint_dir)
        if checkpoint_dir is not None:
            shutil.rmtree(self.keep, ignore_errors=True)
            shutil.copytree(checkpoint_dir, self.keep)


def train_bundle(
    root: Path, frames: dict[str, pl.DataFrame], state: ImageState, test_pngs: list[bytes], epochs: int,
    batch_size: int,
) -> tuple[Path, dict[str, float], float]:
    """LeNet-5 trained by `train_model` in this process, bundled; (bundle dir, its metrics
    (val accuracy of the last epoch, test accuracy through `Bundle.predict` on the test PNGs),
    training seconds)."""
    training = TrainingConfig(epochs=epochs, batch_size=batch_size, optimizer={"name": "adam", "lr": 1e-3}).model_dump()
    config = loop_config(SPEC, training, state.info)
    # polars hands out read-only label arrays, which torch warns about when it wraps them
    splits = {
        s: (state.batch_inputs({PIXELS: frames[s][PIXELS].to_list()}), frames[s][LABEL].to_numpy().copy())
        for s in ("train", "val")
    }
    session = _KeepLastCheckpoint(splits, root / "checkpoint")
    t0 = time.perf_counter()
    history = train_model(config, session)
    train_s = time.perf_counter() - t0

    checkpoint = session.keep
    provisional = load_bundle(save_bundle(root / "scored", checkpoint_dir=checkpoint, features=state, metrics={},
                                          lineage={}))
    test = frames["test"]
    classes = [str(c) for c in state.labels.classes_]
    truth = [classes[i] for i in test[LABEL].to_list()]
    answers = provisional.predict(test_pngs)  # the encoded PNGs, as a request sends them
    test_accuracy = float(np.mean([str(a["label"]) == t for a, t in zip(answers, truth)]))
    metrics = {"val_accuracy": float(history[-1]["val_accuracy"]), "test_accuracy": test_accuracy}
    bundle_dir = save_bundle(
        root / "bundle", checkpoint_dir=checkpoint, features=state, metrics=metrics,
        lineage={"source": "bundled MNIST digits", "by": "benchmarks/image_serving.py"},
    )
    return bundle_dir, metrics, train_s


def image_costs(bundle_dir: Path, instance: dict[str, Any]) -> dict[str, float]:
    """`in_process_costs` with the image request check (base64, `check_image`, PNG decode)."""
    return in_process_costs(bundle_dir, instance, check=lambda b, one: images_from_instances([one], b.features.spec, 1024))


def _body(png: bytes) -> bytes:
    return json.dumps({"instances": [{"b64": base64.b64encode(png).decode()}]}).encode()


# ---------------------------------------------------------------------------- load


def answers(base_url: str, bodies: list[bytes]) -> list[Any]:
    """The predictions a server gives for each body, one request each."""
    out = []
    with httpx.Client(timeout=30.0) as client:
        for body in bodies:
            r = client.post(f"{base_url}/v1/models/{MODEL}:predict", content=body,
                            headers={"content-type": "application/json"})
            r.raise_for_status()
            out.append(r.json()["predictions"])
    return out


def run_plain(bundle_dir: Path, version: str, body: bytes, checks: list[bytes], load: Load) -> tuple[Run, list[Any]]:
    with plain_server(bundle_dir, MODEL, version) as (base, proc):
        checked = answers(base, checks)
        return measure(base, body, load, proc.pid, MODEL), checked


def serve_child(spec_path: str) -> int:
    """The model on a local Ray of its own, started the production way and deployed with
    `serving.app.start`. Writes where it listens once the model answers, then serves until
    its stdin closes, then shuts Serve and Ray down."""
    import ray
    from ray import serve

    from flows.workspace import connect_ray
    from serving.app import start

    spec = json.loads(Path(spec_path).read_text())
    t0 = time.perf_counter()
    connect_ray(ProfileConfig())
    init_s = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        base = start([ServedModel(name=MODEL)], spec["tracking_uri"], "127.0.0.1", spec["port"])
        wait_ready(f"{base}/v1/models/{MODEL}", _CHILD_START_S)
        ready = {
            "base": base, "ray_init_s": init_s, "deploy_s": time.perf_counter() - t0,
            "session_dir": ray._private.worker.global_worker.node.get_session_dir_path(),
        }
        serve_until_stdin_closes(spec["ready"], ready)
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0


def run_serve(tracking_uri: str, body: bytes, checks: list[bytes], load: Load, root: Path) -> tuple[Run, list[Any], dict[str, Any]]:
    """Start `serve_child`, measure it from here, stop it."""
    workdir = root / "serve"
    workdir.mkdir()
    spec_path, ready_path, log_path = (workdir / name for name in ("spec.json", "ready.json", "child.log"))
    spec_path.write_text(json.dumps({"tracking_uri": tracking_uri, "port": free_port(), "ready": str(ready_path)}))
    # Always a local Ray of its own, as deployed: no cluster address, no throughput switch.
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", THROUGHPUT_ENV)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-child", str(spec_path)]
    with serving_child(cmd, env, ready_path, log_path, _CHILD_START_S + 60, "Ray Serve") as (proc, ready):
        checked = answers(ready["base"], checks)
        run = measure(ready["base"], body, load, proc.pid, MODEL)
    run.c1_logged = serve_log_breakdown(ready["session_dir"], C1_TAG)  # complete once the replicas exited
    return run, checked, ready


# ---------------------------------------------------------------------------- report

_CPU_GROUPS = ["client", "server", "proxy", "Gateway", "model replica", "Serve controller", "Ray system + driver"]


def _row(name: str, run: Run, plain: Run) -> list[object]:
    return [
        name, f"{run.health.pct_ms(50):.2f}", f"{run.c1.pct_ms(50):.2f}", f"{run.c1.pct_ms(99):.2f}",
        f"{run.c1.pct_ms(50) - plain.c1.pct_ms(50):+.2f}", f"{run.c16.pct_ms(50):.1f}", f"{run.c16.pct_ms(99):.1f}",
        f"{run.c16.rps:.0f}", f"{run.c16.rps / plain.c16.rps:.2f}", f"{run.c1.ok}/{run.c16.ok}",
        run.c1.errors + run.c16.errors + run.health.errors,
    ]


def _cpu_row(name: str, run: Run) -> list[object]:
    cells = [f"{run.c16.cpu_ms(g):.2f}" if g in run.c16.cpu else "-" for g in _CPU_GROUPS]
    total = sum(run.c16.cpu.values())
    return [
        name, *cells, f"{total / run.c16.ok * 1e3:.2f}", f"{total / run.c16.elapsed_s:.2f}",
        f"{run.c16.others_cores:.2f}",
    ]


def _contention(plain: Run, serve: Run, below: float = 0.1) -> str:
    """A warning when other work held a core's share during either c=16 block."""
    busy = {name: run.c16.others_cores for name, run in (("plain", plain), ("Serve", serve))}
    if max(busy.values()) <= below:
        return ""
    return (
        " **Other work shared the machine during this run** (other processes: "
        + ", ".join(f"{v:.2f} cores during the {k} c=16 block" for k, v in busy.items())
        + "): the two rows were not measured under the same conditions; rerun on a quiet machine to compare them."
    )


def _verdict(ok: bool) -> str:
    return "would be met" if ok else "would be missed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4, help="LeNet-5 training epochs (in process)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--requests-c1", type=int, default=300)
    parser.add_argument("--requests-c16", type=int, default=1500)
    parser.add_argument("--seconds-c16", type=float, default=20.0)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--check-digits", type=int, default=20,
                        help="test digits each server answers once before the load, compared between them")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--serve-child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child:
        return serve_child(args.serve_child)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    load = Load(args.requests_c1, args.requests_c16, args.seconds_c16, args.warmup)
    torch.set_num_threads(1)  # as the 0.5-CPU model replica and the plain server (--threads 1)
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="rayline-bench-images-") as tmp:
        root = Path(tmp)
        print("landing and preparing MNIST, training LeNet-5 ...", flush=True)
        frames, state, test_pngs, prep_s = mnist_splits(root)
        bundle_dir, metrics, train_s = train_bundle(root, frames, state, test_pngs, args.epochs, args.batch_size)
        tracking_uri, version = register(bundle_dir, root, metrics["val_accuracy"], MODEL)
        png = test_pngs[0]
        body = _body(png)
        checks = [_body(p) for p in test_pngs[: args.check_digits]]
        expected = [load_bundle(bundle_dir).predict([p]) for p in test_pngs[: args.check_digits]]
        costs = image_costs(bundle_dir, json.loads(body)["instances"][0])

        # The baseline first, before any Ray process shares the two cores.
        print("measuring plain FastAPI + uvicorn ...", flush=True)
        plain, plain_checked = run_plain(bundle_dir, version, body, checks, load)
        print("measuring Ray Serve ...", flush=True)
        serve, serve_checked, ready = run_serve(tracking_uri, body, checks, load, root)
    runtime_s = time.perf_counter() - started

    same = plain_checked == serve_checked
    as_bundle = sum(p[0]["label"] == e[0]["label"] for p, e in zip(plain_checked, expected))
    p50_diff = serve.c1.pct_ms(50) - plain.c1.pct_ms(50)
    ratio = serve.c16.rps / plain.c16.rps
    label = "Ray Serve, as deployed (`ServedModel` defaults)"

    results_table = table(
        ["server", "healthz p50 ms", "c=1 p50 ms", "c=1 p99 ms", "p50 diff ms", "c=16 p50 ms", "c=16 p99 ms",
         "c=16 req/s", "req/s ratio", "ok c1/c16", "errors"],
        [_row("plain FastAPI + uvicorn", plain, plain), _row(label, serve, plain)],
    )
    cpu_table = table(
        ["server", *[f"{g} ms" for g in _CPU_GROUPS], "total ms", "cores busy", "other processes, cores"],
        [_cpu_row("plain FastAPI + uvicorn", plain), _cpu_row(label, serve)],
    )
    logged = serve.c1_logged
    tier_text = (
        "Serve's access logs for the timed c=1 requests (same request id in the proxy, Gateway and model "
        "replica logs; medians): "
        f"proxy -> Gateway {logged['proxy_to_gateway']:.2f} ms, Gateway + handle hop {logged['gateway_and_hop']:.2f} "
        f"ms, `ModelServer.predict` {logged['model']:.2f} ms ({logged['n']:.0f} requests)."
        if logged is not None else "Serve wrote no access log lines for the timed c=1 requests."
    )
    setup_table = table(
        ["step", "value"],
        [
            ["land + `read_npz` + `prepare_images` (5,000 digits), s", f"{prep_s:.1f}"],
            [f"`train_model`, {args.epochs} epochs, ArraySession, 1 thread, s", f"{train_s:.1f}"],
            ["in-process `images_from_instances` (1 image), median ms", f"{costs['validate_ms']:.3f}"],
            ["in-process `Bundle.predict` (1 image), median ms", f"{costs['predict_ms']:.3f}"],
            ["ray.init (`connect_ray`), s", f"{ready['ray_init_s']:.2f}"],
            ["deploy -> model answers, s", f"{ready['deploy_s']:.2f}"],
            ["whole run, s", f"{runtime_s:.0f}"],
        ],
    )
    serve_cpu = sum(v for g, v in serve.c16.cpu.items() if g != "client") / serve.c16.ok * 1e3
    plain_cpu = plain.c16.cpu.get("server", 0.0) / plain.c16.ok * 1e3
    in_process = costs["validate_ms"] + costs["predict_ms"]
    summary = (
        f"Model: LeNet-5 `{json.dumps(SPEC)}` trained {args.epochs} epochs by `train_model` (Adam lr 1e-3, batch "
        f"size {args.batch_size}, ArraySession, in process) on the bundled MNIST digits ({frames['train'].height:,} "
        f"train / {frames['val'].height:,} val / {frames['test'].height:,} test, the split of "
        f"conf/pipelines/mnist_cnn.yaml); val accuracy {metrics['val_accuracy']:.3f}, test accuracy "
        f"{metrics['test_accuracy']:.3f} through `Bundle.predict` on the test PNGs. Bundle registered as "
        f"`{MODEL}`@champion v{version} in a throwaway MLflow sqlite store. Request: one instance `{{\"b64\": ...}}`, a "
        f"{len(png)}-byte PNG of one 28x28 test digit ({len(body)} bytes JSON). Load: async httpx client in the "
        f"benchmark process, keep-alive; c=1: {load.warmup} warm-up + {load.requests_c1} requests; c=16: "
        f"{load.warmup} warm-up + up to {load.requests_c16} requests or {load.seconds_c16:g} s.\n\n"
        f"- **p50 difference at c=1: {p50_diff:+.2f} ms** (plain {plain.c1.pct_ms(50):.2f} ms, Serve "
        f"{serve.c1.pct_ms(50):.2f} ms)\n"
        f"- **throughput ratio Serve/plain at c=16: {ratio:.2f}** (plain {plain.c16.rps:.0f} req/s, Serve "
        f"{serve.c16.rps:.0f} req/s)\n\n"
        f"No target is set for images. For comparison, serve_overhead.py's targets for its tabular model are p50 "
        f"difference <= {TARGET_P50_DIFF_MS:g} ms ({_verdict(p50_diff <= TARGET_P50_DIFF_MS)} here) and req/s ratio "
        f">= {TARGET_THROUGHPUT_RATIO:g} ({_verdict(ratio >= TARGET_THROUGHPUT_RATIO)} here); its own numbers are in "
        "its section.\n"
    )
    notes = [
        "The plain server is one uvicorn process (`benchmarks/_plain_server.py`), async handler, no batching, no "
        "access log, torch threads 1, checking each request with `images_from_instances` as `ModelServer` does; it "
        "was measured before any Ray started. Serve ran on its own local Ray started by "
        "`flows.workspace.connect_ray` in a subprocess and deployed by `serving.app.start` unchanged: proxy -> "
        "`Gateway` (FastAPI ingress, 0.25 CPU) -> `DeploymentHandle` -> `ModelServer` (0.5 CPU, `@serve.batch`, "
        "max_batch_size 32, batch wait 0, max_ongoing_requests 64).",
        f"Both servers answered {len(checks)} test digits, one request each, "
        + ("identically" if same else "**differently** (see the script output)")
        + f"; {as_bundle} of {len(checks)} labels match `Bundle.predict` in this process.",
        f"Model work per request in process: {costs['validate_ms']:.2f} ms to check and decode the PNG and "
        f"{costs['predict_ms']:.2f} ms for `Bundle.predict` (processor and LeNet-5, one image), {in_process:.2f} ms "
        f"in all; the plain server's c=1 p50 is {plain.c1.pct_ms(50):.2f} ms. {tier_text}",
        f"CPU per answered request at c=16: Serve's processes {serve_cpu:.2f} ms, uvicorn {plain_cpu:.2f} ms. The "
        "client shares the 2 cores with the server; \"other processes\" is what the rest of the machine used during "
        "the timed c=16 requests (from /proc/stat): a row measured while it was high is not comparable with the "
        "other." + _contention(plain, serve),
    ]
    body_md = (
        f"{summary}\n{results_table}\n\nCPU per request at c=16 (ms of CPU time per answered request):\n\n"
        f"{cpu_table}\n\n{setup_table}\n\n" + "".join(f"- {line}\n" for line in notes)
    )
    print(body_md)
    if not same:
        print(f"plain answered {plain_checked}\nserve answered {serve_checked}")
    if not args.no_write:
        write_section("image_serving", "One-image requests: Ray Serve vs plain FastAPI (image_serving.py)", body_md)
        print("wrote benchmarks/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
