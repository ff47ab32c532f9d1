"""Flow `preprocess`: bronze -> seeded split -> transforms fitted on train -> silver tables."""

from __future__ import annotations

import polars as pl
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from components.config import PipelineConfig
from components.data.lake import Lake
from components.data.fitted_state import FittedState
from components.data.image_preparation import prepare_images
from components.data.preparation import prepare
from components.data.silver import SilverSnapshot, write_silver
from flows.workspace import Workspace


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def read_bronze(lake_root: str) -> tuple[pl.DataFrame, int]:
    lake = Lake(lake_root)
    version = lake.version("bronze")
    if version is None:
        raise LookupError(f"no bronze table at {lake.uri('bronze')}: run the ingest stage first")
    return lake.read("bronze", version), version


@task(cache_policy=NO_CACHE)
def fit_splits(bronze: pl.DataFrame, config: PipelineConfig) -> tuple[dict[str, pl.DataFrame], FittedState]:
    if config.modality == "image":
        return prepare_images(bronze, config.split, config.images)
    return prepare(bronze, config.schema_, config.split, config.preprocessing)


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def store_silver(
    lake_root: str, frames: dict[str, pl.DataFrame], features: FittedState, bronze_version: int
) -> SilverSnapshot:
    return write_silver(Lake(lake_root), frames, features, bronze_version)


@flow(name="preprocess", log_prints=True, validate_parameters=False)
def preprocess(ws: Workspace) -> SilverSnapshot:
    bronze, version = read_bronze(ws.lake)
    frames, features = fit_splits(bronze, ws.config)
    snapshot = store_silver(ws.lake, frames, features, version)
    get_run_logger().info(
        "bronze v%d -> silver %s", version, {s: f"{frames[s].height} rows @v{v}" for s, (_, v) in snapshot.tables.items()}
    )
    return snapshot
