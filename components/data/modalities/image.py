"""`ImageProcessor`: encoded images -> normalised (N, C, H, W) float32 batches, in two steps
that can run apart: `pixels` (decode, convert, resize: uint8) and `scale` (to float32).

Fitted on the training split only: the target size and channel count, and the per-channel
mean and std of the [0, 1] pixels after resizing. The state is plain JSON (`to_dict`), so
a model bundle stores it as data and serving rebuilds the very same transform; requests
may carry encoded images (`transform`) or nested pixel arrays (`transform_arrays`), and
both go through the same resize and normalisation code.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from PIL import Image
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from components.data.images import InvalidImage, decode_image

RESIZE = ("resize", "center_crop", "pad")
_STATE_KEYS = ("size", "resize", "channels", "normalize", "size_", "channels_", "mean_", "std_")
_MIN_STD = 1e-6
_MODE = {1: "L", 3: "RGB"}


class ImageProcessor(BaseEstimator):
    """Resize, convert channels and normalise images; statistics from the training images.

    size: target (height, width), or None to keep the size of the first training image
    (every image, in fit and later, must then have that size). resize: "resize" stretches
    to `size` (bilinear); "center_crop" scales the short side to cover `size` and crops
    the middle; "pad" centres the image on a zero canvas, first shrinking it (aspect kept)
    only if it is larger than `size`. channels: 1 or 3 converts every image (RGB -> L with
    Pillow's ITU-R 601-2 luma, L -> RGB by repeating); None keeps 3 if any training image
    is RGB, else 1. normalize: output (x / 255 - mean_) / std_ instead of x / 255.
    """

    def __init__(
        self,
        *,
        size: tuple[int, int] | None = None,
        resize: Literal["resize", "center_crop", "pad"] = "resize",
        channels: Literal[1, 3] | None = None,
        normalize: bool = True,
    ) -> None:
        self.size = size
        self.resize = resize
        self.channels = channels
        self.normalize = normalize

    def fit(self, images: Sequence[bytes]) -> "ImageProcessor":
        """Learn size, channels and per-channel mean/std from `images` (the training split only)."""
        return self.fit_geometry(images).fit_statistics(self.pixels(images))

    def fit_geometry(self, images: Sequence[bytes]) -> "ImageProcessor":
        """Learn the size and channels `pixels` brings every image to: the configured ones,
        else the first image's size and RGB if any image's header says so."""
        self._check_params()
        if len(images) == 0:
            raise ValueError("fit needs at least one image, got none")
        if self.channels is not None:
            self.channels_ = int(self.channels)
        else:
            # Read from the headers: one RGB image anywhere makes the set RGB.
            self.channels_ = 3 if any(_header_mode(data, i) == "RGB" for i, data in enumerate(images)) else 1
        if self.size is not None:
            self.size_ = (int(self.size[0]), int(self.size[1]))
        else:
            first = _decode(images[0], 0)
            self.size_ = (int(first.shape[0]), int(first.shape[1]))
        return self

    def fit_statistics(self, pixels: np.ndarray) -> "ImageProcessor":
        """Learn the per-channel mean and std of the training split's (N, C, H, W) uint8 `pixels`."""
        self._check_geometry()
        if pixels.ndim != 4 or pixels.shape[1:] != (self.channels_, *self.size_) or len(pixels) == 0:
            raise ValueError(f"pixels must be (N, {self.channels_}, {self.size_[0]}, {self.size_[1]}) with N > 0, "
                             f"got {pixels.shape}")
        # Integer sums of uint8 pixels are exact, so the statistics do not depend on the
        # order or batching of the images; chunks keep the int64 copies small.
        total = np.zeros(self.channels_, dtype=np.int64)
        squares = np.zeros(self.channels_, dtype=np.int64)
        for start in range(0, len(pixels), 1024):
            x = pixels[start : start + 1024].astype(np.int64)  # (n, C, H, W)
            total += x.sum(axis=(0, 2, 3))
            squares += (x * x).sum(axis=(0, 2, 3))
        count = len(pixels) * self.size_[0] * self.size_[1]
        mean = total / count
        var = np.maximum(squares / count - mean * mean, 0.0)
        self.mean_ = [float(m) for m in mean / 255.0]
        self.std_ = [max(float(s), _MIN_STD) for s in np.sqrt(var) / 255.0]
        return self

    def transform(self, images: Sequence[bytes]) -> np.ndarray:
        """Encoded images (PNG/JPEG bytes) as a (N, C, H, W) float32 array."""
        return self.scale(self.pixels(images))

    def transform_arrays(self, arrays: Sequence[Any]) -> np.ndarray:
        """Pixel arrays (H, W) or (H, W, C) with values 0..255 (nested lists allowed) as (N, C, H, W) float32."""
        self._check_fitted()
        return self.scale(self._stack([_as_uint8(a, i) for i, a in enumerate(arrays)], self.size_, self.channels_))

    def pixels(self, images: Sequence[bytes], start: int = 0) -> np.ndarray:
        """Encoded images decoded, converted to the fitted channels and brought to the fitted
        size: (N, C, H, W) uint8, what `scale` turns into model inputs. Needs only the
        geometry; errors name images[start + i] (a chunk of a longer list)."""
        self._check_geometry()
        decoded = [_decode(data, start + i) for i, data in enumerate(images)]
        return self._stack(decoded, self.size_, self.channels_, start)

    def scale(self, pixels: np.ndarray) -> np.ndarray:
        """(N, C, H, W) uint8 pixels as the model's float32 inputs: x / 255, normalised with
        the training split's channel statistics when `normalize`."""
        self._check_fitted()
        x = pixels.astype(np.float32) / np.float32(255.0)
        if self.normalize:
            x -= np.asarray(self.mean_, dtype=np.float32)[:, None, None]
            x /= np.asarray(self.std_, dtype=np.float32)[:, None, None]
        return x

    def fit_transform(self, images: Sequence[bytes]) -> np.ndarray:
        """`fit(images)` then `transform(images)`."""
        return self.fit(images).transform(images)

    @property
    def info_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one transformed image, for `DataInfo.input_shape`."""
        self._check_fitted()
        return (self.channels_, *self.size_)

    def to_dict(self) -> dict[str, Any]:
        """Parameters and fitted state as JSON types."""
        self._check_fitted()
        return {
            "kind": "image",
            "size": None if self.size is None else [int(self.size[0]), int(self.size[1])],
            "resize": self.resize,
            "channels": self.channels,
            "normalize": bool(self.normalize),
            "size_": list(self.size_),
            "channels_": self.channels_,
            "mean_": list(self.mean_),
            "std_": list(self.std_),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ImageProcessor":
        """A fitted ImageProcessor from `to_dict()` output; transforms are bit-identical."""
        missing = [k for k in _STATE_KEYS if k not in d]
        if missing:
            raise ValueError(f"image preprocess state is missing key(s) {missing}; got keys {sorted(d)}")
        if d.get("kind", "image") != "image":
            raise ValueError(f"image preprocess state must have kind 'image', got {d['kind']!r}")
        size = None if d["size"] is None else (int(d["size"][0]), int(d["size"][1]))
        proc = cls(size=size, resize=d["resize"], channels=d["channels"], normalize=bool(d["normalize"]))
        proc._check_params()
        proc.size_ = (int(d["size_"][0]), int(d["size_"][1]))
        proc.channels_ = int(d["channels_"])
        proc.mean_ = [float(v) for v in d["mean_"]]
        proc.std_ = [float(v) for v in d["std_"]]
        if proc.channels_ not in _MODE or len(proc.mean_) != proc.channels_ or len(proc.std_) != proc.channels_:
            raise ValueError(
                f"image preprocess state needs channels_ 1 or 3 and one mean_/std_ per channel, got "
                f"channels_={proc.channels_}, {len(proc.mean_)} means, {len(proc.std_)} stds"
            )
        return proc

    # ------------------------------------------------------------------ internals

    def _stack(self, decoded: Sequence[np.ndarray], size: tuple[int, int], channels: int, start: int = 0) -> np.ndarray:
        """Decoded (H, W, C) images as one (N, C, H, W) uint8 array of `size` and `channels`."""
        pixels = np.empty((len(decoded), *size, channels), dtype=np.uint8)
        for i, image in enumerate(decoded):
            pixels[i] = self._prepare(image, start + i, size, channels)  # (H, W, C) uint8
        return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))

    def _prepare(self, pixels: np.ndarray, index: int, size: tuple[int, int], channels: int) -> np.ndarray:
        """One (H, W, C) uint8 image converted to `channels` and brought to `size`."""
        if pixels.shape[2] != channels:
            image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels, mode=_MODE[pixels.shape[2]])
            pixels = _pixels(image.convert(_MODE[channels]))
        height, width = pixels.shape[:2]
        if (height, width) == size:
            return pixels
        if self.size is None:
            raise ValueError(
                f"images[{index}] is {height}x{width}, expected {size[0]}x{size[1]} "
                "(size=None keeps the first training image's size; set size to resize)"
            )
        return _fit_to(pixels, size, self.resize)

    def _check_params(self) -> None:
        if self.size is not None:
            ok = (
                isinstance(self.size, (tuple, list)) and len(self.size) == 2
                and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in self.size)
            )
            if not ok:
                raise ValueError(f"size must be None or two positive integers (height, width), got {self.size!r}")
        if self.resize not in RESIZE:
            raise ValueError(f"resize must be one of {', '.join(RESIZE)}, got {self.resize!r}")
        if self.channels not in (1, 3, None) or isinstance(self.channels, bool):
            raise ValueError(f"channels must be 1, 3 or None, got {self.channels!r}")
        if not isinstance(self.normalize, (bool, np.bool_)):
            raise ValueError(f"normalize must be true or false, got {self.normalize!r}")

    def _check_geometry(self) -> None:
        if not hasattr(self, "channels_"):
            raise NotFittedError("ImageProcessor is not fitted; call fit() or fit_geometry() first")

    def _check_fitted(self) -> None:
        if not hasattr(self, "mean_"):
            raise NotFittedError("ImageProcessor is not fitted; call fit() first")


def _decode(data: bytes, index: int) -> np.ndarray:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"images[{index}] must be encoded image bytes, got {type(data).__name__}")
    try:
        return decode_image(bytes(data))
    except InvalidImage as exc:
        raise InvalidImage(f"images[{index}]: {exc}") from None


def _header_mode(data: bytes, index: int) -> str:
    """The image's mode from its header, without decoding the pixels."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        _decode(data, index)  # raises, naming the index
    try:
        return Image.open(io.BytesIO(bytes(data)), formats=("PNG", "JPEG")).mode
    except (OSError, SyntaxError, ValueError, TypeError):
        return _MODE[_decode(data, index).shape[2]]  # raises the decoding error with its index


def _as_uint8(array: Any, index: int) -> np.ndarray:
    """(H, W, C) uint8 from an (H, W) or (H, W, C) array-like of whole numbers in 0..255."""
    try:
        x = np.asarray(array)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"images[{index}] must be a rectangular array of pixels: {exc}") from None
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[2] not in (1, 3) or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"images[{index}] must have shape (H, W), (H, W, 1) or (H, W, 3), got {x.shape}")
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind not in "iuf":
        raise ValueError(f"images[{index}] must hold numbers 0..255, got dtype {x.dtype}")
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 255 or (x.dtype.kind == "f" and (x != np.floor(x)).any()):
        raise ValueError(f"images[{index}] must hold whole numbers 0..255, got values from {x.min()} to {x.max()}")
    return x.astype(np.uint8)


