"""Core-native SiamSNN: tracking accuracy per stage on clips no stage has seen, cores and frames per second.

    python benchmarks/tracking_native.py [--clips 3] [--frames 30] [--seed S] [--targets truenorth loihi] [--workers N]

Loads a committed core-native tracker (--config micro or mini; models/train_siamsnn.py: float SiamFC in TrueNorth's native shape,
QAT per target, the SiamSNN graph of the trained integers), draws its clips now -- half from the test photos,
half from the "fresh" photos nothing was trained, calibrated or chosen on -- with a seed taken from the clock
(printed; --seed repeats a run), and scores one row per stage so each loss is attributed to the stage that
makes it: float ANN, quantised ANN (QAT), float SNN (the Graph on the reference simulator), emulated chip.
The chip rows read the score as the SiamSNN was built to be read (models/train_siamsnn.py READOUT, chosen
on training-photo clips). For micro, the
converted micro SiamFC (not core-native, not QAT) is scored as a reference row. Cores per neuron counts every core of
the compiled program (copies, heads, gates) over the Graph's neurons. Each stage tracks its clips serially or, with
--workers N, on a local Ray (models/stage_tracking.py: the same boxes either way; the emulator's seconds per frame
are then measured beside the other workers). Prints the table and writes it to benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from results import command_line, write_section

from neurocomp.ir.layers import lower
from neurocomp.models.stage_tracking import Stage, opened, score
from neurocomp.scale import Pool

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"truenorth": 0.95, "loihi": 0.97}
CHIP_CORES, REAL_TIME_FPS, DENSITY = 4096, 50.0, 0.02


def chip_rows(config: str, target: str, models: Path, clips: list, pool: Pool, console: Console) -> list[dict]:
    """Quantised ANN, float SNN and emulated chip for one target, with the compiled program's figures."""
    def stage(name: str) -> Stage:
        return Stage(name, config, str(models), target)

    rows = [{"stage": name, "target": target, "score": score(stage(name), clips, pool)}
            for name in ("quantised ANN", "float SNN")]
    start = time.perf_counter()
    chip = opened(stage("emulated chip"))   # compiled here for its figures (and tracked here by a serial pool)
    program = chip.siamese.program
    frame = program.report["realtime"]["frame"]
    neurons = int(sum(layer.size for layer in lower(chip.siamese.graph).layers))
    console.print(f"{target}: compiled in {time.perf_counter() - start:.0f} s", style="dim")
    start = time.perf_counter()
    tracked = score(stage("emulated chip"), clips, pool, chip)
    rows.append({"stage": "emulated chip", "target": target, "score": tracked,
                 "cores": program.netlist.n_cores, "chips": program.placed.n_chips,
                 "cores_per_neuron": program.netlist.n_cores / neurons,
                 "ticks": frame["ticks_per_frame"], "fps": frame["frames_per_s"], "emulator_s": tracked["emulator_s"]})
    console.print(f"{target}: tracked in {time.perf_counter() - start:.0f} s", style="dim")
    return rows


def table(config: str, rows: list[dict], base: float, seed: int, n_clips: int, frames: int) -> Table:
    t = Table(title=f"Core-native SiamSNN {config}: {n_clips} clips x {frames} frames (test + fresh photos, seed {seed}); "
                    f"ratio = AUC / float ANN's", title_justify="left")
    for head in ("stage", "target", "AUC", "prec@20", "ratio", "goal", "cores", "chips", "cores/neuron",
                 "ticks/frame", "FPS", "emulator s/frame"):
        t.add_column(head, justify="left" if head in ("stage", "target") else "right")
    for r in rows:
        auc, prec = r["score"]["auc"], r["score"]["precision"]
        goal = GOALS.get(r["target"]) if r["stage"] == "emulated chip" else None
        cells = [f"{r[k]:{fmt}}" if k in r else "" for k, fmt in
                 (("cores", ","), ("chips", "d"), ("cores_per_neuron", ".3f"), ("ticks", "d"), ("fps", ".1f"),
                  ("emulator_s", ".2f"))]
        t.add_row(r["stage"], r["target"], f"{auc:.3f}", f"{prec:.3f}", f"{auc / base:.3f}",
                  "" if goal is None else f"≥ {goal} ({'met' if auc / base >= goal else f'short by {goal - auc / base:.3f}'})",
                  *cells)
    return t


