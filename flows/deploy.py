"""Flow `deploy`: the registered champion(s) -> a Ray Serve application on loopback."""

from __future__ import annotations

import time

import httpx
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from components.config import ProfileConfig, ServingConfig
from flows.workspace import Workspace, connect_ray
from serving.app import ServedModel, start


@task(retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def start_endpoint(profile: ProfileConfig, models: list[ServedModel], host: str, port: int) -> str:
    connect_ray(profile)
    return start(models, profile.mlflow_tracking_uri, host, port, lake=profile.lake)


@task(cache_policy=NO_CACHE)
def wait_ready(url: str, names: list[str], timeout_s: float = 120.0) -> None:
    """Poll until every model answers its status route: the proxy may lag the deployment."""
    deadline = time.monotonic() + timeout_s
    pending = list(names)
    while pending:
        try:
            if httpx.get(f"{url}/v1/models/{pending[0]}", timeout=5).status_code == 200:
                pending.pop(0)
                continue
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"endpoint {url} did not serve {pending} within {timeout_s:.0f}s")
        time.sleep(0.5)


def served_model(serving: ServingConfig) -> ServedModel:
    return ServedModel(
        name=serving.name,
        replicas=serving.replicas,
        max_instances=serving.max_instances,
        max_batch_size=serving.max_batch_size,
        batch_wait_s=serving.batch_wait_timeout_s,
        max_ongoing_requests=serving.max_ongoing_requests,
        member_replicas=serving.member_replicas,
        allow_degraded=serving.allow_degraded,
        member_timeout_s=serving.member_timeout_s,
        recorder=serving.recorder,
    )


@flow(name="deploy", log_prints=True, validate_parameters=False)
def deploy(ws: Workspace) -> str:
    serving = ws.config.serving
    url = start_endpoint(ws.profile, [served_model(serving)], serving.host, serving.port)
    wait_ready(url, [serving.name])
    get_run_logger().info("serving %s at %s/v1/models/%s", serving.name, url, serving.name)
    return url
