"""Sorted distinct values by one sort.

numpy 2.4's `np.unique` finds distinct values with a hash table, which on large arrays of spread-out keys is many
times slower than sorting (50 M int64 keys: about a minute against well under a second here); the compiler asks for
distinct keys of every edge, synapse window and route.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

# A bitmap over the values' range replaces the sort where the range is at most this many times their count (a core's
# inputs over its receptive field: a 78 k-synapse core of a 48-channel conv spans ~180 k input ids).
BITMAP_RANGE = 4


def distinct(values: np.ndarray, runs: bool = False) -> np.ndarray:
    """`np.unique(values)`: the sorted distinct entries of the flattened array, in its dtype. Wide integers whose
    range fits int32 are sorted as int32: numpy's vectorised sort takes 32-bit keys (6 x 10^7 destination-core
    keys: 0.27 s against 4.0 s as int64). `runs`: the values come in long ascending runs (keys led by an id the
    array is grouped by), which timsort merges in a few passes (a paper-size net's 6 x 10^7 edge keys led by their
    destination core: 0.7 s against 4.4 s)."""
    out = np.sort(_narrowed(values), axis=None, kind="stable" if runs else None).astype(values.dtype, copy=False)
    if out.size < 2:
        return out
    keep = np.empty(out.size, dtype=bool)
    keep[0] = True
    np.not_equal(out[1:], out[:-1], out=keep[1:])
    return out[keep]


def _narrowed(values: np.ndarray) -> np.ndarray:
    """`values` as int32 where they are 64-bit integers within its range, else as they are."""
    if values.dtype.kind not in "iu" or values.dtype.itemsize <= 4 or values.size < 2:
        return values
    low, high = np.iinfo(np.int32).min, np.iinfo(np.int32).max
    return values.astype(np.int32) if low <= int(values.min()) and int(values.max()) <= high else values


def renumbered(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct(values), each value's index in it): a core's input ids and each synapse's local axon. Integers
    over a narrow range (BITMAP_RANGE) are marked in a bitmap and ranked by its running count, with no sort."""
    if values.size == 0 or values.dtype.kind not in "iu":
        used = distinct(values)
        return used, np.searchsorted(used, values)
    low = int(values.min())
    span = int(values.max()) - low + 1
    if span > BITMAP_RANGE * values.size:
        used = distinct(values)
        return used, np.searchsorted(used, values)
    at = values - values.dtype.type(low)
    mark = np.zeros(span, dtype=bool)
    mark[at] = True
    rank = np.cumsum(mark, dtype=np.int32 if span < 2 ** 31 else np.int64)
    rank -= 1
    used = np.flatnonzero(mark).astype(values.dtype)
    used += values.dtype.type(low)
    return used, rank[at]


def count_distinct(keys: np.ndarray, group: Callable[[np.ndarray], None], n_groups: int) -> np.ndarray:
    """(n_groups,) distinct keys per group, for keys that come in long ascending runs (distinct's `runs`). `keys` is
    consumed: sorted in place, then `group` turns each key into its group id in place; repeats are then counted in
    an extra group. A paper-size net's 6 x 10^7 edge keys then cost one fresh array, not five: each fresh array of
    that size is page-faulted, about a second here."""
    keys.sort(kind="stable")
    repeat = np.empty(keys.size, dtype=bool)
    if keys.size:
        repeat[0] = False
        np.equal(keys[1:], keys[:-1], out=repeat[1:])
    group(keys)
    keys[repeat] = n_groups
    return np.bincount(keys, minlength=n_groups + 1)[:n_groups]
