"""Materialise the rows one core needs, per incoming projection, a window of a layer at a time."""
from __future__ import annotations

import dataclasses
from typing import Callable, Generic, TypeVar

import numpy as np
import scipy.sparse as sp

from neurocomp.ir.graph import Affine, Conv2d, Correlation, Node
from neurocomp.ir.layers import Layer, Projection

T = TypeVar("T")
WINDOW_SYNAPSES = 1 << 24   # rows built at a time: ~200 MB of CSR, whatever the layer's size


def is_bound(p: Projection) -> bool:
    """Does a Correlation (weights written at run time, neurocomp.bind) feed this projection?"""
    return any(isinstance(op, Correlation) for op in p.chain)


def support(p: Projection, rows: np.ndarray) -> sp.csr_matrix:
    """Rows of the projection's structural support: every weight replaced by its magnitude plus
    one (nothing cancels) and a Correlation's by ones on each input channel it reads (a
    fan-in split gives each part some channels), so any kernel's synapses lie inside it."""
    def structural(op: Node) -> Node:
        if isinstance(op, Correlation):
            w = np.asarray(op.weight)
            used = np.any(w != 0, axis=(0, 2, 3))[None, :, None, None]
            return dataclasses.replace(op, weight=np.broadcast_to(used, w.shape).astype(np.float64), bias=None)
        if isinstance(op, (Affine, Conv2d)):
            return dataclasses.replace(op, weight=np.abs(op.weight) + 1, bias=None)
        return op
    return dataclasses.replace(p, chain=tuple(structural(op) for op in p.chain)).matrix(rows)


def chunk_rows(layer: Layer, chunk: np.ndarray, keep_support: bool = False) -> list[tuple[str, sp.csr_matrix]]:
    """(source name, integer (len(chunk), n_source) matrix) for each projection into the chunk.
    keep_support: a bound projection keeps explicit zeros over its whole support, so the
    synapse tables of a core do not depend on the kernel it was compiled with."""
    out = []
    for p in layer.projections:
        m = p.matrix(chunk)
        m.data = np.rint(m.data)
        m.eliminate_zeros()
        if keep_support and is_bound(p):
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

    def span(self, lo: int, hi: int) -> list[tuple[str, sp.csr_matrix]]:
        return [(src, m[lo:hi]) for src, m in self.rows]

    def distinct_inputs(self, lo: int, hi: int) -> list[np.ndarray]:
        """Sorted distinct input columns of each projection over rows [lo, hi)."""
        return [np.unique(m.indices[m.indptr[lo]:m.indptr[hi]]) for _, m in self.rows]


def _near_ids(cols: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inputs renumbered position-major ((C, H, W) sources: all channels of a pixel together), so the
    inputs of a spatial tile have nearby ids."""
    cols = cols.astype(np.int64)
    if len(shape) != 3:
        return cols
    c, h, w = shape
    return (cols % (h * w)) * c + cols // (h * w)


def window_width(layer: Layer, order: np.ndarray, core_neurons: int) -> int:
    """Neurons per window: WINDOW_SYNAPSES at the fan-in of the first rows, and room for a few cores."""
    probe = order[:64]
    fan_in = sum(m.nnz for _, m in chunk_rows(layer, probe)) / max(probe.size, 1)
    return int(max(4 * core_neurons, WINDOW_SYNAPSES // max(fan_in, 1.0)))


class Windows(Generic[T]):
    """Per-window row data (built by `build(lo, hi)` over partition positions [lo, hi)), so the
    partitioner holds a bounded number of synapses instead of a layer's whole matrix. Spans only
    move forward, so every row is built about once."""

    def __init__(self, n: int, build: Callable[[int, int], T], width: int) -> None:
        self.n, self.build, self.width = n, build, width
        self.lo, self.hi, self.data = 0, 0, None

    def get(self, lo: int, hi: int) -> tuple[T, int]:
        """The window holding [lo, hi) and its first position (subtract it from lo and hi)."""
        if self.data is None or lo < self.lo or hi > self.hi:
            self.lo, self.hi = lo, min(self.n, lo + max(self.width, 2 * (hi - lo)))
            self.data = self.build(self.lo, self.hi)
        return self.data, self.lo
