"""Checking the images of an online request: one bad instance rejects the request, naming it.

An instance is `{"b64": "<base64 PNG or JPEG>"}` (KServe v1's convention for binary data)
or a nested array of pixel values 0..255, (H, W) or (H, W, C) with C 1 or 3. Encoded
images pass the same checks as ingest (`check_image`); arrays are checked for shape and
range. Both become uint8 (H, W, C) arrays for the fitted processor. Verification models
take pairs: `{"a": <image>, "b": <image>}`, each side in either form.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from components.data.images import ImageSpec, InvalidImage, check_image, decode_image
from components.data.schema import InvalidInput, check_instances


def images_from_instances(instances: Any, spec: ImageSpec, max_instances: int) -> list[np.ndarray]:
    """(H, W, C) uint8 arrays, one per instance; InvalidInput names the first bad one."""
    check_instances(instances, max_instances, "images")
    return [_image(f"instances[{i}]", instance, spec) for i, instance in enumerate(instances)]


def pairs_from_instances(instances: Any, spec: ImageSpec, max_instances: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(a, b) pairs of (H, W, C) uint8 arrays, one per `{"a": image, "b": image}` instance;
    InvalidInput names the first bad instance or side."""
    check_instances(instances, max_instances, "image pairs")
    pairs = []
    for i, instance in enumerate(instances):
        where = f"instances[{i}]"
        if not isinstance(instance, dict) or set(instance) != {"a", "b"}:
            got = sorted(instance) if isinstance(instance, dict) else type(instance).__name__
            raise InvalidInput(where, f'a pair is {{"a": <image>, "b": <image>}}, got {got}')
        pairs.append((_image(f"{where}.a", instance["a"], spec), _image(f"{where}.b", instance["b"], spec)))
    return pairs


def _image(where: str, instance: Any, spec: ImageSpec) -> np.ndarray:
    if isinstance(instance, dict):
        return _encoded(where, instance, spec)
    if isinstance(instance, list):
        return _pixels(where, instance, spec)
    raise InvalidInput(where, f'must be {{"b64": "<PNG or JPEG>"}} or a nested array of pixels, got {type(instance).__name__}')


def _encoded(where: str, instance: dict[str, Any], spec: ImageSpec) -> np.ndarray:
    extra = sorted(set(instance) - {"b64"})
    if extra or "b64" not in instance:
        raise InvalidInput(where, f"an image object has exactly one key 'b64', got {sorted(instance)}")
    text = instance["b64"]
    if not isinstance(text, str):
        raise InvalidInput(f"{where}.b64", f"must be a base64 string, got {type(text).__name__}")
    # base64 is 4/3 the size of its bytes: refuse oversized payloads before decoding them
    if len(text) > (spec.max_bytes * 4) // 3 + 4:
        raise InvalidInput(f"{where}.b64", f"image is larger than {spec.max_bytes} bytes")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{where}.b64", "not valid base64") from None
    try:
        check_image(data, spec)
    except InvalidImage as exc:
        raise InvalidInput(f"{where}.b64", str(exc)) from None
    return decode_image(data)


def _pixels(where: str, instance: list[Any], spec: ImageSpec) -> np.ndarray:
    try:
        array = np.asarray(instance, dtype=np.float64)
    except (ValueError, TypeError):
        raise InvalidInput(where, "a pixel array must be rectangular and hold only numbers") from None
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise InvalidInput(where, f"a pixel array is (H, W) or (H, W, C) with C 1 or 3, got shape {list(array.shape)}")
    height, width = array.shape[:2]
    if not (spec.min_size <= min(height, width) and max(height, width) <= spec.max_size):
        raise InvalidInput(where, f"image is {height}x{width}; sides must be {spec.min_size}..{spec.max_size}")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
        raise InvalidInput(where, "pixel values must be numbers from 0 to 255")
    return array.round().astype(np.uint8)
