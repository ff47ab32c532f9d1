"""Decoding a split's images in Ray tasks on the cluster, not in the process preparing it.

`prepare_images` decodes every image once, into the silver table's pixels; this runs that
decode as Ray tasks over chunks of the encoded images, at most one in flight per CPU of
the cluster, and returns the pixels in the images' order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import ray
from ray.exceptions import RayTaskError

from components.data.modalities.image import ImageProcessor

CHUNK = 2048  # images per task: each task's decode takes tens of milliseconds or more
# Like Ray Data's read tasks: a fraction of a CPU, so a cluster whose CPUs trainers or
# replicas hold still runs them; the cap on tasks in flight keeps them one per core.
_TASK_CPUS = 0.25


@ray.remote(num_cpus=_TASK_CPUS)
def _pixels(processor: ImageProcessor, images: Sequence[bytes], start: int) -> np.ndarray:
    return processor.pixels(images, start)


def pixels_on_ray(processor: ImageProcessor, images: Sequence[bytes]) -> np.ndarray:
    """`processor.pixels(images)`, computed by Ray tasks on the connected cluster; an image
    that cannot be decoded raises its error here, naming images[i] of the whole list."""
    if len(images) <= CHUNK:
        return processor.pixels(images)  # one chunk: a task would only add its start-up
    shared = ray.put(processor)
    in_flight = max(1, int(ray.cluster_resources().get("CPU", 1)))
    refs: list[ray.ObjectRef] = []
    for start in range(0, len(images), CHUNK):
        if len(refs) >= in_flight:  # wait until fewer than `in_flight` are unfinished
            ray.wait(refs, num_returns=len(refs) - in_flight + 1)
        refs.append(_pixels.remote(shared, list(images[start : start + CHUNK]), start))
    try:
        return np.concatenate(ray.get(refs))
    except RayTaskError as exc:
        raise exc.cause from None