def hardware_goals(rows: list[dict]) -> list[str]:
    """The issue's TrueNorth goals for the chip's program: all scales on one chip (<= 4,096 cores) at >= 50 FPS, and
    <= 0.02 cores per neuron; met, or by how much they are missed."""
    lines = []
    for r in rows:
        if r["stage"] != "emulated chip" or r["target"] != "truenorth":
            continue
        one_chip = r["chips"] == 1 and r["cores"] <= CHIP_CORES and r["fps"] >= REAL_TIME_FPS
        lines.append(f"TrueNorth real time on one chip (<= {CHIP_CORES:,} cores, >= {REAL_TIME_FPS} FPS): "
                     + ("met" if one_chip else "missed") + f" ({r['cores']:,} cores on {r['chips']} chip(s), "
                     f"{r['fps']:.1f} FPS); cores per neuron <= {DENSITY}: "
                     + ("met" if r["cores_per_neuron"] <= DENSITY else
                        f"missed by {r['cores_per_neuron'] / DENSITY:.1f}x ({r['cores_per_neuron']:.3f})"))
    return lines


def markdown(t: Table) -> str:
    heads = [c.header for c in t.columns]
    cells = [list(c.cells) for c in t.columns]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(col[i] for col in cells) + " |" for i in range(len(cells[0]))]
    return f"{t.title}\n\n" + "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=("micro", "micro3", "micro3g", "mini"), default="micro", help="the tracker (models/train_siamsnn.py)")
    ap.add_argument("--clips", type=int, default=3, help="clips per photo split (test, fresh)")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--seed", type=int, help="clip seed (default: drawn from the clock, printed)")
    ap.add_argument("--targets", nargs="+", choices=("truenorth", "loihi"), default=["truenorth", "loihi"])
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--workers", type=int, default=1, help="clips in parallel on a local Ray of this many CPUs")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    seed = args.seed if args.seed is not None else int(time.time()) % 100_000 + 1000
    console = Console() if sys.stdout.isatty() else Console(width=240)   # a log keeps the table's every column
    start = time.perf_counter()
    console.print(f"clip seed {seed}")
    clips = [("test" if k < args.clips else "fresh", seed * 100_000 + k % args.clips, args.frames)
             for k in range(2 * args.clips)]   # models.tracking_data.benchmark's clips, made where they are tracked
    with Pool(args.workers) as pool:
        if pool.uses_ray:
            console.print(f"Ray start-up {pool.startup_s:.1f} s", style="dim")
        base = score(Stage("float ANN", args.config, str(args.models)), clips, pool)
        rows = [{"stage": "float ANN", "target": "", "score": base}]
        if args.config == "micro":
            rows.insert(0, {"stage": "float ANN (converted micro, not native)", "target": "",
                            "score": score(Stage("converted micro", args.config, str(args.models)), clips, pool)})
        for target in args.targets:
            rows += chip_rows(args.config, target, args.models, clips, pool, console)
    t = table(args.config, rows, base["auc"], seed, len(clips), args.frames)
    console.print(t)
    goals = hardware_goals(rows)
    for line in goals:
        console.print(line)
    if not args.no_write:
        write_section(f"tracking_native_{args.config}", f"tracking_native: core-native SiamSNN {args.config}, accuracy per stage, cores, FPS",
                      markdown(t) + "".join(f"\n{line}\n" for line in goals), command_line(),
                      time.perf_counter() - start)


if __name__ == "__main__":
    main()
