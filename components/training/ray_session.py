"""Ray's side of the training loop: where batches come from and where reports go.

`TrainSession` runs inside Ray Train workers (data-parallel, DDP over gloo or NCCL);
`TuneSession` runs the loop directly inside a Ray Tune trial, for one-worker searches,
without starting a worker group per trial. Both stream the silver Delta tables through
Ray Data: workers receive shards of a streaming dataset, never a pickled DataFrame.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import ray
import ray.data
import ray.train
import ray.train.torch
import ray.tune
import torch
import torch.nn as nn
from ray.train import Checkpoint, CheckpointConfig, RunConfig, ScalingConfig
from deltalake import DeltaTable
from ray.train.torch import TorchConfig, TorchTrainer

from components.data.fitted_state import batch_decoder, label_decoder, packed_row_bytes
from components.data.preparation import LABEL
from components.evaluation.outcome import TrialOutcome
from components.training.array_session import memory_batches
from components.training.loop import train_model
from components.training.tasks import Batch


@dataclass(frozen=True)
class SilverInputs:
    """What a training run reads: the train/val silver tables at pinned versions."""

    tables: dict[str, tuple[str, int]]  # split -> (uri, version)
    columns: list[str]  # model input columns
    label_dtype: str  # int64 for classification, float32 for regression
    inputs: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None  # a fitted state's batch_inputs
    labels: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None  # its batch_labels (tags per token)
    packed_row_bytes: int | None = None  # one packed row's bytes, where every row packs to the same size

    @classmethod
    def of(cls, tables: dict[str, tuple[str, int]], state: Any) -> "SilverInputs":
        """The inputs a fitted state (FeatureState, ImageState, ...) describes: table rows are
        model inputs as they are; other modalities are decoded by the state in read tasks."""
        return cls(tables=tables, columns=state.columns, label_dtype=state.label_dtype, inputs=batch_decoder(state),
                   labels=label_decoder(state), packed_row_bytes=packed_row_bytes(state))

    def datasets(self) -> dict[str, ray.data.Dataset]:
        return silver_datasets(self.tables, self.columns, LABEL, self.label_dtype, self.inputs, self.labels,
                               self.packed_row_bytes)


def silver_datasets(
    tables: dict[str, tuple[str, int]],
    features: list[str],
    target: str,
    label_dtype: str,
    inputs: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None,
    labels: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None,
    packed_row_bytes: int | None = None,
) -> dict[str, ray.data.Dataset]:
    """Ray Datasets over Delta tables pinned at versions: {split: (uri, version)} -> {split: ds}.

    Each batch becomes {"x": inputs, "y": (B,) label_dtype}: the feature columns as (B, F)
    float32, or what `inputs` makes of them (images' pixels scaled and normalised to
    (B, C, H, W); token ids padded to (B, T)), and the labels, or what `labels` makes of
    them (tags padded to (B, T)). The packing runs inside Ray Data's streaming read tasks on the cluster,
    not in the training loop or the driver. Needs a connected Ray: splits that pack small
    are materialized here. `packed_row_bytes`: one packed row's size, where every row packs
    to the same size (images).
    """

    def pack(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs(batch) if inputs is not None else np.stack([batch[c] for c in features], axis=1).astype(np.float32)
        y = labels(batch) if labels is not None else batch[target].astype(label_dtype)
        return {"x": x, "y": y}

    datasets = {}
    for split, (uri, version) in tables.items():
        # Packed sizes: a table's rows as stored; rows of a known packed size (images: pixels
        # as float32) by count; others (token ids, padded per batch) are not known ahead.
        rows, stored = _table_size(uri, version)
        packed = (rows * packed_row_bytes if packed_row_bytes and rows is not None
                  else stored if inputs is None else None)
        # Rows of a known packed size are cut into blocks of about BLOCK_BYTES packed: Ray's
        # default of some 200 blocks per read made 240-row blocks of 48,000 images, and the
        # driver's per-block work then halved a pass's images/s (benchmarks/RESULTS.md).
        blocks = max(_cluster_cpus(), math.ceil(packed / BLOCK_BYTES)) if packed_row_bytes and packed else None
        ds = ray.data.read_delta(uri, version=version, columns=[*features, target], num_cpus=_DATA_CPUS,
                                 override_num_blocks=blocks)
        ds = ds.map_batches(pack, batch_format="numpy", num_cpus=_DATA_CPUS, compute=_pack_tasks())
        # A split that packs small is read and packed once into the object store; a large one
        # streams from Delta every epoch, never held whole. One whose packed size is not
        # known streams, and each worker keeps its shard when it turns out small (ShardBatches).
        small = packed is not None and packed <= CACHE_BELOW_BYTES
        datasets[split] = ds.materialize() if small else ds
    return datasets


CACHE_BELOW_BYTES = 256 * 2**20
BLOCK_BYTES = 64 * 2**20


def _table_size(uri: str, version: int) -> tuple[int | None, int]:
    """(rows, stored bytes) of a Delta table at `version`, from its log; rows None when a
    file was added without statistics."""
    actions = pa.table(DeltaTable(uri, version=version).get_add_actions(flatten=True))
    records = actions.column("num_records").to_pylist()
    rows = None if None in records else sum(records)
    return rows, sum(actions.column("size_bytes").to_pylist())


# Read and pack tasks are light; asking a whole CPU each would starve them whenever the
# trainers and Serve replicas on the same cluster hold all but a fraction of a CPU.
_DATA_CPUS = 0.25


def _pack_tasks() -> ray.data.TaskPoolStrategy:
    """At most one pack task per CPU of the cluster. A fractional CPU lets Ray run four per
    core, and a pack is not always light (tokenizing text; decoding the PNGs of snapshots
    written before silver held pixels): on 2 cores, 8 concurrent decode tasks delivered
    4,200 images/s where 2 delivered 16,000 (2026-11-30)."""
    return ray.data.TaskPoolStrategy(size=_cluster_cpus())


def _cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class ShardBatches:
    """Epochs over one worker's shard: streamed from Ray Data the first time; a shard that
    turns out smaller than `keep_below_bytes` is then kept in memory and reshuffled there,
    so later epochs cost what an in-memory loop costs. Larger shards stream every epoch."""

    def __init__(self, source: Any, keep_below_bytes: int = 256 * 2**20) -> None:
        self._source = source
        self._limit = keep_below_bytes
        self._kept: Batch | None = None

    def __call__(self, batch_size: int, shuffle: bool, seed: int) -> Iterator[Batch]:
        if self._kept is not None:
            yield from memory_batches(self._kept, batch_size, shuffle, seed)
            return
        parts: list[Batch] | None = []
        size = 0
        # A local shuffle buffer keeps epochs streaming; a global shuffle would re-read everything.
        for batch in self._source.iter_torch_batches(
            batch_size=batch_size,
            local_shuffle_buffer_size=batch_size * 16 if shuffle else None,
            local_shuffle_seed=seed if shuffle else None,
        ):
            if parts is not None:
                size += sum(t.nbytes for t in batch.values())
                parts = parts + [batch] if size <= self._limit else None
            yield batch
        if parts:
            self._kept = {key: torch.cat([p[key] for p in parts]) for key in parts[0]}


@contextlib.contextmanager
def _as_directory(checkpoint: Checkpoint | None) -> Iterator[str | None]:
    if checkpoint is None:
        yield None
        return
    with checkpoint.as_directory() as directory:
        yield directory


class TrainSession:
    """The loop's session inside a Ray Train worker."""

    def __init__(self) -> None:
        ctx = ray.train.get_context()
        self.world_rank = ctx.get_world_rank()
        self.world_size = ctx.get_world_size()
        self.device = ray.train.torch.get_device()
        self._shards: dict[str, ShardBatches] = {}

    def batches(self, split: str, batch_size: int, shuffle: bool, seed: int) -> Iterable[Batch]:
        if split not in self._shards:
            self._shards[split] = ShardBatches(ray.train.get_dataset_shard(split))
        return self._shards[split](batch_size, shuffle, seed)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return ray.train.torch.prepare_model(model)

    def latest_checkpoint(self) -> contextlib.AbstractContextManager[str | None]:
        return _as_directory(ray.train.get_checkpoint())

    def report(self, metrics: dict[str, float], checkpoint_dir: str | None) -> None:
        checkpoint = Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=checkpoint)


