"""A plain conv layer's typed axons counted from its kernel, for the census: no synapse rows are built.

A neuron's synapses are its kernel's taps that fall inside the input, so neurons of one output channel at
positions the padding clips alike (a border class: interior, edges, corners) have the same weights, the same
levels and the same axon types (mapping.Typing, applied to one row per class and channel). A core's span in
partition order (group, then position, then channel: partition.split.neuron_order) is a few runs of channels
at one position each; the types each run opens per tap are an OR over its channels, read from a sparse table
in two lookups, and an input's axons are the types its runs open. So a span's axons cost a few hundred
operations instead of a window of typed rows: the census of a dense paper-size conv's fan-in parts, equal but
for their weights, spent most of its time building such windows (mapping.TypedRows).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from neurocomp.ir.graph import Conv2d, Crop
from neurocomp.ir.layers import Layer
from neurocomp.target import TargetSpec
from neurocomp.targets.truenorth.mapping import LEVELS, SET_BITS, TYPE_BITS, Typing, row_levels

# Channels per conv group below which a span is many short runs (a depthwise conv's, a converted pool's: one
# channel over up to a core's positions), which the typed windows count faster: the paper-size SiamSNN's pool
# layers took 2.2 and 4.2 s here against 1.4 and 2.1 s there.
MIN_RUN = 16


def conv_counts(layer: Layer, order: np.ndarray, keep: bool, spec: TargetSpec) -> "ConvCounts | None":
    """What core_fits and the census read a span's axons from in place of typed rows: ConvCounts for a layer whose
    one projection is one Conv2d, maybe cropped, with MIN_RUN channels per group or more (its cores opening only
    the types they use); None for any other."""
    if keep or not _plain_conv(layer) or _channels_per_group(layer) < MIN_RUN:
        return None
    return ConvCounts(layer, order, int(spec["core.weight_max"]))


def _channels_per_group(layer: Layer) -> int:
    op = layer.projections[0].chain[0]
    return op.weight.shape[0] // op.groups


def _plain_conv(layer: Layer) -> bool:
    """One projection, a Conv2d (not a bound Correlation) from a (C, H, W) source, maybe cropped after."""
    if len(layer.projections) != 1 or len(layer.shape) != 3:
        return False
    p = layer.projections[0]
    return (bool(p.chain) and type(p.chain[0]) is Conv2d and len(p.shapes[0]) == 3
            and (len(p.chain) == 1 or (len(p.chain) == 2 and isinstance(p.chain[1], Crop))))


class ConvCounts:
    """TypedRows' levels, axon_count and axon_keys of a plain conv layer, over spans of its partition order."""

    def __init__(self, layer: Layer, order: np.ndarray, weight_max: int) -> None:
        op = layer.projections[0].chain[0]
        cin, h, w = layer.projections[0].shapes[0]
        cout, ho, wo = layer.shape
        cin_g, kh, kw = op.weight.shape[1:]
        live, kept = op.live_taps
        ci, ky, kx = np.unravel_index(live, (cin_g, kh, kw))
        crop = layer.projections[0].chain[1:]   # the conv's output rows and columns the layer keeps
        top, left = (crop[0].top, crop[0].left) if crop else (0, 0)
        y0 = (np.arange(ho) + top) * op.stride[0] - op.padding[0]
        x0 = (np.arange(wo) + left) * op.stride[1] - op.padding[1]
        ypat, ycls = np.unique((y0[:, None] + np.arange(kh) >= 0) & (y0[:, None] + np.arange(kh) < h), axis=0,
                               return_inverse=True)
        xpat, xcls = np.unique((x0[:, None] + np.arange(kw) >= 0) & (x0[:, None] + np.arange(kw) < w), axis=0,
                               return_inverse=True)
        inside = (ypat[:, None, ky] & xpat[None, :, kx]).reshape(len(ypat) * len(xpat), live.size)   # class x tap
        self.n_pos, self.per_group, self.cin_g = ho * wo, cout // op.groups, cin_g
        self.pos_class = (ycls.reshape(-1)[:, None] * len(xpat) + xcls.reshape(-1)[None, :]).ravel()
        self.pos_base = ((y0[:, None] * w) + x0[None, :]).ravel().astype(np.int64)
        self.tap_off = ((ci * h + ky) * w + kx).astype(np.int64)
        self.plane = h * w
        self.need, masks = _class_types(np.rint(kept), inside, weight_max)
        self.tables = _or_table(masks, self.per_group)
        self.order = np.asarray(order, np.int64)

    def get(self, lo: int, hi: int) -> tuple["ConvCounts", int]:
        return self, 0

    def most_levels(self, lo: int, hi: int) -> int:
        n = self.order[lo:hi]
        return int(self.need[self.pos_class[n % self.n_pos], n // self.n_pos].max(initial=0))

    def _inputs(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """The distinct inputs the span's neurons read, ascending, and the types each opens (a bit mask)."""
        if hi <= lo:
            return np.zeros(0, np.int64), np.zeros(0, np.uint8)
        (c0, p0), (c1, p1) = divmod(int(self.order[lo]), self.n_pos), divmod(int(self.order[hi - 1]), self.n_pos)
        if p0 == p1 and c0 // self.per_group == c1 // self.per_group:   # one run: the channels between, in order
            return self._one_run(c0, c1 + 1, p0)
        n = self.order[lo:hi]
        co, pos = n // self.n_pos, n % self.n_pos
        group = co // self.per_group
        starts = np.flatnonzero(np.concatenate([[True], (pos[1:] != pos[:-1]) | (group[1:] != group[:-1])]))
        ends = np.append(starts[1:], n.size)
        first, last, at = co[starts], co[ends - 1] + 1, pos[starts]
        depth = np.frexp((last - first).astype(np.float64))[1] - 1   # floor(log2(run length))
        masks = np.empty((starts.size, self.tap_off.size), np.uint8)
        cls = self.pos_class[at]
        for j in np.unique(depth):
            k = depth == j
            table = self.tables[j]
            masks[k] = table[cls[k], first[k]] | table[cls[k], last[k] - (1 << j)]
        ids = (group[starts] * self.cin_g * self.plane + self.pos_base[at])[:, None] + self.tap_off[None, :]
        used = masks != 0
        ids, masks = ids[used], masks[used]
        if ids.size:   # runs at other positions may read the same input
            order = np.argsort(ids, kind="stable")
            ids, masks = ids[order], masks[order]
            new = np.concatenate([[True], ids[1:] != ids[:-1]])
            masks, ids = np.bitwise_or.reduceat(masks, np.flatnonzero(new)), ids[new]
        return ids, masks

    def _one_run(self, first: int, last: int, pos: int) -> tuple[np.ndarray, np.ndarray]:
        """_inputs of channels first .. last - 1 at one position: one OR, the taps' inputs ascending."""
        j = (last - first).bit_length() - 1
        cls, table = self.pos_class[pos], self.tables[j]
        masks = table[cls, first] | table[cls, last - (1 << j)]
        used = masks != 0
        base = first // self.per_group * self.cin_g * self.plane + self.pos_base[pos]
        return base + self.tap_off[used], masks[used]

    def axon_count(self, lo: int, hi: int) -> int:
        return int(SET_BITS[self._inputs(lo, hi)[1]].sum())

    def axon_keys(self, lo: int, hi: int) -> list[np.ndarray]:
        """The span's axons as TypedRows keys (input * LEVELS + type), ascending."""
        ids, masks = self._inputs(lo, hi)
        count = SET_BITS[masks]
        nth = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        return [np.repeat(ids * LEVELS, count) + TYPE_BITS[np.repeat(masks, count), nth]]


def _class_types(weights: np.ndarray, inside: np.ndarray, weight_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Per (border class, output channel): the levels its neurons need and, per tap, the types the tap's synapse
    uses (bit mask; 0 where it has none), by mapping.Typing on one row each, as TypedRows types real rows."""
    n_cls, (cout, taps) = inside.shape[0], weights.shape
    cls, co, tap = np.nonzero(inside[:, None, :] & (weights != 0)[None, :, :])
    row = cls * cout + co
    m = sp.csr_matrix((weights[co, tap], (row, tap)), shape=(n_cls * cout, taps))
    m.sort_indices()
    table, cnt = row_levels([("", m)], m.shape[0])
    typing = Typing.of(table, cnt, weight_max)
    ptr, keys = typing.expand(m)
    masks = np.zeros((n_cls * cout, taps), np.uint8)
    if keys.size:   # a synapse's keys (one per type) are consecutive: a new synapse where the row or tap changes
        row, tap = np.repeat(np.arange(m.shape[0]), np.diff(ptr)), keys // LEVELS
        synapse = np.flatnonzero(np.concatenate([[True], (row[1:] != row[:-1]) | (tap[1:] != tap[:-1])]))
        bits = np.left_shift(1, keys % LEVELS).astype(np.uint8)
        masks[row[synapse], tap[synapse]] = np.bitwise_or.reduceat(bits, synapse)
    return typing.need.reshape(n_cls, cout), masks.reshape(n_cls, cout, taps)


def _or_table(masks: np.ndarray, span: int) -> list[np.ndarray]:
    """Sparse table over output channels: table[j][c, k] ORs the masks of channels k .. k + 2^j - 1 (class c),
    for runs up to `span` channels (one conv group)."""
    tables = [masks]
    while (2 << (len(tables) - 1)) <= span:
        half = 1 << (len(tables) - 1)
        prev = tables[-1]
        tables.append(prev[:, :-half] | prev[:, half:])
    return tables
