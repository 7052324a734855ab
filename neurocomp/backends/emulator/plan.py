"""Execution plan: a netlist folded, once per run, into the few matrices the tick loop multiplies.

A spike travels source -> axon (routing, with a delay) -> neurons (crossbar). An axon with one source
carries at most one spike per tick, so the two steps compose exactly into one matrix per delay from
sources (neurons and input channels) to neurons, and a source's per-core axon copies (Loihi) or
fan-out copies (TrueNorth) fold into a few large matmuls instead of one per core. An axon with several
sources can merge two spikes into one (one bit per axon and tick), so it stays explicit: a "shared"
source row holds its 0/1 activity, computed first each tick and read with delay 0.

Source rows: neurons [0, N), input channels [N, N+X), shared axons [N+X, N+X+H).

Float matmuls are exact: a block's inputs are 0/1 and every row has sum |m_ij| < 2**24 (float32) or
< 2**53 (float64), so every partial sum is an integer the type holds, in any summation order. The
matrices are CSR here; the device side multiplies dense ones through BLAS. On a target with graded
messages (`core.message_bits`) input channels carry integer payloads |p| <= P: input blocks then also
hold their plain weights (`payload`, exact for row sums times P), multiplied by the payloads, while
the packed or counting product runs on p != 0 for the synaptic events.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from neurocomp.distinct import distinct
from neurocomp.encoding import payload_max
from neurocomp.ir.netlist import Netlist, spans
from neurocomp.route import grid_hops
from neurocomp.target import Target

if TYPE_CHECKING:
    from neurocomp.program import Program

DENSE_MIN = 0.1          # cores whose crossbar is at least this dense merge only when they read the same sources
SMALL_CELLS = 1 << 16    # neighbouring cores' blocks this small merge into one sparse product: a product per
                         # small core costs more in calls than the rows it multiplies
EXACT = ((np.float32, 1 << 24), (np.float64, 1 << 53))
KINDS = ("sparse", "any", "dense")   # how a block's cores are multiplied; codes 0, 1, 2 while they are decided
SPARSE, ANY, DENSE = range(3)


@dataclass(frozen=True)
class Block:
    """acc[rows] (or a stochastic count) += matrix @ z[cols] with z the source rows `delay` ticks ago.

    Every mode also yields each row's number of active synapses (synaptic events; > 0: the neuron
    is active). mode "any": every row has exactly one synapse from every column, so that number is
    the number of columns that fired; "packed": matrix = W + scale * A (A counts synapses), so one
    product gives both, since scale > 2 * max |W z|; "count": the matrix counts stochastic synapses.
    """

    delay: int
    rows: slice
    cols: slice | np.ndarray
    matrix: sp.csr_matrix  # float32 or float64 (see `exact_csr`)
    target: int          # 0: the weighted input; g + 1: active synapses of stochastic group g
    mode: str
    scale: int = 0
    payload: sp.csr_matrix | None = None  # graded input blocks: the weights alone, times the payloads

    def cols_in(self, n_neurons: int, n_inputs: int) -> bool:
        """Whether every source row it reads is an input channel."""
        cols = np.arange(self.cols.start, self.cols.stop) if isinstance(self.cols, slice) else self.cols
        return self.target == 0 and cols.size > 0 and bool(np.all((cols >= n_neurons) & (cols < n_neurons + n_inputs)))


@dataclass(frozen=True)
class Plan:
    n_neurons: int
    n_inputs: int
    n_shared: int
    depth: int                                     # the longest delay
    blocks: tuple[Block, ...]
    shared: tuple[tuple[int, sp.csr_matrix], ...]  # per delay: (H x rows) spikes arriving on each shared axon
    hops: sp.csr_matrix | None                     # (3C x N): hops E-W, hops N-S, chip crossings per core and spike
    neuron_ptr: np.ndarray                         # (C+1,) core c owns neurons neuron_ptr[c]:neuron_ptr[c+1]
    sum_dtype: Any                                 # exact for per-core sums of synapse counts and spikes
    acc_bound: int                                 # max |summed input| of any neuron in one tick
    acc_dtype: Any
    stochastic: Any                                # the target's stochastic synapses (TrueNorth), or None
    routes: tuple[tuple[int, sp.csr_matrix], ...] = ()   # per delay: (A x rows) the source of each axon (`rebuild`)

    @property
    def rows(self) -> int:
        return self.n_neurons + self.n_inputs + self.n_shared


def exact_float(bound: int) -> Any:
    """The narrowest float type that holds every integer of magnitude <= bound."""
    for dtype, limit in EXACT:
        if bound < limit:
            return dtype
    raise ValueError(f"an input sum can reach {bound}, beyond exact float64 (2**53); weights this large are not supported")


def build(program: Program, target: Target) -> Plan:
    """The plan of one program: blocks per delay, shared-axon routes, counter tables and bounds."""
    n = program.netlist
    stoch = target.hooks.stochastic_synapses(n, target.spec)
    weights = sp.csr_matrix(target.hooks.synapse_matrix(n), dtype=np.int64)
    routes, shared, n_shared = _routes(n)
    blocks = _composed(n, weights, stoch, routes, n_shared, np.ones(n.n_neurons, dtype=bool), target)
    hops = _hops(n, program)
    return _plan(n, weights, stoch, blocks, routes, tuple((d, exact_csr(q)) for d, q in shared), n_shared,
                 exact_csr(hops) if hops.nnz else None, target)


def rebuild(base: Plan, program: Program, target: Target, changed: np.ndarray) -> Plan:
    """The plan of `program`, which is base's program with new synapses, tables and neuron parameters on the
    `changed` cores only (a bind): base's blocks that read none of their rows are kept, the rest are composed
    again for their rows alone. Routes, shared axons and hops are base's (a bind moves no edge)."""
    n = program.netlist
    stoch = target.hooks.stochastic_synapses(n, target.spec)
    if not _same_groups(stoch, base.stochastic):
        return build(program, target)
    redo = np.zeros(n.n_neurons, dtype=bool)
    redo[spans(n.neuron_ptr, changed)] = True
    hit = np.zeros(len(base.blocks), dtype=bool)
    grew = True
    while grew:   # a block that shares a row with the redone ones is redone whole, so no synapse counts twice
        now = np.array([redo[b.rows].any() for b in base.blocks], dtype=bool)
        grew, hit = bool((now & ~hit).any()), hit | now
        for b, h in zip(base.blocks, now):
            if h:
                redo[b.rows] = True
    weights = sp.csr_matrix(target.hooks.synapse_matrix(n), dtype=np.int64)
    routes = dict(base.routes)
    blocks = [b for b, h in zip(base.blocks, hit) if not h] + _composed(n, weights, stoch, routes, base.n_shared, redo,
                                                                          target)
    return _plan(n, weights, stoch, blocks, routes, base.shared, base.n_shared, base.hops, target)


