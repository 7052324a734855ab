"""Placement quality: spike-hops per tick of each placer against a long annealing run.

    python benchmarks/placement_quality.py [--nets digits nir siamfc] [--targets truenorth loihi]
                                           [--reference-moves 2000] [--seed 0]

Spike-hops = sum over core pairs of traffic x XY hops, an inter-chip hop weighted by the
target's `chip.interchip_hop_weight`; traffic is the compiler's uniform estimate (every
neuron at 0.05 spikes/tick). "ours" is the compiler's default placement (OR-Tools window
re-assignment, then annealing refinement: CompileOptions' effort), sequential / Hilbert /
random (mean of 8) are the baselines, and "SA long" the quality reference: vectorised swap
annealing from the best baseline with `--reference-moves` moves per core (hotter start).

Networks: the bundled digits MLP (build/models/digits_snn.pt, written by `make demo-digits`), the
NIR paper CNN (../shared/data/nir/cnn_sinabs.nir), the committed SiamSNN tracker
(models/siamsnn.pt on truenorth; its reset-to-zero twin build/models/siamsnn_loihi.pt, written
by `make siamsnn`, on loihi) and a SiamFC backbone with random weights
(4 weight levels per neuron so TrueNorth can hold it, max-pooling as average pooling) converted
by neurocomp.convert: the
'small' config on loihi; on truenorth the 'small' backbone needs tens of thousands of cores
and did not compile within 15 minutes here, so truenorth gets the same layers with half the
channels ('small/2').
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from results import command_line, write_section

ROOT = Path(__file__).resolve().parents[1]
NIR = ROOT.parent / "shared" / "data" / "nir" / "cnn_sinabs.nir"
DIGITS = ROOT / "build" / "models" / "digits_snn.pt"
SIAMSNN = {"truenorth": ROOT / "models" / "siamsnn.pt", "loihi": ROOT / "build" / "models" / "siamsnn_loihi.pt"}
QUARTER = (6, 16, 24, 24, 16)


def siamfc(target: str):
    """The SiamFC backbone on a 97 x 97 exemplar crop, random levelled weights, converted to an SNN."""
    import torch

    from neurocomp.convert import ConvertOptions, convert
    from neurocomp.models.digits import level_weights
    from neurocomp.models.siamfc import CONFIGS, SiamFC

    config = CONFIGS["small"] if target != "truenorth" else replace(CONFIGS["small"], channels=QUARTER)
    torch.manual_seed(0)
    backbone = SiamFC(config).backbone.eval()
    with torch.no_grad():
        for conv in (m for m in backbone.modules() if isinstance(m, torch.nn.Conv2d)):
            flat = conv.weight.reshape(conv.weight.shape[0], -1)
            conv.weight.copy_(level_weights(flat).reshape(conv.weight.shape))
    side = config.exemplar_size
    calib = np.random.default_rng(0).random((4, 3, side, side))
    opts = ConvertOptions(reset="zero", calibration_batches=0, maxpool="avg")
    variant = "small" if target != "truenorth" else "small/4"
    return convert(backbone, calib, input_shape=(3, side, side), method=opts), variant


def load(net: str, target: str):
    from neurocomp.frontend import load_model

    if net == "digits":
        if not DIGITS.is_file():
            raise SystemExit(f"{DIGITS} is missing: run `make demo` (or python -m neurocomp.models.digits) first")
        return load_model(DIGITS), "MLP 64-64-10"
    if net == "nir":
        return load_model(NIR), "cnn_sinabs"
    if net == "siamsnn":
        if not SIAMSNN[target].is_file():
            raise SystemExit(f"{SIAMSNN[target]} is missing: run `make siamsnn` first")
        return load_model(SIAMSNN[target]), "micro, committed"
    return siamfc(target)


def measure(net: str, target_name: str, reference_moves: int, seed: int) -> dict:
    from neurocomp.compiler import CompileOptions, compile_graph, core_traffic, mesh_for
    from neurocomp.place import place
    from neurocomp.route import route
    from neurocomp.target import load_target

    target = load_target(target_name)
    graph, variant = load(net, target_name)
    opts = CompileOptions(seed=seed)
    t0 = time.perf_counter()
    compiled = compile_graph(graph, target, opts)
    compile_s = time.perf_counter() - t0
    netlist = compiled.program.netlist
    ours = compiled.report["placement"]
    traffic, mesh = core_traffic(netlist, opts.rate), mesh_for(target, netlist.n_cores)
    ref = place(traffic, mesh, seed=seed, time_budget_s=3600.0, method="anneal",
                anneal_moves=reference_moves * netlist.n_cores)
    return {"net": f"{net} ({variant})", "target": target_name, "cores": netlist.n_cores, "chips": mesh.n_chips,
            **ours["baselines"], "ours": ours["objective"], "ours_s": compiled.report["compile_time_s"]["place"],
            "method": ours["method"], "sa": ref.objective, "sa_s": ref.seconds, "sa_method": ref.method,
            "bound": ours["bound"], "compile_s": compile_s, "ours_link": compiled.routes.max_link_load,
            "sa_link": route(traffic, ref, mesh).max_link_load}


def ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b > 0 else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", default=["digits", "nir", "siamsnn", "siamfc"],
                    choices=["digits", "nir", "siamsnn", "siamfc"])
    ap.add_argument("--targets", nargs="+", default=["truenorth", "loihi"])
    ap.add_argument("--reference-moves", type=int, default=2000, help="annealing moves per core of the reference run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = ap.parse_args()
    start = time.perf_counter()
    head = ("| network | target | cores | chips | sequential | random | Hilbert | ours (s) | ours / seq | "
            "SA long (s) | ours / SA | lower bound | max link load, ours / SA long |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    print("\n".join(lines))
    for net in args.nets:
        for target in args.targets:
            r = measure(net, target, args.reference_moves, args.seed)
            seq = r["sequential"]
            lines.append(f"| {r['net']} | {r['target']} | {r['cores']:,} | {r['chips']} | {seq:,.1f} | {r['random']:,.1f} | "
                         f"{r['hilbert']:,.1f} | {r['ours']:,.1f} ({r['ours_s']:.1f}) | {ratio(r['ours'], seq)} | "
                         f"{r['sa']:,.1f} ({r['sa_s']:.1f}) | {ratio(r['ours'], r['sa'])} | {r['bound']:,.1f} | "
                         f"{r['ours_link']:,.2f} / {r['sa_link']:,.2f} |")
            print(lines[-1], flush=True)
    if not args.no_write:
        write_section("placement_quality", "placement_quality: spike-hops per tick against baselines and a long anneal",
                      "\n".join(lines) + "\n", command_line(), time.perf_counter() - start)


if __name__ == "__main__":
    main()
