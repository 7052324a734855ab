"""TrueNorth quantisation rules: 4 axon types per neuron (weight levels or bit planes), leak as bias, linear reset.

Weight modes: "levels" clusters each neuron's weights to the levels its fan-in leaves room
for (<= 4, per sign); "trinary" (EEDN, TRUENORTH.md §9) gives each neuron weights in
{-s, 0, +s}: two axon types, so a core takes 128 distinct inputs instead of 64, at the cost
of the weights' precision (benchmarks/accuracy_digits.py measures it). "bits" gives each neuron
a scale a and weights a * q on a signed 4-bit ladder (q in [-8, 7], or [0, 15] for one sign; fewer
bits where the fan-in leaves fewer axon copies): the 4 axon types are its bit planes, so each
input still takes at most 4 axons, and a neuron gets 16 levels instead of 2 per sign.
"whole" gives every neuron <= 4 levels whatever its fan-in, as long as the fan-in fits a core's
axons: each input enters on one axon typed by its weight's level, so no neuron is split into
spiking partial sums (legalize.py) and the chip computes the trained integers exactly; a core
then holds the neurons whose (input, level) axons fit together -- fewer of a wide layer's.
"""
from __future__ import annotations

import numpy as np

from neurocomp.errors import QuantizeError
from neurocomp.ir.graph import Neuron, Readout
from neurocomp.target import TargetSpec

LLOYD_ITERS = 20
WEIGHT_MODES = ("bits", "levels", "trinary", "whole")  # the first is the default: the best tracking and digits accuracy measured
SCALE_CANDIDATES = np.linspace(0.5, 1.25, 16)  # per-row scale a searched as multiples of max|w| / q_max


def weight_max(spec: TargetSpec, w: np.ndarray) -> float:
    return float(spec["core.weight_max"])


def param_limits(spec: TargetSpec) -> dict[str, float]:
    return {"threshold": float(spec["core.alpha_max"]), "bias": float(spec["core.leak_max"])}


