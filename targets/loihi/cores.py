"""Loihi netlist builder: each layer's cores as arrays, templates plus offsets.

Layers are built first to last. The spans partition.split searches in one window of rows are built together:
every core's input axons (its distinct inputs per projection, ascending, projection after projection) and
synapse list come from one pass over the window's rows, not a loop over cores. A core of a cycle that recurs
(partition.period) names its original's synapse list (SHARED_LISTS) and reads its inputs moved by the run's
shift. Registers are gathered per layer in the partition order the cores hold in turn.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurocomp.distinct import renumbered
from neurocomp.ir.layers import Layer
from neurocomp.ir.netlist import LayerMap, Netlist
from neurocomp.ir.synapses import Synapses
from neurocomp.memory import require
from neurocomp.partition import cat, compact, split
from neurocomp.partition.blocks import pointers, ranges, tail
from neurocomp.partition.delays import timing
from neurocomp.partition.period import Run
from neurocomp.partition.rows import Batches, OrderedRows
from neurocomp.quantize import QNetwork, stored_signs
from neurocomp.target import TargetSpec
from neurocomp.targets.loihi.mapping import (SIGN_CODES, core_fits, core_reach, split_hint, layer_windows, within_chips,
                                             layer_runs, partition_order)
from neurocomp.targets.loihi.quant import is_mixed

SHARED_LISTS = True   # a core repeating a cycle names its original's synapse list (_LayerCores._repeat)
LIST_BYTES = 40       # peak bytes per synapse of new lists while they are built (ids, weights and their joins)


@dataclass
class _Reads:
    """Input axons of a layer's cores for one projection, in core order, a block per window or repeated cycle:
    per block its first core (layer-local) and each core's axon count, and per axon the source neuron it carries
    and its index among its core's axons."""

    first: list[int]
    counts: list[np.ndarray]
    src: list[np.ndarray]
    axon: list[np.ndarray]

    def add(self, first: int, counts: np.ndarray, src: np.ndarray, axon: np.ndarray) -> None:
        for blocks, value in ((self.first, first), (self.counts, counts), (self.src, src), (self.axon, axon)):
            blocks.append(value)

    def since(self, start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(axon counts, src, axon) of cores `start` and later, reading only the blocks that hold them."""
        k = len(self.first)
        while k > 0 and self.first[k - 1] + self.counts[k - 1].size > start:
            k -= 1
        skip = [max(start - f, 0) for f in self.first[k:]]
        cut = [int(c[:n].sum()) for c, n in zip(self.counts[k:], skip)]
        return (cat([c[n:] for c, n in zip(self.counts[k:], skip)]),
                cat([x[n:] for x, n in zip(self.src[k:], cut)]), cat([x[n:] for x, n in zip(self.axon[k:], cut)], np.int32))

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return cat(self.counts), cat(self.src), cat(self.axon, np.int32)


def _window_tables(rows: OrderedRows, a: np.ndarray, b: np.ndarray, mixed: bool):
    """Per core holding window rows [a_j, b_j): its axons and synapses, its synapse list (local axon, local neuron,
    weight: doubled where the layer's weights are mixed in sign, Lava's weight_exp -1) in core order, and per
    projection the (core, input, local axon) of every axon it opens: its distinct inputs, ascending, after the
    projections before."""
    m = a.size
    spanned = ranges(a, b - a)
    local = (spanned - np.repeat(a, b - a)).astype(np.int32)   # per-synapse arrays in int32 from the start: a
    per = []                                                    # window's are millions, each page-faulted afresh
    for _, mat in rows.rows:   # cores' synapses and pairs come in core order: per-core values spread by np.repeat
        lens = mat.indptr[b] - mat.indptr[a]
        idx = ranges(mat.indptr[a], lens)
        core = np.repeat(np.arange(m), lens)
        inputs, ids = renumbered(mat.indices[idx])   # dense input ids, then (core, id) pairs: bitmaps, no sort
        pairs, rank = renumbered(core * inputs.size + ids)
        count = np.bincount(pairs // max(inputs.size, 1), minlength=m)
        first = pointers(count)[:-1]
        neuron = np.repeat(local, np.diff(mat.indptr)[spanned])
        weight = mat.data[idx].astype(np.int32) << np.int32(mixed)
        per.append((core, (rank - np.repeat(first.astype(rank.dtype), lens)).astype(np.int32, copy=False), neuron,
                    weight, count, lens, inputs[pairs % max(inputs.size, 1)].astype(np.int64),
                    np.arange(pairs.size) - np.repeat(first, count)))
    counts = np.array([p[4] for p in per]).reshape(len(per), m)
    offset = np.cumsum(counts, axis=0) - counts   # projection k's axons follow those before it (none for k = 0)
    order = np.argsort(cat([p[0] for p in per]), kind="stable") if len(per) > 1 else None
    syn_a = _in_core_order([p[1] + np.repeat(offset[k], p[5]) if k else p[1] for k, p in enumerate(per)], order)
    syn_n = _in_core_order([p[2] for p in per], order)
    syn_w = _in_core_order([p[3] for p in per], order)
    opened = [(p[4], p[6], p[7] + np.repeat(offset[k], p[4]) if k else p[7]) for k, p in enumerate(per)]
    return counts.sum(axis=0), sum(p[5] for p in per).astype(np.int64), syn_a, syn_n, syn_w, opened


def _in_core_order(parts: list[np.ndarray], order: np.ndarray | None) -> np.ndarray:
    """Per-projection synapse values as one int32 array in core order (`order`; None: one projection's, as it is)."""
    if order is None and parts[0].dtype == np.int32:
        return parts[0]
    joined = cat(parts, np.int32)
    return joined if order is None else joined[order]


def _signs(weights: np.ndarray, synapses: np.ndarray, mixed: bool) -> np.ndarray:
    """Per core its sign mode: mixed for the whole layer where its weights are, else inhibitory where every weight
    is <= 0 and one is < 0, else excitatory."""
    if mixed:
        return np.full(synapses.size, SIGN_CODES["mixed"], np.int64)
    starts = pointers(synapses)[:-1]
    full = synapses > 0
    low = np.zeros(synapses.size, np.int64)
    high = np.zeros(synapses.size, np.int64)
    if full.any():
        low[full] = np.minimum.reduceat(weights, starts[full])
        high[full] = np.maximum.reduceat(weights, starts[full])
    return np.where(full & (high <= 0) & (low < 0), SIGN_CODES["inhibitory"], SIGN_CODES["excitatory"])


class _Netlist:
    """The netlist's arrays, appended a window's cores or a repeated cycle at a time."""

    def __init__(self, qnet: QNetwork) -> None:
        net = qnet.network
        self.offsets, off = {}, 0
        for inp in net.inputs:
            self.offsets[inp.name] = off
            off += int(np.prod(inp.shape))
        self.names = {layer.name: i for i, layer in enumerate(net.layers)}
        self.cores: dict[str, list[np.ndarray]] = {k: [] for k in ("neurons", "axons", "template", "sign", "layer")}
        self.lists: dict[str, list[np.ndarray]] = {k: [] for k in ("syn_a", "syn_n", "syn_w", "size")}
        self.n_cores = self.n_templates = self.n_axons = 0
        self.edges: list[tuple[int | np.ndarray, np.ndarray, np.ndarray]] = []   # (source layer(s), neuron, axon)
        self.inputs: list[tuple[np.ndarray, np.ndarray]] = []              # (channel, axon) blocks

    def add(self, li: int, neurons: np.ndarray, axons: np.ndarray, template: np.ndarray, sign: np.ndarray) -> int:
        """Append cores; the first one's global id."""
        first = self.n_cores
        for key, values in (("neurons", neurons), ("axons", axons), ("template", template), ("sign", sign),
                            ("layer", np.full(neurons.size, li, np.int64))):
            self.cores[key].append(values)
        self.n_cores += neurons.size
        self.n_axons += int(axons.sum())
        return first

    def last(self, key: str, n: int) -> np.ndarray:
        """The last n cores' `key`."""
        return tail(self.cores[key], n)

    def read(self, source: str, inputs: np.ndarray, axons: np.ndarray) -> None:
        """Axons reading `inputs` of `source`: the host's channels, or neurons of a layer resolved once every layer
        has its ids (a recurrent source may come later)."""
        if source in self.offsets:
            self.inputs.append((self.offsets[source] + inputs, axons))
        else:
            self.edges.append((self.names[source], inputs, axons))

    def read_mixed(self, sources: list[str], which: np.ndarray, inputs: np.ndarray, axons: np.ndarray) -> None:
        """`read` where axon i reads `sources[which[i]]`, in the order given."""
        host = np.array([s in self.offsets for s in sources])
        on = host[which]
        if on.any():
            start = np.array([self.offsets.get(s, 0) for s in sources], np.int64)
            self.inputs.append((start[which[on]] + inputs[on], axons[on]))
        if not on.all():
            layer = np.array([self.names.get(s, -1) for s in sources], np.int64)
            self.edges.append((layer[which[~on]], inputs[~on], axons[~on]))


class _LayerCores:
    """One layer's cores as split finalises them: a window's searched cores built together (`_build`), a repeated
    cycle's cores naming their originals' lists with their inputs moved (`_repeat`)."""

    def __init__(self, out: _Netlist, li: int, layer: Layer, spec: TargetSpec) -> None:
        self.out, self.li, self.layer = out, li, layer
        self.sources = [p.source for p in layer.projections]
        self.mixed = is_mixed(stored_signs(layer))   # per layer, as the quantiser sized its weights
        self.windows = layer_windows(layer, spec)
        self.first = out.n_cores
        self.reads = [_Reads([], [], [], []) for _ in layer.projections]
        self.batches = Batches(self.windows, self._build)
        _, self.bind = split(layer, core_fits(self.windows, spec), split_hint(layer.name), self.batches.add,
                             runs=layer_runs(layer), repeat=self._repeat, reach=core_reach(spec))
        self.batches.flush()
        self.windows = self.batches = None   # let the rows go: the lists hold all the netlist needs of them
        self._read()

    def _build(self, rows: OrderedRows, a: np.ndarray, b: np.ndarray) -> None:
        """A window's searched cores: their synapse lists, sign modes and the axons they read."""
        out = self.out
        synapses = sum(int(m.indptr[b[-1]] - m.indptr[a[0]]) for _, m in rows.rows)
        done = out.n_cores - self.first
        cores = f"core {done}" if a.size == 1 else f"cores {done} to {done + a.size - 1}"
        require(f"layer {self.layer.name}, {cores} ({synapses:,} synapses)",
                LIST_BYTES * synapses,
                "shrink the layer's fan-in, or size the network with `neurocomp check MODEL --target T --census`")
        axons, per_core, syn_a, syn_n, syn_w, opened = _window_tables(rows, a, b, self.mixed)
        for key, values in (("syn_a", syn_a), ("syn_n", syn_n), ("syn_w", syn_w)):
            out.lists[key].append(compact(values, np.int16))
        out.lists["size"].append(per_core)
        template = out.n_templates + np.arange(a.size)
        out.n_templates += a.size
        first = out.add(self.li, b - a, axons, template, _signs(syn_w, per_core, self.mixed)) - self.first
        for reads, (count, inputs, axon) in zip(self.reads, opened):
            reads.add(first, count, inputs, axon)

    def _repeat(self, cycle: list[tuple[int, int]], run: Run, steps: int, times: int) -> None:
        """The last len(cycle) cores recur `times` times, each repetition with their lists and sign modes and their
        inputs moved by each projection's shift per step."""
        self.batches.flush()
        out, size = self.out, len(cycle)
        neurons, axons, template, sign = (out.last(key, size) for key in ("neurons", "axons", "template", "sign"))
        first = out.add(self.li, np.tile(neurons, times), np.tile(axons, times), np.tile(template, times),
                        np.tile(sign, times))
        start, again = first - self.first - size, np.arange(1, times + 1)
        for reads, shift in zip(self.reads, run.shifts):
            counts, inputs, axon = reads.since(start)
            reads.add(start + size, np.tile(counts, times), (inputs[None] + (steps * shift * again)[:, None]).ravel(),
                      np.tile(axon, times))

    def _read(self) -> None:
        """Hand the layer's axons to the netlist core by core, a core's projections in order, as global axons."""
        axons = self.out.last("axons", self.out.n_cores - self.first)
        axon0 = self.out.n_axons - int(axons.sum()) + np.cumsum(axons) - axons
        flat = [r.flat() for r in self.reads]
        self.reads = []
        if len(flat) == 1:
            counts, src, local = flat[0]
            self.out.read(self.sources[0], src, np.repeat(axon0, counts) + local)
            return
        counts = np.stack([f[0] for f in flat])   # (projections, cores)
        at = (np.cumsum(counts.sum(axis=0)) - counts.sum(axis=0))[None] + np.cumsum(counts, axis=0) - counts
        src = np.empty(int(counts.sum()), np.int64)
        axon = np.empty_like(src)
        which = np.empty(src.size, np.int64)
        for k, (count, s, local) in enumerate(flat):   # each projection's axons to their places among its cores'
            dest = np.repeat(at[k], count) + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
            src[dest], axon[dest], which[dest] = s, np.repeat(axon0, count) + local, k
        if len(set(self.sources)) == 1:
            self.out.read(self.sources[0], src, axon)
        else:
            self.out.read_mixed(self.sources, which, src, axon)


def build_netlist(qnet: QNetwork, spec: TargetSpec) -> Netlist:
    net, out = qnet.network, _Netlist(qnet)
    maps, firsts, neuron0 = [], [], 0
    for li, layer in enumerate(net.layers):
        start = out.n_cores
        bound = _LayerCores(out, li, layer, spec).bind
        ids = np.empty(layer.size, dtype=np.int64)
        ids[partition_order(layer)] = neuron0 + np.arange(layer.size)   # the cores hold it in turn
        neuron0 += layer.size
        firsts.append(ids)
        maps.append(LayerMap(layer.name, layer.shape, ids, layer.kind, qnet.layers[li].scale,
                             tuple(range(start, out.n_cores)), *bound))
        within_chips(net.layers, li, out.n_cores, spec)
    n_ptr, a_ptr = pointers(cat(out.cores["neurons"])), pointers(cat(out.cores["axons"]))
    wide = np.int32 if max(n_ptr[-1], a_ptr[-1]) < 2 ** 31 else np.int64   # edges: one per axon, the most
    starts = pointers(np.array([layer.size for layer in net.layers]))[:-1]
    ids = cat(firsts)
    e_src = cat([ids[starts[layer] + src] for layer, src, _ in out.edges], wide)
    e_ax = cat([axons for _, _, axons in out.edges], wide)
    i_ax = cat([i[1] for i in out.inputs])
    core_layer = cat(out.cores["layer"])
    wexp = np.array([-int(is_mixed(stored_signs(layer))) for layer in net.layers], np.int64)
    return Netlist(
        target=spec.name, neuron_ptr=n_ptr, axon_ptr=a_ptr, core_layer=core_layer, params=_params(qnet, wexp),
        synapses=Synapses(cat(out.cores["template"]), pointers(cat(out.lists["size"])), _joined(out.lists["syn_a"]),
                          _joined(out.lists["syn_n"]), {"weight": _joined(out.lists["syn_w"])}),
        core_tables={"sign_mode": cat(out.cores["sign"]), "weight_exp": wexp[core_layer]},
        edge_src=e_src, edge_axon=e_ax, edge_delay=np.ones(len(e_src), dtype=wide),
        in_channel=cat([i[0] for i in out.inputs]), in_axon=i_ax, in_delay=np.ones(len(i_ax), dtype=np.int64),
        inputs=tuple((i.name, i.shape) for i in net.inputs), layers=tuple(maps), outputs=net.outputs,
        notes={"latency": timing(net).latency},
    )


def _params(qnet: QNetwork, wexp: np.ndarray) -> dict[str, np.ndarray]:
    """Every register of every neuron in core order: each layer's in the partition order its cores hold in turn;
    weight_exp is the layer's (its cores' weight exponent)."""
    layers = qnet.network.layers
    orders = [partition_order(layer) for layer in layers]
    return {key: cat([np.full(layer.size, e, np.int64) if key == "weight_exp" else q.params[key][order]
                      for layer, q, order, e in zip(layers, qnet.layers, orders, wexp)])
            for key in qnet.layers[0].params}


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """Per-core arrays as one, in the widest of their dtypes (numpy's promotion). Consumes `parts`, freeing each
    once copied: the peak is the result plus one core's part, not the result twice over."""
    if not parts:
        return np.zeros(0, np.int32)
    out = np.empty(sum(p.size for p in parts), np.result_type(*{p.dtype for p in parts}))
    parts.reverse()
    at = 0
    while parts:
        part = parts.pop()
        out[at:at + part.size] = part
        at += part.size
    return out
