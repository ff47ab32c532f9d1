"""LeNet-5 on MNIST: Ray Train vs plain PyTorch, Ray Data images/s vs the model, bf16 vs fp32.

Three side-by-side measurements in one run: the epoch time of the Ray Train loop (1 worker)
against plain PyTorch, the Ray Data image path's images/s against what the model consumes,
and bf16 autocast against fp32 on CPU.

The data is the pipeline's: the 5,000 bundled MNIST digits landed by `write_bundled_images`,
read by `read_npz`, split and fitted by `prepare_images` (the split of
conf/pipelines/mnist_cnn.yaml, `ImageConfig(channels=1)`, no augmentation) and written by
`write_silver` into a throwaway `Lake`. Silver image tables hold each image decoded once,
converted and resized: (C, H, W) uint8 bytes in `pixels`. Where batches are made
(`SilverInputs.of(...).datasets()`) Ray Data's pack only scales and normalises them
(`ImageState.batch_inputs`); a split that packs to at most 256 MiB (`CACHE_BELOW_BYTES`) is
packed once into the object store, a larger one streams from Delta every pass.

    .venv/bin/python benchmarks/cnn_overhead.py [--epochs 8] [--passes 4] [--no-write]

1. Epoch time. The plain side runs in this process, before the Ray side and again after it
   (the machine's speed drifts by several percent within a minute; the baseline pools both):
   the same model (`build` of the spec `loop_config` fills from the state's `DataInfo`, same
   seed), Adam lr 1e-3, batch size 64, the packed images held as tensors and reshuffled each
   epoch, the loop's own `evaluate` every epoch, no checkpoint. A control runs the same plain
   loop in a fresh interpreter with OMP_NUM_THREADS=1, as a Ray worker has it: how much two
   processes running identical code differ. The Ray side runs in a subprocess with its own
   local Ray (`flows.workspace.connect_ray`): `make_trainer` over `loop_config`, 1 worker,
   with the worker function swapped for `train_model` under a session that is the
   project's `TrainSession` plus wall-clock stamps. Epoch 0 (start-up, and the pass that
   first streams the shard to the worker) is reported apart; the ratio compares medians of the
   rest. A third row runs `train_model` in this process under an `ArraySession` (no Ray)
   to split the gap into "the loop" and "Ray".
2. Images/s. After the Train run, the same subprocess iterates
   `SilverInputs.of(...).datasets()["train"].iter_torch_batches(batch_size=64)` for whole
   passes in the driver, no model; compared with the images/s the plain loop's
   forward+backward+step consumed on in-memory tensors. MNIST's train split is cached (it
   packs small), and so are Fashion-MNIST's 48,000 train images (row 2b); row 2c iterates
   the same 48,000 streamed from Delta every pass (`CACHE_BELOW_BYTES` set to 0), as a
   split above 256 MiB packed would be. Also timed in this process: the pack alone, and the PNG
   decode the read tasks ran before silver held pixels (`ImageState.inputs`).
3. Precision. `train_model` in this process under an `ArraySession` (in-memory tensors,
   no Ray), `training.precision` fp32 then bf16, same seed and epochs: epoch time and the
   last epoch's validation accuracy.

A 1-CPU Ray Train worker runs with OMP_NUM_THREADS=1, so everything in this process runs
with torch.set_num_threads(1) too; both sides report the thread count they ran with.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import ray
import torch
from ray.data.dataset import MaterializedDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    ELSEWHERE, by_epoch, machine_busy_s, named_cpu, run_child, table, waited, write_section,
)

import components.training.ray_session as ray_session  # noqa: E402
from components.config import ImageConfig, ProfileConfig, SplitConfig, TrainingConfig  # noqa: E402
from components.data.fitted_state import state_from_dict  # noqa: E402
from components.data.image_preparation import IMAGE, PIXELS, ImageState, prepare_images  # noqa: E402
from components.data.images import FASHION_MNIST_DIR, ImageSpec, read_idx, read_npz, write_bundled_images  # noqa: E402
from components.data.lake import Lake  # noqa: E402
from components.data.preparation import LABEL  # noqa: E402
from components.data.silver import write_silver  # noqa: E402
from components.models import build  # noqa: E402
from components.training.array_session import ArraySession  # noqa: E402
from components.training.loop import data_info, evaluate, loop_config, train_model, training_config  # noqa: E402
from components.training.losses import loss_fn  # noqa: E402
from components.training.optim import make_optimizer  # noqa: E402
from components.training.ray_session import (  # noqa: E402
    BLOCK_BYTES, CACHE_BELOW_BYTES, SilverInputs, TrainSession, make_trainer,
)
from components.training.tasks import Supervised  # noqa: E402
from flows.workspace import RAY_ENV, connect_ray  # noqa: E402

TARGET_RATIO = 1.10
TARGET_DATA_X = 3.0
MODEL = {"kind": "cnn", "params": {"arch": "lenet5"}}
# What loop_config must make of MODEL with the MNIST state's DataInfo (the brief's spec).
EXPECTED_SPEC = {
    "kind": "cnn", "params": {"arch": "lenet5", "in_channels": 1, "height": 28, "width": 28, "out_features": 10},
}
SPLIT = SplitConfig(ratios={"train": 0.8, "val": 0.1, "test": 0.1}, stratify=True, seed=0)  # conf/pipelines/mnist_cnn.yaml
IMAGES = ImageConfig(channels=1)
_CHILD_TIMEOUT_S = 300
# The CPU table's windows over Fashion-MNIST's later passes (rows 2b and 2c).
SCALE_WINDOWS = {"scale": "Fashion-MNIST cached, passes 2+", "streamed": "Fashion-MNIST streamed, passes 2+"}

Tensors = tuple[torch.Tensor, torch.Tensor]


# ---------------------------------------------------------------------------- data


def silver_mnist(tmp: Path) -> tuple[dict[str, tuple[str, int]], ImageState, dict[str, int], float, float]:
    """The pipeline's ingest and preprocess steps on the bundled MNIST digits: split tables
    {split: (uri, version)}, the fitted state, rows per split, seconds taken; and the images/s
    of `ImageState.inputs` on bronze's PNGs, the whole decode the read tasks ran before silver
    held pixels (and the endpoint still runs), timed apart."""
    t0 = time.perf_counter()
    (path,) = write_bundled_images("mnist", tmp / "landing")
    bronze, quarantined = read_npz(path, ImageSpec(max_bytes=IMAGES.max_bytes, max_size=IMAGES.max_size))
    if quarantined.height:
        raise RuntimeError(f"{quarantined.height} bundled MNIST images were quarantined")
    frames, state = prepare_images(bronze, SPLIT, IMAGES)
    snapshot = write_silver(Lake(str(tmp / "lake")), frames, state, bronze_version=0)
    rows = {split: frame.height for split, frame in frames.items()}
    prep_s = time.perf_counter() - t0
    pngs = bronze[IMAGE].to_list()
    t0 = time.perf_counter()
    state.inputs(pngs)  # (N, C, H, W)
    return snapshot.tables, state, rows, prep_s, len(pngs) / (time.perf_counter() - t0)


def silver_fashion(tmp: Path) -> tuple[dict[str, tuple[str, int]], ImageState] | None:
    """The same steps on Fashion-MNIST's 60,000 training images (same 28x28x1 shape, so the
    same model consumes them at the same rate): the data path at a size where a pass's fixed
    start-up no longer dominates. None when Debian's `dataset-fashion-mnist` is not installed."""
    if not FASHION_MNIST_DIR.is_dir():
        return None
    images, labels = (p for p in write_bundled_images("fashion_mnist", tmp / "fashion") if "train" in p.name)
    bronze, _ = read_idx(images, labels, ImageSpec(max_bytes=IMAGES.max_bytes, max_size=IMAGES.max_size))
    frames, state = prepare_images(bronze, SPLIT, IMAGES)
    snapshot = write_silver(Lake(str(tmp / "fashion-lake")), frames, state, bronze_version=0)
    return snapshot.tables, state


