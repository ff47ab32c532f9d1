"""Ray's side of the training loop: where batches come from and where reports go.

`TrainSession` runs inside Ray Train workers (data-parallel, DDP over gloo or NCCL);
`TuneSession` runs the loop directly inside a Ray Tune trial, for one-worker searches,
without starting a worker group per trial. Both stream the silver Delta tables through
Ray Data: workers receive shards of a streaming dataset, never a pickled DataFrame.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import ray
import ray.data
import ray.train
import ray.train.torch
import ray.tune
import torch
import torch.nn as nn
from ray.train import Checkpoint, CheckpointConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from components.training.loop import Batch, train_model
from components.training.outcome import TrialOutcome


def silver_datasets(
    tables: dict[str, tuple[str, int]], features: list[str], target: str, label_dtype: str
) -> dict[str, ray.data.Dataset]:
    """Ray Datasets over Delta tables pinned at versions: {split: (uri, version)} -> {split: ds}.

    Each batch becomes {"x": (B, F) float32, "y": (B,) label_dtype}; the packing runs inside
    Ray Data's streaming read tasks, not in the training loop.
    """

    def pack(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = np.stack([batch[c] for c in features], axis=1).astype(np.float32)  # (B, F)
        return {"x": x, "y": batch[target].astype(label_dtype)}

    return {
        split: ray.data.read_delta(uri, version=version, columns=[*features, target], num_cpus=_DATA_CPUS).map_batches(
            pack, batch_format="numpy", num_cpus=_DATA_CPUS
        )
        for split, (uri, version) in tables.items()
    }


# Read and pack tasks are light; asking a whole CPU each would starve them whenever the
# trainers and Serve replicas on the same cluster hold all but a fraction of a CPU.
_DATA_CPUS = 0.25


def _iter_batches(source: Any, batch_size: int, shuffle: bool, seed: int) -> Iterator[Batch]:
    # A local shuffle buffer keeps epochs streaming; a global shuffle would re-read everything.
    yield from source.iter_torch_batches(
        batch_size=batch_size,
        local_shuffle_buffer_size=batch_size * 16 if shuffle else None,
        local_shuffle_seed=seed if shuffle else None,
    )


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

    def batches(self, split: str, batch_size: int, shuffle: bool, seed: int) -> Iterable[Batch]:
        return _iter_batches(ray.train.get_dataset_shard(split), batch_size, shuffle, seed)

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
        self._datasets = datasets
        self.device = torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")

    def batches(self, split: str, batch_size: int, shuffle: bool, seed: int) -> Iterable[Batch]:
        return _iter_batches(self._datasets[split], batch_size, shuffle, seed)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model.to(self.device)

    def latest_checkpoint(self) -> contextlib.AbstractContextManager[str | None]:
        return _as_directory(ray.tune.get_checkpoint())

    def report(self, metrics: dict[str, float], checkpoint_dir: str | None) -> None:
        checkpoint = ray.tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.tune.report(metrics, checkpoint=checkpoint)


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
