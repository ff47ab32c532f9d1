"""Model registry: a config `kind` names a builder, `params` fill its dataclass config.

A builder is a callable (usually the nn.Module class itself) taking exactly one dataclass
config. The config type is read from the builder's annotation, so registering a model is
one decorator and the config stays the single place where its parameters are declared.
A config declares the data-derived fields it needs (`in_features`, `out_features`,
`in_channels`, `height`, `width`, `vocab_size`, `task`: see `DataInfo`); `build(spec, info)`
fills exactly those from the data, so a spec written in a YAML file never names them.

Families share one namespace of kinds: `register` for builders returning an nn.Module
(family "torch", trained by the torch loop), `register_estimator` for builders returning an
object with scikit-learn's `fit(X, y)`/`predict` (family "sklearn"; "xgboost" for models
trained by XGBoost's own trainer and stored in its format; "ensemble" for compositions of
other kinds, stored member by member). An estimator config declares
`task: Literal["classification", "regression"]` (scikit-learn picks a different class per
task where torch only changes the loss), with a default, and no sizes: scikit-learn learns
the number of features and the classes at `fit`, so `build({"kind": "knn", "params": {"k": 3}})`
is a usable estimator and `build(spec, info)` sets only its task from the data. (The one
exception is `xgboost`'s optional `out_features`: its Ray Train path must name the
objective, and so the class count, before any worker sees the data.)

One kind may be registered once per family when it is one model with several solvers
(`linear_regression` solved in closed form by scikit-learn or by gradient descent in
torch): every such config declares `solver: Literal[...]`, the solver sets are disjoint,
and exactly one config gives `solver` a default, which picks its builder when a spec names
no solver.
"""

from __future__ import annotations

import dataclasses
import inspect
import numbers
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union

import numpy as np
import torch.nn as nn

from components.config import ModelConfig
from components.data.modalities.info import DataInfo

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

_B = TypeVar("_B", bound=Callable[..., nn.Module])
_E = TypeVar("_E", bound=Callable[..., Any])

# Filled from `DataInfo` when the config declares them; never written in a pipeline YAML.
DATA_FIELDS = (
    "task", "in_features", "out_features", "in_channels", "height", "width", "vocab_size", "target_vocab_size", "classes",
    "char_vocab_size",
)
_SIZES = ("in_features", "out_features", "in_channels", "height", "width", "vocab_size", "target_vocab_size",
          "char_vocab_size")
_TASKS = ("classification", "regression")

Family = Literal["torch", "sklearn", "xgboost", "ensemble"]


@dataclass(frozen=True)
class _Entry:
    builder: Callable[[Any], Any]
    config: type
    family: Family = "torch"
    task: str = "supervised"  # the training task (components.training.tasks) of torch kinds

    @property
    def solvers(self) -> tuple[str, ...]:
        hint = typing.get_type_hints(self.config).get("solver")
        return typing.get_args(hint) if typing.get_origin(hint) is Literal else ()

    @property
    def default_solver(self) -> bool:
        field_ = next((f for f in dataclasses.fields(self.config) if f.name == "solver"), None)
        return field_ is not None and field_.default is not dataclasses.MISSING


_REGISTRY: dict[str, dict[Family, _Entry]] = {}


def register(kind: str, *, task: str = "supervised") -> Callable[[_B], _B]:
    """Register `builder` (a class or function taking one dataclass config) under `kind`,
    trained by the training task named `task` (supervised, metric_learning, ...)."""
    return _registrar(kind, "torch", task)


def register_estimator(kind: str, *, family: Family = "sklearn") -> Callable[[_E], _E]:
    """Register `builder` (a function taking one dataclass config, returning an estimator with
    scikit-learn's API) under `kind`; the config must declare `task` (its other data fields,
    if any, are optional: the estimator learns sizes and classes at `fit`). `family` says how
    the pipeline trains and stores it (see the module docstring)."""
    if family == "torch":
        raise ValueError("register_estimator: family must not be 'torch'; use register for torch models")
    return _registrar(kind, family)


def family(spec: ModelConfig | Mapping[str, Any], /) -> Family:
    """Which family builds, trains and stores `spec`: "torch", "sklearn", "xgboost" or "ensemble"."""
    return _entry(*_parse(spec)).family


# The training tasks whose models are word vectors: trained on running text, served as embeddings.
WORD_VECTOR_TASKS = ("word_embeddings", "glove")


def training_task(spec: ModelConfig | Mapping[str, Any], /) -> str:
    """The training task that trains `spec`'s torch model: this is the one table of it."""
    return _entry(*_parse(spec)).task


def is_estimator(spec: ModelConfig | Mapping[str, Any], /) -> bool:
    """Whether `spec` builds an estimator with scikit-learn's API rather than an nn.Module."""
    return family(spec) != "torch"