def packed(lake: Lake, table: str, version: int, state: ImageState) -> tuple[Tensors, float]:
    """(x (N, 1, 28, 28) float32, y (N,) int64) of one silver table, packed in this process by
    the same `ImageState.batch_inputs` the read tasks run (uint8 pixels to normalised float32);
    and the seconds the pack alone took (median of 5)."""
    frame = lake.read(table, version)
    pixels = frame[PIXELS].to_list()  # (C, H, W) uint8 bytes per row
    times = []
    for _ in range(5):  # milliseconds for 4,000 images: the median of 5
        t0 = time.perf_counter()
        x = state.batch_inputs({PIXELS: pixels})  # (N, C, H, W)
        times.append(time.perf_counter() - t0)
    return (torch.from_numpy(x), torch.from_numpy(frame[LABEL].to_numpy().astype(np.int64))), statistics.median(times)


# ---------------------------------------------------------------------------- epoch stamps

_TICKS = os.sysconf("SC_CLK_TCK")


def _busy_s() -> float:
    """Non-idle CPU seconds of the whole machine since boot (as `_common.machine_busy_s`;
    defined here so that the Ray worker, which gets this script's functions by value, has it)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / _TICKS


def _stamp(stamps: list[list[Any]], phase: str) -> None:
    """(phase, wall time, CPU seconds of the calling thread, busy CPU seconds of the machine)."""
    stamps.append([phase, time.time(), time.thread_time(), _busy_s()])


def phases(stamps: list[list[Any]]) -> list[dict[str, float]]:
    """Per epoch from the stamps: train, val (+ checkpoint write), report, batch wait and whole
    epoch seconds (report end to report end; epoch 0 from its first batch request), the
    training thread's CPU seconds in the train phase, and the machine's busy cores meanwhile."""
    epochs = by_epoch(stamps)
    rows = []
    for i, e in enumerate(epochs):
        begin = epochs[i - 1]["reported"] if i else e["train"]
        rows.append({
            "train": e["val"][0] - e["train"][0],
            "val": e["report"][0] - e["val"][0],
            "report": e["reported"][0] - e["report"][0],
            "wait": e["train_wait"][0] + e["val_wait"][0],
            "first": e["train_first"][0],
            "epoch": e["reported"][0] - begin[0],
            "train_cpu": e["val"][1] - e["train"][1],
            "train_busy": (e["val"][2] - e["train"][2]) / (e["val"][0] - e["train"][0]),
            "start": e["train"][0],
            "end": e["reported"][0],
        })
    return rows


class _Timed:
    """Stamps each phase as the loop calls the session it is mixed into."""

    stamps: list[list[Any]]

    def batches(self, split: str, batch_size: int, shuffle: bool, seed: int) -> Iterator[Any]:
        _stamp(self.stamps, split)
        return waited(self.stamps, split, super().batches(split, batch_size, shuffle, seed))  # type: ignore[misc]

    def report(self, metrics: dict[str, float], checkpoint_dir: str | None) -> None:
        _stamp(self.stamps, "report")
        super().report(metrics, checkpoint_dir)  # type: ignore[misc]
        _stamp(self.stamps, "reported")


class _TimedTrainSession(_Timed, TrainSession):
    """The project's TrainSession with stamps."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps = []


