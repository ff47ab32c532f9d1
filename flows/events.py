"""The events rayline sends a Prefect server, which scheduled deployments trigger on
(`rayline schedule --on-new-data / --on-drift`). Without a server they go nowhere."""

from __future__ import annotations

from typing import Any

from prefect.events import emit_event

NEW_DATA = "rayline.bronze.committed"
DRIFT = "rayline.drift.detected"


def pipeline_resource(name: str) -> dict[str, str]:
    return {"prefect.resource.id": f"rayline.pipeline.{name}", "prefect.resource.name": name}


def model_resource(name: str) -> dict[str, str]:
    return {"prefect.resource.id": f"rayline.model.{name}", "prefect.resource.name": name}


def announce_new_data(name: str, bronze_version: int | None, rows: int) -> None:
    """The watcher committed rows of pipeline `name`."""
    emit_event(NEW_DATA, resource=pipeline_resource(name), payload={"bronze_version": bronze_version, "rows": rows})


def announce_drift(name: str, version: str, summary: dict[str, Any]) -> None:
    """`rayline monitor` found what model `name` version `version` serves drifted."""
    emit_event(DRIFT, resource=model_resource(name), payload={"version": version, **summary})
