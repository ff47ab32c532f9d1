"""One local Ray per test session, and a prepared lake + MLflow store for it to read."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import ray

from components.config import PipelineConfig, ProfileConfig
from components.data.bundled import bundled_frame
from components.data.lake import Lake
from components.data.streaming import FileRows, IngestStream
from components.data.preparation import prepare
from components.data.schema import check_rows
from components.data.silver import SilverSnapshot, write_silver
from flows.workspace import RAY_ENV
from tests.conftest import iris_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def ray_session():
    for key, value in RAY_ENV.items():  # the settings rayline's own Ray gets
        os.environ.setdefault(key, value)
    # Three logical CPUs on two cores: room for a two-worker trial plus its driver.
    ray.init(num_cpus=3, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield
    from ray import serve

    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rayline")


@pytest.fixture(scope="session")
def profile(workdir: Path) -> ProfileConfig:
    return ProfileConfig(
        root=str(workdir),
        landing=str(workdir / "landing"),
        lake=str(workdir / "lake"),
        runs=str(workdir / "runs"),
        mlflow_tracking_uri=f"sqlite:///{workdir}/mlflow.db",
        mlflow_artifacts=str(workdir / "mlartifacts"),
    )


@pytest.fixture(scope="session")
def iris_pipeline() -> PipelineConfig:
    return PipelineConfig.model_validate(iris_config())


@pytest.fixture(scope="session")
def silver(workdir: Path, iris_pipeline: PipelineConfig) -> tuple[Lake, SilverSnapshot]:
    """Iris through the real ingest and preprocess components into Delta tables."""
    lake = Lake(str(workdir / "lake" / "iris"))
    good, bad = check_rows(bundled_frame("iris"), iris_pipeline.schema_, "iris.csv")
    IngestStream(lake, "ingest").commit([FileRows("iris.csv", "0" * 64, good, bad)])
    frames, features = prepare(lake.read("bronze"), iris_pipeline.schema_, iris_pipeline.split, iris_pipeline.preprocessing)
    return lake, write_silver(lake, frames, features, lake.version("bronze"))


@pytest.fixture(scope="session")
def tracking(profile: ProfileConfig) -> str:
    """The experiment id in a fresh sqlite MLflow store."""
    from components.artifacts.tracking import use_tracking

    return use_tracking(profile.mlflow_tracking_uri, "iris", profile.mlflow_artifacts)


@pytest.fixture(scope="session")
def search(ray_session, silver, iris_pipeline: PipelineConfig, profile: ProfileConfig):
    """A 3-trial ASHA search over learning rate and width; returns its trial outcomes."""
    from components.config import TuningConfig
    from components.data.modalities import tabular_info
    from components.training.loop import loop_config
    from components.training.ray_session import SilverInputs
    from components.tuning.tuner import run_search, trial_outcomes

    _, snapshot = silver
    tuning = TuningConfig.model_validate(
        {
            "num_samples": 3,
            "grace_period": 1,
            "space": {
                "training.optimizer.lr": {"loguniform": [0.005, 0.05]},
                "model.params.hidden": {"choice": [[8], [16]]},
            },
        }
    )
    base = loop_config(
        iris_pipeline.model.model_dump(), iris_pipeline.training.model_dump(), tabular_info("classification",
        snapshot.features.in_features, snapshot.features.out_features),
    )
    inputs = SilverInputs({s: snapshot.tables[s] for s in ("train", "val")}, snapshot.features.columns, "int64")
    grid = run_search(base, inputs, tuning, storage_path=profile.runs, name="iris-search")
    return trial_outcomes(grid, list(tuning.space))
