"""The Ray Serve application: a FastAPI ingress speaking KServe v1, one deployment per model.

    GET  /v1/models                    names of the served models
    GET  /v1/models/{name}             ready state, version, inputs
    POST /v1/models/{name}:predict     {"instances": [{column: value}, ...]}
    GET  /healthz                      liveness
    GET  /docs                         OpenAPI
"""


from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve.handle import DeploymentHandle

from serving.model import ModelServer
from serving.schemas import ErrorBody, ModelList, ModelStatus, PredictRequest, PredictResponse

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

    @api.get("/v1/models/{name}", response_model=ModelStatus, responses={404: {"model": ErrorBody}})
    async def model_status(self, name: str):
        if name not in self.models:
            return _error(404, f"model {name!r} is not served; served models: {sorted(self.models)}", "name")
        return ModelStatus(**await self.models[name].status.remote())

    @api.post(
        "/v1/models/{name}:predict",
        response_model=PredictResponse,
        responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    )
    async def predict(self, name: str, body: PredictRequest):
        if name not in self.models:
            return _error(404, f"model {name!r} is not served; served models: {sorted(self.models)}", "name")
        answer = await self.models[name].predict.remote(body.instances)
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


def build_app(models: list[ServedModel], tracking_uri: str) -> serve.Application:
    """The application graph: each model its own deployment, bound into the gateway."""
    handles = {
        m.name: ModelServer.options(
            name=f"model-{m.name}", num_replicas=m.replicas, max_ongoing_requests=m.max_ongoing_requests
        ).bind(m.name, m.alias, tracking_uri, m.max_instances, m.max_batch_size, m.batch_wait_s)
        for m in models
    }
    gateway_limit = sum(m.max_ongoing_requests * m.replicas for m in models)
    return Gateway.options(max_ongoing_requests=gateway_limit).bind(**handles)


def start(models: list[ServedModel], tracking_uri: str, host: str, port: int) -> str:
    """Deploy (or update) the application on the connected Ray cluster; return its base URL."""
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_app(models, tracking_uri), name="rayline", route_prefix="/", blocking=False)
    return f"http://{host}:{port}"