class _TimedArraySession(_Timed, ArraySession):
    """The project's in-memory session with stamps."""

    def __init__(self, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        super().__init__(splits)
        self.stamps = []


# ---------------------------------------------------------------------------- Ray side (child process)


def _timed_worker(config: dict[str, Any]) -> dict[str, Any]:
    """What `train_loop_per_worker` runs (`train_model`), under `_TimedTrainSession`."""
    entered = time.time()
    session = _TimedTrainSession()
    history = train_model(config, session)
    shard = session._shards.get("train")  # sanity check of "kept in memory"; private state
    return {
        "entered": entered, "stamps": session.stamps, "threads": torch.get_num_threads(), "history": history,
        "kept": getattr(shard, "_kept", None) is not None, "code": _code_dir(),
    }


def _code_dir() -> str:
    """Where this process imports the project from (driver and worker must agree)."""
    return str(Path(ray_session.__file__).resolve().parent.parent)


def data_passes(inputs: SilverInputs, batch_size: int, passes: int) -> dict[str, Any]:
    """Whole passes over the train split through Ray Data in the driver, no model: seconds,
    seconds to the first batch, images, CPU seconds of this process and the Ray processes
    under it, and of every process by group (read before and after the pass: processes that
    exit during a pass are missed), of the whole machine, how many processes started
    meanwhile, and a checksum of the packed inputs. Also the seconds `datasets()` took (for a
    cached split: its read and pack into the object store) and the bytes the object store
    holds for a cached split (None when it streams)."""
    t0 = time.perf_counter()
    ds = inputs.datasets()["train"]
    datasets_s = time.perf_counter() - t0
    cached = ds.size_bytes() if isinstance(ds, MaterializedDataset) else None
    out = []
    for _ in range(passes):
        before, busy0 = named_cpu(os.getpid()), machine_busy_s()
        images, total, first = 0, 0.0, None
        start, t0 = time.time(), time.perf_counter()
        for batch in ds.iter_torch_batches(batch_size=batch_size):
            first = time.perf_counter() - t0 if first is None else first
            images += len(batch["y"])
            total += float(batch["x"].sum(dtype=torch.float64))
        seconds = time.perf_counter() - t0
        busy, after = machine_busy_s() - busy0, named_cpu(os.getpid())
        groups: dict[str, float] = {}
        for pid, (name, c) in after.items():  # a Ray worker renames itself per task: grouped by its name now
            groups[name] = groups.get(name, 0.0) + c - (before[pid][1] if pid in before else 0.0)
        ours = [pid for pid, (name, _) in after.items() if not name.endswith(ELSEWHERE)]
        out.append({
            "start": start, "end": start + seconds, "s": seconds, "first_s": first, "images": images,
            "first_images": min(batch_size, images), "busy_s": busy,
            "cpu_s": sum(c for name, c in groups.items() if not name.endswith(ELSEWHERE)),
            "started": sum(1 for pid in ours if pid not in before), "checksum": total, "groups": groups,
        })
    return {"datasets_s": datasets_s, "cached_bytes": cached, "passes": out, "stats": ds.stats()}


class _CpuSampler(threading.Thread):
    """Every `interval` s, the CPU seconds of every process on the machine by pid, with a
    name for grouping and whether it descends from `root`; and the machine's busy seconds."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.samples: list[tuple[float, float, dict[int, tuple[str, float]]]] = []
        self.own_cpu_s = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            t0 = time.thread_time()
            self.samples.append((time.time(), machine_busy_s(), named_cpu(self.root)))
            self.own_cpu_s += time.thread_time() - t0

    def stop(self) -> None:
        self._done.set()
        self.join()

    def by_process(self, start: float, end: float) -> dict[str, Any]:
        """Cores used per process group from the first sample at or after `start` to the last
        at or before `end`: CPU seconds / wall seconds. Processes that exited in between are
        missed; ones that started are counted whole."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return {"seconds": 0.0, "cores": {}, "machine": float("nan")}
        (t0, busy0, a), (t1, busy1, b) = inside[0], inside[-1]
        cores: dict[str, float] = {}
        for pid, (name, cpu) in b.items():
            used = cpu - a[pid][1] if pid in a else cpu  # a Ray worker renames itself per task
            cores[name] = cores.get(name, 0.0) + used / (t1 - t0)
        started = sum(1 for pid, (name, _) in b.items() if pid not in a and not name.endswith(ELSEWHERE))
        return {"seconds": t1 - t0, "cores": cores, "machine": (busy1 - busy0) / (t1 - t0), "started": started}


def _passes_window(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """`_CpuSampler.by_process`'s window over these passes, from the reads before and after
    each: cores per process group and of the machine over the passes' summed seconds."""
    seconds = sum(p["s"] for p in passes)
    cores: dict[str, float] = {}
    for p in passes:
        for name, cpu in p["groups"].items():
            cores[name] = cores.get(name, 0.0) + cpu / seconds
    return {"seconds": seconds, "cores": cores, "machine": sum(p["busy_s"] for p in passes) / seconds,
            "started": sum(p["started"] for p in passes)}


def _settle(below: float = 0.3, window_s: float = 0.5, limit_s: float = 20.0) -> float:
    """Wait until the machine uses fewer than `below` cores over `window_s` (the Train run's
    worker and controller exit after fit() returns); the seconds waited, `limit_s` at most."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        busy0 = machine_busy_s()
        time.sleep(window_s)
        if (machine_busy_s() - busy0) / window_s < below:
            break
    return time.perf_counter() - t0


def _plain_child(spec: dict[str, Any], tables: dict[str, tuple[str, int]], state: ImageState) -> int:
    """The plain loop again in this fresh interpreter, whose environment sets OMP_NUM_THREADS=1
    as Ray does for a 1-CPU worker: how far two processes running the same loop differ."""
    lake = Lake(spec["lake"])
    train, _ = packed(lake, "silver_train", tables["train"][1], state)
    val, _ = packed(lake, "silver_val", tables["val"][1], state)
    rows, last = run_plain(spec["config"], train, val)
    Path(spec["out"]).write_text(json.dumps({"rows": rows, "last": last, "threads": torch.get_num_threads()}))
    return 0


def ray_child(spec_path: str) -> int:
    """In a fresh interpreter: connect_ray, SilverInputs.of(...).datasets(), the timed
    `make_trainer` run, then the data path alone (or, with mode "plain", the plain loop);
    writes the measurements as JSON next to the spec."""
    spec = json.loads(Path(spec_path).read_text())
    tables = {split: tuple(t) for split, t in spec["tables"].items()}
    state = state_from_dict(spec["state"])
    if spec["mode"] == "plain":
        return _plain_child(spec, tables, state)
    t0 = time.perf_counter()
    connect_ray(ProfileConfig())
    init_s = time.perf_counter() - t0
    try:
        inputs = SilverInputs.of({s: tables[s] for s in ("train", "val")}, state)
        t0 = time.perf_counter()
        datasets = inputs.datasets()
        datasets_s = time.perf_counter() - t0
        # make_trainer builds the trainer exactly as production does; only the function it
        # hands the worker is the same loop under a timed session.
        ray_session.train_loop_per_worker = _timed_worker
        trainer = make_trainer(
            spec["config"], datasets, num_workers=1, use_gpu=False, storage_path=spec["storage"], name="cnn-overhead"
        )
        sampler = _CpuSampler(os.getpid())
        sampler.start()
        fit_called = time.time()
        result = trainer.fit()
        fit_returned = time.time()
        if result.error is not None:
            raise RuntimeError(f"the Ray Train run failed: {result.error}")
        out = dict(result.return_value)
        settle_s = _settle()
        sampler.stop()  # the pass windows come from reads before and after each pass
        data = data_passes(inputs, spec["batch_size"], spec["passes"])
        scale_windows = {}
        if spec.get("scale"):
            scale_tables = {s: tuple(t) for s, t in spec["scale"]["tables"].items()}
            scale_inputs = SilverInputs.of({"train": scale_tables["train"]}, state_from_dict(spec["scale"]["state"]))
            # 48,000 images pack to 151 MB, under CACHE_BELOW_BYTES: cached. With the limit
            # at 0 the same split streams from Delta every pass, read in the blocks a split
            # above the limit is read in.
            limit = ray_session.CACHE_BELOW_BYTES
            for key, cache_below in (("scale", limit), ("streamed", 0)):
                ray_session.CACHE_BELOW_BYTES = cache_below
                out[key] = data_passes(scale_inputs, spec["batch_size"], 3)
                scale_windows[SCALE_WINDOWS[key]] = _passes_window(out[key]["passes"][1:])
            ray_session.CACHE_BELOW_BYTES = limit
        rows = phases(out["stamps"])
        windows = {
            "fit() to the first train batch": (fit_called, rows[0]["start"] + rows[0]["first"]),
            "epoch 0": (rows[0]["start"], rows[0]["end"]),
            "steady epochs": (rows[0]["end"], rows[-1]["end"]),
        }
        out.update(
            fit_called=fit_called, fit_returned=fit_returned, ray_init_s=init_s, datasets_s=datasets_s,
            poll_s=os.environ.get("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"), driver_code=_code_dir(), data=data,
            cpu={**{name: sampler.by_process(*w) for name, w in windows.items()},
                 "MNIST passes 2+": _passes_window(data["passes"][1:]), **scale_windows},
            settle_s=settle_s,
            sampler={"interval_s": sampler.interval, "own_cpu_s": sampler.own_cpu_s,
                     "seconds": sampler.samples[-1][0] - sampler.samples[0][0]},
        )
    finally:
        ray.shutdown()
    Path(spec["out"]).write_text(json.dumps(out))
    return 0


def run_ray(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """`ray_child` in a fresh interpreter that starts its own local Ray with RAY_ENV."""
    env = {k: v for k, v in os.environ.items() if k not in RAY_ENV and k != "RAY_ADDRESS"}  # always a local Ray
    out = run_child(__file__, spec, workdir, "ray", "Ray Train run", env, _CHILD_TIMEOUT_S)
    if {out["code"], out["driver_code"]} != {_code_dir()}:
        raise RuntimeError(f"the Ray run imported project code from {out['driver_code']} (driver) and "
                           f"{out['code']} (worker), not {_code_dir()}")
    return out


# ---------------------------------------------------------------------------- in-process sides


def run_plain(config: dict[str, Any], train: Tensors, val: Tensors) -> tuple[list[dict[str, float]], dict[str, float]]:
    """The same model, optimizer, batch size and validation pass as the loop, without Ray or
    the loop: per-epoch phases and the last epoch's validation metrics."""
    cfg = training_config(config)
    info = data_info(config)
    torch.manual_seed(cfg.seed)
    model = build(config["model"])
    optimizer = make_optimizer(model.parameters(), cfg.optimizer)
    criterion = loss_fn(info.task, info.out_features)
    task = Supervised(model, info, cfg)  # only its validation pass: the loop's own `evaluate`
    session = SimpleNamespace(world_rank=0, world_size=1, device=torch.device("cpu"))
    x_train, y_train = train
    x_val, y_val = val
    generator = torch.Generator().manual_seed(cfg.seed)
    rows, last = [], {}
    for _ in range(cfg.epochs):
        t0, cpu0, busy0 = time.perf_counter(), time.thread_time(), _busy_s()
        model.train()
        order = torch.randperm(len(y_train), generator=generator)
        wait = time.perf_counter() - t0
        for start in range(0, len(order), cfg.batch_size):
            w0 = time.perf_counter()
            idx = order[start : start + cfg.batch_size]
            x, y = x_train[idx], y_train[idx]  # (B, 1, 28, 28), (B,)
            wait += time.perf_counter() - w0
            loss = criterion(model(x), y)  # (B, 10) logits -> scalar
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss.item()  # the loop reads every step's loss too
        t1, cpu1, busy1 = time.perf_counter(), time.thread_time(), _busy_s()
        batches = (
            {"x": x_val[s : s + cfg.batch_size], "y": y_val[s : s + cfg.batch_size]}
            for s in range(0, len(y_val), cfg.batch_size)
        )
        last = evaluate(task, batches, session)
        t2 = time.perf_counter()
        rows.append({"train": t1 - t0, "val": t2 - t1, "report": 0.0, "wait": wait, "first": 0.0, "epoch": t2 - t0,
                     "train_cpu": cpu1 - cpu0, "train_busy": (busy1 - busy0) / (t1 - t0)})
    return rows, last


def run_loop(config: dict[str, Any], train: Tensors, val: Tensors) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """`train_model` in this process under an ArraySession: per-epoch phases and the history."""
    session = _TimedArraySession({"train": (train[0].numpy(), train[1].numpy()), "val": (val[0].numpy(), val[1].numpy())})
    history = train_model(config, session)
    return phases(session.stamps), history


# ---------------------------------------------------------------------------- main


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def _verdict(met: bool, missed_by: str) -> str:
    return "met" if met else f"missed ({missed_by})"


def _cpu_table(windows: dict[str, dict[str, Any]], top: int = 9) -> str:
    """Cores used by each process group in each window; the busiest `top` groups, the rest
    summed, and the machine's total from /proc/stat."""
    names = {n for w in windows.values() for n in w["cores"]}
    ranked = sorted(names, key=lambda n: -max(w["cores"].get(n, 0.0) for w in windows.values()))
    shown, rest = ranked[:top], ranked[top:]
    rows = [[n, *(f"{w['cores'].get(n, 0.0):.2f}" for w in windows.values())] for n in shown]
    rows.append(["everything else", *(f"{sum(w['cores'].get(n, 0.0) for n in rest):.2f}" for w in windows.values())])
    rows.append(["whole machine (/proc/stat)", *(f"{w['machine']:.2f}" for w in windows.values())])
    return table(["process", *(f"{k} ({w['seconds']:.1f} s)" for k, w in windows.items())], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8, help="per side and per precision; epoch 0 is discarded")
    parser.add_argument("--passes", type=int, default=4, help="whole Ray Data passes over train, no model")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--ray-child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ray_child:
        return ray_child(args.ray_child)
    if args.epochs < 3:
        parser.error(f"--epochs must be >= 3 (the first is discarded as warm-up), got {args.epochs}")
    if args.passes < 2:
        parser.error(f"--passes must be >= 2 (the first is reported apart), got {args.passes}")

    torch.set_num_threads(1)  # as a 1-CPU Ray Train worker (OMP_NUM_THREADS=1)
    with tempfile.TemporaryDirectory(prefix="rayline-bench-cnn-") as tmp_name:
        tmp = Path(tmp_name)
        tables, state, rows, prep_s, png_ips = silver_mnist(tmp)
        training = TrainingConfig(
            epochs=args.epochs, batch_size=args.batch_size, optimizer={"name": "adam", "lr": 1e-3}
        ).model_dump()
        config = loop_config(MODEL, training, state.info)
        if config["model"] != EXPECTED_SPEC:
            raise RuntimeError(f"loop_config made {config['model']}, expected {EXPECTED_SPEC}")

        lake = Lake(str(tmp / "lake"))
        train, train_pack_s = packed(lake, "silver_train", tables["train"][1], state)
        val, _ = packed(lake, "silver_val", tables["val"][1], state)

        # In-process sides first, before Ray starts any process that competes for the cores.
        print("plain PyTorch ...", flush=True)
        plain_rows, plain_last = run_plain(config, train, val)
        precision: dict[str, tuple[list[dict[str, float]], list[dict[str, float]]]] = {}
        for p in ("fp32", "bf16"):
            print(f"train_model in process, {p} ...", flush=True)
            precision[p] = run_loop({**config, "training": {**training, "precision": p}}, train, val)

        scale = silver_fashion(tmp)
        spec = {"tables": tables, "state": state.to_dict(), "config": config, "batch_size": args.batch_size,
                "passes": args.passes, "storage": str(tmp / "runs"), "lake": str(tmp / "lake"),
                "scale": scale and {"tables": scale[0], "state": scale[1].to_dict()}}
        print("plain PyTorch again, in a fresh process ...", flush=True)
        fresh = run_child(__file__, {**spec, "mode": "plain"}, tmp, "plain", "the plain loop in a fresh process",
                          {**os.environ, "OMP_NUM_THREADS": "1"}, _CHILD_TIMEOUT_S)
        print("Ray Train (subprocess) ...", flush=True)
        ray_out = run_ray({**spec, "mode": "ray"}, tmp)
        # The plain loop once more after Ray has stopped: the machine's speed drifts by several
        # percent over a minute, and a baseline on both sides of the Ray run cancels a steady drift.
        print("plain PyTorch again, in this process ...", flush=True)
        plain_after_rows, _ = run_plain(config, train, val)

    n_train, n_val = len(train[1]), len(val[1])
    plain = plain_rows[1:] + plain_after_rows[1:]  # steady epochs before and after the Ray run
    loop = precision["fp32"][0][1:]
    ray_rows = phases(ray_out["stamps"])
    ray_steady = ray_rows[1:]
    plain_med, loop_med, ray_med = (_median(r, "epoch") for r in (plain, loop, ray_steady))
    ratio = ray_med / plain_med

    # ---- 1. epoch time
    def epoch_line(name: str, rws: list[dict[str, float]], threads: int, acc: float) -> list[object]:
        return [
            name, threads, f"{_median(rws, 'epoch'):.3f}", f"{_median(rws, 'epoch') / plain_med:.3f}",
            f"{min(r['epoch'] for r in rws):.3f}", f"{max(r['epoch'] for r in rws):.3f}",
            f"{_median(rws, 'train'):.3f}", f"{_median(rws, 'val'):.3f}", f"{_median(rws, 'report'):.3f}",
            f"{_median(rws, 'wait'):.3f}", f"{_median(rws, 'train_cpu'):.3f}", f"{_median(rws, 'train_busy'):.2f}",
            f"{acc:.4f}",
        ]

    epochs_table = table(
        ["loop", "torch threads", "median epoch s", "ratio to plain", "min s", "max s", "train phase s",
         "val phase s", "report s", "batch wait s", "train phase, thread CPU s", "train phase, cores busy (machine)",
         "val accuracy (last epoch)"],
        [
            epoch_line("plain PyTorch, before and after the Ray run (pooled)", plain, 1, plain_last["val_accuracy"]),
            epoch_line("plain PyTorch, before the Ray run", plain_rows[1:], 1, plain_last["val_accuracy"]),
            epoch_line("plain PyTorch, after the Ray run", plain_after_rows[1:], 1, plain_last["val_accuracy"]),
            epoch_line("plain PyTorch, fresh process, OMP_NUM_THREADS=1", fresh["rows"][1:], fresh["threads"],
                       fresh["last"]["val_accuracy"]),
            epoch_line("train_model, ArraySession (no Ray)", loop, torch.get_num_threads(),
                       precision["fp32"][1][-1]["val_accuracy"]),
            epoch_line("Ray Train, 1 worker (make_trainer)", ray_steady, ray_out["threads"],
                       ray_out["history"][-1]["val_accuracy"]),
        ],
    )
    first_report = ray_rows[0]["end"]
    startup_table = table(
        ["Ray run", "ray.init s", "datasets() s", "fit() -> worker fn entered s", "worker entered -> 1st train batch s",
         "epoch 0 s", "of it waiting for batches s", "fit() -> 1st report s", "last report -> fit() returns s",
         "fit() total s"],
        [[
            "Ray Train, 1 worker", f"{ray_out['ray_init_s']:.2f}", f"{ray_out['datasets_s']:.2f}",
            f"{ray_out['entered'] - ray_out['fit_called']:.2f}",
            f"{ray_rows[0]['start'] - ray_out['entered'] + ray_rows[0]['first']:.2f}",
            f"{ray_rows[0]['epoch']:.2f}", f"{ray_rows[0]['wait']:.2f}",
            f"{first_report - ray_out['fit_called']:.2f}", f"{ray_out['fit_returned'] - ray_rows[-1]['end']:.2f}",
            f"{ray_out['fit_returned'] - ray_out['fit_called']:.2f}",
        ]],
    )

    # ---- 2. images per second
    passes = ray_out["data"]["passes"]
    later = passes[1:]
    data_s = statistics.median(p["s"] for p in later)
    data_ips = n_train / data_s
    step_s = _median(plain, "train") - _median(plain, "wait")
    model_ips = n_train / step_s
    data_x = data_ips / model_ips
    pack_ips = n_train / train_pack_s
    bad_counts = [p["images"] for p in passes if p["images"] != n_train]
    if bad_counts:
        raise RuntimeError(f"a Ray Data pass over train yielded {bad_counts} images, expected {n_train}")
    expected_sum = float(train[0].sum(dtype=torch.float64))
    checksum_ok = all(abs(p["checksum"] - expected_sum) <= 1e-6 * max(1.0, abs(expected_sum)) for p in passes)
    ray_train_ips = n_train / (_median(ray_steady, "train") - _median(ray_steady, "wait"))
    scale_passes = ray_out.get("scale", {}).get("passes", [])
    streamed_passes = ray_out.get("streamed", {}).get("passes", [])
    scale_ips, streamed_ips = (
        ps[1]["images"] / statistics.median(p["s"] for p in ps[1:]) if ps else None
        for ps in (scale_passes, streamed_passes)
    )
    scale_x, streamed_x = (ips / model_ips if ips else None for ips in (scale_ips, streamed_ips))
    n_scale = scale_passes[0]["images"] if scale_passes else 0
    # The rows and notes say which splits were cached: check that they were.
    kept = {key: ray_out[key]["cached_bytes"] is not None for key in ("data", "scale", "streamed") if key in ray_out}
    if kept != {"data": True, **({"scale": True, "streamed": False} if scale_passes else {})}:
        raise RuntimeError(f"expected MNIST and Fashion-MNIST cached and the streamed split not, got {kept}")
    scale_counts = [p["images"] for p in scale_passes + streamed_passes]
    if any(n != n_scale for n in scale_counts):
        raise RuntimeError(f"Fashion-MNIST passes yielded {scale_counts} images")
    # Cached and streamed passes pack the same images: their sums agree.
    scale_sums = [p["checksum"] for p in scale_passes + streamed_passes]
    scale_checksum_ok = all(abs(c - scale_sums[0]) <= 1e-6 * max(1.0, abs(scale_sums[0])) for c in scale_sums)
    row_bytes = state.packed_row_bytes  # Fashion-MNIST's images have MNIST's shape
    if scale is not None and scale[1].packed_row_bytes != row_bytes:
        raise RuntimeError(f"Fashion-MNIST packs {scale[1].packed_row_bytes} bytes a row, MNIST {row_bytes}")

    def pass_line(name: str, ps: list[dict[str, float]]) -> list[object]:
        def med(f: Any) -> float:
            return statistics.median(f(p) for p in ps)

        return [
            name, f"{med(lambda p: p['s']):.3f}", f"{ps[0]['images'] / med(lambda p: p['s']):,.0f}",
            f"{med(lambda p: p['first_s']):.3f}",
            f"{med(lambda p: (p['images'] - p['first_images']) / (p['s'] - p['first_s'])):,.0f}",
            f"{med(lambda p: p['cpu_s'] / p['s']):.2f}", f"{med(lambda p: p['busy_s'] / p['s']):.2f}",
            f"{med(lambda p: p['started']):.0f}",
        ]

    rate_table = table(
        ["what", "seconds per pass over train", "images/s", "to first batch s", "images/s after the first batch",
         "cores used (Ray tree)", "cores busy (machine)", "processes started"],
        [
            pass_line("Ray Data image path, MNIST (cached), first pass", passes[:1]),
            pass_line(f"Ray Data image path, MNIST (cached), passes 2-{len(passes)} (median)", later),
            *([pass_line(f"same path, Fashion-MNIST's {n_scale:,} train images (cached), passes 2-3 (median)",
                         scale_passes[1:])] if scale_passes else []),
            *([pass_line(f"the same {n_scale:,} images streamed from Delta every pass, passes 2-3 (median)",
                         streamed_passes[1:])] if streamed_passes else []),
            ["pack alone in process (`ImageState.batch_inputs`: uint8 pixels to normalised float32, 1 core)",
             f"{train_pack_s:.4f}", f"{pack_ips:,.0f}", "", "", "", "", ""],
            ["PNG decode and pack in process (`ImageState.inputs` on bronze's PNGs, what the read tasks ran before "
             "silver held pixels; 1 core)", f"{n_train / png_ips:.3f}", f"{png_ips:,.0f}", "", "", "", "", ""],
            ["model: forward+backward+step, plain loop (1 thread)", f"{step_s:.3f}", f"{model_ips:,.0f}",
             "", "", "", "", ""],
            ["model: train phase in Ray Train steady epochs, less batch wait", f"{n_train / ray_train_ips:.3f}",
             f"{ray_train_ips:,.0f}", "", "", "", "", ""],
        ],
    )

    cpu_table = _cpu_table(ray_out["cpu"])

    # ---- 3. precision
    def precision_line(p: str) -> list[object]:
        rws, history = precision[p]
        steady = rws[1:]
        last = history[-1]
        return [p, f"{_median(steady, 'epoch'):.3f}", f"{_median(steady, 'epoch') / _median(loop, 'epoch'):.2f}",
                f"{_median(steady, 'train'):.3f}", f"{_median(steady, 'val'):.3f}", f"{rws[0]['epoch']:.3f}",
                f"{last['val_accuracy']:.4f}", f"{last['val_loss']:.4f}", f"{last['train_loss']:.4f}"]

    precision_table = table(
        ["training.precision", "median epoch s", "ratio to fp32", "train phase s", "val phase s", "epoch 0 s",
         f"val accuracy after {args.epochs} epochs", "val loss", "train loss (last epoch)"],
        [precision_line(p) for p in ("fp32", "bf16")],
    )
    bf16_x = _median(precision["bf16"][0][1:], "epoch") / _median(loop, "epoch")
    acc_diff = precision["bf16"][1][-1]["val_accuracy"] - precision["fp32"][1][-1]["val_accuracy"]

    ratio_verdict = _verdict(ratio <= TARGET_RATIO, f"{ratio:.3f} > {TARGET_RATIO:.2f}, "
                             f"{(ratio / TARGET_RATIO - 1) * 100:.1f}% over")
    each = [ray_med / _median(rows, "epoch") for rows in (plain_rows[1:], plain_after_rows[1:], fresh["rows"][1:])]
    straddles = min(each) <= TARGET_RATIO < max(each)
    ratio_verdict += (f"{'; within the run-to-run noise of this machine' if straddles else ''} (against each plain run "
                      f"alone, before / after / fresh process: {' / '.join(f'{r:.3f}' for r in each)})")

    def data_verdict(x: float) -> str:
        return _verdict(x >= TARGET_DATA_X,
                        f"{x:.2f}x < {TARGET_DATA_X:.0f}x, {(1 - x / TARGET_DATA_X) * 100:.0f}% short")

    verdicts = {"ratio": ratio_verdict, "data": data_verdict(data_x)}
    if scale_x is not None and streamed_x is not None:
        verdicts.update(scale=data_verdict(scale_x), streamed=data_verdict(streamed_x))
    # Another job on the 2 cores skews a side: say so where the verdict is read.
    plain_busy = _median(plain, "train_busy")
    for window, key in (("steady epochs", "ratio"), ("MNIST passes 2+", "data"), *((w, k) for k, w in
                        SCALE_WINDOWS.items() if k in verdicts)):
        other = _window(ray_out["cpu"][window], "elsewhere")
        if other > 0.1 or plain_busy > 1.1:
            verdicts[key] += (f"; **not a clean measurement**: other processes used {other:.2f} cores during the Ray "
                              f"{window}, the machine {plain_busy:.2f} cores during the plain train phases (1.00 is "
                              "that loop alone)")
    mb = row_bytes / 1e6
    summary = (
        f"Workload: the 5,000 bundled MNIST digits (`write_bundled_images` -> `read_npz` -> `prepare_images` with "
        f"the split of conf/pipelines/mnist_cnn.yaml, 0.8/0.1/0.1 stratified, seed 0, `ImageConfig(channels=1)`, no "
        f"augmentation -> `write_silver`; {rows['train']:,} train / {rows['val']:,} val images, {prep_s:.1f} s), "
        f"LeNet-5 `{json.dumps(config['model'])}`, Adam lr 1e-3, batch size {args.batch_size}, fp32, "
        f"{args.epochs} epochs per side, epoch 0 discarded ({args.epochs - 1} steady epochs each). Plain first "
        f"epoch (discarded): {plain_rows[0]['epoch']:.3f} s.\n\n"
        f"| target | measured | verdict |\n|---|---|---|\n"
        f"| 1. Ray Train epoch ÷ plain epoch ≤ {TARGET_RATIO:.2f} (medians, steady epochs) | **{ratio:.3f}** "
        f"({ray_med:.3f} s vs {plain_med:.3f} s) | {verdicts['ratio']} |\n"
        f"| 2. Ray Data image path ≥ {TARGET_DATA_X:.0f}x the images/s the model consumes: MNIST's {n_train:,} train "
        f"images as the pipeline runs them (cached: {n_train * mb:.1f} MB packed) | **{data_x:.2f}x** "
        f"({data_ips:,.0f} vs {model_ips:,.0f} images/s) | {verdicts['data']} |\n"
        + (f"| 2b. the same at scale: Fashion-MNIST's {n_scale:,} train images as the pipeline runs them (cached: "
           f"{n_scale * mb:.0f} MB packed) | **{scale_x:.2f}x** ({scale_ips:,.0f} images/s) | {verdicts['scale']} |\n"
           f"| 2c. the same {n_scale:,} images streamed from Delta every pass (as a split above "
           f"{CACHE_BELOW_BYTES / 2**20:.0f} MiB packed is) | **{streamed_x:.2f}x** ({streamed_ips:,.0f} images/s) | "
           f"{verdicts['streamed']} |\n"
           if scale_x is not None and streamed_x is not None else "")
        + f"| 3. bf16 autocast vs fp32 on CPU (`train_model`, ArraySession, in process) | epoch time **{bf16_x:.2f}x** "
        f"fp32's; val accuracy {acc_diff * 100:+.2f} points after {args.epochs} epochs | (no target) |\n"
    )
    body = (
        f"{summary}\n### 1. Epoch time\n\n{epochs_table}\n\nStart-up (not in the ratio):\n\n{startup_table}\n\n"
        f"### 2. Images per second ({n_train:,} train images, batch size {args.batch_size})\n\n{rate_table}\n\n"
        f"### Where the CPU went in the Ray run (cores: CPU seconds per second; the Train windows sampled every "
        f"{ray_out['sampler']['interval_s']:g} s, the pass windows read before and after each pass)\n\n{cpu_table}\n\n"
        f"### 3. bf16 autocast vs fp32 (CPU, 1 torch thread)\n\n{precision_table}\n\n"
        + "\n".join(_notes(SimpleNamespace(
            args=args, plain=plain, plain_rows=plain_rows, loop=loop, ray_rows=ray_rows, ray_steady=ray_steady,
            ray_out=ray_out, passes=passes, plain_med=plain_med, loop_med=loop_med, ray_med=ray_med,
            checksum_ok=checksum_ok, pack_ips=pack_ips, png_ips=png_ips, model_ips=model_ips, data_ips=data_ips,
            bf16_x=bf16_x, acc_diff=acc_diff, n_val=n_val, n_train=n_train, fresh=fresh["rows"][1:],
            plain_before=plain_rows[1:], plain_after=plain_after_rows[1:], row_bytes=row_bytes, n_scale=n_scale,
            scale_x=scale_x, streamed_x=streamed_x, scale_checksum_ok=scale_checksum_ok, data_x=data_x,
        ))) + "\n"
    )
    print(body)
    print(f"per-epoch seconds, plain PyTorch: {[round(r['epoch'], 3) for r in plain_rows]}")
    print(f"per-epoch seconds, plain PyTorch after Ray: {[round(r['epoch'], 3) for r in plain_after_rows]}")
    print(f"per-epoch seconds, plain PyTorch, fresh process: {[round(r['epoch'], 3) for r in fresh['rows']]}")
    print(f"per-epoch seconds, train_model fp32: {[round(r['epoch'], 3) for r in precision['fp32'][0]]}")
    print(f"per-epoch seconds, train_model bf16: {[round(r['epoch'], 3) for r in precision['bf16'][0]]}")
    print(f"per-epoch seconds, Ray Train: {[round(r['epoch'], 3) for r in ray_rows]}")
    for key, name in (("data", "MNIST"), ("scale", "Fashion-MNIST cached"), ("streamed", "Fashion-MNIST streamed")):
        if key in ray_out:
            print(f"Ray Data passes, {name}: datasets() {ray_out[key]['datasets_s']:.2f} s, object store "
                  f"{ray_out[key]['cached_bytes']} bytes, passes "
                  f"{[{k: round(v, 3) for k, v in p.items() if k != 'groups'} for p in ray_out[key]['passes']]}")
    print(f"Ray Data stats of the last pass:\n{ray_out['data']['stats']}")
    if not args.no_write:
        write_section("cnn_overhead", "LeNet-5 on MNIST: Ray Train, Ray Data images, bf16 (cnn_overhead.py)", body)
        print("wrote benchmarks/RESULTS.md")
    return 0


def _role(name: str) -> str:
    """What a process group is to this run: elsewhere (not under it), driver (the subprocess),
    worker (the Train worker), tasks (Ray Data's read tasks) or ray (the rest of Ray)."""
    if name.endswith(ELSEWHERE):
        return "elsewhere"
    if name == "python cnn_overhead.py":
        return "driver"
    if name == "ray::RayTrainWorker":
        return "worker"
    if name == "ray::IDLE" or "ReadParquet" in name or "MapBatches" in name:
        return "tasks"
    return "ray"


def _window(cpu: dict[str, Any], *roles: str) -> float:
    """Cores used in one sampled window by the process groups with these roles."""
    return sum(c for name, c in cpu["cores"].items() if _role(name) in roles)


def _scale_notes(m: SimpleNamespace) -> list[str]:
    """Rows 2b and 2c: what Fashion-MNIST's cached and streamed passes spent, and the numbers
    from before silver held pixels."""
    cached, streamed = (m.ray_out["cpu"][SCALE_WINDOWS[k]] for k in ("scale", "streamed"))

    def per_pass(cpu: dict[str, Any], *roles: str) -> float:
        return _window(cpu, *roles) * cpu["seconds"] / 2  # the window spans passes 2-3

    scale = m.ray_out["scale"]
    return [
        f"- At scale: Fashion-MNIST's {m.n_scale:,} train images pack to {m.n_scale * m.row_bytes / 1e6:.0f} MB, "
        f"under the {CACHE_BELOW_BYTES / 2**20:.0f} MiB limit, so `datasets()` reads and packs them once "
        f"({scale['datasets_s']:.1f} s; the object store then holds {scale['cached_bytes'] / 1e6:.0f} MB) and a "
        f"pass (row 2b, {m.scale_x:.2f}x) only re-batches them in the driver: {per_pass(cached, 'driver'):.2f} CPU s "
        f"per pass, Ray Data's tasks {per_pass(cached, 'tasks'):.2f}. Row 2c ({m.streamed_x:.2f}x) is the path of a "
        f"split above the limit (above {CACHE_BELOW_BYTES // m.row_bytes:,} images of this shape): every pass reads "
        f"the Parquet files and packs in the read tasks ({per_pass(streamed, 'tasks'):.2f} CPU s per pass, against "
        f"{m.n_scale / m.pack_ips:.2f} s for the pack alone in process) while the driver re-batches "
        f"({per_pass(streamed, 'driver'):.2f} CPU s, {per_pass(streamed, 'driver') / per_pass(cached, 'driver'):.1f}x "
        "what it spends on a cached pass); pack tasks are capped at one per cluster CPU (`_pack_tasks` in "
        f"components/training/ray_session.py), and the split is read in blocks of about {BLOCK_BYTES / 2**20:.0f} "
        "MiB packed (`BLOCK_BYTES`): under Ray's default cut, some 200 blocks of 240 rows each, the driver's "
        "per-block work held row 2c at 2.80-3.28x over five runs (2026-11-30). Processes not under this run meanwhile: "
        f"{_window(cached, 'elsewhere'):.2f} and {_window(streamed, 'elsewhere'):.2f} cores.",
        "- Silver tables holding the decoded, resized uint8 pixels is the lever the previous run of this benchmark "
        "named, now built: the read tasks no longer decode a PNG with Pillow every pass "
        f"({1e6 / m.png_ips:.0f} µs per image in process, above) but only scale the pixels "
        f"({1e6 / m.pack_ips:.1f} µs). Before it (this section at commit a471003, image splits never cached), the "
        f"same passes measured 0.93x at 4,000 images and 1.79x at 48,000; now {m.data_x:.2f}x at "
        f"{m.n_train:,} and {m.scale_x:.2f}x at {m.n_scale:,} cached, {m.streamed_x:.2f}x streamed.",
    ]


def _notes(m: SimpleNamespace) -> list[str]:
    """What each row is and, from this run's numbers (`m`), what makes up each gap."""
    plain, ray_steady, ray_out, passes = m.plain, m.ray_steady, m.ray_out, m.passes
    gap = m.ray_med - m.plain_med
    loop_gap = m.loop_med - m.plain_med
    steady, start, data = (ray_out["cpu"][k] for k in ("steady epochs", "fit() to the first train batch",
                                                         "MNIST passes 2+"))
    other_steady = _window(steady, "elsewhere")
    ray_background = _window(steady, "ray", "tasks")
    ours = ("driver", "worker", "tasks", "ray")
    contaminated = (
        f" **Other work shared the 2 cores during these epochs ({other_steady:.2f} cores of processes not under "
        "this run): the Ray row is not a clean measurement.**" if other_steady > 0.1 else
        " Nothing else ran on the machine meanwhile (processes not under this run: "
        f"{other_steady:.2f} cores)."
    )
    per_pass = data["seconds"] / max(1, len(passes) - 1)
    sampler = ray_out["sampler"]
    pack_s = m.n_train / m.pack_ips
    pass_cpu = _window(data, "driver", "tasks", "ray") * per_pass
    return [
        "- Epoch time is report end to report end for the loop rows (everything the loop does per epoch: train "
        "pass, `evaluate` on val, `save_checkpoint` to a temp dir, the report); the plain loop does the train pass "
        "and the same `evaluate` and writes no checkpoint. The baseline (\"ratio to plain\") pools the steady epochs "
        "of the plain loop run in this process before and after the Ray run. \"val phase\" includes the checkpoint "
        "write; \"report s\" is the time blocked in `ray.train.report` (checkpoint persisted to the run's storage "
        "path). Every side ran with 1 torch thread.",
        f"- The gap Ray Train − plain, {gap * 1000:+.0f} ms per epoch (medians), splits into the loop itself "
        f"({loop_gap * 1000:+.0f} ms: `train_model` under an in-memory ArraySession against plain, i.e. the task, "
        f"stepper, checkpoint write) and Ray ({(m.ray_med - m.loop_med) * 1000:+.0f} ms: Ray Train against "
        f"`train_model` in process). In Ray Train: report {_median(ray_steady, 'report') * 1000:.0f} ms, "
        f"val phase {(_median(ray_steady, 'val') - _median(plain, 'val')) * 1000:+.0f} ms and train phase "
        f"{(_median(ray_steady, 'train') - _median(plain, 'train')) * 1000:+.0f} ms against plain (medians; the "
        f"parts need not add up exactly). The training thread's own CPU time in the train phase: "
        f"{_median(ray_steady, 'train_cpu'):.3f} s in Ray Train, {_median(m.loop, 'train_cpu'):.3f} s in process, "
        f"{_median(plain, 'train_cpu'):.3f} s plain: train-phase wall time above it is time the thread waited for a "
        "core (or for the GIL, held by another thread of its process). During the steady Ray epochs the worker "
        f"process used {_window(steady, 'worker'):.2f} cores, the rest of Ray {ray_background:.2f} (controller "
        "polls, raylet, GCS, Ray Data's actors) and the subprocess's driver, blocked in `fit()`, "
        f"{_window(steady, 'driver'):.2f}.{contaminated} In the plain and in-process train phases the machine had "
        f"{_median(plain, 'train_busy'):.2f} and {_median(m.loop, 'train_busy'):.2f} cores busy (1.00: that loop "
        "alone). The same plain loop in a second, fresh process (OMP_NUM_THREADS=1 in its environment, as Ray "
        f"gives a 1-CPU worker) took {_median(m.fresh, 'epoch'):.3f} s per epoch "
        f"({(_median(m.fresh, 'epoch') / m.plain_med - 1) * 100:+.1f}% against the pooled in-process plain runs; "
        f"train-phase thread CPU {_median(m.fresh, 'train_cpu'):.3f} s), and the in-process plain loop took "
        f"{_median(m.plain_before, 'epoch'):.3f} s before the Ray run and {_median(m.plain_after, 'epoch'):.3f} s "
        "after it: identical code differs by that much between processes and minutes on this machine (a VM), which "
        "bounds how precisely one run can place the ratio against 1.10. Steady Ray epochs spread over "
        f"{(max(r['epoch'] for r in ray_steady) - min(r['epoch'] for r in ray_steady)) * 1000:.0f} ms, plain over "
        f"{(max(r['epoch'] for r in plain) - min(r['epoch'] for r in plain)) * 1000:.0f} ms (before and after "
        "pooled).",
        f"- Image splits that pack small are materialized: `silver_datasets` caches a split whose packed size (rows "
        f"× `packed_row_bytes`, {m.row_bytes:,} bytes per 28x28x1 image: float32 pixels and an int64 label) is at "
        f"most {CACHE_BELOW_BYTES / 2**20:.0f} MiB, so MNIST's train ({m.n_train * m.row_bytes / 1e6:.1f} MB) and "
        f"val splits are read from Delta and packed once, inside `datasets()` ({ray_out['datasets_s']:.2f} s, before "
        "`fit()`). Epoch 0 streams the worker's shard of those blocks from the object store; `ShardBatches` then "
        f"keeps it (train shard kept in memory: {'yes' if ray_out['kept'] else 'NO'}), so epochs 1+ reshuffle "
        f"in-memory tensors like the plain loop (batch wait {_median(ray_steady, 'wait') * 1000:.0f} ms vs "
        f"{_median(plain, 'wait') * 1000:.0f} ms plain). Epoch 0 took {m.ray_rows[0]['epoch']:.2f} s, of which "
        f"{m.ray_rows[0]['wait']:.2f} s waiting for batches (the plain epoch 0 took {m.plain_rows[0]['epoch']:.2f} s). "
        f"From `fit()` to the first training batch ({start['seconds']:.1f} s) the processes under this run used "
        f"{_window(start, *ours):.2f} cores on average, "
        f"{_window(start, *ours) * start['seconds']:.0f} CPU seconds, and "
        f"{start['started']} processes started (the Train controller, the worker, Ray Data's SplitCoordinator and "
        "Train's helper actors in the CPU table): each is a new Python process that imports Ray (and, for the "
        "worker, torch and the project) before it does anything; with 2 cores they queue behind each other.",
        f"- Images/s: a Ray Data pass is `datasets()[\"train\"].iter_torch_batches(batch_size={m.args.batch_size})` "
        "in the subprocess's driver after the Train run (once the machine was below 0.3 busy cores again, "
        f"{ray_out['settle_s']:.1f} s after `fit()` returned), no model. For a cached split (rows 2 and 2b) "
        "`datasets()` has already read and packed it, and a pass re-batches the packed blocks in the object store "
        f"({ray_out['data']['cached_bytes'] / 1e6:.1f} MB for MNIST's train split) into batches of "
        f"{m.args.batch_size} in the driver; for a streamed one (row 2c) read tasks read the table's Parquet files "
        "and pack (`ImageState.batch_inputs`) while the driver iterates. The first pass is listed apart. \"cores "
        "used\" is the CPU seconds of the subprocess and every Ray process under it per second of the pass; \"cores "
        "busy\" the same for the whole machine (the 2 cores are the ceiling). The pixels of every MNIST pass sum to "
        f"those packed in process: {'yes' if m.checksum_ok else 'NO'}"
        + (f"; those of every streamed Fashion-MNIST pass to the cached ones: {'yes' if m.scale_checksum_ok else 'NO'}"
           if m.n_scale else "")
        + ". The model rate is the plain loop's train phase less its batch indexing: forward, backward, Adam step "
        "and `loss.item()` on in-memory tensors, 1 thread.",
        f"- What a Ray Data pass costs: packing the {m.n_train:,} images takes {pack_s:.4f} CPU s in process "
        f"({m.pack_ips:,.0f} images/s on one core, {m.pack_ips / m.model_ips:.0f}x what the model consumes; decoding "
        f"them from PNG as well, as the read tasks did before silver held pixels, runs at {m.png_ips:,.0f} images/s, "
        f"{m.png_ips / m.model_ips:.1f}x). A later MNIST pass takes {m.n_train / m.data_ips:.3f} s: "
        f"{statistics.median(p['first_s'] for p in passes[1:]):.3f} s until the first batch (a new streaming "
        "execution over the cached blocks) and the rest at "
        f"{statistics.median((p['images'] - p['first_images']) / (p['s'] - p['first_s']) for p in passes[1:]):,.0f} "
        "images/s. Per pass the driver iterating the batches (re-batching blocks into "
        f"{m.args.batch_size}, numpy to torch) used {_window(data, 'driver') * per_pass:.2f} CPU s, Ray Data's tasks "
        f"{_window(data, 'tasks') * per_pass:.2f} and the rest of Ray {_window(data, 'ray') * per_pass:.2f}, against "
        f"the {pack_s:.4f} s the pack itself needs"
        + (f" (done once, in `datasets()`): a pass spends {pass_cpu / pack_s:.0f}x the pack's CPU time on Ray Data's "
           "iteration, not on pixels" if pass_cpu > 5 * pack_s else "")
        + f" (processes not under this run meanwhile: {_window(data, 'elsewhere'):.2f} cores).",
        *(_scale_notes(m) if m.n_scale else []),
        "- Precision: `train_model` in this process under the project's `ArraySession` (in-memory tensors, no Ray; "
        "the checkpoint is still written every epoch), `training.precision` fp32 then bf16, same seed, data and "
        f"epochs. bf16 autocasts the forward pass and the loss of training and of `evaluate`; on this CPU "
        f"(avx512_bf16 {'present' if 'avx512_bf16' in Path('/proc/cpuinfo').read_text() else 'absent'}) its epoch "
        f"takes {m.bf16_x:.2f}x fp32's. Val accuracy: {m.acc_diff * 100:+.2f} points "
        f"({m.n_val} val images: one image is {100 / m.n_val:.2f} points).",
        f"- The CPU table's Train windows come from a thread in the subprocess's driver that reads /proc every "
        f"{sampler['interval_s']:g} s ({sampler['own_cpu_s'] / sampler['seconds']:.3f} cores of its own; it stops "
        "before the passes), its pass windows from reads of /proc before and after each pass (an MNIST pass is "
        "shorter than one sampling interval); a process is grouped by its Ray title (a task's CPU is counted under "
        "the title its worker has at the end of the window, often `ray::IDLE`), and processes that exit inside a "
        "window are missed.",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
