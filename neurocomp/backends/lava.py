"""Lava backend: a compiled program as Lava processes, run with Lava 0.10.0's fixed-point CPU models.

`build` emits the processes for one input sample, so users can connect them into their own Lava application;
`run` builds, runs and reads one network per sample (Lava has no batch) and returns the emulator's RunResult.

Loihi programs (loihi, loihi2): per core one LIF per compartment group -- the core's neurons sharing du, dv
and vth, which Lava's LIF holds as one scalar each (usually the whole core) -- and per (source process, LIF)
one Dense holding exactly that core's netlist weights with its `weight_exp`, `num_weight_bits=8` and the
netlist's explicit `sign_mode`. Lava 0.10.0 cannot compile concatenated ports (`ConcatPort` raises
NotImplementedError), so a LIF that reads several source processes gets one Dense per source and sums them
at its input; a layer reading one source through parallel projections (one axon each) gets one Dense per axon
copy as well. The exponent then shifts each partial sum instead of their total, which is the same when every
weight is a multiple of 2**-weight_exp (so for the mapper's doubled mixed-sign weights); anything else is a
UserError rather than a silent mismatch. On a target with graded messages (`core.message_bits` = b > 0,
loihi2) the Dense processes reading the input RingBuffer get `num_message_bits=b`, so Lava multiplies each
weight by the integer payload (an int32 dot product) instead of counting a spike. TrueNorth programs: one
`TrueNorthCores` process. Each family builds its own processes (`processes` in targets/<family>/lava.py,
loaded through neurocomp.target.extension).

Timing: our tick k is Lava step k + 1. The RingBuffer sends x[k] at step k + 1 and a Dense delivers one step
later, so x[k] reaches the first layer at tick k + 1 and every edge takes one tick, as on the emulator.
core_counts and merges are recomputed from every neuron's spikes by the emulator's definitions, so the energy
and timing summaries of a Lava run equal the emulator's. Reading results is slow for long runs: Lava 0.10
copies a Var to the host one element per message.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from neurocomp.backends.emulator import COUNTERS, RunResult
from neurocomp.backends.lava_compat import import_lava
from neurocomp.encoding import input_spikes, payload_max
from neurocomp.errors import UserError
from neurocomp.ir import sums
from neurocomp.ir.netlist import Netlist
from neurocomp.route import grid_hops
from neurocomp.target import Target, extension

if TYPE_CHECKING:
    from neurocomp.program import Program

# synapse processes, neuron processes, netlist neuron ids per neuron process, process -> ProcessModel
Built = tuple[tuple[Any, ...], tuple[Any, ...], tuple[np.ndarray, ...], dict[Any, type]]


@dataclass(frozen=True)
class LavaNetwork:
    """The Lava processes of one program and one input sample.

    `neurons[i]` holds the netlist neurons `neuron_ids[i]` in port order (a LIF, or one TrueNorthCores);
    `spike_sinks[i]` (RingBuffer, (n, ticks)) and `v_monitors[i]` (Monitor of `v`) observe it, None where
    not recorded. Run with `network.source.run(RunSteps(network.ticks), run_config(network))`, read, `stop()`.
    """

    source: Any                      # lava RingBuffer: encoded input spikes, (channels, ticks)
    synapses: tuple[Any, ...]        # Dense per (source process, LIF); empty for TrueNorth
    neurons: tuple[Any, ...]
    neuron_ids: tuple[np.ndarray, ...]
    spike_sinks: tuple[Any, ...]
    v_monitors: tuple[Any, ...]
    ticks: int
    models: Mapping[Any, type]       # process -> its ProcessModel where Lava's search is not wanted


def run_config(network: LavaNetwork) -> Any:
    """Lava's bit-accurate CPU models. Our own processes name their model directly: Lava's model search would
    otherwise import and re-execute every module beside them (warning on any that cannot run standalone)."""
    from lava.magma.core.run_configs import Loihi2SimCfg

    return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=dict(network.models))


def encode(program: Program, inputs: Mapping[str, np.ndarray], ticks: int | None = None,
           message_bits: int = 0) -> np.ndarray:
    """(batch, ticks, channels) input spikes (or graded payloads) of all Input nodes in netlist order, as the
    emulator takes them; `build` takes one sample's `[b].T`."""
    parts = [input_spikes(inputs[name], shape, ticks, message_bits=message_bits) for name, shape in program.netlist.inputs]
    if len({p.shape[:2] for p in parts}) != 1:
        raise UserError("all inputs need the same batch size and number of ticks")
    return np.concatenate([p.reshape(p.shape[0], p.shape[1], -1) for p in parts], axis=2)


