"""Mesh geometry: slots, routers, chips and the weighted hop distance that placement minimises.

A slot is one core position. Slots are numbered chip by chip (chips row-major in the chip
grid), routers row-major inside a chip, and the `cores_per_router` slots of a router last.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from neurocomp.errors import ResourceError, TargetError


@dataclass(frozen=True)
class Mesh:
    """A grid of identical chips, each a grid of routers with `cores_per_router` cores each."""

    chip_cols: int
    chip_rows: int
    cores_per_router: int
    chips_x: int
    chips_y: int
    interchip_weight: float

    def __post_init__(self) -> None:
        for name in ("chip_cols", "chip_rows", "cores_per_router", "chips_x", "chips_y"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise TargetError(f"mesh: {name} must be a positive integer, got {value!r}")
        if not (math.isfinite(self.interchip_weight) and self.interchip_weight >= 0):
            raise TargetError(f"mesh: interchip_weight must be finite and >= 0, got {self.interchip_weight!r}")

    @property
    def n_chips(self) -> int:
        return self.chips_x * self.chips_y

    @property
    def cores_per_chip(self) -> int:
        return self.chip_cols * self.chip_rows * self.cores_per_router

    @property
    def n_slots(self) -> int:
        return self.n_chips * self.cores_per_chip

    @property
    def grid_cols(self) -> int:
        """Routers along x over the whole chip grid (GX)."""
        return self.chips_x * self.chip_cols

    @property
    def grid_rows(self) -> int:
        """Routers along y over the whole chip grid (GY)."""
        return self.chips_y * self.chip_rows

    @staticmethod
    def for_cores(n_cores: int, chip_cols: int, chip_rows: int, cores_per_router: int,
                  max_chips: int, chips_x_max: int, interchip_weight: float) -> "Mesh":
        """The smallest chip grid holding `n_cores`, at most `chips_x_max` chips wide."""
        per_chip = chip_cols * chip_rows * cores_per_router
        n_chips = max(1, math.ceil(n_cores / per_chip))
        if n_chips > max_chips:
            raise ResourceError("network", "chips", n_chips, max_chips,
                                hint=f"{n_cores} cores need {n_chips} chips of {per_chip} cores; "
                                     "shrink the network or allow more chips in the target spec")
        chips_x = min(chips_x_max, n_chips)
        return Mesh(chip_cols, chip_rows, cores_per_router, chips_x, math.ceil(n_chips / chips_x),
                    float(interchip_weight))


@dataclass(frozen=True)
class Slots:
    """Per-slot coordinates (read-only int64 arrays of length n_slots)."""

    chip: np.ndarray
    x: np.ndarray
    y: np.ndarray
    k: np.ndarray   # index among the cores of the router
    gx: np.ndarray  # global router column
    gy: np.ndarray  # global router row


@lru_cache(maxsize=8)
def slots(mesh: Mesh) -> Slots:
    """Coordinates of every slot, cached per mesh because the placer looks them up constantly."""
    s = np.arange(mesh.n_slots, dtype=np.int64)
    chip, rest = np.divmod(s, mesh.cores_per_chip)
    router, k = np.divmod(rest, mesh.cores_per_router)
    y, x = np.divmod(router, mesh.chip_cols)
    cy, cx = np.divmod(chip, mesh.chips_x)
    out = Slots(chip, x, y, k, cx * mesh.chip_cols + x, cy * mesh.chip_rows + y)
    for arr in vars(out).values():
        arr.setflags(write=False)
    return out


def slot_at(mesh: Mesh, gx: np.ndarray, gy: np.ndarray, k: np.ndarray | int = 0) -> np.ndarray:
    """Slot index of router (gx, gy), core k: the inverse of `slots`."""
    cx, x = np.divmod(gx, mesh.chip_cols)
    cy, y = np.divmod(gy, mesh.chip_rows)
    chip = cy * mesh.chips_x + cx
    return (chip * mesh.cores_per_chip + (y * mesh.chip_cols + x) * mesh.cores_per_router + k).astype(np.int64)


def hop_cost(mesh: Mesh, gx_a: np.ndarray, gy_a: np.ndarray, gx_b: np.ndarray, gy_b: np.ndarray) -> np.ndarray:
    """Weighted XY hop distance: on-chip steps cost 1, steps across a chip boundary `interchip_weight`.

    An XY path from gx_a to gx_b crosses |cx_a - cx_b| chip boundaries, so the distance is the
    Manhattan distance plus (w - 1) per crossing; it is separable in x and y.
    """
    d = (np.abs(gx_a - gx_b) + np.abs(gy_a - gy_b)).astype(np.float64)
    if mesh.n_chips > 1 and mesh.interchip_weight != 1.0:
        crossings = (np.abs(gx_a // mesh.chip_cols - gx_b // mesh.chip_cols)
                     + np.abs(gy_a // mesh.chip_rows - gy_b // mesh.chip_rows))
        d += (mesh.interchip_weight - 1.0) * crossings
    return d


def min_step_cost(mesh: Mesh) -> float:
    """The cheapest single hop on this mesh: every distinct pair of routers is at least this far apart."""
    steps = []
    if mesh.chip_cols > 1 or mesh.chip_rows > 1:
        steps.append(1.0)
    if mesh.n_chips > 1:
        steps.append(mesh.interchip_weight)
    return min(steps, default=0.0)


DIRECTIONS = ("east", "west", "north", "south")


def xy_loads(rows: int, cols: int, xs: np.ndarray, ys: np.ndarray, xd: np.ndarray, yd: np.ndarray,
             load: np.ndarray) -> dict[str, np.ndarray]:
    """Load per link of a rows x cols router grid when each flow goes X then Y: east/west
    (rows, cols-1), north/south (rows-1, cols); a link is stored at its lower router."""
    e, w, n, s = xd > xs, xd < xs, yd > ys, yd < ys
    return {"east": line_loads(rows, cols, ys[e], xs[e], xd[e], load[e]),
            "west": line_loads(rows, cols, ys[w], xd[w], xs[w], load[w]),
            "north": line_loads(cols, rows, xd[n], ys[n], yd[n], load[n]).T,
            "south": line_loads(cols, rows, xd[s], yd[s], ys[s], load[s]).T}


def line_loads(n_lines: int, length: int, line: np.ndarray, lo: np.ndarray, hi: np.ndarray,
              load: np.ndarray) -> np.ndarray:
    """(n_lines, length-1) load on links lo..hi-1 of each flow's line (link g joins g and g+1)."""
    flat = np.concatenate([line * length + lo, line * length + hi])
    diff = np.bincount(flat, weights=np.concatenate([load, -load]), minlength=n_lines * length)
    out = np.cumsum(diff.reshape(n_lines, length), axis=1)[:, : length - 1]
    out[out < 1e-12 * load.sum()] = 0.0  # the +-1e-16 a cancelling cumsum leaves on unused links
    return out
