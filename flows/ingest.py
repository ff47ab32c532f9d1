"""Flow `ingest`: landing files -> schema check -> bronze Delta table (+ quarantine)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from components.config import ImageConfig, SchemaConfig, SourceConfig
from components.data.bundled import bundled_frame, write_landing_files
from components.data.images import (
    ImageSpec, bundled_classes, bundled_format, list_image_sources, read_landed_image_source, write_bundled_images,
)
from components.data.lake import IngestResult, Lake
from components.data.schema import SchemaError, check_rows
from components.data.sources import SourceError, file_hash, list_landing, read_file
from flows.workspace import Workspace


@dataclass(frozen=True)
class IngestReport:
    committed: list[IngestResult]
    failed: dict[str, str]  # file -> why it was left in the landing folder
    bronze_version: int | None

    @property
    def good_rows(self) -> int:
        return sum(r.good_rows for r in self.committed)

    @property
    def bad_rows(self) -> int:
        return sum(r.bad_rows for r in self.committed)


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE, task_run_name="stage-{source.dataset}")
def stage_bundled(source: SourceConfig, landing: Path) -> list[Path]:
    """Write a scikit-learn dataset into the landing folder as ordinary CSV files."""
    return write_landing_files(bundled_frame(source.dataset), landing, source.files, stem=source.dataset)


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE, task_run_name="stage-{source.dataset}")
def stage_bundled_images(source: SourceConfig, landing: Path) -> list[Path]:
    """Write an image set that ships inside a package into the landing folder as files."""
    return write_bundled_images(source.dataset, landing, source.limit)


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE, task_run_name="ingest-{path.name}")
def ingest_images(
    path: Path, landing: Path, fmt: str, classes: tuple[str, ...] | None, images: ImageConfig, lake_root: str
) -> IngestResult | str:
    """Commit one image source; undecodable, truncated or oversized images are quarantined
    with the reason, the rest kept. A source that cannot be read at all returns why."""
    lake = Lake(lake_root)
    content_hash = file_hash(path)
    if lake.is_ingested(content_hash):
        return IngestResult(path.name, content_hash, 0, 0, lake.version("bronze"), skipped=True)
    spec = ImageSpec(max_bytes=images.max_bytes, max_size=images.max_size)
    try:
        good, bad = read_landed_image_source(path, landing, fmt, spec, classes)
    except (SourceError, OSError, ValueError) as exc:
        return str(exc)
    return lake.commit_file(str(path.relative_to(landing)), content_hash, good, bad)


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE, task_run_name="ingest-{path.name}")
def ingest_file(path: Path, fmt: str, schema: SchemaConfig, lake_root: str) -> IngestResult | str:
    """Commit one file; a file that cannot be used at all returns the reason instead
    (and is not retried: the bytes would not change)."""
    lake = Lake(lake_root)
    content_hash = file_hash(path)
    if lake.is_ingested(content_hash):
        return IngestResult(path.name, content_hash, 0, 0, lake.version("bronze"), skipped=True)
    try:
        good, bad = check_rows(read_file(path, fmt), schema, path.name)
    except (SourceError, SchemaError) as exc:
        return str(exc)
    return lake.commit_file(path.name, content_hash, good, bad)


@flow(name="ingest", log_prints=True, validate_parameters=False)
def ingest(ws: Workspace) -> IngestReport:
    source = ws.config.source
    ws.landing.mkdir(parents=True, exist_ok=True)
    if source.format == "sklearn":
        stage_bundled(source, ws.landing)
    if source.format == "bundled_images":
        stage_bundled_images(source, ws.landing)
    if source.modality == "image":
        bundled = source.format == "bundled_images"
        fmt = bundled_format(source.dataset) if bundled else source.format
        classes = bundled_classes(source.dataset) if bundled else None
        files = list_image_sources(ws.landing, fmt, source.pattern)
        outcomes = {
            str(path.relative_to(ws.landing)): ingest_images(path, ws.landing, fmt, classes, ws.config.images, ws.lake)
            for path in files
        }
    else:
        fmt = "csv" if source.format == "sklearn" else source.format
        files = list_landing(ws.landing, source.pattern)
        outcomes = {path.name: ingest_file(path, fmt, ws.config.schema_, ws.lake) for path in files}
    committed = [o for o in outcomes.values() if isinstance(o, IngestResult)]
    failed = {name: o for name, o in outcomes.items() if isinstance(o, str)}
    logger = get_run_logger()
    for name, why in failed.items():
        logger.error("left %s in the landing folder: %s", name, why)
    report = IngestReport(committed, failed, Lake(ws.lake).version("bronze"))
    logger.info(
        "%d file(s): %d new good rows, %d quarantined, %d already ingested, %d failed; bronze v%s",
        len(files), report.good_rows, report.bad_rows, sum(r.skipped for r in committed), len(failed),
        report.bronze_version,
    )
    return report