def routes(n: Netlist) -> dict[int, sp.csr_matrix]:
    """Per delay, (axons x sources) spike counts landing on each axon; sources are the neurons, then the
    input channels."""
    src = np.concatenate([n.edge_src, n.n_neurons + n.in_channel])
    axon, delay = np.concatenate([n.edge_axon, n.in_axon]), np.concatenate([n.edge_delay, n.in_delay])
    return {int(d): sp.csr_matrix((np.ones(int((delay == d).sum()), dtype=np.int64), (axon[delay == d], src[delay == d])),
                                  shape=(n.n_axons, n.n_neurons + n.n_inputs)) for d in np.unique(delay)}


def build(program: Program, target: Target, spikes: np.ndarray, record: Sequence[str] | None = None,
          seed: int = 0, column: tuple[int, int] = (0, 1)) -> LavaNetwork:
    """Lava processes for one sample; `spikes` is its (channels, ticks) input. `record` names the layers that
    get sinks and monitors (None: every neuron). `seed` and `column` = (sample, batch) only matter for
    stochastic TrueNorth neurons (see TrueNorthCores)."""
    import_lava()
    from lava.proc.io.source import RingBuffer as Source

    n = program.netlist.expanded()
    family = extension(target, "lava")
    if family is None:
        raise UserError(f"the Lava backend runs loihi and truenorth programs, not target family {target.spec.family!r}")
    spikes, bits = np.asarray(spikes), _message_bits(target)
    low = -payload_max(bits) if bits else 0
    if spikes.ndim != 2 or spikes.shape[0] != n.n_inputs or spikes.shape[1] < 1 or \
            not (np.array_equal(spikes, np.rint(spikes)) and low <= spikes.min() and spikes.max() <= payload_max(bits)):
        raise UserError(f"Lava input must be ({n.n_inputs} channels, ticks >= 1) integers in [{low}, {payload_max(bits)}] "
                        f"(0/1 spikes, or {bits}-bit graded payloads), got shape {spikes.shape}")
    source = Source(data=spikes.astype(np.int32))
    synapses, neurons, ids, models = family.processes(n, target, source.s_out, seed, column)
    sinks, monitors = _probes(n, neurons, ids, record, spikes.shape[1])
    return LavaNetwork(source, synapses, neurons, ids, sinks, monitors, spikes.shape[1], models)


def run(program: Program, target: Target, inputs: Mapping[str, np.ndarray], ticks: int | None = None,
        record: Sequence[str] | None = None, seed: int = 0) -> RunResult:
    """Run every sample in its own Lava network; wall_s covers building, compiling and running them all.
    Lava runs one process neuron per hardware neuron: copies are expanded (Netlist.expanded)."""
    program = dataclasses.replace(program, netlist=program.netlist.expanded())
    n = program.netlist
    x = encode(program, inputs, ticks, _message_bits(target))
    batch, ticks = x.shape[0], x.shape[1]
    fired = np.zeros((batch, ticks, n.n_neurons), dtype=np.uint8)
    v = np.zeros((batch, ticks, n.n_neurons), dtype=np.int64)
    start = time.perf_counter()
    for b in range(batch):
        fired[b], v[b] = execute(build(program, target, x[b].T, seed=seed, column=(b, batch)), n.n_neurons)
    wall = time.perf_counter() - start
    counts, merges = _counts(program, x, fired)
    table = n.notes.get(sums.KEY, {})
    record = sums.expand(record, table)
    layers = [lm for lm in n.layers if record is None or lm.name in record]
    pot = target.hooks.potential({"v": v})
    shaped = lambda a, lm: a[:, :, lm.neurons].reshape((batch, ticks) + lm.shape)  # noqa: E731
    return RunResult({lm.name: shaped(fired, lm) for lm in layers if lm.kind == "spiking"},
                     sums.add({lm.name: shaped(pot, lm) * lm.scale for lm in layers if lm.kind == "readout"}, table),
                     counts, merges, ticks, batch, wall)


