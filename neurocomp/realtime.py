"""Real time and latency: seconds per tick and per inference, ticks from input to output, application frames.

The compiler states these figures at compile time and `neurocomp run` recomputes them from measured counts,
so they live apart from both.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from neurocomp.encoding import payload_max
from neurocomp.errors import UserError
from neurocomp.ir import sums
from neurocomp.ir.fold import fold_linear
from neurocomp.ir.graph import Graph
from neurocomp.ir.layers import lower
from neurocomp.ir.netlist import Netlist
from neurocomp.partition.delays import timing
from neurocomp.target import Target

FRAME_KEY = "frame"           # Graph metadata (JSON): how an application frame runs, for frame_figures


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


def mapping_lags(graph: Graph, n: Netlist, names: list[str] | tuple[str, ...]) -> dict[str, int]:
    """Ticks each named layer runs behind the Graph on this netlist (fan-in splits and splitters add them)."""
    depth = timing(lower(fold_linear(graph))).latency
    latency, table = n.notes.get("latency", {}), n.notes.get(sums.KEY, {})
    return {name: max(int(latency.get(p, depth[name])) for p in table.get(name, [name])) - depth[name]
            for name in names if name in depth}


def frame_figures(graph: Graph, n: Netlist, tick_s: float, timesteps: int) -> dict[str, Any] | None:
    """Real time per application frame, from the Graph's FRAME_KEY record {"schedule", "runs", "units", "unit",
    "read", optional "ticks"}: a frame is `runs` runs one after another (e.g. 3 search scales through one copy of
    the network, or 1 run of 3 copies side by side), each "ticks" Graph ticks where the application states them,
    else `timesteps` (its own layer depth inside them, as a host reading a window of potentials sees it), plus the
    ticks the mapping puts behind the `read` layers. A frame's latency is its ticks: nothing of one frame overlaps
    the next."""
    text = graph.metadata.get(FRAME_KEY)
    if not text:
        return None
    try:
        frame = json.loads(text)
        runs, read = int(frame["runs"]), [str(r) for r in frame["read"]]
        timesteps = int(frame.get("ticks", timesteps))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(f"graph metadata {FRAME_KEY!r} is not a frame record ({e})") from None
    if runs < 1 or timesteps < 1:
        raise UserError(f"graph metadata {FRAME_KEY!r}: runs and ticks must be >= 1")
    lag = max(mapping_lags(graph, n, read).values(), default=0)
    ticks = runs * (timesteps + lag)
    return {"schedule": str(frame.get("schedule", "")), "runs": runs, "units": frame.get("units"),
            "unit": frame.get("unit"), "ticks_per_run": timesteps + lag, "lag_ticks": lag, "ticks_per_frame": ticks,
            "frames_per_s": 1.0 / (tick_s * ticks), "latency_s": tick_s * ticks}
