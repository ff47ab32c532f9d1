"""The epoch loop with an in-memory session: reports, rank-0 checkpoints, resume, early stopping."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from components.artifacts.checkpoint_files import read_state
from components.config import apply_overrides
from components.data.modalities import tabular_info
from components.training.loop import loop_config, train_model, training_config


class MemorySession:
    """Batches from numpy arrays; keeps every report and a copy of every checkpoint."""

    def __init__(self, x: np.ndarray, y: np.ndarray, resume_from: str | None = None, rank: int = 0) -> None:
        self.data = {"train": (x, y), "val": (x, y)}
        self.world_rank, self.world_size, self.device = rank, 1, torch.device("cpu")
        self.resume_from = resume_from
        self.reports: list[dict] = []
        self.checkpoints: list[str | None] = []
        self.keep = Path(tempfile.mkdtemp())

    def batches(self, split, batch_size, shuffle, seed):
        x, y = self.data[split]
        order = np.random.default_rng(seed).permutation(len(y)) if shuffle else np.arange(len(y))
        for i in range(0, len(y), batch_size):
            idx = order[i : i + batch_size]
            yield {"x": torch.from_numpy(x[idx]), "y": torch.from_numpy(y[idx])}

    def prepare_model(self, model):
        return model

    @contextlib.contextmanager
    def latest_checkpoint(self):
        yield self.resume_from

    def report(self, metrics, checkpoint_dir):
        self.reports.append(metrics)
        if checkpoint_dir is None:
            self.checkpoints.append(None)
            return
        kept = self.keep / f"epoch-{metrics['epoch']}"
        shutil.copytree(checkpoint_dir, kept)
        self.checkpoints.append(str(kept))


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 1, (60, 2)), rng.normal(2, 1, (60, 2))]).astype(np.float32)
    y = np.repeat([0, 1], 60).astype(np.int64)
    return x, y


def _config(epochs: int, **training) -> dict:
    return loop_config(
        {"kind": "mlp", "params": {"hidden": [8]}},
        {"epochs": epochs, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.05}, **training},
        tabular_info("classification", 2, 1),
    )


def test_reports_every_epoch_with_checkpoints_and_learns(blobs):
    session = MemorySession(*blobs)
    history = train_model(_config(5, schedule={"name": "step", "step_size": 2, "gamma": 0.5}), session)
    assert [r["epoch"] for r in session.reports] == [0, 1, 2, 3, 4] and history == session.reports
    assert all(c is not None for c in session.checkpoints)
    assert [r["lr"] for r in session.reports] == pytest.approx([0.05, 0.05, 0.025, 0.025, 0.0125])
    assert session.reports[-1]["val_accuracy"] >= 0.95
    assert session.reports[-1]["train_loss"] < session.reports[0]["train_loss"]
    state = read_state(session.checkpoints[-1])
    assert state["epoch"] == 4 and state["spec"]["kind"] == "mlp"


def test_only_rank_zero_writes_checkpoints(blobs):
    session = MemorySession(*blobs, rank=1)
    train_model(_config(2), session)
    assert session.checkpoints == [None, None]


def test_resume_continues_after_the_checkpointed_epoch_with_the_same_result(blobs):
    straight = MemorySession(*blobs)
    train_model(_config(4), straight)

    first = MemorySession(*blobs)
    train_model(_config(2), first)
    resumed = MemorySession(*blobs, resume_from=first.checkpoints[-1])
    train_model(_config(4), resumed)
    assert [r["epoch"] for r in resumed.reports] == [2, 3]
    # Weights, optimizer state and the per-epoch shuffle seed all carry over: identical run.
    assert resumed.reports[-1]["train_loss"] == pytest.approx(straight.reports[-1]["train_loss"], rel=1e-5)


def test_a_resumed_run_augments_as_the_uninterrupted_one_did():
    """The augmenter's call counter is checkpointed: resuming draws the noise epoch 2 would have."""
    from components.data.modalities.info import DataInfo

    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 1, 8, 8)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0).astype(np.int64)
    info = DataInfo(modality="image", task="classification", input_shape=(1, 8, 8), classes=("0", "1"))

    def config(epochs: int) -> dict:
        return loop_config({"kind": "cnn", "params": {"arch": "lenet5"}},
                           {"epochs": epochs, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.01}},
                           info, [{"type": "noise", "std": 0.5}])

    straight = MemorySession(x, y)
    train_model(config(4), straight)
    first = MemorySession(x, y)
    train_model(config(2), first)
    resumed = MemorySession(x, y, resume_from=first.checkpoints[-1])
    train_model(config(4), resumed)
    assert resumed.reports[-1]["train_loss"] == pytest.approx(straight.reports[-1]["train_loss"], rel=1e-5)


