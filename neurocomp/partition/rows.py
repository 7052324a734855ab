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


def used_columns(m: sp.csr_matrix) -> np.ndarray:
    return np.unique(m.indices)


def levels_per_row(m: sp.csr_matrix) -> np.ndarray:
    """Number of distinct non-zero values in each row."""
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    if rows.size == 0:
        return np.zeros(m.shape[0], dtype=np.int64)
    pairs = np.unique(np.stack([rows, m.data]), axis=1)
    return np.bincount(pairs[0].astype(np.int64), minlength=m.shape[0])
