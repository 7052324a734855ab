"""Run one small converted SNN in Lava and on the emulator, for loihi and truenorth: equal spikes? how fast?

    python examples/lava_laptop.py [--model build/models/digits_snn.pt] [--samples 8] [--ticks 35]

Uses the digits SNN and its test digits when they have been built (`make models`); otherwise a small integer
CNN built here, driven by random spikes. Both backends get the same encoded input. Times are wall-clock
seconds of the whole call: the emulator runs the batch at once; Lava builds, compiles, starts and runs one
network per sample (one OS process per Lava process), so its time is mostly start-up and synchronisation.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import neurocomp
from neurocomp.frontend import load_model
from neurocomp.ir.graph import IF, Affine, Conv2d, Flatten, Graph, Input, Output, SumPool2d

TARGETS = ("loihi", "truenorth")


def small_cnn(seed: int = 0) -> Graph:
    """Integer weights (<= 3 levels per neuron) and thresholds: exact on both targets; reset to zero for Loihi."""
    rng = np.random.default_rng(seed)
    nodes = [Input("x", (2, 8, 8)), Conv2d("conv", rng.choice([-1.0, 1.0, 2.0], size=(4, 2, 3, 3)), padding=1),
             IF("n1", threshold=3.0), SumPool2d("pool", 2), Flatten("flat"),
             Affine("fc", rng.choice([-1.0, 1.0], size=(10, 64))), IF("n2", threshold=2.0), Output("out")]
    edges = [("x", "conv"), ("conv", "n1"), ("n1", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "n2"), ("n2", "out")]
    return Graph(nodes, edges)


def network(model: Path, samples: int, ticks: int) -> tuple[str, Graph, dict[str, np.ndarray]]:
    """(description, graph, input per graph input: analog values the program encodes, or spikes)."""
    data = model.parent / "digits_test.npz"
    if model.is_file() and data.is_file():
        graph = load_model(model)
        with np.load(data) as z:
            return f"{model.name}, {samples} test digits", graph, {graph.inputs[0].name: z["input"][:samples]}
    graph = small_cnn()
    x = (np.random.default_rng(1).random((samples, ticks, 2, 8, 8)) < 0.3).astype(np.uint8)
    return f"small integer CNN, {samples} random spike inputs", graph, {"x": x}


def timed(fn, *args, **kw):
    start = time.perf_counter()
    return fn(*args, **kw), time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("build/models/digits_snn.pt"))
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--ticks", type=int, default=35)
    args = ap.parse_args()
    console = Console(width=max(Console().width, 120))
    what, graph, inputs = network(args.model, args.samples, args.ticks)
    table = Table(title=f"{what}, {args.ticks} ticks: Lava 0.10.0 fixed_pt vs the neurocomp emulator")
    for col in ("target", "cores", "spikes (emulator)", "equal", "emulator s", "Lava s", "emulator ticks/s",
                "Lava ticks/s", "Lava / emulator"):
        table.add_column(col, justify="right")
    for name in TARGETS:
        program = neurocomp.compile(graph, name)
        emu, t_emu = timed(program.run, inputs, backend="emulator", ticks=args.ticks)
        got, t_lava = timed(program.run, inputs, backend="lava", ticks=args.ticks)
        equal = all(np.array_equal(got.outputs[k], emu.outputs[k]) for k in emu.outputs)
        steps = args.ticks * emu.summary["batch"]
        table.add_row(name, str(program.netlist.n_cores), str(sum(emu.summary["spike_counts"].values())),
                      "yes" if equal else "NO", f"{t_emu:.3f}", f"{t_lava:.2f}", f"{steps / t_emu:,.0f}",
                      f"{steps / t_lava:,.0f}", f"{t_lava / t_emu:,.0f}x")
    console.print(table)


if __name__ == "__main__":
    main()
