"""TrueNorth cores: crossbars with axon types, fan-out by replication or splitters, delays; the census.

A neuron's weight for axon i is its weight for i's type, so an input enters a core
on one axon per type some neuron of the core uses with it, and a neuron connects to
the copies whose types carry its weight: one copy, the weight's rank among the
neuron's <= 4 levels, or (bit planes, up to 16 levels) one per set bit of the weight
over a power-of-two type ladder (Typing). A neuron has one destination, so a neuron that
feeds F axons is replicated F times in its own core (the netlist holds it once, with
copies = F): copies share the core's axons and parameters, so they compute identical
spikes with no extra latency (unlike
splitter neurons, which add a tick per stage). Layers are built from the last to
the first, so every layer knows its fan-out before it is split.

A neuron whose copies cannot fit one core (it feeds more axons than a core has neurons)
sends its spikes through splitter cores instead (TRUENORTH.md §6): one axon per (splitter
core, source) drives neurons that fire on every input spike, each with its own destination.
Splitters cost as many neurons as copies would, plus one tick, so only those neurons get
them. Axon delays (1..15) then keep every layer's inputs aligned as the Graph has them,
despite the ticks splitters and fan-in splits add (neurocomp.partition.delays).

Here: how weights pick axon types (Typing), a window's typed rows (TypedRows) and the predicate the
partitioner splits a layer with (core_fits). targets/truenorth/cores.py builds the netlist from the spans they
choose, and targets/truenorth/census.py counts them without building it (count_cores).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp

from neurocomp.distinct import BITMAP_RANGE, distinct, renumbered
from neurocomp.errors import ResourceError, VerifyError
from neurocomp.ir.layers import Layer, Network
from neurocomp.ir.netlist import Netlist
from neurocomp.partition import neuron_order
from neurocomp.partition.split import conv_groups
from neurocomp.partition.rows import OrderedRows, Windows, bound_layer, support, window_width
from neurocomp.target import TargetSpec

LEVELS = 4
# The tile heights a (C, H, W) layer's positions are tried in (partition.split.neuron_order), each layer keeping the
# one that costs least (_cost): the best height depends on the kernel, the axons per input and the map's size.
# Cores with 2-row tiles everywhere -> the best of (1, 2, 3) per layer: micro3 2,405 -> 2,039 (its score in 3-row
# tiles of 15 positions), micro 7,930 -> 7,722, mini 13,230 -> 12,808 (raster rows everywhere: micro3 4,079 against
# 3,815 at 2 rows, before its score parts were cut finer). Trying 4 rows too gained nothing there. Each height
# costs one more partition of the layer (about 1.4x the compile time) and holds its cores until one is kept.
TILE_ROWS = (1, 2, 3)
# A layer above SAMPLED_LAYER neurons compares the heights on its first SAMPLE_NEURONS (cost per neuron) and
# partitions whole with the winner only: a paper-size conv (10^6 neurons) then costs one partition, not three.
# Layers of one geometry (the parts of a fan-in split) take the first one's height untried (TileHeights).
SAMPLED_LAYER, SAMPLE_NEURONS = 1 << 17, 1 << 16
# Padding (cells) _padded_levels allows beyond twice the synapses: a window of a few short rows pads freely.
PADDED_SLACK = 1 << 12


def row_levels(rows: list[tuple[str, sp.csr_matrix]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct weights per neuron over all projections (explicit zeros count), padded: (n, L), counts (n,)."""
    v = np.concatenate([m.data for _, m in rows])
    if v.size == 0:
        return np.zeros((n, 1)), np.zeros(n, dtype=np.int64)
    for path in (_few_levels, _padded_levels):
        found = path(rows, n, v)
        if found is not None:
            return found
    return _sorted_levels(rows, n, v)


