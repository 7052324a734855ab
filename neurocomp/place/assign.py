"""Window re-assignment: the placer's local search, solved exactly as a linear assignment (scipy).

Moving one set of cores while everything else stays put is a quadratic assignment problem
in general, but it is *linear* when the moving cores exchange no traffic among themselves
("independent set matching", a detailed-placement move from VLSI placement): each core's
cost at each candidate slot is then a fixed number, and the best permutation is a linear
sum assignment, solved exactly. Windows join the slots around a core to the slots around
the traffic-weighted median of its neighbours, so cores can jump to where they are pulled,
and include empty slots, so cores can spread into free space. An iterated local search
(shuffle one small window, repair around it, keep if better) spends what the sweeps leave
of the budget while it still pays.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from neurocomp.distinct import distinct
from neurocomp.place.mesh import Mesh, slots

@dataclass
class Search:
    """Mutable state of the local search over one symmetrised, zero-diagonal traffic matrix."""

    mesh: Mesh
    sym: sp.csr_array
    pos: np.ndarray      # (C,) slot of each core
    occ: np.ndarray      # (n_slots,) core in each slot or -1
    gx: np.ndarray       # per-slot global router coordinates
    gy: np.ndarray
    cx: np.ndarray       # per-slot chip column and row (gx // chip_cols, gy // chip_rows)
    cy: np.ndarray
    grid: np.ndarray     # (GY, GX, cores_per_router) slot of each router position
    mark: np.ndarray     # (C,) scratch: membership stamps, so set tests cost O(1) per element
    scratch: np.ndarray  # (C,) scratch: a value per marked core
    stamp: int = 0
    coords: tuple[np.ndarray, ...] = ()   # gx, gy, cx, cy in the narrowest int that holds their sums (dist's inputs)

    @staticmethod
    def start(mesh: Mesh, sym: sp.csr_array, pos: np.ndarray) -> "Search":
        n = len(pos)
        occ = np.full(mesh.n_slots, -1, dtype=np.int64)
        occ[pos] = np.arange(n)
        geo = slots(mesh)
        grid = np.empty((mesh.grid_rows, mesh.grid_cols, mesh.cores_per_router), dtype=np.int64)
        grid[geo.gy, geo.gx, geo.k] = np.arange(mesh.n_slots)
        coords = (geo.gx, geo.gy, geo.gx // mesh.chip_cols, geo.gy // mesh.chip_rows)
        narrow = np.int16 if mesh.grid_cols + mesh.grid_rows < 2 ** 14 else np.int32
        return Search(mesh, sym, pos.copy(), occ, *coords, grid, np.zeros(n, dtype=np.int64),
                      np.zeros(n, dtype=np.int64), coords=tuple(c.astype(narrow) for c in coords))

    def dist(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """mesh.hop_cost between slots, with the chip coordinates looked up instead of divided out; the sums in
        small ints (`coords`), exact and about 10x faster than int64 on the placer's window-by-neighbour grids."""
        return self._dist(a, self._at(b))

    def dist_change(self, new: np.ndarray, old: np.ndarray, b: np.ndarray) -> np.ndarray:
        """dist(new, b) - dist(old, b), b's coordinates looked up once (the annealer's moves against their
        neighbours)."""
        at = self._at(b)
        return self._dist(new, at) - self._dist(old, at)

    def _at(self, b: np.ndarray) -> tuple[np.ndarray, ...]:
        """b's grid coordinates, and its chip's where hops between chips cost extra."""
        return tuple(c[b] for c in self.coords[:4 if self._chip_extra() else 2])

    def _chip_extra(self) -> float:
        return 0.0 if self.mesh.n_chips == 1 else self.mesh.interchip_weight - 1.0

    def _dist(self, a: np.ndarray, at: tuple[np.ndarray, ...]) -> np.ndarray:
        gx, gy, cx, cy = self.coords
        d = np.abs(gx[a] - at[0]) + np.abs(gy[a] - at[1])
        extra = self._chip_extra()
        if extra == 0:
            return d.astype(np.float64)
        return d + extra * (np.abs(cx[a] - at[2]) + np.abs(cy[a] - at[3]))

    def members(self, cores: np.ndarray, values: np.ndarray | None = None) -> int:
        """Stamp `cores` (and store one value each in `scratch`); test with `mark[x] == stamp`."""
        self.stamp += 1
        self.mark[cores] = self.stamp
        if values is not None:
            self.scratch[cores] = values
        return self.stamp

    def rows(self, cores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(index into `cores`, neighbour, traffic) for every nonzero in the rows of `cores`."""
        start, stop = self.sym.indptr[cores], self.sym.indptr[cores + 1]
        lens = stop - start
        offsets = np.cumsum(lens) - lens
        idx = np.arange(lens.sum()) + np.repeat(start - offsets, lens)
        return np.repeat(np.arange(len(cores)), lens), self.sym.indices[idx], self.sym.data[idx]

    def rect(self, slot: int, radius: int) -> np.ndarray:
        """All slots of the routers within `radius` (Chebyshev) of the slot's router, clipped to the grid."""
        x, y = int(self.gx[slot]), int(self.gy[slot])
        return self.grid[max(0, y - radius):y + radius + 1, max(0, x - radius):x + radius + 1].ravel()

    def window(self, anchor: int, radius: int) -> np.ndarray:
        """Slots around the anchor and around the traffic-weighted median of its neighbours."""
        parts = [self.rect(self.pos[anchor], radius)]
        _, nbr, w = self.rows(np.array([anchor]))
        if len(nbr):
            at = self.pos[nbr]
            parts.append(self.rect(self.grid[_weighted_median(self.gy[at], w), _weighted_median(self.gx[at], w), 0],
                                   radius))
        return distinct(np.concatenate(parts))

    def independent(self, cores: np.ndarray, anchor: int) -> np.ndarray:
        """A subset of `cores` with no traffic inside it, the anchor first (3 Luby rounds, vectorised)."""
        owner, nbr, _ = self.rows(cores)
        stamp = self.members(cores, np.arange(len(cores)))
        inside = self.mark[nbr] == stamp
        a, b = owner[inside], self.scratch[nbr[inside]]
        # distinct pseudo-random priorities that change with every call; the anchor always wins
        prio = np.where(cores == anchor, 1 << 32, ((cores + stamp) * 0x9E3779B1) % (1 << 31))
        state = np.zeros(len(cores), dtype=np.int8)  # 0 undecided, 1 chosen, -1 excluded
        for _ in range(3):
            open_ = state == 0
            live = open_[a] & open_[b]
            top = np.full(len(cores), -1, dtype=np.int64)
            np.maximum.at(top, a[live], prio[b[live]])
            win = open_ & (prio > top)
            state[win] = 1
            state[b[win[a] & (state[b] == 0)]] = -1
        return cores[state == 1]

    def delta(self, cores: np.ndarray, new: np.ndarray,
              rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> float:
        """Exact cost change if `cores` moved to slots `new` (free, or vacated by `cores`)."""
        owner, nbr, w = self.rows(cores) if rows is None else rows
        stamp = self.members(cores, new)
        moving = self.mark[nbr] == stamp
        nbr_new = np.where(moving, self.scratch[nbr], self.pos[nbr])
        change = self.dist(new[owner], nbr_new) - self.dist(self.pos[cores][owner], self.pos[nbr])
        return float((w * change * np.where(moving, 0.5, 1.0)).sum())  # pairs inside are seen twice

    def total(self) -> float:
        """The cost of the current placement (each symmetrised pair counted once)."""
        owner = np.repeat(np.arange(len(self.pos)), np.diff(self.sym.indptr))
        return float(0.5 * self.sym.data @ self.dist(self.pos[owner], self.pos[self.sym.indices]))

    def apply(self, cores: np.ndarray, new: np.ndarray) -> None:
        self.occ[self.pos[cores]] = -1
        self.pos[cores] = new
        self.occ[new] = cores

    def reset(self, pos: np.ndarray) -> None:
        """Go back to an earlier placement, touching only the cores that moved since."""
        moved = np.flatnonzero(self.pos != pos)
        self.apply(moved, pos[moved])

    def improve_window(self, anchor: int, radius: int) -> float:
        """Optimally re-assign an independent set of the window's cores; returns the gain (<= 0)."""
        cand = self.window(anchor, radius)
        occupants = self.occ[cand]
        cores = self.independent(occupants[occupants >= 0], anchor)
        stamp = self.members(cores)
        free = cand[(occupants < 0) | ((occupants >= 0) & (self.mark[np.maximum(occupants, 0)] == stamp))]
        if len(free) < 2:
            return 0.0
        rows = self.rows(cores)
        owner, nbr, w = rows
        # cost[i, s] = sum_j w_ij dist(s, pos_j), exact since every neighbour j stays put
        contrib = w[:, None] * self.dist(free[None, :], self.pos[nbr][:, None])
        new = free[solve_assignment(_row_sums(owner, contrib, len(cores)))]
        if np.array_equal(new, self.pos[cores]):
            return 0.0
        gain = self.delta(cores, new, rows)  # re-checked: the booked cost is the exact joint one
        if gain >= -1e-9:
            return 0.0
        self.apply(cores, new)
        return gain

    def kick(self, anchor: int, radius: int, rng: np.random.Generator) -> tuple[float, np.ndarray]:
        """Randomly shuffle the cores of a small window into its slots; returns (cost change, cores)."""
        cand = self.rect(self.pos[anchor], radius)
        cores = self.occ[cand][self.occ[cand] >= 0]
        new = rng.permutation(cand)[: len(cores)]
        change = self.delta(cores, new)
        self.apply(cores, new)
        return change, cores


def _row_sums(owner: np.ndarray, values: np.ndarray, n_rows: int) -> np.ndarray:
    """Sum the rows of `values` that share an owner (owner sorted)."""
    out = np.zeros((n_rows, values.shape[1]))
    if len(owner):
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        out[owner[starts]] = np.add.reduceat(values, starts, axis=0)
    return out


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> int:
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return int(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def solve_assignment(cost: np.ndarray) -> np.ndarray:
    """The slot (column) of each core (row) in a min-cost assignment of a (cores, slots) matrix, exact on the float
    costs (scipy's rectangular solver: 6x faster than OR-Tools' integer one on these windows, the same optima;
    benchmarks/assignment_solvers.py). Imported here: scipy.optimize takes 0.2 s to import, and every command that
    reads neurocomp.place's package (`run` through the router's mesh) would pay it without placing a core."""
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(cost)[1]


@dataclass
class Budget:
    """When the search must stop: a wall-clock deadline and, for reproducible results, a count of
    window re-assignments (a search cut by the count is the same on every machine)."""

    deadline: float
    windows: int | None = None
    cut_by_time: bool = False

    def exhausted(self) -> bool:
        if self.windows is not None and self.windows <= 0:
            return True
        if time.perf_counter() > self.deadline:
            self.cut_by_time = True
            return True
        return False

    def spend(self) -> None:
        if self.windows is not None:
            self.windows -= 1


def sweep_until_stable(search: Search, anchors: np.ndarray, radius: int, budget: Budget, tol: float,
                       max_sweeps: int = 50) -> float:
    """Window sweeps over `anchors` until one gains no more than `tol`; returns the total gain (<= 0)."""
    total = 0.0
    for _ in range(max_sweeps):
        gained = 0.0
        for anchor in anchors:
            if budget.exhausted():
                return total + gained
            budget.spend()
            gained += search.improve_window(int(anchor), radius)
        total += gained
        if gained >= -tol:
            break
    return total


def optimise(search: Search, seed: int, budget: Budget, radius: int, floor: float = 0.0,
             sweep_tol: float = 1e-3, round_kicks: int = 20, min_gain: float = 5e-3) -> None:
    """Window sweeps to a local optimum, then an iterated local search: kick one small window,
    repair around it, keep the result only if it is better. Sweeps stop when one gains at most
    `sweep_tol` of the cost; the search stops when a round of kicks (one per core, at most
    `round_kicks`) gains at most `min_gain` of the cost, at the lower bound `floor`, or when the budget is spent."""
    rng = np.random.default_rng(seed)
    n = len(search.pos)
    level = search.total()
    level += sweep_until_stable(search, rng.permutation(n), radius, budget, sweep_tol * level)
    best = search.pos.copy()
    while not budget.exhausted() and level > floor + 1e-9:
        gained = 0.0
        for _ in range(min(n, round_kicks)):
            if budget.exhausted():
                return
            budget.spend()
            change, moved = search.kick(int(rng.integers(n)), 1, rng)
            change += sweep_until_stable(search, rng.permutation(moved), radius, budget, sweep_tol * level)
            if change < -1e-9:
                best, gained = search.pos.copy(), gained + change
            else:
                search.reset(best)
        if -gained <= min_gain * level:
            return
        level += gained
