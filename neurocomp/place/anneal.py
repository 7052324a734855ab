"""Simulated annealing over swaps, vectorised: a batch of moves is scored per numpy call.

Pure-Python swap annealing matched 20 s of CP-SAT in ~2 s on 64 cores (PEERS.md §3) but
does one move per interpreter step. Here each step draws a batch of moves (a core to a
slot within the range limit: a swap when the slot is taken, a move when it is free),
drops moves that reuse a slot, scores each against the current placement with one CSR
gather, accepts each by the Metropolis rule, and books the exact joint cost change of the
accepted ones (moves whose cores exchange traffic interact). The range limit follows
VPR's rule (keep the acceptance rate near 0.44) and the temperature falls geometrically.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurocomp.place.assign import Budget, Search

_TARGET_ACCEPT = 0.44  # VPR's range-limit set point
_SNAPSHOTS = 50        # best-so-far checks per run


@dataclass(frozen=True)
class Schedule:
    """`moves` proposed moves cooled from t_start to t_end, both in units of the mean uphill move
    at the start (so one schedule suits any traffic scale)."""

    moves: int
    t_start: float = 1.0
    t_end: float = 1e-3


def batch_size(search: Search) -> int:
    """Moves drawn per step. Large batches amortise numpy's per-call cost; moves in one batch
    that share traffic see each other's old positions, but `_Batch.apply` books their exact joint cost."""
    return int(np.clip(len(search.pos) // 4, 16, 1024))


def _propose(search: Search, rng: np.random.Generator, k: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """k (core, target slot) pairs: a random core to a random slot within `limit` routers of it.
    (Aiming half the moves at the centre of a core's partners, VPR's median move, did worse here.)"""
    m = search.mesh
    a = rng.integers(len(search.pos), size=k)
    pa = search.pos[a]
    tx = np.clip(search.gx[pa] + rng.integers(-limit, limit + 1, size=k), 0, m.grid_cols - 1)
    ty = np.clip(search.gy[pa] + rng.integers(-limit, limit + 1, size=k), 0, m.grid_rows - 1)
    s = search.grid[ty, tx, rng.integers(m.cores_per_router, size=k)]
    keep = s != pa
    return a[keep], s[keep]


def _distinct(search: Search, a: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Mask of the moves whose two slots no earlier move of the batch uses, so no core moves twice."""
    order = np.arange(len(a))
    first = np.full(search.mesh.n_slots, len(a))
    np.minimum.at(first, np.concatenate([search.pos[a], s]), np.concatenate([order, order]))
    return (first[search.pos[a]] == order) & (first[s] == order)


@dataclass(frozen=True)
class _Batch:
    """Moves a to s (b, the core at s if any, to a's slot) as one list of moving cores with their
    traffic rows, gathered once for scoring and booking."""

    n_moves: int
    cores: np.ndarray    # every a, then every displaced b
    move: np.ndarray     # index of each core's move
    partner: np.ndarray  # the other core of its swap, or -1
    new: np.ndarray      # slot each core moves to
    entry: np.ndarray    # per row entry: index into cores
    nbr: np.ndarray
    w: np.ndarray

    @staticmethod
    def of(search: Search, a: np.ndarray, s: np.ndarray, b: np.ndarray) -> "_Batch":
        taken = np.flatnonzero(b >= 0)
        cores = np.concatenate([a, b[taken]])
        entry, nbr, w = search.rows(cores)
        return _Batch(len(a), cores, np.concatenate([np.arange(len(a)), taken]), np.concatenate([b, a[taken]]),
                      np.concatenate([s, search.pos[a][taken]]), entry, nbr, w)

    def deltas(self, search: Search) -> np.ndarray:
        """Cost change of each move alone (the pair a-b keeps its distance under a swap)."""
        i, nbr = self.entry, self.nbr
        w = np.where(nbr == self.partner[i], 0.0, self.w)
        at = search.pos[nbr]
        change = w * search.dist_change(self.new[i], search.pos[self.cores][i], at)
        return np.bincount(self.move[i], weights=change, minlength=self.n_moves)

    def apply(self, search: Search, accept: np.ndarray) -> float:
        """Make the accepted moves; returns their exact joint cost change (moves that share traffic interact)."""
        keep = accept[self.move]
        index = np.cumsum(keep) - 1
        rows = keep[self.entry]
        cores, new = self.cores[keep], self.new[keep]
        change = search.delta(cores, new, (index[self.entry[rows]], self.nbr[rows], self.w[rows]))
        search.apply(cores, new)
        return change


def _uphill_scale(search: Search, rng: np.random.Generator, limit: int) -> float:
    """Mean cost increase of random moves: the unit the temperatures are given in."""
    a, s = _propose(search, rng, 4 * batch_size(search), limit)
    if not len(a):
        return 0.0
    keep = _distinct(search, a, s)
    d = _Batch.of(search, a[keep], s[keep], search.occ[s][keep]).deltas(search)
    up = d[d > 0]
    return float(up.mean()) if len(up) else 0.0


def anneal(search: Search, seed: int, schedule: Schedule, budget: Budget | None = None) -> float:
    """Anneal `search` in place and leave it at the best placement seen; returns the cost change (<= 0)."""
    rng = np.random.default_rng(seed)
    m = search.mesh
    full = max(m.grid_cols, m.grid_rows) - 1
    if full == 0 or schedule.moves <= 0:
        return 0.0
    limit = float(full)
    scale = _uphill_scale(search, rng, int(round(limit)))
    if scale == 0.0:
        return 0.0
    t_hi, t_lo = schedule.t_start * scale, schedule.t_end * scale
    k = batch_size(search)
    done, current, best, best_pos = 0, 0.0, 0.0, search.pos.copy()
    every, next_check = max(1, schedule.moves // _SNAPSHOTS), 0
    while done < schedule.moves and not (budget is not None and budget.exhausted()):
        temp = t_hi * (t_lo / t_hi) ** (done / schedule.moves)
        a, s = _propose(search, rng, k, int(round(limit)))
        keep = _distinct(search, a, s)
        batch = _Batch.of(search, a[keep], s[keep], search.occ[s][keep])
        d = batch.deltas(search)
        accept = (d <= 0) | (rng.random(len(d)) < np.exp(-np.maximum(d, 0) / temp))
        if accept.any():
            current += batch.apply(search, accept)
        done += k
        limit = min(max(limit * (1.0 - _TARGET_ACCEPT + (accept.mean() if len(d) else 0.0)), 1.0), full)
        if done >= next_check:
            next_check += every
            if current < best - 1e-9:
                best, best_pos = current, search.pos.copy()
    if current < best - 1e-9:
        best, best_pos = current, search.pos.copy()
    search.reset(best_pos)
    return best

