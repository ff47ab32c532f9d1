"""`DataInfo`: what a model builder may know about the data, whatever its modality.

Builders never see rows. They declare the data-derived fields they need in their config
(`in_features`, `out_features`, `in_channels`, `height`, `width`, `vocab_size`, `classes`,
`task`)
and `components.models.build(spec, info)` fills exactly those from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

Modality = Literal["tabular", "image", "text", "tagged", "pairs"]
Task = Literal["classification", "regression", "tagging", "language_model", "seq2seq"]


@dataclass(frozen=True)
class DataInfo:
    modality: Modality
    task: Task
    input_shape: tuple[int, ...]  # one example: (F,) for a table row, (C, H, W) for an image, (T,) token ids
    classes: tuple[str, ...] = ()  # classification: class names in label-index order; tagging: the tags
    class_counts: tuple[int, ...] | None = None  # examples (tagging: tokens) of each class in the training split
    vocab_size: int | None = None
    target_vocab_size: int | None = None  # sequence pairs: the target side's vocabulary (vocab_size: the source's)
    token_counts: tuple[int, ...] | None = None  # running text: occurrences of each token id in the training split
    char_vocab_size: int | None = None  # tagged sentences whose tokens carry their characters (input_shape (T, 1 + W))
    # images: the per-channel (mean, std) of [0, 1] pixels the inputs were normalised with,
    # so code that must work in pixel units (attacks) can undo it
    pixel_mean: tuple[float, ...] | None = None
    pixel_std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not self.input_shape or any(int(d) < 1 for d in self.input_shape):
            raise ValueError(f"input_shape must be positive sizes, got {self.input_shape}")
        if self.modality == "image" and len(self.input_shape) != 3:
            raise ValueError(f"an image input_shape is (C, H, W), got {self.input_shape}")
        if self.task in ("classification", "tagging") and len(self.classes) < 2:
            raise ValueError(f"{self.task} needs at least 2 classes, got {list(self.classes)}")
        if self.class_counts is not None and len(self.class_counts) != len(self.classes):
            raise ValueError(f"class_counts needs one count per class: {len(self.class_counts)} for {len(self.classes)}")
        if self.token_counts is not None and len(self.token_counts) != self.vocab_size:
            raise ValueError(f"token_counts needs one count per token: {len(self.token_counts)} for {self.vocab_size}")

    @property
    def out_features(self) -> int:
        """Model outputs: one per class (per token, tagging); one per vocabulary entry (per token,
        language models); one logit (with a sigmoid) for two classes; one value for regression."""
        if self.task == "tagging":
            return len(self.classes)
        if self.task == "language_model":
            if self.vocab_size is None:
                raise ValueError("a language model's outputs are its vocabulary: vocab_size is missing")
            return self.vocab_size
        if self.task == "seq2seq":
            if self.target_vocab_size is None:
                raise ValueError("a sequence-to-sequence model's outputs are the target vocabulary: target_vocab_size is missing")
            return self.target_vocab_size
        if self.task == "regression" or len(self.classes) == 2:
            return 1
        return len(self.classes)

    @property
    def in_features(self) -> int:
        """Inputs of one example, flattened."""
        return math.prod(self.input_shape)

    @property
    def label_dtype(self) -> str:
        return "float32" if self.task == "regression" else "int64"

    def model_fields(self) -> dict[str, Any]:
        """Every data-derived value a model config may declare, by field name."""
        fields: dict[str, Any] = {"task": self.task, "in_features": self.in_features, "out_features": self.out_features}
        if self.modality == "image":
            fields.update(in_channels=self.input_shape[0], height=self.input_shape[1], width=self.input_shape[2])
        if self.vocab_size is not None:
            fields["vocab_size"] = self.vocab_size
        if self.target_vocab_size is not None:
            fields["target_vocab_size"] = self.target_vocab_size
        if self.char_vocab_size is not None:
            fields["char_vocab_size"] = self.char_vocab_size
        if self.classes:
            fields["classes"] = list(self.classes)
        return fields

    def to_dict(self) -> dict[str, Any]:
        return {
            "modality": self.modality, "task": self.task, "input_shape": list(self.input_shape),
            "classes": list(self.classes), "vocab_size": self.vocab_size, "target_vocab_size": self.target_vocab_size,
            "class_counts": list(self.class_counts) if self.class_counts is not None else None,
            "token_counts": list(self.token_counts) if self.token_counts is not None else None,
            "char_vocab_size": self.char_vocab_size,
            "pixel_mean": list(self.pixel_mean) if self.pixel_mean is not None else None,
            "pixel_std": list(self.pixel_std) if self.pixel_std is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataInfo":
        return cls(
            modality=d["modality"], task=d["task"], input_shape=tuple(int(s) for s in d["input_shape"]),
            classes=tuple(str(c) for c in d.get("classes", ())), vocab_size=d.get("vocab_size"),
            target_vocab_size=d.get("target_vocab_size"),
            class_counts=tuple(int(c) for c in d["class_counts"]) if d.get("class_counts") is not None else None,
            token_counts=tuple(int(c) for c in d["token_counts"]) if d.get("token_counts") is not None else None,
            char_vocab_size=d.get("char_vocab_size"),
            pixel_mean=tuple(d["pixel_mean"]) if d.get("pixel_mean") is not None else None,
            pixel_std=tuple(d["pixel_std"]) if d.get("pixel_std") is not None else None,
        )
