"""Copies: neurons that provably spike alike are emulated once.

TrueNorth's fan-out copies (targets/truenorth/mapping.py) share their core's axons and
registers: two neurons of one core with the same parameters, the same weight from every axon
and the same initial potential get the same input every tick and stay equal for ever, as long
as their updates draw no random numbers (the target's `copy_groups` hook says when). The
emulator then runs a netlist with one neuron per group that sends every member's edges, so
spikes and potentials are exact; per-core counters multiply by the group sizes, so events,
spikes and energy count the hardware's work. On replication-heavy programs this removes most
of the neurons and synapses (a SiamSNN on TrueNorth: 40 copies per network neuron).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from neurocomp.ir.netlist import Netlist
from neurocomp.partition import ranks


@dataclass(frozen=True)
class Collapsed:
    netlist: Netlist        # one neuron per group, in the order of each group's first member
    size: np.ndarray        # (N',) members per kept neuron
    core_neurons: np.ndarray  # (C,) neurons per core in the original netlist


def groups(n: Netlist, weights: sp.csr_matrix) -> np.ndarray:
    """First member of each neuron's group: same core, same parameters, same weight row (N x A)."""
    w = sp.csr_matrix(weights)
    w.sort_indices()
    lens = np.diff(w.indptr)
    entry_hash = _mix(w.indices.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) ^ _mix(w.data.astype(np.uint64)))
    row_hash = np.zeros(n.n_neurons, dtype=np.uint64)
    np.add.at(row_hash, np.repeat(np.arange(n.n_neurons), lens), entry_hash)
    keys = [n.neuron_core(), lens, row_hash.view(np.int64)] + \
        [np.asarray(v).reshape(n.n_neurons, -1)[:, j] for v in n.params.values() for j in range(np.asarray(v).reshape(n.n_neurons, -1).shape[1])]
    order = np.lexsort(keys[::-1])
    table = np.stack([np.asarray(k, dtype=np.int64)[order] for k in keys])
    new = np.ones(n.n_neurons, dtype=bool)
    new[1:] = np.any(table[:, 1:] != table[:, :-1], axis=0)
    first = np.empty(n.n_neurons, dtype=np.int64)
    first[order] = np.minimum.reduceat(order, np.flatnonzero(new))[np.cumsum(new) - 1]
    return np.where(_same_rows(w, first), first, np.arange(n.n_neurons))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a well-spread 64-bit hash of each value."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _same_rows(w: sp.csr_matrix, first: np.ndarray) -> np.ndarray:
    """Whether each row equals its group's first row entry for entry (the hash is only a filter)."""
    lens = np.diff(w.indptr)
    same = lens == lens[first]
    rank = ranks(lens)
    rows = np.repeat(np.arange(w.shape[0]), lens)
    at = np.minimum(w.indptr[first[rows]] + np.minimum(rank, np.maximum(lens[first[rows]] - 1, 0)), max(w.nnz - 1, 0))
    ok = same[rows] & (w.indices == w.indices[at]) & (w.data == w.data[at])
    bad = np.zeros(w.shape[0], dtype=bool)
    bad[rows[~ok]] = True
    return same & ~bad


def collapse(n: Netlist, first: np.ndarray, per_synapse: tuple[str, ...]) -> Collapsed:
    """The netlist with every neuron replaced by its group's first member (`groups`); `per_synapse`
    names the syn_tables entries that hold one value per synapse."""
    keep = first == np.arange(n.n_neurons)
    new_id = np.cumsum(keep) - 1
    rep = new_id[first]
    core = n.neuron_core()
    ptr = np.concatenate([[0], np.cumsum(np.bincount(core[keep], minlength=n.n_cores))]).astype(np.int64)
    syn = keep[n.syn_neuron]
    tables = {k: (v[syn] if k in per_synapse else v) for k, v in n.syn_tables.items()}
    layers = tuple(dataclasses.replace(lm, neurons=rep[lm.neurons]) for lm in n.layers)
    reduced = dataclasses.replace(
        n, neuron_ptr=ptr, params={k: np.asarray(v)[keep] for k, v in n.params.items()},
        syn_axon=n.syn_axon[syn], syn_neuron=new_id[n.syn_neuron[syn]], syn_tables=tables,
        edge_src=rep[n.edge_src], layers=layers)
    return Collapsed(reduced, np.bincount(rep, minlength=int(keep.sum())), np.diff(n.neuron_ptr))
