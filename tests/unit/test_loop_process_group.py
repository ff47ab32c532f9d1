"""The loop inside a torch process group, as Ray Train workers run it: a DDP-wrapped model,
the per-epoch collectives on the group's device, precision, checkpoints and resume.

Gloo on the CPU runs everywhere. Where a GPU is present, NCCL runs with fp16 (autocast and
the gradient scaler) and bf16, and the augmenter draws on the GPU. The group has one rank:
NCCL refuses two ranks on one GPU, and the collectives are the same calls at any size.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch.nn.parallel import DistributedDataParallel

import components.training.loop as loop
from components.data.modalities.info import DataInfo
from components.models.seq2seq import BOS_ID, EOS_ID
from components.training.loop import loop_config, train_model
from tests.unit.test_loop import MemorySession

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CASES = [
    pytest.param("gloo", "cpu", "bf16", id="gloo-cpu-bf16"),
    pytest.param("nccl", "cuda", "fp16", id="nccl-cuda-fp16", marks=needs_cuda),
    pytest.param("nccl", "cuda", "bf16", id="nccl-cuda-bf16", marks=needs_cuda),
]


class GroupSession(MemorySession):
    """Rank 0 of the current process group: a DDP model on `device`, digits unless told
    otherwise, every report kept with a copy of its checkpoint."""

    def __init__(self, device: str, resume_from: str | None = None, data: dict | None = None) -> None:
        data = data or _digits()
        super().__init__(*data["train"], resume_from=resume_from)
        self.data, self.device = data, torch.device(device)

    def prepare_model(self, model):
        on_gpu = self.device.type == "cuda"
        return DistributedDataParallel(model.to(self.device), device_ids=[torch.cuda.current_device()] if on_gpu else None)


def _digits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    x = (digits.images[order, None] / 16.0).astype(np.float32)
    y = digits.target[order].astype(np.int64)
    return {"train": (x[:1400], y[:1400]), "val": (x[1400:], y[1400:])}


@contextlib.contextmanager
def process_group(backend: str, device: str) -> Iterator[None]:
    """A one-rank process group of `backend`, torn down on leaving."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if device == "cuda":
        torch.cuda.set_device(0)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


@pytest.fixture
def reduced(monkeypatch) -> list[str]:
    """The device type of every tensor the loop all-reduces."""
    devices: list[str] = []
    all_reduce = dist.all_reduce

    def recording(tensor, *args, **kwargs):
        devices.append(tensor.device.type)
        return all_reduce(tensor, *args, **kwargs)

    monkeypatch.setattr(loop.dist, "all_reduce", recording)
    return devices


def _config(epochs: int, precision: str) -> dict:
    info = DataInfo(modality="image", task="classification", input_shape=(1, 8, 8),
                    classes=tuple(str(d) for d in range(10)))
    return loop_config(
        {"kind": "cnn", "params": {"arch": "lenet5"}},
        {"epochs": epochs, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.01},
         "precision": precision, "use_gpu": precision == "fp16", "grad_clip": 5.0},
        info,
        [{"type": "shift", "max": 0.1}, {"type": "noise", "std": 0.05}],
    )


@pytest.mark.parametrize(("backend", "device", "precision"), CASES)
def test_the_loop_trains_checkpoints_and_resumes_inside_a_process_group(backend, device, precision, reduced):
    with process_group(backend, device):
        straight = GroupSession(device)
        train_model(_config(4, precision), straight)
        first = GroupSession(device)
        train_model(_config(2, precision), first)
        resumed = GroupSession(device, resume_from=first.checkpoints[-1])
        train_model(_config(4, precision), resumed)

    assert straight.reports[-1]["val_accuracy"] >= 0.85
    assert straight.reports[-1]["train_loss"] < straight.reports[0]["train_loss"]
    # every epoch summed its training and validation numbers over the group, on the group's device
    assert len(reduced) == 2 * (4 + 2 + 2) and set(reduced) == {device}
    # the resumed run continued weights, optimiser, augmenter and (fp16) scaler state where
    # the first stopped; kernels on a GPU may add in another order, hence the tolerance
    assert [r["epoch"] for r in resumed.reports] == [2, 3]
    rel = 1e-5 if device == "cpu" else 2e-2
    assert resumed.reports[-1]["train_loss"] == pytest.approx(straight.reports[-1]["train_loss"], rel=rel)
    assert resumed.reports[-1]["val_accuracy"] == pytest.approx(straight.reports[-1]["val_accuracy"], abs=0.02)
    saved = torch.load(Path(first.checkpoints[-1]) / "optimizer.pt", weights_only=True)
    if precision == "fp16":
        assert saved["scaler"]["scale"] > 0 and saved["scaler"]["_growth_tracker"] > 0
    else:
        assert saved["scaler"] is None


