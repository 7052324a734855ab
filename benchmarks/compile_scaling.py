"""Compile time and peak memory per stage for conv nets of growing size, and for SiamSNN.

    python benchmarks/compile_scaling.py [--sizes 1e4 1e5 1e6] [--targets truenorth loihi]
    python benchmarks/compile_scaling.py --targets truenorth --groups 8 --weights trinary --sizes 1e5 3e5 1e6 3e6
    python benchmarks/compile_scaling.py --siamsnn full --targets loihi --census
    python benchmarks/compile_scaling.py --siamsnn full --targets loihi --maxpool avg --pool-layers --score hybrid --max-chips 768 --save build
    python benchmarks/compile_scaling.py --targets truenorth --census --sizes 1e5 3e5 1e6 3e6
    python benchmarks/compile_scaling.py --siamsnn full3g --targets truenorth --weights trinary --score hybrid --save build

Each size runs in its own process so peak RSS is per compile. The net is three 3x3 conv
layers (stride 1, same padding) with 16 channels over a square input, IF neurons (`--groups 8 --weights trinary`:
the TrueNorth core-native variant);
random integer weights in [-2, 2]; neurons ~= 3 * 16 * side^2. `--siamsnn CONFIG` compiles the
SiamSNN of that SiamFC config instead (random weights, normalised on 2 crops, no SNN calibration
rounds, `--maxpool` and `--pool-layers` as converted), converted in a process of its own and saved as a .pt that
the compile's process loads, as `neurocomp compile siamsnn.pt` does: neither the conversion's time nor its memory
is counted. `--census` sizes the network without building its
core tables (neurocomp.partition.count_cores: the cores the compile would build, exactly), for networks whose
synapse tables exceed this machine's memory or whose cores exceed the chips; it prints the cores per layer and any
layer no core can hold (its cores are then the mappable layers' only). `--max-chips N` compiles for a copy of the
target's spec with chip.max_chips raised to N (a larger system of the same chips).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import queue
import re
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from results import command_line, write_section


def conv_net(neurons: float, channels: int = 16, seed: int = 0, groups: int = 1):
    """`groups`: the 16-channel convs in that many groups (the first reads 2 channels and stays whole); 8 groups with
    trinary weights is a TrueNorth core-native net (fan-in 18 inputs, 36 axons)."""
    from neurocomp.ir.graph import IF, Conv2d, Graph, Input, Output

    side = max(4, int(round(np.sqrt(neurons / (3 * channels)))))
    rng = np.random.default_rng(seed)
    nodes, edges, prev, cin = [Input("x", (2, side, side))], [], "x", 2
    for i in range(3):
        g = groups if cin % groups == 0 else 1
        w = rng.integers(-2, 3, size=(channels, cin // g, 3, 3)).astype(float)
        nodes += [Conv2d(f"conv{i}", w, padding=1, groups=g), IF(f"if{i}", threshold=4.0)]
        edges += [(prev, f"conv{i}"), (f"conv{i}", f"if{i}")]
        prev, cin = f"if{i}", channels
    nodes.append(Output("out"))
    edges.append((prev, "out"))
    return Graph(nodes, edges), 3 * channels * side * side


def siamsnn_file(config: str, target: str, args: argparse.Namespace, folder: str) -> Path:
    """The SiamSNN graph converted in a process of its own and saved as neurocomp's .pt: the compile's process loads
    it as `neurocomp compile siamsnn.pt` does, so its peak memory is the compile's, not the conversion's."""
    path = Path(folder) / f"siamsnn_{config}_{target}.pt"
    p = mp.get_context("spawn").Process(target=_convert, args=(config, target, args.maxpool, args.pool_layers,
                                                               args.score == "spiking", str(path)))
    p.start()
    p.join()
    if p.exitcode != 0:
        raise SystemExit(f"converting SiamSNN {config} failed (exit {p.exitcode})")
    return path


def _convert(config: str, target: str, maxpool: str, pool_layers: bool, spiking_score: bool, path: str) -> None:
    from neurocomp.frontend.ptfile import save_graph

    save_graph(siamsnn(config, target, maxpool, pool_layers, spiking_score), path)


def siamsnn(config: str, target: str, maxpool: str, pool_layers: bool, spiking_score: bool = True):
    import torch

    from neurocomp.models.siamfc import build
    from neurocomp.models.siamsnn import SiamSNNOptions, build_siamsnn

    torch.manual_seed(0)
    reset = "subtract" if target == "truenorth" else "zero"   # Lava's LIF resets to zero
    graph = build_siamsnn(build(config).eval(), SiamSNNOptions(reset=reset, calibration_samples=2, calibration_batches=0,
                                                                      maxpool=maxpool, pool_layers=pool_layers,
                                                                      spiking_score=spiking_score))
    return graph


def _census(graph, target, weights: str | None) -> dict:
    from neurocomp.compiler import CompileOptions, census

    t = time.perf_counter()
    c = census(graph, target, CompileOptions(weights=weights))
    over = f" (over the spec's {c.max_chips} chips)" if c.chips > c.max_chips else ""
    unmapped = "".join(f"\n    unmapped {k.layer} ({k.neurons} neurons): {k.binding} {k.used:g} > {k.allowed:g}"
                       for k in c.unmapped)
    per_layer = "\n    cores per layer: " + ", ".join(grouped([(k.layer, k.cores) for k in c.layers if k.cores]))
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024   # the census's forked workers
    forked = (f"\n    forked workers: peak RSS {workers:.0f} MB, pages shared with the census included"
              if workers else "")
    return {"cores": c.cores, "chips": c.chips, "stages": {"census": time.perf_counter() - t}, "hops_ratio": float("nan"),
            "note": over + per_layer + unmapped + forked}


def grouped(counts: list[tuple[str, int]]) -> list[str]:
    """'layer cores' per layer, a fan-in split's parts (`<layer>.part<k>` and its `+`/`-` halves) in one entry each:
    a dense paper-size net has hundreds."""
    from neurocomp.partition.fanin import split_of

    parts: dict[str, list[int]] = {}
    out: list[str | tuple[str, list[int]]] = []
    for name, cores in counts:
        split = split_of(name)
        if split is None:
            out.append(f"{name} {cores:,}")
            continue
        if split not in parts:
            parts[split] = []
            out.append((split, parts[split]))
        parts[split].append(cores)
    return [item if isinstance(item, str) else _parts(*item) for item in out]


def _parts(prefix: str, cores: list[int]) -> str:
    each = f"{cores[0]:,} each" if min(cores) == max(cores) else f"{min(cores):,} to {max(cores):,}"
    return f"{prefix}.part* ({len(cores)} part{'s' * (len(cores) > 1)}, {each}, {sum(cores):,} in all)"


def _target(name: str, max_chips: int | None, folder: str):
    """The built-in target, or a copy of its spec.toml with chip.max_chips raised (a larger system of the same
    chips: Loihi's Pohoiki Springs holds 768)."""
    from neurocomp.target import load_spec, load_target

    if max_chips is None:
        return load_target(name)
    text, n = re.subn(r"^max_chips = \{ value = \d+", f"max_chips = {{ value = {max_chips}", load_spec(name).text,
                      flags=re.M)
    assert n == 1, "the spec's chip.max_chips line was not found"
    path = Path(folder) / f"{name}_{max_chips}_chips.toml"
    path.write_text(text)
    return load_target(str(path))


def _one(target: str, size: float | Path, args: argparse.Namespace, out: mp.Queue) -> None:
    from neurocomp.compiler import CompileOptions, compile_graph
    from neurocomp.errors import UserError

    if isinstance(size, Path):
        from neurocomp.frontend.ptfile import load_graph
        from neurocomp.ir.layers import lower

        graph = load_graph(size)
        n = sum(layer.size for layer in lower(graph).layers)
    else:
        graph, n = conv_net(size, groups=args.groups)
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as folder:
            tgt = _target(target, args.max_chips, folder)
        if args.census:
            row = _census(graph, tgt, args.weights)
        else:
            c = compile_graph(graph, tgt, CompileOptions(weights=args.weights))
            stages = dict(c.report["compile_time_s"])
            if args.save:   # the artifact too: arrays, report, model.pt, hashes (neurocomp.program.save)
                with tempfile.TemporaryDirectory(dir=args.save) as folder:
                    start = time.perf_counter()
                    c.program.save(Path(folder) / "program")
                    stages["save"] = time.perf_counter() - start
            row = {"cores": c.report["cores_used"], "chips": c.report["chips_used"], "stages": stages,
                   "hops_ratio": c.report["traffic"]["spike_hops_per_tick"] /
                   max(c.report["traffic"]["sequential_spike_hops_per_tick"], 1e-12)}
    except UserError as exc:
        row = {"error": str(exc)}
    row |= {"target": target, "neurons": n, "total_s": time.perf_counter() - t0,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    out.put(row)


def _result(p: mp.Process, q: mp.Queue, target: str) -> dict:
    """The child's row, or an error row once it has ended without one (an exception's traceback is on stderr;
    no traceback: killed, e.g. for memory), so one failed size never leaves the run waiting."""
    while True:
        try:
            row = q.get(timeout=1.0)
            p.join()
            return row
        except queue.Empty:
            if not p.is_alive() and q.empty():
                p.join()
                return {"error": f"the compile's process ended with exit code {p.exitcode} and no result",
                        "target": target, "neurons": 0, "total_s": float("nan"), "peak_mb": float("nan")}


def growth(rows: list[dict], key: str) -> float:
    """Least-squares exponent k of key ~ neurons^k over the rows (log-log slope)."""
    n = np.log([r["neurons"] for r in rows])
    return float(np.polyfit(n, np.log([max(r[key], 1e-9) for r in rows]), 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e4, 3e4, 1e5, 3e5])
    ap.add_argument("--targets", nargs="+", default=["truenorth", "loihi"])
    ap.add_argument("--siamsnn", choices=["micro", "small", "full", "full3g"],
                    help="compile this SiamSNN config instead of the conv nets (full3g: the paper-size tracker in "
                         "TrueNorth's native shape)")
    ap.add_argument("--score", choices=["spiking", "hybrid"], default="spiking",
                    help="SiamSNN score: the two-status spiking layer, or the hybrid read-out the host sums")
    ap.add_argument("--census", action="store_true", help="count cores without building core tables")
    ap.add_argument("--maxpool", choices=["spiking", "avg"], default="spiking", help="SiamSNN max-pool conversion")
    ap.add_argument("--pool-layers", action="store_true", help="SiamSNN pools as their own IF layers")
    ap.add_argument("--groups", type=int, default=1, help="conv groups of the conv nets' 16-channel layers")
    ap.add_argument("--weights", help="weight mode (default: each target's first)")
    ap.add_argument("--save", metavar="DIR", help="also write each program's artifact under DIR (timed, then removed)")
    ap.add_argument("--max-chips", type=int, help="raise the target's chip.max_chips to this (a copy of its spec)")
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = ap.parse_args()
    sizes = [args.siamsnn] if args.siamsnn else args.sizes
    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("fork")
    graphs = tempfile.TemporaryDirectory()   # converted SiamSNN graphs, removed when the run ends
    start = time.perf_counter()
    lines = [f"{'target':10} {'neurons':>9} {'cores':>6} {'chips':>5} {'total s':>8} {'peak MB':>8} {'hops/seq':>8}  stages (s)"]
    print(lines[0], flush=True)
    for target in args.targets:
        done, over = [], None
        for size in sizes:
            if over is not None:   # a larger net of the same shape needs more cores still
                lines.append(f"{target:10} {size:>9g}  skipped: the {over}-neuron net already exceeds the chips")
                print(lines[-1], flush=True)
                continue
            q = ctx.Queue()
            item = siamsnn_file(size, target, args, graphs.name) if isinstance(size, str) else size
            p = ctx.Process(target=_one, args=(target, item, args, q))
            p.start()
            row = _result(p, q, target)
            if "error" in row:
                over = row["neurons"] if row["error"].startswith("network") and ": cores " in row["error"] else None
                lines.append(f"{target:10} {row['neurons']:>9} {'-':>6} {'-':>5} {row['total_s']:8.2f} {row['peak_mb']:8.0f}  "
                             f"error: {row['error']}")
            else:
                done.append(row)
                stages = " ".join(f"{k}={v:.2f}" for k, v in row["stages"].items())
                lines.append(f"{target:10} {row['neurons']:>9} {row['cores']:>6} {row['chips']:>5} {row['total_s']:8.2f} "
                             f"{row['peak_mb']:8.0f} {row['hops_ratio']:8.2f}  {stages}{row.get('note', '')}")
            print(lines[-1], flush=True)
        if len(done) >= 2:   # the goal: time and memory at most linear in neurons (exponent <= 1)
            lines.append(f"{target:10} growth exponents over {len(done)} sizes: time {growth(done, 'total_s'):.2f}, "
                         f"peak memory {growth(done, 'peak_mb'):.2f} (goal <= 1)")
            print(lines[-1], flush=True)
    if not args.no_write:
        targets = "" if sorted(args.targets) == ["loihi", "truenorth"] else "_".join(args.targets)
        variant = (f" of SiamSNN {args.siamsnn}" if args.siamsnn else
                   f", convs in {args.groups} groups, {args.weights or 'default'} weights"
                   if args.groups > 1 or args.weights else "") + \
            (f" on {', '.join(args.targets)}" if targets else "") + \
            (", hybrid score" if args.siamsnn and args.score == "hybrid" else "") + \
            (f", chip.max_chips raised to {args.max_chips}" if args.max_chips else "")
        name = "compile_scaling" + "".join(f"_{v}" for v in (args.siamsnn, targets,
                                                              args.siamsnn and args.score == "hybrid" and "hybrid",
                                                              args.groups > 1 and f"groups{args.groups}", args.weights,
                                                              args.max_chips and f"chips{args.max_chips}",
                                                              args.census and "census") if v)
        what = "core census (no core tables): time and peak memory" if args.census else "compile time and peak memory"
        write_section(name, f"compile_scaling: {what}{variant}",
                      "```\n" + "\n".join(lines) + "\n```\n", command_line(),
                      time.perf_counter() - start)


if __name__ == "__main__":
    main()
