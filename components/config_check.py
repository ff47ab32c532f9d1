"""Checks a loaded pipeline config against what only the code knows: the registered model
kinds and their params, and the fields a search key may name.

`components.config` validates a file's shape on its own; this module runs right after it,
so an unknown kind, a mistyped param, a search key that names no config field
(`training.optimzer.lr`) or a family that does not exist fails at load, with the file, the
key path, the bad value and what is allowed, before anything is ingested or written.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from components.config import (
    Choice, ConfigError, Distribution, Grid, LogUniform, PipelineConfig, RandInt, TrainingConfig, Uniform,
    apply_overrides, load_pipeline,
)
from components.data.modalities.info import DataInfo
from components.data.augmentation import validate_ops
from components.data.word_vectors import DIMENSIONS
from components.models import DATA_FIELDS, WORD_VECTOR_TASKS, config_fields, family, kinds, make_config, training_task

_PARAMS = "model.params."


def load_checked(path: str | Path) -> PipelineConfig:
    """`load_pipeline`, then `check_pipeline`: every config error a file can hold, at load."""
    config = load_pipeline(path)
    check_pipeline(config, path)
    return config


def check_pipeline(config: PipelineConfig, path: str | Path) -> None:
    """Raise ConfigError listing every model and search problem of `config` (read from `path`)."""
    info = planned_info(config)
    problems = _spec_problems("model", config.model.model_dump(include={"kind", "params"}), info)
    problems += _task_problems(config)
    if config.modality == "image":
        problems += _image_problems(config)
    if config.modality == "text" and config.task != "language_model":
        problems += _text_problems(config)
    problems += _sequence_task_problems(config)
    problems += _bucketing_problems(config)
    if config.tuning is not None:
        model = config.model.model_dump(include={"kind", "params"})
        for key, dist in config.tuning.space.items():
            problems += _key_problems(f"tuning.space.{key}", key, dist, model, config.training, info)
        for kind, space in config.tuning.families.items():
            where = f"tuning.families.{kind}"
            if kind not in kinds():
                problems.append((where, f"unknown model kind; registered kinds: {kinds()}", kind))
                continue
            for key, dist in space.items():
                problems += _key_problems(f"{where}.{key}", key, dist, {"kind": kind, "params": {}}, config.training, info)
    if problems:
        lines = [f"{path}: invalid config"] + [f"  {where}: {why} (got {_shown(value)})" for where, why, value in problems]
        raise ConfigError("\n".join(lines))


def planned_info(config: PipelineConfig) -> DataInfo:
    """The data as far as the config describes it, before any row is read: enough to check
    a model's params (sizes the data will set are stand-ins here)."""
    classes = ("class_0", "class_1") if config.task == "classification" else ()
    if config.modality == "image":
        images = config.images
        height, width = images.size if images.size else (_PLANNED_SIDE, _PLANNED_SIDE)
        shape = (images.channels or 1, height, width)
        return DataInfo(modality="image", task="classification", input_shape=shape, classes=classes)
    if config.modality == "tagged":
        chars = config.tagging.chars
        shape = (config.tagging.max_length, 1 + chars.max_word_length) if chars else (config.tagging.max_length,)
        return DataInfo(modality="tagged", task="tagging", input_shape=shape, classes=("O", "B-X", "I-X"),
                        vocab_size=_PLANNED_VOCAB, char_vocab_size=_PLANNED_VOCAB if chars else None)
    if config.task == "language_model":
        shape = (2,) if config.text.features == "cooccurrence" else (config.text.max_length,)
        return DataInfo(modality="text", task="language_model", input_shape=shape, vocab_size=_PLANNED_VOCAB)
    if config.task == "seq2seq":
        return DataInfo(modality="pairs", task="seq2seq", input_shape=(config.pairs.max_source_length,),
                        vocab_size=_PLANNED_VOCAB, target_vocab_size=_PLANNED_VOCAB)
    if config.modality == "text":
        width = config.text.max_length if config.text.features == "tokens" else _PLANNED_VOCAB
        return DataInfo(modality="text", task="classification", input_shape=(width,), classes=classes,
                        vocab_size=_PLANNED_VOCAB)
    features = len(config.schema_.features)
    return DataInfo(modality="tabular", task=config.task, input_shape=(features,), classes=classes)


_PLANNED_SIDE = 32  # an image size to check params against when the config keeps the images' own
_PLANNED_VOCAB = 1000  # a vocabulary size to check params against; the tokenizer learns the real one


