"""Real time and latency: seconds per tick and per inference, ticks from input to output (neurocomp.frames:
per application frame).

The compiler states these figures at compile time and `neurocomp run` recomputes them from measured counts,
so they live apart from both.
"""
from __future__ import annotations


import numpy as np

from neurocomp.encoding import payload_max
from neurocomp.errors import UserError
from neurocomp.ir import sums
from neurocomp.ir.netlist import Netlist
from neurocomp.target import Target

def message_bits(target: Target) -> int:
    """Payload bits of the target's graded messages; 0: its cores receive binary spikes only. Lava sums a graded
    Dense input as an int32 dot product, so a full core (axons x 256 x largest payload) must stay below 2**31."""
    bits = int(target.spec.get("core.message_bits", 0))
    if bits and (bits < 2 or 256 * payload_max(bits) * int(target.spec["core.axons"]) >= 1 << 31):
        raise UserError(f"{target.name}: core.message_bits = {bits} must be >= 2 and keep 256 x payload x axons "
                        "below 2**31 (Lava's int32 graded sum)")
    return bits


def realtime(target: Target, per_tick_core_counts: dict[str, np.ndarray], n_routers: int, ticks_per_inference: int,
             n_chips: int = 1) -> dict:
    tick, slack = target.hooks.tick_seconds(per_tick_core_counts, target.spec, n_routers, n_chips)
    return {"tick_s": tick, "ticks_per_inference": ticks_per_inference,
            "inferences_per_s": 1.0 / (tick * ticks_per_inference), "slack": slack}


def output_latency(n: Netlist) -> int:
    """Ticks from an input spike to the output spikes it causes (axon delays and splitters included)."""
    lat = n.notes.get("latency", {})
    outputs = sums.expand(n.outputs, n.notes.get(sums.KEY, {}))
    return max((int(lat[o]) for o in outputs if o in lat), default=len(n.layers))
