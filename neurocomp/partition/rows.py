"""Materialise the rows one core needs, per incoming projection, a window of a layer at a time."""
from __future__ import annotations

import dataclasses
from typing import Callable, Generic, TypeVar

import numpy as np
import scipy.sparse as sp

from neurocomp.ir.fold import pattern
from neurocomp.ir.graph import Affine, Conv2d, Correlation, Node, Scale
from neurocomp.ir.layers import Layer, Projection

T = TypeVar("T")
# Synapses of the rows built at a time, whatever the layer's size: ~25 MB of CSR, and temporaries of 16 MB that glibc
# reuses from its heap. At 2^24 (128 MB arrays, each mapped and page-faulted afresh) a 10^6-neuron Loihi compile spent
# 15 s of its 23 s in the kernel; at 2^21 it takes 15 s in all, with the same cores.
WINDOW_SYNAPSES = 1 << 21
# A window's first width, as a fraction of the full one (Windows). 1/64 against 1/16: the TrueNorth census of the
# paper-size SiamSNN (hybrid score) built 5.0 x 10^6 rows instead of 1.0 x 10^7 for the same 1.87 x 10^6 rows of
# searched cores, 78 s instead of 107 s; 1/256 built as many rows in twice the windows (83 s); full3g compiles alike.
GROWTH = 64
# Rows below which a window's build costs about the same whatever its size (a fan-in part of 289 neurons: 1.7 ms).
WHOLE_ROWS = 1024


def is_bound(p: Projection) -> bool:
    """Does a Correlation (weights written at run time, neurocomp.bind) feed this projection?"""
    return any(isinstance(op, Correlation) for op in p.chain)


def structural(p: Projection) -> Projection:
    """The projection with 1 wherever a synapse can exist, whatever kernel is bound (ir.fold.pattern:
    a Correlation's reach, a fixed op's non-zeros); its matrix is the chain's structural reach
    through groups, strides, padding and pools, never a kernel's values."""
    return dataclasses.replace(p, chain=tuple(pattern(op) for op in p.chain))


def support(p: Projection, rows: np.ndarray) -> sp.csr_matrix:
    """Rows of the support of projection `p` into a layer that reads a bound projection: any kernel's
    synapses lie inside it. A kernel sets that layer's scale, so the other projections' weights may
    round to 0 at some scale: they keep every weight of their ops' shapes."""
    return (structural(p) if is_bound(p) else _dense(p)).matrix(rows)


def _dense(p: Projection) -> Projection:
    """The projection with every weight of each op's shape set to 1 (its values never matter)."""
    def ones(op: Node) -> Node:
        if isinstance(op, (Affine, Conv2d)):
            return dataclasses.replace(op, weight=np.ones(op.weight.shape), bias=None)
        if isinstance(op, Scale):
            return dataclasses.replace(op, scale=np.ones(np.shape(op.scale)))
        return op
    return dataclasses.replace(p, chain=tuple(ones(op) for op in p.chain))


def bound_layer(layer: Layer) -> bool:
    """Does the layer read a bound projection (so all its projections keep their support)?"""
    return any(is_bound(p) for p in layer.projections)


def chunk_rows(layer: Layer, chunk: np.ndarray, keep_support: bool = False) -> list[tuple[str, sp.csr_matrix]]:
    """(source name, integer (len(chunk), n_source) matrix) for each projection into the chunk.
    keep_support: a layer reading a bound projection keeps explicit zeros over each projection's
    support, so the synapse tables of a core do not depend on the kernel it was compiled with."""
    out = []
    keep = keep_support and bound_layer(layer)
    for p in layer.projections:
        m = p.matrix(chunk)
        if m.data.dtype.kind == "f":   # integer rows (a quantised conv's) are exact already
            np.rint(m.data, out=m.data)   # in place: a window's data are tens of MB, each fresh array page-faulted
        m.eliminate_zeros()
        if keep:
            m = _on_support(m, support(p, chunk))
        out.append((p.source, m))
    return out


def _on_support(values: sp.csr_matrix, pattern: sp.csr_matrix) -> sp.csr_matrix:
    """`pattern`'s sparsity with `values`' entries (explicit zeros where values has none)."""
    out = pattern.tocsr(copy=True)
    out.sort_indices()
    out.data = np.asarray(values[out.nonzero()[0], out.indices]).ravel() if out.nnz else out.data
    return out