def _same_groups(a: Any, b: Any) -> bool:
    """Whether two programs' stochastic synapse groups are the same groups (a kept block names one by index)."""
    if a is None or b is None:
        return a is None and b is None
    return len(a.sign) == len(b.sign) and np.array_equal(np.asarray(a.sign), np.asarray(b.sign))


def _composed(n: Netlist, weights: sp.csr_matrix, stoch: Any, routes: dict[int, sp.csr_matrix], n_shared: int,
              rows: np.ndarray, target: Target) -> list[Block]:
    """The blocks of the neurons `rows` (bool per neuron): routing and crossbar composed per delay, cut per core."""
    kept = rows[n.syn_neuron]
    w = weights if rows.all() else sp.diags(rows, dtype=np.int64) @ weights
    pattern = _pattern(n, kept)
    groups = [] if stoch is None else [_pattern(n, kept & (stoch.groups == g)) for g in range(len(stoch.sign))]
    cols = _col_groups(n, n_shared)
    blocks: list[Block] = []
    for d, r in routes.items():
        blocks += _blocks(n, (w @ r).tocsr(), (pattern @ r).tocsr(), cols, d, 0)
        for g, p in enumerate(groups):
            blocks += _blocks(n, None, (p @ r).tocsr(), cols, d, g + 1)
    payload = payload_max(int(target.spec.get("core.message_bits", 0)))
    return [_graded(b, payload) if payload > 1 and b.cols_in(n.n_neurons, n.n_inputs) else b for b in blocks]


