"""Baseline slot orders: every placer result is reported against these."""
from __future__ import annotations

import numpy as np

from neurocomp.place.mesh import Mesh, slot_at


def hilbert_index(side: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Position of (x, y) along the Hilbert curve filling a side x side square (side a power of 2)."""
    x, y = x.astype(np.int64).copy(), y.astype(np.int64).copy()
    d = np.zeros_like(x)
    s = side // 2
    while s > 0:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((3 * rx.astype(np.int64)) ^ ry.astype(np.int64))
        flip = ~ry & rx
        x = np.where(flip, side - 1 - x, x)
        y = np.where(flip, side - 1 - y, y)
        x, y = np.where(~ry, y, x), np.where(~ry, x, y)
        s //= 2
    return d


def hilbert_slots(mesh: Mesh) -> np.ndarray:
    """All slots ordered chip by chip (serpentine over the chip grid), routers along a Hilbert curve.

    Consecutive cores of a layered network land in compact 2-D blocks instead of long rows,
    and the serpentine keeps consecutive chips adjacent.
    """
    side = 1 << max(0, (max(mesh.chip_cols, mesh.chip_rows) - 1).bit_length())
    y, x = np.divmod(np.arange(mesh.chip_cols * mesh.chip_rows, dtype=np.int64), mesh.chip_cols)
    routers = np.argsort(hilbert_index(side, x, y), kind="stable")
    rx, ry = x[routers], y[routers]
    cy, cx = np.divmod(np.arange(mesh.n_chips, dtype=np.int64), mesh.chips_x)
    cx = np.where(cy % 2 == 1, mesh.chips_x - 1 - cx, cx)
    gx = (cx[:, None] * mesh.chip_cols + rx[None, :])[:, :, None]
    gy = (cy[:, None] * mesh.chip_rows + ry[None, :])[:, :, None]
    k = np.arange(mesh.cores_per_router, dtype=np.int64)[None, None, :]
    return slot_at(mesh, gx, gy, k).ravel()


def random_slots(n_cores: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of the cores over the sequential footprint (slots 0..C-1)."""
    return rng.permutation(n_cores).astype(np.int64)
