"""Flow `ingest`: landing files -> schema check -> bronze Delta table (+ quarantine),
in micro-batches committed exactly once (components/data/streaming.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from components.config import ImageConfig, PipelineConfig, SourceConfig
from components.data.bundled import bundled_frame, write_landing_files
from components.data.bundled_text import bundled_text_frame
from components.data.conll import read_conll, write_landing_conll
from components.data.corpus import read_text_file, write_bundled_corpus
from components.data.dates_synthetic import dates_frame
from components.data.images import (
    ImageSpec, bundled_classes, bundled_format, list_image_sources, read_landed_image_source, write_bundled_images,
)
from components.data.lake import Lake
from components.data.ner_synthetic import conll_text, ner_sentences
from components.data.pronunciations import cmudict_frame
from components.data.sources import HashCache, list_landing, settled
from components.data.streaming import (
    BatchResult, FileRows, IngestStream, PendingBatch, Triage, checked_file, micro_batches, new_files,
)
from components.data.wnut16 import wnut16_text
from flows.retries import BACKOFF, transient_only
from flows.workspace import Workspace


@dataclass(frozen=True)
class IngestReport:
    batches: list[BatchResult]
    already: int  # files ingested before, as they are now
    duplicates: dict[str, str]  # file -> the file ingested before with the same bytes
    failed: dict[str, str]  # file -> why it was left in the landing folder
    waiting: list[str]  # files modified too recently to be complete; the next pass takes them
    bronze_version: int | None
    stopped: str | None = None  # a schema change that stopped the stream (schema_evolution fail)

    @property
    def good_rows(self) -> int:
        return sum(b.good_rows for b in self.batches)

    @property
    def bad_rows(self) -> int:
        return sum(b.bad_rows for b in self.batches)

    @property
    def files(self) -> int:
        return sum(len(b.files) for b in self.batches)


@dataclass
class _Source:
    """How this pipeline's landing files are listed and read."""

    config: PipelineConfig
    landing: Path
    hashes: HashCache = field(default_factory=HashCache)

    def list(self) -> list[Path]:
        source = self.config.source
        if source.modality == "image":
            return list_image_sources(self.landing, self._image_format, source.pattern)
        return list_landing(self.landing, source.pattern)

    def name(self, path: Path) -> str:
        return str(path.relative_to(self.landing))

    @property
    def _image_format(self) -> str:
        source = self.config.source
        return bundled_format(source.dataset) if source.format == "bundled_images" else source.format


# Bundled sets landed as CSV files.
BUNDLED_TABLES = ("sklearn", "bundled_text", "bundled_pairs")
NER_SENTENCES = 3000  # ner_synthetic sentences landed when source.limit does not say
DATE_PAIRS = 10_000  # dates landed when source.limit does not say
CMUDICT_WORDS = 20_000  # of cmudict's 124k words
BUNDLED = (*BUNDLED_TABLES, "bundled_images", "bundled_ner", "bundled_corpus")


@task(
    retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=transient_only, cache_policy=NO_CACHE,
    task_run_name="stage-{source.dataset}",
)
def stage_bundled(source: SourceConfig, landing: Path) -> list[Path]:
    """Write a data set that ships inside a package into the landing folder as ordinary files."""
    if source.format == "bundled_images":
        return write_bundled_images(source.dataset, landing, source.limit)
    if source.format == "bundled_corpus":
        return write_bundled_corpus(source.dataset, landing)
    if source.format == "bundled_ner":
        if source.dataset == "wnut16":
            text = wnut16_text(source.limit)
        else:
            text = conll_text(ner_sentences(source.limit or NER_SENTENCES, seed=0))
        return write_landing_conll(text, landing, source.files, stem=source.dataset)
    if source.format == "bundled_pairs" and source.dataset == "cmudict":
        frame = cmudict_frame(source.limit or CMUDICT_WORDS, seed=0)
    elif source.format == "bundled_pairs":
        frame = dates_frame(source.limit or DATE_PAIRS, seed=0)
    elif source.format == "bundled_text":
        frame = bundled_text_frame(source.dataset)
    else:
        frame = bundled_frame(source.dataset)
    return write_landing_files(frame, landing, source.files, stem=source.dataset)


