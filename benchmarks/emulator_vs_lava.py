"""Emulator vs Lava 0.10.0 fixed_pt on the same compiled programs: speed, and spikes bit for bit.

Networks are neurocomp Graphs compiled for "loihi" and for "truenorth". For Loihi the Lava side is
built directly from the compiled program (RingBuffer -> Dense -> LIF per layer -> sinks): each layer's
per-core synapse tables and neuron registers are put back into graph order, one Dense + LIF per layer.
That is exact because every core of a layer has the same sign mode and weight exponent (the exponent
shifts each neuron's own summed input, and a neuron lives in one core). For TrueNorth it is neurocomp's
own Lava process (`neurocomp run --backend lava`). The script asserts that every spike of every layer and
step is identical, then prints one row per network and target:

    Lava steps/s (batch 1)     steady state: the steps after a warm-up run that includes Lava's compile
    Lava end-to-end steps/s    all steps over the whole time: building, compiling, running, reading
    emulator steps/s (batch 1) and sample-steps/s (batch 256, or --batch), best of 5 x --repeat and --repeat runs
    synaptic events/s          counted by the emulator, divided by each run's wall time

and, once, the machine's roofs measured here: memory bandwidth (a large copy), fp32 BLAS (sgemm) and
int8 products (torch._int_mm), on every core, beside the emulator's synaptic events per second.

    .venv/bin/python benchmarks/emulator_vs_lava.py [--ticks 1000] [--batch 256] [--repeat 3] [--devices cpu,cuda]

No timing is asserted (machines differ); the README quotes a measured table.
"""
from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from results import command_line, write_section

from neurocomp.backends import emulator
from neurocomp.backends import lava as lava_backend
from neurocomp.backends.lava_compat import import_lava
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.ir.graph import IF, Affine, Conv2d, Flatten, Graph, Input, Output
from neurocomp.program import Program
from neurocomp.target import load_target
from neurocomp.targets.loihi.emulation import SIGN_NAMES


def _nonzero(rng: np.random.Generator, shape: tuple[int, ...], lo: int, hi: int) -> np.ndarray:
    w = rng.integers(lo, hi, size=shape)
    return np.where(w == 0, 1, w).astype(np.float64)


def dense_net(rng: np.random.Generator) -> Graph:
    """784-256-10 with integer weights and thresholds (what the quantiser keeps exact)."""
    nodes = [Input("x", (784,)), Affine("fc1", _nonzero(rng, (256, 784), -6, 9)), IF("h", threshold=60.0, reset="zero"),
             Affine("fc2", _nonzero(rng, (10, 256), -6, 9)), IF("o", threshold=40.0, reset="zero"), Output("out")]
    return Graph(nodes, [("x", "fc1"), ("fc1", "h"), ("h", "fc2"), ("fc2", "o"), ("o", "out")])


def conv_net(rng: np.random.Generator) -> Graph:
    """A small conv net: 1x16x16 -> conv 3x3 (4 ch) -> IF -> flatten -> 10 -> IF."""
    nodes = [Input("x", (1, 16, 16)), Conv2d("conv", _nonzero(rng, (4, 1, 3, 3), -3, 5), padding=1),
             IF("c", threshold=6.0, reset="zero"), Flatten("flat"), Affine("fc", _nonzero(rng, (10, 1024), -3, 4)),
             IF("o", threshold=30.0, reset="zero"), Output("out")]
    return Graph(nodes, [("x", "conv"), ("conv", "c"), ("c", "flat"), ("flat", "fc"), ("fc", "o"), ("o", "out")])


@dataclass
class LavaLayer:
    """One layer of the compiled program in graph order: Dense weights (raw, as Lava's Dense takes
    them) and its scalars, and the LIF registers."""

    weights: np.ndarray
    sign_mode: str
    weight_exp: int
    lif: dict[str, Any]