def _plan(n: Netlist, weights: sp.csr_matrix, stoch: Any, blocks: list[Block], routes: dict[int, sp.csr_matrix],
          shared: tuple[tuple[int, sp.csr_matrix], ...], n_shared: int, hops: sp.csr_matrix | None,
          target: Target) -> Plan:
    """The Plan around its blocks: the input bound over the whole program and the exact types it needs."""
    stoch_fan_in = np.zeros(n.n_neurons)
    for g in range(0 if stoch is None else len(stoch.sign)):
        stoch_fan_in += np.bincount(n.syn_neuron[stoch.groups == g], minlength=n.n_neurons)
    gain = np.ones(n.n_axons, dtype=np.int64)
    gain[n.in_axon] = payload_max(int(target.spec.get("core.message_bits", 0)))
    bound = int(np.max(abs(weights) @ gain + stoch_fan_in, initial=0))
    depth = max(list(routes) + [d for d, _ in shared])
    per_core = int(np.bincount(n.axon_core()[n.syn_axon], minlength=n.n_cores).max(initial=0))  # events per tick
    return Plan(n.n_neurons, n.n_inputs, n_shared, depth, tuple(blocks), shared, hops, n.neuron_ptr,
                exact_float(max(per_core, n.n_neurons)), bound, exact_float(bound), stoch, tuple(routes.items()))


def _graded(b: Block, payload: int) -> Block:
    """An input block with its plain weights for graded payloads: a packed matrix W + scale * A gives
    A = rint(m / scale) entry by entry, since every |W_ij| < scale / 2."""
    w = b.matrix.astype(np.float64)
    if b.mode == "packed":
        w = w - b.scale * sp.csr_matrix((np.rint(w.data / b.scale), w.indices, w.indptr), shape=w.shape)
    return replace(b, payload=exact_csr(w, _row_bound(w) * payload))


def _pattern(n: Netlist, keep: np.ndarray) -> sp.csr_matrix:
    """(N x A) number of kept synapses per (neuron, axon)."""
    m = sp.csr_matrix((np.ones(int(keep.sum())), (n.syn_neuron[keep], n.syn_axon[keep])), shape=(n.n_neurons, n.n_axons))
    m.sum_duplicates()
    return m


def _routes(n: Netlist) -> tuple[dict[int, sp.csr_matrix], tuple[tuple[int, sp.csr_matrix], ...], int]:
    """Per delay, (A x rows) 0/1: which source drives each single-source axon; delay 0 maps each
    shared axon to its own row. Plus, per delay, (H x rows) spike counts onto the shared axons."""
    N, X, A = n.n_neurons, n.n_inputs, n.n_axons
    src = np.concatenate([n.edge_src, N + n.in_channel]).astype(np.int64)
    axon = np.concatenate([n.edge_axon, n.in_axon]).astype(np.int64)
    delay = np.concatenate([n.edge_delay, n.in_delay]).astype(np.int64)
    if delay.size and delay.min() < 1:
        raise ValueError(f"edge delay {int(delay.min())}: delays must be >= 1 tick")
    degree = np.bincount(axon, minlength=A)
    shared_axons = np.flatnonzero(degree >= 2)
    H, rows = shared_axons.size, N + X + shared_axons.size
    row_of = np.full(A, -1)
    row_of[shared_axons] = np.arange(H)
    single = degree[axon] == 1
    mat = lambda r, c, shape: sp.csr_matrix((np.ones(r.size), (r, c)), shape=shape)  # noqa: E731
    routes = {int(d): mat(axon[single & (delay == d)], src[single & (delay == d)], (A, rows))
              for d in np.unique(delay[single])}
    if H:
        routes[0] = mat(shared_axons, N + X + np.arange(H), (A, rows))
    shared = tuple((int(d), mat(row_of[axon[~single & (delay == d)]], src[~single & (delay == d)], (H, rows)))
                   for d in np.unique(delay[~single]))
    return (routes or {1: sp.csr_matrix((A, rows))}), shared, H


