"""TrueNorth netlist builder: each layer's cores as arrays, templates plus offsets.

The partitioner (partition.split) hands over spans of a layer's partition order. The spans it searched in one
window of rows are built together: every core's axons are the keys at their first synapse in its span, sorted
once for the window, and its axon types and synapses follow from them, with no loop over cores. A cycle of cores that recurs (partition.period) adds no
tables: each repeated core names its original's template (one synapse list, Netlist.synapses) and reads the
original's inputs moved by the run's shift. What a layer keeps is per core a neuron count and a template id,
per template its tables, and per projection the axons that read each source neuron (`_Reads`), which are also
the source layer's fan-out copies once it is built (layers go from the last to the first). Splitter cores
(mapping's module docstring) are one block of arrays per source layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurocomp.ir.layers import Layer
from neurocomp.ir.netlist import LayerMap, Netlist
from neurocomp.ir.synapses import Synapses, narrow
from neurocomp.partition import cat, outgrown, split
from neurocomp.partition.blocks import pointers, ranges, tail
from neurocomp.partition.delays import inserted, timing
from neurocomp.partition.period import Run, runs
from neurocomp.partition.rows import Batches
from neurocomp.quantize import QNetwork
from neurocomp.target import TargetSpec
from neurocomp.targets.truenorth.census import count_from
from neurocomp.targets.truenorth.mapping import (LEVELS, SAMPLE_NEURONS, TileHeights, core_fits, core_reach,
                                                 held_slots, kernel_layers, split_hint, typed_windows, TypedRows)

SHARED_LISTS = False   # repeated cores share lists too, but a core-native (grouped) net rarely repeats: the up-front
                       # memory estimate counts every synapse


@dataclass
class _Reads:
    """Axons that read one source, in the order their cores were made: per entry the source neuron, the reading
    core (`group`: 2 x layer for a layer's cores, 2 x layer + 1 for its splitter cores; `core`: its index
    there) and the core's local axon. A neuron's k-th entry is served by its copy k."""

    src: list[np.ndarray] = field(default_factory=list)
    group: list[np.ndarray] = field(default_factory=list)
    core: list[np.ndarray] = field(default_factory=list)
    axon: list[np.ndarray] = field(default_factory=list)

    def add(self, src: np.ndarray, group: int | np.ndarray, core: np.ndarray, axon: np.ndarray) -> None:
        self.src.append(src)
        self.group.append(np.broadcast_to(np.asarray(group, np.int64), src.shape))
        self.core.append(core)
        self.axon.append(axon)

    def extend(self, other: "_Reads") -> None:
        for mine, theirs in ((self.src, other.src), (self.group, other.group), (self.core, other.core),
                             (self.axon, other.axon)):
            mine += theirs

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return cat(self.src), cat(self.group), cat(self.core), cat(self.axon)

    def size(self) -> int:
        return sum(s.size for s in self.src)

    def counts(self, size: int) -> np.ndarray:
        return np.bincount(cat(self.src), minlength=size) if self.src else np.zeros(size, np.int64)

    def since(self, first: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(src, core, axon) of the entries of cores `first` and later: entries are in core order, so only the
        blocks that end at or after `first` are read, the first of them from `first` on."""
        k = len(self.core)
        while k > 0 and (self.core[k - 1].size == 0 or self.core[k - 1][-1] >= first):
            k -= 1
        cut = [int(np.searchsorted(c, first)) for c in self.core[k:]]
        return tuple(cat([b[c:] for b, c in zip(blocks[k:], cut)])   # type: ignore[return-value]
                     for blocks in (self.src, self.core, self.axon))


@dataclass
class _Tables:
    """Core tables of a set of cores, concatenated in core order: neurons, axons and synapses per core; each axon's
    type, each synapse's local axon and neuron, each neuron's 4 type weights."""

    neurons: np.ndarray
    axons: np.ndarray
    synapses: np.ndarray
    axon_type: np.ndarray
    syn_axon: np.ndarray
    syn_neuron: np.ndarray
    weights: np.ndarray


