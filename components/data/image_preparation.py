"""Bronze image rows -> silver splits: assign splits, fit the ImageProcessor on train only.

Silver image tables keep each image decoded once, converted and brought to the fitted
size, as (C, H, W) uint8 bytes, with the class index (`pixels`, `label`): training reads
them every epoch, and decoding a PNG costs several times what a small model's step on it
does; the preprocess flow runs that decode in Ray tasks on the cluster. Scaling and
normalising happen where batches are made, with the one fitted processor: in Ray Data's
read tasks for training. The endpoint runs the whole transform on the encoded images it
receives. The processor and the class labels travel in `ImageState`, saved as the
bundle's preprocess.json.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl

from components.config import ImageConfig, SplitConfig
from components.data.images import ImageSpec
from components.data.modalities.image import ImageProcessor
from components.data.modalities.info import DataInfo
from components.data.preparation import LABEL, SPLITS, class_answers
from components.data.preprocessing import LabelIndex
from components.data.splits import assign_splits

Decode = Callable[[ImageProcessor, Sequence[bytes]], np.ndarray]  # (processor, encoded) -> (N, C, H, W) uint8

IMAGE = "image"  # bronze: the encoded image
PIXELS = "pixels"  # silver: the decoded, resized (C, H, W) uint8 bytes


@dataclass(frozen=True)
class ImageState:
    """Everything needed to turn encoded images into model inputs and outputs into answers."""

    processor: ImageProcessor
    labels: LabelIndex
    spec: ImageSpec = ImageSpec()  # what ingest quarantined, the endpoint refuses
    silver: str = PIXELS  # the silver column: PIXELS, or IMAGE in snapshots written before pixels were

    modality: ClassVar[str] = "image"
    task: ClassVar[str] = "classification"
    label_dtype: ClassVar[str] = "int64"

    @property
    def columns(self) -> list[str]:
        """The silver columns a model's inputs come from."""
        return [self.silver]

    @property
    def info(self) -> DataInfo:
        classes = tuple(str(c) for c in self.labels.classes_)
        processor = self.processor
        channels = processor.channels_
        mean, std = (processor.mean_, processor.std_) if processor.normalize else ([0.0] * channels, [1.0] * channels)
        return DataInfo(
            modality="image", task="classification", input_shape=processor.info_shape, classes=classes,
            pixel_mean=tuple(mean), pixel_std=tuple(std),
        )

    @property
    def packed_row_bytes(self) -> int:
        """One silver row as training batches hold it: float32 pixels and an int64 label."""
        return 4 * math.prod(self.processor.info_shape) + 8

    @property
    def out_features(self) -> int:
        return self.info.out_features

    def inputs(self, images: Sequence[bytes] | Sequence[np.ndarray]) -> np.ndarray:
        """(N, C, H, W) float32 model inputs for encoded images or (H, W[, C]) uint8 pixel
        arrays (a checked request): the one transform of training, scoring and serving."""
        if all(isinstance(image, bytes) for image in images):
            return self.processor.transform(images)
        return self.processor.transform_arrays(images)

    def batch_inputs(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Model inputs of a batch of silver rows (Ray Data's numpy batches)."""
        if self.silver == IMAGE:
            return self.inputs(list(batch[IMAGE]))
        rows = batch[PIXELS]
        pixels = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), *self.processor.info_shape)
        return self.processor.scale(pixels)

    def answers(self, output: np.ndarray) -> list[Any]:
        return class_answers(self.labels, output)

    def to_dict(self) -> dict[str, Any]:
        return {
            "modality": "image", "processor": self.processor.to_dict(), "labels": self.labels.to_dict(),
            "limits": {"max_bytes": self.spec.max_bytes, "max_size": self.spec.max_size}, "silver": self.silver,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ImageState":
        return cls(
            processor=ImageProcessor.from_dict(d["processor"]), labels=LabelIndex.from_dict(d["labels"]),
            spec=ImageSpec(**d.get("limits", {})), silver=d.get("silver", IMAGE),
        )


def prepare_images(
    bronze: pl.DataFrame, split: SplitConfig, images: ImageConfig, decode: Decode = ImageProcessor.pixels
) -> tuple[dict[str, pl.DataFrame], ImageState]:
    """Split `bronze` image rows (stratified by label when asked), fit the processor and the
    labels on the train rows only (a class split: the labels on every row), and return each
    split's silver frame with the state. `decode(processor, images)` turns each split's
    encoded images into pixels once the geometry is fitted: in this process by default,
    `components.data.ray_decoding.pixels_on_ray` on the cluster."""
    if bronze.height == 0:
        raise ValueError("the bronze table has no images: ingest data before preprocessing")
    rows = bronze.with_columns(assign_splits(bronze, split, LABEL))
    parts = {name: rows.filter(pl.col("_split") == name) for name in SPLITS}
    if parts["train"].height == 0:
        raise ValueError(f"the train split has no images ({bronze.height} in bronze, split.ratios {split.ratios})")
    size = tuple(images.size) if images.size is not None else None
    processor = ImageProcessor(size=size, resize=images.resize, channels=images.channels, normalize=images.normalize)
    processor.fit_geometry(parts["train"][IMAGE].to_list())
    pixels = {name: decode(processor, part[IMAGE].to_list()) for name, part in parts.items()}
    processor.fit_statistics(pixels["train"])
    # A class split holds whole labels out of train: they still need indices to pair by.
    labelled = bronze if split.method == "classes" else parts["train"]
    labels = LabelIndex().fit(labelled[LABEL].to_list())
    state = ImageState(processor=processor, labels=labels, spec=ImageSpec(max_bytes=images.max_bytes, max_size=images.max_size))
    silver = {
        name: pl.DataFrame(
            {PIXELS: [row.tobytes() for row in pixels[name]], LABEL: state.labels.encode(part[LABEL].to_list())},
            schema={PIXELS: pl.Binary, LABEL: pl.Int64},
        )
        for name, part in parts.items()
    }
    return silver, state


def raw_images(bronze: pl.DataFrame, split: SplitConfig, which: str) -> pl.DataFrame:
    """The bronze image rows of one split (the same assignment `prepare_images` made)."""
    return bronze.filter(assign_splits(bronze, split, LABEL) == which)
