"""Storing fitted scikit-learn estimators with skops: loading never unpickles.

skops records every object's type and rebuilds the object from plain state; types it does
not trust by default must be listed at load time. We trust a type only when its module is
in `TRUSTED_PREFIXES` and it names a class: a function reference such as `builtins.eval`
also matches a prefix, but an estimator that stores a callable could be made to call it.

An estimator checkpoint directory mirrors the torch one (`checkpoint_files`):

    model.skops   the fitted estimator
    state.json    epoch (always 0), model spec, metrics
"""

from __future__ import annotations

import builtins
import importlib
from pathlib import Path
from typing import Any

from components.artifacts.checkpoint_files import write_state

ESTIMATOR_FILE = "model.skops"

TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "components.models.estimators.")


def save_estimator(estimator: Any, path: str | Path) -> Path:
    """Write a (fitted) scikit-learn estimator to `path` in the skops format; returns the path."""
    import skops.io as sio  # here, not at import: skops scans every scikit-learn type on import (~1.3 s)

    path = Path(path)
    sio.dump(estimator, path)
    return path


def load_estimator(path: str | Path) -> Any:
    """Read an estimator written by `save_estimator`.

    Raises ValueError naming every type in the file that is outside the allowlist.
    """
    # read once: checking one copy of the file and loading another would let it change in between
    data = Path(path).read_bytes()
    import skops.io as sio

    untrusted = sio.get_untrusted_types(data=data)
    refused = [name for name in untrusted if not _trusted(name)]
    if refused:
        raise ValueError(
            f"{path}: refusing to load types outside the allowlist {list(TRUSTED_PREFIXES)} "
            f"(classes only): {refused}"
        )
    return sio.loads(data, trusted=untrusted)


def write_estimator_checkpoint(
    directory: str | Path, estimator: Any, spec: dict[str, Any], metrics: dict[str, float]
) -> Path:
    """Write `model.skops` and `state.json` (the layout `read_state` reads) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_estimator(estimator, directory / ESTIMATOR_FILE)
    return write_state(directory, spec, metrics)


def _trusted(name: str) -> bool:
    if not name.startswith(TRUSTED_PREFIXES):
        return False
    return isinstance(_resolve(name), type)


def _resolve(name: str) -> Any:
    """The object a dotted type name refers to, or None; imports only allowlisted modules."""
    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj: Any = builtins if module_name == "builtins" else importlib.import_module(module_name)
        except ImportError:
            continue
        for attr in parts[split:]:
            obj = getattr(obj, attr, None)
        return obj
    return None
