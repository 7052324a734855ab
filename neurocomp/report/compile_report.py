"""report.json of a compile: cores, traffic, energy and real time at an assumed firing rate, per-layer exactness.

Wall-clock compile times are not in it (Program.times, timings.json): they vary from run to run, the report does not.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from neurocomp.ir import sums
from neurocomp.ir.layers import Network
from neurocomp.ir.netlist import Netlist
from neurocomp.quantize import QNetwork
from neurocomp.report.energy import energy
from neurocomp.route import Routes
from neurocomp.target import Target

if TYPE_CHECKING:
    from neurocomp.compiler import CompileOptions
    from neurocomp.program import Program


def estimate_core_counts(n: Netlist, rate: float) -> dict[str, np.ndarray]:
    """Per-core, per-tick event counts when every neuron and input fires at `rate`."""
    neurons = n.core_neurons().astype(float)
    return {"synaptic_events": rate * n.fed_synapses(),
            "neuron_active": np.zeros(n.n_cores), "neuron_idle": neurons, "spikes": rate * neurons}


def compile_report(program: Program, qnet: QNetwork, target: Target, opts: CompileOptions, routes: Routes,
                   seq_routes: Routes) -> dict[str, Any]:
    """report.json: the compile-time figures (wall times are Program.times, kept apart: they vary run to run)."""
    n = program.netlist
    depth = program.latency_ticks
    ticks = opts.timesteps + depth
    per_core = estimate_core_counts(n, opts.rate)
    rt = program.realtime(per_core, ticks)
    per_tick = {k: float(v.sum()) for k, v in per_core.items()}
    per_tick |= {"hops_ew": routes.hops_ew_per_tick, "hops_ns": routes.hops_ns_per_tick,
                 "interchip": routes.interchip_spikes_per_tick}
    totals = {k: v * ticks for k, v in per_tick.items()}
    chips = program.placed.n_chips
    return {
        "target": target.name, "cores_used": n.n_cores, "chips_used": chips, "neurons": n.hw_neurons,
        "synapses": n.hw_synapses, "axons": n.n_axons,
        "layers": _upstream_exact([_layer_row(lm, qnet, n, ticks) for lm in n.layers], qnet.network),
        "latency_ticks": depth,
        "splitter_cores": int(n.notes.get("splitter_cores", 0)),
        "host_summed_readouts": {k: list(v) for k, v in n.notes.get(sums.KEY, {}).items()},
        "traffic": {"assumed_rate": opts.rate, "model": program.manifest["placement"]["traffic_model"],
                    "cut_spikes_per_tick": routes.cut_spikes_per_tick,
                    "spike_hops_per_tick": routes.spike_hops_per_tick, "max_link_load": routes.max_link_load,
                    "worst_link": routes.worst_link, "interchip_spikes_per_tick": routes.interchip_spikes_per_tick,
                    "sequential_spike_hops_per_tick": seq_routes.spike_hops_per_tick},
        "placement": dict(program.manifest["placement"]),
        "energy": {**energy(totals, target.spec, rt["tick_s"] * ticks, chips, 1.0), "basis": f"estimate at {opts.rate} spikes/neuron/tick"},
        "realtime": rt,
    }


def _upstream_exact(rows: list[dict[str, Any]], net: Network) -> list[dict[str, Any]]:
    """A layer is exact only when every layer feeding it is too: its own mapping may be exact while its input is
    not (layers in topological order, so the verdict flows downstream)."""
    by_name = {row["name"]: row for row in rows}
    for layer in net.layers:
        row = by_name.get(layer.name)
        bad = [p.source for p in layer.projections if p.source in by_name and not by_name[p.source]["exact"]]
        if row is not None and row["exact"] and bad:
            row["exact"], row["limit"] = False, f"fed by {bad[0]}, which is approximate"
    return rows


def _layer_row(lm, qnet: QNetwork, n: Netlist, ticks: int) -> dict[str, Any]:
    """`exact` holds for the `ticks` of one inference: a range limit (`exact_ticks`, `limit`) may end it sooner."""
    q = qnet.qlayer(lm.name)
    snr = q.weight_snr_db
    return {"name": lm.name, "shape": list(lm.shape), "neurons": int(lm.neurons.size), "cores": len(lm.cores),
            "binding": lm.binding, "used": lm.used, "allowed": lm.allowed, "scale": q.scale,
            "weight_snr_db": None if not np.isfinite(snr) else round(snr, 2), "exact": q.exact and q.exact_ticks >= ticks,
            "exact_ticks": None if np.isinf(q.exact_ticks) else int(q.exact_ticks),
            "limit": q.limit if q.exact_ticks < ticks else "",
            "latency_ticks": n.notes.get("latency", {}).get(lm.name)}
