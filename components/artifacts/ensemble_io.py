"""An ensemble on disk: each member in its own format, the combination as data.

    ensemble.json        method, voting, task, classes (the labels of the combined columns;
                         ensembles stored before them answer with the indices), weights,
                         member names and specs
    members/<name>/      each member's model file and spec.json (`model_files`)
    meta.skops           the stacking meta-learner, when there is one

The same layout is the ensemble's training checkpoint (plus state.json) and the part of
its bundle that replaces the single model file; serving loads one member per deployment
from `members/<name>/`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from components.artifacts.checkpoint_files import write_state
from components.artifacts.estimator_io import load_estimator, save_estimator
from components.artifacts.model_files import read_model, write_model
from components.models.ensemble import Combiner, Ensemble

ENSEMBLE_FILE = "ensemble.json"
MEMBERS_DIR = "members"
META_FILE = "meta.skops"


def write_ensemble(directory: str | Path, ensemble: Ensemble) -> Path:
    """Write a fitted ensemble into `directory`; returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    combiner = ensemble.combiner_
    for name, model, spec in zip(ensemble.names_, ensemble.members_, ensemble.member_specs_):
        write_model(directory / MEMBERS_DIR / name, model, spec)
    if combiner.meta is not None:
        save_estimator(combiner.meta, directory / META_FILE)
    description = {
        "method": combiner.method,
        "voting": combiner.voting,
        "task": combiner.task,
        "n_classes": combiner.n_classes,
        "classes": ensemble.classes_.tolist() if combiner.task == "classification" else None,
        "weights": list(combiner.weights),
        "n_features_in": int(ensemble.n_features_in_),
        "out_features": int(ensemble.out_features_),
        "members": [{"name": n, "spec": s} for n, s in zip(ensemble.names_, ensemble.member_specs_)],
        "meta": META_FILE if combiner.meta is not None else None,
    }
    (directory / ENSEMBLE_FILE).write_text(json.dumps(description, indent=2))
    return directory


def copy_ensemble(source: str | Path, target: str | Path) -> None:
    """Copy the ensemble's files (not the checkpoint's state.json) from `source` into `target`."""
    source, target = Path(source), Path(target)
    shutil.copyfile(source / ENSEMBLE_FILE, target / ENSEMBLE_FILE)
    shutil.copytree(source / MEMBERS_DIR, target / MEMBERS_DIR, dirs_exist_ok=True)
    if (source / META_FILE).is_file():
        shutil.copyfile(source / META_FILE, target / META_FILE)


def write_ensemble_checkpoint(
    directory: str | Path, ensemble: Ensemble, spec: dict[str, Any], metrics: dict[str, float]
) -> Path:
    """`write_ensemble` plus the state.json every checkpoint has."""
    write_ensemble(directory, ensemble)
    return write_state(directory, spec, metrics)


def read_description(directory: str | Path) -> dict[str, Any]:
    """ensemble.json: what the ensemble is made of, without loading any model."""
    path = Path(directory) / ENSEMBLE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} holds no ensemble: missing {ENSEMBLE_FILE}")
    return json.loads(path.read_text())


def read_member(directory: str | Path, name: str) -> Any:
    """One member's fitted model, by name."""
    names = [m["name"] for m in read_description(directory)["members"]]
    if name not in names:
        raise KeyError(f"ensemble in {directory} has no member {name!r}; members: {names}")
    return read_model(Path(directory) / MEMBERS_DIR / name)


def read_combiner(directory: str | Path) -> Combiner:
    """The combination rule, with the meta-learner loaded when it stacks."""
    d = read_description(directory)
    meta = load_estimator(Path(directory) / d["meta"]) if d["meta"] else None
    return Combiner(
        method=d["method"], task=d["task"], n_classes=d["n_classes"], weights=tuple(d["weights"]),
        voting=d["voting"], meta=meta,
    )


def read_ensemble(directory: str | Path) -> Ensemble:
    """The whole ensemble, fitted, with scikit-learn's predict/predict_proba."""
    d = read_description(directory)
    members = [read_model(Path(directory) / MEMBERS_DIR / m["name"]) for m in d["members"]]
    return Ensemble.assemble(
        members=members,
        member_specs=[m["spec"] for m in d["members"]],
        combiner=read_combiner(directory),
        n_features_in=d["n_features_in"],
        out_features=d["out_features"],
        classes=d.get("classes"),
    )