def _uniform(values: np.ndarray, what: str, layer: str) -> int:
    if np.unique(values).size != 1:
        raise ValueError(f"layer {layer}: {what} differs between its neurons or cores; one Lava Dense/LIF cannot hold it")
    return int(values.flat[0])


def lava_layers(program: Program) -> list[LavaLayer]:
    """Per layer, the per-core synapse tables and registers put back into graph order."""
    n = program.netlist
    position = np.empty(n.n_neurons, dtype=np.int64)           # neuron -> index inside its layer
    for lm in n.layers:
        position[lm.neurons] = np.arange(lm.neurons.size)
    axon_src = np.empty(n.n_axons, dtype=np.int64)             # axon -> index inside its source
    axon_src[n.edge_axon] = position[n.edge_src]
    axon_src[n.in_axon] = n.in_channel
    syn_core = n.axon_core()[n.syn_axon]
    out, width = [], n.n_inputs
    for li, lm in enumerate(n.layers):
        sel = n.core_layer[syn_core] == li
        w = np.zeros((lm.neurons.size, width), dtype=np.int64)
        w[position[n.syn_neuron[sel]], axon_src[n.syn_axon[sel]]] = n.syn_tables["weight"][sel]
        cores = np.array(lm.cores)
        p = {k: v[lm.neurons] for k, v in n.params.items()}
        lif = {k: _uniform(p[k], k, lm.name) for k in ("du", "dv", "vth")}
        lif |= {"bias_mant": p["bias_mant"], "bias_exp": p["bias_exp"], "u": p["u_init"], "v": p["v_init"]}
        out.append(LavaLayer(w, SIGN_NAMES[_uniform(n.syn_tables["sign_mode"][cores], "sign mode", lm.name)],
                             _uniform(p["weight_exp"], "weight_exp", lm.name), lif))
        width = lm.neurons.size
    return out


def run_lava(layers: list[LavaLayer], x: np.ndarray, warmup: int) -> tuple[list[np.ndarray], float, float]:
    """Spikes (ticks, n) per layer of a one-sample run, the wall time of the steps after warm-up and the whole
    wall time (building, compiling, running, reading)."""
    begin = time.perf_counter()
    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF
    from lava.utils.weightutils import SignMode

    ticks = x.shape[0]
    src = Source(data=x.T.astype(np.int32))
    port, sinks = src.s_out, []
    for layer in layers:
        dense = Dense(weights=layer.weights, weight_exp=layer.weight_exp, num_weight_bits=8,
                      sign_mode=SignMode[layer.sign_mode.upper()])
        lif = LIF(shape=(layer.weights.shape[0],), **layer.lif)
        sink = Sink(shape=(layer.weights.shape[0],), buffer=ticks)
        port.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        lif.s_out.connect(sink.a_in)
        port = lif.s_out
        sinks.append(sink)
    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    try:
        src.run(condition=RunSteps(num_steps=warmup), run_cfg=cfg)
        start = time.perf_counter()
        src.run(condition=RunSteps(num_steps=ticks - warmup), run_cfg=cfg)
        wall = time.perf_counter() - start
        spikes = [s.data.get().T != 0 for s in sinks]
    finally:
        src.stop()
    return spikes, wall, time.perf_counter() - begin


def run_lava_truenorth(program: Program, target, x: np.ndarray, warmup: int) -> tuple[np.ndarray, float, float]:
    """neurocomp's TrueNorth Lava process on one sample x (ticks, channels): every neuron's spikes (ticks, N), the
    wall time of the steps after warm-up and the whole wall time."""
    from lava.magma.core.run_conditions import RunSteps

    begin = time.perf_counter()
    network = lava_backend.build(program, target, x.T)
    cfg = lava_backend.run_config(network)
    fired = np.zeros((x.shape[0], program.netlist.expanded().n_neurons), dtype=bool)   # Lava runs every copy
    try:
        network.source.run(condition=RunSteps(num_steps=warmup), run_cfg=cfg)
        start = time.perf_counter()
        network.source.run(condition=RunSteps(num_steps=x.shape[0] - warmup), run_cfg=cfg)
        wall = time.perf_counter() - start
        for ids, sink in zip(network.neuron_ids, network.spike_sinks):
            fired[:, ids] = sink.data.get().T != 0
    finally:
        network.source.stop()
    return fired, wall, time.perf_counter() - begin


