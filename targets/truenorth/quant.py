"""TrueNorth quantisation rules: <= 4 weight levels per neuron, leak as bias, linear reset."""
from __future__ import annotations

import numpy as np

from neurocomp.errors import QuantizeError
from neurocomp.ir.graph import LIF, Neuron, Readout
from neurocomp.target import TargetSpec

LLOYD_ITERS = 20


def weight_max(spec: TargetSpec, w: np.ndarray) -> float:
    return float(spec["core.weight_max"])


def param_limits(spec: TargetSpec) -> dict[str, float]:
    return {"threshold": float(spec["core.alpha_max"]), "bias": float(spec["core.leak_max"])}


def max_levels(fan_in: int, spec: TargetSpec) -> int:
    """Each level costs a copy of every input axon, so wide fan-in leaves fewer levels (256 // fan-in, <= 4)."""
    return int(np.clip(spec["core.axons"] // max(fan_in, 1), 1, spec["core.axon_types"]))


def cluster_weights(w: np.ndarray, spec: TargetSpec) -> np.ndarray:
    """Rows (neurons) with more distinct non-zero integers than the fan-in allows are clustered per sign by 1-D Lloyd."""
    out = w.copy()
    fan_in = int(np.max(np.count_nonzero(w, axis=1), initial=1))
    k = max_levels(fan_in, spec)
    many = np.flatnonzero(distinct_nonzero(w) > k)
    if many.size == 0:
        return out
    sub = w[many]
    has_pos, has_neg = np.any(sub > 0, axis=1), np.any(sub < 0, axis=1)
    half = max(k // 2, 1)
    k_pos = np.where(has_neg, half, k) * has_pos
    k_neg = np.where(has_pos, half, k) * has_neg
    q = _lloyd(np.where(sub > 0, sub, 0.0), k_pos) + _lloyd(np.where(sub < 0, -sub, 0.0), k_neg) * -1
    out[many] = q
    return out


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
    if isinstance(neuron, LIF) and np.any(np.asarray(neuron.decay) != 1):
        raise QuantizeError(f"{name}: truenorth has only a linear leak, so a LIF decay < 1 cannot be represented; use IF neurons (decay 1) for this target")
    full = lambda a: np.broadcast_to(np.ravel(a), (size,)).astype(np.int64)  # noqa: E731
    zeros = np.zeros(size, dtype=np.int64)
    readout = isinstance(neuron, Readout)
    alpha = np.full(size, spec["core.alpha_max"], dtype=np.int64) if readout else full(neuron.threshold)
    gamma = np.full(size, 2 if readout else (0 if neuron.reset == "zero" else 1), dtype=np.int64)
    # kappa = 1: below -beta the potential saturates at -beta, which is the graph's floor v_min
    beta = spec["core.beta_max"] if np.isinf(neuron.v_min) else min(int(np.ceil(-neuron.v_min)), spec["core.beta_max"])
    return {"leak": full(neuron.bias), "epsilon": zeros, "c_lambda": zeros.copy(), "alpha": alpha,
            "beta": np.full(size, beta, dtype=np.int64), "tm": zeros.copy(), "gamma": gamma,
            "kappa": np.ones(size, dtype=np.int64), "reset": zeros.copy(), "v_init": full(neuron.v_init)}


def check_params(name: str, params: dict[str, np.ndarray], spec: TargetSpec) -> None:
    checks = (("leak", -spec["core.leak_max"], spec["core.leak_max"]), ("alpha", 0, spec["core.alpha_max"]),
              ("beta", 0, spec["core.beta_max"]))
    for key, lo, hi in checks:
        arr = params[key]
        bad = np.flatnonzero((arr < lo) | (arr > hi))
        if bad.size:
            raise QuantizeError(f"{name}: neuron {bad[0]} {key} = {arr[bad[0]]} outside [{lo}, {hi}]")
    vmax = 2 ** (spec["core.v_bits"] - 1)
    if np.any(np.abs(params["v_init"]) >= vmax):
        raise QuantizeError(f"{name}: initial potential outside the {spec['core.v_bits']}-bit range")
