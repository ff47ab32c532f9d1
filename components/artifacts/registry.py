"""MLflow model registry: bundles become model versions; the `champion` alias moves only on
improvement, and only for a version that passes every promotion gate (`registry.gates`)."""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from components.config import GateConfig

CHAMPION = "champion"
_BUNDLE_PATH = "bundle"
_DIGEST_TAG = "rayline.bundle_sha256"
_TAG_CHARS = 4000  # below MLflow's limit on a model version tag's value


@dataclass(frozen=True)
class GateResult:
    """One promotion gate checked against a version's metrics."""

    metric: str
    op: str  # ">=" (min) or "<=" (max)
    threshold: float
    value: float | None  # None: the metric was not computed
    available: tuple[str, ...] = ()  # the metrics that were, to name when this one is missing

    @property
    def passed(self) -> bool:
        if self.value is None or math.isnan(self.value):
            return False
        return self.value >= self.threshold if self.op == ">=" else self.value <= self.threshold

    @property
    def shortfall(self) -> float | None:
        """How far the value misses the threshold (0 when it passes; None when not computed)."""
        if self.value is None or math.isnan(self.value):
            return None
        return max(0.0, self.threshold - self.value if self.op == ">=" else self.value - self.threshold)

    def describe(self) -> str:
        """`test_accuracy >= 0.99 failed by 0.013`, `... passed (0.994)`, or why it could not be checked."""
        rule = f"{self.metric} {self.op} {self.threshold:g}"
        if self.value is None:
            return f"{rule} failed: {self.metric!r} was not computed; computed: {list(self.available)}"
        if math.isnan(self.value):
            return f"{rule} failed: {self.metric} is NaN"
        if self.passed:
            return f"{rule} passed ({self.value:.4g})"
        return f"{rule} failed by {self.shortfall:.4g} ({self.value:.4g})"


@dataclass(frozen=True)
class Registration:
    name: str
    version: str
    champion: bool
    previous_champion: str | None
    metric: str
    value: float
    gates: tuple[GateResult, ...] = ()  # every gate checked, in the config's order

    @property
    def failed_gates(self) -> tuple[GateResult, ...]:
        return tuple(g for g in self.gates if not g.passed)

    @property
    def has_champion(self) -> bool:
        """Whether some version holds the champion alias now: this one, or the one that stays."""
        return self.champion or self.previous_champion is not None


def check_gates(gates: Mapping[str, GateConfig], metrics: Mapping[str, float]) -> tuple[GateResult, ...]:
    """Every bound of every gate (`registry.gates`: metric -> {min, max}) against `metrics`.
    A metric that was not computed fails its gate, naming the metrics that were."""
    available = tuple(sorted(metrics))
    results = []
    for metric, gate in gates.items():
        value = float(metrics[metric]) if metric in metrics else None
        for op, threshold in ((">=", gate.min), ("<=", gate.max)):
            if threshold is not None:
                results.append(GateResult(metric, op, float(threshold), value, available if value is None else ()))
    return tuple(results)


