"""Integer-exact emulator of a compiled Program, vectorised over all cores and a batch.

Per tick: the axons due this tick (a delay ring buffer) drive one sparse integer
matrix from all axons to all neurons; the target's neuron hook updates every
neuron; spikes are scheduled onto destination axons through one sparse routing
matrix per delay. Counters feed the energy and timing model.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from neurocomp.encoding import input_spikes
from neurocomp.ir.netlist import Netlist
from neurocomp.program import Placed, Program
from neurocomp.route import grid_hops
from neurocomp.target import Target

COUNTERS = ("synaptic_events", "neuron_active", "neuron_idle", "spikes", "hops_ew", "hops_ns", "interchip")


@dataclass(frozen=True)
class RunResult:
    spikes: Mapping[str, np.ndarray]      # layer -> (batch, ticks, *shape) uint8
    potentials: Mapping[str, np.ndarray]  # readout layer -> (batch, ticks, *shape) float64, in float units
    core_counts: Mapping[str, np.ndarray]  # counter -> (cores,) totals over ticks and batch
    merges: int                           # spikes lost because two arrived at one axon in one tick
    ticks: int
    batch: int
    wall_s: float


def _routing(n: Netlist, src: np.ndarray, axon: np.ndarray, delay: np.ndarray, n_src: int) -> dict[int, sp.csr_matrix]:
    """Per delay, an (axons x sources) 0/1 matrix: counts how many spikes land on each axon."""
    out = {}
    for d in np.unique(delay):
        sel = delay == d
        out[int(d)] = sp.csr_matrix((np.ones(int(sel.sum()), dtype=np.int64), (axon[sel], src[sel])), shape=(n.n_axons, n_src))
    return out


def _edge_hops(n: Netlist, placed: Placed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per neuron: E-W hops, N-S hops and chip crossings summed over its outgoing edges."""
    sc, dc = n.core_traffic_edges()
    hops = grid_hops(placed.gx(), placed.gy(), placed.chip_cols, placed.chip_rows, sc, dc)
    return tuple(np.bincount(n.edge_src, weights=h, minlength=n.n_neurons) for h in hops)  # type: ignore[return-value]


def _layer_inputs(n: Netlist, inputs: Mapping[str, np.ndarray], ticks: int | None) -> np.ndarray:
    """(batch, ticks, channels) binary input over all Input nodes, concatenated in netlist order."""
    parts = [input_spikes(inputs[name], shape, ticks) for name, shape in n.inputs]
    batch = {p.shape[0] for p in parts}
    steps = {p.shape[1] for p in parts}
    if len(batch) != 1 or len(steps) != 1:
        raise ValueError("all inputs need the same batch size and number of ticks")
    return np.concatenate([p.reshape(p.shape[0], p.shape[1], -1) for p in parts], axis=2)


def run(program: Program, target: Target, inputs: Mapping[str, np.ndarray], ticks: int | None = None,
        record: Sequence[str] | None = None, seed: int = 0) -> RunResult:
    n, hooks = program.netlist, target.hooks
    x = _layer_inputs(n, inputs, ticks)
    batch, ticks = x.shape[0], x.shape[1]
    S = hooks.synapse_matrix(n).astype(np.int64)
    S_any = sp.csr_matrix((np.ones(S.nnz, dtype=np.int64), S.indices, S.indptr), shape=S.shape)
    route = _routing(n, n.edge_src, n.edge_axon, n.edge_delay, n.n_neurons)
    feed = _routing(n, n.in_channel, n.in_axon, n.in_delay, x.shape[2])
    depth = max(list(route) + list(feed) + [1]) + 1
    ring = np.zeros((depth, n.n_axons, batch), dtype=np.int64)
    state = hooks.init_state(n, target.spec, batch)
    rng = np.random.default_rng(seed)
    ew, ns, ic = _edge_hops(n, program.placed)
    syn_per_axon = np.bincount(n.syn_axon, minlength=n.n_axons)
    core_n, core_a = n.neuron_core(), n.axon_core()
    counts = {k: np.zeros(n.n_cores) for k in COUNTERS}
    layers = [lm for lm in n.layers if record is None or lm.name in record]
    spk = {lm.name: np.zeros((batch, ticks, lm.neurons.size), dtype=np.uint8) for lm in layers if lm.kind == "spiking"}
    pot = {lm.name: np.zeros((batch, ticks, lm.neurons.size)) for lm in layers if lm.kind == "readout"}
    merges = 0
    start = time.perf_counter()
    for t in range(ticks):
        slot = t % depth
        arrived = ring[slot]
        merges += int(np.maximum(arrived - 1, 0).sum())
        act = (arrived > 0).astype(np.int64)
        ring[slot] = 0
        acc = np.asarray(S @ act)
        active = np.asarray(S_any @ act) > 0
        spikes = hooks.neuron_step(n.params, state, acc, rng)
        fired = spikes.astype(np.int64)
        for d, m in route.items():
            ring[(t + d) % depth] += m @ fired
        for d, m in feed.items():
            ring[(t + d) % depth] += m @ x[:, t, :].T.astype(np.int64)
        per_n_active = active.sum(axis=1)
        per_n_spikes = fired.sum(axis=1)
        counts["synaptic_events"] += np.bincount(core_a, weights=act.sum(axis=1) * syn_per_axon, minlength=n.n_cores)
        counts["neuron_active"] += np.bincount(core_n, weights=per_n_active, minlength=n.n_cores)
        counts["neuron_idle"] += np.bincount(core_n, weights=batch - per_n_active, minlength=n.n_cores)
        counts["spikes"] += np.bincount(core_n, weights=per_n_spikes, minlength=n.n_cores)
        counts["hops_ew"] += np.bincount(core_n, weights=per_n_spikes * ew, minlength=n.n_cores)
        counts["hops_ns"] += np.bincount(core_n, weights=per_n_spikes * ns, minlength=n.n_cores)
        counts["interchip"] += np.bincount(core_n, weights=per_n_spikes * ic, minlength=n.n_cores)
        for lm in layers:
            if lm.kind == "spiking":
                spk[lm.name][:, t] = spikes[lm.neurons].T
            else:
                pot[lm.name][:, t] = hooks.potential(state)[lm.neurons].T * lm.scale
    wall = time.perf_counter() - start
    shape = {lm.name: lm.shape for lm in n.layers}
    return RunResult({k: v.reshape((batch, ticks) + shape[k]) for k, v in spk.items()},
                     {k: v.reshape((batch, ticks) + shape[k]) for k, v in pot.items()},
                     counts, merges, ticks, batch, wall)
