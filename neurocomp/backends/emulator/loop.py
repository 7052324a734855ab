"""Integer-exact emulator of a compiled Program, vectorised over all cores and a batch.

Per tick: a few block products (`plan.py`: routing and crossbar composed per delay) over the
spikes of the last `depth` ticks, kept in a buffer, give every neuron's summed input and its
number of active synapses; the target's fast neuron hook (`stepper`) updates every neuron. Blocks
fed only by input channels run for a whole chunk of ticks in one product, straight from the
input array, into the chunk's per-tick input sums. The recorded spikes, the counters and the
per-tick timing estimate come from the buffered spikes and synapse counts, once per chunk: a
tick itself is the products of the blocks that read neurons, a cast and the neuron update.

Runs on numpy (default) or torch (`device="cpu"`, `"cuda"`) with identical integers: every float
product is exact by construction (plan.py) and the neuron hooks work in int64.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from neurocomp.arrays import int8_of, namespace, one_torch_thread
from neurocomp.backends.emulator.plan import Block, Plan, build, rebuild
from neurocomp.encoding import input_spikes
from neurocomp.ir import sums
from neurocomp.ir.netlist import Netlist
from neurocomp.memory import batch_of, require_run
from neurocomp.target import Target

if TYPE_CHECKING:
    from neurocomp.program import Program

COUNTERS = ("synaptic_events", "neuron_active", "neuron_idle", "spikes", "hops_ew", "hops_ns", "interchip")
# A chunk of ticks keeps its tick buffers within CHUNK_BYTES, so they stay in cache, but spans at least CHUNK_TICKS
# sample-ticks (batch x ticks), since a chunk's bookkeeping costs about 1 ms besides its ticks; an input block's
# products for the chunk go AHEAD_BYTES of operands at a time. Against 64 MB chunks in one product (steady state,
# benchmarks/emulator_vs_lava.py nets at batch 256, interleaved runs): dense +1..+10 %, conv +4..+15 %; the
# micro tracker's frames (batch 1) unchanged.
CHUNK_BYTES = 8 << 20
CHUNK_TICKS = 64
AHEAD_BYTES = 8 << 20
# A product with many rows (batch x ticks) runs dense through BLAS down to 2 % density, where BLAS still
# beats CSR per useful multiply; with few rows (one tick, small batch) CSR wins below 10 %.
DENSE_MIN = {True: 0.02, False: 0.1}
DENSE_MAX_CELLS = 1 << 24
THREADED_MACS = 1 << 24  # a product this large per tick uses every BLAS thread; smaller ones use one
INT8_MIN_MACS = 1 << 24  # a product this large runs int8 where exact; below, casting its rows to int8 costs the gain
MEMBERSHIP_CELLS = 1 << 18  # per-core sums of up to this many neuron x core cells, over many rows, as one product
# A batch whose ticks each touch this many cells (samples x (source rows + neurons)) per BLAS thread is split over
# those threads, one loop per part side by side: numpy and the int8 kernel release the GIL for arrays this large.
SPLIT_MIN_CELLS = 1 << 17


@dataclass(frozen=True)
class RunResult:
    spikes: Mapping[str, np.ndarray]      # layer -> (batch, ticks, *shape) uint8
    potentials: Mapping[str, np.ndarray]  # readout layer -> (batch, ticks, *shape) float64, in float units
    core_counts: Mapping[str, np.ndarray]  # counter -> (cores,) totals over ticks and batch
    merges: int                           # spikes lost because two arrived at one axon in one tick
    ticks: int
    batch: int
    wall_s: float                         # the tick loop
    layer_counts: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # layer -> counter -> total
    tick_s: np.ndarray | None = None      # (batch, ticks) estimated hardware tick: slowest core + barrier
    timing: Mapping[str, float | None] = field(default_factory=dict)  # tick mean / worst, slack vs real time
    setup_s: float = 0.0                  # building the plan and moving it to the device


def _layer_inputs(n: Netlist, inputs: Mapping[str, np.ndarray], ticks: int | None, message_bits: int = 0) -> np.ndarray:
    """(batch, ticks, channels) input over all Input nodes, concatenated in netlist order: binary spikes, or
    integer payloads where the target sends graded messages."""
    parts = [input_spikes(inputs[name], shape, ticks, message_bits=message_bits) for name, shape in n.inputs]
    batch = {p.shape[0] for p in parts}
    steps = {p.shape[1] for p in parts}
    if len(batch) != 1 or len(steps) != 1:
        raise ValueError("all inputs need the same batch size and number of ticks")
    return np.concatenate([p.reshape(p.shape[0], p.shape[1], -1) for p in parts], axis=2)


@dataclass(frozen=True)
class Prepared:
    """A program ready to emulate, reusable for many runs (a tracker scores every frame with the
    same bound program). Copies (Netlist.copies) run once per neuron while they stay identical."""

    program: Program               # the program that runs (one neuron per copy where copies differ)
    plan: Plan
    members: np.ndarray | None     # (N,) hardware neurons each emulated neuron stands for; None: 1 each
    core_neurons: np.ndarray       # (C,) hardware neurons per core
    setup_s: float


def prepare(program: Program, target: Target, copies: bool = True, base: Prepared | None = None,
            changed: np.ndarray | None = None) -> Prepared:
    """`copies`: emulate each neuron's copies once where the target says they stay identical (the
    same results, faster); else, and where updates draw random numbers, one neuron per copy. `base` and
    `changed`: `program` is base's with new tables on the `changed` cores only (neurocomp.bind), so base's plan
    is kept for the other cores (plan.rebuild)."""
    start = time.perf_counter()
    n = program.netlist
    members = None
    if n.copies is not None and np.any(n.copies > 1):
        if copies and target.hooks.deterministic(n):
            members = n.copies
        else:
            program = dataclasses.replace(program, netlist=n.expanded())
    same_rows = base is not None and program.netlist is n and base.program.netlist.n_neurons == n.n_neurons
    plan = rebuild(base.plan, program, target, changed) if same_rows and changed is not None else build(program, target)
    return Prepared(program, plan, members, n.core_neurons(), time.perf_counter() - start)


def run(program: Program | Prepared, target: Target, inputs: Mapping[str, np.ndarray], ticks: int | None = None,
        record: Sequence[str] | None = None, seed: int = 0, device: str | None = None,
        copies: bool = True) -> RunResult:
    """Emulate `ticks` ticks for a batch of inputs. device None: numpy; "cpu" / "cuda": torch there.

    The rng (stochastic leak, threshold and synapses) is a numpy Generator on every device, so a
    seed gives the same run everywhere; deterministic programs never draw from it. A Prepared
    program skips the set-up; a plain one is prepared first (`copies` as in `prepare`).
    """
    start = time.perf_counter()
    ready = program if isinstance(program, Prepared) else prepare(program, target, copies)
    n = ready.program.netlist
    if ticks is not None:  # else the input's own ticks, already in memory
        require_run(n.n_neurons, sum(math.prod(s) for _, s in n.inputs), batch_of(inputs), ticks)
    x = _layer_inputs(ready.program.netlist, inputs, ticks, int(target.spec.get("core.message_bits", 0)))
    (B, T), n = x.shape[:2], ready.program.netlist
    spiking, readout = _recorded(n, record)
    spk = {lm.name: np.zeros((B, T, lm.neurons.size), dtype=np.uint8) for lm, _, _ in spiking}
    pot = {lm.name: np.zeros((B, T, lm.neurons.size)) for lm in readout}
    budget = _blas_budget()
    parts, xp = _batch_parts(ready, target, B, device, budget), namespace(device)
    loops = [_Loop(ready, target, xp, x[part], (spiking, readout, {k: v[part] for k, v in spk.items()},
                                                 {k: v[part] for k, v in pot.items()}), seed, budget if len(parts) == 1 else None)
             for part in parts]
    setup = time.perf_counter() - start
    _run_side_by_side(loops)
    return _result(loops, spk, pot, time.perf_counter() - start - setup, setup)


def _batch_parts(ready: Prepared, target: Target, batch: int, device: str | None, budget: int) -> list[slice]:
    """The batch in one part per BLAS thread of the budget where that pays (SPLIT_MIN_CELLS per thread, numpy
    runs), else whole. Only runs that draw no random numbers split: their samples never interact, so the spikes,
    potentials and counters are the whole batch's, whatever the split."""
    threads = min(budget, batch)
    cells = batch * (ready.plan.rows + ready.plan.n_neurons)
    if device is not None or threads < 2 or cells < SPLIT_MIN_CELLS * threads or \
            not target.hooks.deterministic(ready.program.netlist):
        return [slice(0, batch)]
    bounds = np.linspace(0, batch, threads + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def _run_side_by_side(loops: list[_Loop]) -> None:
    """One loop here; several on threads, with BLAS and torch at one thread each meanwhile."""
    if len(loops) == 1:
        loops[0].run()
        return
    with _blas_threads(1), one_torch_thread(), ThreadPoolExecutor(len(loops)) as pool:
        for done in [pool.submit(loop.run) for loop in loops]:
            done.result()


def _recorded(n: Netlist, record: Sequence[str] | None) -> tuple[list, list]:
    """The recorded spiking layers (with their neuron span and order, `_span`) and read-out layers."""
    record = sums.expand(record, n.notes.get(sums.KEY, {}))
    layers = [lm for lm in n.layers if record is None or lm.name in record]
    return [(lm, *_span(lm.neurons)) for lm in layers if lm.kind == "spiking"], [lm for lm in layers if lm.kind == "readout"]


def _result(loops: list[_Loop], spk: dict[str, np.ndarray], pot: dict[str, np.ndarray], wall: float,
            setup: float) -> RunResult:
    """The whole batch's result from its parts' loops (in batch order), which wrote into spk and pot."""
    first = loops[0]
    n, T = first.program.netlist, first.ticks
    B = sum(loop.batch for loop in loops)
    totals = first.totals if len(loops) == 1 else {k: sum(loop.totals[k] for loop in loops) for k in COUNTERS}
    tick_s = np.concatenate([loop.tick_s for loop in loops])
    slack = None if first.slack is None else np.concatenate([loop.slack for loop in loops])
    shape = {lm.name: lm.shape for lm in n.layers}
    spikes = {k: v.reshape((B, T) + shape[k]) for k, v in spk.items()}
    pots = sums.add({k: v.reshape((B, T) + shape[k]) for k, v in pot.items()}, n.notes.get(sums.KEY, {}))
    return RunResult(spikes, pots, totals, sum(int(loop.merges) for loop in loops), T, B, wall, _layer_counts(n, totals),
                     tick_s, _timing_summary(tick_s, slack), setup)


def _timing_summary(tick_s: np.ndarray, slack: np.ndarray | None) -> dict[str, float | None]:
    if tick_s.size == 0:
        return {}
    known = slack is not None
    return {"tick_mean_s": float(tick_s.mean()), "tick_worst_s": float(tick_s.max()),
            "slack": float(slack.min()) if known else None,          # of the worst tick
            "slack_mean": float(slack.mean()) if known else None}


@functools.cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def _blas_budget() -> int:
    """The BLAS threads a run may use: as set when it starts (OMP_NUM_THREADS, Ray's one per worker, an enclosing
    threadpool_limits such as a sweep point's)."""
    return max((i["num_threads"] for i in _blas_controller().info() if i["user_api"] == "blas"), default=1)


def _blas_threads(n: int) -> AbstractContextManager:
    """BLAS limited to n threads. The per-tick products are small: handing them to a second thread costs more
    than it saves, and under CPU contention it costs milliseconds."""
    return _blas_controller().limit(limits=n, user_api="blas")


class _Product:
    """z (M, U) -> z @ m.T (M, R) for a plan matrix m (R, U): dense through BLAS, sparse through CSR,
    picked by density and by M (rows per product). Large dense products of 0/1 rows (`binary`) run int8 where
    m is int8 times a power of two (arrays.int8_of), about 3x faster than BLAS in float32; a packed block
    (m = W + packed * A, plan.Block) whose m leaves int8 multiplies W and A side by side in one int8 product."""

    def __init__(self, m: sp.csr_matrix, xp, rows: int, binary: bool = True, packed: int = 0) -> None:
        cells = m.shape[0] * m.shape[1]
        self.xp, self.dense = xp, DENSE_MIN[rows >= 32] * cells <= m.nnz and cells <= DENSE_MAX_CELLS
        self.dtype = xp.float32 if m.dtype == np.float32 else xp.float64
        self.packed, self.inv = float(packed), 1.0 / packed if packed else 0.0
        dense = np.ascontiguousarray(m.T.toarray()) if self.dense else None
        self.int8 = self._int8(dense, packed) if self.dense and binary and rows * cells >= INT8_MIN_MACS else None
        self.m = None if self.int8 is not None else xp.matrix(dense if self.dense else m, self.dtype)
        self.cast = None if m.dtype == np.float32 else self.dtype

    @property
    def operand(self) -> type:
        """What z is best made of on the host."""
        return np.int8 if self.int8 is not None else np.float32

    def _int8(self, dense: np.ndarray, packed: int) -> tuple[object, list[int]] | None:
        """The int8 weights (U, R per part) and each part's scale; None where int8 cannot hold them."""
        parts = [int8_of(dense)]
        if packed and parts[0] is None:   # W + packed * A leaves int8: W and A as two parts
            counts = np.rint(dense / packed)
            parts = [int8_of(dense - packed * counts), int8_of(counts)]
        if any(p is None for p in parts):
            return None
        w = self.xp.int8_weights(np.concatenate([p[0] for p in parts], axis=1))
        return None if w is None else (w, [p[1] for p in parts])

    def __call__(self, z, out=None):
        """The product, written into `out` (M, R) when given (BLAS writes it directly); packed blocks use `split`."""
        if self.int8 is not None:
            w, (scale,) = self.int8
            return self.xp.scaled(self.xp.int8_matmul(z, w), scale, self.dtype, out)
        if self.cast is not None:
            z = self.xp.cast(z, self.cast)
        if self.dense:
            return z @ self.m if out is None else self.xp.matmul(z, self.m, out=out)
        y = self.xp.contiguous((self.m @ self.xp.contiguous(z.T)).T)   # CSR x (U, M) dense, both backends
        if out is None:
            return y
        out[...] = y
        return out

    def split(self, z):
        """A packed block's weighted sums and active synapses per row, for z (M, U)."""
        if self.int8 is not None and len(self.int8[1]) == 2:
            w, (weights, counts) = self.int8
            y = self.xp.int8_matmul(z, w)
            r = y.shape[1] // 2
            return self.xp.scaled(y[:, :r], weights, self.dtype), self.xp.scaled(y[:, r:], counts, self.dtype)
        # y = w + scale * n with |w| < scale / 2 (plan.py): n = rint(y / scale), and in place, without a second
        # temporary, w = (y / scale - n) * scale: every step exact (powers of two; w / scale fits y's mantissa)
        y = self(z)
        n_active = self.xp.rint(y * self.inv)
        y *= self.inv
        y -= n_active
        y *= self.packed
        return y, n_active


class _DeviceBlock:
    """A plan Block on the device, writing into the loop's per-chunk acc, events and counts. Blocks
    that read only input channels are evaluated for a whole chunk of ticks in one product ahead of
    the ticks, straight from the host's input spikes. A "any" block's synaptic events are its active
    columns, counted from the buffer once per chunk, so its tick is one product straight into acc
    when it writes its rows first."""

    def __init__(self, b: Block, xp, n_neurons: int, n_inputs: int, batch: int, chunk: int) -> None:
        self.xp, self.delay, self.rows, self.target, self.mode = xp, b.delay, b.rows, b.target, b.mode
        self.cols = b.cols if isinstance(b.cols, slice) else xp.asarray(b.cols)
        lo, hi = (b.cols.start, b.cols.stop) if isinstance(b.cols, slice) else (b.cols.min(), b.cols.max() + 1)
        self.ahead = n_neurons <= lo and hi <= n_neurons + n_inputs
        self.channels = slice(lo - n_neurons, hi - n_neurons) if isinstance(b.cols, slice) else b.cols - n_neurons
        self.product = _Product(b.matrix, xp, batch * (chunk if self.ahead else 1),
                                packed=b.scale if b.mode == "packed" else 0)
        self.bytes_per_tick = 4 * batch * sum(b.matrix.shape)
        self.payload = None if b.payload is None else _Product(b.payload, xp, batch * chunk, binary=False)
        self.large = batch * b.matrix.shape[0] * b.matrix.shape[1] >= THREADED_MACS   # per tick, ahead or not
        self.threaded = 0   # BLAS threads its products take (set by the loop); 0: the loop's one
        self.first = self.first_events = False   # first to write its rows of acc / events: assigns instead of adding
        self.direct = False                       # a tick's product goes straight into acc (set with `first`)
        self.acc = self.events = self.counts = None

    def bind(self, acc, events, counts) -> None:
        """Write into these (tick, batch, N) arrays ((groups, tick, batch, N) for counts), this block's rows."""
        if self.target:
            self.counts = counts[self.target - 1][..., self.rows]
        else:
            self.acc, self.events = acc[..., self.rows], events[..., self.rows]

    def _evaluate(self, z):
        """(input or stochastic count, active synapses per row) for source rows z (M, U); None for
        the second in modes "count" and "any" (see `_active`)."""
        return self.product.split(z) if self.mode == "packed" else (self.product(z), None)

    @staticmethod
    def _active(z):
        """Mode "any": each row's active synapses are the active columns of z (..., U) 0/1, as (..., 1)."""
        return z.sum(-1)[..., None]

    def prepare(self, x: np.ndarray, t0: int, k: int, at: int = 0) -> None:
        """Ticks t0..t0+k-1 at once from x (batch, ticks, channels), into the chunk's ticks at..at+k-1; ticks
        before 0 had no input."""
        lo = t0 - self.delay
        window = x[:, max(lo, 0):max(lo + k, 0), self.channels].transpose(1, 0, 2)   # tick-major, as acc
        if lo < 0:
            window = np.concatenate([np.zeros((min(-lo, k),) + window.shape[1:], x.dtype), window], axis=0)
        operand = self.product.operand if self.payload is None else np.float32
        z = self.xp.asarray(np.ascontiguousarray(window, dtype=operand).reshape(-1, window.shape[2]))
        if self.payload is None:
            y, ev = self._evaluate(z)
            sent = z
        else:   # graded payloads: weights times payloads; synaptic events from which channels sent one
            sent = self.xp.cast(z != 0, self.xp.float32)
            ev = None if self.mode == "any" else self._evaluate(sent)[1]
            y = self.payload(z)
        if self.mode == "any":
            ev = self._active(sent)
        shape = window.shape[:2] + (-1,)
        self._write(y.reshape(shape), None if ev is None else ev.reshape(shape), slice(at, at + k))

    def apply(self, buf, slot: int, j: int) -> None:
        """Tick j of the chunk (buffer slot `slot`) of a block that reads neurons or shared axons."""
        z = buf[slot - self.delay][:, self.cols]
        if self.threaded:
            with _blas_threads(self.threaded):
                self._tick(z, j)
        elif self.direct:
            self.product(z, self.acc[j])
        else:
            self._tick(z, j)

    def _tick(self, z, j: int) -> None:
        if self.direct:
            self.product(z, self.acc[j])
        else:
            self._write(*self._evaluate(z), j)

    def count_active(self, buf, depth: int, k: int) -> None:
        """A "any" block's synaptic events of the chunk's k ticks, from the spikes it read (buffer slots from depth)."""
        lo = depth - self.delay
        self._write(None, self._active(buf[lo:lo + k][:, :, self.cols]), slice(0, k))

    def _write(self, y, ev, t: int | slice) -> None:
        """y and ev into tick(s) t of this block's rows (y None: ev alone)."""
        if self.target:
            self.counts[t] += y
            return
        if y is not None and self.first:
            self.acc[t] = y
        elif y is not None:
            self.acc[t] += y
        if ev is not None and self.first_events:
            self.events[t] = ev
        elif ev is not None:
            self.events[t] += ev


class _Loop:
    """The tick loop and its chunked bookkeeping (see the module docstring). Batch-major: the
    buffer holds, per tick slot, (batch, source rows) 0/1 as float32; acc, events and counts hold
    the chunk's ticks, (tick, batch, N)."""

    def __init__(self, ready: Prepared, target: Target, xp, x: np.ndarray, outputs: tuple[list, list, dict, dict],
                 seed: int, budget: int | None = 1) -> None:
        """outputs: the recorded spiking and read-out layers (`_recorded`) and the arrays their spikes and
        potentials go to, this loop's batch; `budget`: the BLAS threads its large products may take, None when
        other loops run beside it on the other threads (it then never changes thread counts)."""
        plan, program = ready.plan, ready.program
        n = program.netlist
        # counters count every copy of a neuron that runs once (float64: exact for any count)
        self.members = None if ready.members is None else xp.asarray(ready.members.astype(np.float64))
        self.core_neurons = ready.core_neurons
        self.plan, self.program, self.target, self.xp, self.x = plan, program, target, xp, x
        self.batch, self.ticks = x.shape[0], x.shape[1]
        B, N, D = self.batch, plan.n_neurons, plan.depth
        groups = 0 if plan.stochastic is None else len(plan.stochastic.sign)
        acc_bytes = 4 if plan.acc_dtype == np.float32 else 8
        per_tick = B * (plan.rows * 4 + N * (1 + 4 + acc_bytes + 4 * groups))
        self.chunk = int(np.clip(CHUNK_BYTES // max(per_tick, 1), max(1, CHUNK_TICKS // B), max(self.ticks, 1)))
        self.buf = xp.zeros((D + self.chunk, B, plan.rows), xp.float32)
        self.fired, self.depth = self.buf[:, :, :N], D   # the neurons' rows of the buffer
        self.events = xp.zeros((self.chunk, B, N), xp.float32)   # active synapses per neuron and tick
        self.acc = xp.zeros((self.chunk, B, N), xp.float32 if acc_bytes == 4 else xp.float64)
        self.counts = None if not groups else xp.zeros((groups, self.chunk, B, N), xp.float32)
        blocks = [_DeviceBlock(b, xp, N, plan.n_inputs, B, self.chunk) for b in plan.blocks]
        self.threads = (lambda _n: contextlib.nullcontext()) if budget is None else _blas_threads
        for b in blocks:
            b.threaded = budget if b.large and budget and budget > 1 else 0
            b.bind(self.acc, self.events, self.counts)
        self.ahead = [b for b in blocks if b.ahead]
        self.live = [b for b in blocks if not b.ahead]
        self.counted = [b for b in self.live if b.mode == "any"]   # events counted after the chunk's ticks
        # writing order: the ahead blocks before the ticks, each tick the live blocks (events: but the counted)
        self.partial = _first_writers(self.ahead + self.live, N, "first")
        for b in self.live:
            b.direct = b.mode == "any" and b.first
        self.partial |= _first_writers(self.ahead + [b for b in self.live if b.mode != "any"] + self.counted, N,
                                       "first_events")
        self.shared = [(d, _Product(m, xp, B)) for d, m in plan.shared]
        self.hops = None if plan.hops is None else _Product(plan.hops, xp, B * self.chunk)
        self.sum_dtype = xp.float32 if plan.sum_dtype == np.float32 and ready.members is None else xp.float64
        self.per_core = _PerCore(plan.neuron_ptr, xp, B * self.chunk, self.sum_dtype)
        self.stepper = target.hooks.stepper(n, target.spec, B, plan.acc_bound, xp)
        self.total = xp.zeros((B, N), self.stepper.dtype)   # this tick's input sums, as the stepper takes them
        self.rng = np.random.default_rng(seed)
        self.spiking, self.readout, self.spk, self.pot = outputs
        self.totals = {k: np.zeros(n.n_cores) for k in COUNTERS}
        self.tick_s = np.zeros((B, self.ticks))
        self.slack: np.ndarray | None = None   # (batch, ticks) when the target knows its real-time slack
        self.routers = program.placed.routers_used
        self.merges = 0

    def run(self) -> None:
        """Every chunk of ticks on one BLAS thread but for the products large enough to share (`threaded`): an idle
        second BLAS thread spins, and beside a busy core that costs several times the work."""
        with self.threads(1):
            for t0 in range(0, self.ticks, self.chunk):
                k = min(self.chunk, self.ticks - t0)
                if self.shared:                      # only shared axons read input rows inside the loop
                    self._load_inputs(t0, k)
                if self.partial:
                    self.acc[:k] = 0
                    self.events[:k] = 0
                if self.counts is not None:
                    self.counts[:, :k] = 0
                for b in self.ahead:
                    with self.threads(b.threaded) if b.threaded else contextlib.nullcontext():
                        piece = max(1, AHEAD_BYTES // b.bytes_per_tick)
                        for at in range(0, k, piece):
                            b.prepare(self.x, t0 + at, min(piece, k - at), at)
                for j in range(k):
                    self._tick(t0 + j, j)
                self._flush(t0, k)

    def _load_inputs(self, t0: int, k: int) -> None:
        N, X, D = self.plan.n_neurons, self.plan.n_inputs, self.plan.depth
        self.buf[D:D + k, :, N:N + X] = self.xp.asarray(np.ascontiguousarray(self.x[:, t0:t0 + k].transpose(1, 0, 2)))

    def _tick(self, t: int, j: int) -> None:
        xp, slot, total = self.xp, self.depth + j, self.total
        if self.shared:
            self._merge(slot)
        for b in self.live:
            b.apply(self.buf, slot, j)
        xp.assign(total, self.acc[j])
        if self.counts is not None:
            counts = xp.numpy(self.counts[:, j]).astype(np.int64)
            total = total + xp.asarray(self.plan.stochastic.integrate(counts, self.rng))
        self.fired[slot] = self.stepper(total, self.rng)
        if self.readout:
            v = xp.numpy(self.stepper.potential())
            for lm in self.readout:
                self.pot[lm.name][:, t] = v[:, lm.neurons] * lm.scale

    def _merge(self, slot: int) -> None:
        """Spikes onto shared axons: count the merges, keep one bit per axon."""
        first = self.plan.n_neurons + self.plan.n_inputs
        arrived = sum(m(self.buf[slot - d]) for d, m in self.shared)
        self.merges += (arrived - 1).clip(0).sum()
        self.buf[slot][:, first:] = arrived > 0

    def _flush(self, t0: int, k: int) -> None:
        """Counters and tick times of ticks t0..t0+k-1, then keep the last `depth` ticks for the next chunk."""
        xp, plan, D = self.xp, self.plan, self.plan.depth
        N, C = plan.n_neurons, plan.neuron_ptr.size - 1
        host = lambda a: xp.numpy(a).astype(np.float64).T  # noqa: E731  (C, k * B), exact sums from here on
        per_core = lambda a: host(self.per_core(self._all_members(a)))  # noqa: E731
        for b in self.counted:
            b.count_active(self.buf, D, k)
        fired = self.buf[D:D + k, :, :N]
        self._record(fired, t0, k)
        fired = fired.reshape(-1, N)
        events = self.events[:k].reshape(-1, N)
        synaptic = per_core(events)
        xp.clamp_(events, 0, 1)   # events > 0, in place and in float (the sums run in float); rewritten next chunk
        active = per_core(events)
        hops = np.zeros((3 * C, k * self.batch)) if self.hops is None else host(self.hops(fired))
        counts = {"synaptic_events": synaptic, "neuron_active": active,
                  "neuron_idle": self.core_neurons[:, None] - active, "spikes": per_core(fired),
                  "hops_ew": hops[:C], "hops_ns": hops[C:2 * C], "interchip": hops[2 * C:]}
        for key in COUNTERS:
            self.totals[key] += counts[key].sum(axis=1)
        self._timing(counts, t0, k)
        if t0 + k < self.ticks:
            self.buf[:D] = self.buf[k:k + D]

    def _record(self, fired, t0: int, k: int) -> None:
        """The recorded layers' spikes of ticks t0..t0+k-1 from fired (k, batch, N), in layer order:
        gathered in uint8, then one copy per layer into (batch, tick, neurons)."""
        spikes = self.xp.numpy(self.xp.cast(fired, self.xp.uint8))
        for lm, span, order in self.spiking:
            into = self.spk[lm.name][:, t0:t0 + k]
            if isinstance(order, tuple):   # neurons position-major, the layer channel-major: a transpose
                into.reshape(into.shape[:2] + order)[...] = spikes[:, :, span].reshape(
                    spikes.shape[:2] + order[::-1]).transpose(1, 0, 3, 2)
            else:
                into[...] = (spikes[:, :, span] if order is None else np.take(spikes[:, :, span], order, axis=2)
                             ).transpose(1, 0, 2)

    def _all_members(self, a):
        """Per-neuron values (rows x N) times each neuron's copies, when copies run once."""
        return a if self.members is None else self.xp.cast(a, self.xp.float64) * self.members

    def _timing(self, counts: Mapping[str, np.ndarray], t0: int, k: int) -> None:
        tick, slack = self.target.hooks.tick_seconds(counts, self.target.spec, self.routers, self.program.placed.n_chips)
        per_tick = lambda a: np.broadcast_to(a, (k * self.batch,)).reshape(k, self.batch).T  # noqa: E731
        self.tick_s[:, t0:t0 + k] = per_tick(tick)
        if slack is not None:
            if self.slack is None:
                self.slack = np.zeros_like(self.tick_s)
            self.slack[:, t0:t0 + k] = per_tick(slack)


def _first_writers(blocks: list[_DeviceBlock], n_neurons: int, flag: str) -> bool:
    """Set `flag` on the blocks (in the order they write) that are first to write their rows each
    tick (they assign, so nothing needs zeroing); True if some block covers rows only partly written
    before it (then every block adds, onto sums zeroed each chunk)."""
    written = np.zeros(n_neurons, dtype=bool)
    partial = False
    for b in blocks:
        if b.target:
            continue
        seen = written[b.rows]
        setattr(b, flag, not seen.any())
        partial |= seen.any() and not seen.all()
        written[b.rows] = True
    if partial:
        for b in blocks:
            setattr(b, flag, False)
    return partial


def _span(ids: np.ndarray) -> tuple[slice, np.ndarray | tuple[int, int] | None]:
    """The range of neuron ids a layer occupies, and the order of its neurons in it: None (in order), (a, b) where
    layer index i * b + j is neuron a * j + i of the range (channels kept together per position, a conv's cores),
    else the permutation."""
    lo = int(ids.min()) if ids.size else 0
    order = ids - lo
    span = slice(lo, lo + int(order.max(initial=-1)) + 1)
    if np.array_equal(order, np.arange(ids.size)):
        return span, None
    a = int(order[1]) if ids.size > 1 else 0
    if a > 1 and ids.size % a == 0 and np.array_equal(order, np.arange(ids.size).reshape(-1, a).T.ravel()):
        return span, (a, ids.size // a)
    return span, order


class _PerCore:
    """Per-core sums (M, C) of per-neuron rows (M, N), in `dtype` (exact: plan.sum_dtype). Few cores over many
    rows: one product with the 0/1 neuron-to-core matrix, several times faster than segment sums along rows."""

    def __init__(self, ptr: np.ndarray, xp, rows: int, dtype) -> None:
        self.xp, self.ptr, self.dtype = xp, ptr, dtype
        cores, n = ptr.size - 1, int(ptr[-1])
        self.m = None
        if rows >= 16 and cores * n <= MEMBERSHIP_CELLS:
            member = np.zeros((n, cores), np.float64)
            member[np.arange(n), np.repeat(np.arange(cores), np.diff(ptr))] = 1
            self.m = xp.matrix(member, dtype)

    def __call__(self, a):
        return self.xp.segment_sum(a, self.ptr, self.dtype) if self.m is None else self.xp.cast(a, self.dtype) @ self.m


def _layer_counts(n: Netlist, totals: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per layer: the totals of its cores (helper cores, layer -1, under "(helpers)")."""
    names = [lm.name for lm in n.layers]
    out: dict[str, dict[str, float]] = {}
    for li in np.unique(n.core_layer):
        sel = n.core_layer == li
        out[names[li] if li >= 0 else "(helpers)"] = {k: float(v[sel].sum()) for k, v in totals.items()}
    return out