class OrderedRows:
    """Integer rows of some of a layer's neurons (`order`), built once so that trying a span is a slice."""

    def __init__(self, layer: Layer, order: np.ndarray, keep_support: bool = False) -> None:
        self.order = order
        self.rows = chunk_rows(layer, order, keep_support)
        self.near = [_near_ids(m.indices, p.shapes[0]) for p, (_, m) in zip(layer.projections, self.rows)]

    def per_input(self, lo: int, hi: int) -> np.ndarray:
        """Synapses of each distinct input over rows [lo, hi), all projections (in no set order).
        Counted over `near` ids, whose range for a spatial tile is its receptive field, not the layer."""
        parts = []
        for ids, (_, m) in zip(self.near, self.rows):
            part = ids[m.indptr[lo]:m.indptr[hi]]
            if part.size:
                counts = np.bincount(part - part.min())
                parts.append(counts[counts > 0])
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _near_ids(cols: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inputs renumbered position-major ((C, H, W) sources: all channels of a pixel together), so the
    inputs of a spatial tile have nearby ids; one divmod, in int32 where the source fits."""
    if len(shape) != 3:
        return cols.astype(np.int64)
    c, h, w = shape
    ids = np.int32 if c * h * w < 2 ** 31 else np.int64
    channel, position = np.divmod(cols.astype(ids, copy=False), ids(h * w))
    position *= ids(c)
    position += channel
    return position


def window_width(layer: Layer, order: np.ndarray, core_neurons: int) -> int:
    """Neurons per window: WINDOW_SYNAPSES at the fan-in of the first rows, and at least a core's worth (a span
    that outgrows it rebuilds the window, Windows.get). A floor of 4 cores' worth made a 1,200-input conv's windows
    5 x 10^6 synapses, whose arrays glibc maps and page-faults afresh each time: its search took 3.6 s, now 2.4 s."""
    probe = order[:64]
    fan_in = sum(m.nnz for _, m in chunk_rows(layer, probe)) / max(probe.size, 1)
    return int(max(core_neurons, WINDOW_SYNAPSES // max(fan_in, 1.0)))


class Windows(Generic[T]):
    """Per-window row data (built by `build(lo, hi)` over partition positions [lo, hi)), so the
    partitioner holds a bounded number of synapses instead of a layer's whole matrix. Spans only
    move forward, so every row is built about once.

    A window starts at 1/GROWTH of `width` and doubles while the spans asked for run on from the last
    window, up to `width`: where the partitioner repeats cycles of cores (partition.period) it searches a
    few cores and then jumps ahead, and a full-width window there would build rows no span reads (a
    paper-size partial-sum layer: 3 windows of 32,768 neurons for 12 spans of 256). A layer of up to
    WHOLE_ROWS rows that one window holds is built whole at once: a build's fixed cost (a few sparse products) is most
    of a small layer's."""

    def __init__(self, n: int, build: Callable[[int, int], T], width: int) -> None:
        self.n, self.build, self.width = n, build, width
        self.lo, self.hi, self.data = 0, 0, None
        self.size = self.start = n if n <= min(width, WHOLE_ROWS) else max(width // GROWTH, 1)

    def get(self, lo: int, hi: int) -> tuple[T, int]:
        """The window holding [lo, hi) and its first position (subtract it from lo and hi)."""
        if self.data is None or lo < self.lo or hi > self.hi:
            runs_on = self.data is not None and self.lo <= lo <= self.hi
            self.size = min(self.width, 2 * self.size) if runs_on else self.start
            self.lo, self.hi = lo, min(self.n, lo + max(self.size, 2 * (hi - lo)))
            self.data = self.build(self.lo, self.hi)
        return self.data, self.lo


class Batches(Generic[T]):
    """The spans a partitioner finalises, grouped by the window of rows that holds them: `build(rows, a, b)` gets
    a group at once (window-local spans [a_j, b_j)) when a span falls in another window, or at `flush` (a builder
    flushes before it repeats the cores built so far). Keeps at most the current window alive past its time."""

    def __init__(self, windows: Windows[T], build: Callable[[T, np.ndarray, np.ndarray], None]) -> None:
        self.windows, self.build = windows, build
        self.rows: T | None = None
        self.pending: list[tuple[int, int]] = []

    def add(self, lo: int, hi: int) -> None:
        rows, off = self.windows.get(lo, hi)
        if rows is not self.rows:
            self.flush()
            self.rows = rows
        self.pending.append((lo - off, hi - off))

    def flush(self) -> None:
        if self.pending:
            a, b = np.array(self.pending, dtype=np.int64).T
            self.pending = []
            self.build(self.rows, a, b)
