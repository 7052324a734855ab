"""distinct(): np.unique's result by one sort; renumbered(): np.unique's with its inverse, by a bitmap or a sort."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from neurocomp.distinct import BITMAP_RANGE, count_distinct, distinct, renumbered


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(st.sampled_from([np.int16, np.int32, np.int64, np.uint8]), hnp.array_shapes(min_dims=1, max_dims=2,
                                                                                                min_side=0, max_side=40)))
def test_distinct_is_np_unique(values):
    got, want = distinct(values), np.unique(values)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-2 ** 31, 2 ** 31 - 1), max_size=60), st.sampled_from([0, 1, -1, 2 ** 31, -2 ** 31 - 1]),
       st.sampled_from([np.int64, np.uint64]))
def test_wide_integers_sorted_narrow_or_not_give_np_unique(values, edge, dtype):
    """64-bit keys inside int32's range (sorted as int32) and keys just past it (sorted as they are)."""
    if dtype is np.uint64:
        values, edge = [abs(v) for v in values], abs(edge)
    arr = np.array(values + [edge], dtype=dtype)
    got = distinct(arr)
    assert got.dtype == arr.dtype
    np.testing.assert_array_equal(got, np.unique(arr))


def test_distinct_by_hand():
    np.testing.assert_array_equal(distinct(np.array([5, -1, 5, 3, -1, 7])), [-1, 3, 5, 7])
    assert distinct(np.zeros(0, np.int64)).size == 0 and distinct(np.array([4])).tolist() == [4]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 3000), max_size=80), st.integers(-2 ** 20, 2 ** 20),
       st.sampled_from([np.int32, np.int64, np.uint16]))
def test_renumbered_is_np_unique_with_inverse(values, low, dtype):
    """Ids over a narrow range (the bitmap) and a wide one (the sort) give np.unique's values and inverse."""
    low = abs(low) if dtype is np.uint16 else low
    arr = (np.array(values, dtype=np.int64) + (low if dtype is not np.uint16 else low % 1000)).astype(dtype)
    used, local = renumbered(arr)
    want, inverse = np.unique(arr, return_inverse=True)
    assert used.dtype == arr.dtype
    np.testing.assert_array_equal(used, want)
    np.testing.assert_array_equal(local, inverse.ravel())


def test_renumbered_by_hand():
    """A bitmap case (span 8 <= BITMAP_RANGE x 6) and a sorted one (span 10^6 > BITMAP_RANGE x 3)."""
    used, local = renumbered(np.array([12, 5, 12, 9, 5, 6], dtype=np.int32))
    assert used.tolist() == [5, 6, 9, 12] and local.tolist() == [3, 0, 3, 2, 0, 1] and 8 <= BITMAP_RANGE * 6
    used, local = renumbered(np.array([10 ** 6, 0, 10 ** 6], dtype=np.int64))
    assert used.tolist() == [0, 10 ** 6] and local.tolist() == [1, 0, 1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 40)), max_size=120), st.sampled_from([np.int32, np.int64]))
def test_count_distinct_counts_each_groups_distinct_keys(pairs, dtype):
    """Keys group * 64 + value, grouped by a division in place: the count of distinct values per group, as a set
    gives, whatever the keys' order."""
    keys = np.array([g * 64 + v for g, v in pairs], dtype=dtype)
    got = count_distinct(keys, lambda k: np.floor_divide(k, dtype(64), out=k), 7)
    want = [len({v for g, v in pairs if g == group}) for group in range(7)]
    assert got.tolist() == want
