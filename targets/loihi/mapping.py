"""Loihi cores: sparse synapse tables, one Dense block per core, resource model; the census.

A core owns a chunk of one layer; its input axons are the distinct source neurons
its chunk reads. Each core is one Lava Dense (all its axons) + one LIF, so a core's
weight exponent and sign mode apply to the summed input exactly as in Lava.
Synapse memory follows nengo-loihi's cost model (LOIHI.md §2.1). targets/loihi/cores.py builds the netlist
from the spans `core_fits` splits a layer into.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from neurocomp.distinct import count_distinct
from neurocomp.errors import ResourceError
from neurocomp.ir.layers import Layer
from neurocomp.ir.netlist import Netlist
from neurocomp.partition import LayerCount, neuron_order, outgrown, split
from neurocomp.partition.period import Run, runs
from neurocomp.partition.rows import OrderedRows, Windows, window_width
from neurocomp.quantize import QNetwork
from neurocomp.target import TargetSpec

SIGN_CODES = {"excitatory": 0, "inhibitory": 1, "mixed": 2}
BY_CHANNEL = False    # depthwise convs tiled position-major (partition.split.conv_groups): few destination cores per core


def axon_bits(per_axon: np.ndarray, core_neurons: np.ndarray, spec: TargetSpec) -> np.ndarray:
    """Synapse-memory bits per axon: chunks of <= 64 synapses, each rounded up to 64-bit words;
    dense format (no index bits) when the axon reaches every neuron of its core."""
    wbits, chunk, extra = spec["core.weight_bits"], spec["core.synapses_per_chunk"], spec["core.synapse_chunk_overhead_bits"]
    idx_bits = np.maximum(np.ceil(np.log2(np.maximum(core_neurons, 2))), 1).astype(np.int64)
    words = lambda bits: -(-bits // 64) * 64  # noqa: E731
    full, rem = per_axon // chunk, per_axon % chunk
    sparse = full * words(chunk * (wbits + idx_bits) + extra) + (rem > 0) * words(rem * (wbits + idx_bits) + extra)
    dense = full * words(chunk * wbits + extra) + (rem > 0) * words(rem * wbits + extra)
    return np.where(per_axon == core_neurons, np.minimum(dense, sparse), sparse)


def synapse_bits(axon: np.ndarray, n_axons: int, n_neurons: int, spec: TargetSpec) -> int:
    per = np.bincount(axon, minlength=n_axons)
    return int(axon_bits(per, np.full(n_axons, n_neurons), spec).sum())


def core_fits(windows: Windows[OrderedRows], spec: TargetSpec):
    n_max, a_max, b_max = spec["core.neurons"], spec["core.axons"], spec["core.synapse_bits"]

    def fits(lo: int, hi: int) -> tuple[bool, str, float, float]:
        rows, off = windows.get(lo, hi)
        lo, hi = lo - off, hi - off
        per_axon = rows.per_input(lo, hi)
        bits = int(axon_bits(per_axon, np.full(per_axon.size, hi - lo), spec).sum())
        usage = [("neurons", hi - lo, n_max), ("input axons", per_axon.size, a_max), ("synapse memory bits", bits, b_max)]
        worst = max(usage, key=lambda u: u[1] / u[2])
        return all(u[1] <= u[2] for u in usage), *worst

    return fits


def core_reach(spec: TargetSpec) -> Callable[[int], int]:
    """split's `reach` for core_fits: a span holds at most a core's neurons."""
    n_max = int(spec["core.neurons"])
    return lambda lo: lo + n_max


def split_hint(name: str):
    """What to change when one neuron of layer `name` fits no Loihi core."""
    def hint(resource: str, used: float, allowed: float) -> str:
        if resource == "input axons":
            return (f"{name} reads {used:g} inputs per neuron and a core has {allowed:g} input axons: use conv groups or a "
                    f"smaller kernel, or split its input channels over several layers")
        return f"{name}'s synapses alone exceed one core's {resource}: reduce its fan-in"
    return hint


def partition_order(layer: Layer) -> np.ndarray:
    """The order a layer's cores hold its neurons in, one span after another."""
    return neuron_order(layer, 1, BY_CHANNEL)


def layer_runs(layer: Layer) -> tuple[tuple[Run, ...], ...]:
    """Where spans of partition_order recur (partition.period)."""
    return runs(layer, 1, by_channel=BY_CHANNEL)


def layer_windows(layer: Layer, spec: TargetSpec) -> Windows[OrderedRows]:
    order = partition_order(layer)
    return Windows(layer.size, lambda lo, hi: OrderedRows(layer, order[lo:hi], keep_support=True),
                   window_width(layer, order, int(spec["core.neurons"])))


def count_cores(qnet: QNetwork, spec: TargetSpec, progress: Callable[[str], None] | None = None) -> list[LayerCount]:
    """The cores build_netlist would cut each layer into, with no core tables kept: memory stays at one
    window of rows, so networks whose synapse tables would not fit in memory can still be sized."""
    return [_count_layer(layer, spec, progress) for layer in qnet.network.layers]


