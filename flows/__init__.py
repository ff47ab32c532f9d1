"""Prefect flows and the CLI: wiring only, no ML logic."""

import os
from pathlib import Path

# Prefect's embedded default: an ephemeral local API whose state lives under .rayline/.
# PREFECT_HOME (or PREFECT_API_URL for a server) set by the user wins. Set before any
# Prefect import; the folder itself is made only once a valid config is about to run.
os.environ.setdefault("PREFECT_HOME", str(Path(".rayline/prefect").resolve()))
# The first start creates the API's database; on two busy cores that can exceed 20 s.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
# Telemetry is off unless the user turns it on (set any of these to override): Prefect's
# would also log "Failed to send telemetry" errors on a machine without internet.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def ensure_prefect_home() -> None:
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)


def _use_running_server() -> None:
    """While `rayline server up` runs a Prefect server here, every command reports to it
    (unless PREFECT_API_URL says otherwise); it must be known before Prefect is imported."""
    if "PREFECT_API_URL" in os.environ:
        return
    from flows.services import prefect_api_url

    url = prefect_api_url()
    if url:
        os.environ["PREFECT_API_URL"] = url


_use_running_server()
