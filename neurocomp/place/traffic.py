"""Traffic models: expected spikes per tick from core i to core j, the matrix placement minimises.

Without data every neuron is assumed to fire at one rate. A profiling run measures the
rates instead: a layer that stays silent on real input then costs nothing, and a busy
one pulls its targets closer. Measured rates are per neuron for the graph's neurons;
helper neurons the graph does not name (e.g. TrueNorth's in-core copies) share what is
left of their core's measured spike count.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from neurocomp.ir.netlist import Netlist


def traffic_from_rates(n: Netlist, rate: np.ndarray | float) -> sp.csr_matrix:
    """(C, C) spikes per tick: every neuron edge carries its source neuron's rate."""
    if np.ndim(rate) == 0:
        return _uniform(n.core_pair_keys(), float(rate), n.n_cores)
    sc, dc = n.core_traffic_edges()
    per_edge = np.broadcast_to(np.asarray(rate, dtype=np.float64), (n.n_neurons,))[n.edge_src]
    t = sp.coo_matrix((per_edge, (sc, dc)), shape=(n.n_cores, n.n_cores)).tocsr()
    t.sum_duplicates()
    return t


def _uniform(key: np.ndarray, rate: float, n_cores: int) -> sp.csr_matrix:
    """traffic_from_rates for one rate: edges counted per core pair from one sort of their keys
    (Netlist.core_pair_keys, consumed), where a COO of every edge took 2-3 s on a paper-size net's 6 x 10^7. A pair
    of k edges carries k rates summed one after another, as summing the duplicate entries gives, so the matrix is
    the same to the last bit."""
    key.sort(kind="stable")
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]])) if key.size else np.zeros(0, np.int64)
    counts = np.diff(np.append(starts, key.size))
    sums = np.cumsum(np.full(int(counts.max(initial=0)), rate))
    pairs = key[starts]
    t = sp.coo_matrix((sums[counts - 1], (pairs % n_cores, pairs // n_cores)), shape=(n_cores, n_cores)).tocsr()
    t.sum_duplicates()
    return t


def measured_rates(n: Netlist, layer_spikes: dict[str, np.ndarray], core_spikes: np.ndarray,
                   samples_ticks: int) -> np.ndarray:
    """Spikes per tick of every netlist neuron from an emulator run of `samples_ticks` sample-ticks.

    layer_spikes: layer -> (batch, ticks, *shape) spikes, graph order; core_spikes: (C,) totals.
    """
    count = np.zeros(n.n_neurons)
    named = np.zeros(n.n_neurons, dtype=bool)
    for lm in n.layers:
        if lm.name in layer_spikes:
            spikes = np.asarray(layer_spikes[lm.name])
            count[lm.neurons] = spikes.reshape(spikes.shape[0] * spikes.shape[1], -1).sum(axis=0)
            named[lm.neurons] = True
    core = n.neuron_core()
    left = np.maximum(core_spikes - np.bincount(core, weights=count, minlength=n.n_cores), 0.0)
    unnamed = np.bincount(core, weights=~named, minlength=n.n_cores)
    share = np.divide(left, unnamed, out=np.zeros(n.n_cores), where=unnamed > 0)
    return np.where(named, count, share[core]) / samples_ticks


def between_layers(n: Netlist, traffic: sp.spmatrix) -> dict[str, list]:
    """Spikes per tick from layer to layer (helper cores that belong to no layer as "helpers"), for the report."""
    names = [lm.name for lm in n.layers]
    group = np.where(n.core_layer >= 0, n.core_layer, len(names))
    if (group == len(names)).any():
        names.append("helpers")
    onehot = sp.csr_matrix((np.ones(n.n_cores), (np.arange(n.n_cores), group)), shape=(n.n_cores, len(names)))
    matrix = (onehot.T @ sp.csr_matrix(traffic) @ onehot).toarray()
    return {"layers": names, "spikes_per_tick": matrix.round(9).tolist()}