def _window_tables(typed: TypedRows, a: np.ndarray, b: np.ndarray
                   ) -> tuple[_Tables, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """The tables of the cores holding window rows [a_j, b_j), and per projection the (core, source neuron,
    local axon) of every axon they open, core by core. A core opens one axon per (input, type) some neuron of it
    uses (with a bound kernel's support: every type of every input it may read), in ascending key order,
    projection after projection, as mapping.TypedRows.axon_keys lists them."""
    m = a.size
    rows = ranges(a, b - a)
    local = rows - np.repeat(a, b - a)
    per = [_projection(typed, k, a, b, rows, local) for k in range(len(typed.ptr))]
    counts = np.array([p[3] for p in per]).reshape(len(per), m)
    offset = np.cumsum(counts, axis=0) - counts
    syn_core, used_core = cat([p[0] for p in per]), cat([p[4] for p in per])
    by_core = np.argsort(syn_core, kind="stable") if len(per) > 1 else slice(None)
    by_used = np.argsort(used_core, kind="stable") if len(per) > 1 else slice(None)
    syn_axon = cat([offset[k][p[0]] + p[1] for k, p in enumerate(per)])[by_core]
    syn_neuron = cat([p[2] for p in per])[by_core]
    axon_type = cat([p[5] % LEVELS for p in per])[by_used]
    opened = [(p[4], p[5] // LEVELS, offset[k][p[4]] + p[6]) for k, p in enumerate(per)]
    tables = _Tables(b - a, counts.sum(axis=0), np.bincount(syn_core, minlength=m), axon_type, syn_axon, syn_neuron,
                     typed.typing.weights[rows].astype(np.int64))
    return tables, opened


def _projection(typed: TypedRows, k: int, a: np.ndarray, b: np.ndarray, rows: np.ndarray, local: np.ndarray):
    """One projection's part of _window_tables: per synapse its core, local axon rank and local neuron; per core
    the axons it opens; per opened axon its core, key and rank within the core. A core's axons are the keys at
    their first synapse in its span (mapping.TypedRows.firsts), sorted: no sort of every synapse."""
    ptr, keys = typed.ptr[k], typed.keys[k]
    lens = ptr[b] - ptr[a]
    idx = ranges(ptr[a], lens)
    core = np.repeat(np.arange(a.size), lens)
    key = keys[idx]
    neuron = np.repeat(local, ptr[rows + 1] - ptr[rows])
    fptr, prev = typed.firsts[k]
    flens = fptr[b] - fptr[a]
    fidx = ranges(fptr[a], flens)
    fcore = np.repeat(np.arange(a.size), flens)
    new = prev[fidx] < fptr[a][fcore]
    if typed.support is None:
        radix = int(keys.max(initial=0)) + 1
        used = np.sort(fcore[new] * radix + keys[fidx[new]])
        used_core, used_key = np.divmod(used, radix)
    else:
        inputs = typed.support[k].indices[fidx[new]].astype(np.int64)
        width = int(inputs.max(initial=0)) + 1
        pairs = np.sort(fcore[new] * width + inputs)
        used_core = np.repeat(pairs // width, LEVELS)
        used_key = ((pairs % width)[:, None] * LEVELS + np.arange(LEVELS)).ravel()
        radix = max(int(keys.max(initial=0)), int(used_key.max(initial=0))) + 1
        used = used_core * radix + used_key
    count = np.bincount(used_core, minlength=a.size)
    first = pointers(count)[:-1]
    rank = np.searchsorted(used, core * radix + key) - first[core]
    return core, rank, neuron, count, used_core, used_key, np.arange(used.size) - first[used_core]


class _LayerCores:
    """One layer's cores in tiles `band` rows high, as split finalises them: a window's searched cores are built
    together (`_build`), a repeated cycle's cores name their originals' templates."""

    def __init__(self, li: int, layer: Layer, band: int, copies: np.ndarray, keep: bool, spec: TargetSpec,
                 partials: set[str], stop: int | None = None) -> None:
        self.li, self.layer = li, layer
        self.order, self.windows = typed_windows(layer, band, keep, spec)
        self.copies = copies
        self.template: list[np.ndarray] = []   # per core (blocks), the template it uses
        self.tables: list[_Tables] = []        # templates' tables, template order
        self.n_templates = self.n_cores = 0
        self.reads = [_Reads() for _ in layer.projections]   # per projection, cores as layer-local ids
        self.batches = Batches(self.windows, self._build)
        held = held_slots(self.order, copies)
        _, self.bind = split(layer, core_fits(self.windows, held, spec), split_hint(layer, spec, partials),
                             self.batches.add, stop, runs(layer, band, copies), self._repeat, core_reach(held, spec))
        self.batches.flush()
        self.windows = self.batches = None   # let the rows go: the tables hold all the netlist needs of them

    def _build(self, typed: TypedRows, a: np.ndarray, b: np.ndarray) -> None:
        """A window's searched cores: their tables, templates of their own, and the axons they read."""
        tables, opened = _window_tables(typed, a, b)
        first = self.n_cores
        for reads, (core, src, axon) in zip(self.reads, opened):
            reads.add(src, 2 * self.li, first + core, axon)
        self.template.append(self.n_templates + np.arange(a.size))
        self.tables.append(tables)
        self.n_templates += a.size
        self.n_cores += a.size

    def _repeat(self, cycle: list[tuple[int, int]], run: Run, steps: int, times: int) -> None:
        """The last len(cycle) cores recur `times` times: each repetition names their templates and reads their
        inputs moved by each projection's shift per step."""
        self.batches.flush()
        size, first = len(cycle), self.n_cores - len(cycle)
        again = np.arange(1, times + 1)
        for reads, shift in zip(self.reads, run.shifts):
            src, core, axon = reads.since(first)
            reads.add((src[None] + (steps * shift * again)[:, None]).ravel(), 2 * self.li,
                      (core[None] + (size * again)[:, None]).ravel(), np.tile(axon, times))
        self.template.append(np.tile(tail(self.template, size), times))
        self.n_cores += size * times

    def templates(self) -> np.ndarray:
        return cat(self.template)

    def dests(self) -> dict[str, _Reads]:
        """The axons the cores read, per source in projection order; projections of one source merged core by core."""
        parts: dict[str, list[_Reads]] = {}
        for p, reads in zip(self.layer.projections, self.reads):
            parts.setdefault(p.source, []).append(reads)
        return {source: found[0] if len(found) == 1 else _merged(found) for source, found in parts.items()}

    def cost(self, sources: set[str], n_max: int) -> float:
        """The cores plus the cores' worth of neuron slots their axons take in the layers that feed them (each axon
        a neuron reaches is one more copy of it there; the host's inputs cost no core)."""
        axons = sum(r.size() for p, r in zip(self.layer.projections, self.reads) if p.source in sources)
        return self.n_cores + axons / n_max

    def neurons(self) -> int:
        sizes = cat([t.neurons for t in self.tables])
        return int(sizes[self.templates()].sum())


def _merged(parts: list[_Reads]) -> _Reads:
    """Entries of several projections of one source, core by core (a core's projections in order)."""
    src, group, core, axon = (cat(x) for x in zip(*(r.flat() for r in parts)))
    order = np.argsort(core, kind="stable")
    out = _Reads()
    out.add(src[order], group[order], core[order], axon[order])
    return out


@dataclass
class _Splitters:
    """A source layer's splitter cores: splitter neuron j repeats its axon's spikes to `target_axon[j]` of core
    (`target_group[j]`, `target_core[j]`)."""

    source: str
    tables: _Tables
    target_group: np.ndarray
    target_core: np.ndarray
    target_axon: np.ndarray

    @property
    def n_cores(self) -> int:
        return self.tables.neurons.size


def _split_fanout(li: int, source: str, reads: _Reads, n_max: int) -> tuple[_Reads, _Splitters | None]:
    """Route the neurons of `source` that feed more axons than a core has neurons through splitter cores of
    n_max neurons each (in source-neuron order); returns the entries that remain (its copies, and one axon per
    (splitter core, source neuron) pair) and the splitter cores."""
    src, group, core, axon = reads.flat()
    far = np.bincount(src)[src] > n_max if src.size else np.zeros(0, bool)
    if not far.any():
        return reads, None
    kept = _Reads()
    kept.add(src[~far], group[~far], core[~far], axon[~far])
    order = np.argsort(src[far], kind="stable")
    s = src[far][order]
    core_of = np.arange(s.size) // n_max
    new_pair = np.ones(s.size, dtype=bool)
    new_pair[1:] = (s[1:] != s[:-1]) | (core_of[1:] != core_of[:-1])
    pair = np.cumsum(new_pair) - 1
    pair_core = core_of[new_pair]
    n_cores = int(core_of[-1]) + 1
    pairs = np.bincount(pair_core, minlength=n_cores)
    first_pair = pointers(pairs)[:-1]
    kept.add(s[new_pair], 2 * li + 1, pair_core, np.arange(pair.max() + 1) - first_pair[pair_core])
    neurons = np.bincount(core_of, minlength=n_cores)
    weights = np.zeros((s.size, LEVELS), dtype=np.int64)
    weights[:, 0] = 1
    tables = _Tables(neurons, pairs, neurons, np.zeros(int(pairs.sum()), np.int64), pair - first_pair[core_of],
                     np.arange(s.size) - n_max * core_of, weights)
    return kept, _Splitters(source, tables, group[far][order], core[far][order], axon[far][order])


def build_netlist(qnet: QNetwork, spec: TargetSpec) -> Netlist:
    layers = qnet.network.layers
    n_max = int(spec["core.neurons"])
    dests: dict[str, _Reads] = {}
    built: list[_LayerCores | None] = [None] * len(layers)
    helpers: list[_Splitters | None] = [None] * len(layers)
    partials = inserted(qnet.network)
    kernel = kernel_layers(qnet.network, partials)
    sources = {layer.name for layer in layers}
    heights = TileHeights()
    for li in range(len(layers) - 1, -1, -1):
        layer = layers[li]
        if layer.name in dests:
            dests[layer.name], helpers[li] = _split_fanout(li, layer.name, dests[layer.name], n_max)
        copies = (np.maximum(dests[layer.name].counts(layer.size), 1) if layer.name in dests else
                  np.ones(layer.size, np.int64))
        keep = layer.name in kernel

        def sampled(band: int) -> float:
            trial = _LayerCores(li, layer, band, copies, keep, spec, partials, SAMPLE_NEURONS)
            return trial.cost(sources, n_max) / trial.neurons()
        bands = heights.of(layer, sampled)
        trials = [_LayerCores(li, layer, band, copies, keep, spec, partials) for band in bands]
        built[li] = min(trials, key=lambda t: t.cost(sources, n_max))
        heights.kept(layer, bands[trials.index(built[li])])
        for source, reads in built[li].dests().items():
            dests.setdefault(source, _Reads()).extend(reads)
        _within_chips(built, helpers, qnet, li, spec, dests, heights)
    return _assemble(qnet, spec, built, helpers, dests)


def _within_chips(built: list[_LayerCores | None], helpers: list[_Splitters | None], qnet: QNetwork, li: int,
                  spec: TargetSpec, dests: dict[str, _Reads], heights: TileHeights) -> None:
    """Refuse as soon as the layers built so far (li to the last) outgrow the chips, rather than after building the
    rest: those are counted by the census from the copies known so far, so the refusal gives the exact total."""
    used = sum(built[k].n_cores + (helpers[k].n_cores if helpers[k] else 0) for k in range(li, len(built)))
    if used > spec.max_cores:
        layers = qnet.network.layers
        reads = {layer.name: dests[layer.name].counts(layer.size) for layer in layers[:li] if layer.name in dests}
        rest = sum(c.cores for c in count_from(qnet, spec, li - 1, reads, heights=heights))
        counted = (layers[0].name, layers[li - 1].name) if li > 0 else None
        raise outgrown(spec, used + rest, len(layers) - li, len(layers), counted)


def _assemble(qnet: QNetwork, spec: TargetSpec, built: list[_LayerCores], helpers: list[_Splitters | None],
              dests: dict[str, _Reads]) -> Netlist:
    """The netlist in core order: each layer's cores, then its splitter cores, layer after layer."""
    net = qnet.network
    layers, names = net.layers, [layer.name for layer in net.layers]
    splitters = [h for h in helpers if h is not None]
    tm = timing(net, {h.source: 1 for h in splitters}, int(spec["core.delay_max"]))
    cores_in = np.array([[b.n_cores, helpers[i].n_cores if helpers[i] else 0] for i, b in enumerate(built)],
                        dtype=np.int64).ravel()
    base = pointers(cores_in)[:-1]   # first core of each group (2 x layer, 2 x layer + 1)
    template, copies, index = [], [], []
    t_base = 0
    sizes = [layer.size for layer in layers]
    start = pointers(np.array(sizes))
    helper_start = start[-1]
    tables: list[_Tables] = []
    for i, b in enumerate(built):
        template.append(t_base + b.templates())
        tables += b.tables
        t_base += b.n_templates
        index.append(start[i] + b.order)
        copies.append(b.copies[b.order])
        if helpers[i] is not None:
            h = helpers[i]
            template.append(t_base + np.arange(h.n_cores))
            tables.append(h.tables)
            t_base += h.n_cores
            index.append(helper_start + np.arange(int(h.tables.neurons.sum())))
            helper_start += int(h.tables.neurons.sum())
            copies.append(np.ones(int(h.tables.neurons.sum()), np.int64))
    core_template = cat(template)
    t_neurons = cat([t.neurons for t in tables])
    t_axons = cat([t.axons for t in tables])
    t_syn = cat([t.synapses for t in tables])
    n_ptr = pointers(t_neurons[core_template])
    a_ptr = pointers(t_axons[core_template])
    tn_ptr, ta_ptr = pointers(t_neurons), pointers(t_axons)
    weights = np.concatenate([t.weights for t in tables])[ranges(tn_ptr[core_template], t_neurons[core_template])]
    axon_type = cat([t.axon_type for t in tables])[ranges(ta_ptr[core_template], t_axons[core_template])]
    synapses = Synapses(core_template, pointers(t_syn), narrow(cat([t.syn_axon for t in tables], np.int32)),
                        narrow(cat([t.syn_neuron for t in tables], np.int32)), {})
    firsts = {layer.name: _layer_first(built[i], n_ptr[base[2 * i]]) for i, layer in enumerate(layers)}
    group_layer = np.repeat(np.arange(len(layers)), 2)
    e_src, e_ax, e_d, i_ch, i_ax, i_d = [], [], [], [], [], []
    offsets, off = {}, 0
    for inp in net.inputs:
        offsets[inp.name] = off
        off += int(np.prod(inp.shape))
    for source, d in dests.items():
        src, group, core, axon = d.flat()
        gid = base[group] + core
        ax = a_ptr[gid] + axon
        # a spike into a splitter takes one tick; the splitter's own edge carries the rest of the delay
        dl = np.where(group % 2 == 1, 1, _delays(tm.delay, source, names, group_layer[group]))
        if source in offsets:
            i_ch.append(offsets[source] + src)
            i_ax.append(ax)
            i_d.append(dl)
            continue
        order = np.argsort(src, kind="stable")   # a neuron's k-th edge leaves its copy k (Netlist.expanded)
        e_src.append(firsts[source][src[order]])
        e_ax.append(ax[order])
        e_d.append(dl[order])
    for i, h in enumerate(helpers):
        if h is None:
            continue
        gid = base[h.target_group] + h.target_core
        e_src.append(n_ptr[base[2 * i + 1]] + np.arange(h.target_axon.size))
        e_ax.append(a_ptr[gid] + h.target_axon)
        e_d.append(_delays(tm.delay, h.source, names, group_layer[h.target_group]) - 1)
    params = _core_params(qnet, cat(index), helpers)
    params["w"] = weights
    core_layer = np.repeat(np.where(np.arange(2 * len(layers)) % 2 == 0, group_layer, -1), cores_in)
    maps = tuple(LayerMap(layer.name, layer.shape, firsts[layer.name], layer.kind, qnet.layers[i].scale,
                          tuple(range(int(base[2 * i]), int(base[2 * i]) + built[i].n_cores)), *built[i].bind)
                 for i, layer in enumerate(layers))
    return Netlist(
        target=spec.name, neuron_ptr=n_ptr, axon_ptr=a_ptr, core_layer=core_layer, params=params,
        synapses=synapses, core_tables={"axon_type": axon_type},
        edge_src=cat(e_src), edge_axon=cat(e_ax), edge_delay=cat(e_d),
        in_channel=cat(i_ch), in_axon=cat(i_ax), in_delay=cat(i_d),
        inputs=tuple((i.name, i.shape) for i in net.inputs), layers=maps,
        outputs=net.outputs, notes={"latency": tm.latency, "delay": tm.nested_delays(), "splitter_cores": sum(h.n_cores for h in splitters)},
        copies=cat(copies),
    )


def _delays(delay: dict[tuple[str, str], int], source: str, names: list[str], layer: np.ndarray) -> np.ndarray:
    """The axon delay of each entry from `source` into a core of layer `layer[i]` (1 where none is set: a splitter
    core's entries, which the caller sets apart), looked up once per layer it reaches."""
    reached, at = np.unique(layer, return_inverse=True)
    return np.array([delay.get((source, names[k]), 1) for k in reached], dtype=np.int64)[at]


def _layer_first(b: _LayerCores, first: int) -> np.ndarray:
    """Global id of every neuron of a layer: its cores hold its partition order in turn, from neuron `first`."""
    out = np.empty(b.order.size, dtype=np.int64)
    out[b.order] = first + np.arange(b.order.size)
    return out


def _core_params(qnet: QNetwork, index: np.ndarray, helpers: list[_Splitters | None]) -> dict[str, np.ndarray]:
    """Every register for every hardware neuron, in core order: one gather per register from the layers' arrays
    (`index`: into them, the splitter neurons' after them); a splitter neuron relays each spike at once."""
    n = sum(int(h.tables.neurons.sum()) for h in helpers if h is not None)
    keys = list(qnet.layers[0].params)
    relay = {key: np.ones(n, np.int64) if key in ("alpha", "kappa") else np.zeros(n, np.int64) for key in keys}
    return {key: cat([q.params[key] for q in qnet.layers] + [relay[key]])[index] for key in keys}