def _image_problems(config: PipelineConfig) -> list[Problem]:
    problems: list[Problem] = []
    if config.model.kind in kinds() and family(config.model) != "torch":
        problems.append(("model.kind", f"image sources train torch kinds (e.g. cnn, mlp), not {family(config.model)} kinds",
                         config.model.kind))
    try:
        validate_ops(config.images.augment)
    except ValueError as err:
        problems.append(("images.augment", str(err), config.images.augment))
    return problems


Problem = tuple[str, str, Any]


# The training tasks that need their own kind of source: kinds of these tasks train on
# nothing else, and these sources train nothing else.
_SOURCE_TASKS = {"tagging": ("tagged sentences", "tagger"), "language_model": ("running text", "rnn_lm"),
                 "seq2seq": ("sequence pairs", "seq2seq")}
# Running text also trains word vectors: a data task -> the training tasks it feeds besides its own.
_ALSO_TRAINS = {"language_model": WORD_VECTOR_TASKS}
# what each word-vector task reads running text as (text.features)
_READS = {"word_embeddings": "tokens", "glove": "cooccurrence"}


def _sequence_task_problems(config: PipelineConfig) -> list[Problem]:
    kind = config.model.kind
    if kind not in kinds():
        return []
    kind_task = training_task(config.model) if family(config.model) == "torch" else None
    if kind_task in _ALSO_TRAINS.get(config.task, ()):
        if config.text.tokenizer.kind != "word":
            return [("text.tokenizer.kind", f"{kind} learns a vector per word: it needs the word tokenizer",
                     config.text.tokenizer.kind)]
        if config.text.features != _READS[kind_task]:
            return [("text.features", f"{kind} reads running text as {_READS[kind_task]}", config.text.features)]
        return []
    if config.task == "language_model" and config.text.features == "cooccurrence":
        return [("text.features", "co-occurrence counts train glove kinds; language models read tokens",
                 config.text.features)]
    if kind_task in WORD_VECTOR_TASKS:
        return [("model.kind", f"{kind} learns word vectors from running text (text_files, bundled_corpus); "
                 f"got a {config.task} source", kind)]
    for task, (source, example) in _SOURCE_TASKS.items():
        if (config.task == task) != (kind_task == task):
            return [("model.kind", f"{source} train {task} kinds (e.g. {example}), and {task} kinds need {source}; "
                     f"got {kind!r} for a {config.task} source", kind)]
    return []


def _bucketing_problems(config: PipelineConfig) -> list[Problem]:
    """Bucketing groups rows by their token count: only inputs that are token ids have one."""
    if config.training.bucket_by_length is None:
        return []
    tokens = config.modality in ("tagged", "pairs") or (
        config.modality == "text" and (config.task == "language_model" or config.text.features == "tokens"))
    if tokens and (config.model.kind not in kinds() or family(config.model) == "torch"):
        return []
    return [("training.bucket_by_length", "groups token sequences by length; this pipeline's model reads "
             f"{'no token ids' if not tokens else 'arrays, not batches'}", config.training.bucket_by_length)]


def _text_problems(config: PipelineConfig) -> list[Problem]:
    """A kind whose config takes `vocab_size` reads token ids; every other kind reads one
    fixed-width vector per text."""
    kind, features = config.model.kind, config.text.features
    if kind not in kinds() or kind == "ensemble":
        return []
    reads_tokens = "vocab_size" in config_fields(config.model)
    if reads_tokens and features != "tokens":
        return [("text.features", f"model.kind {kind!r} reads token ids: set text.features to tokens", features)]
    if not reads_tokens and features == "tokens":
        return [("text.features", f"model.kind {kind!r} reads one vector per text: set text.features to "
                 "bag_of_words or tfidf (sequence kinds such as rnn read tokens)", features)]
    embeddings = config.text.embeddings
    if embeddings is not None:
        dim = DIMENSIONS[embeddings.vectors]
        fields = config_fields(config.model)
        if "embed_dim" not in fields:
            return [("text.embeddings", f"model.kind {kind!r} has no embed_dim to start from word vectors", kind)]
        given = config.model.params.get("embed_dim", fields["embed_dim"].default)
        if given != dim:
            return [("model.params.embed_dim", f"must be {dim} to start from {embeddings.vectors}", given)]
    return []


