"""When a task is worth retrying: only failures that may pass (I/O, the network, the
cluster), never a bad input that would fail the same way again."""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

TRANSIENT = (OSError, TimeoutError, ConnectionError)
# 1 s, 2 s, 4 s, ... between attempts.
BACKOFF = exponential_backoff(backoff_factor=1)


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry when the task failed with a transient error."""
    try:
        state.result()
    except TRANSIENT:
        return True
    except Exception:  # noqa: BLE001 - any other failure is the input's, not the moment's
        return False
    return False
