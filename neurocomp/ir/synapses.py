"""Synapse lists as shared templates.

A core's synapses are (axon, neuron) pairs in its own numbering, plus per-synapse tables. The
cores of a span that recurs (neurocomp.partition.period) have the same list with their inputs
moved, so the list is stored once and every such core names it: memory grows with distinct
lists plus one integer per core, not with synapses (a paper-size conv layer has billions).
Global ids are derived where a consumer needs them (`global_axon`, `global_neuron`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from neurocomp.distinct import distinct

CHUNK = 1 << 24   # list entries counted at a time (list_axon_counts)


@dataclass(frozen=True)
class Synapses:
    core_template: np.ndarray             # (C,) the list each core uses
    ptr: np.ndarray                       # (T+1,) list t is entries ptr[t]:ptr[t+1]
    axon: np.ndarray                      # core-local axon of each entry
    neuron: np.ndarray                    # core-local neuron of each entry
    tables: Mapping[str, np.ndarray]      # one value per entry (Loihi: weight)

    @classmethod
    def flat(cls, axon: np.ndarray, neuron: np.ndarray, tables: Mapping[str, np.ndarray], axon_ptr: np.ndarray,
             neuron_ptr: np.ndarray) -> Synapses:
        """One list per core from global ids sorted by core (how every builder emits them)."""
        core = np.searchsorted(axon_ptr, axon, side="right") - 1
        if core.size and np.any(np.diff(core) < 0):
            raise ValueError("synapses must be sorted by core")
        counts = np.bincount(core, minlength=len(axon_ptr) - 1)
        ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(np.arange(len(axon_ptr) - 1, dtype=np.int64), ptr, narrow(axon - axon_ptr[core]),
                   narrow(neuron - neuron_ptr[core]), dict(tables))

    @property
    def n_templates(self) -> int:
        return len(self.ptr) - 1

    def per_core(self) -> np.ndarray:
        """(C,) synapses of each core."""
        return np.diff(self.ptr)[self.core_template]

    @property
    def size(self) -> int:
        """Synapses on the chip: every core's own."""
        return int(self.per_core().sum())

    def entries(self) -> np.ndarray | slice:
        """The template entry of every chip synapse, in core order (all of them, in order, where each core has its
        own list: no index array is made)."""
        if self.own_lists():
            return slice(None)
        return spans(self.ptr, self.core_template)

    def own_lists(self) -> bool:
        """Is list c core c's, for every core (TrueNorth's, or any flat netlist's)?"""
        return self.core_template.size == self.n_templates and bool(
            np.all(self.core_template == np.arange(self.n_templates)))

    def global_axon(self, axon_ptr: np.ndarray) -> np.ndarray:
        return self._global(self.axon, axon_ptr)

    def global_neuron(self, neuron_ptr: np.ndarray) -> np.ndarray:
        return self._global(self.neuron, neuron_ptr)

    def _global(self, local: np.ndarray, ptr: np.ndarray) -> np.ndarray:
        wide = np.int32 if ptr[-1] < 2 ** 31 else np.int64
        out = local[self.entries()].astype(wide)
        out += np.repeat(ptr[:-1].astype(wide), self.per_core())
        return out

    def expanded_tables(self) -> dict[str, np.ndarray]:
        if not self.tables:
            return {}
        idx = self.entries()
        return {k: v[idx] for k, v in self.tables.items()}

    def template_sizes(self, ptr: np.ndarray) -> np.ndarray:
        """(T,) axons (axon_ptr) or neurons (neuron_ptr) of the cores using each list (0 where none does)."""
        out = np.zeros(self.n_templates, dtype=np.int64)
        out[self.core_template] = np.diff(ptr)
        return out

    def list_axon_counts(self, axon_ptr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Synapses per axon of each list (list t's axons are entries base[t]:base[t+1]), and base; counted over
        runs of lists of about CHUNK entries, so no temporary is as long as all the lists."""
        base = np.concatenate([[0], np.cumsum(self.template_sizes(axon_ptr))])
        counts = np.zeros(int(base[-1]), dtype=np.int64)
        cuts = distinct(np.append(np.searchsorted(self.ptr, np.arange(0, self.axon.size, CHUNK), side="right") - 1,
                                  self.n_templates))
        for t0, t1 in zip(cuts[:-1], cuts[1:]):
            owner = np.repeat(base[t0:t1] - base[t0], np.diff(self.ptr[t0:t1 + 1]))
            owner += self.axon[self.ptr[t0]:self.ptr[t1]]
            counts[base[t0]:base[t1]] = np.bincount(owner, minlength=int(base[t1] - base[t0]))
        return counts, base

    def axon_counts(self, axon_ptr: np.ndarray, listed: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """(A,) synapses per axon, from each list's counts (`listed`: list_axon_counts' result, if already made):
        nothing per chip synapse is made."""
        counts, base = self.list_axon_counts(axon_ptr) if listed is None else listed
        return counts[spans(base, self.core_template)]

    def problem(self, axon_ptr: np.ndarray, neuron_ptr: np.ndarray) -> str | None:
        """Why these lists cannot serve the cores of these pointers (None: they can)."""
        n_cores, t = len(axon_ptr) - 1, self.n_templates
        if self.core_template.size != n_cores:
            return f"core_template has {self.core_template.size} entries for {n_cores} cores"
        if n_cores and (self.core_template.min() < 0 or self.core_template.max() >= t):
            return f"core_template names a synapse list outside [0, {t})"
        if self.ptr.size < 1 or self.ptr[0] != 0 or np.any(np.diff(self.ptr) < 0) or self.ptr[-1] != self.axon.size:
            return "template_ptr must start at 0, never decrease and end at the number of listed synapses"
        if self.neuron.size != self.axon.size or any(v.shape != self.axon.shape for v in self.tables.values()):
            return "every synapse list entry needs one axon, one neuron and one value per synapse table"
        for name, ptr, local in (("axon", axon_ptr, self.axon), ("neuron", neuron_ptr, self.neuron)):
            sizes = self.template_sizes(ptr)
            if np.any(sizes[self.core_template] != np.diff(ptr)):
                return f"cores sharing a synapse list differ in their {name} counts"
            filled = np.flatnonzero(np.diff(self.ptr) > 0)
            if local.size and (local.min() < 0 or np.any(np.maximum.reduceat(local, self.ptr[filled]) >= sizes[filled])):
                return f"a synapse names a {name} outside its core"
        return None


def narrow(ids: np.ndarray) -> np.ndarray:
    """Non-negative ids in the narrowest of int16, int32, int64 that holds them."""
    top = int(ids.max(initial=0))
    return ids.astype(np.int16 if top < 2 ** 15 else np.int32 if top < 2 ** 31 else np.int64)


def ranks(counts: np.ndarray) -> np.ndarray:
    """0..c-1 for each count c, concatenated (the position of each item within its group)."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


def spans(ptr: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The index ranges ptr[i]..ptr[i+1] of the given ids (cores, layers), concatenated in their order."""
    ids = np.asarray(ids, dtype=np.int64)
    counts = (ptr[ids + 1] - ptr[ids]).astype(np.int64)
    return np.repeat(ptr[ids].astype(np.int64), counts) + ranks(counts)
