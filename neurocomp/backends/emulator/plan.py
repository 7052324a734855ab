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
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import scipy.sparse as sp

from neurocomp.encoding import payload_max
from neurocomp.ir.netlist import Netlist
from neurocomp.route import grid_hops
from neurocomp.target import Target

if TYPE_CHECKING:
    from neurocomp.program import Program

DENSE_MIN = 0.1          # cores whose crossbar is at least this dense merge only when they read the same sources
SMALL_CELLS = 1 << 16    # neighbouring cores' blocks this small merge into one sparse product: a product per
                         # small core costs more in calls than the rows it multiplies
EXACT = ((np.float32, 1 << 24), (np.float64, 1 << 53))


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
    n, hooks = program.netlist, target.hooks
    stoch = hooks.stochastic_synapses(n, target.spec)
    weights = sp.csr_matrix(hooks.synapse_matrix(n), dtype=np.int64)
    pattern = _pattern(n, np.ones(n.syn_axon.size, dtype=bool))
    groups = [] if stoch is None else [_pattern(n, stoch.groups == g) for g in range(len(stoch.sign))]
    routes, shared, n_shared = _routes(n)
    cols = _col_groups(n, n_shared)
    blocks: list[Block] = []
    for d, r in routes.items():
        blocks += _blocks(n, (weights @ r).tocsr(), (pattern @ r).tocsr(), cols, d, 0)
        for g, p in enumerate(groups):
            blocks += _blocks(n, None, (p @ r).tocsr(), cols, d, g + 1)
    stoch_fan_in = sum((np.asarray(p.sum(axis=1)).ravel() for p in groups), np.zeros(n.n_neurons))
    gain = np.ones(n.n_axons, dtype=np.int64)
    gain[n.in_axon] = payload = payload_max(int(target.spec.get("core.message_bits", 0)))
    bound = int(np.max(abs(weights) @ gain + stoch_fan_in, initial=0))
    if payload > 1:
        blocks = [_graded(b, payload) if b.cols_in(n.n_neurons, n.n_inputs) else b for b in blocks]
    depth = max(list(routes) + [d for d, _ in shared])
    per_core = int(np.bincount(n.axon_core()[n.syn_axon], minlength=n.n_cores).max(initial=0))  # events per tick
    hops = _hops(n, program)
    return Plan(n.n_neurons, n.n_inputs, n_shared, depth, tuple(blocks), tuple((d, exact_csr(q)) for d, q in shared),
                exact_csr(hops) if hops.nnz else None, n.neuron_ptr, exact_float(max(per_core, n.n_neurons)),
                bound, exact_float(bound), stoch)


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
    when they read the same columns (or are sparse anyway), so a layer usually costs one product."""
    a.eliminate_zeros()
    coo = a.tocoo()
    core = n.neuron_core()[coo.row]
    group = np.searchsorted([g[1] for g in cols], coo.col, side="right")
    order = np.lexsort((coo.col, core, group))
    key = np.stack([group[order], core[order], coo.col[order]])
    multi = coo.data > 1    # a (neuron, source) pair with several synapses
    single = np.ones((len(cols), n.n_cores), dtype=bool)
    single[group[multi], core[multi]] = False
    pairs = list(_per_pair(key))
    small = [(int(n.neuron_ptr[c + 1] - n.neuron_ptr[c])) * used.size <= SMALL_CELLS for (_, c), used, _ in pairs]
    spans: list[list[Any]] = []
    for i, ((g, c), used, nnz) in enumerate(pairs):
        r0, r1 = int(n.neuron_ptr[c]), int(n.neuron_ptr[c + 1])
        density = nnz / ((r1 - r0) * used.size)
        runs = small[i] and any(0 <= j < len(pairs) and small[j] and pairs[j][0][0] == g and abs(pairs[j][0][1] - c) == 1
                                for j in (i - 1, i + 1))
        kind = "sparse" if runs else "any" if density == 1 and single[g, c] else "dense" if density >= DENSE_MIN else "sparse"
        last = spans[-1] if spans else None
        if last and last[4] == g and last[1] == r0 and last[3] == kind and (kind == "sparse" or np.array_equal(last[2][0], used)):
            last[1] = r1
            last[2].append(used)
        else:
            spans.append([r0, r1, [used], kind, g])
    for span in spans:   # each span's columns: the union of its cores' (once, not core by core)
        span[2] = np.unique(np.concatenate(span[2]))
    return [_block(w, a, r0, r1, used, kind, delay, target) for r0, r1, used, kind in _join_groups(spans, cols)]


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


def _per_pair(key: np.ndarray) -> Iterator[tuple[tuple[int, int], np.ndarray, int]]:
    """(group, core), distinct columns, entries: for each pair in the sorted (group, core, col) triples (the
    columns are sorted within a pair, so the distinct ones are the first of each run, found once for all)."""
    n = key.shape[1]
    if n == 0:
        return
    new_pair = np.ones(n, dtype=bool)
    new_pair[1:] = np.any(key[:2, 1:] != key[:2, :-1], axis=0)
    new_col = new_pair.copy()
    new_col[1:] |= key[2, 1:] != key[2, :-1]
    cols = key[2, new_col]
    lo = np.flatnonzero(new_pair)
    hi = np.append(lo[1:], n)
    col_lo = (np.cumsum(new_col) - 1)[lo]
    col_hi = np.append(col_lo[1:], cols.size)
    for a, b, c, d in zip(lo.tolist(), hi.tolist(), col_lo.tolist(), col_hi.tolist()):
        yield (int(key[0, a]), int(key[1, a])), cols[c:d], b - a


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
