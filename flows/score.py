"""Flow `score`: a registered model applied to a Delta table or landing files in batch,
through Ray Data (an actor pool, the bundle loaded once per actor), appended to a Delta
table with the model's name and version and the input's version. No HTTP in the path."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import ray
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from components.artifacts.batch_scoring import BatchScorer, check_scorable, split_scored
from components.artifacts.registry import read_bundle_json, resolve_version
from components.config import ProfileConfig
from components.data.fitted_state import state_from_dict
from components.data.lake import Lake
from flows.retries import BACKOFF, transient_only
from flows.workspace import connect_ray

_FILE_READERS = {".csv": "csv", ".parquet": "parquet", ".ndjson": "json", ".jsonl": "json"}


@dataclass(frozen=True)
class ScoreReport:
    model: str
    version: str
    source: str
    input_version: int | None  # the Delta version read; None for files
    rows: int
    rejected: int
    output: str
    output_version: int | None
    seconds: float


@dataclass(frozen=True)
class _Input:
    description: str
    version: int | None
    dataset: ray.data.Dataset


def _input(source: str, lake: Lake) -> _Input:
    """A table of the model's lake by name, a Delta table by path, or landing files (a file,
    or a folder of .csv / .parquet / .ndjson files), as a Ray Data dataset."""
    path = Path(source)
    if not path.exists() and "/" not in source:
        files, version = lake.data_files(source)
        return _Input(f"{lake.uri(source)}", version, ray.data.read_parquet(files))
    if (path / "_delta_log").is_dir():
        table = Lake(str(path.parent))
        files, version = table.data_files(path.name)
        return _Input(str(path), version, ray.data.read_parquet(files))
    files = sorted(p for p in path.iterdir() if p.suffix in _FILE_READERS) if path.is_dir() else [path]
    kinds = {_FILE_READERS.get(p.suffix) for p in files}
    if not files or None in kinds or len(kinds) > 1:
        raise ValueError(
            f"--input {source}: expected a table name, a Delta table, or .csv/.parquet/.ndjson files of one "
            f"kind, got {[p.name for p in files] or 'an empty folder'}"
        )
    kind, paths = kinds.pop(), [str(p) for p in files]
    if kind == "csv":
        # Every column as text, as ingest reads CSV: the schema check then types the features
        # and quotes a bad value, and other columns cannot change type between files.
        import pyarrow.csv as pacsv

        names = pacsv.open_csv(paths[0]).schema.names
        options = pacsv.ConvertOptions(column_types={n: pa.string() for n in names})
        return _Input(source, None, ray.data.read_csv(paths, convert_options=options))
    reader = ray.data.read_parquet if kind == "parquet" else ray.data.read_json
    return _Input(source, None, reader(paths))


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=transient_only, cache_policy=NO_CACHE)
def resolve(profile: ProfileConfig, name: str, alias: str) -> str:
    return resolve_version(profile.mlflow_tracking_uri, name, alias)


@task(retries=2, retry_delay_seconds=BACKOFF, retry_condition_fn=transient_only, cache_policy=NO_CACHE)
def score_table(
    profile: ProfileConfig, name: str, version: str, source: str, output: str, actors: int, batch_size: int
) -> ScoreReport:
    """Score every row once and append the answers in one commit (the rejected rows, with
    their reasons, to `<output>_rejected`)."""
    started = time.perf_counter()
    connect_ray(profile)
    ray.data.DataContext.get_current().enable_progress_bars = False
    lake = Lake(f"{profile.lake}/{name}")
    lake.uri(output)  # a bad table name fails here, before any work
    data = _input(source, lake)
    state = state_from_dict(read_bundle_json(profile.mlflow_tracking_uri, name, version, "preprocess.json"))
    check_scorable(state, data.dataset.schema().names, data.description)
    lineage = {
        "model_name": name, "model_version": version, "input": data.description,
        "input_version": data.version, "scored_at": datetime.now(timezone.utc),
    }
    scored = data.dataset.map_batches(
        BatchScorer,
        fn_constructor_kwargs={
            "tracking_uri": profile.mlflow_tracking_uri, "name": name, "version": version,
            "source": data.description, "lineage": lineage,
        },
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
        batch_format="pyarrow",
        batch_size=batch_size,
    )
    rejected: list[pa.Table] = []
    counts = {"rows": 0}

    def accepted() -> Iterator[pa.RecordBatch]:
        # The scored rows stream into one commit; the rejected ones are few and wait in memory.
        for batch in scored.iter_batches(batch_format="pyarrow", batch_size=None):
            good, bad = split_scored(batch)
            rejected.append(bad)
            counts["rows"] += good.num_rows
            yield from good.to_batches()

    stream = accepted()
    first = next(stream, None)
    output_version = None
    if first is not None:
        output_version = lake.append_batches(output, pa.RecordBatchReader.from_batches(first.schema, chain([first], stream)))
    n_rejected = sum(t.num_rows for t in rejected)
    if n_rejected:
        bad = pa.concat_tables(rejected)
        bad = bad.append_column("input", pa.array([data.description] * n_rejected))
        bad = bad.append_column("model_version", pa.array([version] * n_rejected))
        lake.append_batches(f"{output}_rejected", bad.to_reader())
    return ScoreReport(
        name, version, data.description, data.version, counts["rows"], n_rejected, lake.uri(output), output_version,
        time.perf_counter() - started,
    )


@flow(name="score", log_prints=True, validate_parameters=False)
def score(
    profile: ProfileConfig, name: str, source: str, output: str, version: str | None = None, alias: str = "champion",
    actors: int = 2, batch_size: int = 4096,
) -> ScoreReport:
    version = version or resolve(profile, name, alias)
    report = score_table(profile, name, version, source, output, actors, batch_size)
    get_run_logger().info(
        "%s v%s: %d rows scored, %d rejected -> %s v%s in %.1fs", name, version, report.rows, report.rejected,
        report.output, report.output_version, report.seconds,
    )
    return report