def test_early_stopping_stops_and_restores_the_best_epoch(blobs):
    x, y = blobs
    session = MemorySession(x, y)
    session.data["val"] = (x, 1 - y)  # validation labels flipped: val loss rises as training learns
    config = _config(30, early_stopping={"patience": 2, "restore_best": True})
    train_model(config, session)
    losses = [r["val_loss"] for r in session.reports[:-1]]
    best_epoch = session.reports[-1]["best_epoch"]
    assert len(session.reports) < 30
    assert session.reports[-1]["epoch"] == best_epoch + 2
    # The last report (and checkpoint) carry the best epoch's numbers and weights.
    assert session.reports[-1]["val_loss"] == pytest.approx(min(losses + [session.reports[best_epoch]["val_loss"]]))
    assert session.reports[-1]["val_loss"] == pytest.approx(session.reports[best_epoch]["val_loss"])


def test_regression_reports_regression_metrics():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3).astype(np.float32)
    session = MemorySession(x, y)
    config = loop_config(
        {"kind": "linear_regression", "params": {"solver": "adam"}},
        {"epochs": 40, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.1}, "grad_clip": 10.0, "l2": 1e-6},
        tabular_info("regression", 3, 1),
    )
    train_model(config, session)
    last = session.reports[-1]
    assert {"val_mse", "val_rmse", "val_mae", "val_r2"} <= set(last)
    assert last["val_r2"] > 0.99


# ---------------------------------------------------------------------------- solver picks the optimizer


def test_a_torch_solver_names_the_optimizer_and_keeps_its_other_settings():
    model = {"kind": "logistic_regression", "params": {"solver": "momentum"}}
    training = {"epochs": 1, "optimizer": {"name": "adam", "lr": 0.5}}
    config = loop_config(model, training, tabular_info("classification", 2, 1))
    optimizer = training_config(config).optimizer
    assert (optimizer.name, optimizer.lr) == ("momentum", 0.5)
    assert training == {"epochs": 1, "optimizer": {"name": "adam", "lr": 0.5}}
    # a searched solver arrives as a tuning override of model.params.solver: same rule
    tuned = apply_overrides(config, {"model.params.solver": "rmsprop"})
    assert training_config(tuned).optimizer.name == "rmsprop"


def test_without_a_solver_the_training_config_decides():
    config = loop_config({"kind": "mlp", "params": {"hidden": [4]}}, {"optimizer": {"name": "sgd"}},
                         tabular_info("regression", 2, 1))
    assert training_config(config).optimizer.name == "sgd"


def test_a_solver_that_is_no_optimizer_is_refused_with_the_allowed_ones():
    config = loop_config({"kind": "mlp", "params": {"solver": "newton"}}, {},
                         tabular_info("regression", 2, 1))
    with pytest.raises(ValueError, match=r"model 'mlp': solver 'newton' is not an optimizer; allowed: \['sgd'"):
        training_config(config)


