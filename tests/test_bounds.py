"""ir.bounds: the largest rise and fall one tick of input can cause, per neuron."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from neurocomp.ir.bounds import projection_bounds
from neurocomp.ir.graph import Conv2d, Scale
from neurocomp.ir.layers import Projection


def _direct(w: np.ndarray, x: float, stride: int, padding: int, groups: int, shape) -> np.ndarray:
    """conv of a constant input with w: the reference, every input channel computed."""
    return F.conv2d(torch.full((1,) + shape, float(x), dtype=torch.float64), torch.from_numpy(w), None, stride,
                    padding, 1, groups).numpy().ravel()


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.integers(1, 2), st.integers(0, 2),
       st.sampled_from([1, 2]), st.integers(0, 10_000), st.booleans())
def test_a_conv_on_a_constant_input_is_bounded_from_one_channel(groups, per_group, k, stride, padding, high, seed,
                                                                 graded):
    """The first conv of a chain sums its input channels' weights first (its input is constant): the same bounds,
    bit for bit, as the conv over every channel, with spikes ([0, 1]) and with a graded range ([-low, high])."""
    rng = np.random.default_rng(seed)
    cin, cout, side = groups * per_group, groups * 2, 7
    w = rng.integers(-3, 4, size=(cout, per_group, k, k)).astype(np.float64)
    op = Conv2d("c", w, stride=(stride, stride), padding=(padding, padding), groups=groups)
    out = F.conv2d(torch.zeros((1, cin, side, side), dtype=torch.float64), torch.from_numpy(w), None, stride,
                   padding, 1, groups).shape[1:]
    p = Projection("x", (op, Scale("s", np.full(out, 2.0))), ((cin, side, side), tuple(out), tuple(out)))
    low = 2 if graded else 0
    hi, lo = projection_bounds(p, high, low)
    pos, neg = np.maximum(w, 0), np.maximum(-w, 0)
    shape = (cin, side, side)
    want_hi = 2 * (_direct(pos, high, stride, padding, groups, shape) + _direct(neg, low, stride, padding, groups, shape))
    want_lo = 2 * (_direct(pos, low, stride, padding, groups, shape) + _direct(neg, high, stride, padding, groups, shape))
    assert np.array_equal(hi, want_hi) and np.array_equal(lo, want_lo)
    if high == 1 and not graded:
        assert hi.max() > 0 or not (w > 0).any()


def test_a_chain_that_starts_with_a_scale_is_bounded_by_hand():
    """Scale (+2, -3 per input) then a 1x1 conv summing both: from spikes, rise 2 and fall 3; from [-1, 1], 5 each."""
    p = Projection("x", (Scale("s", np.array([2.0, -3.0]).reshape(2, 1, 1)), Conv2d("c", np.ones((1, 2, 1, 1)))),
                   ((2, 1, 1), (2, 1, 1), (1, 1, 1)))
    assert [v.tolist() for v in projection_bounds(p)] == [[2.0], [3.0]]
    assert [v.tolist() for v in projection_bounds(p, 1.0, 1.0)] == [[5.0], [5.0]]
