"""For how many ticks a Loihi layer provably computes its quantised Graph layer: the potential's range.

The quantiser keeps the current u inside its 24-bit register (param_limits' `current`); what remains
is v, which Lava clips to +-(2**23 - 1) and compares with vth << 6, limits the Graph lacks:

* read-out: vth is the largest, 131071 << 6; a read-out whose v passes it fires and restarts from 0 (an
  accumulator that wraps), and below -(2**23 - 1) it saturates;
* spiking: a spike follows any v above the threshold, clipped or not; below, the clip is a floor the
  Graph lacks (Loihi refuses a finite v_min).

Per tick v moves by at most the current's bound (every input at its largest, the current accumulating
as du allows: 4096 / (du + 1) times one tick's input) plus |bias|. A leak (dv > 0) bounds v for ever
when that per-tick bound over dv / 4096 fits; otherwise v may leave the range after room / bound ticks.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from neurocomp.encoding import SPIKING, payload_max
from neurocomp.ir.bounds import drive_bounds
from neurocomp.ir.layers import Layer, Network
from neurocomp.target import TargetSpec
from neurocomp.targets.loihi.neuron import ACT_SHIFT, bias as lif_bias

CURRENT = "the current u may wrap at its 24-bit range"
READOUT = "the read-out potential may pass vth_max and restart from 0, or saturate below"
FLOOR = "the potential may fall below -(2**23 - 1), where Lava clips it and the source does not"


def _ticks(room: np.ndarray, start: np.ndarray, per_tick: np.ndarray, dv: np.ndarray) -> float:
    """Fewest ticks over neurons that |v| (from `start`, moving by <= `per_tick`, decaying by dv / 4096 when
    dv > 0) stays within `room`: inf where the leak's fixed point fits."""
    with np.errstate(divide="ignore", invalid="ignore"):
        steady = np.where(dv > 0, per_tick * 4096 / np.maximum(dv, 1), np.inf)
        t = np.where(per_tick > 0, np.floor((room - start) / np.where(per_tick > 0, per_tick, 1)), np.inf)
    forever = (np.maximum(start, np.where(per_tick > 0, steady, 0)) <= room)
    return float(np.where(forever, np.inf, np.maximum(t, 0)).min(initial=np.inf))


def exact_ticks(net: Network, layer: Layer, params: Mapping[str, np.ndarray], spec: TargetSpec) -> tuple[float, str]:
    """(ticks for which no neuron of the quantised layer can reach a register limit the Graph lacks, why it ends)."""
    bits = int(spec.get("core.message_bits", 0))
    peaks = {i.name: float(payload_max(bits)) for i in net.inputs if i.encoding not in SPIKING}
    up, down = drive_bounds(layer, peaks)
    p = {k: np.asarray(params[k], dtype=np.float64) for k in ("du", "dv", "v_init")}
    gain = 4096.0 / (p["du"] + 1)
    u_max = np.maximum(up, down) * (1 << ACT_SHIFT) * gain
    half = float(1 << (int(spec["core.uv_bits"]) - 1))
    if np.any(u_max >= half):
        return 0.0, CURRENT
    b = lif_bias(params)[:, 0].astype(np.float64)
    rise = up * (1 << ACT_SHIFT) * gain + np.maximum(b, 0)
    fall = down * (1 << ACT_SHIFT) * gain + np.maximum(-b, 0)
    bottom = _ticks(np.full(layer.size, half - 1), np.maximum(-p["v_init"], 0), fall, p["dv"])
    if layer.kind != "readout":
        return bottom, FLOOR
    top = _ticks(np.full(layer.size, float(int(spec["core.vth_max"]) << ACT_SHIFT)), np.maximum(p["v_init"], 0), rise, p["dv"])
    return min(top, bottom), READOUT