def register_bundle(
    name: str, bundle_dir: str | Path, *, run_id: str, metric: str, value: float, mode: str,
    gates: Sequence[GateResult] = (),
) -> Registration:
    """Log the bundle to run `run_id`, make it a version of model `name`, and move the
    `champion` alias to it only if it passes every gate in `gates` (`check_gates`) and beats
    the current champion on `metric` (or none exists). A version that fails a gate is
    registered all the same, without the alias; its `gates` tag says which failed and why.

    A run holds one bundle: registering a different one from the same run raises ValueError
    (its files would merge into the first's, and every version would serve the mix)."""
    client = MlflowClient()
    digest = bundle_digest(bundle_dir)
    held = client.get_run(run_id).data.tags.get(_DIGEST_TAG)
    if held is not None and held != digest:
        raise ValueError(
            f"run {run_id} already holds a different bundle (sha256 {held[:12]}, this one {digest[:12]}): "
            "register each bundle from its own run"
        )
    client.log_artifacts(run_id, str(bundle_dir), _BUNDLE_PATH)
    client.set_tag(run_id, _DIGEST_TAG, digest)
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    source = f"{client.get_run(run_id).info.artifact_uri}/{_BUNDLE_PATH}"
    tags = {"metric": metric, "value": repr(float(value))}
    failed = [g for g in gates if not g.passed]
    if gates:
        tags["gates"] = ("; ".join(g.describe() for g in failed) if failed else "passed")[:_TAG_CHARS]
    version = client.create_model_version(name, source=source, run_id=run_id, tags=tags).version
    current = champion_version(name)
    previous = str(current.version) if current is not None else None
    wins = not failed and (current is None or _beats(value, float(current.tags.get("value", "nan")), mode))
    if wins:
        client.set_registered_model_alias(name, CHAMPION, version)
    return Registration(name, str(version), wins, previous, metric, float(value), tuple(gates))


def bundle_digest(bundle_dir: str | Path) -> str:
    """sha256 over a bundle's relative file paths and contents."""
    digest = hashlib.sha256()
    root = Path(bundle_dir)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def champion_version(name: str) -> Any | None:
    try:
        return MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def resolve_version(tracking_uri: str, name: str, alias: str = CHAMPION) -> str:
    """The version of model `name` that `alias` points at now."""
    mlflow.set_tracking_uri(tracking_uri)
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        raise LookupError(f"model {name!r} has no version with alias {alias!r} in {tracking_uri}") from exc


def download_bundle(
    tracking_uri: str, name: str, alias: str = CHAMPION, dst: str | None = None, *, version: str | None = None
) -> tuple[Path, str]:
    """Fetch the bundle of model `name` at `version`, or at `alias` when no version is
    given; return (local dir, version). Deployments that must agree on one version (an
    ensemble's members and combiner) pass the version resolved once."""
    version = version or resolve_version(tracking_uri, name, alias)
    mlflow.set_tracking_uri(tracking_uri)
    target = dst or tempfile.mkdtemp(prefix=f"rayline-{name}-")
    path = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=target)
    return Path(path), version


def read_bundle_json(tracking_uri: str, name: str, version: str, filename: str) -> Any:
    """One JSON file of a registered bundle (spec.json, ensemble.json, ...), fetched alone."""
    with tempfile.TemporaryDirectory(prefix=f"rayline-{name}-") as tmp:
        return json.loads(fetch_bundle_file(tracking_uri, name, version, filename, tmp).read_text())


def fetch_bundle_file(tracking_uri: str, name: str, version: str, filename: str, dst: str) -> Path:
    """One file of a registered bundle, downloaded alone into `dst`; FileNotFoundError when
    the bundle has no such file."""
    mlflow.set_tracking_uri(tracking_uri)
    try:
        path = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}/{filename}", dst_path=dst)
    except (MlflowException, OSError) as exc:
        raise FileNotFoundError(f"model {name!r} version {version} has no {filename} in its bundle") from exc
    return Path(path)


def latest_lineage(tracking_uri: str, name: str) -> tuple[str, dict[str, Any]] | None:
    """(version, lineage.json) of the newest registered version of `name`; None before the first."""
    mlflow.set_tracking_uri(tracking_uri)
    versions = MlflowClient().search_model_versions(f"name = '{name}'")
    if not versions:
        return None
    newest = str(max(int(v.version) for v in versions))
    return newest, read_bundle_json(tracking_uri, name, newest, "lineage.json")


def _beats(new: float, old: float, mode: str) -> bool:
    if math.isnan(old):
        return True
    return new < old if mode == "min" else new > old


def champions(tracking_uri: str) -> list[str]:
    """Names of the registered models that have a `champion` version."""
    mlflow.set_tracking_uri(tracking_uri)
    return sorted(m.name for m in MlflowClient().search_registered_models() if CHAMPION in (m.aliases or {}))