def test_the_loop_trains_with_the_solvers_optimizer():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 2)).astype(np.float32)
    y = (x @ np.array([2.0, -1.0]) + 0.5).astype(np.float32)
    session = MemorySession(x, y)
    config = loop_config(
        {"kind": "linear_regression", "params": {"solver": "adam"}},
        {"epochs": 1, "batch_size": 8, "optimizer": {"name": "sgd", "lr": 0.01}},
        tabular_info("regression", 2, 1),
    )
    train_model(config, session)
    state = torch.load(Path(session.checkpoints[-1]) / "optimizer.pt", weights_only=True)["optimizers"]["model"]["state"]
    assert all("exp_avg" in s for s in state.values())  # Adam's moments: SGD keeps none


# ---------------------------------------------------------------------------- precision, global step, any metric


def test_bf16_autocast_trains_checkpoints_and_resumes_identically(blobs):
    straight = MemorySession(*blobs)
    train_model(_config(4, precision="bf16"), straight)
    assert straight.reports[-1]["val_accuracy"] >= 0.95
    first = MemorySession(*blobs)
    train_model(_config(2, precision="bf16"), first)
    resumed = MemorySession(*blobs, resume_from=first.checkpoints[-1])
    train_model(_config(4, precision="bf16"), resumed)
    assert resumed.reports[-1]["train_loss"] == pytest.approx(straight.reports[-1]["train_loss"], rel=1e-5)
    # bf16 really ran: its rounding makes the losses differ from fp32's
    fp32 = MemorySession(*blobs)
    train_model(_config(4), fp32)
    assert fp32.reports[-1]["train_loss"] != pytest.approx(straight.reports[-1]["train_loss"], rel=1e-6)


def test_fp16_is_refused_without_a_gpu():
    with pytest.raises(ValueError, match="precision 'fp16' needs use_gpu: true"):
        training_config(_config(1, precision="fp16"))


def test_checkpoints_carry_the_global_step_and_resume_counts_on(blobs):
    session = MemorySession(*blobs)  # 120 rows, batches of 16: 8 steps an epoch
    train_model(_config(2), session)
    assert [r["step"] for r in session.reports] == [8, 16]
    assert read_state(session.checkpoints[-1])["global_step"] == 16
    resumed = MemorySession(*blobs, resume_from=session.checkpoints[-1])
    train_model(_config(3), resumed)
    assert [r["step"] for r in resumed.reports] == [24]


def test_early_stopping_watches_any_reported_metric(blobs):
    x, y = blobs
    session = MemorySession(x, y)
    config = _config(30, early_stopping={"metric": "val_accuracy", "mode": "max", "patience": 2})
    train_model(config, session)
    accuracies = [r["val_accuracy"] for r in session.reports]
    assert len(session.reports) < 30  # accuracy saturates at once on separable blobs, so it stops early
    assert session.reports[-1]["best_epoch"] == int(np.argmax(accuracies[:-1]))
    with pytest.raises(ValueError, match="early_stopping.metric 'val_auc' is not reported"):
        train_model(_config(2, early_stopping={"metric": "val_auc"}), MemorySession(x, y))


def test_adagrad_is_an_optimizer_choice(blobs):
    session = MemorySession(*blobs)
    train_model(_config(2, optimizer={"name": "adagrad", "lr": 0.1}), session)
    state = torch.load(Path(session.checkpoints[-1]) / "optimizer.pt", weights_only=True)["optimizers"]["model"]
    assert all("sum" in s for s in state["state"].values())  # AdaGrad's running sum of squared gradients
    assert session.reports[-1]["val_accuracy"] >= 0.95


def test_grad_check_reports_a_relative_error_per_parameter_tensor(blobs):
    session = MemorySession(*blobs)
    train_model(_config(2, grad_check=True), session)
    first, second = session.reports
    checked = {k: v for k, v in first.items() if k.startswith("grad_check.")}
    assert set(checked) == {"grad_check.blocks.0.linear.weight", "grad_check.blocks.0.linear.bias",
                            "grad_check.head.weight", "grad_check.head.bias"}
    assert max(checked.values()) < 1e-6 and first["grad_check_max_error"] == max(checked.values())
    assert not any(k.startswith("grad_check") for k in second)  # checked once, before training
