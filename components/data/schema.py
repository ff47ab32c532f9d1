"""Checking rows against the declared schema: good rows typed, bad rows quarantined with a reason.

Two entry points: `check_rows` for landing files (batch; a bad row is set aside, the rest
goes on) and `frame_from_records` for online requests (one bad value rejects the request
with the field that caused it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from components.config import ColumnSpec, ColumnType, SchemaConfig, SchemaEvolution

DTYPES: dict[ColumnType, pl.DataType] = {
    "float": pl.Float64(),
    "int": pl.Int64(),
    "str": pl.String(),
    "bool": pl.Boolean(),
}
# Columns the pipeline adds to the lake tables; a declared column with one of these names
# would be overwritten.
RESERVED_COLUMNS = frozenset({"_source_file", "_row", "_reason", "_raw", "_content_hash", "_split", "_rescued"})

_MISSING_NUMBER_TEXT = ("", "nan")
_TRUE_TEXT = ("true", "1")
_FALSE_TEXT = ("false", "0")
_SHOWN_CHARS = 40


class SchemaError(ValueError):
    """A whole file is unusable (a declared column missing or of an unusable type)."""


class SchemaChangeError(SchemaError):
    """A file has columns the schema does not declare, and schema_evolution is `fail`."""


class InvalidInput(ValueError):
    """One field of an online request is wrong; `field` is its path, e.g. `instances[3].mean_radius`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# ---------------------------------------------------------------------------- batch rows


