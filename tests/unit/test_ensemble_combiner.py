"""The serving combiner's own logic, without Ray: batching while a fan-out is out, and a
member that raises or misses its timeout named in the answer instead of failing it."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from serving.ensemble import EnsembleServer, _WhileBusy


def test_requests_arriving_during_a_fan_out_go_together_in_the_next():
    seen: list[list[int]] = []

    async def fan_out(items: list[int]) -> list[int]:
        seen.append(items)
        await asyncio.sleep(0.05)  # the members' time
        return [i * 10 for i in items]

    async def main() -> list[int]:
        queue = _WhileBusy(fan_out, max_batch_size=3)
        first = asyncio.create_task(queue.submit(0))
        await asyncio.sleep(0.01)  # the first batch is out; these four wait for it
        rest = [asyncio.create_task(queue.submit(i)) for i in range(1, 5)]
        return await asyncio.gather(first, *rest)

    assert asyncio.run(main()) == [0, 10, 20, 30, 40]
    assert seen == [[0], [1, 2, 3], [4]]  # one alone, then up to max_batch_size together


def test_a_failing_batch_fails_each_of_its_requests_and_the_queue_goes_on():
    async def fan_out(items: list[int]) -> list[int]:
        if 0 in items:
            raise RuntimeError("members unreachable")
        return items

    async def main() -> tuple[BaseException | int, int]:
        queue = _WhileBusy(fan_out, max_batch_size=8)
        failed = await asyncio.gather(queue.submit(0), return_exceptions=True)
        return failed[0], await queue.submit(5)

    error, later = asyncio.run(main())
    assert isinstance(error, RuntimeError) and later == 5


class _Member:
    """Stands in for a DeploymentHandle's `predict` (a unit test of the combiner's logic)."""

    def __init__(self, answer: float | None = None, delay_s: float = 0.0, error: Exception | None = None) -> None:
        self.predict = self
        self.answer, self.delay_s, self.error = answer, delay_s, error

    async def _respond(self, x: np.ndarray) -> np.ndarray:
        await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return np.full(len(x), self.answer)

    def remote(self, x: np.ndarray):
        return self._respond(x)


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_Member(1.0), None),
        (_Member(1.0, delay_s=0.5), "no answer within 0.05s"),
        (_Member(error=ValueError("X has 4 features, but KNN expects 3\n")), "ValueError: X has 4 features, but KNN expects 3"),
    ],
)
def test_a_member_that_raises_or_times_out_is_named(member, reason):
    server = object.__new__(EnsembleServer.func_or_class)  # the class behind the deployment, not started
    server.members, server.member_timeout_s = {"knn": member}, 0.05
    output, error = asyncio.run(server._ask("knn", np.zeros((2, 3))))
    assert error == reason
    assert (output is None) == (reason is not None)
