"""The text modality's collate: token id sequences -> one padded (N, T) int64 batch.

Every vocabulary gives `<PAD>` id 0 (components/data/tokenizers.py), so a batch carries its
own mask: `x != 0`. Training, evaluation and serving all pad with `pad_ids`; a model reads
the lengths back with `lengths` and never looks at the padding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

PAD_ID = 0


def pad_ids(sequences: Sequence[Sequence[int]], length: int) -> np.ndarray:
    """(N, length) int64: each sequence cut at `length` and padded with PAD_ID after it."""
    out = np.full((len(sequences), length), PAD_ID, dtype=np.int64)
    for i, ids in enumerate(sequences):
        ids = np.asarray(ids, dtype=np.int64)[:length]
        out[i, : len(ids)] = ids
    return out


def lengths(x: torch.Tensor) -> torch.Tensor:
    """(N,) tokens before the padding of each row of an (N, T) batch of ids."""
    return (x != PAD_ID).sum(dim=1)
