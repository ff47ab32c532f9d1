"""Prefect flows and the CLI: wiring only, no ML logic."""

import os
from pathlib import Path

# Prefect's embedded default: an ephemeral local API whose state lives under .rayline/.
# PREFECT_HOME (or PREFECT_API_URL for a server) set by the user wins.
if "PREFECT_HOME" not in os.environ:
    _home = Path(".rayline/prefect").resolve()
    _home.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(_home)
# The first start creates the API's database; on two busy cores that can exceed 20 s.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
