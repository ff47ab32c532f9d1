"""Ray Train: checkpoints are written every epoch and a run resumes from its latest one."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from components.artifacts.checkpoint_files import MODEL_FILE, read_state
from components.config import PipelineConfig
from components.data.modalities import tabular_info
from components.training.loop import loop_config
from components.training.ray_session import make_trainer, silver_datasets, training_outcome


def _config(pipeline: PipelineConfig, snapshot, epochs: int) -> dict:
    training = pipeline.training.model_dump()
    training.update(epochs=epochs, early_stopping=None)
    return loop_config(
        pipeline.model.model_dump(), training, tabular_info("classification",
        snapshot.features.in_features, snapshot.features.out_features),
    )


def test_trains_checkpoints_and_resumes(ray_session, silver, iris_pipeline, workdir: Path):
    _, snapshot = silver
    datasets = silver_datasets(
        {s: snapshot.tables[s] for s in ("train", "val")}, snapshot.features.columns, "label", "int64"
    )
    storage = str(workdir / "runs")

    first = training_outcome(
        make_trainer(_config(iris_pipeline, snapshot, 2), datasets, num_workers=1, use_gpu=False,
                     storage_path=storage, name="resume-me").fit(),
        "resume-me",
    )
    assert [row["epoch"] for row in first.history] == [0, 1]
    state = read_state(first.checkpoint)
    assert state["epoch"] == 1
    assert state["spec"]["params"]["out_features"] == 3
    assert set(load_file(str(Path(first.checkpoint) / MODEL_FILE))) >= {"head.weight", "head.bias"}
    assert 0.0 <= first.metrics["val_accuracy"] <= 1.0 and first.metrics["val_rows"] == 30

    # Same run name and storage: Train picks up the latest checkpoint and trains epochs 2..3 only.
    second = training_outcome(
        make_trainer(_config(iris_pipeline, snapshot, 4), datasets, num_workers=1, use_gpu=False,
                     storage_path=storage, name="resume-me").fit(),
        "resume-me",
    )
    assert [row["epoch"] for row in second.history] == [2, 3]
    assert read_state(second.checkpoint)["epoch"] == 3
    assert second.metrics["train_loss"] < first.history[0]["train_loss"]


def test_two_workers_train_data_parallel(ray_session, silver, iris_pipeline, workdir: Path):
    """DDP over gloo: each worker streams its own shard; metrics are aggregated over both."""
    _, snapshot = silver
    datasets = silver_datasets(
        {s: snapshot.tables[s] for s in ("train", "val")}, snapshot.features.columns, "label", "int64"
    )
    outcome = training_outcome(
        make_trainer(_config(iris_pipeline, snapshot, 2), datasets, num_workers=2, use_gpu=False,
                     storage_path=str(workdir / "runs"), name="ddp").fit(),
        "ddp",
    )
    assert outcome.error is None and [row["epoch"] for row in outcome.history] == [0, 1]
    # Validation is gathered from both shards: all 30 rows, not one worker's half.
    assert outcome.metrics["val_rows"] == 30
    assert read_state(outcome.checkpoint)["epoch"] == 1


def test_a_cluster_too_small_for_the_workers_is_named(ray_session):
    from components.training.ray_session import require_capacity

    with pytest.raises(ValueError, match=r"training.num_workers=64 needs 64 CPUs .* the Ray cluster has"):
        require_capacity(64, use_gpu=False)
