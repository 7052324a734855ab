"""What neurocomp.train needs from TrueNorth: the weight sets a neuron can hold, the reset QCFS converts to,
and the integer neuron update the chip-in-the-loop surrogate differentiates through.

The weight sets are the compiler's own (quant.py): a projection is `cluster_weights` applied until the
result is a fixed point of it, so the compiler stores the trained integers unchanged. In "bits" mode a
row the ladder search does not reproduce falls back to <= 4 levels (a row with that few distinct values
is never re-clustered), which every mode but "trinary" leaves alone.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from neurocomp.target import TargetSpec
from neurocomp.targets.truenorth.neuron import NeuronOptions
from neurocomp.targets.truenorth.quant import cluster_weights, distinct_nonzero, neuron_levels, weight_max
from neurocomp.train.qcfs import qcfs

# Each mode's weight set within the wider ones': a trinary row has <= 2 levels and a levels row <= 4, both of
# which "bits" keeps as they are; so a Graph trained in a mode compiles exactly in any mode that holds it.
HOLDS = {"bits": {"bits", "levels", "trinary"}, "levels": {"levels", "trinary"}, "trinary": {"trinary"},
         "whole": {"whole", "levels", "trinary"}}
RESET = "subtract"   # per-neuron threshold and linear reset: QCFS's IF with reset by subtraction
qat_activation = qcfs  # which the chip computes as trained, so QAT's chip-model epochs change nothing
FIXED_POINT_ROUNDS = 4


def project_weights(w: np.ndarray, spec: TargetSpec, mode: str) -> np.ndarray:
    """Integer-unit weights (rows = neurons) -> the nearest integers the compiler keeps as they are."""
    top = weight_max(spec, w)
    q = np.clip(np.rint(w), -top, top)
    for _ in range(FIXED_POINT_ROUNDS):
        nxt = cluster_weights(q, spec, mode)
        if np.array_equal(nxt, q):
            return q
        q = nxt
    moving = np.any(cluster_weights(q, spec, mode) != q, axis=1)
    q[moving] = cluster_weights(q[moving], spec, "levels")
    return q


def in_weight_set(w: np.ndarray, spec: TargetSpec, mode: str) -> bool:
    """Integers within weight_max whose rows the mode can store: <= 2 values (+-s) in "trinary", <= the
    levels the fan-in leaves in "levels" (4 in "whole" wherever the fan-in fits a core), and those or a * q on a
    4-bit ladder in "bits" (cluster_weights leaves such rows unchanged)."""
    if not np.array_equal(w, np.rint(w)) or np.max(np.abs(w), initial=0) > weight_max(spec, w):
        return False
    if mode == "trinary":
        mags = [np.unique(np.abs(r[r != 0])) for r in w]
        return all(m.size <= 1 for m in mags)
    k = neuron_levels(int(np.max(np.count_nonzero(w, axis=1), initial=1)), spec, mode)
    few = distinct_nonzero(w) <= k
    return bool(few.all() or (mode == "bits" and np.array_equal(cluster_weights(w, spec, mode), w)))


def surrogate_state(params: Mapping[str, np.ndarray], spec: TargetSpec) -> dict[str, torch.Tensor]:
    """The registers the update reads, as float64 tensors (integers, exact), and v's initial value."""
    if any(np.any(np.asarray(params[k]) != 0) for k in ("epsilon", "c_lambda", "tm")):
        raise ValueError("the surrogate models deterministic neurons only (epsilon = c_lambda = tm = 0)")
    keys = ("alpha", "beta", "gamma", "kappa", "reset", "v_init")
    out = {k: torch.as_tensor(np.asarray(params[k], dtype=np.float64)) for k in keys}
    lo, hi = NeuronOptions.from_spec(lambda k, d: spec.get(k, d)).v_range
    out["lo"], out["hi"] = torch.tensor(float(lo)), torch.tensor(float(hi))
    return out


def surrogate_bias(params: Mapping[str, np.ndarray]) -> np.ndarray:
    """The trainable per-neuron bias register: the linear leak."""
    return np.asarray(params["leak"], dtype=np.float64)


def surrogate_step(v: torch.Tensor, syn: torch.Tensor, bias: torch.Tensor, r: Mapping[str, torch.Tensor],
                   fire) -> tuple[torch.Tensor, torch.Tensor]:
    """neuron.Stepper for deterministic neurons (epsilon = c_lambda = tm = 0) in graph units: integrate and
    saturate, leak and saturate, fire at v >= alpha, reset per gamma, floor at -beta (kappa 1), saturate.
    `fire(v, threshold)` is the spike function (a straight-through Heaviside when training)."""
    v = torch.clamp(v + syn, r["lo"], r["hi"])
    v = torch.clamp(v + bias, r["lo"], r["hi"])
    s = fire(v, r["alpha"])
    fired = torch.where(r["gamma"] == 0, r["reset"], torch.where(r["gamma"] == 1, v - r["alpha"], v))
    below = (r["kappa"] == 1) & (v < -r["beta"])
    rest = torch.where(below, -r["beta"] + 0 * v, v)
    return torch.clamp(rest + s * (fired - rest), r["lo"], r["hi"]), s


def surrogate_potential(v: torch.Tensor) -> torch.Tensor:
    """v in graph units (TrueNorth stores it directly)."""
    return v
