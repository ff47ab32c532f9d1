"""Request and response bodies of the KServe v1 REST protocol, as served by rayline."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class PredictRequest(BaseModel):
    instances: list[Any] = Field(
        description="one object per row: {column: value} with exactly the model's feature columns",
        examples=[[{"mean_radius": 14.1, "mean_texture": 19.3}]],
    )
    explain: bool = Field(False, description="ensembles: add each member's predictions to the response")


class ClassPrediction(BaseModel):
    label: Any
    probabilities: dict[str, float]


class Degraded(BaseModel):
    failed: dict[str, str] = Field(description="member -> why it gave no answer")
    combined: list[str] = Field(description="the members whose answers were combined")


class PredictResponse(BaseModel):
    predictions: list[ClassPrediction] | list[float]
    model_name: str
    model_version: str
    members: dict[str, list[ClassPrediction] | list[float]] | None = Field(
        None, description="ensembles, with explain: each member's predictions"
    )
    degraded: Degraded | None = Field(None, description="ensembles: set when some members failed")


class ModelStatus(BaseModel):
    name: str
    ready: bool
    version: str
    task: str
    inputs: dict[str, str] = Field(description="feature column -> type")
    members: list[str] | None = Field(None, description="ensembles: the member names")


class ModelList(BaseModel):
    models: list[str]


class ErrorBody(BaseModel):
    error: str
    field: str | None = None
