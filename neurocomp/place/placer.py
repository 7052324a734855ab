"""The placer: assign every core of the network to a slot of the chip mesh, minimising spike-hops.

The objective is sum_ij traffic[i, j] * hops(i, j) under XY routing, an inter-chip hop
costing `Mesh.interchip_weight`. Exact models of this quadratic assignment problem do
not scale (PEERS.md §3: CP-SAT's coordinate model never left a lower bound of 0), so the
placer starts from the better of the sequential and Hilbert-curve orders, improves it
with window re-assignments solved exactly as linear sum assignments (assign.py, scipy),
then refines it with vectorised swap annealing (anneal.py), which escapes the local optima
the windows stop in (on the NIR paper CNN for TrueNorth the windows alone were 30 % above a
long annealing run).
"""
from __future__ import annotations

import time
from types import MappingProxyType
from typing import Mapping

import numpy as np
import scipy.sparse as sp

from neurocomp.errors import ResourceError, UserError
from neurocomp.place.anneal import Schedule, anneal as _anneal
from neurocomp.place.assign import Budget, Search, optimise
from neurocomp.place.baselines import hilbert_slots, random_slots
from neurocomp.place.bound import lower_bound
from neurocomp.place.congestion import relieve
from neurocomp.place.mesh import Mesh, slots
from neurocomp.place.placement import Placement, canonical_traffic, spike_hops

METHODS = ("auto", "lsa-window", "anneal", "sequential", "hilbert")
_RANDOM_SAMPLES = 8   # the "random" baseline is the mean over this many seeded permutations
_WINDOW_SLOTS = 25    # slots per window rectangle: LSAs of ~50 keep one window under a millisecond


def _pos_cost(t: sp.coo_array, pos: np.ndarray, mesh: Mesh) -> float:
    geo = slots(mesh)
    return spike_hops(t, geo.gx[pos], geo.gy[pos], mesh)


def _from_slots(pos: np.ndarray, mesh: Mesh, method: str, objective: float, baselines: Mapping[str, float],
                bound: float | None, seconds: float) -> Placement:
    geo = slots(mesh)
    coords = [geo.chip[pos], geo.x[pos], geo.y[pos], geo.k[pos]]
    for arr in coords:
        arr.setflags(write=False)
    return Placement(*coords, method, objective, MappingProxyType(dict(baselines)), bound, seconds)


def _check_fits(n_cores: int, mesh: Mesh) -> None:
    if n_cores > mesh.n_slots:
        raise ResourceError("network", "cores", n_cores, mesh.n_slots,
                            hint="the mesh is too small; size it with Mesh.for_cores")


def sequential(n_cores: int, mesh: Mesh) -> Placement:
    """Core k in slot k (chip by chip, routers row-major). No traffic is given, so the objective
    is NaN and there are no baselines: use `place(..., method="sequential")` for those."""
    _check_fits(n_cores, mesh)
    return _from_slots(np.arange(n_cores, dtype=np.int64), mesh, "sequential", float("nan"), {}, None, 0.0)


def _radius(mesh: Mesh) -> int:
    """Window half-width in routers, so that one window rectangle holds about _WINDOW_SLOTS slots."""
    return max(1, round((np.sqrt(_WINDOW_SLOTS / mesh.cores_per_router) - 1) / 2))


def place(traffic: sp.spmatrix | sp.sparray, mesh: Mesh, seed: int = 0, time_budget_s: float = 5.0,
          method: str = "auto", effort: int | None = None, anneal_moves: int = 0, congestion: float = 0.0,
          congestion_moves: int = 0) -> Placement:
    """Place the cores of a (C, C) traffic matrix (spikes per tick from core i to core j) on `mesh`.

    "lsa-window": best of sequential and Hilbert, then window re-assignment (see assign.py)
    until it stops improving, `effort` window re-assignments are spent, or the time budget runs
    out. "auto": the same, then `anneal_moves` annealing moves and the windows again (no moves:
    plain "lsa-window"). The annealing starts hot (one mean uphill move; starting at 0.3 ended
    15 % worse on the NIR CNN) and keeps the best placement seen, so it never loses what the
    windows found. "anneal": `anneal_moves` moves from the best baseline (the quality
    reference). Deterministic for a seed unless the time budget cuts the search short (`method`
    then ends in "+timed"). Never worse than the sequential and Hilbert baselines.

    congestion > 0 (with "auto"): then up to `congestion_moves` moves that lower spike-hops +
    congestion x the link-load spread (congestion.py), a trade the objective alone cannot see.
    """
    t0 = time.perf_counter()
    if method not in METHODS:
        raise UserError(f"unknown placement method {method!r}; choose one of {', '.join(METHODS)}")
    t = canonical_traffic(traffic)
    n = t.shape[0]
    _check_fits(n, mesh)
    rng = np.random.default_rng(seed)
    starts = {"sequential": np.arange(n, dtype=np.int64), "hilbert": hilbert_slots(mesh)[:n]}
    baselines = {name: _pos_cost(t, pos, mesh) for name, pos in starts.items()}
    baselines["random"] = float(np.mean([_pos_cost(t, random_slots(n, rng), mesh) for _ in range(_RANDOM_SAMPLES)]))
    sym = sp.csr_array(t + t.T)
    sym.sort_indices()
    bound = lower_bound(sym, mesh)
    if method in starts:
        return _from_slots(starts[method], mesh, method, baselines[method], baselines, bound, time.perf_counter() - t0)
    first = min(starts, key=baselines.__getitem__)
    pos, objective = starts[first], baselines[first]
    if t.nnz:
        search = Search.start(mesh, sym, pos)
        pos, name = _search(search, seed, t0 + time_budget_s, method, effort, anneal_moves, bound)
        if method == "auto" and congestion > 0 and congestion_moves > 0 and not name.endswith("+timed"):
            budget = Budget(t0 + time_budget_s)
            relieve(search, t, congestion, seed, budget, congestion_moves)
            pos, name = search.pos, name + ("+congestion+timed" if budget.cut_by_time else "+congestion")
        found = _pos_cost(t, pos, mesh)
        pos, objective = (pos, found) if found < objective else (starts[first], objective)
    else:
        name = "lsa-window" if method == "auto" else method
    return _from_slots(pos, mesh, name, objective, baselines, bound, time.perf_counter() - t0)


def _search(search: Search, seed: int, deadline: float, method: str, effort: int | None, anneal_moves: int,
            bound: float) -> tuple[np.ndarray, str]:
    """Run the chosen local search in place; returns the slots found and the method's name.

    "auto" runs the windows again after annealing: they repair what its last random moves left
    (2.5 % on the NIR CNN for TrueNorth)."""
    if method == "anneal":
        stages = ["anneal"]
    else:
        stages = ["lsa-window", "anneal", "lsa-window"] if anneal_moves > 0 else ["lsa-window"]
    for done, stage in enumerate(stages, start=1):
        budget = Budget(deadline, effort if stage == "lsa-window" else None)
        if stage == "anneal":
            _anneal(search, seed, Schedule(anneal_moves), budget)
        else:
            optimise(search, seed, budget, _radius(search.mesh), floor=bound)
        if budget.cut_by_time:
            return search.pos, "+".join(stages[:done]) + "+timed"
    return search.pos, "+".join(stages)