def check_rows(
    df: pl.DataFrame, schema: SchemaConfig, source_file: str, new_columns: SchemaEvolution = "fail"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split the rows of one file into (good, quarantined).

    good: the declared columns cast to their declared dtypes in declared order, plus
    `_source_file` and `_row` (0-based row index in the file). quarantined: `_source_file`,
    `_row`, `_reason` (problems joined with "; ") and `_raw` (the original row as a JSON
    object, undeclared columns included).

    Undeclared columns, by `new_columns` (Auto Loader's schema evolution modes): `fail`
    raises SchemaChangeError naming them; `add_new_columns` keeps them in good rows as
    read, after the declared ones; `rescue` keeps them as one JSON object per row in
    `_rescued`; `ignore` drops them.
    """
    if df.width == 0:  # an empty file: no rows to check, and no header to check them against
        df = pl.DataFrame(schema={name: pl.String for name in schema.columns})
    required, kept = _plan(df.columns, schema, source_file, new_columns)
    return _split_checked(df, schema.columns, required, kept, source_file)


def check_rows_lazy(
    lf: pl.LazyFrame, schema: SchemaConfig, source_file: str, new_columns: SchemaEvolution = "fail"
) -> tuple[pl.LazyFrame, pl.DataFrame, int]:
    """`check_rows` for a file too large to hold: (good rows as a lazy query, quarantined
    rows, rows in the file). Finding the bad rows and counting reads the file once with
    Polars' streaming engine; the good rows are read again by whoever collects or sinks the
    query, a batch at a time."""
    columns_in = lf.collect_schema()
    required, kept = _plan(list(columns_in), schema, source_file, new_columns)
    parsed = _parsed(columns_in, schema.columns, source_file)
    plain_values, sure = _read_plainly(parsed, required)
    row = _BAD + "row"
    read = lf.with_row_index(row).with_columns(pl.col(row).cast(pl.Int64), (~sure).alias(_BAD))
    # Counted in the same query: a bare count of the scan takes Polars' fast path, which
    # maps the whole file into memory.
    doubtful, total = pl.collect_all(
        [read.filter(pl.col(_BAD)).drop(_BAD), read.select(pl.len())], engine="streaming"
    )
    kept_names = [c.meta.output_name() for c in kept]
    checked = doubtful.lazy().with_columns(_flag(parsed, required).alias(_BAD)).collect()
    rescued = checked.filter(~pl.col(_BAD)).select(
        *[p.value.alias(name) for name, p in parsed.items()], *kept,
        _source_file=pl.lit(source_file, dtype=pl.String), _row=pl.col(row),
    )
    good = pl.concat([
        read.filter(~pl.col(_BAD)).select(
            *plain_values, *kept, _source_file=pl.lit(source_file, dtype=pl.String), _row=pl.col(row)
        ),
        rescued.select(*schema.columns, *kept_names, "_source_file", "_row").lazy(),
    ])
    bad = checked.filter(pl.col(_BAD))
    quarantined = _quarantined(bad.drop(_BAD, row), bad[row], parsed, required, source_file)
    return good, quarantined, total.item()


def _plan(
    columns_in: list[str], schema: SchemaConfig, source_file: str, new_columns: SchemaEvolution
) -> tuple[set[str], list[pl.Expr]]:
    """(the columns a row must have a value in, the expressions of the undeclared columns
    kept in good rows) for a file with `columns_in`; raises when the file cannot be used."""
    reserved = sorted(RESERVED_COLUMNS.intersection(schema.columns))
    if reserved:
        raise ValueError(f"schema.columns must not use the reserved names {reserved}")
    missing = [c for c in schema.columns if c not in columns_in]
    if missing:
        raise SchemaError(f"{source_file}: missing declared column(s) {missing}; the file has {list(columns_in)}")
    extra = [c for c in columns_in if c not in schema.columns]
    if extra and new_columns == "fail":
        raise SchemaChangeError(
            f"{source_file}: undeclared column(s) {extra}; declare them in schema.columns, or set "
            "stream.schema_evolution to add_new_columns, rescue or ignore"
        )
    if new_columns == "add_new_columns" and any(c.startswith("_") for c in extra):
        raise SchemaError(f"{source_file}: new column(s) {[c for c in extra if c.startswith('_')]} "
                          "start with '_', which is reserved for row metadata")
    kept: list[pl.Expr] = []
    if new_columns == "add_new_columns":
        kept = [pl.col(c) for c in extra]
    elif new_columns == "rescue":
        rescued = pl.struct(extra).struct.json_encode() if extra else pl.lit(None, dtype=pl.String)
        kept = [rescued.alias("_rescued")]
    required = {name for name, spec in schema.columns.items() if not spec.nullable or name == schema.target}
    return required, kept


def check_features(df: pl.DataFrame, schema: SchemaConfig, source_file: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows to score: like `check_rows`, for the feature columns alone (no target needed;
    other columns are not looked at). good: the typed features, `_source_file`, `_row`."""
    missing = [c for c in schema.features if c not in df.columns]
    if missing:
        raise SchemaError(f"{source_file}: missing feature column(s) {missing} of the model; the rows have {df.columns}")
    features = {name: schema.columns[name] for name in schema.features}
    required = {name for name, spec in features.items() if not spec.nullable}
    return _split_checked(df, features, required, [], source_file)


def _split_checked(
    df: pl.DataFrame, columns: dict[str, ColumnSpec], required: set[str], kept: list[pl.Expr], source_file: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(good, quarantined) of `df` checked against `columns`; `kept` rides along in good rows.

    Almost every row of a real file is well-formed, and reading its text straight into the
    declared type settles it (`_Parsed.plain`). The full checks, which strip and lower-case
    the text, run only on the rows that read leaves in doubt; the reason text is built for
    the rows those checks flag."""
    parsed = _parsed(df.schema, columns, source_file)
    plain_values, sure = _read_plainly(parsed, required)
    # One lazy pass: common-subexpression elimination reads each column once for its value
    # and its checks (an eager select would not).
    read = df.lazy().select(
        *plain_values, *kept, _row=pl.int_range(pl.len(), dtype=pl.Int64), **{_BAD: ~sure}
    ).collect()
    good = read.filter(~pl.col(_BAD))
    doubtful = read.filter(pl.col(_BAD))["_row"]
    bad_rows = doubtful.clear()
    if doubtful.len():
        checked = df[doubtful].lazy().select(
            *[p.value.alias(name) for name, p in parsed.items()],
            *kept,
            _row=pl.lit(doubtful),
            **{_BAD: _flag(parsed, required)},
        ).collect()
        # Strict concat: the checked values have the plain read's dtypes.
        good = pl.concat([good, checked.filter(~pl.col(_BAD))]).sort("_row")
        bad_rows = checked.filter(pl.col(_BAD))["_row"]
    good = good.select(
        *columns, *[c.meta.output_name() for c in kept],
        _source_file=pl.lit(source_file, dtype=pl.String), _row=pl.col("_row"),
    )
    return good, _quarantined(df[bad_rows], bad_rows, parsed, required, source_file)


def _parsed(columns_in: Any, columns: dict[str, ColumnSpec], source_file: str) -> dict[str, "_Parsed"]:
    return {name: _parse_column(name, columns_in[name], spec.type, source_file) for name, spec in columns.items()}


def _flag(parsed: dict[str, "_Parsed"], required: set[str]) -> pl.Expr:
    """True for a row with any problem: a value that does not parse, a required one missing."""
    flags = [cond for p in parsed.values() for cond, _ in p.problems]
    flags += [p.is_missing for name, p in parsed.items() if name in required]
    return pl.any_horizontal([f.fill_null(False) for f in flags]) if flags else pl.lit(False)


def _read_plainly(parsed: dict[str, "_Parsed"], required: set[str]) -> tuple[list[pl.Expr], pl.Expr]:
    """(each column's value by its plain read, true for a row every plain read settled).

    A column without a plain read uses its full checks, which are cheap for typed sources."""
    values: list[pl.Expr] = []
    sure: list[pl.Expr] = []
    for name, p in parsed.items():
        if p.plain is not None:
            values.append(p.plain.alias(name))
            sure.append(p.plain.is_not_null())
            continue
        values.append(p.value.alias(name))
        flags = [cond for cond, _ in p.problems] + ([p.is_missing] if name in required else [])
        sure += [~f.fill_null(False) for f in flags]
    return values, pl.all_horizontal(sure) if sure else pl.lit(True)


def _quarantined(
    bad: pl.DataFrame, rows: pl.Series, parsed: dict[str, "_Parsed"], required: set[str], source_file: str
) -> pl.DataFrame:
    """The flagged rows (as they came) with their reasons and themselves as JSON."""
    reasons = [p.reason() for p in parsed.values()]
    reasons += [pl.when(p.is_missing).then(pl.lit(f"column {name!r}: missing value"))
                for name, p in parsed.items() if name in required]
    return bad.select(
        _source_file=pl.lit(source_file, dtype=pl.String),
        _row=rows.alias("_row"),
        _reason=pl.concat_str(reasons, separator="; ", ignore_nulls=True),
        _raw=pl.Series([_to_json(row) for row in bad.iter_rows(named=True)], dtype=pl.String),
    )


# Working columns of the checks, named so that no file's column is taken for them.
_BAD = "__rayline_bad__"


@dataclass(frozen=True)
class _Parsed:
    """One declared column read from the file: its typed value, whether it is missing, and
    the problems a present value can have as (condition, detail), the first that holds
    being the row's reason."""

    name: str
    target: ColumnType
    value: pl.Expr
    is_missing: pl.Expr
    problems: tuple[tuple[pl.Expr, str], ...] = ()
    # The value read straight from well-formed text without stripping or lower-casing it,
    # null wherever that read is not enough to decide (a blank, "NaN", stray spaces, a bad
    # value); equal to `value` wherever it is not null.
    plain: pl.Expr | None = None

    def reason(self) -> pl.Expr:
        """"column 'x': cannot parse '<value>' as float (detail)", or null when it parsed."""
        shown = pl.col(self.name).cast(pl.String)
        shown = pl.when(shown.str.len_chars() > _SHOWN_CHARS).then(
            shown.str.slice(0, _SHOWN_CHARS) + pl.lit("...")
        ).otherwise(shown)
        chain: Any = pl
        for cond, detail in self.problems:
            message = pl.lit(f"column {self.name!r}: cannot parse '") + shown + pl.lit(f"' as {self.target}{detail}")
            chain = chain.when(cond).then(message)
        return pl.lit(None, dtype=pl.String) if chain is pl else chain


def _parse_column(name: str, source: pl.DataType, target: ColumnType, source_file: str) -> _Parsed:
    """How to read one declared column of a file whose column has type `source`."""
    raw = pl.col(name)
    dtype = DTYPES[target]

    def parsed(
        value: pl.Expr, is_missing: pl.Expr, *problems: tuple[pl.Expr, str], plain: pl.Expr | None = None
    ) -> _Parsed:
        return _Parsed(name, target, value, is_missing, problems, plain)

    if source == pl.Null:
        return parsed(pl.lit(None, dtype=dtype), pl.lit(True))

    if source == pl.String:
        text = raw.str.strip_chars()
        if target == "str":
            # Empty text is how CSV and most writers spell "no value".
            is_missing = raw.is_null() | (raw == "")
            return parsed(pl.when(is_missing).then(None).otherwise(raw), is_missing)
        if target == "bool":
            lower = text.str.to_lowercase()
            is_missing = text.is_null() | (text == "")
            value = pl.when(lower.is_in(_TRUE_TEXT)).then(True).when(lower.is_in(_FALSE_TEXT)).then(False)
            plain = pl.when(raw.is_in(_TRUE_TEXT)).then(True).when(raw.is_in(_FALSE_TEXT)).then(False)
            return parsed(value, is_missing, (~is_missing & value.is_null(), ""), plain=plain)
        is_missing = text.is_null() | text.str.to_lowercase().is_in(_MISSING_NUMBER_TEXT)
        number = text.cast(pl.Float64, strict=False)
        if target == "float":
            value = pl.when(is_missing).then(None).otherwise(number)
            direct = raw.cast(pl.Float64, strict=False)
            # NaN and infinities parse, but are a missing value and a problem.
            plain = pl.when(direct.is_finite()).then(direct)
            return parsed(value, is_missing, *_number_problems(is_missing, number, integral=False), plain=plain)
        # Parse integers as integers first: going through Float64 would lose digits past 2**53.
        exact = text.cast(pl.Int64, strict=False)
        value = exact.fill_null(number.cast(pl.Int64, strict=False))
        value = pl.when(is_missing).then(None).otherwise(value)
        plain = raw.cast(pl.Int64, strict=False)
        return parsed(value, is_missing, *_number_problems(is_missing, number, integral=True, exact=exact), plain=plain)

    if source.is_numeric():
        if target == "str":
            return parsed(raw.cast(pl.String), raw.is_null())
        if source.is_integer():
            is_missing = raw.is_null()
            if target == "bool":
                return parsed(raw.cast(pl.Boolean), is_missing, (~is_missing & ~raw.is_in([0, 1]), ""))
            value = raw.cast(dtype, strict=False)
            # Only an unsigned integer past Int64's range fails this cast.
            return parsed(value, is_missing, (~is_missing & value.is_null(), ""))
        number = raw.cast(pl.Float64)
        is_missing = number.is_null() | number.is_nan()
        if target == "bool":
            value = pl.when(number == 1).then(True).when(number == 0).then(False)
            return parsed(value, is_missing, (~is_missing & value.is_null(), ""))
        value = pl.when(is_missing).then(None).otherwise(number.cast(dtype, strict=False))
        return parsed(value, is_missing, *_number_problems(is_missing, number, integral=target == "int"))

    if source == pl.Boolean:
        if target in ("bool", "str"):
            return parsed(raw.cast(dtype), raw.is_null())
        # true/false in a numeric column is almost always a shifted or mislabelled field.
        return parsed(pl.lit(None, dtype=dtype), raw.is_null(), (raw.is_not_null(), ""))

    if target == "str" and source.is_temporal():
        return parsed(raw.cast(pl.String), raw.is_null())
    raise SchemaError(f"{source_file}: column {name!r} must hold {target} values, got column type {source}")


def _number_problems(
    is_missing: pl.Expr, number: pl.Expr, *, integral: bool, exact: pl.Expr | None = None
) -> list[tuple[pl.Expr, str]]:
    """Why a present numeric value is rejected: unparseable, infinite, fractional or too large."""
    # `exact` is the direct Int64 parse of the text, which succeeds where Float64 would round.
    is_exact = pl.lit(False) if exact is None else exact.is_not_null()
    present = ~is_missing
    problems = [(present & number.is_null() & ~is_exact, ""), (present & number.is_infinite(), " (not a finite number)")]
    if integral:
        problems.append((present & ~is_exact & (number != number.floor()), " (has a fractional part)"))
        # Whole floats beyond Int64's range pass every other check but fail the cast.
        problems.append((present & ~is_exact & number.cast(pl.Int64, strict=False).is_null(), " (out of range)"))
    return problems


def _to_json(row: dict[str, Any]) -> str:
    """The row as a JSON object; non-finite floats become strings since JSON has no NaN."""
    return json.dumps({k: _json_safe(v) for k, v in row.items()}, default=str, allow_nan=False)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------- online records


def frame_from_records(records: list[dict[str, Any]], schema: SchemaConfig, max_rows: int) -> pl.DataFrame:
    """Validate request instances against the feature columns and build a typed frame.

    Each instance is an object with exactly the declared features (the target is not
    accepted). Ints are accepted for float columns and whole floats for int columns; bools
    are never numbers; NaN and infinities are rejected; null only for nullable features.
    Raises InvalidInput naming the first bad field.
    """
    check_instances(records, max_rows, "objects")
    features = schema.features
    columns: dict[str, list[Any]] = {name: [] for name in features}
    for i, record in enumerate(records):
        where = f"instances[{i}]"
        if not isinstance(record, dict):
            raise InvalidInput(where, f"must be an object, got {_json_type(record)}")
        for key in record:
            if key not in columns:
                hint = " (the target is not an input)" if key == schema.target else ""
                raise InvalidInput(f"{where}.{key}", f"unknown column{hint}; expected only the declared features")
        for name in features:
            field = f"{where}.{name}"
            if name not in record:
                raise InvalidInput(field, "missing")
            spec = schema.columns[name]
            columns[name].append(_check_value(field, record[name], spec.type, spec.nullable))
    return pl.DataFrame([pl.Series(name, columns[name], dtype=DTYPES[schema.columns[name].type]) for name in features])


def instance_fields(instance: Any, where: str, fields: set[str], primary: str) -> dict[str, Any]:
    """An instance given as its `primary` field's string alone or as an object of `fields`
    (generation and translation requests); InvalidInput names an unknown field or another type."""
    if isinstance(instance, str):
        return {primary: instance}
    if not isinstance(instance, dict):
        raise InvalidInput(where, f'must be {{"{primary}": "...", ...}} or a {primary} string, got {type(instance).__name__}')
    unknown = sorted(set(instance) - fields)
    if unknown:
        raise InvalidInput(f"{where}.{unknown[0]}", f"unknown field; allowed: {sorted(fields)}")
    return instance


def check_instances(instances: Any, max_instances: int, what: str) -> None:
    """A request's `instances`: a non-empty list of at most `max_instances` (of `what`)."""
    if not isinstance(instances, list):
        raise InvalidInput("instances", f"must be a list of {what}, got {type(instances).__name__}")
    if not instances:
        raise InvalidInput("instances", "must not be empty")
    if len(instances) > max_instances:
        raise InvalidInput("instances", f"at most {max_instances} instances per request, got {len(instances)}")


def _check_value(field: str, value: Any, expected: ColumnType, nullable: bool) -> Any:
    """The value converted to its column's Python type, or InvalidInput naming the field."""
    if value is None:
        if nullable:
            return None
        raise InvalidInput(field, f"must not be null (expected {expected})")
    wrong = InvalidInput(field, f"expected {expected}, got {_json_type(value)} {_shown(value)}")
    # bool is a subclass of int in Python; JSON true is never a number here.
    if isinstance(value, bool):
        if expected == "bool":
            return value
        raise wrong
    if expected in ("float", "int"):
        if not isinstance(value, (int, float)):
            raise wrong
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(field, f"must be a finite number, got {value!r}")
        if expected == "float":
            return float(value)
        if isinstance(value, float):
            if not value.is_integer():
                raise InvalidInput(field, f"expected int, got a number with a fractional part {value!r}")
            value = int(value)
        if not -(2**63) <= value < 2**63:
            raise InvalidInput(field, f"expected a 64-bit int, got {value!r}")
        return value
    if expected == "str" and isinstance(value, str):
        return value
    raise wrong


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."