def max_levels(fan_in: int, spec: TargetSpec) -> int:
    """Each level costs a copy of every input axon, so wide fan-in leaves fewer levels (256 // fan-in, <= 4)."""
    return int(np.clip(spec["core.axons"] // max(fan_in, 1), 1, spec["core.axon_types"]))


def neuron_levels(fan_in: int, spec: TargetSpec, mode: str) -> int:
    """Levels one neuron of this fan-in may hold: in "whole" mode all 4 axon types when its inputs fit a core
    (one axon each), else what max_levels leaves."""
    if mode == "whole" and fan_in <= spec["core.axons"]:
        return int(spec["core.axon_types"])
    return max_levels(fan_in, spec)


def mode_levels(mode: str, spec: TargetSpec) -> int:
    """Weight levels (axon copies per input) a neuron may use in this weight mode."""
    return 2 if mode == "trinary" else int(spec["core.axon_types"])


def cluster_weights(w: np.ndarray, spec: TargetSpec, mode: str = "levels") -> np.ndarray:
    """Rows (neurons) with more distinct non-zero integers than the fan-in allows are clustered per sign by 1-D Lloyd,
    or in "bits" mode (when the fan-in leaves >= 3 axon copies) put on a per-row bit-plane ladder."""
    if mode == "trinary":
        return trinary(w)
    live = np.flatnonzero(np.any(w != 0, axis=0))
    if live.size < w.shape[1]:   # a fan-in part's weights: its layer's, masked to a few channels; zeros stay zero
        out = np.zeros_like(w)
        out[:, live] = cluster_weights(w[:, live], spec, mode)
        return out
    out = w.copy()
    fan_in = int(np.max(np.count_nonzero(w, axis=1), initial=1))
    k = neuron_levels(fan_in, spec, mode)
    many = np.flatnonzero(distinct_nonzero(w) > k)
    if many.size == 0:
        return out
    if mode == "bits" and k >= 3:
        out[many] = bit_planes(w[many], k, float(spec["core.weight_max"]))
        return out
    sub = w[many]
    has_pos, has_neg = np.any(sub > 0, axis=1), np.any(sub < 0, axis=1)
    half = max(k // 2, 1)
    k_pos = np.where(has_neg, half, k) * has_pos
    k_neg = np.where(has_pos, half, k) * has_neg
    q = _lloyd(np.where(sub > 0, sub, 0.0), k_pos) + _lloyd(np.where(sub < 0, -sub, 0.0), k_neg) * -1
    out[many] = q
    return out


def bit_planes(w: np.ndarray, bits: int, weight_max: float) -> np.ndarray:
    """Per row a * q with integer a >= 1 and q on a `bits`-bit ladder (two's complement when the row has
    both signs, unsigned magnitude when it has one), a chosen among SCALE_CANDIDATES for the least
    squared error and small enough that every plane weight (a * 2^(bits-1)) and a * q fit `weight_max`;
    rows are taken in blocks to bound memory."""
    out = np.zeros_like(w)
    block = max(1, 2 ** 24 // max(w.shape[1] * SCALE_CANDIDATES.size, 1))
    for lo in range(0, len(w), block):
        out[lo:lo + block] = _bit_rows(w[lo:lo + block], bits, weight_max)
    return out


def _bit_rows(w: np.ndarray, bits: int, weight_max: float, taps: int = 1) -> np.ndarray:
    """The ladder of each row, for stored weights that sum up to `taps` of its weights: q's range divided by taps,
    so every sum still lies on the bits-bit ladder (the plane weights stay a * 2^k). Columns that are zero in every
    row stay zero and add no error whatever the scale, so only the others are laddered (a fan-in part's weights are
    its layer's, masked to a few channels)."""
    live = np.flatnonzero(np.any(w != 0, axis=0))
    if live.size < w.shape[1]:
        out = np.zeros_like(w)
        if live.size:
            out[:, live] = _bit_rows(w[:, live], bits, weight_max, taps)
        return out
    mixed = (w.min(axis=1) < 0) & (w.max(axis=1) > 0)
    top = np.where(mixed, 2.0 ** (bits - 1) - 1, 2.0 ** bits - 1)
    q_hi = np.floor(top / taps)
    q_lo = np.where(mixed, -np.floor(2.0 ** (bits - 1) / taps), np.where(w.max(axis=1) > 0, 0.0, -q_hi))
    a_max = np.maximum(np.floor(weight_max / np.maximum(top, 2.0 ** (bits - 1))), 1.0)
    mag = np.abs(w).max(axis=1)
    a = np.rint(mag[:, None] / q_hi[:, None] * SCALE_CANDIDATES[None, :])
    a = np.clip(a, 1.0, a_max[:, None])   # (rows, F)
    err = _ladder_errors(w, a, q_lo, q_hi)
    best = a[np.arange(len(w)), np.argmin(err, axis=1)][:, None]
    return best * np.minimum(np.maximum(np.rint(w / best), q_lo[:, None]), q_hi[:, None])


def _ladder_errors(w: np.ndarray, a: np.ndarray, q_lo: np.ndarray, q_hi: np.ndarray) -> np.ndarray:
    """Squared error of each row put on its ladder at each scale, sum((w - a * clip(rint(w / a)))^2): one
    (rows, scales, columns) buffer worked in place: a fresh temporary per step made _bit_rows 4x slower."""
    x = np.divide(w[:, None, :], a[:, :, None])
    np.rint(x, out=x)
    np.maximum(x, q_lo[:, None, None], out=x)
    np.minimum(x, q_hi[:, None, None], out=x)
    np.multiply(x, a[:, :, None], out=x)
    np.subtract(w[:, None, :], x, out=x)
    np.square(x, out=x)
    return np.sum(x, axis=2)


def cluster_composed(w: np.ndarray, spec: TargetSpec, mode: str, taps: int) -> np.ndarray:
    """`cluster_weights` for an op whose stored weights each sum up to `taps` of its weights (a pooling before
    it): in bits mode every row goes on a ladder `taps` times shorter, so the sums are still a * q with q on
    the 4-bit ladder and fit the bit planes; other modes, or a ladder too short for one level, as usual (the
    mapper refuses a neuron with more than 4 levels)."""
    k = max_levels(int(np.max(np.count_nonzero(w, axis=1), initial=1)), spec)
    if mode != "bits" or k < 3 or taps <= 1 or taps >= 2 ** (k - 1):
        return cluster_weights(w, spec, mode)
    out = np.zeros_like(w)
    rows = np.flatnonzero(np.any(w != 0, axis=1))
    out[rows] = _bit_rows(w[rows], k, float(spec["core.weight_max"]), taps)
    return out


def trinary(w: np.ndarray) -> np.ndarray:
    """Per row, sign(w) * s on the k largest |w| and 0 elsewhere, with k and the integer s >= 1 minimising
    the squared error: for the top k, s = their mean and the error drops by (sum of top k)^2 / k."""
    mag = -np.sort(-np.abs(w), axis=1)
    top = np.cumsum(mag, axis=1)
    k = np.argmax(top ** 2 / np.arange(1, w.shape[1] + 1), axis=1) + 1
    s = np.maximum(np.rint(top[np.arange(len(w)), k - 1] / k), 1.0)
    cut = mag[np.arange(len(w)), k - 1]
    keep = (np.abs(w) >= cut[:, None]) & (w != 0)
    return np.sign(w) * keep * s[:, None]


def distinct_nonzero(w: np.ndarray) -> np.ndarray:
    """Distinct non-zero values per row of a dense 2-D array."""
    s = np.sort(w, axis=1)
    new = np.ones(s.shape, dtype=bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    return np.sum(new & (s != 0), axis=1)


def _lloyd(mag: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Per-row k-level quantiser of non-negative magnitudes (zeros stay zero); levels are integers."""
    kmax = int(k.max()) if k.size else 0
    if kmax == 0:
        return np.zeros_like(mag)
    nz = mag > 0
    big = np.where(nz, mag, np.nan)
    qs = (np.arange(kmax) + 0.5) / kmax
    centers = np.nanquantile(np.where(nz.any(1, keepdims=True), big, 0.0), qs, axis=1).T  # (rows, kmax)
    valid = np.arange(kmax)[None, :] < k[:, None]
    for _ in range(LLOYD_ITERS):
        dist = np.abs(mag[:, :, None] - np.where(valid, centers, np.inf)[:, None, :])
        lab = np.argmin(dist, axis=2)
        onehot = (lab[:, :, None] == np.arange(kmax)) & nz[:, :, None]
        tot, cnt = np.sum(onehot * mag[:, :, None], axis=1), np.sum(onehot, axis=1)
        centers = np.where(cnt > 0, tot / np.maximum(cnt, 1), centers)
    centers = np.maximum(np.rint(centers), 1.0)
    lab = np.argmin(np.abs(mag[:, :, None] - np.where(valid, centers, np.inf)[:, None, :]), axis=2)
    return np.where(nz, np.take_along_axis(centers, lab, axis=1), 0.0)


def neuron_params(name: str, neuron: Neuron, size: int, spec: TargetSpec) -> dict[str, np.ndarray]:
    """Registers per neuron: IF is linear leak (bias) + alpha; reset zero -> gamma 0, subtract -> gamma 1."""
    kind = type(neuron).__name__
    if np.any(np.asarray(getattr(neuron, "decay", 1.0)) != 1):
        raise QuantizeError(f"{name}: truenorth has only a linear leak, so a {kind} decay < 1 cannot be represented; "
                            f"use IF neurons (decay 1) for this target")
    if np.any(np.asarray(getattr(neuron, "decay_u", 0.0)) != 0):
        raise QuantizeError(f"{name}: truenorth neurons have no synaptic current state, so a {kind} current decay "
                            f"(decay_u > 0, e.g. NIR CubaLIF tau_syn) cannot be represented; use a Loihi target")
    readout = isinstance(neuron, Readout)
    alpha = _register(spec["core.alpha_max"], size) if readout else _register(neuron.threshold, size)
    gamma = _register(2 if readout else (0 if neuron.reset == "zero" else 1), size)
    # kappa = 1: below -beta the potential saturates at -beta, the graph's floor v_min (floor(v_min) units gives
    # the same spikes as a fractional v_min). A read-out has no floor: kappa = 0 with gamma 2 leaves V as it is.
    beta = spec["core.beta_max"] if np.isinf(neuron.v_min) else min(int(np.ceil(-neuron.v_min)), spec["core.beta_max"])
    zeros = _register(0, size)
    return {"leak": _register(neuron.bias, size), "epsilon": zeros, "c_lambda": zeros, "alpha": alpha,
            "beta": _register(beta, size), "tm": zeros, "gamma": gamma, "kappa": _register(0 if readout else 1, size),
            "reset": zeros, "v_init": _register(neuron.v_init, size)}


def _register(value, size: int) -> np.ndarray:
    """One register for `size` neurons, int64: a read-only broadcast of one value where all neurons share it (a
    fan-in split's parts are tens of millions of neurons with the same few registers), else one per neuron."""
    values = np.ravel(value)
    if np.all(values == values[0]):
        return np.broadcast_to(np.int64(values[0]), (size,))
    return np.broadcast_to(values, (size,)).astype(np.int64)


def _held(register: np.ndarray) -> np.ndarray:
    """The register's values to check: its first alone where it is one value broadcast (stride 0, _register), the
    first neuron then standing for all; a fan-in part's registers are 2.6 x 10^5 copies of one value."""
    return register[:1] if register.ndim == 1 and register.size and register.strides[0] == 0 else register


def check_params(name: str, params: dict[str, np.ndarray], spec: TargetSpec) -> None:
    checks = (("leak", -spec["core.leak_max"], spec["core.leak_max"], "the bias is too large for the leak register next to "
               "the weights: scale the layer's bias down or feed it from an always-on input"),
              ("alpha", 0, spec["core.alpha_max"], "the threshold is too large next to the weights: normalise the layer"),
              ("beta", 0, spec["core.beta_max"], "the potential floor is too deep: use v_min >= -beta_max units or -inf"))
    for key, lo, hi, fix in checks:
        arr = _held(params[key])
        bad = np.flatnonzero((arr < lo) | (arr > hi))
        if bad.size:
            raise QuantizeError(f"{name}: neuron {bad[0]} {key} = {arr[bad[0]]} outside [{lo}, {hi}]; {fix}")
    vmax = 2 ** (spec["core.v_bits"] - 1)
    if np.any(np.abs(_held(params["v_init"])) >= vmax):
        raise QuantizeError(f"{name}: initial potential outside the {spec['core.v_bits']}-bit range")
