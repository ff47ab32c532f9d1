"""One real Prefect server for the end-to-end tests, started and stopped by `rayline server`
itself: the CLI runs report to it instead of each starting a temporary one, and
`rayline schedule` needs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

RAYLINE = str(Path(sys.executable).with_name("rayline"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env() -> dict[str, str]:
    """The environment for a `rayline` process with its folder's own stores: nothing this
    test process was pointed at (mlflow's set_tracking_uri sets MLFLOW_TRACKING_URI)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for key in ("PREFECT_HOME", "PREFECT_API_URL", "MLFLOW_TRACKING_URI", "RAY_ADDRESS"):
        env.pop(key, None)
    return env


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`rayline server up` in a folder of its own (its cwd); `rayline server down` at the end."""
    home = tmp_path_factory.mktemp("services")
    ports = ["--prefect-port", str(_free_port()), "--mlflow-port", str(_free_port())]
    up = subprocess.run([RAYLINE, "server", "up", *ports], cwd=home, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "prefect " in up.stdout and "(up, pid" in up.stdout and "mlflow " in up.stdout
    yield home
    down = subprocess.run([RAYLINE, "server", "down"], cwd=home, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert down.returncode == 0 and "stopped mlflow, prefect" in down.stdout, down.stdout + down.stderr
    status = subprocess.run([RAYLINE, "server", "status"], cwd=home, env=clean_env(), capture_output=True, text=True)
    assert "no services" in status.stdout


@pytest.fixture(scope="session")
def cli_env(services: Path) -> dict[str, str]:
    """`clean_env` reporting to the session's Prefect server."""
    import json

    state = json.loads((services / ".rayline" / "server" / "prefect.json").read_text())
    return {**clean_env(), "PREFECT_API_URL": state["service"]["env"]["PREFECT_API_URL"]}
