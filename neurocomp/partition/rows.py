"""Materialise the rows one core needs, per incoming projection."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from neurocomp.ir.layers import Layer


def chunk_rows(layer: Layer, chunk: np.ndarray) -> list[tuple[str, sp.csr_matrix]]:
    """(source name, integer (len(chunk), n_source) matrix) for each projection into the chunk."""
    out = []
    for p in layer.projections:
        m = p.matrix(chunk)
        m.data = np.rint(m.data)
        m.eliminate_zeros()
        out.append((p.source, m))
    return out


class OrderedRows:
    """A layer's integer rows in partition order, built once so that trying a span is a slice.

    Materialises the layer's (neurons x inputs) matrices; fine up to ~10^8 synapses per layer.
    """

    def __init__(self, layer: Layer, order: np.ndarray) -> None:
        self.order = order
        self.rows = chunk_rows(layer, order)

    def span(self, lo: int, hi: int) -> list[tuple[str, sp.csr_matrix]]:
        return [(src, m[lo:hi]) for src, m in self.rows]

    def distinct_inputs(self, lo: int, hi: int) -> list[np.ndarray]:
        """Sorted distinct input columns of each projection over rows [lo, hi)."""
        return [np.unique(m.indices[m.indptr[lo]:m.indptr[hi]]) for _, m in self.rows]