def _count_layer(layer: Layer, spec: TargetSpec, progress: Callable[[str], None] | None = None) -> LayerCount:
    if progress is not None:
        progress(layer.name)
    try:
        spans, bound = split(layer, core_fits(layer_windows(layer, spec), spec), split_hint(layer.name),
                             runs=layer_runs(layer), reach=core_reach(spec))
    except ResourceError as err:
        return LayerCount(layer.name, layer.size, 0, err.resource, err.used, err.allowed, str(err))
    return LayerCount(layer.name, layer.size, len(spans), *bound)


def within_chips(layers: tuple[Layer, ...], li: int, cores: int, spec: TargetSpec) -> None:
    """Refuse as soon as layers 0..li outgrow the chips, rather than after building the rest: those are counted by
    the census, so the refusal gives the network's exact total."""
    if cores > spec.max_cores:
        rest = sum(_count_layer(layer, spec).cores for layer in layers[li + 1:])
        counted = (layers[li + 1].name, layers[-1].name) if li + 1 < len(layers) else None
        raise outgrown(spec, cores + rest, li + 1, len(layers), counted)


def _per_core_distinct(core: np.ndarray, keys: list[np.ndarray], n_cores: int) -> np.ndarray:
    """Distinct key tuples per core (a lexsort: numpy's unique over axis 1 is many times slower)."""
    order = np.lexsort(keys[::-1] + [core])
    rows = np.stack([core] + keys)[:, order]
    new = np.ones(core.size, dtype=bool)
    new[1:] = np.any(rows[:, 1:] != rows[:, :-1], axis=0)
    return np.bincount(rows[0][new], minlength=n_cores)


def _destination_cores(n: Netlist) -> np.ndarray:
    """(C,) distinct destination cores of each core's edges: one sorted key per edge (Netlist.core_pair_keys), not a
    lexsort of stacked columns (a paper-size net has 6 x 10^7 edges)."""
    key = n.core_pair_keys()
    return count_distinct(key, lambda keys: np.remainder(keys, key.dtype.type(n.n_cores), out=keys), n.n_cores)


def _core_bits(n: Netlist, spec: TargetSpec) -> np.ndarray:
    """(C,) synapse-memory bits per core, computed once per synapse list (the cores naming a list have its axon
    and neuron counts: Synapses.problem)."""
    syn = n.synapses
    per_axon, base = n.list_axon_counts
    axons = np.diff(base)
    neurons = np.repeat(syn.template_sizes(n.neuron_ptr), axons)
    per_list = np.bincount(np.repeat(np.arange(syn.n_templates), axons), weights=axon_bits(per_axon, neurons, spec),
                           minlength=syn.n_templates)
    return per_list[syn.core_template]


def verify_netlist(n: Netlist, spec: TargetSpec) -> None:
    """Per-core limits the generic check does not know: output axons, synapse memory, config registers."""
    core_of = n.neuron_core()
    out_axons = _destination_cores(n)
    bits = _core_bits(n, spec)
    vth = _per_core_distinct(core_of, [n.params["vth"]], n.n_cores)
    cx = _per_core_distinct(core_of, [n.params[k] for k in ("du", "dv", "bias_exp")], n.n_cores)
    checks = (("output axons", out_axons, spec["core.output_axons"],
               "a core's neurons feed too many distinct (core, axon) destinations: give the consuming layers fewer, larger cores"),
              ("synapse memory bits", bits, spec["core.synapse_bits"], "reduce the layer's fan-in or its weights' distinct values"),
              ("threshold config registers", vth, spec["core.vth_configs"],
               "a core may use at most this many distinct thresholds: round the layer's per-neuron thresholds to fewer values"),
              ("compartment config registers", cx, spec["core.compartment_configs"],
               "a core may use at most this many distinct (du, dv, bias_exp): give the layer's neurons fewer distinct decays"))
    for resource, used, allowed, hint in checks:
        bad = np.flatnonzero(used > allowed)
        if bad.size:
            c = int(bad[0])
            raise ResourceError(f"core {c} (layer {n.layers[n.core_layer[c]].name})", resource, float(used[c]), allowed, hint)
    syn = n.synapses
    w = syn.tables["weight"]
    bad = np.flatnonzero((w < -256) | (w > 255))
    if bad.size:   # composed weights of a chain the quantiser could not size (several full-range weighted ops)
        c = int(np.flatnonzero(syn.core_template == np.searchsorted(syn.ptr, bad[0], side="right") - 1)[0])
        raise ResourceError(f"core {c} (layer {n.layers[n.core_layer[c]].name})", "Dense weight", float(abs(w[bad[0]])),
                            255, "its chain of weighted ops composes weights beyond 8 bits: fold or rescale them")
