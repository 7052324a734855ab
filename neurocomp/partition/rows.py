"""Materialise the rows one core needs, per incoming projection."""
from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from neurocomp.ir.graph import Affine, Conv2d, Correlation, Node
from neurocomp.ir.layers import Layer, Projection


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
    """A layer's integer rows in partition order, built once so that trying a span is a slice.

    Materialises the layer's (neurons x inputs) matrices; fine up to ~10^8 synapses per layer.
    """

    def __init__(self, layer: Layer, order: np.ndarray, keep_support: bool = False) -> None:
        self.order = order
        self.rows = chunk_rows(layer, order, keep_support)

    def span(self, lo: int, hi: int) -> list[tuple[str, sp.csr_matrix]]:
        return [(src, m[lo:hi]) for src, m in self.rows]

    def distinct_inputs(self, lo: int, hi: int) -> list[np.ndarray]:
        """Sorted distinct input columns of each projection over rows [lo, hi)."""
        return [np.unique(m.indices[m.indptr[lo]:m.indptr[hi]]) for _, m in self.rows]