def _pixels(image: Image.Image) -> np.ndarray:
    x = np.asarray(image, dtype=np.uint8)
    return x[:, :, None] if x.ndim == 2 else x


def _resized(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    mode = "L" if pixels.shape[2] == 1 else "RGB"
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels, mode=mode)
    return _pixels(image.resize((width, height), Image.Resampling.BILINEAR))


def _fit_to(pixels: np.ndarray, size: tuple[int, int], how: str) -> np.ndarray:
    """`pixels` (H, W, C) brought to `size` by the named resize mode."""
    target_h, target_w = size
    height, width = pixels.shape[:2]
    if how == "resize":
        return _resized(pixels, target_h, target_w)
    if how == "center_crop":
        scale = max(target_h / height, target_w / width)
        # At least the target on both sides, so the crop never runs off the image.
        new_h, new_w = max(target_h, round(height * scale)), max(target_w, round(width * scale))
        if (new_h, new_w) != (height, width):
            pixels = _resized(pixels, new_h, new_w)
        top, left = (new_h - target_h) // 2, (new_w - target_w) // 2
        return pixels[top: top + target_h, left: left + target_w]
    # pad
    if height > target_h or width > target_w:
        scale = min(target_h / height, target_w / width)
        height, width = max(1, min(target_h, round(height * scale))), max(1, min(target_w, round(width * scale)))
        pixels = _resized(pixels, height, width)
    canvas = np.zeros((target_h, target_w, pixels.shape[2]), dtype=np.uint8)
    top, left = (target_h - height) // 2, (target_w - width) // 2
    canvas[top: top + height, left: left + width] = pixels
    return canvas
