"""Congestion: move cores off the most loaded links, trading spike-hops for an even link load.

Spike-hops H count every link a spike crosses, but not where: XY routes can pile up on a few
links (a layer's whole fan-in crossing one row), which bounds the tick rate before the total
does. The placer's full objective is

    J = H + gamma * C,   C = sum_l load_l**2 / mean_load,

with load_l in spikes per tick on link l under XY routing and mean_load the mean over the
mesh's links when the refinement starts (a constant). C equals the total link traffic when
every link carries the same load and grows with the spread, so gamma weighs the two terms in
the same unit. The refinement is a steepest-descent search aimed at the hottest link: for the
heaviest flows that cross it, try moving their source or destination core (to a free slot, or
swapping) a few routers away, score each move exactly (H by `Search.delta`, C from the
changed links), and make the best one that lowers J; a link with no such move is set aside.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from neurocomp.distinct import distinct, renumbered
from neurocomp.ir.netlist import ranks
from neurocomp.place.assign import Budget, Search
from neurocomp.place.mesh import DIRECTIONS, xy_loads

_FLOWS_PER_LINK = 3     # heaviest flows through the hot link whose cores are tried
_SLOTS_PER_CORE = 6     # candidate slots per core
_RADIUS = 3             # routers a core may move per step
_GIVE_UP = 30           # consecutive hot links without an improving move


@dataclass
class Flows:
    """Directed core-to-core traffic, indexed by source and by destination core."""

    src: np.ndarray
    dst: np.ndarray
    w: np.ndarray
    by_src: sp.csr_array   # (C x F): flow ids leaving each core
    by_dst: sp.csr_array

    @staticmethod
    def of(traffic: sp.coo_array) -> "Flows":
        n, f = traffic.shape[0], traffic.nnz
        ids = np.arange(f)
        index = lambda cores: sp.csr_array((np.ones(f), (cores, ids)), shape=(n, f))  # noqa: E731
        return Flows(traffic.row.astype(np.int64), traffic.col.astype(np.int64), traffic.data, index(traffic.row),
                     index(traffic.col))

    def touching(self, cores: np.ndarray) -> np.ndarray:
        """Ids of the flows with an end in `cores` (each once)."""
        out = [self.by_src.indices[self.by_src.indptr[c]:self.by_src.indptr[c + 1]] for c in cores]
        out += [self.by_dst.indices[self.by_dst.indptr[c]:self.by_dst.indptr[c + 1]] for c in cores]
        return distinct(np.concatenate(out)) if out else np.zeros(0, np.int64)


def link_loads(search: Search, flows: Flows) -> np.ndarray:
    """(4, GY, GX) spikes per tick on each link (east, west, north, south; a link is stored at its
    lower router) under the current placement."""
    gx, gy, m = search.gx, search.gy, search.mesh
    src, dst = search.pos[flows.src], search.pos[flows.dst]
    loads = xy_loads(m.grid_rows, m.grid_cols, gx[src], gy[src], gx[dst], gy[dst], flows.w)
    out = np.zeros((4, m.grid_rows, m.grid_cols))
    out[0, :, :-1], out[1, :, :-1], out[2, :-1, :], out[3, :-1, :] = (loads[d] for d in DIRECTIONS)
    return out


def path_links(search: Search, src_slot: np.ndarray, dst_slot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices into the (4, GY, GX) load array of every link on each flow's XY path, and the
    flow each belongs to."""
    gx, gy, m = search.gx, search.gy, search.mesh
    xs, ys, xd, yd = gx[src_slot], gy[src_slot], gx[dst_slot], gy[dst_slot]
    plane, cols = m.grid_rows * m.grid_cols, m.grid_cols
    hx, hy = np.abs(xd - xs), np.abs(yd - ys)
    flow_h, flow_v = np.repeat(np.arange(xs.size), hx), np.repeat(np.arange(xs.size), hy)
    x = np.minimum(xs, xd)[flow_h] + ranks(hx)
    y = np.minimum(ys, yd)[flow_v] + ranks(hy)
    horizontal = np.where(xd > xs, 0, 1)[flow_h] * plane + ys[flow_h] * cols + x
    vertical = np.where(yd > ys, 2, 3)[flow_v] * plane + y * cols + xd[flow_v]
    return np.concatenate([horizontal, vertical]), np.concatenate([flow_h, flow_v])