class TuneSession:
    """The loop's session run directly as a Ray Tune function trial (one worker)."""

    world_rank = 0
    world_size = 1

    def __init__(self, datasets: dict[str, ray.data.Dataset], use_gpu: bool) -> None:
        self._shards = {split: ShardBatches(ds) for split, ds in datasets.items()}
        self.device = torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")

    def batches(self, split: str, batch_size: int, shuffle: bool, seed: int) -> Iterable[Batch]:
        return self._shards[split](batch_size, shuffle, seed)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model.to(self.device)

    def latest_checkpoint(self) -> contextlib.AbstractContextManager[str | None]:
        return _as_directory(ray.tune.get_checkpoint())

    def report(self, metrics: dict[str, float], checkpoint_dir: str | None) -> None:
        checkpoint = ray.tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.tune.report(metrics, checkpoint=checkpoint)


def require_capacity(num_workers: int, use_gpu: bool, extra_cpus: float = 0.0) -> None:
    """Fail now, naming the setting, when the connected cluster cannot ever hold the workers:
    Ray would otherwise wait for resources that never come."""
    resources = ray.cluster_resources()
    kind, have = ("GPU", resources.get("GPU", 0)) if use_gpu else ("CPU", resources.get("CPU", 0))
    need = num_workers + (0 if use_gpu else extra_cpus)
    if have < need:
        raise ValueError(
            f"training.num_workers={num_workers} needs {need:g} {kind}s (one per worker"
            f"{', plus the trial driver' if extra_cpus else ''}); the Ray cluster has {have:g}"
        )


def train_loop_per_worker(config: dict[str, Any]) -> list[dict[str, float]]:
    """Ray Train worker entry point; rank 0's return value is the run's metric history."""
    return train_model(config, TrainSession())


def training_outcome(result: ray.train.Result, name: str) -> TrialOutcome:
    return TrialOutcome(
        trial_id=name,
        params={},
        history=list(result.return_value or []),
        checkpoint=result.checkpoint.path if result.checkpoint else None,
        error=str(result.error) if result.error else None,
        metrics=dict(result.metrics or {}),
    )


def make_trainer(
    config: dict[str, Any],
    datasets: dict[str, ray.data.Dataset],
    *,
    num_workers: int,
    use_gpu: bool,
    storage_path: str,
    name: str,
    callbacks: list[Any] | None = None,
) -> TorchTrainer:
    """A Train V2 TorchTrainer over the loop; a trainer with the same `storage_path`/`name`
    resumes from that run's latest checkpoint."""
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config=config,
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
        run_config=RunConfig(
            name=name,
            storage_path=storage_path,
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            callbacks=callbacks or [],
        ),
        datasets=datasets,
    )
