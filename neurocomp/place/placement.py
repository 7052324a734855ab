"""Where each core sits, what that costs in spike-hops, and the check that every core has a slot of its own."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import scipy.sparse as sp

from neurocomp.errors import VerifyError
from neurocomp.place.mesh import Mesh, hop_cost


@dataclass(frozen=True, eq=False)
class Placement:
    """Where each core sits: chip (row-major in the chip grid), router (x, y) in it, slot on the router.

    `objective` is `cost()` of this placement, `baselines` the cost of the sequential, Hilbert
    and (mean of 8 seeded) random placements, `bound` a proven lower bound for any placement.
    """

    chip: np.ndarray
    x: np.ndarray
    y: np.ndarray
    slot: np.ndarray
    method: str
    objective: float
    baselines: Mapping[str, float]
    bound: float | None
    seconds: float

    @property
    def n_cores(self) -> int:
        return len(self.chip)

    def gx(self, mesh: Mesh) -> np.ndarray:
        """Global router column of each core."""
        return (self.chip % mesh.chips_x) * mesh.chip_cols + self.x

    def gy(self, mesh: Mesh) -> np.ndarray:
        """Global router row of each core."""
        return (self.chip // mesh.chips_x) * mesh.chip_rows + self.y

    def slot_index(self, mesh: Mesh) -> np.ndarray:
        """Flat slot number of each core (the order `sequential` fills)."""
        return ((self.chip * mesh.chip_rows + self.y) * mesh.chip_cols + self.x) * mesh.cores_per_router + self.slot


def canonical_traffic(traffic: sp.spmatrix | sp.sparray) -> sp.coo_array:
    """Positive off-diagonal traffic as a duplicate-free COO array; a malformed matrix is an upstream bug."""
    t = sp.coo_array(traffic, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] != t.shape[1]:
        raise VerifyError(f"traffic must be a square (cores x cores) matrix, got shape {t.shape}")
    t.sum_duplicates()
    bad = ~np.isfinite(t.data) | (t.data < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise VerifyError(f"traffic[{t.row[i]}, {t.col[i]}] = {float(t.data[i])!r}: "
                          "spikes per tick must be finite and >= 0")
    keep = (t.row != t.col) & (t.data > 0)
    return sp.coo_array((t.data[keep], (t.row[keep], t.col[keep])), shape=t.shape)


def spike_hops(t: sp.coo_array, gx: np.ndarray, gy: np.ndarray, mesh: Mesh) -> float:
    return float(t.data @ hop_cost(mesh, gx[t.row], gy[t.row], gx[t.col], gy[t.col]))


def cost(traffic: sp.spmatrix | sp.sparray, placement: Placement, mesh: Mesh) -> float:
    """Spike-hops per tick: sum_ij traffic[i, j] * weighted XY hops between the cores' routers."""
    t = canonical_traffic(traffic)
    if t.shape[0] != placement.n_cores:
        raise VerifyError(f"traffic has {t.shape[0]} cores but the placement {placement.n_cores}")
    return spike_hops(t, placement.gx(mesh), placement.gy(mesh), mesh)


def verify_placement(placement: Placement, mesh: Mesh) -> None:
    """Raise VerifyError naming the first core that is out of range or shares a slot."""
    fields = {"chip": mesh.n_chips, "x": mesh.chip_cols, "y": mesh.chip_rows, "slot": mesh.cores_per_router}
    for name, limit in fields.items():
        values = np.asarray(getattr(placement, name))
        if values.shape != (placement.n_cores,) or not np.issubdtype(values.dtype, np.integer):
            raise VerifyError(f"placement.{name} must be a ({placement.n_cores},) integer array, "
                              f"got {values.dtype} {values.shape}")
        bad = np.flatnonzero((values < 0) | (values >= limit))
        if len(bad):
            core = int(bad[0])
            raise VerifyError(f"placement: core {core} has {name}={values[core]}, outside 0..{limit - 1} "
                              "(rule: every core in range)")
    flat = placement.slot_index(mesh)
    order = np.argsort(flat, kind="stable")
    clash = np.flatnonzero(flat[order][1:] == flat[order][:-1])
    if len(clash):
        a, b = sorted((int(order[clash[0]]), int(order[clash[0] + 1])))
        raise VerifyError(f"placement: cores {a} and {b} both sit in chip {placement.chip[a]}, "
                          f"router ({placement.x[a]}, {placement.y[a]}), slot {placement.slot[a]} "
                          "(rule: one core per slot)")
