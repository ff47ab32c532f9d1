"""Word co-occurrence counts for GloVe (Pennington et al. 2014).

`cooccurrence` counts, over a corpus given as one stream of token ids, how often each word
appears within `window` words of each other word, an occurrence at distance d counting 1/d
(GloVe's weighting), in both directions, so the matrix is symmetric.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sparse


def cooccurrence(ids: np.ndarray, vocab_size: int, window: int = 10, first_word: int = 0) -> sparse.csr_matrix:
    """(V, V) X with X[i, j] = Σ 1/d over the occurrences of j at distance d <= `window` from
    an occurrence of i. Ids below `first_word` (special tokens) count with nothing."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    ids = np.asarray(ids, dtype=np.int64)
    rows, cols, weights = [], [], []
    for d in range(1, min(window, len(ids) - 1) + 1):
        a, b = ids[:-d], ids[d:]
        ok = (a >= first_word) & (b >= first_word)
        for i, j in ((a[ok], b[ok]), (b[ok], a[ok])):
            rows.append(i)
            cols.append(j)
            weights.append(np.full(len(i), 1.0 / d))
    if not rows:
        return sparse.csr_matrix((vocab_size, vocab_size))
    return sparse.coo_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(vocab_size, vocab_size)
    ).tocsr()  # duplicates summed
