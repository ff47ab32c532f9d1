"""One Ray Serve deployment per model: loads a registered bundle, batches requests."""

from __future__ import annotations

import base64
import tempfile
import time
from typing import Any

import numpy as np
import polars as pl
import torch
from ray import serve

from components.artifacts.bundle import load_bundle
from components.artifacts.registry import download_bundle
from components.config import RecorderConfig
from components.data.embedding_requests import embedding_queries_from_instances
from components.data.generation_requests import generations_from_instances
from components.data.image_requests import images_from_instances, pairs_from_instances
from components.data.pairs_requests import translations_from_instances
from components.data.schema import InvalidInput, frame_from_records
from components.data.tagged_requests import sentences_from_instances
from components.data.text_requests import texts_from_instances
from components.evaluation.visualize import explain_images, heatmap_png
from serving.recording import open_recorder


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
        lake_root: str | None = None,
        recorder: RecorderConfig | None = None,
    ) -> None:
        with tempfile.TemporaryDirectory(prefix=f"rayline-{name}-") as tmp:
            path, self.version = download_bundle(tracking_uri, name, alias, dst=tmp, version=version)
            self.bundle = load_bundle(path)  # reads everything into memory
        self.recorder = open_recorder(name, self.version, lake_root, recorder)
        self.name = name
        self.max_instances = max_instances
        self._infer.set_max_batch_size(max_batch_size)
        self._infer.set_batch_wait_timeout_s(batch_wait_s)

    def status(self) -> dict[str, Any]:
        features = self.bundle.features
        if features.modality == "image":
            channels, height, width = features.info.input_shape
            inputs = {"b64": "a base64 PNG or JPEG image", "pixels": f"or an array (H, W[, C]); the model sees {channels}x{height}x{width}"}
            if self.bundle.task == "verification":
                inputs = {"a": "an image, as below", "b": "the image to compare it with", **inputs}
        elif features.modality == "text":
            inputs = {"text": f"a string of at most {features.max_length} tokens"}
        elif self.bundle.task == "embeddings":
            inputs = {"word": "a word, or {\"positive\": [...], \"negative\": [...]} for an analogy", "k": "1..100 (10)"}
        elif features.task == "seq2seq":
            inputs = {"source": f"text of at most {features.max_source_length} tokens", "beam_size": "1..16 (1: greedy)",
                      "max_length": f"1..{features.max_target_length}"}
        elif features.task == "language_model":
            inputs = {"prompt": f"text of at most {features.max_length} tokens", "max_tokens": "1..1000 (100)",
                      "temperature": "above 0 (1.0)", "top_k": "optional", "seed": "optional"}
        elif features.modality == "tagged":
            inputs = {"sentence": f"a string, or a list of tokens; at most {features.max_length} tokens"}
        else:
            inputs = {c: features.schema.columns[c].type for c in features.schema.features}
        recorded = self.recorder.stats() if self.recorder else None
        return {"name": self.name, "ready": True, "version": self.version, "task": self.bundle.task, "inputs": inputs,
                "recorder": recorded}

    async def predict(self, instances: list[Any], explain: bool = False) -> dict[str, Any]:
        """Validate one request's rows, then join the batch; bad input never reaches the batch.
        `explain` adds nothing for a single model: it is the ensembles' member breakdown."""
        started = time.perf_counter()
        try:
            rows = self._validated(instances)
        except InvalidInput as exc:
            return {"error": exc.message, "field": exc.field}
        predictions = await self._infer(rows)
        if self.recorder is not None:
            inputs = rows if isinstance(rows, pl.DataFrame) else None  # images and texts: the answers only
            self.recorder.record(inputs, predictions, (time.perf_counter() - started) * 1000)
        return {"predictions": predictions, "model_name": self.name, "model_version": self.version}

    async def explain(self, instances: list[Any]) -> dict[str, Any]:
        """KServe v1 :explain for image models: the prediction and a heatmap per instance
        (Grad-CAM, or saliency for models without convolutions), as a PNG and as numbers."""
        features = self.bundle.features
        if features.modality != "image" or self.bundle.is_estimator or self.bundle.task != "classification":
            return {"error": f"model {self.name!r} has no :explain; it explains image classifiers", "field": "name"}
        try:
            images = self._validated(instances)
        except InvalidInput as exc:
            return {"error": exc.message, "field": exc.field}
        x = torch.from_numpy(features.inputs(images))  # (B, C, H, W)
        method, layer, heatmaps = explain_images(self.bundle.model, x)
        explanations = [
            {"method": method, "layer": layer, "heatmap_png": base64.b64encode(heatmap_png(h)).decode(),
             "heatmap": np.round(h, 4).tolist()}
            for h in heatmaps
        ]
        return {
            "predictions": self.bundle.predict(images), "explanations": explanations,
            "model_name": self.name, "model_version": self.version,
        }

    def __del__(self) -> None:
        # Serve calls this when the replica shuts down: what is queued gets written.
        if getattr(self, "recorder", None) is not None:
            self.recorder.close(timeout_s=10)

    def _validated(self, instances: list[Any]) -> pl.DataFrame | list[Any]:
        """A typed frame of table rows, checked (H, W, C) pixel arrays (pairs of them for
        verification models), texts or sentences to tag; InvalidInput names the bad field."""
        features = self.bundle.features
        if self.bundle.task == "verification":
            return pairs_from_instances(instances, features.spec, self.max_instances)
        if features.modality == "image":
            return images_from_instances(instances, features.spec, self.max_instances)
        if self.bundle.task == "embeddings":
            return embedding_queries_from_instances(instances, features, self.max_instances)
        if features.task == "language_model":
            return generations_from_instances(instances, features, self.max_instances)
        if features.task == "seq2seq":
            return translations_from_instances(instances, features, self.max_instances)
        if features.modality == "text":
            return texts_from_instances(instances, features, self.max_instances)
        if features.modality == "tagged":
            return sentences_from_instances(instances, features, self.max_instances)
        return frame_from_records(instances, features.schema, self.max_instances)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def _infer(self, requests: list[pl.DataFrame | list[Any]]) -> list[list[Any]]:
        # One forward pass for every request waiting in the batch, then split back.
        sizes = [len(r) for r in requests]
        joined = pl.concat(requests) if isinstance(requests[0], pl.DataFrame) else [x for r in requests for x in r]
        answers = self.bundle.predict(joined)
        out, start = [], 0
        for size in sizes:
            out.append(answers[start : start + size])
            start += size
        return out
