"""The baseline for serve_overhead.py: one bundle behind plain FastAPI + uvicorn.

One process, no batching: each request is validated with `frame_from_records` and answered
with `Bundle.predict`, with the same request and response bodies as the Ray Serve gateway.

    .venv/bin/python benchmarks/_plain_server.py --bundle DIR --name NAME --version V --port PORT
"""

from __future__ import annotations

import argparse

import torch
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from components.artifacts.bundle import load_bundle
from components.data.schema import InvalidInput, frame_from_records
from serving.schemas import ErrorBody, PredictRequest, PredictResponse


def make_app(bundle_dir: str, name: str, version: str, max_instances: int) -> FastAPI:
    bundle = load_bundle(bundle_dir)
    schema = bundle.features.schema
    app = FastAPI(title="plain baseline")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/models/{model}:predict", response_model=PredictResponse, responses={422: {"model": ErrorBody}})
    async def predict(model: str, body: PredictRequest):
        if model != name:
            return JSONResponse(status_code=404, content=ErrorBody(error=f"model {model!r} is not served", field="name").model_dump())
        try:
            rows = frame_from_records(body.instances, schema, max_instances)
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
