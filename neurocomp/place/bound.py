"""A cheap, provably valid lower bound on the spike-hop cost of any placement."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from neurocomp.place.mesh import Mesh, min_step_cost


def slots_within(hops: np.ndarray, cores_per_router: int) -> np.ndarray:
    """Upper bound on the other slots within `hops` hops of a slot: an unbounded grid has
    1 + 2h(h+1) routers within h hops, each with `cores_per_router` slots."""
    return cores_per_router * (1 + 2 * hops * (hops + 1)) - 1


def min_hops(rank: np.ndarray, cores_per_router: int) -> np.ndarray:
    """Fewest hops the rank-th (0-based) partner of a core can be from it, whatever the placement."""
    q = (rank + 1) / cores_per_router - 1
    h = np.where(q < 0, 0, np.floor((np.sqrt(1 + 2 * np.maximum(q, 0)) - 1) / 2) + 1).astype(np.int64)
    h = np.where((h > 0) & (slots_within(h - 1, cores_per_router) > rank), h - 1, h)  # float-safe: the
    return np.where(slots_within(h, cores_per_router) <= rank, h + 1, h)             # least h that fits


def lower_bound(sym: sp.csr_array, mesh: Mesh) -> float:
    """Half the sum over cores of the best case for each core alone.

    Rearrangement inequality: a core's cost sum_j s_ij d_ij is smallest when its heaviest
    partners take the nearest slots, and at most `slots_within(h)` slots are within h hops;
    every hop costs at least the cheapest step of the mesh. Each pair is counted from both
    ends, hence the half. `sym` is the symmetrised traffic with a zero diagonal.
    """
    step = min_step_cost(mesh)
    if step == 0 or sym.nnz == 0:
        return 0.0
    owner = np.repeat(np.arange(sym.shape[0]), np.diff(sym.indptr))
    order = np.lexsort((-sym.data, owner))  # rows stay grouped, heaviest partner first
    rank = np.arange(sym.nnz) - sym.indptr[owner]
    return float(0.5 * step * (sym.data[order] * min_hops(rank, mesh.cores_per_router)).sum())
