"""Application frames on the chip: how many runs a frame takes (the Graph's FRAME_KEY record) and the ticks
each layer runs behind the Graph; these need the Graph, so they live apart from neurocomp.realtime, which
`neurocomp run` imports without torch."""
from __future__ import annotations

import json
from typing import Any

from neurocomp.errors import UserError
from neurocomp.ir import sums
from neurocomp.ir.fold import fold_linear
from neurocomp.ir.graph import Graph
from neurocomp.ir.layers import lower
from neurocomp.ir.netlist import Netlist
from neurocomp.partition.delays import timing

FRAME_KEY = "frame"           # Graph metadata (JSON): how an application frame runs, for frame_figures


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