def _read(src: _Source, path: Path, content_hash: str) -> FileRows:
    """One landing file read and checked; raises SourceError/SchemaError/OSError when unusable."""
    cfg = src.config
    name = src.name(path)
    if cfg.modality == "image":
        images: ImageConfig = cfg.images
        classes = bundled_classes(cfg.source.dataset) if cfg.source.format == "bundled_images" else None
        spec = ImageSpec(max_bytes=images.max_bytes, max_size=images.max_size)
        good, bad = read_landed_image_source(path, src.landing, src._image_format, spec, classes)
        return FileRows(name, content_hash, good, bad)
    if cfg.modality == "tagged":
        good, bad = read_conll(path.read_bytes(), name)
        return FileRows(name, content_hash, good, bad)
    if cfg.source.modality == "corpus":
        good, bad = read_text_file(path.read_bytes(), name)
        return FileRows(name, content_hash, good, bad)
    fmt = "csv" if cfg.source.format in BUNDLED_TABLES else cfg.source.format
    large = int(cfg.stream.large_file_mb * 2**20)
    return checked_file(path, fmt, cfg.schema_, name, content_hash, cfg.stream.schema_evolution, large)


@task(
    retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=transient_only, cache_policy=NO_CACHE,
    task_run_name="complete-batch-{pending.batch}",
)
def complete_batch(stream: IngestStream, src: _Source, pending: PendingBatch) -> BatchResult:
    """Finish a batch a crash interrupted, from its files read again."""
    files = [_read(src, src.landing / name, src.hashes.of(src.landing / name)) for name in pending.files]
    return stream.complete(pending, files)


@task(
    retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=transient_only, cache_policy=NO_CACHE,
    task_run_name="commit-batch",
)
def commit_batch(stream: IngestStream, files: list[FileRows]) -> BatchResult:
    """One micro-batch: ledger, bronze and quarantine commits, each carrying the batch number."""
    return stream.commit(files)


@flow(name="ingest", log_prints=True, validate_parameters=False)
def ingest(ws: Workspace, hashes: HashCache | None = None, wait_to_settle: bool = True) -> IngestReport:
    """Drain the landing folder: finish a batch a crash interrupted, then commit every
    complete new file in micro-batches. `hashes` carries content hashes between passes of a
    watcher; `wait_to_settle` waits for files still being modified instead of leaving them."""
    cfg, logger = ws.config, get_run_logger()
    src = _Source(cfg, ws.landing, hashes or HashCache())
    lake = Lake(ws.lake)
    ws.landing.mkdir(parents=True, exist_ok=True)
    # A watcher holds the lock only while it commits a batch: wait for it rather than fail.
    with lake.writer_lock(wait_s=120):
        stream = IngestStream(
            lake, stream_id(ws), merge_schema=cfg.stream.schema_evolution in ("add_new_columns", "rescue"),
            compact_every=cfg.stream.compact_every,
        )
        batches = []
        pending = stream.pending()
        if pending is not None:
            logger.warning("completing batch %d, interrupted before all its commits", pending.batch)
            batches.append(complete_batch(stream, src, pending))
        staged = set(stage_bundled(cfg.source, ws.landing)) if cfg.source.format in BUNDLED else set()
        listed = src.list()
        candidates = [p for p in listed if p not in staged]
        ready, wait = settled(candidates, cfg.stream.settle_seconds)
        if wait and wait_to_settle:
            time.sleep(wait)
            ready, _ = settled(candidates, cfg.stream.settle_seconds)
        ready = sorted(set(ready) | staged)
        taken = set(ready)
        waiting = [src.name(p) for p in listed if p not in taken]

        triage = Triage()
        files = new_files(
            [src.name(p) for p in ready], lambda name: src.hashes.of(ws.landing / name),
            lambda name, content_hash: _read(src, ws.landing / name, content_hash), stream.ingested_hashes(), triage,
        )
        for batch in micro_batches(files, cfg.stream.max_files_per_batch, cfg.stream.max_rows_per_batch):
            batches.append(commit_batch(stream, batch))
        report = IngestReport(
            batches, len(triage.already), triage.duplicates, triage.failed, waiting, lake.version("bronze"), triage.stopped
        )
    for name, why in report.failed.items():
        logger.error("left %s in the landing folder: %s", name, why)
    if report.stopped:
        logger.error("stopped: %s", report.stopped)
    logger.info(
        "%d file(s) in %d batch(es): %d new good rows, %d quarantined, %d already ingested, %d duplicate(s), "
        "%d failed, %d still being written; bronze v%s", report.files, len(batches), report.good_rows,
        report.bad_rows, report.already, len(report.duplicates), len(report.failed), len(waiting), report.bronze_version,
    )
    return report


def stream_id(ws: Workspace) -> str:
    """The app id the pipeline's ingest commits carry: one stream per pipeline."""
    return f"rayline-ingest-{ws.name}"
