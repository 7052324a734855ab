"""Route: dimension-order (X first, then Y) paths for every core-to-core flow, and link loads.

TrueNorth and RANC routers forward a spike along x until dx = 0, then along y
(TRUENORTH.md §6), so each flow's path, and thus every link's load, is fixed by the placement.
A flow from (xs, ys) to (xd, yd) uses the links of row ys between xs and xd, then the links
of column xd between ys and yd. Loads are accumulated with difference arrays and a cumsum.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import scipy.sparse as sp

from neurocomp.errors import ResourceError, VerifyError
from neurocomp.place.mesh import Mesh, xy_loads
from neurocomp.place.placement import Placement, canonical_traffic


@dataclass(frozen=True, eq=False)
class Routes:
    """Link loads (spikes per tick) and traffic totals of one placement under XY routing."""

    load_east: np.ndarray   # (GY, GX-1): link (gx, gy) -> (gx+1, gy)
    load_west: np.ndarray   # (GY, GX-1): link (gx+1, gy) -> (gx, gy)
    load_north: np.ndarray  # (GY-1, GX): link (gx, gy) -> (gx, gy+1)
    load_south: np.ndarray  # (GY-1, GX): link (gx, gy+1) -> (gx, gy)
    spike_hops_per_tick: float
    hops_ew_per_tick: float
    hops_ns_per_tick: float
    interchip_spikes_per_tick: float
    cut_spikes_per_tick: float
    max_link_load: float
    worst_link: str
    max_dx: int
    max_dy: int
    # signed extremes of dx and dy (routes may reach further one way, e.g. TrueNorth's [-256, 255]),
    # and the (source core, target core) flow at each: keys "dx_min", "dx_max", "dy_min", "dy_max"
    dx_span: tuple[int, int] | None = None
    dy_span: tuple[int, int] | None = None
    span_flows: Mapping[str, tuple[int, int]] | None = None


def edge_hops(src_core: np.ndarray, dst_core: np.ndarray, placement: Placement,
              mesh: Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per flow: (east-west hops, north-south hops, chip-boundary crossings) on its XY path."""
    return grid_hops(placement.gx(mesh), placement.gy(mesh), mesh.chip_cols, mesh.chip_rows, src_core, dst_core)


def grid_hops(gx: np.ndarray, gy: np.ndarray, chip_cols: int, chip_rows: int, src_core: np.ndarray,
              dst_core: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """edge_hops from global router coordinates, for callers that hold a stored placement."""
    xs, xd, ys, yd = gx[src_core], gx[dst_core], gy[src_core], gy[dst_core]
    crossings = np.abs(xd // chip_cols - xs // chip_cols) + np.abs(yd // chip_rows - ys // chip_rows)
    return np.abs(xd - xs), np.abs(yd - ys), crossings


def _chip_of(mesh: Mesh, gx: int, gy: int) -> int:
    return (gy // mesh.chip_rows) * mesh.chips_x + gx // mesh.chip_cols


def _worst_link(loads: dict[str, np.ndarray], mesh: Mesh) -> tuple[float, str]:
    """The most loaded link, described by its two routers and chip(s)."""
    step = {"east": (1, 0), "west": (-1, 0), "north": (0, 1), "south": (0, -1)}
    best, where = 0.0, "none (no traffic between routers)"
    for name, load in loads.items():
        if load.size == 0 or load.max() <= best:
            continue
        best = float(load.max())
        y, x = (int(v) for v in np.unravel_index(np.argmax(load), load.shape))
        dx, dy = step[name]
        a = (x + (dx < 0), y + (dy < 0))  # west/south links are stored at the lower router's index
        b = (a[0] + dx, a[1] + dy)
        ca, cb = _chip_of(mesh, *a), _chip_of(mesh, *b)
        chips = f"on chip {ca}" if ca == cb else f"from chip {ca} to chip {cb}"
        where = f"{name} link (gx={a[0]}, gy={a[1]}) -> ({b[0]}, {b[1]}) {chips}"
    return best, where


def _span(delta: np.ndarray, src: np.ndarray, dst: np.ndarray, axis: str) -> tuple[tuple[int, int], dict]:
    if len(delta) == 0:
        return (0, 0), {}
    lo, hi = int(np.argmin(delta)), int(np.argmax(delta))
    flows = {f"{axis}_min": (int(src[lo]), int(dst[lo])), f"{axis}_max": (int(src[hi]), int(dst[hi]))}
    return (int(delta[lo]), int(delta[hi])), flows


def route(traffic: sp.spmatrix | sp.sparray, placement: Placement, mesh: Mesh) -> Routes:
    """Route every flow X first, then Y; accumulate per-link loads and traffic totals."""
    t = canonical_traffic(traffic)
    if t.shape[0] != placement.n_cores:
        raise VerifyError(f"traffic has {t.shape[0]} cores but the placement {placement.n_cores}")
    src, dst, v = t.row.astype(np.int64), t.col.astype(np.int64), t.data
    gx, gy = placement.gx(mesh), placement.gy(mesh)
    xs, xd, ys, yd = gx[src], gx[dst], gy[src], gy[dst]
    loads = xy_loads(mesh.grid_rows, mesh.grid_cols, xs, ys, xd, yd, v)
    ew, ns, crossings = edge_hops(src, dst, placement, mesh)
    peak, worst = _worst_link(loads, mesh)
    dx_span, dx_flows = _span(xd - xs, src, dst, "dx")
    dy_span, dy_flows = _span(yd - ys, src, dst, "dy")
    return Routes(
        load_east=loads["east"], load_west=loads["west"], load_north=loads["north"], load_south=loads["south"],
        spike_hops_per_tick=float(v @ (ew + ns)), hops_ew_per_tick=float(v @ ew), hops_ns_per_tick=float(v @ ns),
        interchip_spikes_per_tick=float(v @ crossings), cut_spikes_per_tick=float(v.sum()),
        max_link_load=peak, worst_link=worst,
        max_dx=int(ew.max(initial=0)), max_dy=int(ns.max(initial=0)),
        dx_span=dx_span, dy_span=dy_span, span_flows={**dx_flows, **dy_flows},
    )


def verify_routes(routes: Routes, dx_min: int, dx_max: int) -> None:
    """Raise ResourceError when a route's dx or dy leaves [dx_min, dx_max], the range of the
    packet's relative address fields. Without signed spans |dx| must fit both ways."""
    flows = routes.span_flows or {}
    for axis, span, peak in (("dx", routes.dx_span, routes.max_dx), ("dy", routes.dy_span, routes.max_dy)):
        lo, hi = span if span is not None else (-peak, peak)
        for end, used, allowed, broken in (("min", lo, dx_min, lo < dx_min), ("max", hi, dx_max, hi > dx_max)):
            if broken:
                flow = flows.get(f"{axis}_{end}")
                where = f"route from core {flow[0]} to core {flow[1]}" if flow else "routing"
                raise ResourceError(where, f"route {axis}", used, allowed,
                                    hint=f"{axis} must stay in [{dx_min}, {dx_max}] routers; place communicating "
                                         "cores closer together or relay the spikes through an intermediate core")