def best_run(program: Program, target, x: np.ndarray, repeat: int, device: str | None) -> emulator.RunResult:
    runs = [emulator.run(program, target, {"x": x}, device=device) for _ in range(repeat)]
    return min(runs, key=lambda r: r.wall_s)


def lava_spikes(program: Program, target, x: np.ndarray, warmup: int) -> tuple[list[np.ndarray], float, float]:
    """Lava's spikes per layer (ticks, n) for one sample x (ticks, channels), its steady and its whole wall time."""
    if target.spec.family == "loihi":
        return run_lava(lava_layers(program), x, warmup)
    fired, wall, total = run_lava_truenorth(program, target, x, warmup)
    n = program.netlist.expanded()
    return [fired[:, lm.neurons] for lm in n.layers], wall, total


def bench(name: str, graph: Graph, family: str, args: argparse.Namespace, rng: np.random.Generator) -> dict[str, Any]:
    target = load_target(family)
    program = compile_graph(graph, target, CompileOptions()).program
    shape = dict(program.netlist.inputs)["x"]
    x = (rng.random((args.batch, args.ticks) + shape) < args.rate).astype(np.uint8)
    one = best_run(program, target, x[:1], 5 * args.repeat, None)   # a batch-1 run takes milliseconds
    spikes, lava_wall, lava_total = lava_spikes(program, target, x[0].reshape(args.ticks, -1), args.warmup)
    layers = program.netlist.expanded().layers if family != "loihi" else program.netlist.layers
    for lm, theirs in zip(layers, spikes):
        emu = one.spikes[lm.name][0].reshape(args.ticks, -1)
        assert np.array_equal(emu, theirs), f"{name} on {family}: layer {lm.name} differs from Lava"
    fired = [lm.name for lm in layers if one.spikes[lm.name].any()]
    assert layers[-1].name in fired, f"{name} on {family}: the last layer never fires; the comparison would be vacuous"
    events_1 = one.core_counts["synaptic_events"].sum()
    lava_steps = (args.ticks - args.warmup) / lava_wall
    row = {"network": name, "target": family, "cores": program.netlist.n_cores, "lava_steps_s": lava_steps,
           "lava_total_steps_s": args.ticks / lava_total,
           "lava_events_s": events_1 / args.ticks * lava_steps, "emu_steps_s": args.ticks / one.wall_s,
           "emu_events_s_1": events_1 / one.wall_s}
    for device in [None] + args.devices:
        many = best_run(program, target, x, args.repeat, device)
        row[f"sample_steps_s[{device or 'numpy'}]"] = args.batch * args.ticks / many.wall_s
        row[f"events_s[{device or 'numpy'}]"] = many.core_counts["synaptic_events"].sum() / many.wall_s
    return row


