"""A small HTTP client for the endpoint: what `rayline predict` and the smoke check use."""

from __future__ import annotations

import base64
import math
from typing import Any

import httpx
import polars as pl


class EndpointError(RuntimeError):
    """The endpoint answered with an error; the message is its own."""


def model_inputs(url: str, name: str) -> dict[str, str]:
    """The served model's feature columns and their types."""
    return _json(httpx.get(f"{url}/v1/models/{name}", timeout=30))["inputs"]


def predict_rows(url: str, name: str, rows: pl.DataFrame, chunk: int = 256) -> tuple[list[Any], str]:
    """Predictions for every row of `rows` (only the model's inputs are sent), in chunks."""
    return predict_instances(url, name, [_clean(r) for r in rows.iter_rows(named=True)], chunk)


def predict_images(url: str, name: str, images: list[bytes], chunk: int = 64) -> tuple[list[Any], str]:
    """Predictions for encoded images (PNG or JPEG bytes), sent base64 as KServe v1 does."""
    return predict_instances(url, name, [_b64(data) for data in images], chunk)


def predict_pairs(url: str, name: str, pairs: list[tuple[bytes, bytes]], chunk: int = 32) -> tuple[list[Any], str]:
    """Verification answers (distance, same) for pairs of encoded images."""
    instances = [{"a": _b64(a), "b": _b64(b)} for a, b in pairs]
    return predict_instances(url, name, instances, chunk)


def predict_instances(url: str, name: str, instances: list[Any], chunk: int) -> tuple[list[Any], str]:
    """Predictions for KServe v1 `instances`, `chunk` per request; (predictions, model version)."""
    predictions: list[Any] = []
    version = ""
    with httpx.Client(timeout=60) as client:
        for start in range(0, len(instances), chunk):
            body = {"instances": instances[start : start + chunk]}
            answer = _json(client.post(f"{url}/v1/models/{name}:predict", json=body))
            predictions.extend(answer["predictions"])
            version = answer["model_version"]
    return predictions, version


def _b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    # JSON has no NaN: a missing float goes as null, which nullable features accept.
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


def _json(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text
        raise EndpointError(f"{response.request.method} {response.request.url} -> {response.status_code}: {message}")
    return response.json()
