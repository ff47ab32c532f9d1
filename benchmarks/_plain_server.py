"""The baseline for serve_overhead.py and image_serving.py: one bundle behind plain FastAPI + uvicorn.

One process, no batching: each request is validated as the Serve `ModelServer` validates it
(`frame_from_records` for a table's rows, `images_from_instances` for an image model's
instances) and answered with `Bundle.predict`, with the same request and response bodies
as the Ray Serve gateway.

    .venv/bin/python benchmarks/_plain_server.py --bundle DIR --name NAME --version V --port PORT
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import polars as pl
import torch
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from components.artifacts.bundle import load_bundle
from components.data.image_requests import images_from_instances
from components.data.schema import InvalidInput, frame_from_records
from serving.schemas import ErrorBody, PredictRequest, PredictResponse


def make_app(bundle_dir: str, name: str, version: str, max_instances: int) -> FastAPI:
    bundle = load_bundle(bundle_dir)
    features = bundle.features
    app = FastAPI(title="plain baseline")

    # The check ModelServer._validated makes, so both sides do the same work per request.
    def validated(instances: list[Any]) -> pl.DataFrame | list[np.ndarray]:
        if features.modality == "image":
            return images_from_instances(instances, features.spec, max_instances)
        return frame_from_records(instances, features.schema, max_instances)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # exclude_none as the Gateway's route: its body has no `members`/`degraded` keys for a single model
    @app.post(
        "/v1/models/{model}:predict", response_model=PredictResponse, response_model_exclude_none=True,
        responses={422: {"model": ErrorBody}},
    )
    async def predict(model: str, body: PredictRequest):
        if model != name:
            return JSONResponse(status_code=404, content=ErrorBody(error=f"model {model!r} is not served", field="name").model_dump())
        try:
            rows = validated(body.instances)
        except InvalidInput as exc:
            return JSONResponse(status_code=422, content=ErrorBody(error=exc.message, field=exc.field).model_dump())
        return {"predictions": bundle.predict(rows), "model_name": name, "model_version": version}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-instances", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a 0.5-CPU Serve replica gets 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    app = make_app(args.bundle, args.name, args.version, args.max_instances)
    # Loopback only; no access log (Serve's per-request log goes to files, not a terminal).
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