def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    devices = ["numpy"] + args.devices
    head = ["network", "target", "cores", "Lava steps/s", "Lava end-to-end steps/s", "emu steps/s (b=1)", "x Lava"] + \
        [f"emu sample-steps/s (b={args.batch}, {d})" for d in devices] + ["x Lava (numpy)", "Lava syn ev/s",
                                                                          f"emu syn ev/s (b={args.batch}, numpy)"]
    lines = [" | ".join(head)]
    for r in rows:
        cells = [r["network"], r["target"], str(r["cores"]), f"{r['lava_steps_s']:.0f}", f"{r['lava_total_steps_s']:.0f}",
                 f"{r['emu_steps_s']:.0f}", f"{r['emu_steps_s'] / r['lava_steps_s']:.1f}"]
        cells += [f"{r[f'sample_steps_s[{d}]']:.3g}" for d in devices]
        cells += [f"{r['sample_steps_s[numpy]'] / r['lava_steps_s']:.0f}", f"{r['lava_events_s']:.3g}",
                  f"{r['events_s[numpy]']:.3g}"]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=20, help="Lava steps run (and compiled) before timing")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rate", type=float, default=0.2, help="input spikes per pixel and tick")
    ap.add_argument("--repeat", type=int, default=3, help="emulator runs per setting; the fastest counts")
    ap.add_argument("--devices", type=lambda s: [d for d in s.split(",") if d], default=[],
                    help="torch devices to time as well, e.g. cpu,cuda")
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = ap.parse_args()
    start, text = time.perf_counter(), []
    for busy in (False, True):   # the ratio must hold on a busy machine too: a second CPU-bound process beside it
        shown = len(text)
        with _busy_process() if busy else contextlib.nullcontext():
            families = ("loihi",) if busy else ("loihi", "truenorth")   # the goals are Loihi's; TrueNorth's Lava starts slowly
            rows = [bench(name, net(np.random.default_rng(0)), family, args, np.random.default_rng(1))
                    for family in families for name, net in NETS]
            text += [f"{'beside a CPU-bound process' if busy else 'quiet machine'} (spikes identical to Lava, every "
                     f"layer and step):", "", "```", table(rows, args), "```", ""]
            if not busy:
                text += roofs(rows, args.batch)
        print("\n".join(text[shown:]), flush=True)
    if not args.no_write:
        write_section("emulator_vs_lava", "emulator_vs_lava: emulator vs Lava fixed_pt, steady state (Loihi; TrueNorth's own Lava process)", "\n".join(text),
                      command_line(),
                      time.perf_counter() - start)


NETS = (("dense 784-256-10", dense_net), ("conv 1x16x16-4c3x3-10", conv_net))


def roofs(rows: list[dict[str, Any]], batch: int) -> list[str]:
    """The machine's limits, measured here on every core, beside the emulator's synaptic events per second."""
    import torch

    size = 1 << 27
    a, b = np.ones(size // 8), np.empty(size // 8)
    copy = min(_seconds(lambda: np.copyto(b, a)) for _ in range(5))
    x = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    sgemm = min(_seconds(lambda: x @ x) for _ in range(5))
    q = torch.randint(-127, 128, (2048, 2048), dtype=torch.int8)
    int8 = min(_seconds(lambda: torch._int_mm(q, q)) for _ in range(5))
    macs = 2048 ** 3
    lines = [f"roofs of this machine (every core): memory {2 * size / copy / 1e9:.1f} GB/s (copy), fp32 BLAS "
             f"{macs / sgemm:.3g} MAC/s (sgemm 2048), int8 {macs / int8:.3g} MAC/s (torch._int_mm 2048); a synaptic "
             "event is one multiply-add of a weight by a spike, so its roof is the int8 one:", "", "```",
             f"network | target | emu syn ev/s (b={batch}) | of the int8 roof | of the fp32 roof"]
    for r in rows:
        ev = r["events_s[numpy]"]
        lines.append(f"{r['network']} | {r['target']} | {ev:.3g} | {ev / (macs / int8):.1%} | {ev / (macs / sgemm):.1%}")
    return lines + ["```", ""]


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _spin(stop) -> None:
    from threadpoolctl import threadpool_limits

    x = np.random.default_rng(1).random((256, 256))
    with threadpool_limits(1):   # one core: BLAS would otherwise take both
        while not stop.is_set():
            x = np.tanh(x @ x.T / 256)


@contextlib.contextmanager
def _busy_process():
    """A second process that keeps one core busy with BLAS work while the benchmark runs."""
    stop = mp.get_context("fork").Event()
    proc = mp.get_context("fork").Process(target=_spin, args=(stop,), daemon=True)
    proc.start()
    time.sleep(2.0)   # the forked process starts on our core; let the scheduler move it to the other first
    try:
        yield
    finally:
        stop.set()
        proc.join()


if __name__ == "__main__":
    main()
