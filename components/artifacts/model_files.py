"""One fitted model on disk, in its family's own format, next to the spec that builds it.

    torch     model.safetensors   weights; the module is rebuilt from the spec
    sklearn   model.skops         read against a type allowlist
    xgboost   model.ubj           XGBoost's own format

Bundles, and each member inside an ensemble bundle, store their model this way; nothing
is unpickled on the way back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch.nn as nn
from safetensors.torch import load_file, save_file

from components.artifacts.checkpoint_files import MODEL_FILE
from components.artifacts.estimator_io import ESTIMATOR_FILE, load_estimator, save_estimator
from components.artifacts.xgboost_io import XGBOOST_FILE, load_xgboost, save_xgboost
from components.models import build, config_fields, family

SPEC_FILE = "spec.json"
MODEL_FILES = {"torch": MODEL_FILE, "sklearn": ESTIMATOR_FILE, "xgboost": XGBOOST_FILE}


def model_file(spec: dict[str, Any]) -> str:
    """The file name `spec`'s model is stored under."""
    kind_family = family(spec)
    if kind_family not in MODEL_FILES:
        raise ValueError(f"model kind {spec.get('kind')!r} (family {kind_family!r}) is not stored as one file")
    return MODEL_FILES[kind_family]


def write_model(directory: str | Path, model: Any, spec: dict[str, Any]) -> Path:
    """Write `model` and its `spec` ({kind, params}: a torch kind's with its data sizes, an
    estimator's with its task) into `directory`; returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / model_file(spec)
    if isinstance(model, nn.Module):
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    elif family(spec) == "xgboost":
        save_xgboost(model, path)
    else:
        save_estimator(model, path)
    (directory / SPEC_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True))
    return directory


def read_model(directory: str | Path, spec: dict[str, Any] | None = None) -> Any:
    """The model stored in `directory` (spec from its spec.json unless given): an nn.Module
    in eval mode, or a fitted estimator."""
    directory = Path(directory)
    if spec is None:
        spec = json.loads((directory / SPEC_FILE).read_text())
    path = directory / model_file(spec)
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: missing {path.name} for model kind {spec['kind']!r}")
    kind_family = family(spec)
    if kind_family == "torch":
        model = build(spec)
        model.load_state_dict(load_file(str(path)))
        return model.eval()
    if kind_family == "xgboost":
        return load_xgboost(path, _task(spec))
    return load_estimator(path)


def _task(spec: dict[str, Any]) -> str:
    # specs written before `task` had a default always name it; a newer one may leave it out
    task = (spec.get("params") or {}).get("task")
    return task if task is not None else config_fields(spec)["task"].default
