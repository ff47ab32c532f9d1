"""Imports inside `components/` flow one way: config -> data -> models -> evaluation ->
artifacts -> training -> tuning, and never up to flows/ or serving/.

The modules are parsed, not imported, so a lazy import inside a function counts like one
at the top: both are a dependency, and a lower layer that needs a later one has a cycle
waiting to happen.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ROOT / "components"

LAYERS = ("config", "data", "models", "evaluation", "artifacts", "training", "tuning")
# config_check validates a loaded config against the model registry, so it needs models;
# it sits with evaluation, just above them (only flows/ call it)
_MODULE_LAYERS = {"components.config": "config", "components.config_check": "evaluation"}
_ABOVE_COMPONENTS = ("flows", "serving")


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name under `components`, or None (the package itself)."""
    for name, layer in _MODULE_LAYERS.items():
        if module == name or module.startswith(f"{name}."):
            return layer
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "components":
        return None
    if parts[1] not in LAYERS:
        raise ValueError(f"{module}: components.{parts[1]} is in no layer; add it to LAYERS or _MODULE_LAYERS")
    return parts[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str, str]]:
    """(line, imported module, the import statement) for every import anywhere in `tree`.

    `from pkg import name` yields `pkg.name`, which may be a module or an attribute: the
    layer is decided by the package prefix either way."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, ast.unparse(node)) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found += [(node.lineno, f"{base}.{alias.name}", ast.unparse(node)) for alias in node.names]
    return found


def violations(source: str, path: str, module: str, is_package: bool = False) -> list[str]:
    """`path:line: statement` with the reason, for each import of a later layer or of flows/serving."""
    own = layer_of(module)
    tree = ast.parse(source, filename=path)
    problems = []
    for line, target, statement in imported_modules(tree, module, is_package):
        top = target.split(".")[0]
        if top in _ABOVE_COMPONENTS:
            problems.append(f"{path}:{line}: `{statement}` ({module} imports {top}/, which builds on components/)")
            continue
        if top != "components" or own is None:
            continue
        theirs = layer_of(target)
        if theirs is not None and LAYERS.index(theirs) > LAYERS.index(own):
            problems.append(f"{path}:{line}: `{statement}` ({own} imports {theirs}, a later layer)")
    return problems


def _modules() -> list[Path]:
    return sorted(COMPONENTS.rglob("*.py"))


def test_components_import_only_their_own_or_earlier_layers():
    problems = []
    for path in _modules():
        rel = str(path.relative_to(ROOT))
        problems += violations(path.read_text(), rel, module_name(path), path.name == "__init__.py")
    assert not problems, "imports against the layer order " + " -> ".join(LAYERS) + ":\n" + "\n".join(problems)


def test_every_module_belongs_to_a_layer():
    unplaced = [str(p.relative_to(ROOT)) for p in _modules() if p != COMPONENTS / "__init__.py" and
                layer_of(module_name(p)) is None]
    assert not unplaced, f"modules in no layer: {unplaced}"


def test_a_lazy_import_of_a_later_layer_is_reported_with_file_and_line():
    source = (
        "from components.data.lake import Lake\n"
        "def fit():\n"
        "    from components.training.loop import train_model\n"
    )
    assert violations(source, "components/models/x.py", "components.models.x") == [
        "components/models/x.py:3: `from components.training.loop import train_model` "
        "(models imports training, a later layer)"
    ]


@pytest.mark.parametrize(
    ("source", "module", "is_package", "reason"),
    [
        ("import components.tuning.tuner", "components.artifacts.x", False, "(artifacts imports tuning, a later layer)"),
        ("from components import training", "components.evaluation.x", False, "(evaluation imports training"),
        ("from ..training import loop", "components.data.x", False, "(data imports training"),
        ("from ..training import loop", "components.data", True, "(data imports training"),
        ("from components.training import loop", "components.config", False, "(config imports training"),
        ("from serving.app import app", "components.tuning.x", False, "imports serving/"),
    ],
)
def test_every_form_of_import_is_resolved(source, module, is_package, reason):
    (problem,) = violations(source, "x.py", module, is_package)
    assert reason in problem


def test_same_and_earlier_layers_pass():
    source = "from components.models import build\nfrom components.training.loop import train_model\n"
    assert violations(source, "components/training/x.py", "components.training.x") == []
