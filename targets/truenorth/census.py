"""The TrueNorth census: the cores build_netlist would make, counted without core tables.

Layers are counted from the last, as they are built: per neuron only the axons that read it (its copies), per layer
the spans `split` chooses with mapping's predicate (a wide plain conv's spans counted from its kernel,
convcount.ConvCounts, not from typed rows), cycles of spans that recur along a conv's columns or bands
counted once (partition.period), and layers whose neurons each read one input (the sum of a fan-in split's parts)
by running sums with no search (_greedy). cores.py calls `count_from` for the layers it has not built yet when the
built ones already outgrow the chips, so its refusal gives the exact total.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp

from neurocomp.distinct import distinct
from neurocomp.errors import ResourceError
from neurocomp.forked import available, forked_map
from neurocomp.ir.graph import Correlation, Flatten, Scale
from neurocomp.ir.layers import Layer
from neurocomp.ir.synapses import narrow
from neurocomp.partition import LayerCount, cat, split
from neurocomp.partition.delays import inserted
from neurocomp.partition.fanin import split_of
from neurocomp.partition.period import Run, runs
from neurocomp.partition.rows import chunk_rows
from neurocomp.quantize import QNetwork
from neurocomp.target import TargetSpec
from neurocomp.targets.truenorth.convcount import conv_counts
from neurocomp.targets.truenorth.mapping import (LEVELS, SAMPLE_NEURONS, Orders, TileHeights, Typing, core_fits,
                                                 core_reach, held_slots, kernel_layers, row_levels, split_hint,
                                                 typed_windows, TypedRows)

# Spans whose axon inputs the census keeps, for the cycles that repeat them (a band's worth of cores, or more).
RECENT_SPANS = 1 << 14
# Repeated cycles whose spans the census keeps (a band's column cycles, for the band cycle that repeats them).
RECENT_REPEATS = 64
# Inputs of searched cores the census holds before it adds them to the per-neuron counts (_Count._emit).
PENDING_INPUTS = 1 << 22


def count_cores(qnet: QNetwork, spec: TargetSpec, progress: Callable[[str], None] | None = None) -> list[LayerCount]:
    """The cores build_netlist would make, layer by layer from the last as it goes, keeping per neuron only the
    axons that read it (its copies) instead of core tables; a layer's splitter cores are a row of their own
    (`<layer>.splitters`). Spans that recur along a conv's columns or bands are counted once per cycle
    (partition.period), so a paper-size network is sized without holding its tables. A layer no core holds counts 0 cores,
    with its error, and reads nothing from its sources. `progress(name)` as each layer's count starts (the parts of a
    fan-in split, counted in one process per processor up to MAX_WORKERS: as their counts come in)."""
    return count_from(qnet, spec, len(qnet.network.layers) - 1, {}, progress)


@dataclass(frozen=True)
class _Net:
    """What counting any layer of a network needs besides the axons that read it."""

    spec: TargetSpec
    n_max: int
    partials: set[str]
    kernel: set[str]
    sources: set[str]
    workers: int
    orders: Orders
    shifted: "_Shifted"


def count_from(qnet: QNetwork, spec: TargetSpec, last: int, reads: dict[str, np.ndarray],
               progress: Callable[[str], None] | None = None, heights: TileHeights | None = None,
               workers: int | None = None) -> list[LayerCount]:
    """count_cores of layers `last` down to the first, given the axons that read each neuron so far (`reads`, per
    layer, none where a layer is missing; added to as layers are counted) and the tile heights the layers after
    `last` were partitioned in. A layer's first reads are taken as they come (booleans where a sum reads its
    parts) instead of added into an array of zeros: that cost 6 x 10^8 bytes of adds and page faults for the dense
    paper-size net's 8 x 10^7 partial neurons. A run of at least FORKED_RUN parts of one fan-in split, or of
    FORKED_NEURONS neurons (they read its source and none reads another), is counted in `workers` processes
    (neurocomp.forked; None: one per processor, up to MAX_WORKERS), once the first part of each geometry has fixed
    its tile height here; a large layer's sampled tile heights are measured side by side too. The counts are the
    same for any number of workers."""
    layers, workers = qnet.network.layers, min(available(), MAX_WORKERS) if workers is None else workers
    partials = inserted(qnet.network)
    net = _Net(spec, int(spec["core.neurons"]), partials, kernel_layers(qnet.network, partials),
               {layer.name for layer in layers}, workers, Orders(), _Shifted())
    heights = TileHeights() if heights is None else heights
    tell = progress or (lambda name: None)
    out: list[LayerCount] = []
    li = last
    while li >= 0:
        run = _parts_run(layers, li) if workers > 1 else [li]
        if len(run) >= FORKED_RUN or len(run) > 1 and sum(layers[i].size for i in run) >= FORKED_NEURONS:
            counted = _count_run([layers[i] for i in run], reads, net, heights, tell, workers)
        else:
            tell(layers[li].name)
            counted = [_count_layer(layers[li], reads.get(layers[li].name), net, heights)]
            run = [li]
        for rows, add in counted:
            out += rows
            for source, more in add.items():
                if source in net.sources:
                    reads[source] = np.add(reads[source], more, dtype=np.int64) if source in reads else more
        li = run[-1] - 1
    return out[::-1]


# Parts of one split, in a row, below which forking workers costs more than it saves, unless they hold at least
# FORKED_NEURONS (the dense paper-size SiamSNN's first conv: 6 parts of 1.45 x 10^6 neurons).
FORKED_RUN, FORKED_NEURONS = 16, 1 << 22
# Forked workers at most by default. Each writes some private memory of its own (63 MB at peak on the dense paper-size
# census, besides the pages it shares), and a split's pieces shrink with their number while each fork costs the same.
MAX_WORKERS = 8


def _parts_run(layers: tuple[Layer, ...], li: int) -> list[int]:
    """li and the layers before it that are parts of the same fan-in split, in counting order (last first)."""
    split = split_of(layers[li].name)
    run = [li]
    while split is not None and run[-1] > 0 and split_of(layers[run[-1] - 1].name) == split:
        run.append(run[-1] - 1)
    return run


Counted = tuple[list[LayerCount], dict[str, np.ndarray]]


def _count_run(run: list[Layer], reads: dict[str, np.ndarray], net: _Net, heights: TileHeights,
               tell: Callable[[str], None], workers: int) -> list[Counted]:
    """Count a split's parts in order: here each part whose geometry has no tile height yet (so the parts after it
    take the height a serial count gives them), the others in `workers` contiguous pieces side by side. Each
    piece's reads of the split's source come back summed, as an entry of their own after the parts'."""
    counted: dict[str, Counted] = {}
    rest = []
    for layer in run:
        if heights.decided(layer):
            rest.append(layer)
            continue
        tell(layer.name)
        counted[layer.name] = _count_layer(layer, reads.get(layer.name), net, heights)
    if not rest:
        return [counted[layer.name] for layer in run]
    pieces = _contiguous(list(range(len(rest))), workers)

    def work(piece: list[int]) -> tuple[list[list[LayerCount]], dict[str, np.ndarray]]:
        rows, total = [], {}
        for k in piece:
            if piece is pieces[0]:
                tell(rest[k].name)
            layer_rows, add = _count_layer(rest[k], reads.get(rest[k].name), net, heights)
            rows.append(layer_rows)
            for source, more in add.items():
                if source in total:
                    total[source] += more
                else:
                    total[source] = more.astype(np.int64)
        return rows, total
    results = forked_map(work, pieces)
    for piece in pieces[1:]:
        for k in piece:
            tell(rest[k].name)
    counted |= {rest[k].name: (layer_rows, {}) for piece, (rows, _) in zip(pieces, results)
                for k, layer_rows in zip(piece, rows)}
    return [counted[layer.name] for layer in run] + [([], total) for _, total in results]


