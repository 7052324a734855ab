"""Hardware-level IR: cores with integer neuron tables, synapse tables and destinations.

Global numbering: core c owns neurons neuron_ptr[c]:neuron_ptr[c+1] and axons
axon_ptr[c]:axon_ptr[c+1]. Synapses are (axon, neuron) pairs plus target-specific
tables (TrueNorth: axon types and per-neuron type weights; Loihi: weights and a
per-core weight exponent), stored as per-core lists that repeated cores share
(neurocomp.ir.synapses); the global `syn_axon`, `syn_neuron` and `syn_tables` are
derived when asked for. Edges send a neuron's spike to an axon after `delay`
ticks; input edges do the same for external input channels.

Copies are an index map, not data: neuron i stands for copies[i] identical hardware neurons
of its core (TrueNorth's fan-out copies: same registers, same synapses, so the same spikes
while no update draws random numbers), and its edges are the union of theirs. Tables grow with
distinct neurons, not with copies; `expanded()` gives one neuron per copy where they must differ.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping

import numpy as np

from neurocomp.ir.synapses import Synapses, ranks, spans

__all__ = ["LayerMap", "Netlist", "Synapses", "ranks", "spans"]


@dataclass(frozen=True)
class LayerMap:
    """Where a Graph layer lives: global neuron id of each of its neurons (graph order)."""

    name: str
    shape: tuple[int, ...]
    neurons: np.ndarray
    kind: str           # "spiking" or "readout"
    scale: float        # float value of one integer unit of membrane potential
    cores: tuple[int, ...]
    binding: str        # the resource that limited this layer's split
    used: float
    allowed: float


@dataclass(frozen=True)
class Netlist:
    target: str
    neuron_ptr: np.ndarray
    axon_ptr: np.ndarray
    core_layer: np.ndarray                 # (C,) index into layers, -1 for helper cores
    params: Mapping[str, np.ndarray]       # per-neuron integer parameters (target's units)
    synapses: Synapses
    core_tables: Mapping[str, np.ndarray]  # target-specific tables per axon or per core
    edge_src: np.ndarray                   # neuron -> axon edges
    edge_axon: np.ndarray
    edge_delay: np.ndarray
    in_channel: np.ndarray                 # external input channel -> axon edges
    in_axon: np.ndarray
    in_delay: np.ndarray
    inputs: tuple[tuple[str, tuple[int, ...]], ...]
    layers: tuple[LayerMap, ...]
    outputs: tuple[str, ...]
    notes: Mapping[str, object] = field(default_factory=dict)
    copies: np.ndarray | None = None       # (N,) hardware neurons each neuron stands for; None: 1 each

    @classmethod
    def flat(cls, syn_axon: np.ndarray, syn_neuron: np.ndarray, syn_tables: Mapping[str, np.ndarray],
             axon_ptr: np.ndarray, neuron_ptr: np.ndarray, per_synapse: tuple[str, ...] = (),
             **fields: object) -> Netlist:
        """A netlist from global synapse lists sorted by core, one list per core; `per_synapse` names the
        syn_tables entries with one value per synapse (the rest are per axon or core)."""
        syn = Synapses.flat(syn_axon, syn_neuron, {k: syn_tables[k] for k in per_synapse}, axon_ptr, neuron_ptr)
        return cls(synapses=syn, core_tables={k: v for k, v in syn_tables.items() if k not in per_synapse},
                   axon_ptr=axon_ptr, neuron_ptr=neuron_ptr, **fields)  # type: ignore[arg-type]

    @cached_property
    def syn_axon(self) -> np.ndarray:
        """(S,) global axon of every synapse, in core order."""
        return self.synapses.global_axon(self.axon_ptr)

    @cached_property
    def syn_neuron(self) -> np.ndarray:
        return self.synapses.global_neuron(self.neuron_ptr)

    @cached_property
    def syn_tables(self) -> dict[str, np.ndarray]:
        """Every target table: per axon or core as stored, per synapse expanded to the chip's synapses."""
        return {**self.core_tables, **self.synapses.expanded_tables()}

    @cached_property
    def list_axon_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Synapses per axon of each synapse list, and where each list's axons start (Synapses.list_axon_counts):
        counted once for the verify and the report."""
        return self.synapses.list_axon_counts(self.axon_ptr)

    @property
    def per_synapse(self) -> tuple[str, ...]:
        return tuple(self.synapses.tables)

    @property
    def n_cores(self) -> int:
        return len(self.neuron_ptr) - 1

    @property
    def n_neurons(self) -> int:
        return int(self.neuron_ptr[-1])

    @property
    def n_axons(self) -> int:
        return int(self.axon_ptr[-1])

    @property
    def n_inputs(self) -> int:
        return int(sum(np.prod(s) for _, s in self.inputs))

    def n_copies(self) -> np.ndarray:
        """(N,) hardware neurons per neuron (1 where there are no copies)."""
        return np.ones(self.n_neurons, dtype=np.int64) if self.copies is None else self.copies

    @property
    def hw_neurons(self) -> int:
        """Neurons on the chip, every copy counted."""
        return self.n_neurons if self.copies is None else int(self.copies.sum())

    @property
    def hw_synapses(self) -> int:
        """Crossbar bits set on the chip, every copy counted."""
        return self.synapses.size if self.copies is None else int(self.copies[self.syn_neuron].sum())

    def axon_synapses(self) -> np.ndarray:
        """(A,) crossbar bits set per axon, every copy counted; without copies no per-synapse temporary is made
        (a paper-size net has billions of synapses)."""
        if self.copies is None:
            return self.synapses.axon_counts(self.axon_ptr, self.list_axon_counts)
        return np.bincount(self.syn_axon, weights=self.copies[self.syn_neuron], minlength=self.n_axons).astype(np.int64)

    def fed_synapses(self) -> np.ndarray:
        """(C,) crossbar bits set per core on the axons an edge or an input feeds, every copy counted. Without
        copies: each core's list size less the counts of its few unfed axons, nothing per axon but a mask."""
        fed = np.zeros(self.n_axons, dtype=bool)
        fed[self.edge_axon] = True
        fed[self.in_axon] = True
        if self.copies is not None:
            return np.bincount(self.axon_core(), weights=self.axon_synapses() * fed, minlength=self.n_cores).astype(np.int64)
        counts, base = self.list_axon_counts
        template = self.synapses.core_template
        idle = np.flatnonzero(~fed)
        core = np.searchsorted(self.axon_ptr, idle, side="right") - 1
        unfed = counts[base[template[core]] + idle - self.axon_ptr[core]]
        return np.diff(self.synapses.ptr)[template] - np.bincount(core, weights=unfed, minlength=self.n_cores).astype(np.int64)

    def core_neurons(self) -> np.ndarray:
        """(C,) hardware neurons per core, every copy counted."""
        if self.copies is None:
            return np.diff(self.neuron_ptr)
        return np.bincount(self.neuron_core(), weights=self.copies, minlength=self.n_cores).astype(np.int64)

    def expanded(self) -> Netlist:
        """The same chip with one neuron per copy: each copy gets its neuron's registers and synapses
        and, in edge order, one of its edges (the k-th edge of neuron i leaves copy k)."""
        if self.copies is None or np.all(self.copies == 1):
            return dataclasses.replace(self, copies=None)
        cp = self.copies
        first = np.concatenate([[0], np.cumsum(cp)[:-1]]).astype(np.int64)
        per_syn = cp[self.syn_neuron]
        syn = np.repeat(np.arange(self.syn_neuron.size), per_syn)
        core_ptr = np.concatenate([[0], np.cumsum(self.core_neurons())]).astype(np.int64)
        edge_rank = _ranks_in_order(self.edge_src, self.n_neurons)
        tables = {k: self.syn_tables[k][syn] for k in self.per_synapse}
        return self.with_synapses(
            self.syn_axon[syn], first[self.syn_neuron[syn]] + ranks(per_syn), tables, neuron_ptr=core_ptr,
            params={k: np.repeat(np.asarray(v), cp, axis=0) for k, v in self.params.items()},
            edge_src=first[self.edge_src] + edge_rank,
            layers=tuple(dataclasses.replace(lm, neurons=first[lm.neurons]) for lm in self.layers), copies=None)

    def with_synapses(self, syn_axon: np.ndarray, syn_neuron: np.ndarray, per_synapse: Mapping[str, np.ndarray],
                      **changes: object) -> Netlist:
        """This netlist with `changes` and these global synapse lists (sorted by core), one list per core."""
        kept = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("synapses",)}
        kept.update(changes)
        syn = Synapses.flat(syn_axon, syn_neuron, per_synapse, np.asarray(kept["axon_ptr"]), np.asarray(kept["neuron_ptr"]))
        return Netlist(**{**kept, "synapses": syn})  # type: ignore[arg-type]

    def neuron_core(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_cores), np.diff(self.neuron_ptr))

    def axon_core(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_cores), np.diff(self.axon_ptr))

    def layer(self, name: str) -> LayerMap:
        for lm in self.layers:
            if lm.name == name:
                return lm
        raise KeyError(name)

    def core_traffic_edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(source core, destination core) of every neuron edge, int32 where the cores fit: a paper-size net has
        6 x 10^7 edges, and gathering narrow core ids costs a fraction of gathering int64 ones."""
        ids = np.arange(self.n_cores, dtype=np.int32 if self.n_cores < 2 ** 31 else np.int64)
        axon = self.edge_axon
        if np.all(axon[1:] >= axon[:-1]):   # edges in axon order (built core by core): each core's run, counted
            dst = np.repeat(ids, np.diff(np.searchsorted(axon, self.axon_ptr)))
        else:
            dst = np.repeat(ids, np.diff(self.axon_ptr))[axon]
        return np.repeat(ids, np.diff(self.neuron_ptr))[self.edge_src], dst

    def core_pair_keys(self) -> np.ndarray:
        """One key per neuron edge, destination core x n_cores + source core (int32 where it fits): led by the
        destination core, which edges come grouped by, so the keys come in sorted runs (distinct's `runs`). A fresh
        array: the caller may sort and rewrite it in place."""
        src, dst = self.core_traffic_edges()
        wide = np.int32 if self.n_cores ** 2 < 2 ** 31 else np.int64
        key = dst.astype(wide)
        key *= wide(self.n_cores)
        key += src
        return key


def _ranks_in_order(ids: np.ndarray, n: int) -> np.ndarray:
    """For each entry, how many earlier entries hold the same id."""
    order = np.argsort(ids, kind="stable")
    out = np.empty(ids.size, dtype=np.int64)
    out[order] = ranks(np.bincount(ids, minlength=n))
    return out