def _task_problems(config: PipelineConfig) -> list[Problem]:
    """What the model's training task cannot do: an embedding model (metric_learning) has
    no classes to attack, explain or train adversarially; a class split holds whole labels
    out of training, which only an embedding model can be judged on."""
    kind = config.model.kind
    metric = kind in kinds() and family(config.model) == "torch" and training_task(config.model) == "metric_learning"
    problems: list[Problem] = []
    if metric:
        evaluation = config.evaluation
        visual = evaluation.visual and "visual" in evaluation.model_fields_set  # on by default: skipped quietly
        for where, value in (("evaluation.attacks", evaluation.attacks), ("evaluation.visual", visual),
                             ("training.adversarial", config.training.adversarial)):
            if value:
                problems.append((where, f"needs a classifier; {kind!r} is an embedding model (metric_learning)", value))
    elif config.split.method == "classes" and kind in kinds():
        problems.append(("split.method", "classes holds whole labels out of training, so only embedding models "
                         f"(metric_learning kinds, e.g. siamese) can be judged on them; {kind!r} is not one", "classes"))
    return problems


def _spec_problems(where: str, spec: dict[str, Any], info: DataInfo) -> list[Problem]:
    kind, params = spec["kind"], spec.get("params") or {}
    if kind not in kinds():
        return [(f"{where}.kind", f"unknown model kind; registered kinds: {kinds()}", kind)]
    declared = config_fields(spec)
    given = sorted(set(params) & set(declared) & set(DATA_FIELDS))
    if given:
        return [(f"{where}.params.{given[0]}", "is set from the data; leave it out", params[given[0]])]
    required = [name for name, f in declared.items() if name in DATA_FIELDS and _required(f)]
    lacking = [name for name in required if name not in info.model_fields()]
    if lacking:
        return [(f"{where}.kind", f"takes {lacking} from its data, which a {info.modality} source does not give", kind)]
    problems: list[Problem] = []
    try:
        make_config(spec, info)
    except ValueError as err:
        problems.append((f"{where}.params", str(err), params))
    for i, member in enumerate(params.get("members") or []):
        if isinstance(member, dict) and isinstance(member.get("kind"), str):
            problems += _spec_problems(f"{where}.params.members[{i}]", {"params": {}, **member}, info)
    return problems


def _required(field: Any) -> bool:
    """A dataclass field without a default."""
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _key_problems(
    where: str, key: str, dist: Distribution, model: dict[str, Any], training: TrainingConfig, info: DataInfo
) -> list[Problem]:
    """A search key must name a config field, and every value it can take must be valid there."""
    if key.startswith(_PARAMS):
        name = key.removeprefix(_PARAMS)
        allowed = sorted(set(config_fields(model)) - set(DATA_FIELDS))
        if name not in allowed:
            return [(where, f"model {model['kind']!r} has no param {name!r}; allowed: {allowed}", key)]
        check = lambda v: make_config(model, info, **{name: v})  # noqa: E731
    elif key.startswith("training."):
        fields = key.split(".")[1:]
        missing = _missing_field(TrainingConfig, fields)
        if missing is not None:
            return [(where, missing, key)]
        base = training.model_dump()
        check = lambda v: TrainingConfig.model_validate(apply_overrides(base, {".".join(fields): v}))  # noqa: E731
    else:
        return [(where, "a search key starts with 'model.params.' or 'training.'", key)]
    problems = []
    for value in _candidates(dist):
        try:
            check(value)
        except (ValueError, ValidationError) as err:
            problems.append((where, f"value {value!r} is not valid there: {_first_error(err)}", value))
            break
    return problems


def _missing_field(model: type[BaseModel], path: list[str]) -> str | None:
    """Why `path` names no field of `model`, or None when it does."""
    node: Any = model
    for depth, name in enumerate(path):
        fields = getattr(node, "model_fields", None)
        if fields is None:
            return f"{'.'.join(path[:depth])!r} has no fields below it"
        if name not in fields:
            prefix = ".".join(["training", *path[:depth]])
            return f"{prefix} has no field {name!r}; allowed: {sorted(fields)}"
        node = _model_type(fields[name].annotation)
    return None


def _model_type(annotation: Any) -> Any:
    """The pydantic model inside `X`, `X | None`: where a dotted path can go on."""
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _candidates(dist: Distribution) -> list[Any]:
    """The values a distribution can produce that decide whether it fits its field."""
    if isinstance(dist, (Grid, Choice)):
        return list(dist.grid if isinstance(dist, Grid) else dist.choice)
    if isinstance(dist, Uniform):
        return [float(v) for v in dist.uniform]
    if isinstance(dist, LogUniform):
        return [float(v) for v in dist.loguniform]
    if isinstance(dist, RandInt):
        return [int(v) for v in dist.randint]
    raise TypeError(f"unknown distribution {dist!r}")


def _first_error(err: Exception) -> str:
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg'].removeprefix('Value error, ')}"
    return str(err)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
