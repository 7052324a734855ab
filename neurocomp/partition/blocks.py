"""Index arithmetic over arrays concatenated from blocks (a builder's cores, a window's spans), without loops."""
from __future__ import annotations

import numpy as np

from neurocomp.partition.split import cat


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """cat(arange(s, s + n) for s, n in zip(starts, lengths))."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(lengths)
    return np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - lengths), lengths)


def pointers(counts: np.ndarray) -> np.ndarray:
    """Where each block starts in their concatenation, and its end: [0, c0, c0 + c1, ...]."""
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def tail(blocks: list[np.ndarray], n: int) -> np.ndarray:
    """The last n entries of cat(blocks), concatenating only the blocks that hold them."""
    k, held = len(blocks), 0
    while k > 0 and held < n:
        k -= 1
        held += blocks[k].size
    return cat(blocks[k:])[held - n:]