def execute(network: LavaNetwork, n_neurons: int) -> tuple[np.ndarray, np.ndarray]:
    """Run all ticks, read sinks and monitors before stopping: (ticks, neurons) spikes and v (0 if unrecorded)."""
    from lava.magma.core.run_conditions import RunSteps

    fired = np.zeros((network.ticks, n_neurons), dtype=np.uint8)
    v = np.zeros((network.ticks, n_neurons), dtype=np.int64)
    try:
        network.source.run(condition=RunSteps(num_steps=network.ticks), run_cfg=run_config(network))
    except RuntimeError:
        _release(network.source)
        raise
    try:
        for proc, ids, sink, mon in zip(network.neurons, network.neuron_ids, network.spike_sinks, network.v_monitors):
            if sink is not None:
                fired[:, ids] = sink.data.get().T != 0
            if mon is not None:
                v[:, ids] = mon.get_data()[proc.name]["v"]
    finally:
        network.source.stop()
    return fired, v


def _message_bits(target: Target) -> int:
    return int(target.spec.get("core.message_bits", 0))


def _release(process: Any) -> None:
    """Stop after a worker raised: Lava has joined every worker when it reports the error but still counts the run
    as started, so `stop()` would wait forever for their replies. Marked stopped, `stop()` only frees channels."""
    if process.runtime is not None:
        process.runtime._is_started = False
        process.runtime.stop()


def _probes(n: Netlist, neurons: tuple[Any, ...], ids: tuple[np.ndarray, ...], record: Sequence[str] | None,
            ticks: int) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """A spike sink per neuron process holding a recorded layer (all, helpers included, if record is None) and a
    v monitor where it holds a recorded read-out layer."""
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.monitor.process import Monitor

    layer_of = n.core_layer[n.neuron_core()]
    sinks, monitors = [], []
    for proc, members in zip(neurons, ids):
        held = [n.layers[i] for i in np.unique(layer_of[members]) if i >= 0]
        wanted = [lm for lm in held if record is None or lm.name in record]
        sink = monitor = None
        if record is None or wanted:
            sink = Sink(shape=(members.size,), buffer=ticks)
            proc.s_out.connect(sink.a_in)
        if any(lm.kind == "readout" for lm in wanted):
            monitor = Monitor()
            monitor.probe(proc.v, ticks)
        sinks.append(sink)
        monitors.append(monitor)
    return tuple(sinks), tuple(monitors)


# --- counters ------------------------------------------------------------------------------------------------

def _counts(program: Program, x: np.ndarray, fired: np.ndarray) -> tuple[dict[str, np.ndarray], int]:
    """The emulator's per-core counters from the spikes of every neuron: an axon is active at tick t when spikes
    or input routed to it with delay d left at t - d (several arriving at once merge into one); a neuron is
    active when any of its synapses is."""
    n = program.netlist
    synapses = sp.csr_matrix((np.ones(n.syn_axon.size), (n.syn_neuron, n.syn_axon)), shape=(n.n_neurons, n.n_axons))
    batch, ticks, by_delay = fired.shape[0], fired.shape[1], routes(n)
    events, active, merges = np.zeros(n.n_axons), np.zeros(n.n_neurons), 0
    for b in range(batch):
        sources = np.concatenate([fired[b], x[b] != 0], axis=1).astype(np.int64)   # a graded payload is one message
        arrived = np.zeros((ticks, n.n_axons), dtype=np.int64)
        for d, m in by_delay.items():
            arrived[d:] += np.asarray(m @ sources[:max(ticks - d, 0)].T).T
        act = (arrived > 0).astype(np.float64)
        merges += int(np.maximum(arrived - 1, 0).sum())
        events += act.sum(axis=0)
        active += (np.asarray(synapses @ act.T) > 0).sum(axis=1)
    spikes = fired.sum(axis=(0, 1)).astype(np.float64)
    p = program.placed
    sc, dc = n.core_traffic_edges()
    ew, ns, ic = (np.bincount(n.edge_src, weights=h, minlength=n.n_neurons)
                  for h in grid_hops(p.gx(), p.gy(), p.chip_cols, p.chip_rows, sc, dc))
    per_neuron = {"neuron_active": active, "neuron_idle": batch * ticks - active, "spikes": spikes,
                  "hops_ew": spikes * ew, "hops_ns": spikes * ns, "interchip": spikes * ic}
    core_n = n.neuron_core()
    counts = {k: np.bincount(core_n, weights=w, minlength=n.n_cores) for k, w in per_neuron.items()}
    syn_per_axon = np.bincount(n.syn_axon, minlength=n.n_axons)
    counts["synaptic_events"] = np.bincount(n.axon_core(), weights=events * syn_per_axon, minlength=n.n_cores)
    return {k: counts[k] for k in COUNTERS}, merges
