"""Reading landing files into Polars frames, listing them, and hashing their bytes."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import polars as pl

SourceFormat = Literal["csv", "parquet", "ndjson"]
_CHUNK = 1 << 20


class SourceError(ValueError):
    """A landing file cannot be parsed at all; the message names the file and the format."""


def read_file(path: Path, fmt: SourceFormat) -> pl.DataFrame:
    """Read one landing file whole, by a lazy scan collected with the streaming engine.

    CSV columns all arrive as strings, so the schema check sees the raw text and can
    quote a bad value. An empty CSV or NDJSON file is a frame without rows or columns.
    NDJSON struct columns are flattened into `parent_child` columns.
    """
    path = Path(path)
    if fmt in ("csv", "ndjson") and path.stat().st_size == 0:
        return pl.DataFrame()  # an empty text file holds no rows (and no header)
    lf = scan_file(path, fmt)
    with source_errors(path, fmt):
        return lf.collect(engine="streaming")


def scan_file(path: Path, fmt: SourceFormat) -> pl.LazyFrame:
    """One landing file as a lazy query (read as `read_file` reads it); nothing is read but
    the schema until it is collected, a file larger than memory a batch at a time."""
    path = Path(path)
    if fmt == "csv":
        return pl.scan_csv(path, infer_schema=False)
    if fmt == "parquet":
        return pl.scan_parquet(path)
    if fmt != "ndjson":
        raise ValueError(f"fmt must be one of csv, parquet, ndjson, got {fmt!r}")
    # Inferring from every line means a type that changes late in the file widens the
    # column (to string) instead of failing the whole file; the schema check then
    # quarantines only the offending rows.
    lf = pl.scan_ndjson(path, infer_schema_length=None)
    with source_errors(path, fmt):
        return lf.select(_flatten_structs(lf.collect_schema(), path))


@contextmanager
def source_errors(path: Path, fmt: str) -> Iterator[None]:
    """Polars' and the OS's read errors as one SourceError naming the file (a missing file stays FileNotFoundError)."""
    try:
        yield
    except FileNotFoundError:
        raise
    except (pl.exceptions.PolarsError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{path}: cannot read as {fmt}: {first_line}") from exc


def _flatten_structs(schema: pl.Schema, path: Path) -> list[pl.Expr]:
    """Expressions that lift every (nested) struct field to a top-level `parent_child` column."""
    exprs: list[pl.Expr] = []
    names: dict[str, str] = {}

    def visit(expr: pl.Expr, name: str, dtype: pl.DataType, origin: str) -> None:
        if isinstance(dtype, pl.Struct):
            for field in dtype.fields:
                visit(expr.struct.field(field.name), f"{name}_{field.name}", field.dtype, f"{origin}.{field.name}")
            return
        # `{"a": {"b": 1}, "a_b": 2}` would produce two `a_b` columns; refuse rather than
        # silently keep one of them.
        if name in names:
            raise SourceError(
                f"{path}: flattening gives two columns named {name!r} (from {names[name]!r} and {origin!r})"
            )
        names[name] = origin
        exprs.append(expr.alias(name))

    for name, dtype in schema.items():
        visit(pl.col(name), name, dtype, name)
    return exprs


def list_landing(folder: Path, pattern: str) -> list[Path]:
    """Files in `folder` matching the glob `pattern`, sorted by name, except files still
    being written (`is_being_written`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"landing folder {folder} does not exist")
    return sorted(p for p in folder.glob(pattern) if p.is_file() and not is_being_written(p))


def is_being_written(path: Path) -> bool:
    """The naming convention for a file not complete yet: a dot-file or a `.tmp` suffix.
    Writers write `name.csv.tmp` (or `.name.csv`) and rename it when done; a rename is atomic."""
    return path.name.startswith(".") or path.suffix == ".tmp"


def settled(paths: list[Path], settle_seconds: float, now: float | None = None) -> tuple[list[Path], float]:
    """(files unmodified for at least `settle_seconds`, seconds until the youngest other one
    would be). A writer that appends keeps moving the modification time, so a file that
    has kept still that long is taken as complete; writers that pause longer use `.tmp`."""
    now = time.time() if now is None else now
    ready, wait = [], 0.0
    for path in paths:
        age = now - path.stat().st_mtime
        if age >= settle_seconds:
            ready.append(path)
        else:
            wait = max(wait, settle_seconds - age)
    return ready, wait


class HashCache:
    """Content hashes of landing files, computed again only when a file's size or
    modification time changes: a watcher looks at the same files many times."""

    def __init__(self) -> None:
        self._known: dict[Path, tuple[int, int, str]] = {}

    def of(self, path: Path) -> str:
        stat = Path(path).stat()
        known = self._known.get(path)
        if known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns):
            return known[2]
        digest = file_hash(path)
        self._known[path] = (stat.st_size, stat.st_mtime_ns, digest)
        return digest


def file_hash(path: Path) -> str:
    """Hex sha256 of the file's bytes, read in chunks so large files need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_landing_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` unless the file already holds exactly these bytes (its mtime
    then stays, so watchers see no change). The bytes go to a hidden file beside it first
    and are renamed into place, so a scan of the landing folder never sees half a file."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def part_sizes(total: int, parts: int) -> list[int]:
    """`total` items in `parts` contiguous parts, the first `total % parts` one larger (as numpy.array_split)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]