def _count_layer(layer: Layer, read: np.ndarray | None, net: _Net, heights: TileHeights) -> Counted:
    """One layer's rows (its splitters', then its own) and the axons it reads each neuron of its sources with,
    given the axons that read each of its neurons (None: none); a bound part like one counted before takes its
    count (net.shifted)."""
    copies, relayed = _through_splitters(np.zeros(layer.size, np.int64) if read is None else read, net.n_max)
    keep = layer.name in net.kernel
    alike = net.shifted.alike(layer, copies, relayed, net.spec) if keep else None
    if alike is not None:
        return alike
    rows = [LayerCount(f"{layer.name}.splitters", relayed, -(-relayed // net.n_max), "neurons", net.n_max, net.n_max)
            ] if relayed else []
    counted = _counted(layer, rows, copies, keep, net, heights)
    if keep:
        net.shifted.keep(layer, copies, relayed, net.spec, counted)
    return counted


def _counted(layer: Layer, rows: list[LayerCount], copies: np.ndarray, keep: bool, net: _Net,
             heights: TileHeights) -> Counted:
    args = (copies, keep, net.spec, net.partials, net.sources)
    try:
        bands = heights.of(layer,
                           lambda band: _Count(layer, band, *args, SAMPLE_NEURONS, orders=net.orders).per_neuron())
        trials = [_Count(layer, band, *args, orders=net.orders) for band in bands]
    except ResourceError as err:
        return rows + [LayerCount(layer.name, layer.size, 0, err.resource, err.used, err.allowed, str(err))], {}
    best = min(trials, key=_Count.cost)
    heights.kept(layer, bands[trials.index(best)])
    return rows + [LayerCount(layer.name, layer.size, best.cores, *best.bind)], best.reads


class _Shifted:
    """The counts of bound parts by their structure. A bound layer's cores open every axon type of the inputs its
    reach allows (mapping.kernel_layers), so its kernel's values enter its count only through each neuron's weight
    levels. The parts of a split over a Correlation read one channel block each, alike but for its place: a part whose
    structure, copies and levels equal an earlier one's takes its rows, and its reads moved by the blocks' distance
    (the dense two-status score's 1,152 parts: about 3 ms each to count, half that to type). Kept for up to
    SHIFTED_KEYS structures and SHIFTED_ROWS neurons a part."""

    def __init__(self) -> None:
        self._counted: dict[tuple, tuple[np.ndarray, Counted, int, int]] = {}

    def alike(self, layer: Layer, copies: np.ndarray, relayed: int, spec: TargetSpec) -> Counted | None:
        found = self._key(layer, copies, relayed)
        known = None if found is None else self._counted.get(found[0])
        if known is None or not np.array_equal(known[0], _levels(layer, spec)):
            return None
        _, (rows, reads), first, size = known
        at = found[1]
        moved = {source: _moved(r, first, at, size) for source, r in reads.items()}
        return [row._replace(layer=row.layer.replace(rows[-1].layer, layer.name, 1)) for row in rows], moved

    def keep(self, layer: Layer, copies: np.ndarray, relayed: int, spec: TargetSpec, counted: Counted) -> None:
        found = self._key(layer, copies, relayed)
        rows, reads = counted
        if found is None or found[0] in self._counted or rows[-1].error:
            return
        key, first, size = found[0], found[1], found[2]
        if any(r[:first].any() or r[first + size:].any() for r in reads.values()):
            return   # reads outside its block: not a shifted copy of another part's
        if len(self._counted) >= SHIFTED_KEYS:
            self._counted.clear()
        self._counted[key] = (_levels(layer, spec), counted, first, size)

    @staticmethod
    def _key(layer: Layer, copies: np.ndarray, relayed: int) -> tuple[tuple, int, int] | None:
        """(structure, copies and splitter neurons, first input, inputs) of a layer reading one channel block of a
        (C, H, W) source through a Correlation (then at most a Flatten), up to SHIFTED_ROWS neurons; None for any
        other."""
        if len(layer.projections) != 1 or layer.size > SHIFTED_ROWS:
            return None
        p = layer.projections[0]
        op = p.chain[0] if p.chain else None
        if not isinstance(op, Correlation) or op.reach is None or len(p.shapes[0]) != 3 \
                or not all(isinstance(o, Flatten) for o in p.chain[1:]):
            return None
        reach = np.asarray(op.reach)
        channels = np.flatnonzero(reach.any(axis=(0, 2, 3)))
        if channels.size == 0 or channels[-1] - channels[0] + 1 != channels.size:
            return None
        a, b = int(channels[0]), int(channels[-1]) + 1
        plane = p.shapes[0][1] * p.shapes[0][2]
        key = (layer.shape, type(layer.neuron).__name__, p.source, p.shapes, op.stride, op.padding, len(p.chain),
               reach[:, a:b].shape, reach[:, a:b].tobytes(), copies.tobytes(), relayed)
        return key, a * plane, (b - a) * plane


# Structures _Shifted keeps (a split's parts share one or two), and the neurons of a part it keeps counts of.
SHIFTED_KEYS, SHIFTED_ROWS = 4, 1 << 12


def _levels(layer: Layer, spec: TargetSpec) -> np.ndarray:
    """Each neuron's weight levels (mapping.Typing's need), in layer order, of a layer _Shifted keeps: without padding
    every neuron of its Correlation's one output channel reads the whole kernel, so all have its live weights' levels
    (read off the kernel: building the first neuron's row took 1.1 ms a part)."""
    op = layer.projections[0].chain[0]
    if op.padding == (0, 0):
        weights = np.rint(op.live_taps[1][0])   # one output channel: its live taps are its non-zero weights
        row = sp.csr_matrix((weights, np.arange(weights.size), [0, weights.size]), shape=(1, max(weights.size, 1)))
        table, cnt = row_levels([(op.name, row)], 1)
        return np.broadcast_to(Typing.of(table, cnt, int(spec["core.weight_max"])).need, (layer.size,))
    table, cnt = row_levels(chunk_rows(layer, np.arange(layer.size)), layer.size)
    return Typing.of(table, cnt, int(spec["core.weight_max"])).need


def _moved(reads: np.ndarray, first: int, at: int, size: int) -> np.ndarray:
    """`reads`, zero outside [first, first + size), with that block moved to start at `at`."""
    out = np.zeros_like(reads)
    out[at:at + size] = reads[first:first + size]
    return out


def _contiguous(items: list, workers: int) -> list[list]:
    """`items` in at most `workers` contiguous pieces of about equal length, in order."""
    return [[items[i] for i in piece] for piece in np.array_split(np.arange(len(items)), min(workers, len(items)))
            if piece.size]


def _through_splitters(reads: np.ndarray, n_max: int) -> tuple[np.ndarray, int]:
    """Copies per neuron and the splitter neurons, as _split_fanout decides them: a neuron read by more axons than
    a core has neurons sends its reads, in neuron order, through splitter cores of n_max neurons each, and has one
    copy per splitter core its reads land in."""
    far = reads > n_max
    copies = np.maximum(reads, 1)
    if not far.any():
        return copies, 0
    end = np.cumsum(reads[far])
    begin = end - reads[far]
    copies[far] = (end - 1) // n_max - begin // n_max + 1
    return copies, int(end[-1])


@dataclass(frozen=True)
class _Repeated:
    """A cycle of spans repeated `times` more times, each `shift` positions on, its inputs moved by `moved` per
    repetition (per projection): a later cycle that spans these repetitions (a band of column cycles, repeated down)
    reads their inputs from here instead of building windows again."""

    cycle: dict[tuple[int, int], list[np.ndarray]]
    first: int
    shift: int
    times: int
    moved: tuple[int, ...]

    @property
    def end(self) -> int:
        """The first position past its repetitions: no span it holds starts there or later."""
        return self.first + (self.times + 1) * self.shift

    def inputs(self, lo: int, hi: int) -> list[np.ndarray] | None:
        k = (lo - self.first) // self.shift
        base = self.cycle.get((lo - k * self.shift, hi - k * self.shift)) if 1 <= k <= self.times else None
        return None if base is None else [u + k * m for u, m in zip(base, self.moved)]


class _Count:
    """One layer's cores in tiles `band` rows high and the axons they need of each source layer, counted as
    _layer_cores builds them (`stop`: its first neurons only)."""

    def __init__(self, layer: Layer, band: int, copies: np.ndarray, keep: bool, spec: TargetSpec,
                 partials: set[str], sources: set[str], stop: int | None = None, orders: Orders | None = None) -> None:
        order, windows = typed_windows(layer, band, keep, spec, orders)
        counts = conv_counts(layer, order, keep, spec)
        self.windows = windows if counts is None else counts
        self.layer, self.n_max, self.sources = layer, int(spec["core.neurons"]), sources
        self.reads = {p.source: np.zeros(0 if p.source not in sources else p.n_in, np.int64) for p in layer.projections}
        self.axons = 0
        if not keep and _one_to_one(layer) and self._additive(order, copies, spec, stop):
            return
        if counts is None and self._singles(order, copies, spec, stop):
            return
        if counts is None and not keep and self._slot_bound(order, copies, spec, stop):
            return
        self.inputs: dict[tuple[int, int], list[np.ndarray]] = {}   # recent spans: the inputs their axons read
        self.repeats: list[_Repeated] = []   # recent cycles' repetitions, whose spans no window was built for
        self.repeated = 0   # the end of the furthest of them: a span starting there or later is in none
        self.pending: dict[str, list[np.ndarray]] = {}   # searched cores' inputs, counted a batch at a time
        self.held = 0
        held = held_slots(order, copies)
        spans, self.bind = split(layer, core_fits(self.windows, held, spec), split_hint(layer, spec, partials),
                                 self._emit, stop, runs(layer, band, copies, order=order), self._repeat,
                                 core_reach(held, spec))
        self._flush()
        self.cores, self.neurons = len(spans), spans[-1][1] if spans else 0

    def _used(self, lo: int, hi: int) -> list[np.ndarray]:
        """Per projection, the inputs of the axons a core of span [lo, hi) opens (one per type it reads them with)."""
        if (lo, hi) not in self.inputs:
            for r in reversed(self.repeats if lo < self.repeated else ()):
                moved = r.inputs(lo, hi)
                if moved is not None:
                    return moved
            if len(self.inputs) >= RECENT_SPANS:
                self.inputs.clear()
            typed, off = self.windows.get(lo, hi)
            self.inputs[lo, hi] = [keys // LEVELS for keys in typed.axon_keys(lo - off, hi - off)]
        return self.inputs[lo, hi]

    def _emit(self, lo: int, hi: int) -> None:
        """Hold a searched core's inputs: a layer read through many projections (the sum of a fan-in split's
        partial layers) would otherwise pay a histogram per projection and core."""
        for p, ids in zip(self.layer.projections, self._used(lo, hi)):
            if p.source in self.sources and ids.size:
                self.pending.setdefault(p.source, []).append(ids)
                self.axons += ids.size
                self.held += ids.size
        if self.held > PENDING_INPUTS:
            self._flush()

    def _flush(self) -> None:
        for source, parts in self.pending.items():
            self._add(source, np.concatenate(parts), count=False)
        self.pending, self.held = {}, 0

    def _repeat(self, cycle: list[tuple[int, int]], run: Run, steps: int, times: int) -> None:
        """A cycle recurs: its spans' inputs again, moved by each projection's shift per repetition."""
        used = [self._used(lo, hi) for lo, hi in cycle]
        for k, p in enumerate(self.layer.projections):
            self._add(p.source, np.concatenate([u[k] for u in used]), steps * run.shifts[k], times)
        self.repeats = self.repeats[1 - RECENT_REPEATS:] + [_Repeated(dict(zip(cycle, used)), cycle[0][0],
                                                                      cycle[-1][1] - cycle[0][0], times,
                                                                      tuple(steps * m for m in run.shifts))]
        self.repeated = max(r.end for r in self.repeats)

    def _add(self, source: str, ids: np.ndarray, shift: int = 0, times: int = 1, count: bool = True) -> None:
        """Count one axon per entry of `ids` (moved by shift, 2 shift, .., times x shift when shift > 0); `count`
        False: the entries are in self.axons already (_emit)."""
        if source not in self.sources or ids.size == 0:
            return
        self.axons += ids.size * times if count else 0
        low = int(ids.min()) + shift
        hist = np.bincount(ids - ids.min())
        if shift == 0:
            self.reads[source][low:low + hist.size] += hist
            return
        span = (times - 1) * shift + hist.size
        comb = np.zeros(-(-(span + shift) // shift) * shift, np.int64)
        comb[:hist.size] += hist
        tail = times * shift
        comb[tail:tail + hist.size] -= hist[:max(comb.size - tail, 0)]
        self.reads[source][low:low + span] += comb.reshape(-1, shift).cumsum(axis=0).ravel()[:span]

    def _additive(self, order: np.ndarray, copies: np.ndarray, spec: TargetSpec, stop: int | None) -> bool:
        """The count of a layer whose projections read one input per neuron each (the sum of a fan-in split's
        partial layers), where no two neurons share an axon: a span's axons are its rows' keys summed, so split's
        greedy spans follow from running sums (_greedy) with no search. False (nothing counted) where some
        neuron fits no core alone: split then names the resource."""
        m = self.layer.size if stop is None else min(self.layer.size, stop + self.n_max)   # spans hold <= n_max
        scaled = _scaled_rows(self.layer, order[:m])
        keys, levels, inputs = scaled or self._built_rows(m)
        held = copies[order[:m]]
        n_max, a_max = spec["core.neurons"], spec["core.axons"]
        if keys.max(initial=0) > a_max or held.max(initial=0) > n_max or levels.max(initial=0) > LEVELS:
            return False
        neurons, axons = _running(held), _running(keys)
        lo, hi = _greedy(neurons, axons, n_max, a_max, m if stop is None else min(m, stop))
        self.cores, self.neurons = lo.size, int(hi[-1]) if hi.size else 0
        self.bind = _binding(lo, hi, neurons, axons, levels, n_max, a_max)
        self.axons = int(axons[self.neurons])
        fresh = set(self.reads)   # reads still all zero (np.zeros: pages not yet touched)
        for p, ids in zip(self.layer.projections, inputs(self.neurons)):
            if scaled is None:   # typed rows: the inputs of the keys (a bit-plane synapse's repeated per set bit)
                self._add(p.source, ids, count=False)
            elif p.source in self.sources:   # 1 where the rows read the input (booleans: a second read counts)
                self.reads[p.source] = ids if p.source in fresh else self.reads[p.source] + ids.astype(np.int64)
                fresh.discard(p.source)
        return True

    def _singles(self, order: np.ndarray, copies: np.ndarray, spec: TargetSpec, stop: int | None) -> bool:
        """The count of a layer whose neurons each fill a core alone: no two neighbours in partition order fit one
        core (a fan-in part of a two-status score: 8 x 8 taps of one channel, each on up to 4 axon types), so split's
        spans are single neurons (fits is monotone in a span's end), told from each row's and each pair's axons a
        window at a time instead of two probes per core. False (nothing counted) where a window has a pair that fits
        (the first one, which split reads anyway, tells most layers), or a neuron fits no core alone (split then
        names the resource)."""
        n, n_max, a_max = self.layer.size, int(spec["core.neurons"]), int(spec["core.axons"])
        held = copies[order]
        c = n if stop is None else min(n, stop)
        alone, levels, reads = [], [], [[] for _ in self.layer.projections]
        lo, (typed, _) = 0, self.windows.get(0, 1)
        while lo < c:
            alone_rows, paired, own = typed.alone()
            rows = len(typed.levels)
            keep = min(rows if lo + rows == n else rows - 1, c - lo)   # rows whose pair the window holds
            if _pairs_fit(paired, typed.levels, held[lo:], n_max, a_max)[:keep].any():
                return False
            alone.append(alone_rows[:keep])
            levels.append(typed.levels[:keep])
            for into, (row, ids) in zip(reads, own):
                into.append(ids[row < keep])
            lo += keep
            if lo < c:
                typed = self.windows.build(lo, min(n, lo + self.windows.width + 1))
        alone_c, levels_c = cat(alone), cat(levels)
        if held[:c].max(initial=0) > n_max or alone_c.max(initial=0) > a_max or levels_c.max(initial=0) > LEVELS:
            return False
        starts = np.arange(c)
        self.cores, self.neurons = c, c
        self.bind = _binding(starts, starts + 1, _running(held[:c]), _running(alone_c), levels_c, n_max, a_max)
        for p, ids in zip(self.layer.projections, reads):
            self._add(p.source, cat(ids))
        return True

    def _slot_bound(self, order: np.ndarray, copies: np.ndarray, spec: TargetSpec, stop: int | None) -> bool:
        """The count of a layer whose cores fill with neuron slots before axons (a pool read by every part of the next
        conv's fan-in split: its neurons' copies fill a core at one or two neurons): where each span as long as the
        slots allow opens at most a core's axons even with its rows' keys counted apart, and no neuron needs more
        than LEVELS levels, split's spans are those (fits is monotone in a span's end), with no search. A span's
        axons are then its distinct keys, read a window of whole spans at a time. False (nothing counted) at the
        first window where a span's summed keys exceed the axons: split then searches, or names the resource."""
        n, n_max, a_max = self.layer.size, int(spec["core.neurons"]), int(spec["core.axons"])
        m = n if stop is None else min(n, stop + n_max)
        held = copies[order[:m]]
        if held.max(initial=0) > n_max:
            return False
        neurons = _running(held)
        lo, hi = _greedy(neurons, np.zeros(m + 1), n_max, a_max, m if stop is None else min(m, stop))
        axons, levels, reads = np.zeros(lo.size, np.int64), [], [[] for _ in self.layer.projections]
        first = 0
        while first < lo.size:   # windows of whole spans, about `width` rows each
            last = max(first + 1, int(np.searchsorted(lo, lo[first] + self.windows.width, side="right")))
            typed = self.windows.build(int(lo[first]), int(hi[last - 1]))
            start, end = lo[first:last] - lo[first], hi[first:last] - lo[first]
            summed = _running(typed.row_keys())
            if np.any(summed[end] - summed[start] > a_max) or typed.levels.max(initial=0) > LEVELS:
                return False
            span = np.repeat(np.arange(last - first, dtype=np.int64), end - start)   # each row's span in the window
            for into, ptr, keys in zip(reads, typed.ptr, typed.keys):
                width = int(keys.max(initial=0)) + 1
                pairs = distinct(np.repeat(span, np.diff(ptr)) * width + keys, runs=True)   # (span, key) once each
                axons[first:last] += np.bincount(pairs // width, minlength=last - first)
                into.append((pairs % width) // LEVELS)
            levels.append(typed.levels)
            first = last
        for p, ids in zip(self.layer.projections, reads):   # the axons of layers' neurons (not the graph's inputs)
            self.axons += sum(i.size for i in ids) if p.source in self.sources else 0
            self._add(p.source, cat(ids), count=False)
        self.cores, self.neurons = lo.size, int(hi[-1]) if hi.size else 0
        self.bind = _binding(lo, hi, neurons, _at_ends(axons, hi, m), cat(levels), n_max, a_max)
        return True

    def _built_rows(self, m: int) -> tuple[np.ndarray, np.ndarray, Callable[[int], list[np.ndarray]]]:
        """Keys and levels of the first m rows in partition order, from their typed rows a window at a time, and
        per projection the inputs of the first n rows (`inputs(n)`)."""
        step = self.windows.width
        built = [_read_rows(self.windows.build(lo, min(m, lo + step))) for lo in range(0, m, step)]

        def inputs(n: int) -> list[np.ndarray]:
            return [cat([ids[k][:ptr[k][min(ptr[k].size - 1, n - w * step)]]
                         for w, (_, _, ptr, ids) in enumerate(built) if w * step < n])
                    for k in range(len(self.layer.projections))]
        return cat([b[0] for b in built]), cat([b[1] for b in built]), inputs

    def cost(self) -> float:
        """_cost from the counts: the cores plus the neuron slots their axons take in the source layers."""
        return self.cores + self.axons / self.n_max

    def per_neuron(self) -> float:
        return self.cost() / self.neurons


def _pairs_fit(paired: np.ndarray, levels: np.ndarray, held: np.ndarray, n_max: int, a_max: int) -> np.ndarray:
    """Per neighbouring pair of a window's rows, whether the two fit one core, from their axons (TypedRows.alone),
    weight levels and neuron slots (`held`, copies included, from the window's first row on)."""
    k = paired.size
    return ((held[:k] + held[1:k + 1] <= n_max) & (paired <= a_max)
            & (np.maximum(levels[:k], levels[1:k + 1]) <= LEVELS))


def _one_to_one(layer: Layer) -> bool:
    """Does every projection read one input per neuron, no input read twice (elementwise scales)?"""
    return all(p.shapes[0] == tuple(layer.shape) and all(isinstance(op, Scale) for op in p.chain)
               for p in layer.projections)


def _scaled_rows(layer: Layer, order: np.ndarray) -> tuple[np.ndarray, np.ndarray, Callable[[int], list[np.ndarray]]] | None:
    """_Count._built_rows without building rows, where each projection is one Scale (a fan-in split's sum): row r
    reads input order[r] of every projection whose rounded scale there is not 0, so its keys are those
    projections and its levels their distinct scales, worked out on the scales' own (broadcast) shape. None where
    a chain is longer or a row has more than LEVELS levels (bit planes: TypedRows types them). Its `inputs(n)` are,
    per projection, 1 at each input the first n rows read, in the source's order (inputs and neurons correspond),
    so the reads are added in sequence, not gathered and scattered at every input, and kept as booleans: a sum's
    int64 reads, one array per part written in full, page-faulted 1.3 GB on the dense paper-size net."""
    if not all(len(p.chain) == 1 and isinstance(p.chain[0], Scale) for p in layer.projections):
        return None
    scales = [np.rint(np.asarray(p.chain[0].scale, np.float64)) for p in layer.projections]
    shape = np.broadcast_shapes(*(np.shape(v) for v in scales))
    w = np.stack([np.broadcast_to(v, shape).ravel() for v in scales], axis=1)
    live = w != 0
    ranked = np.sort(np.where(live, w, np.inf), axis=1)
    new = np.concatenate([np.ones((len(w), 1), bool), ranked[:, 1:] != ranked[:, :-1]], axis=1)
    levels = (np.isfinite(ranked) & new).sum(axis=1).astype(np.int64)
    if levels.max(initial=0) > LEVELS:
        return None

    def per_row(v: np.ndarray) -> np.ndarray:
        return np.broadcast_to(v.reshape(shape), layer.shape).ravel()[order]

    def inputs(n: int) -> list[np.ndarray]:
        counted = np.zeros(layer.size, bool)
        counted[order[:n]] = True
        return [counted & np.broadcast_to(live[:, k].reshape(shape), layer.shape).ravel() for k in range(live.shape[1])]
    return per_row(live.sum(axis=1).astype(np.int64)), per_row(levels), inputs


def _read_rows(typed: TypedRows) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """What _Count._additive keeps of a window: keys and levels per row, and per projection the row pointer and
    each key's input, narrowed (the window's rows themselves are let go)."""
    return (typed.row_keys(), typed.levels, typed.ptr,
            [narrow(keys // LEVELS) for keys in typed.keys])


def _at_ends(per_span: np.ndarray, hi: np.ndarray, m: int) -> np.ndarray:
    """A running count over m positions from one count per span (spans contiguous from 0, ending at `hi`): each
    span's count is its end's value less its start's, as _binding reads it."""
    out = np.zeros(m + 1, np.int64)
    out[hi] = np.cumsum(per_span)
    return out


def _running(per_row: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(per_row)])


def _greedy(neurons: np.ndarray, axons: np.ndarray, n_max: float, a_max: float, end: int) -> tuple[np.ndarray, np.ndarray]:
    """split's greedy spans (starts before `end`) where a span's neurons and axons are running-sum differences:
    each start's longest span at once, then the chain of starts from 0 by pointer doubling (log steps)."""
    m = neurons.size - 1
    longest = np.minimum(np.searchsorted(neurons, neurons[:-1] + n_max, side="right"),
                         np.searchsorted(axons, axons[:-1] + a_max, side="right")) - 1
    jump = np.append(longest, m)
    chain = np.zeros(1, np.int64)
    while chain[-1] < end:
        chain = np.concatenate([chain, jump[chain]])
        jump = jump[jump]
    lo = np.unique(chain[chain < end])
    return lo, longest[lo]


def _binding(lo: np.ndarray, hi: np.ndarray, neurons: np.ndarray, axons: np.ndarray, levels: np.ndarray,
             n_max: float, a_max: float) -> tuple[str, float, float]:
    """split's binding resource over these spans: per span the resource closest to its limit (the first on a tie,
    as core_fits lists them), over spans the first with the highest ratio."""
    if lo.size == 0:
        return "neurons", 0.0, 1.0
    used = np.stack([neurons[hi] - neurons[lo], axons[hi] - axons[lo], np.maximum.reduceat(levels[:hi[-1]], lo)])
    allowed = np.array([n_max, a_max, LEVELS], dtype=np.float64)[:, None]
    worst = np.argmax(used / allowed, axis=0)
    ratio = (used / allowed)[worst, np.arange(lo.size)]
    j = int(np.argmax(ratio))
    if ratio[j] <= 0:
        return "neurons", 0.0, 1.0
    names = ("neurons (incl. fan-out copies)", "axons", "weight levels per neuron")
    return names[worst[j]], int(used[worst[j], j]), (n_max, a_max, LEVELS)[worst[j]]