def _col_groups(n: Netlist, n_shared: int) -> list[tuple[int, int, str]]:
    """Source row ranges that tend to be read together, and their kind: runs of cores of one layer
    ("neurons"), each input ("inputs"), the shared axons ("shared")."""
    starts = np.flatnonzero(np.diff(n.core_layer, prepend=-2) != 0)
    bounds = list(n.neuron_ptr[starts]) + [n.n_neurons]
    groups = [(int(a), int(b), "neurons") for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    off = n.n_neurons
    for _, shape in n.inputs:
        groups.append((off, off + int(np.prod(shape)), "inputs"))
        off += int(np.prod(shape))
    return groups + ([(off, off + n_shared, "shared")] if n_shared else [])


def _blocks(n: Netlist, w: sp.csr_matrix | None, a: sp.csr_matrix, cols: list[tuple[int, int, str]], delay: int,
            target: int) -> list[Block]:
    """Cut one composed matrix into blocks: per core and source group, merged along consecutive cores
    when they read the same columns (or are sparse anyway), so a layer usually costs one product. Decided for
    all (group, core) pairs at once; the loop runs over the blocks."""
    a.eliminate_zeros()
    coo = a.tocoo()
    core = np.repeat(np.arange(n.n_cores, dtype=np.int64), np.diff(n.neuron_ptr))[coo.row]
    group = np.searchsorted([g[1] for g in cols], np.arange(a.shape[1]), side="right")[coo.col]   # per column once
    multi = coo.data > 1    # a (neuron, source) pair with several synapses
    single = np.ones((len(cols), n.n_cores), dtype=bool)
    single[group[multi], core[multi]] = False
    g, c, entries, used, ptr = _pairs(_sorted_triples(group, core, coo.col, n.n_cores, a.shape[1]))
    if g.size == 0:
        return []
    r0, r1 = n.neuron_ptr[c].astype(np.int64), n.neuron_ptr[c + 1].astype(np.int64)
    width = np.diff(ptr)
    cells = (r1 - r0) * width
    small = cells <= SMALL_CELLS
    beside = (g[1:] == g[:-1]) & (np.abs(c[1:] - c[:-1]) == 1) & small[1:] & small[:-1]
    runs = small & (np.append(False, beside) | np.append(beside, False))
    full = (entries == cells) & single[g, c]
    kind = np.where(runs, SPARSE, np.where(full, ANY, np.where(entries / cells >= DENSE_MIN, DENSE, SPARSE)))
    merge = np.append(False, (g[1:] == g[:-1]) & (r0[1:] == r1[:-1]) & (kind[1:] == kind[:-1])
                      & ((kind[1:] == SPARSE) | _same_as_previous(used, ptr)[1:]))
    first = np.flatnonzero(~merge)
    last = np.append(first[1:], g.size) - 1
    span = np.cumsum(~merge) - 1
    united = distinct(np.repeat(span, width) * a.shape[1] + used)   # each span's columns, sorted, once
    bounds = np.searchsorted(united // a.shape[1], np.arange(first.size + 1))
    columns = united % a.shape[1]
    cut = [[int(r0[f]), int(r1[e]), columns[lo:hi], KINDS[kind[f]], int(g[f])]
           for f, e, lo, hi in zip(first.tolist(), last.tolist(), bounds[:-1].tolist(), bounds[1:].tolist())]
    return [_block(w, a, *joined, delay, target) for joined in _join_groups(cut, cols)]


def _join_groups(spans: list[list[Any]], cols: list[tuple[int, int, str]]) -> list[tuple[int, int, np.ndarray, str]]:
    """One block per row range and kind of source (neurons, inputs, shared axons): several layers (or
    partial-sum parts) feeding the same cores cost one product, not one each."""
    joined: dict[tuple[int, int, str], list[Any]] = {}
    for r0, r1, used, kind, g in spans:
        key = (r0, r1, cols[g][2])
        if key in joined:
            prev = joined[key]
            prev[2], prev[3] = np.union1d(prev[2], used), "any" if prev[3] == kind == "any" else "dense"
        else:
            joined[key] = [r0, r1, used, kind]
    return [(r0, r1, used, kind) for r0, r1, used, kind in joined.values()]


def _sorted_triples(group: np.ndarray, core: np.ndarray, col: np.ndarray, n_cores: int, n_cols: int) -> np.ndarray:
    """The (group, core, col) triples in ascending order, as a (3, n) array: one int64 key per entry sorted by value
    (the entries come in row order, mostly sorted already), not a three-key lexsort and three gathers (a tracker's
    7 x 10^6 entries: about 0.25 against 0.5 s)."""
    if (int(group.max(initial=0)) + 1) * n_cores * n_cols >= 2 ** 63:
        raise ValueError(f"{n_cores} cores x {n_cols} sources: too many for the emulator plan's int64 keys")
    key = group * n_cores
    key += core
    key *= n_cols
    key += col
    key.sort(kind="stable")
    out = np.empty((3, key.size), np.int64)   # decoded in place: the key becomes (group, core) pairs, then rows
    np.divmod(key, n_cols, out=(key, out[2]))
    np.divmod(key, n_cores, out=(out[0], out[1]))
    return out


def _pairs(key: np.ndarray) -> tuple[np.ndarray, ...]:
    """For the sorted (group, core, col) triples: each (group, core) pair's group, core and entries, and its
    distinct columns as one flat array with pointers (pair i's are used[ptr[i]:ptr[i + 1]], sorted)."""
    n = key.shape[1]
    new_pair = np.ones(n, dtype=bool)
    new_pair[1:] = np.any(key[:2, 1:] != key[:2, :-1], axis=0)
    new_col = new_pair.copy()
    new_col[1:] |= key[2, 1:] != key[2, :-1]
    lo = np.flatnonzero(new_pair)
    ptr = np.append((np.cumsum(new_col) - 1)[lo], int(new_col.sum())).astype(np.int64)
    return key[0, lo], key[1, lo], np.diff(np.append(lo, n)), key[2, new_col], ptr


def _same_as_previous(used: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """Per pair, whether its columns are the previous pair's (False for the first)."""
    width = np.diff(ptr)
    same = np.zeros(width.size, dtype=bool)
    cand = np.flatnonzero(width[1:] == width[:-1]) + 1
    if cand.size:
        at = spans(ptr, cand)
        differ = used[at] != used[at - np.repeat(width[cand], width[cand])]
        same[cand] = np.bincount(np.repeat(np.arange(cand.size), width[cand]), weights=differ,
                                 minlength=cand.size) == 0
    return same


def _block(w: sp.csr_matrix | None, a: sp.csr_matrix, r0: int, r1: int, used: np.ndarray, kind: str, delay: int,
           target: int) -> Block:
    ab = a[r0:r1][:, used]
    scale = 0
    if target:
        m, mode = ab, "count"
    elif kind == "any":
        m, mode = w[r0:r1][:, used], "any"
    else:
        wb = w[r0:r1][:, used]
        scale = 1 << (2 * _row_bound(wb)).bit_length()   # > 2 max |W z|, a power of two
        m, mode = wb + scale * ab, "packed"
    contiguous = used[-1] - used[0] + 1 == used.size
    cols = slice(int(used[0]), int(used[-1]) + 1) if contiguous else used
    # packed outputs are decoded in float (y / scale + 1/2 must stay exact too); "any" blocks also count
    # their active columns, at most used.size
    return Block(delay, slice(r0, r1), cols, exact_csr(m, max(_row_bound(m) + scale, used.size)), target, mode, scale)


def exact_csr(m: sp.spmatrix, bound: int | None = None) -> sp.csr_matrix:
    """CSR in float32 if every output stays below 2**24 (for 0/1 inputs, or below `bound` as the
    caller knows it), else float64."""
    m = sp.csr_matrix(m)
    return m.astype(exact_float(_row_bound(m) if bound is None else bound))


def _row_bound(m: sp.csr_matrix) -> int:
    return int(np.max(np.asarray(abs(m).sum(axis=1)), initial=0))


def _hops(n: Netlist, program: Program) -> sp.csr_matrix:
    """(3C x N): per core, the E-W hops, N-S hops and chip crossings one spike of each neuron travels."""
    placed = program.placed
    sc, dc = n.core_traffic_edges()
    hops = grid_hops(placed.gx(), placed.gy(), placed.chip_cols, placed.chip_rows, sc, dc)
    per_neuron = [np.bincount(n.edge_src, weights=h, minlength=n.n_neurons) for h in hops]
    core, idx, C = n.neuron_core(), np.arange(n.n_neurons), n.n_cores
    m = sp.csr_matrix((np.concatenate(per_neuron), (np.concatenate([core + k * C for k in range(3)]), np.tile(idx, 3))),
                      shape=(3 * C, n.n_neurons))
    m.eliminate_zeros()
    return m