def kinds() -> list[str]:
    """The registered model kinds, sorted."""
    return sorted(_REGISTRY)


def build(
    spec: ModelConfig | Mapping[str, Any], info: DataInfo | None = None, /, **params: Any
) -> nn.Module | BaseEstimator:
    """Build the model `spec` describes: `{"kind": ..., "params": {...}}` or a ModelConfig.

    `info` fills the data-derived fields the kind's config declares (`data_fields`);
    keyword `params` are merged over everything. Returns an nn.Module, or an unfitted
    scikit-learn estimator for kinds registered with `register_estimator` (see `is_estimator`).
    Raises ValueError naming an unknown kind or an unknown, missing or invalid param.
    """
    kind, spec_params = _parse(spec)
    return _entry(kind, {**spec_params, **params}).builder(make_config(spec, info, **params))


def make_config(spec: ModelConfig | Mapping[str, Any], info: DataInfo | None = None, /, **params: Any) -> Any:
    """The validated config dataclass `build` would hand to the kind's builder, without
    building the model: how a pipeline's model params are checked when its file loads."""
    kind, spec_params = _parse(spec)
    merged = {**spec_params, **params}
    entry = _entry(kind, merged)
    if info is not None:
        merged = {**spec_params, **data_fields(spec, info), **params}
    return _make_config(kind, entry.config, merged)


def data_fields(spec: ModelConfig | Mapping[str, Any], info: DataInfo, /) -> dict[str, Any]:
    """The values `info` gives for the data-derived fields `spec`'s kind declares: what a
    spec's params gain before the model is built, trained and stored."""
    kind, params = _parse(spec)
    declared = {f.name for f in dataclasses.fields(_entry(kind, params).config)}
    return {k: v for k, v in info.model_fields().items() if k in declared and k in DATA_FIELDS}


def config_fields(spec: ModelConfig | Mapping[str, Any], /) -> dict[str, Any]:
    """The kind's config fields (name -> dataclasses.Field), solver taken into account."""
    kind, params = _parse(spec)
    return {f.name: f for f in dataclasses.fields(_entry(kind, params).config) if f.init}


# ---------------------------------------------------------------------------- helpers


def _registrar(kind: str, family: Family, task: str = "supervised") -> Callable[[Any], Any]:
    estimator = family != "torch"

    def decorator(builder: Any) -> Any:
        config_cls = _config_type(builder)
        # torch modules declare only the data fields they read (see DataInfo); estimators
        # learn their sizes at fit, but the task picks their class (classifier or regressor)
        required = ("task",) if estimator else ()
        names = {f.name for f in dataclasses.fields(config_cls)}
        missing = [n for n in required if n not in names]
        if missing:
            raise TypeError(f"{config_cls.__name__} (model kind {kind!r}) must declare fields {missing}")
        if estimator:
            hint = typing.get_type_hints(config_cls)["task"]
            if typing.get_origin(hint) is not Literal or sorted(typing.get_args(hint)) != sorted(_TASKS):
                raise TypeError(
                    f"{config_cls.__name__} (model kind {kind!r}): field 'task' must be annotated "
                    f"Literal{list(_TASKS)}, got {hint!r}"
                )
            task_field = next(f for f in dataclasses.fields(config_cls) if f.name == "task")
            if task_field.default is dataclasses.MISSING:
                # scikit-learn's contract: the kind's params alone build a usable estimator
                raise TypeError(
                    f"{config_cls.__name__} (model kind {kind!r}): field 'task' needs a default "
                    f"(one of {list(_TASKS)}); the data sets it in a pipeline"
                )
        entry = _Entry(builder=builder, config=config_cls, family=family, task=task)
        entries = _REGISTRY.setdefault(kind, {})
        previous = entries.get(family)
        # re-importing the defining module (reload, notebooks) may register the same builder again
        if previous is not None and _qualname(previous.builder) != _qualname(builder):
            raise ValueError(f"model kind {kind!r} is already registered to {_qualname(previous.builder)}")
        others = [e for f, e in entries.items() if f != family]
        if others:
            _check_solvers(kind, [entry, *others])
        entries[family] = entry
        return builder

    return decorator


def _check_solvers(kind: str, entries: list[_Entry]) -> None:
    names = [_qualname(e.builder) for e in entries]
    if not all(e.solvers for e in entries):
        raise ValueError(
            f"model kind {kind!r} is already registered to {names[1:]}; a kind registered in several "
            "families needs a 'solver: Literal[...]' field in every config"
        )
    solvers = [s for e in entries for s in e.solvers]
    if len(set(solvers)) != len(solvers):
        raise ValueError(f"model kind {kind!r}: solvers overlap between {names}: {solvers}")
    if sum(e.default_solver for e in entries) != 1:
        raise ValueError(f"model kind {kind!r}: exactly one of {names} must give 'solver' a default")


