"""For how many ticks a TrueNorth layer provably computes its quantised Graph layer: the range limits.

The chip's potential is a v_bits register that saturates, and a neuron that resets (gamma 0 or 1)
always has a negative threshold: with kappa = 1 it floors V at -beta, at most beta_max deep. The
Graph has neither limit (its floor v_min may be -inf). Interval arithmetic over each projection
(neurocomp.ir.bounds; inputs are spikes in {0, 1}) bounds the drive a neuron can get in one tick,
and from it the number of ticks before any neuron can reach a limit the Graph does not have:

* read-out (gamma 2, kappa 0: no floor): V moves by at most the per-tick drive; saturation ends it, or,
  when another layer reads it, reaching alpha_max, where the chip fires and the source's read-out never does;
* spiking, floor: the chip's floor equals the Graph's (floor(v_min) units gives the same spikes)
  unless v_min is -inf or deeper than beta_max; then the Graph's V may pass -beta_max once the
  negative drive has had enough ticks;
* spiking, top: after a spike V resets to 0 or V - alpha; with subtraction and a per-tick drive
  above alpha, V can climb by (drive - alpha) per tick until it saturates. Saturating at the top
  with a reset to 0, or at the bottom below the floor, changes nothing (the spike or the floor
  follows anyway).

A layer a fan-in split rewrote (and its partial-sum layers) approximates the Graph from tick 0.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from neurocomp.ir import bounds
from neurocomp.ir.layers import Layer, Network
from neurocomp.partition.delays import inserted
from neurocomp.target import TargetSpec
from neurocomp.targets.truenorth.legalize import SPLIT_KEY

SPLIT = "fan-in split into spiking partial sums"


def drive_bounds(layer: Layer, leak: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron: the largest rise and fall of V in one tick, synaptic drive (spikes in, so [0, 1]) plus the leak."""
    up, down = bounds.drive_bounds(layer, {})
    return up + np.maximum(leak, 0), down + np.maximum(-leak, 0)


def _ticks(room: np.ndarray, per_tick: np.ndarray) -> float:
    """Fewest ticks over neurons that a quantity with `room` left and `per_tick` growth stays in range."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(per_tick > 0, np.floor(room / np.where(per_tick > 0, per_tick, 1)), np.inf)
    return float(np.maximum(t, 0).min(initial=np.inf))


def _top_ticks(start: np.ndarray, up: np.ndarray, alpha: np.ndarray, subtract: np.ndarray, v_max: int) -> float:
    """Ticks before a subtracting neuron can saturate: it starts each tick at most `start` (then grows by
    up - alpha per tick when its drive beats its threshold) and peaks `up` above that within the tick."""
    room, growth = (v_max - start - up)[subtract], (up - alpha)[subtract]
    if np.any(room < 0):
        return 0.0
    return _ticks(room, growth) + 1


def exact_ticks(net: Network, layer: Layer, params: Mapping[str, np.ndarray], spec: TargetSpec) -> tuple[float, str]:
    """(ticks for which no neuron of the quantised layer can reach a chip limit the Graph lacks, why it ends)."""
    if layer.name in inserted(net) or layer.name in net.graph.metadata.get(SPLIT_KEY, "").split(","):
        return 0.0, SPLIT
    half = 1 << (int(spec["core.v_bits"]) - 1)
    v0, alpha, beta = (np.asarray(params[k], dtype=np.float64) for k in ("v_init", "alpha", "beta"))
    up, down = drive_bounds(layer, np.asarray(params["leak"], dtype=np.float64))
    saturate = f"the potential may saturate at the {spec['core.v_bits']}-bit range"
    if layer.kind == "readout":
        if layer.name in net.read:
            top = _ticks(alpha - 1 - v0, up)      # it fires at alpha_max, and a layer reads it
            return min(top, _ticks(v0 + half, down)), f"the read-out may reach alpha = {int(alpha.max())} and fire"
        top, bottom = _ticks(half - 1 - v0, up), _ticks(v0 + half, down)
        return min(top, bottom), saturate
    floor_same = np.isfinite(layer.neuron.v_min) and np.ceil(-layer.neuron.v_min) <= spec["core.beta_max"]
    bottom = np.inf if floor_same else _ticks(np.minimum(v0, 0) + beta, down)
    top = _top_ticks(np.maximum(v0, alpha - 1), up, alpha, np.asarray(params["gamma"]) == 1, half - 1)
    floor = f"the potential may fall below the chip's floor -{int(beta.max())} (kappa = 1), which the source lacks"
    return (bottom, floor) if bottom <= top else (top, saturate)
