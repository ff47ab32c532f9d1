"""Bucketing by length: every row once, the same batch sizes, rows alike in length, x and y
kept together, and a seeded order."""

from __future__ import annotations

import torch

from components.data.modalities.text import lengths
from components.training.bucketing import by_length


def _batches(n_batches: int = 8, size: int = 16, width: int = 40, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for b in range(n_batches):
        n = torch.randint(1, width + 1, (size,), generator=g)  # (B,) random lengths
        x = torch.zeros(size, width, dtype=torch.long)
        for i, k in enumerate(n.tolist()):
            x[i, :k] = torch.arange(1, k + 1) + 100 * (b * size + i)  # each row's ids say which row it is
        out.append({"x": x, "y": b * size + torch.arange(size)})
    return out


def _padding(batches) -> float:
    """The share of a batch cut to its longest row that is padding, over all batches."""
    padded = sum(len(b["x"]) * int(lengths(b["x"]).max()) for b in batches)
    return 1 - sum(int(lengths(b["x"]).sum()) for b in batches) / padded


def test_rows_are_regrouped_by_length_each_once_with_their_labels():
    batches = _batches()
    sizes = [len(b["x"]) for b in batches[:7]] + [5]
    batches[-1] = {k: v[:5] for k, v in batches[-1].items()}  # a short last batch keeps its size
    bucketed = list(by_length(batches, pool=4, seed=3))
    assert sorted(len(b["x"]) for b in bucketed) == sorted(sizes)
    rows = torch.cat([b["y"] for b in bucketed])
    assert sorted(rows.tolist()) == sorted(torch.cat([b["y"] for b in batches]).tolist())  # each row once
    for b in bucketed:  # x and y moved together: a row's first id names it
        assert ((b["x"][:, 0] - 1) // 100).tolist() == b["y"].tolist()
    assert _padding(bucketed) < 0.5 * _padding(batches)  # random lengths: about half is padding before
    assert [b["y"].tolist() for b in by_length(batches, 4, 3)] == [b["y"].tolist() for b in bucketed]
    assert [b["y"].tolist() for b in by_length(batches, 4, 4)] != [b["y"].tolist() for b in bucketed]


def test_pools_never_mix_and_tokens_with_characters_bucket_by_their_words():
    batches = _batches(4)
    first_pool = {int(v) for b in batches[:2] for v in b["y"]}
    out = list(by_length(batches, pool=2, seed=0))
    assert {int(v) for b in out[:2] for v in b["y"]} == first_pool  # the first pool is yielded first
    chars = [{"x": torch.stack([b["x"], b["x"]], dim=2), "y": b["y"]} for b in batches]  # (B, T, 1 + W)
    regrouped = list(by_length(chars, pool=4, seed=0))
    assert all(b["x"].shape[1:] == (40, 2) for b in regrouped) and _padding(regrouped) < _padding(chars)
