"""One Ray Serve deployment per model: loads a registered bundle, batches requests."""

from __future__ import annotations

import tempfile
from typing import Any

import polars as pl
from ray import serve

from components.artifacts.bundle import load_bundle
from components.artifacts.registry import download_bundle
from components.data.schema import InvalidInput, frame_from_records


@serve.deployment(ray_actor_options={"num_cpus": 0.5})
class ModelServer:
    """Answers for one registered model, loaded from the registry by alias at start."""

    def __init__(
        self,
        name: str,
        alias: str,
        tracking_uri: str,
        max_instances: int,
        max_batch_size: int,
        batch_wait_s: float,
        version: str | None = None,
    ) -> None:
        with tempfile.TemporaryDirectory(prefix=f"rayline-{name}-") as tmp:
            path, self.version = download_bundle(tracking_uri, name, alias, dst=tmp, version=version)
            self.bundle = load_bundle(path)  # reads everything into memory
        self.name = name
        self.max_instances = max_instances
        self._infer.set_max_batch_size(max_batch_size)
        self._infer.set_batch_wait_timeout_s(batch_wait_s)

    def status(self) -> dict[str, Any]:
        schema = self.bundle.features.schema
        return {
            "name": self.name,
            "ready": True,
            "version": self.version,
            "task": schema.task,
            "inputs": {c: schema.columns[c].type for c in schema.features},
        }

    async def predict(self, instances: list[Any], explain: bool = False) -> dict[str, Any]:
        """Validate one request's rows, then join the batch; bad input never reaches the batch.
        `explain` adds nothing for a single model: it is the ensembles' member breakdown."""
        try:
            rows = frame_from_records(instances, self.bundle.features.schema, self.max_instances)
        except InvalidInput as exc:
            return {"error": exc.message, "field": exc.field}
        predictions = await self._infer(rows)
        return {"predictions": predictions, "model_name": self.name, "model_version": self.version}

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def _infer(self, requests: list[pl.DataFrame]) -> list[list[Any]]:
        # One forward pass for every request waiting in the batch, then split back.
        sizes = [r.height for r in requests]
        answers = self.bundle.predict(pl.concat(requests))
        out, start = [], 0
        for size in sizes:
            out.append(answers[start : start + size])
            start += size
        return out
