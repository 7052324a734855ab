"""Emulator vs Lava 0.10.0 fixed_pt on the same compiled Loihi programs: speed, and spikes bit for bit.

Networks are neurocomp Graphs compiled for "loihi"; the Lava side is built directly from the
compiled program (RingBuffer -> Dense -> LIF per layer -> sinks): each layer's per-core synapse
tables and neuron registers are put back into graph order, one Dense + LIF per layer. That is exact
because every core of a layer has the same sign mode and weight exponent (the exponent shifts each
neuron's own summed input, and a neuron lives in one core). The script asserts that every spike of
every layer and step is identical, then prints one row per network:

    Lava steps/s (batch 1)     steady state, after a warm-up run that includes Lava's compile
    emulator steps/s (batch 1) and sample-steps/s (batch 256, or --batch), best of --repeat runs
    synaptic events/s          counted by the emulator, divided by each run's wall time

    .venv/bin/python benchmarks/emulator_vs_lava.py [--ticks 200] [--batch 256] [--repeat 3] [--devices cpu,cuda]

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


def run_lava(layers: list[LavaLayer], x: np.ndarray, warmup: int) -> tuple[list[np.ndarray], float]:
    """Spikes (ticks, n) per layer of a one-sample run, and the wall time of the steps after warm-up."""
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
        return [s.data.get().T != 0 for s in sinks], wall
    finally:
        src.stop()


def best_run(program: Program, target, x: np.ndarray, repeat: int, device: str | None) -> emulator.RunResult:
    runs = [emulator.run(program, target, {"x": x}, device=device) for _ in range(repeat)]
    return min(runs, key=lambda r: r.wall_s)


def bench(name: str, graph: Graph, args: argparse.Namespace, rng: np.random.Generator) -> dict[str, Any]:
    target = load_target("loihi")
    program = compile_graph(graph, target, CompileOptions()).program
    shape = dict(program.netlist.inputs)["x"]
    x = (rng.random((args.batch, args.ticks) + shape) < args.rate).astype(np.uint8)
    one = best_run(program, target, x[:1], args.repeat, None)
    lava_spikes, lava_wall = run_lava(lava_layers(program), x[0].reshape(args.ticks, -1), args.warmup)
    for lm, spikes in zip(program.netlist.layers, lava_spikes):
        emu = one.spikes[lm.name][0].reshape(args.ticks, -1)
        assert np.array_equal(emu, spikes), f"{name}: layer {lm.name} differs from Lava"
        assert emu.any(), f"{name}: layer {lm.name} never fires; the comparison would be vacuous"
    events_1 = one.core_counts["synaptic_events"].sum()
    lava_steps = (args.ticks - args.warmup) / lava_wall
    row = {"network": name, "cores": program.netlist.n_cores, "lava_steps_s": lava_steps,
           "lava_events_s": events_1 / args.ticks * lava_steps, "emu_steps_s": args.ticks / one.wall_s,
           "emu_events_s_1": events_1 / one.wall_s}
    for device in [None] + args.devices:
        many = best_run(program, target, x, args.repeat, device)
        row[f"sample_steps_s[{device or 'numpy'}]"] = args.batch * args.ticks / many.wall_s
        row[f"events_s[{device or 'numpy'}]"] = many.core_counts["synaptic_events"].sum() / many.wall_s
    return row


def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    devices = ["numpy"] + args.devices
    head = ["network", "cores", "Lava steps/s", "emu steps/s (b=1)", "x Lava"] + \
        [f"emu sample-steps/s (b={args.batch}, {d})" for d in devices] + ["x Lava (numpy)", "Lava syn ev/s",
                                                                          f"emu syn ev/s (b={args.batch}, numpy)"]
    lines = [" | ".join(head)]
    for r in rows:
        cells = [r["network"], str(r["cores"]), f"{r['lava_steps_s']:.0f}", f"{r['emu_steps_s']:.0f}",
                 f"{r['emu_steps_s'] / r['lava_steps_s']:.1f}"]
        cells += [f"{r[f'sample_steps_s[{d}]']:.3g}" for d in devices]
        cells += [f"{r['sample_steps_s[numpy]'] / r['lava_steps_s']:.0f}", f"{r['lava_events_s']:.3g}",
                  f"{r['events_s[numpy]']:.3g}"]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=200)
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
        rng = np.random.default_rng(0)
        with _busy_process() if busy else contextlib.nullcontext():
            rows = [bench("dense 784-256-10", dense_net(rng), args, rng), bench("conv 1x16x16-4c3x3-10", conv_net(rng), args, rng)]
        text += [f"{'beside a CPU-bound process' if busy else 'quiet machine'} (spikes identical to Lava, every layer "
                 f"and step):", "", "```", table(rows, args), "```", ""]
        print("\n".join(text[-6:]), flush=True)
    if not args.no_write:
        write_section("emulator_vs_lava", "emulator_vs_lava: Loihi emulator vs Lava fixed_pt, steady state", "\n".join(text),
                      command_line(),
                      time.perf_counter() - start)


def _spin(stop) -> None:
    x = np.random.default_rng(1).random((256, 256))
    while not stop.is_set():
        x = np.tanh(x @ x.T / 256)


@contextlib.contextmanager
def _busy_process():
    """A second process that keeps one core busy with BLAS work while the benchmark runs."""
    stop = mp.get_context("fork").Event()
    proc = mp.get_context("fork").Process(target=_spin, args=(stop,), daemon=True)
    proc.start()
    try:
        yield
    finally:
        stop.set()
        proc.join()


if __name__ == "__main__":
    main()
