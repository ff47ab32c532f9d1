"""`rayline server up|down|status`: the long-running services on this machine, as
background processes whose ids and addresses live under `.rayline/server/`.

- a Prefect server (its own sqlite database under `.rayline/prefect-server/`): schedules
  fire only against a real server; while it runs, every `rayline` command reports to it;
- the MLflow UI over the profile's tracking store.

Ray needs no service here: each command starts a local Ray (or joins the profile's cluster,
whose dashboard the head node serves).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from components.config import ProfileConfig

SERVER_DIR = Path(".rayline/server")
PREFECT_HOME = Path(".rayline/prefect-server")


@dataclass(frozen=True)
class Service:
    name: str
    url: str  # what a person opens
    health: str  # answers 200 once the service is up
    command: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class Running:
    service: Service
    pid: int | None
    healthy: bool


def services(profile: ProfileConfig, prefect_port: int = 4200, mlflow_port: int = 5000) -> list[Service]:
    bin_dir = Path(sys.executable).parent
    prefect = f"http://127.0.0.1:{prefect_port}"
    mlflow = f"http://127.0.0.1:{mlflow_port}"
    return [
        Service(
            "prefect", prefect, f"{prefect}/api/health",
            [str(bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)],
            {"PREFECT_HOME": str(PREFECT_HOME.resolve()), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
             "PREFECT_API_URL": f"{prefect}/api",
             # Look for due runs every 5 s, not every 60: a local server with short schedules.
             "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5"},
        ),
        Service(
            "mlflow", mlflow, f"{mlflow}/health",
            [str(bin_dir / "mlflow"), "server", "--backend-store-uri", profile.mlflow_tracking_uri,
             "--default-artifact-root", str(Path(profile.mlflow_artifacts).resolve()),
             "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"],
            {"MLFLOW_DISABLE_TELEMETRY": "true"},
        ),
    ]


def up(profile: ProfileConfig, prefect_port: int = 4200, mlflow_port: int = 5000, timeout_s: float = 180) -> list[Running]:
    """Start what is not running yet and wait until each answers; raise naming the log of one that does not."""
    SERVER_DIR.mkdir(parents=True, exist_ok=True)
    PREFECT_HOME.mkdir(parents=True, exist_ok=True)
    started = []
    for service in services(profile, prefect_port, mlflow_port):
        current = _state(service.name)
        if current is not None and _alive(current["pid"]):
            started.append(Service(**current["service"]))
            continue
        log = SERVER_DIR / f"{service.name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                service.command, env={**os.environ, **service.env}, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,  # outlives this command; stopped by `down`
            )
        (SERVER_DIR / f"{service.name}.json").write_text(
            json.dumps({"pid": proc.pid, "service": service.__dict__}, indent=2)
        )
        started.append(service)
    deadline = time.monotonic() + timeout_s
    for service in started:
        while not _healthy(service.health):
            state = _state(service.name)
            if time.monotonic() > deadline or state is None or not _alive(state["pid"]):
                raise RuntimeError(f"{service.name} did not come up at {service.url}; see {SERVER_DIR / (service.name + '.log')}")
            time.sleep(0.5)
    return status()


def down() -> list[str]:
    """Stop every service `up` started; returns their names."""
    stopped = []
    for path in sorted(SERVER_DIR.glob("*.json")):
        state = json.loads(path.read_text())
        if _alive(state["pid"]):
            try:
                os.killpg(state["pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10  # then it is killed: neither keeps state it must flush
            while _alive(state["pid"]) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(state["pid"]):
                os.killpg(state["pid"], signal.SIGKILL)
            stopped.append(path.stem)
        path.unlink()
    return stopped


def status() -> list[Running]:
    """Each service `up` started: its process, and whether it answers."""
    found = []
    for path in sorted(SERVER_DIR.glob("*.json")):
        state = json.loads(path.read_text())
        service = Service(**state["service"])
        alive = _alive(state["pid"])
        found.append(Running(service, state["pid"] if alive else None, alive and _healthy(service.health)))
    return found


def prefect_api_url() -> str | None:
    """The API of the Prefect server `up` started, while its process lives."""
    state = _state("prefect", SERVER_DIR)
    if state is None or not _alive(state["pid"]):
        return None
    return state["service"]["env"]["PREFECT_API_URL"]


def _state(name: str, folder: Path = SERVER_DIR) -> dict | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not running
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
