"""Request and response bodies of the KServe v1 REST protocol, as served by rayline."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class PredictRequest(BaseModel):
    instances: list[Any] = Field(
        description=(
            "tables: one object per row, {column: value} with exactly the model's feature columns; "
            'images: {"b64": "<base64 PNG or JPEG>"} or a nested array of pixels 0..255, (H, W) or (H, W, C); '
            'verification models: pairs {"a": <image>, "b": <image>}; text models: strings; '
            "taggers: sentences as strings or lists of tokens; language models: "
            '{"prompt": "...", "max_tokens": 100, "temperature": 1.0, "top_k": null, "seed": null}; '
            'sequence-to-sequence models: sources as strings or {"source": "...", "beam_size": 1, "max_length": null}; '
            'word vectors: words as strings or {"word": "...", "k": 10}, analogies as '
            '{"positive": ["king", "woman"], "negative": ["man"], "k": 10}'
        ),
        examples=[
            [{"mean_radius": 14.1, "mean_texture": 19.3}], [{"b64": "iVBORw0KGgo..."}],
            [{"a": {"b64": "iVBORw0KGgo..."}, "b": {"b64": "iVBORw0KGgo..."}}],
            ["a gripping, funny film"], ["Anna Smith flew to Paris on Monday .", ["Omar", "visited", "Lima"]],
            [{"prompt": "To be, or not", "max_tokens": 80, "temperature": 0.8, "top_k": 10}],
            ["Sunday, 7 March 2021", {"source": "7. März 2021", "beam_size": 4}],
            ["police", {"positive": ["king", "woman"], "negative": ["man"], "k": 5}],
        ],
    )
    explain: bool = Field(False, description="ensembles: add each member's predictions to the response")


class ClassPrediction(BaseModel):
    label: Any
    probabilities: dict[str, float]


class PairVerdict(BaseModel):
    distance: float = Field(description="Euclidean distance between the two images' embeddings")
    same: bool = Field(description="distance <= threshold: the two images show the same class")
    threshold: float = Field(description="the distance threshold chosen on validation")


class Degraded(BaseModel):
    failed: dict[str, str] = Field(description="member -> why it gave no answer")
    combined: list[str] = Field(description="the members whose answers were combined")


class TaggedEntity(BaseModel):
    type: str
    text: str = Field(description="the entity as it stands in the sentence: sentence[start:end]")
    start: int = Field(description="character offset of its first character")
    end: int = Field(description="character offset just past its last character")
    token_start: int
    token_end: int = Field(description="one past its last token")


class TaggedSentence(BaseModel):
    tokens: list[str]
    tags: list[str] = Field(description="one BIO tag per token")
    entities: list[TaggedEntity]


class Generated(BaseModel):
    prompt: str
    text: str = Field(description="the sampled continuation of the prompt")
    tokens: int = Field(description="tokens sampled")


class Translated(BaseModel):
    source: str
    text: str = Field(description="the decoded target")


class Neighbour(BaseModel):
    word: str
    similarity: float = Field(description="cosine similarity to the query")


class Embedded(BaseModel):
    word: str | None = Field(None, description="a word query: the word as the model reads it")
    vector: list[float] | None = Field(None, description="a word query: its vector")
    positive: list[str] | None = Field(None, description="an analogy: the words added")
    negative: list[str] | None = Field(None, description="an analogy: the words subtracted")
    nearest: list[Neighbour]


class PredictResponse(BaseModel):
    predictions: (
        list[ClassPrediction] | list[PairVerdict] | list[TaggedSentence] | list[Generated] | list[Translated]
        | list[Embedded] | list[float]
    )
    model_name: str
    model_version: str
    members: dict[str, list[ClassPrediction] | list[float]] | None = Field(
        None, description="ensembles, with explain: each member's predictions"
    )
    degraded: Degraded | None = Field(None, description="ensembles: set when some members failed")


class ExplainRequest(BaseModel):
    instances: list[Any] = Field(description='images: {"b64": "<base64 PNG or JPEG>"} or nested pixel arrays')


class Explanation(BaseModel):
    method: str = Field(description="grad_cam (at `layer`) or saliency")
    layer: str | None = None
    heatmap_png: str = Field(description="base64 PNG of the heatmap, the input's size")
    heatmap: list[list[float]] = Field(description="the heatmap's values in [0, 1], (H, W)")


class ExplainResponse(BaseModel):
    predictions: list[ClassPrediction]
    explanations: list[Explanation]
    model_name: str
    model_version: str


class ModelStatus(BaseModel):
    name: str
    ready: bool
    version: str
    task: str
    inputs: dict[str, str] = Field(description="tables: feature column -> type; images: the accepted forms")
    members: list[str] | None = Field(None, description="ensembles: the member names")
    recorder: dict[str, Any] | None = Field(
        None, description="this replica's inference recorder: rows seen, queued, dropped, written, failed, pending",
    )


class ModelList(BaseModel):
    models: list[str]


class ErrorBody(BaseModel):
    error: str
    field: str | None = None
