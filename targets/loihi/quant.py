"""Loihi quantisation rules for Lava 0.10.0's fixed-point Dense + LIF.

Integer graph units map to Lava as: u receives (weights x spikes) << 6, so one graph
unit is 64 in v. Mixed-sign Dense weights lose their LSB in Lava, so they are
stored doubled with weight_exp = -1 (the exponent shifts the summed input, and a
sum of even numbers halves exactly). A core has one sign mode, so the mode is the
layer's (all its projections together, `stored_signs`): `weight_max` gets those signs.
The threshold test v > vth << 6 equals the graph's v >= theta for v on the 64-grid when vth = ceil(theta) - 1 (theta - 1 for integer
thresholds; a decaying layer's quantised threshold is k + 1/64, so vth = k); bias = mant << 6.
Lava decays u by (4096 - (du + 1)) / 4096 and v by (4096 - dv) / 4096 (truncating), so the
graph's current decay_u maps to du = 4095 - round(4096 decay_u) (decay_u = 0: du = 4095, u
holds only this tick's input) and its decay to dv = round(4096 (1 - decay)).

Mantissa and exponent per layer: the generic quantiser's layer scale is the exponent. It
puts the largest |w| on the full 8-bit mantissa (7 bits + sign when mixed) whenever the
weights are not already integers at a power of two, so every layer uses the finest grid
Lava's Dense offers; weight_exp then only carries the mixed-sign LSB. Per-core exponents
would need per-core potential units, hence per-core thresholds, and cores are cut after
quantisation; with position-major tiles a core holds every channel anyway.
"""
from __future__ import annotations

import numpy as np

from neurocomp.errors import QuantizeError
from neurocomp.ir.graph import Neuron, Readout
from neurocomp.target import TargetSpec
from neurocomp.targets.loihi.neuron import ACT_SHIFT

BIAS_EXP = 6
# levels (default): 8-bit mantissas, a bound kernel in two host-summed 8-bit parts (targets/loihi/legalize.py);
# coarse: a bound kernel in one, on about half the cores of a wide bound read-out, to 1/254 of its peak.
WEIGHT_MODES = ("levels", "coarse")


def is_mixed(w: np.ndarray) -> bool:
    return bool(np.any(w < 0) and np.any(w > 0))


def weight_max(spec: TargetSpec, w: np.ndarray) -> float:
    bits = int(spec["core.weight_bits"])
    return float(2 ** (bits - 1) - 1 if is_mixed(w) else 2 ** bits - 1)


def param_limits(spec: TargetSpec) -> dict[str, float]:
    """Registers in graph units (64 Lava units each). `current`: |u| must stay below 2**23 (Lava wraps it once
    past); `threshold_min`: Lava fires on v > vth << 6 with vth >= 0, so a source threshold must be positive."""
    return {"threshold": float(spec["core.vth_max"] + 1), "bias": float(spec["core.bias_mant_max"]),
            "current": float(2 ** (int(spec["core.uv_bits"]) - 1) >> ACT_SHIFT), "threshold_min": 0.0}


def cluster_weights(w: np.ndarray, spec: TargetSpec, mode: str = "levels") -> np.ndarray:
    """Loihi weights are plain integers per synapse: nothing to cluster."""
    return w


def cluster_composed(w: np.ndarray, spec: TargetSpec, mode: str, taps: int) -> np.ndarray:
    """Composed weights are stored as they sum, like any other: nothing to cluster."""
    return w


def neuron_params(name: str, neuron: Neuron, size: int, spec: TargetSpec) -> dict[str, np.ndarray]:
    if neuron.reset == "subtract" and not isinstance(neuron, Readout):
        raise QuantizeError(f"{name}: reset by subtraction is not available on {spec.name} (Lava's LIF resets v to 0); "
                            "convert with reset='zero' for this target")
    if np.isfinite(neuron.v_min):
        raise QuantizeError(f"{name}: a potential floor (v_min = {neuron.v_min:g}) is not available in Lava's LIF on {spec.name}")
    full = lambda a: np.broadcast_to(np.ravel(a), (size,)).astype(np.int64)  # noqa: E731
    decay = np.ravel(getattr(neuron, "decay", np.ones(1)))
    decay_u = np.ravel(getattr(neuron, "decay_u", np.zeros(1)))
    dv = full(np.clip(np.rint(4096 * (1 - decay)), 0, spec["core.decay_max"]))
    du = full(np.clip(4095 - np.rint(4096 * decay_u), 0, spec["core.decay_max"]))
    readout = isinstance(neuron, Readout)
    vth = np.full(size, spec["core.vth_max"], dtype=np.int64) if readout else full(np.ceil(neuron.threshold)) - 1
    zeros = np.zeros(size, dtype=np.int64)
    return {"du": du, "dv": dv, "vth": vth,
            "bias_mant": full(neuron.bias), "bias_exp": np.full(size, BIAS_EXP, dtype=np.int64),
            "weight_exp": zeros, "v_init": full(neuron.v_init) << BIAS_EXP, "u_init": zeros.copy()}


def check_params(name: str, params: dict[str, np.ndarray], spec: TargetSpec) -> None:
    checks = (("vth", 0, spec["core.vth_max"]), ("bias_mant", -spec["core.bias_mant_max"], spec["core.bias_mant_max"]),
              ("dv", 0, spec["core.decay_max"]), ("du", 0, spec["core.decay_max"]))
    for key, lo, hi in checks:
        arr = params[key]
        bad = np.flatnonzero((arr < lo) | (arr > hi))
        if bad.size:
            raise QuantizeError(f"{name}: neuron {bad[0]} {key} = {arr[bad[0]]} outside [{lo}, {hi}]")
    vmax = 2 ** (spec["core.uv_bits"] - 1) - 1
    if np.any(np.abs(params["v_init"]) > vmax):
        raise QuantizeError(f"{name}: initial potential outside the {spec['core.uv_bits']}-bit range")