# ---------------------------------------------------------------------------- every task on the group's device


def _splits(x: np.ndarray, y: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    cut = len(y) * 4 // 5
    return {"train": (x[:cut], y[:cut]), "val": (x[cut:], y[cut:])}


def _counting(rng: np.random.Generator) -> tuple[dict, DataInfo, dict]:
    """Runs of consecutive ids (4..11, wrapping): each next token follows from the last."""
    seq = (rng.integers(0, 8, (640, 1)) + np.arange(9)) % 8 + 4
    info = DataInfo(modality="text", task="language_model", input_shape=(8,), vocab_size=12)
    return {"kind": "rnn_lm", "params": {"hidden": 32, "embed_dim": 16}}, info, _splits(seq[:, :-1], seq[:, 1:])


def _reversing(rng: np.random.Generator) -> tuple[dict, DataInfo, dict]:
    """Sources of four ids, targets the same ids reversed between BOS and EOS."""
    src = rng.integers(4, 10, (640, 4))
    tgt = np.concatenate([np.full((640, 1), BOS_ID), src[:, ::-1], np.full((640, 1), EOS_ID)], axis=1)
    info = DataInfo(modality="pairs", task="seq2seq", input_shape=(4,), vocab_size=10, target_vocab_size=10)
    return {"kind": "seq2seq", "params": {"hidden": 32, "embed_dim": 16}}, info, _splits(src, tgt)


def _tagging(decoder: str):
    def make(rng: np.random.Generator) -> tuple[dict, DataInfo, dict]:
        """Sentences of ids 2..19 where ids from 15 up are names: B-PER, or I-PER right after one."""
        words = rng.integers(2, 20, (640, 10))
        name = words >= 15
        tags = np.where(name, 1, 0) + (name & np.roll(name, 1, axis=1) & (np.arange(10) > 0))
        info = DataInfo(modality="tagged", task="tagging", input_shape=(10,), classes=("O", "B-PER", "I-PER"),
                        vocab_size=20)
        return {"kind": "tagger", "params": {"decoder": decoder, "embed_dim": 16, "hidden": 16}}, info, _splits(words, tags)
    return make


def _siamese(rng: np.random.Generator) -> tuple[dict, DataInfo, dict]:
    info = DataInfo(modality="image", task="classification", input_shape=(1, 8, 8), classes=tuple("0123456789"))
    return {"kind": "siamese", "params": {"embedding_dim": 16}}, info, _digits()


TASKS = {"language_model": _counting, "seq2seq": _reversing, "tagging_crf": _tagging("crf"),
         "tagging_softmax": _tagging("softmax"), "metric_learning": _siamese}


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize(("backend", "device", "precision"), CASES)
def test_every_task_learns_on_the_groups_device_in_its_precision(task, backend, device, precision, reduced):
    spec, info, data = TASKS[task](np.random.default_rng(0))
    config = loop_config(spec, {"epochs": 3, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.01},
                                "precision": precision, "use_gpu": precision == "fp16"}, info)
    with process_group(backend, device):
        session = GroupSession(device, data=data)
        train_model(config, session)
    losses = [r["train_loss"] for r in session.reports]
    assert all(np.isfinite(losses)) and losses[-1] < 0.85 * losses[0], losses
    assert all(np.isfinite(v) for r in session.reports for v in r.values()), session.reports[-1]
    assert set(reduced) == {device}
