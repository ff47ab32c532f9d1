"""Request and response bodies of the KServe v1 REST protocol, as served by rayline."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class PredictRequest(BaseModel):
    instances: list[Any] = Field(
        description="one object per row: {column: value} with exactly the model's feature columns",
        examples=[[{"mean_radius": 14.1, "mean_texture": 19.3}]],
    )


class ClassPrediction(BaseModel):
    label: Any
    probabilities: dict[str, float]


class PredictResponse(BaseModel):
    predictions: list[ClassPrediction] | list[float]
    model_name: str
    model_version: str


class ModelStatus(BaseModel):
    name: str
    ready: bool
    version: str
    task: str
    inputs: dict[str, str] = Field(description="feature column -> type")


class ModelList(BaseModel):
    models: list[str]


class ErrorBody(BaseModel):
    error: str
    field: str | None = None
