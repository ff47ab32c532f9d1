"""An ensemble served as a composition: one deployment per member, one combiner.

The combiner validates each request, batches the valid ones that arrive while the previous
batch is out with the members, encodes a batch once, sends it to every member deployment
at the same time through
DeploymentHandles, and combines what comes back with the ensemble's own `Combiner` (vote,
average, weights or meta-learner). Members batch too and scale apart
(`serving.member_replicas`).

A member that raises or misses `member_timeout_s` is named in the answer. With
`allow_degraded` the members left are combined (`Combiner.without`); otherwise the
request fails with 503.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from typing import Any

import numpy as np
import polars as pl
from ray import serve
from ray.serve.handle import DeploymentHandle

from components.artifacts.ensemble_io import read_combiner, read_description, read_member
from components.artifacts.registry import download_bundle
from components.config import RecorderConfig
from components.data.fitted_state import state_from_dict
from components.data.schema import InvalidInput, frame_from_records
from components.models.ensemble import member_output
from serving.recording import open_recorder


@serve.deployment(ray_actor_options={"num_cpus": 0.25})
class MemberServer:
    """One member of a registered ensemble: encoded rows in, its outputs out."""

    def __init__(
        self, name: str, version: str, tracking_uri: str, member: str, max_batch_size: int, batch_wait_s: float
    ) -> None:
        with tempfile.TemporaryDirectory(prefix=f"rayline-{name}-{member}-") as tmp:
            path, _ = download_bundle(tracking_uri, name, dst=tmp, version=version)
            self.model = read_member(path, member)
            description = read_description(path)
        self.task = description["task"]
        self.out_features = description["out_features"]
        self.predict.set_max_batch_size(max_batch_size)
        self.predict.set_batch_wait_timeout_s(batch_wait_s)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def predict(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """(N, C) probabilities or (N,) values per request; one model call per batch."""
        output = member_output(self.model, np.concatenate(inputs), self.task, self.out_features)
        bounds = np.cumsum([len(x) for x in inputs])[:-1]
        return np.split(output, bounds)


# The combiner encodes rows and averages arrays while it awaits the members: a light share.
@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class EnsembleServer:
    """The ensemble's endpoint: validates, fans out to the members, combines."""

    def __init__(
        self,
        name: str,
        version: str,
        tracking_uri: str,
        max_instances: int,
        max_batch_size: int,
        allow_degraded: bool,
        member_timeout_s: float,
        lake_root: str | None = None,
        recorder: RecorderConfig | None = None,
        **members: DeploymentHandle,
    ) -> None:
        with tempfile.TemporaryDirectory(prefix=f"rayline-{name}-") as tmp:
            path, _ = download_bundle(tracking_uri, name, dst=tmp, version=version)
            self.combiner = read_combiner(path)
            self.names = [m["name"] for m in read_description(path)["members"]]
            # the members hold the models: the combiner reads only the features and the rule
            self.features = state_from_dict(json.loads((path / "preprocess.json").read_text()))
        missing = sorted(set(self.names) - set(members))
        if missing:
            raise ValueError(f"ensemble {name!r} version {version}: no deployment for member(s) {missing}")
        self.members = members
        self.name = name
        self.version = version
        self.max_instances = max_instances
        self.allow_degraded = allow_degraded
        self.member_timeout_s = member_timeout_s
        self._queue = _WhileBusy(self._fan_out_batch, max_batch_size)
        self.recorder = open_recorder(name, version, lake_root, recorder)

    def status(self) -> dict[str, Any]:
        schema = self.features.schema
        return {
            "name": self.name,
            "ready": True,
            "version": self.version,
            "task": schema.task,
            "inputs": {c: schema.columns[c].type for c in schema.features},
            "members": self.names,
            "recorder": self.recorder.stats() if self.recorder else None,
        }

    async def explain(self, instances: list[Any]) -> dict[str, Any]:
        return {"error": f"ensemble {self.name!r} explains through :predict with \"explain\": true", "field": "name"}

    async def predict(self, instances: list[Any], explain: bool = False) -> dict[str, Any]:
        """Validate one request's rows, then join the batch; bad input never reaches a member."""
        started = time.perf_counter()
        try:
            rows = frame_from_records(instances, self.features.schema, self.max_instances)
        except InvalidInput as exc:
            return {"error": exc.message, "field": exc.field}
        outputs, failed = await self._fan_out(rows)
        if failed and (not self.allow_degraded or len(failed) == len(self.names)):
            reasons = "; ".join(f"{name}: {error}" for name, error in failed.items())
            return {"unavailable": f"ensemble {self.name!r} cannot answer: member(s) failed ({reasons})", "failed": failed}
        answered = [n for n in self.names if n not in failed]
        combiner = self.combiner.without([i for i, n in enumerate(self.names) if n in failed]) if failed else self.combiner
        answer: dict[str, Any] = {
            "predictions": self.features.answers(combiner([outputs[n] for n in answered])),
            "model_name": self.name,
            "model_version": self.version,
        }
        if explain:
            answer["members"] = {name: self.features.answers(outputs[name]) for name in answered}
        if failed:
            answer["degraded"] = {"failed": failed, "combined": answered}
        if self.recorder is not None:
            self.recorder.record(rows, answer["predictions"], (time.perf_counter() - started) * 1000)
        return answer

    def __del__(self) -> None:
        # Serve calls this when the replica shuts down: what is queued gets written.
        if getattr(self, "recorder", None) is not None:
            self.recorder.close(timeout_s=10)

    async def _fan_out(self, rows: pl.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        return await self._queue.submit(rows)

    async def _fan_out_batch(
        self, requests: list[pl.DataFrame]
    ) -> list[tuple[dict[str, np.ndarray], dict[str, str]]]:
        """Every waiting request's rows encoded together and sent to each member at once:
        one call per member per batch, not per request. Returns, per request, each answering
        member's outputs and each failed member's reason."""
        x = self.features.inputs(pl.concat(requests))  # (N, F), encoded once for every member
        results = await asyncio.gather(*(self._ask(name, x) for name in self.names))
        failed = {name: error for name, (_, error) in zip(self.names, results) if error is not None}
        bounds = np.cumsum([r.height for r in requests])[:-1]
        parts = {name: np.split(output, bounds) for name, (output, error) in zip(self.names, results) if error is None}
        return [({name: split[i] for name, split in parts.items()}, failed) for i in range(len(requests))]

    async def _ask(self, name: str, x: np.ndarray) -> tuple[np.ndarray | None, str | None]:
        """(output, None) or (None, why it failed): one member's failure is not the request's."""
        try:
            return await asyncio.wait_for(self.members[name].predict.remote(x), self.member_timeout_s), None
        except asyncio.TimeoutError:
            return None, f"no answer within {self.member_timeout_s:g}s"
        except Exception as exc:  # a member's error of any kind: report it, keep serving
            return None, f"{type(exc).__name__}: {_first_line(exc)}"


class _WhileBusy:
    """Batches what arrives while the previous batch is out: a fan-out mostly waits on its
    members, so the requests queued meanwhile go together in the next one. `@serve.batch`
    with no wait closes a batch at the first queued request, which left the combiner
    sending one-row calls to every member under load (measured: 1.06 requests per batch)."""

    def __init__(self, run: Any, max_batch_size: int) -> None:
        self._run = run
        self._max = max_batch_size
        self._pending: list[tuple[Any, asyncio.Future]] = []
        self._busy = False

    async def submit(self, item: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if not self._busy:
            self._busy = True
            asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
                try:
                    results = await self._run([item for item, _ in batch])
                except Exception as exc:  # the batch's failure is each of its requests'
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results):
                    if future.done():  # its request was cancelled meanwhile
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._busy = False


def _first_line(exc: Exception) -> str:
    # Ray wraps a replica's exception with its traceback; the last line is the cause
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(exc).__name__
