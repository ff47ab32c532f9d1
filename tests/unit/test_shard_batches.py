"""A worker's shard: streamed once, then kept in memory only when it is small."""

from __future__ import annotations

import torch

from components.training.ray_session import ShardBatches


class CountingSource:
    """Stands in for a Ray Data iterator: yields fixed batches and counts the passes."""

    def __init__(self, n: int) -> None:
        self.x = torch.arange(n, dtype=torch.float32).reshape(n, 1)
        self.y = torch.arange(n)
        self.passes = 0

    def iter_torch_batches(self, batch_size, local_shuffle_buffer_size=None, local_shuffle_seed=None):
        self.passes += 1
        for start in range(0, len(self.y), batch_size):
            yield {"x": self.x[start : start + batch_size], "y": self.y[start : start + batch_size]}


def _rows(batches) -> list[int]:
    return [int(v) for b in batches for v in b["y"]]


def test_small_shard_is_read_once_then_reshuffled_in_memory():
    source = CountingSource(10)
    shard = ShardBatches(source)
    first = _rows(shard(4, True, 0))
    second = list(shard(4, True, 1))
    third = _rows(shard(4, True, 2))
    assert source.passes == 1
    assert [len(b["y"]) for b in second] == [4, 4, 2]
    assert sorted(_rows(second)) == sorted(first) == list(range(10))
    assert _rows(second) != third  # a new order every epoch
    assert _rows(shard(4, False, 3)) == list(range(10))  # no shuffle: stored order
    assert torch.equal(second[0]["x"][:, 0].long(), second[0]["y"])  # rows stay whole


def test_large_shard_streams_every_epoch():
    source = CountingSource(10)
    shard = ShardBatches(source, keep_below_bytes=64)
    for seed in range(3):
        assert sorted(_rows(shard(4, True, seed))) == list(range(10))
    assert source.passes == 3


def test_an_abandoned_first_pass_is_not_kept():
    source = CountingSource(10)
    shard = ShardBatches(source)
    batches = shard(4, True, 0)
    next(batches)
    batches.close()  # e.g. an exception mid-epoch
    assert _rows(shard(4, True, 1)) and source.passes == 2
