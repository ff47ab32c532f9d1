"""The Ray Serve application: a FastAPI ingress speaking KServe v1, one deployment per model.

    GET  /v1/models                    names of the served models
    GET  /v1/models/{name}             ready state, version, inputs (and members)
    POST /v1/models/{name}:predict     {"instances": [{column: value} or {"b64": image}, ...], "explain": false}
    POST /v1/models/{name}:explain     {"instances": [{"b64": image}, ...]} -> heatmaps (image models)
    GET  /healthz                      liveness
    GET  /docs                         OpenAPI
"""


from dataclasses import dataclass, replace

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve.handle import DeploymentHandle

from components.artifacts.ensemble_io import ENSEMBLE_FILE
from components.artifacts.registry import read_bundle_json, resolve_version
from components.config import RecorderConfig
from components.models import family
from serving.ensemble import EnsembleServer, MemberServer
from serving.model import ModelServer
from serving.schemas import (
    ErrorBody, ExplainRequest, ExplainResponse, ModelList, ModelStatus, PredictRequest, PredictResponse,
)

api = FastAPI(
    title="rayline",
    description="Online predictions from models in the rayline registry (KServe v1 protocol).",
    version="1",
)


@api.exception_handler(RequestValidationError)
async def _malformed(_: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's default body is a list of dicts; one sentence naming the field reads better.
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"] if p != "body")
    return JSONResponse(status_code=422, content={"error": f"{field or 'body'}: {first['msg']}", "field": field})


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=ErrorBody(error=message, field=field).model_dump())


@serve.deployment(ray_actor_options={"num_cpus": 0.25})
@serve.ingress(api)
class Gateway:
    def __init__(self, **models: DeploymentHandle) -> None:
        self.models = models

    @api.get("/healthz")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/v1/models", response_model=ModelList)
    async def list_models(self) -> ModelList:
        return ModelList(models=sorted(self.models))

    @api.get(
        "/v1/models/{name}", response_model=ModelStatus, response_model_exclude_none=True,
        responses={404: {"model": ErrorBody}},
    )
    async def model_status(self, name: str):
        if name not in self.models:
            return _error(404, f"model {name!r} is not served; served models: {sorted(self.models)}", "name")
        return ModelStatus(**await self.models[name].status.remote())

    @api.post(
        "/v1/models/{name}:predict",
        response_model=PredictResponse,
        response_model_exclude_none=True,
        responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}, 503: {"model": ErrorBody}},
    )
    async def predict(self, name: str, body: PredictRequest):
        if name not in self.models:
            return _error(404, f"model {name!r} is not served; served models: {sorted(self.models)}", "name")
        answer = await self.models[name].predict.remote(body.instances, body.explain)
        if "error" in answer:
            return _error(422, f"{answer['field']}: {answer['error']}", answer["field"])
        if "unavailable" in answer:
            return _error(503, answer["unavailable"])
        return answer

    @api.post(
        "/v1/models/{name}:explain",
        response_model=ExplainResponse,
        responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    )
    async def explain(self, name: str, body: ExplainRequest):
        if name not in self.models:
            return _error(404, f"model {name!r} is not served; served models: {sorted(self.models)}", "name")
        answer = await self.models[name].explain.remote(body.instances)
        if "error" in answer:
            return _error(422, f"{answer['field']}: {answer['error']}", answer["field"])
        return answer


@dataclass(frozen=True)
class ServedModel:
    name: str
    alias: str = "champion"
    replicas: int = 1
    max_instances: int = 1024
    max_batch_size: int = 32
    batch_wait_s: float = 0.0
    # Ray's default of 5 in flight per replica leaves batches unfilled and parks the rest
    # of the requests in the router's retry backoff.
    max_ongoing_requests: int = 64
    version: str | None = None  # None: where `alias` points when the app starts (`pin`)
    # ensembles: the member names (each its own deployment; `pin` reads them from the
    # bundle) and what to do when one fails
    members: tuple[str, ...] = ()
    member_replicas: int = 1
    allow_degraded: bool = False
    member_timeout_s: float = 10.0
    # the inference log, written beside the model's tables when `start` is given a lake
    recorder: RecorderConfig = RecorderConfig()


def build_app(models: list[ServedModel], tracking_uri: str, lake: str | None = None) -> serve.Application:
    """The application graph: each model its own deployment (an ensemble: its combiner,
    bound to one deployment per member), bound into the gateway. With `lake`, each model
    records what it answers in `{lake}/{name}` (see `ServedModel.recorder`)."""
    handles = {m.name: _model_app(m, tracking_uri, lake) for m in models}
    gateway_limit = sum(m.max_ongoing_requests * m.replicas for m in models)
    return Gateway.options(max_ongoing_requests=gateway_limit).bind(**handles)


def _model_app(m: ServedModel, tracking_uri: str, lake: str | None) -> serve.Application:
    options = {"name": f"model-{m.name}", "num_replicas": m.replicas, "max_ongoing_requests": m.max_ongoing_requests}
    if not m.members:
        return ModelServer.options(**options).bind(
            m.name, m.alias, tracking_uri, m.max_instances, m.max_batch_size, m.batch_wait_s, m.version, lake, m.recorder
        )
    if m.version is None:
        raise ValueError(f"ensemble {m.name!r}: members and combiner must load one pinned version, got none")
    members = {
        member: MemberServer.options(
            name=f"member-{m.name}-{member}",
            num_replicas=m.member_replicas,
            max_ongoing_requests=m.max_ongoing_requests * m.replicas,
        ).bind(m.name, m.version, tracking_uri, member, m.max_batch_size, m.batch_wait_s)
        for member in m.members
    }
    return EnsembleServer.options(**options).bind(
        m.name, m.version, tracking_uri, m.max_instances, m.max_batch_size, m.allow_degraded, m.member_timeout_s,
        lake, m.recorder, **members,
    )


def pin(model: ServedModel, tracking_uri: str) -> ServedModel:
    """`model` at the version its alias points at now, with its member names when it is an
    ensemble: every deployment of one model then loads the same version."""
    version = model.version or resolve_version(tracking_uri, model.name, model.alias)
    # the two small JSON files say it, without fetching the models themselves
    spec = read_bundle_json(tracking_uri, model.name, version, "spec.json")
    members: tuple[str, ...] = ()
    if family(spec) == "ensemble":
        description = read_bundle_json(tracking_uri, model.name, version, ENSEMBLE_FILE)
        members = tuple(m["name"] for m in description["members"])
    return replace(model, version=version, members=members)


def start(models: list[ServedModel], tracking_uri: str, host: str, port: int, lake: str | None = None) -> str:
    """Deploy (or update) the application on the connected Ray cluster; return its base URL.
    With `lake`, the models record their inference logs there."""
    pinned = [pin(m, tracking_uri) for m in models]
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_app(pinned, tracking_uri, lake), name="rayline", route_prefix="/", blocking=False)
    return f"http://{host}:{port}"
