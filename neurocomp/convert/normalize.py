"""Data-based normalisation: activation scales lambda and the weight/bias scaling they imply.

With lambda^l the chosen percentile of layer l's ReLU outputs, an IF neuron with
threshold 1 fed W^l lambda^(l-1) / lambda^l and b^l / lambda^l fires at rate
~ clip(a^l / lambda^l, 0, 1) (Rueckauer et al. 2017). Channel-wise lambdas scale
each output channel (row) and each input channel (column) on its own.
"""
from __future__ import annotations

import warnings

import numpy as np

from neurocomp.convert.ann import Segment, Weighted


def activation_scales(act: np.ndarray, channels: int, percentile: float, mode: str) -> np.ndarray:
    """lambda per output channel: the percentile of the non-zero activations, layer- or channel-wise.

    `act` is (batch, ...) with the channel first after the batch axis (also after a flatten,
    which keeps torch's channel-major order). A channel that never fires on the calibration
    set takes the layer's lambda, so its outgoing weights do not stretch the quantiser's range.
    """
    a = np.asarray(act, dtype=np.float64).reshape(act.shape[0], channels, -1)
    positive = a[a > 0]
    layer = float(np.percentile(positive, percentile)) if positive.size else 1.0
    if mode == "layer":
        return np.full(channels, layer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN (never active) channels
        per = np.nanpercentile(np.where(a > 0, a, np.nan), percentile, axis=(0, 2))
    return np.where(np.isfinite(per), per, layer)


def input_scale(op: Weighted, lam_prev: np.ndarray) -> np.ndarray:
    """lambda of the input feeding each weight, shaped to broadcast against op.weight."""
    if op.is_conv:
        cout, cin_g = op.weight.shape[:2]
        group_out = cout // op.groups
        ci = (np.arange(cout) // group_out)[:, None] * cin_g + np.arange(cin_g)[None, :]
        return lam_prev[ci][:, :, None, None]
    n_in = op.weight.shape[1]
    return np.repeat(lam_prev, n_in // lam_prev.size)[None, :]


def scale_segment(seg: Segment, lam_prev: np.ndarray, lam: np.ndarray) -> Segment:
    """The segment with W * lambda_prev / lambda * pool_factor and b / lambda * (pooling after W)."""
    op = seg.weighted
    rows = lam.reshape((-1,) + (1,) * (op.weight.ndim - 1))
    weight = op.weight * input_scale(op, lam_prev) / rows * seg.pool_factor
    scaled = Weighted(op.name, weight, op.bias / lam * seg.post_factor, op.stride, op.padding, op.groups)
    return Segment(tuple(scaled if o is op else o for o in seg.ops), seg.spiking)


def with_bias_shift(seg: Segment, shift: np.ndarray) -> Segment:
    """Add `shift` per channel to the current each neuron receives per tick (pooling after W sums the bias)."""
    op = seg.weighted
    moved = Weighted(op.name, op.weight, op.bias + shift * seg.post_factor, op.stride, op.padding, op.groups)
    return Segment(tuple(moved if o is op else o for o in seg.ops), seg.spiking)


def with_gain(seg: Segment, gain: np.ndarray) -> Segment:
    """Scale each output channel's weights and bias (the whole current it receives) by `gain`."""
    op = seg.weighted
    rows = gain.reshape((-1,) + (1,) * (op.weight.ndim - 1))
    moved = Weighted(op.name, op.weight * rows, op.bias * gain, op.stride, op.padding, op.groups)
    return Segment(tuple(moved if o is op else o for o in seg.ops), seg.spiking)