def _padded_levels(rows: list[tuple[str, sp.csr_matrix]], n: int, v: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """row_levels from one sort along the rows of a padded (neurons, fan-in) array, where the rows are about equally
    long (a conv's, up to the border's clipped ones): 4x peeling off row minima 16 times on a paper-size window;
    None where padding would more than double the synapses."""
    mats = [m for _, m in rows if m.nnz]
    lens = [np.diff(m.indptr) for m in mats]
    width = max(int(sum(lens).max(initial=0)), 1)
    if n * width > 2 * v.size + PADDED_SLACK:
        return None
    pad = np.full((n, width), np.inf)
    filled = np.zeros(n, np.int64)
    for m, size in zip(mats, lens):
        r = np.repeat(np.arange(n), size)
        pad[r, filled[r] + np.arange(m.nnz) - np.repeat(m.indptr[:-1], size)] = m.data
        filled += size
    pad.sort(axis=1)
    new = np.isfinite(pad)
    new[:, 1:] &= pad[:, 1:] != pad[:, :-1]
    cnt = new.sum(axis=1).astype(np.int64)
    r, c = np.nonzero(new)
    table = np.zeros((n, max(int(cnt.max(initial=0)), 1)))
    table[r, np.arange(r.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)] = pad[r, c]
    return table, cnt


def _sorted_levels(rows: list[tuple[str, sp.csr_matrix]], n: int, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """row_levels by sorting the (row, weight) pairs: any weights. Integer weights (a quantised layer's) sort as one
    int64 key row * span + weight, 5x faster than the two-key lexsort that other weights take."""
    r = np.concatenate([np.repeat(np.arange(n), np.diff(m.indptr)) for _, m in rows])
    low, span = v.min(), v.max() - v.min() + 1
    if span * n < 2 ** 62 and np.array_equal(v, np.rint(v)):
        key = np.sort(r * int(span) + (v - low).astype(np.int64))
        r, v = key // int(span), key % int(span) + low
    else:
        order = np.lexsort((v, r))   # distinct (row, weight) pairs in that order: a 2-key sort, not unique(axis=1)'s
        r, v = r[order], v[order]
    new = np.ones(r.size, dtype=bool)
    new[1:] = (r[1:] != r[:-1]) | (v[1:] != v[:-1])
    r, v = r[new], v[new]
    cnt = np.bincount(r, minlength=n)
    width = max(int(cnt.max()), 1)
    table = np.zeros((n, width))
    starts = np.concatenate([[0], np.cumsum(cnt)[:-1]])
    table[r, np.arange(r.size) - starts[r]] = v
    return table, cnt


def _few_levels(rows: list[tuple[str, sp.csr_matrix]], n: int, v: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """row_levels without a sort where the window holds at most 63 distinct integer weights (trinary, 4-level or
    bit-plane layers): each neuron's set of weights is a bit mask, OR-ed along its rows; None otherwise."""
    low, high = v.min(), v.max()
    if high - low > 1 << 16 or not np.array_equal(v, np.rint(v)):
        return None
    present = np.flatnonzero(np.bincount((v - low).astype(np.int64)))
    if present.size > 63:
        return None
    code = np.zeros(int(high - low) + 1, np.int64)
    code[present] = np.arange(present.size)
    mask = np.zeros(n, np.int64)
    for _, m in rows:
        if m.nnz:
            bits = np.left_shift(1, code[(m.data - low).astype(np.int64)])
            filled = np.diff(m.indptr) > 0
            mask[filled] |= np.bitwise_or.reduceat(bits, m.indptr[:-1][filled])
    cnt = np.bitwise_count(mask).astype(np.int64)
    table = np.zeros((n, max(int(cnt.max()), 1)))
    for k, value in enumerate(present + low):
        has = (mask >> k) & 1 == 1
        table[has, np.bitwise_count(mask[has] & ((1 << k) - 1))] = value
    return table, cnt


class TypedRows:
    """A layer's rows in partition order with each synapse's axon types, so a core only opens the
    (input, type) axons some neuron uses. Per projection, `keys` (input * LEVELS + type) are grouped
    by row as `ptr` says: one key per synapse for rank typing, one per set bit for bit planes."""

    def __init__(self, layer: Layer, order: np.ndarray, weight_max: int, keep: bool = False) -> None:
        self.rows = OrderedRows(layer, order)
        table, cnt = row_levels(self.rows.rows, len(order))
        self.typing = Typing.of(table, cnt, weight_max)
        self.levels = self.typing.need
        self.support = [support(p, order) for p in layer.projections] if keep else None

    @functools.cached_property
    def _expanded(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per projection (row pointer, keys), typed when first asked: a bound kernel's layer counts its axons on its
        support, so its census never types a synapse (the two-status score's 1,152 parts)."""
        return [self.typing.expand(m) for _, m in self.rows.rows]

    @property
    def ptr(self) -> list[np.ndarray]:
        return [ptr for ptr, _ in self._expanded]

    @property
    def keys(self) -> list[np.ndarray]:
        return [keys for _, keys in self._expanded]

    @functools.cached_property
    def firsts(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per projection: row pointer, and each key's previous occurrence (axon_count)."""
        counted = [(m.indptr, m.indices) for m in self.support] if self.support is not None else self._expanded
        return [(ptr, _previous(ids)) for ptr, ids in counted]

    def row_keys(self) -> np.ndarray:
        """Keys (axons, where no two rows share an input) per row, over all projections."""
        return sum((np.diff(ptr) for ptr, _ in self._expanded), np.zeros(len(self.rows.order), np.int64))

    def axon_keys(self, lo: int, hi: int) -> list[np.ndarray]:
        if self.support is not None:
            return [_all_types(m.indices[m.indptr[lo]:m.indptr[hi]]) for m in self.support]
        return [distinct(k[p[lo]:p[hi]]) for p, k in self._expanded]

    def most_levels(self, lo: int, hi: int) -> int:
        """The most levels (axon types) a neuron of rows [lo, hi) needs."""
        return int(self.levels[lo:hi].max(initial=0))

    def alone(self) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """axon_count(r, r + 1) per row r and axon_count(r, r + 2) per r < n - 1, for all rows at once, and per
        projection the (row, input) of each axon a row opens alone (an input once per type, axon_keys' // LEVELS):
        the census tells a layer whose neurons each fill a core alone (no two neighbours fit one) without probing
        every core."""
        n = len(self.levels)
        alone, paired, reads = np.zeros(n, np.int64), np.zeros(max(n - 1, 0), np.int64), []
        inputs = [m.indices for m in self.support] if self.support is not None else [k // LEVELS for _, k in self._expanded]
        per_input = LEVELS if self.support is not None else 1
        for (ptr, prev), ids in zip(self.firsts, inputs):
            row = np.repeat(np.arange(n), np.diff(ptr))
            first = prev < ptr[row]
            alone += np.bincount(row[first], minlength=n)
            later = np.flatnonzero(row > 0)
            before = later[prev[later] < ptr[row[later] - 1]]
            paired += np.bincount(row[before] - 1, minlength=n)[:n - 1]
            reads.append((np.repeat(row[first], per_input), np.repeat(ids[first], per_input)))
        return per_input * alone, per_input * (paired + alone[:-1]), reads

    def axon_count(self, lo: int, hi: int) -> int:
        """sum(u.size for u in axon_keys(lo, hi)) without sorting: a key counts at its first synapse in the
        span, the one whose previous occurrence lies before it (the partitioner asks this several times a core)."""
        per_input = LEVELS if self.support is not None else 1
        return per_input * sum(int(np.count_nonzero(prev[ptr[lo]:ptr[hi]] < ptr[lo])) for ptr, prev in self.firsts)


@dataclass(frozen=True)
class Typing:
    """How each neuron's weights pick axon types. Rank typing (<= 4 distinct weights): type = the
    weight's rank among the neuron's levels, one synapse per weight. Bit planes (more, all multiples
    of a = their gcd, q = w / a): the type weights are a * (1, 2, .., 2^(p-1)), the top one negated
    when q has both signs (two's complement, q in [-2^(p-1), 2^(p-1) - 1]) and all of them when q <= 0;
    a weight connects to the types of its bits, so the crossbar sums to exactly a * q."""

    weights: np.ndarray   # (n, LEVELS) per-type weights
    need: np.ndarray      # levels a neuron needs (> LEVELS: it fits no core)
    plane: np.ndarray     # bit-plane neurons
    a: np.ndarray
    p: np.ndarray         # planes per neuron
    mixed: np.ndarray
    table: np.ndarray     # sorted distinct weights (rank typing)

    @classmethod
    def of(cls, table: np.ndarray, cnt: np.ndarray, weight_max: int) -> "Typing":
        t = table.astype(np.int64)
        plane = cnt > LEVELS
        a, p, mixed = np.ones(len(t), np.int64), np.zeros(len(t), np.int64), np.zeros(len(t), bool)
        rows = np.flatnonzero(plane)   # only these need a ladder (trinary or <= 4-level layers have none)
        a[rows], p[rows], mixed[rows], found = _ladders(t[rows], weight_max)
        plane[rows] = found
        need = np.where(plane, p, cnt)
        weights = np.zeros((len(t), LEVELS), dtype=np.int64)
        width = min(t.shape[1], LEVELS)
        weights[:, :width] = t[:, :width]
        k = np.arange(LEVELS)
        pw = (1 << k)[None, :] * (k[None, :] < p[:, None])
        pw = np.where(mixed[:, None] & (k[None, :] == p[:, None] - 1), -pw, pw)
        pw = np.where((t.max(axis=1, initial=0) <= 0)[:, None], -pw, pw)
        weights[plane] = (a[:, None] * pw)[plane]
        return cls(weights, need, plane, a, p, mixed, t)

    def _rank(self, rows: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Each weight's rank among its neuron's levels (its axon type under rank typing)."""
        return np.argmax(self.table[rows, :LEVELS] == w[:, None], axis=1)

    def expand(self, m: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """(row pointer, keys) of one projection's synapses by type."""
        r = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
        inputs = m.indices.astype(np.int64)
        if m.nnz == 0:
            return m.indptr.astype(np.int64), np.zeros(0, np.int64)
        plane = self.plane[r]
        if not plane.any():
            return m.indptr.astype(np.int64), inputs * LEVELS + self._rank(r, m.data)
        q = m.data.astype(np.int64) // self.a[r]
        mask = np.where(self.mixed[r], q & ((1 << self.p[r]) - 1), np.abs(q))
        ranked = ~plane
        if ranked.any():   # rank typing only where the neuron has no ladder: bits-mode layers are mostly ladders
            mask[ranked] = 1 << self._rank(r[ranked], m.data[ranked])
        count = SET_BITS[mask]
        ends = np.cumsum(count)
        nth = np.arange(int(ends[-1])) - np.repeat(ends - count, count)
        keys = np.repeat(inputs * LEVELS, count) + TYPE_BITS[np.repeat(mask, count), nth]
        return np.concatenate([[0], ends])[m.indptr].astype(np.int64), keys


# Per 4-bit mask: its set bits, and the k-th of them (ascending): a synapse's types without a (synapses, 4) array.
SET_BITS = np.array([bin(v).count("1") for v in range(1 << LEVELS)], np.int64)
TYPE_BITS = np.array([[b for b in range(LEVELS) if v >> b & 1] + [0] * (LEVELS - bin(v).count("1"))
                 for v in range(1 << LEVELS)], np.int64)


def _ladders(t: np.ndarray, weight_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row of distinct weights: scale a, planes p, two's complement or not, and whether any ladder fits. A row
    matters only through its gcd, least and greatest weight: floor division by a_d > 0 keeps the order."""
    g = np.maximum(np.gcd.reduce(t, axis=1), 1)
    low, high = t.min(axis=1, initial=0), t.max(axis=1, initial=0)
    a, p, mixed, found = np.ones_like(g), np.zeros_like(g), np.zeros(len(t), bool), np.zeros(len(t), bool)
    for d in range(1, 2 ** LEVELS):   # the scale: the gcd over the fewest d that fits the planes in the weights
        a_d = np.maximum(g // d, 1)
        lo, hi = low // a_d, high // a_d
        mix = (lo < 0) & (hi > 0)
        p_d = np.where(mix, 1 + np.maximum(_bit_length(hi), _bit_length(-lo - 1)), _bit_length(np.maximum(hi, -lo)))
        good = ~found & (g % d == 0) & (p_d <= LEVELS) & (a_d << np.maximum(p_d - 1, 0) <= weight_max)
        a, p, mixed = np.where(good, a_d, a), np.where(good, p_d, p), np.where(good, mix, mixed)
        found |= good
        if found.all():   # later scales change only rows not found yet
            break
    return a, p, mixed, found


def _bit_length(x: np.ndarray) -> np.ndarray:
    """Bits of non-negative integers (0 -> 0); frexp is exact on integers below 2^53."""
    return np.frexp(x.astype(np.float64))[1].astype(np.int64)


def kernel_layers(net: Network, partials: set[str]) -> set[str]:
    """Layers whose tables a bound kernel sets: those reading a bound projection, and those its partial
    sums feed (a fan-in split moves the kernel's bias, hence the layer's scale, there). Their cores open
    all 4 types of every input their support may read (partition.rows.support), so a new kernel
    rewrites crossbar bits, weights and registers only (neurocomp.bind)."""
    bound = {layer.name for layer in net.layers if bound_layer(layer)}
    return bound | {layer.name for layer in net.layers if any(p.source in bound & partials for p in layer.projections)}


def _previous(ids: np.ndarray) -> np.ndarray:
    """For each entry, the index of the last earlier entry with the same id (-1 for a first occurrence)."""
    order = _stable_order(ids)
    prev = np.full(ids.size, -1, dtype=np.int64)
    same = ids[order[1:]] == ids[order[:-1]]
    prev[order[1:][same]] = order[:-1][same]
    return prev


def _stable_order(ids: np.ndarray) -> np.ndarray:
    """argsort(ids, kind="stable"). Ids over a narrow range (a window's keys) are ranked densely and sorted by the
    ranks' 16-bit digits, low then high, each a radix pass (numpy sorts 16-bit integers stably by radix):
    1.8x a comparison sort on a window of conv rows."""
    if ids.size == 0 or ids.dtype.kind not in "iu" or int(ids.max()) - int(ids.min()) >= BITMAP_RANGE * ids.size:
        return np.argsort(ids, kind="stable")
    _, rank = renumbered(ids)
    order = np.argsort(rank.astype(np.uint16), kind="stable")
    high = rank >> 16
    return order[np.argsort(high[order].astype(np.uint16), kind="stable")] if high.any() else order


def _all_types(inputs: np.ndarray) -> np.ndarray:
    return (distinct(inputs)[:, None] * LEVELS + np.arange(LEVELS)[None]).ravel()


def held_slots(order: np.ndarray, copies: np.ndarray) -> np.ndarray:
    """The neuron slots (copies included) the first k neurons of `order` take, k = 0 .. n: core_fits and
    core_reach read a span's neurons from it."""
    return np.concatenate([[0], np.cumsum(copies[order])])


def core_reach(held: np.ndarray, spec: TargetSpec) -> Callable[[int], int]:
    """split's `reach` for core_fits: the last span end whose neurons, copies included, fill no more than a core."""
    n_max = int(spec["core.neurons"])
    return lambda lo: int(np.searchsorted(held, held[lo] + n_max, side="right")) - 1


def core_fits(windows: Windows[TypedRows], held: np.ndarray, spec: TargetSpec):
    n_max, a_max = spec["core.neurons"], spec["core.axons"]

    def fits(lo: int, hi: int) -> tuple[bool, str, float, float]:
        typed, off = windows.get(lo, hi)
        k = typed.most_levels(lo - off, hi - off)
        axons = typed.axon_count(lo - off, hi - off)
        usage = [("neurons (incl. fan-out copies)", int(held[hi] - held[lo]), n_max), ("axons", axons, a_max),
                 ("weight levels per neuron", k, LEVELS)]
        worst = max(usage, key=lambda u: u[1] / u[2])
        return all(u[1] <= u[2] for u in usage), *worst

    return fits


def split_hint(layer: Layer, spec: TargetSpec, partials: set[str]):
    """What to change when one neuron of `layer` fits no TrueNorth core."""
    def hint(resource: str, used: float, allowed: float) -> str:
        if resource == "axons" and any(p.source in partials for p in layer.projections):
            return (f"{layer.name}'s fan-in was split into more partial sums than a core has axons, and a second "
                    f"level of partial sums is not implemented: compile with --tn-weights trinary (groups twice as "
                    f"wide) or reduce {layer.name}'s fan-in (conv groups, pooling before a flatten)")
        if resource == "axons":
            return (f"{layer.name} needs {used:g} axons per neuron (each input enters once per weight level it uses) and a "
                    f"core has {allowed:g}; the automatic fan-in split only divides inputs that pass an Affine or Conv2d, "
                    f"so shrink {layer.name}'s pooling or identity inputs (smaller window, fewer channels) or put a "
                    f"Conv2d with groups in front of it")
        if resource == "weight levels per neuron":
            return (f"a neuron of {layer.name} stores {used:g} distinct weights over all its projections, composed as the "
                    f"core stores them (a pooling before a weighted op sums its weights; parallel projections add their "
                    f"levels), and has {allowed:g} axon types (bit planes reach more only as a * q, q a 4-bit integer): give "
                    f"its projections one shared set of weights, or put a neuron layer between the pooling and the op")
        return (f"{layer.name}'s neurons feed more axons than one core of {spec['core.neurons']} neurons can hold copies "
                f"for even behind splitters; split the next layer into smaller layers")
    return hint


class TileHeights:
    """The tile heights each layer is partitioned in, remembered per geometry (its structure, weights aside):
    the first layer of a geometry tries TILE_ROWS in full (above SAMPLED_LAYER neurons, on its first
    SAMPLE_NEURONS, then the winner in full), and every later one takes its winner untried. The parts of a fan-in
    split (hundreds of layers on a dense paper-size conv, equal but for their weights) then cost one partition
    each, not three. build_netlist and the census choose alike, so the census stays exact."""

    def __init__(self) -> None:
        self._chosen: dict[tuple, int] = {}

    def of(self, layer: Layer, sampled: Callable[[int], float]) -> tuple[int, ...]:
        """The heights to partition `layer` in whole and keep the cheapest of (`sampled`: a height's cost per
        neuron on the first neurons). The three samples are measured in turn: a fork of a paper-size census (30-90
        ms) costs about what a sample does (15-75 ms)."""
        if len(layer.shape) != 3:
            return (1,)
        key = geometry(layer)
        if key not in self._chosen and layer.size > SAMPLED_LAYER:
            self._chosen[key] = min(TILE_ROWS, key=sampled)
        return (self._chosen[key],) if key in self._chosen else TILE_ROWS

    def decided(self, layer: Layer) -> bool:
        """Is the height `layer` is partitioned in known already (so `of` tries nothing for it)?"""
        return len(layer.shape) != 3 or geometry(layer) in self._chosen

    def kept(self, layer: Layer, band: int) -> None:
        """The height `layer` was partitioned in, for the later layers of its geometry."""
        if len(layer.shape) == 3:
            self._chosen.setdefault(geometry(layer), band)


def geometry(layer: Layer) -> tuple:
    """A layer's structure with its weights left out: its shape and neuron kind, and per projection the source,
    shapes and each op's kind with its settings (arrays by their shape)."""
    def settings(node) -> tuple:
        return (type(node).__name__,) + tuple(
            (f.name, np.shape(v) if isinstance(v, np.ndarray) else v)
            for f in dataclasses.fields(node) if f.name != "name" for v in (getattr(node, f.name),))
    return (layer.shape, type(layer.neuron).__name__) + tuple(
        (p.source, p.shapes, tuple(settings(op) for op in p.chain)) for p in layer.projections)


class Orders:
    """neuron_order by layer shape, conv groups and tile height, the last few kept: the parts of a fan-in split, in a
    row, share them (a paper-size conv's hundreds of parts took a third of a second to order their neurons)."""

    def __init__(self, kept: int = len(TILE_ROWS)) -> None:
        self.kept, self._orders = kept, {}

    def of(self, layer: Layer, band: int) -> np.ndarray:
        key = (layer.shape, band, conv_groups(layer))
        if key not in self._orders:
            if len(self._orders) >= self.kept:
                self._orders.clear()
            self._orders[key] = neuron_order(layer, band)
            self._orders[key].setflags(write=False)
        return self._orders[key]


def typed_windows(layer: Layer, band: int, keep: bool, spec: TargetSpec,
                  orders: Orders | None = None) -> tuple[np.ndarray, Windows[TypedRows]]:
    """The layer's partition order in tiles `band` rows high (from `orders` where given), and its typed rows a window
    at a time."""
    order = neuron_order(layer, band) if orders is None else orders.of(layer, band)
    wmax = int(spec["core.weight_max"])
    return order, Windows(layer.size, lambda lo, hi: TypedRows(layer, order[lo:hi], wmax, keep),
                          window_width(layer, order, int(spec["core.neurons"])))


def verify_netlist(n: Netlist, spec: TargetSpec) -> None:
    over = np.bincount(n.edge_src, minlength=n.n_neurons) - n.n_copies() * spec["core.destinations_per_neuron"]
    if over.size and over.max() > 0:
        bad = int(np.argmax(over))
        raise VerifyError(f"core {n.neuron_core()[bad]}: neuron {bad} has more destinations than its "
                          f"{n.n_copies()[bad]} copies have (one each)")
    sources = np.concatenate([n.edge_axon, n.in_axon])
    if sources.size and np.bincount(sources).max() > 1:
        bad = int(np.argmax(np.bincount(sources)))
        raise VerifyError(f"core {n.axon_core()[bad]}: axon {bad} has two sources (spikes would merge)")
    types = n.syn_tables["axon_type"]
    if types.size and (types.min() < 0 or types.max() >= spec["core.axon_types"]):
        raise VerifyError("axon type outside 0..3")
    w = n.params["w"]
    if np.abs(w).max(initial=0) > spec["core.weight_max"]:
        core = int(n.neuron_core()[np.argmax(np.abs(w).max(axis=1))])
        raise ResourceError(f"core {core}", "synaptic weight", float(np.abs(w).max()), spec["core.weight_max"],
                            hint="a pooled or composed weight exceeds the 9-bit weight; add a neuron layer between the ops")