class Relief:
    """The congestion refinement's state: link loads and each flow's end routers (`ends`: xs, ys, xd, yd) kept
    current as cores move."""

    def __init__(self, search: Search, traffic: sp.coo_array, gamma: float) -> None:
        self.search, self.flows, self.gamma = search, Flows.of(traffic), gamma
        self.ends = self._ends(np.arange(self.flows.src.size))
        self.loads = link_loads(search, self.flows)
        m = search.mesh
        n_links = 2 * (m.grid_rows * (m.grid_cols - 1) + m.grid_cols * (m.grid_rows - 1))
        self.mean = max(float(self.loads.sum()) / max(n_links, 1), 1e-12)

    def _ends(self, ids: np.ndarray) -> tuple[np.ndarray, ...]:
        """(xs, ys, xd, yd) of flows `ids` under the current placement, in the search's narrow coordinates."""
        gx, gy = self.search.coords[:2]
        src, dst = self.search.pos[self.flows.src[ids]], self.search.pos[self.flows.dst[ids]]
        return gx[src], gy[src], gx[dst], gy[dst]

    def through(self, link: tuple[int, int, int]) -> np.ndarray:
        """Ids of the flows whose XY path uses the link (direction, y, x): those starting on its row (a horizontal
        link) or ending on its column (a vertical one), then the span test on that few (a paper-size mesh has
        10^6 flows; gathering every flow's ends at each step took 12 ms)."""
        d, y, x = link
        xs, ys, xd, yd = self.ends
        on = np.flatnonzero(ys == y) if d < 2 else np.flatnonzero(xd == x)
        xs, ys, xd, yd = xs[on], ys[on], xd[on], yd[on]
        hit = [(xs <= x) & (x < xd), (xd <= x) & (x < xs), (ys <= y) & (y < yd), (yd <= y) & (y < ys)][d]
        return on[hit]

    def congestion(self) -> float:
        return float((self.loads ** 2).sum() / self.mean)

    def score(self, cores: np.ndarray, new: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Exact change of J if `cores` moved to slots `new`, and the changed links (flat indices
        into `loads`, distinct) with their load changes."""
        ids = self.flows.touching(cores)
        src, dst = self.flows.src[ids], self.flows.dst[ids]
        old_s, old_d = self.search.pos[src], self.search.pos[dst]
        new_s, new_d = old_s.copy(), old_d.copy()
        for core, slot in zip(cores, new):
            new_s[src == core], new_d[dst == core] = slot, slot
        before, fb = path_links(self.search, old_s, old_d)
        after, fa = path_links(self.search, new_s, new_d)
        links, inverse = renumbered(np.concatenate([before, after]))
        w = self.flows.w[ids]
        change = np.bincount(inverse, weights=np.concatenate([-w[fb], w[fa]]), minlength=links.size)
        d_c = float((change * (2 * self.loads.flat[links] + change)).sum() / self.mean)
        return self.search.delta(cores, new) + self.gamma * d_c, links, change

    def gains(self, moves: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """`score`'s change of J for each of `moves` (a core, or a swap's two cores, and their new slots), all in one
        pass of array operations: a step scores ~30 candidate moves, and one call per move cost most of the
        refinement's time (a 5,718-core TrueNorth tracker: 4 s of its 9 s of placement)."""
        s, f = self.search, self.flows
        sizes = np.array([len(c) for c, _ in moves])
        cand = np.repeat(np.arange(len(moves)), sizes)
        cores = np.concatenate([c for c, _ in moves]).astype(np.int64)
        new = np.concatenate([n for _, n in moves]).astype(np.int64)
        first = np.cumsum(sizes) - sizes
        partner = np.where(sizes[cand] == 2, 2 * first[cand] + 1 - np.arange(cores.size), -1)   # a swap's other core
        owner, nbr, w = s.rows(cores)
        mate = partner[owner]
        moving = (mate >= 0) & (cores[np.maximum(mate, 0)] == nbr)
        nbr_new = np.where(moving, new[np.maximum(mate, 0)], s.pos[nbr])
        change = s.dist(new[owner], nbr_new) - s.dist(s.pos[cores][owner], s.pos[nbr])
        hops = np.bincount(cand[owner], weights=w * change * np.where(moving, 0.5, 1.0), minlength=len(moves))
        per = [np.concatenate([f.by_src.indices[f.by_src.indptr[c]:f.by_src.indptr[c + 1]],
                               f.by_dst.indices[f.by_dst.indptr[c]:f.by_dst.indptr[c + 1]]]) for c in cores]
        key = distinct(np.repeat(cand, [len(x) for x in per]).astype(np.int64) * f.src.size + np.concatenate(per))
        owner_f, flow = key // f.src.size, key % f.src.size
        src, dst = f.src[flow], f.dst[flow]
        lead = first[owner_f]
        second = np.minimum(lead + 1, cores.size - 1)
        other = np.where(sizes[owner_f] == 2, cores[second], -1)

        def moved(core: np.ndarray, slot: np.ndarray) -> np.ndarray:
            return np.where(core == cores[lead], new[lead], np.where(core == other, new[second], slot))

        old_s, old_d = s.pos[src], s.pos[dst]
        before, fb = path_links(s, old_s, old_d)
        after, fa = path_links(s, moved(src, old_s), moved(dst, old_d))
        n_links = self.loads.size
        keys, inverse = renumbered(np.concatenate([owner_f[fb] * n_links + before, owner_f[fa] * n_links + after]))
        load = np.bincount(inverse, weights=np.concatenate([-f.w[flow][fb], f.w[flow][fa]]), minlength=keys.size)
        links = keys % n_links
        spread = np.bincount(keys // n_links, weights=load * (2 * self.loads.flat[links] + load), minlength=len(moves))
        return hops + self.gamma * spread / self.mean

    def candidates(self, core: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
        """Moves of `core` to random slots within _RADIUS routers: (cores, new slots), a swap when taken."""
        s = self.search
        window = s.rect(int(s.pos[core]), _RADIUS)
        window = window[window != s.pos[core]]
        out = []
        for slot in rng.choice(window, size=min(_SLOTS_PER_CORE, window.size), replace=False):
            other = int(s.occ[slot])
            out.append((np.array([core]), np.array([slot])) if other < 0 else
                       (np.array([core, other]), np.array([slot, s.pos[core]])))
        return out

    def step(self, link: tuple[int, int, int], rng: np.random.Generator) -> bool:
        """Make the best J-lowering move of a core with a heavy flow through `link`; False if none."""
        ids = self.through(link)
        heavy = ids[np.argsort(-self.flows.w[ids], kind="stable")[:_FLOWS_PER_LINK]]
        cores = distinct(np.concatenate([self.flows.src[heavy], self.flows.dst[heavy]]))
        moves = [move for core in cores for move in self.candidates(int(core), rng)]
        if not moves:
            return False
        gains = self.gains(moves)
        best = int(np.argmin(gains))   # the first of the best, as a loop keeping strict improvements would pick
        if not gains[best] < -1e-9:
            return False
        _, links, change = self.score(*moves[best])
        self.search.apply(*moves[best])
        self.loads.flat[links] += change
        moved = self.flows.touching(moves[best][0])
        for end, now in zip(self.ends, self._ends(moved)):
            end[moved] = now
        return True


def relieve(search: Search, traffic: sp.coo_array, gamma: float, seed: int, budget: Budget, moves: int) -> float:
    """Lower J = H + gamma C by up to `moves` moves off the hottest links (in place); returns C's relative drop."""
    if gamma <= 0 or traffic.nnz == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    relief = Relief(search, traffic, gamma)
    start = relief.congestion()
    skipped: set[tuple[int, int, int]] = set()
    misses = 0
    while moves > 0 and misses < _GIVE_UP and not budget.exhausted():
        link = _hottest(relief.loads, skipped)
        if link is None:
            break
        if relief.step(link, rng):
            moves, misses = moves - 1, 0
            skipped.clear()
        else:
            skipped.add(link)
            misses += 1
    return 1.0 - relief.congestion() / start if start > 0 else 0.0


def _hottest(loads: np.ndarray, skipped: set[tuple[int, int, int]]) -> tuple[int, int, int] | None:
    """The most loaded link not set aside, or None when no loaded link is left."""
    for i in _top(loads.ravel(), len(skipped) + 1):
        link = tuple(int(v) for v in np.unravel_index(i, loads.shape))
        if link not in skipped:
            return link if loads[link] > 0 else None
    return None


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """The indices of the k largest values, largest first and ties in index order: a stable descending argsort's
    first k, found by a partition instead of sorting every link of the mesh at each step."""
    if k >= values.size:
        return np.argsort(-values, kind="stable")
    kth = np.partition(values, values.size - k)[values.size - k]
    above, tied = np.flatnonzero(values > kth), np.flatnonzero(values == kth)
    chosen = np.concatenate([above, tied[:k - above.size]])
    return chosen[np.lexsort((chosen, -values[chosen]))]
