"""Scheduled runs that outlast their interval under `overlap: wait`: on the session's real
Prefect server, the runs queued for the deployment's one slot are cut down to the latest of
each kind when a run starts, and nothing else the deployment has is touched."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import AwaitingConcurrencySlot, Running, Scheduled

from flows.schedule import drop_redundant_waiting

pytestmark = pytest.mark.e2e


def test_a_starting_run_drops_the_queued_runs_a_later_one_covers(services: Path, cli_env: dict[str, str]):
    now = datetime.now(timezone.utc)
    plain, drift = {"config": "p.yaml", "force": False}, {"config": "p.yaml", "force": True}
    with temporary_settings({PREFECT_API_URL: cli_env["PREFECT_API_URL"]}), get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("scheduled-pipeline")
        deployment = client.create_deployment(flow_id, name=f"queue-{now.timestamp():.0f}")
        other = client.create_deployment(flow_id, name=f"other-{now.timestamp():.0f}")

        def run(parameters: dict, state, deployment_id=deployment):
            return client.create_flow_run_from_deployment(deployment_id, parameters=parameters, state=state).id

        # Four plain runs fell due one interval apart while a long run held the slot, and a
        # drift run between them; one run is due tomorrow; another deployment queues too.
        queued = [run(plain, AwaitingConcurrencySlot(scheduled_time=now - timedelta(minutes=m))) for m in (4, 3, 2, 1)]
        drift_run = run(drift, AwaitingConcurrencySlot(scheduled_time=now - timedelta(minutes=3)))
        running = run(plain, Running())
        future = run(plain, Scheduled(scheduled_time=now + timedelta(days=1)))
        elsewhere = run(plain, AwaitingConcurrencySlot(scheduled_time=now - timedelta(minutes=5)), other)

        dropped = drop_redundant_waiting(client, deployment)

        assert sorted(r.id for r in dropped) == sorted(queued[:3])
        state = {i: client.read_flow_run(i).state.name for i in [*queued, drift_run, running, future, elsewhere]}
        assert [state[i] for i in queued] == ["Cancelled", "Cancelled", "Cancelled", "AwaitingConcurrencySlot"]
        assert state[drift_run] == "AwaitingConcurrencySlot"  # a retrain drift asked for is never dropped
        assert (state[running], state[future], state[elsewhere]) == ("Running", "Scheduled", "AwaitingConcurrencySlot")
        assert json.loads(json.dumps(client.read_flow_run(queued[-1]).parameters)) == plain
        assert drop_redundant_waiting(client, deployment) == []  # one of each kind left: nothing more to drop
