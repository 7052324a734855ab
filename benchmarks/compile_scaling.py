"""Compile time and peak memory per stage for conv nets of growing size.

    python benchmarks/compile_scaling.py [--sizes 1e4 1e5 1e6] [--targets truenorth loihi]

Each size runs in its own process so peak RSS is per compile. The net is three 3x3 conv
layers (stride 1, same padding) with 16 channels over a square input, IF neurons;
random integer weights in [-2, 2]; neurons ~= 3 * 16 * side^2.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import numpy as np


def conv_net(neurons: float, channels: int = 16, seed: int = 0):
    from neurocomp.ir.graph import IF, Conv2d, Graph, Input, Output

    side = max(4, int(round(np.sqrt(neurons / (3 * channels)))))
    rng = np.random.default_rng(seed)
    nodes, edges, prev, cin = [Input("x", (2, side, side))], [], "x", 2
    for i in range(3):
        w = rng.integers(-2, 3, size=(channels, cin, 3, 3)).astype(float)
        nodes += [Conv2d(f"conv{i}", w, padding=1), IF(f"if{i}", threshold=4.0)]
        edges += [(prev, f"conv{i}"), (f"conv{i}", f"if{i}")]
        prev, cin = f"if{i}", channels
    nodes.append(Output("out"))
    edges.append((prev, "out"))
    return Graph(nodes, edges), 3 * channels * side * side


def _one(target: str, neurons: float, out: mp.Queue) -> None:
    from neurocomp.compiler import CompileOptions, compile_graph
    from neurocomp.errors import UserError
    from neurocomp.target import load_target

    graph, n = conv_net(neurons)
    t0 = time.perf_counter()
    try:
        c = compile_graph(graph, load_target(target), CompileOptions())
        row = {"cores": c.report["cores_used"], "chips": c.report["chips_used"], "stages": c.report["compile_time_s"],
               "hops_ratio": c.report["traffic"]["spike_hops_per_tick"] / max(c.report["traffic"]["sequential_spike_hops_per_tick"], 1e-12)}
    except UserError as exc:
        row = {"error": str(exc)}
    row |= {"target": target, "neurons": n, "total_s": time.perf_counter() - t0,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    out.put(row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e4, 3e4, 1e5, 3e5])
    ap.add_argument("--targets", nargs="+", default=["truenorth", "loihi"])
    args = ap.parse_args()
    ctx = mp.get_context("fork")
    print(f"{'target':10} {'neurons':>9} {'cores':>6} {'chips':>5} {'total s':>8} {'peak MB':>8} {'hops/seq':>8}  stages (s)")
    for target in args.targets:
        for size in args.sizes:
            q = ctx.Queue()
            p = ctx.Process(target=_one, args=(target, size, q))
            p.start()
            row = q.get()
            p.join()
            if "error" in row:
                print(f"{target:10} {row['neurons']:>9} {'-':>6} {'-':>5} {row['total_s']:8.2f} {row['peak_mb']:8.0f}  error: {row['error']}")
                continue
            stages = " ".join(f"{k}={v:.2f}" for k, v in row["stages"].items())
            print(f"{target:10} {row['neurons']:>9} {row['cores']:>6} {row['chips']:>5} {row['total_s']:8.2f} "
                  f"{row['peak_mb']:8.0f} {row['hops_ratio']:8.2f}  {stages}")


if __name__ == "__main__":
    main()