def _entry(kind: str, params: Mapping[str, Any] | None = None) -> _Entry:
    entries = _REGISTRY.get(kind)
    if entries is None:
        raise ValueError(f"unknown model kind {kind!r}; registered kinds: {kinds()}")
    if len(entries) == 1:
        return next(iter(entries.values()))
    solver = (params or {}).get("solver")
    if solver is None:
        return next(e for e in entries.values() if e.default_solver)
    for entry in entries.values():
        if solver in entry.solvers:
            return entry
    allowed = [s for e in entries.values() for s in e.solvers]
    raise ValueError(f"model {kind!r}: param 'solver' must be one of {allowed}, got {solver!r}")


def _qualname(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def _config_type(builder: Callable[..., Any]) -> type:
    target = builder.__init__ if inspect.isclass(builder) else builder
    params = [p for p in inspect.signature(target).parameters.values() if p.name != "self"]
    if len(params) != 1:
        names = [p.name for p in params]
        raise TypeError(f"{_qualname(builder)} must take exactly one config argument, takes {names}")
    hint = typing.get_type_hints(target).get(params[0].name)
    if not (inspect.isclass(hint) and dataclasses.is_dataclass(hint)):
        raise TypeError(
            f"{_qualname(builder)}: argument {params[0].name!r} must be annotated with a dataclass, got {hint!r}"
        )
    return hint


def _parse(spec: ModelConfig | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, ModelConfig):
        return spec.kind, dict(spec.params)
    if not isinstance(spec, Mapping):
        raise ValueError(
            f"model spec must be a ModelConfig or a mapping with 'kind' and 'params', got {type(spec).__name__}"
        )
    extra = sorted(set(spec) - {"kind", "params"})
    if extra:
        raise ValueError(f"model spec has unknown keys {extra}; allowed: ['kind', 'params']")
    if not isinstance(spec.get("kind"), str):
        raise ValueError(f"model spec needs 'kind' as a string, got {spec.get('kind')!r}")
    params = spec.get("params") or {}
    if not isinstance(params, Mapping):
        raise ValueError(f"model spec 'params' must be a mapping, got {type(params).__name__}")
    return spec["kind"], dict(params)


def _make_config(kind: str, config_cls: type, params: dict[str, Any]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(config_cls) if f.init}
    allowed = list(fields)
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ValueError(f"model {kind!r}: unknown param(s) {unknown}; allowed: {allowed}")
    missing = [
        name for name, f in fields.items()
        if name not in params and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"model {kind!r}: missing param(s) {missing}; allowed: {allowed}")
    hints = typing.get_type_hints(config_cls)
    values = {name: _coerce(kind, name, value, hints[name]) for name, value in params.items()}
    for name in _SIZES:
        if values.get(name) is not None and values[name] < 1:  # None: an optional size left to the data
            raise ValueError(f"model {kind!r}: param {name!r} must be >= 1, got {values[name]!r}")
    try:
        return config_cls(**values)
    except ValueError as err:
        raise ValueError(f"model {kind!r}: {err}") from None


def _coerce(kind: str, name: str, value: Any, tp: Any) -> Any:
    """Check `value` against the field type; return it as a plain Python value."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    ok, out = _match(value, tp, origin, args)
    if not ok:
        raise ValueError(f"model {kind!r}: param {name!r} must be {_describe(tp)}, got {value!r}")
    return out


def _match(value: Any, tp: Any, origin: Any, args: tuple[Any, ...]) -> tuple[bool, Any]:
    if tp is Any:
        return True, value
    if origin is Literal:
        return any(isinstance(value, type(a)) and value == a for a in args), value
    if origin in (Union, types.UnionType):
        for alt in args:
            ok, out = _match(value, alt, typing.get_origin(alt), typing.get_args(alt))
            if ok:
                return True, out
        return False, value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False, value
        item = args[0] if args else Any
        outs = []
        for v in value:
            ok, out = _match(v, item, typing.get_origin(item), typing.get_args(item))
            if not ok:
                return False, value
            outs.append(out)
        return True, origin(outs)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        # nested specs (an ensemble's base model) arrive as YAML mappings; copy so the config owns it
        return isinstance(value, Mapping), dict(value) if isinstance(value, Mapping) else value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        ok = isinstance(value, (bool, np.bool_))
        return ok, bool(value) if ok else value
    if tp is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        return ok, int(value) if ok else value
    if tp is float:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if inspect.isclass(tp):
        return isinstance(value, tp), value
    return True, value


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return f"one of {list(args)}"
    if origin in (list, tuple):
        return f"a list of {_describe(args[0]) if args else 'values'}"
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return "a mapping"
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))
