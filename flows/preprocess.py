"""Flow `preprocess`: bronze -> seeded split -> transforms fitted on train -> silver tables."""

from __future__ import annotations

import polars as pl
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from components.data.lake import Lake
from components.data.corpus_preparation import prepare_corpus
from components.data.fitted_state import FittedState
from components.data.pairs_preparation import prepare_pairs
from components.data.image_preparation import prepare_images
from components.data.preparation import prepare
from components.data.ray_decoding import pixels_on_ray
from components.data.silver import SilverSnapshot, write_silver
from components.data.tagged_preparation import prepare_tagged
from components.data.text_preparation import prepare_text
from flows.workspace import Workspace, connect_ray


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def read_bronze(lake_root: str, version: int | None = None) -> tuple[pl.DataFrame, int]:
    """Bronze at `version` (the latest when None): an older one trains on the data as it was."""
    lake = Lake(lake_root)
    latest = lake.version("bronze")
    if latest is None:
        raise LookupError(f"no bronze table at {lake.uri('bronze')}: run the ingest stage first")
    if version is not None and not 0 <= version <= latest:
        raise LookupError(f"--data-version must be a bronze version between 0 and {latest}, got {version}")
    version = latest if version is None else version
    return lake.read("bronze", version), version


@task(cache_policy=NO_CACHE)
def fit_splits(bronze: pl.DataFrame, ws: Workspace) -> tuple[dict[str, pl.DataFrame], FittedState]:
    config = ws.config
    if config.modality == "image":
        connect_ray(ws.profile)  # images are decoded into silver by Ray tasks on the cluster
        return prepare_images(bronze, config.split, config.images, decode=pixels_on_ray)
    if config.task == "seq2seq":
        return prepare_pairs(bronze, config.schema_, config.split, config.pairs)
    if config.task == "language_model":
        return prepare_corpus(bronze, config.split, config.text)
    if config.modality == "text":
        return prepare_text(bronze, config.schema_, config.split, config.text)
    if config.modality == "tagged":
        return prepare_tagged(bronze, config.split, config.tagging)
    return prepare(bronze, config.schema_, config.split, config.preprocessing)


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def store_silver(
    lake_root: str, frames: dict[str, pl.DataFrame], features: FittedState, bronze_version: int
) -> SilverSnapshot:
    return write_silver(Lake(lake_root), frames, features, bronze_version)


@flow(name="preprocess", log_prints=True, validate_parameters=False)
def preprocess(ws: Workspace, data_version: int | None = None) -> SilverSnapshot:
    bronze, version = read_bronze(ws.lake, data_version)
    frames, features = fit_splits(bronze, ws)
    snapshot = store_silver(ws.lake, frames, features, version)
    get_run_logger().info(
        "bronze v%d -> silver %s", version, {s: f"{frames[s].height} rows @v{v}" for s, (_, v) in snapshot.tables.items()}
    )
    return snapshot
