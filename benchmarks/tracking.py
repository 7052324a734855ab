"""SiamSNN tracking accuracy, speed and energy per T: ANN, float SNN, emulated TrueNorth and Loihi.

    python benchmarks/tracking.py [--clips 2] [--frames 20] [--timesteps 8 16 20 32 64] [--tn-timesteps 20 ...]

Uses the committed micro SiamFC (models/siamfc_micro.pt), converts it twice (reset by
subtraction for TrueNorth and the float SNN, reset to zero for Loihi), compiles each once
and tracks the same synthetic test clips (OTB one-pass: success AUC, precision at 20 px).
Ticks per frame count the three scales one after another on one chip; FPS is at the
chip's tick (TrueNorth 1 ms; Loihi estimated per tick from its slowest core), energy per
frame from the targets' spec.toml constants. The TrueNorth program holds ~40x more neuron
copies than the network has neurons (fan-out replication); the emulator runs each copy group
once (~2 s per frame at T = 20 here), at every T unless --tn-timesteps names fewer. A second
table sweeps the coding choices on the
float SNN at one T: hybrid weighting (drop / linear / uniform) and two-status spike counts.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from rich.console import Console
from results import write_table
from rich.table import Table

from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.frontend.ptfile import load_graph
from neurocomp.models import otb
from neurocomp.models.chip_tracker import ChipOptions, ChipSiamese, chip_tracker
from neurocomp.models.siamfc import build
from neurocomp.models.siamsnn import SiamSNNOptions, build_siamsnn, tracker_config
from neurocomp.models.tracker import ann_tracker
from neurocomp.models.tracking_data import benchmark
from neurocomp.target import load_target

ROOT = Path(__file__).resolve().parents[1]


def snn_graph(model, reset: str, path: Path):
    return load_graph(path) if path.is_file() else build_siamsnn(model, SiamSNNOptions(reset=reset))


def evaluate(siamese: ChipSiamese | None, model, clips, config) -> dict:
    boxes = [(ann_tracker(model) if siamese is None else chip_tracker(siamese, config)).track(c) for c in clips]
    r = otb.ope(boxes, [c.boxes for c in clips])
    out = {"auc": r.auc, "precision": r.precision}
    if siamese is not None and siamese.opts.backend == "emulator":
        out |= siamese.stats.per_frame()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=2)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--timesteps", type=int, nargs="+", default=[8, 16, 20, 32, 64])
    ap.add_argument("--tn-timesteps", type=int, nargs="*", help="T values run on TrueNorth (default: all)")
    ap.add_argument("--sweep-t", type=int, default=20)
    ap.add_argument("--tn-weights", choices=["levels", "trinary", "bits"], default="bits", help="TrueNorth weight mode")
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = ap.parse_args()
    start = time.perf_counter()
    torch.set_num_threads(2)
    model = build("micro").eval()
    model.load_state_dict(torch.load(ROOT / "models/siamfc_micro.pt", weights_only=True))
    clips = benchmark("test", args.clips, args.frames, seed=1)
    graphs = {"truenorth": snn_graph(model, "subtract", ROOT / "models/siamsnn.pt"),
              "loihi": snn_graph(model, "zero", ROOT / "build/models/siamsnn_loihi.pt")}
    config = tracker_config(graphs["truenorth"])
    programs, cores = {}, {}
    for name, g in graphs.items():
        t0 = time.perf_counter()
        compiled = compile_graph(g, load_target(name), CompileOptions(weights=args.tn_weights if name == "truenorth" else "levels"))
        programs[name] = compiled.program
        cores[name] = (compiled.program.netlist.n_cores, compiled.program.placed.n_chips, time.perf_counter() - t0)
    console = Console(record=True)
    ann = evaluate(None, model, clips, config)
    table = Table(title=f"SiamSNN micro, {args.clips} test clips x {args.frames} frames "
                        f"(ANN SiamFC: AUC {ann['auc']:.3f}, prec@20 {ann['precision']:.3f})", title_justify="left")
    for head in ("T", "float SNN AUC / prec", "TrueNorth AUC / prec", "TN ticks/frame", "TN FPS", "TN µJ/frame",
                 "Loihi AUC / prec", "Loihi FPS", "Loihi µJ/frame"):
        table.add_column(head, justify="right")
    for T in args.timesteps:
        opts = ChipOptions(timesteps=T, tau0=min(4, T // 4))
        ref = evaluate(ChipSiamese(graphs["truenorth"], None, None, ChipOptions(**{**opts.__dict__, "backend": "reference"})),
                       model, clips, config)
        lo = evaluate(ChipSiamese(graphs["loihi"], programs["loihi"], load_target("loihi"), opts), model, clips, config)
        tn_cells = ["—"] * 4
        if args.tn_timesteps is None or T in args.tn_timesteps:
            tn = evaluate(ChipSiamese(graphs["truenorth"], programs["truenorth"], load_target("truenorth"), opts),
                          model, clips, config)
            tn_cells = [_pair(tn), f"{tn['ticks']:.0f}", f"{tn['fps']:.1f}", f"{tn['energy_uj']:.0f}"]
        table.add_row(str(T), _pair(ref), *tn_cells, _pair(lo), f"{lo['fps']:.0f}", f"{lo['energy_uj']:.1f}")
        console.print(f"T={T} done", style="dim")
    console.print(table)
    console.print(_sweep(graphs["truenorth"], model, clips, config, args.sweep_t))
    for name, (n_cores, chips, secs) in cores.items():
        console.print(f"{name}: {n_cores} cores on {chips} chip(s), compiled in {secs:.1f} s")
    if not args.no_write:
        write_table("tracking", "tracking: the converted micro SiamSNN on the emulated chips", console.export_text(), start)


def _sweep(graph, model, clips, config, T: int) -> Table:
    table = Table(title=f"Coding choices on the float SNN (reset by subtraction), T = {T}", title_justify="left")
    for head in ("response", "tau0", "AUC", "prec@20"):
        table.add_column(head, justify="right")
    for score, weighting, tau0 in [("potential", "uniform", 0), ("potential", "drop", 2), ("potential", "drop", 4),
                                   ("potential", "drop", T // 2), ("potential", "linear", 0),
                                   ("spikes", "drop", 1), ("spikes", "drop", T // 4), ("spikes", "drop", T // 2)]:
        opts = ChipOptions(timesteps=T, tau0=tau0, weighting=weighting, score=score, backend="reference")
        r = evaluate(ChipSiamese(graph, None, None, opts), model, clips, config)
        label = f"hybrid, {weighting}" if score == "potential" else "two-status spikes"
        table.add_row(label, str(tau0), f"{r['auc']:.3f}", f"{r['precision']:.3f}")
    return table


def _pair(r: dict) -> str:
    return f"{r['auc']:.3f} / {r['precision']:.3f}"


if __name__ == "__main__":
    main()
