"""Scale-out on Ray: serial vs a local Ray of 2 workers, for tracking clips and for a digits accuracy sweep.

    python benchmarks/scale_out.py [--clips 8] [--frames 20] [--program DIR] [--repeat 7]

(1) `neurocomp track PROGRAM --clips 8` (the core-native micro SiamSNN on TrueNorth, compiled into build/ unless
--program names one) with --workers 1 and --workers 2, as separate processes; (2) the sweep helper over 2 targets x
3 values of T for two digits SNNs (built into build/models if missing: the demo MLP, 2 cores a point, and a small
CNN, hundreds of TrueNorth cores), in this process, serial and parallel in turns, best of --repeat each (the CNN
half as many). Each prints the serial and the parallel work time, their ratio, Ray's start-up
(ray.init and its workers' imports) and the workers opening the program apart (a serial run opens it before its
work too), and checks that the results are identical (the --out files byte for byte, the tables as text). Goals:
both ratios >= 1.7 on 2 cores. Last, `neurocomp eval --workers 1` is run in a fresh process that must not import ray.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from results import write_table

from neurocomp.scale import Pool
from neurocomp.sweep import grid, sweep, sweep_table

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "scale_out"
NEUROCOMP = [sys.executable, "-m", "neurocomp.cli"]


def _program(given: str | None) -> Path:
    """The tracker program: --program, or the committed micro SiamSNN compiled for TrueNorth once."""
    if given:
        return Path(given)
    out = BUILD / "siamsnn_micro.truenorth"
    if not (out / "manifest.json").exists():
        subprocess.run([*NEUROCOMP, "compile", str(ROOT / "models" / "siamsnn_micro_truenorth.pt"), "--target",
                        "truenorth", "-o", str(out), "--quiet"], check=True)
    return out


def _digits(net: str = "mlp") -> tuple[Path, Path]:
    model = ROOT / "build" / "models" / ("digits_snn.pt" if net == "mlp" else f"digits_{net}_snn.pt")
    if not model.exists():
        subprocess.run([sys.executable, "-m", "neurocomp.models.digits", "--net", net, "-o", str(model)], check=True)
    return model, model.with_name("digits_test.npz")


def tracking(program: Path, clips: int, frames: int) -> list[str]:
    runs = {}
    for workers in (1, 2):
        out = BUILD / f"tracks_{workers}.json"
        done = subprocess.run([*NEUROCOMP, "track", str(program), "--clips", str(clips), "--frames", str(frames),
                               "--workers", str(workers), "--out", str(out), "--json"],
                              check=True, capture_output=True, text=True)
        runs[workers] = json.loads(done.stdout) | {"bytes": out.read_bytes()}
    one, two = runs[1], runs[2]
    return [f"tracking: {clips} clips x {frames} frames, {program.name}",
            f"  serial     work {one['work_s']:7.1f} s   AUC {one['auc']:.4f}  precision@20 {one['precision']:.4f}  "
            f"chip FPS {one['chip_fps']:.1f}",
            f"  2 workers  work {two['work_s']:7.1f} s   AUC {two['auc']:.4f}  precision@20 {two['precision']:.4f}  "
            f"chip FPS {two['chip_fps']:.1f}",
            f"  Ray start-up (ray.init + 2 workers' imports) {two['ray_startup_s']:.1f} s and the 2 workers opening the "
            f"program {two['workers_open_s']:.1f} s, apart from the work (serial opens it once before its work too)",
            f"  whole command (load, start-up, work, write): serial {one['total_s']:.1f} s, 2 workers {two['total_s']:.1f} s",
            f"  speed-up of the work {one['work_s'] / two['work_s']:.2f}x (goal >= 1.7x); --out files identical: "
            f"{one['bytes'] == two['bytes']}"]


SWEEPS = {"mlp": (64, 128, 256), "cnn": (16, 32, 64)}   # the digits net -> its values of T


def digits_sweep(net: str, repeat: int) -> list[str]:
    model, data = _digits(net)
    points = grid(["truenorth", "loihi"], SWEEPS[net])
    times: dict[int, list[float]] = {1: [], 2: []}
    tables: dict[int, str] = {}
    with Pool(1) as serial, Pool(2) as parallel:
        for _ in range(repeat):   # serial and parallel in turns, so that a drift of the machine's speed hits both
            for workers, pool in ((1, serial), (2, parallel)):
                start, opening = time.perf_counter(), pool.open_s
                tables[workers] = sweep_table(sweep(model, data, points, pool))
                times[workers].append(time.perf_counter() - start - (pool.open_s - opening))
        startup = parallel.startup_s
    one, two = min(times[1]), min(times[2])
    return [f"digits sweep, {net} ({model.name}): 2 targets x T in {SWEEPS[net]}, the 360 held-out digits, "
            f"best of {repeat}",
            tables[1].rstrip("\n"),
            f"  serial {one:.2f} s, 2 workers {two:.2f} s: speed-up {one / two:.2f}x (goal >= 1.7x); "
            f"tables identical: {tables[1] == tables[2]}",
            f"  Ray start-up (ray.init + 2 workers' imports) {startup:.1f} s, apart from the work (as are the "
            "workers opening the model and data, as serial does before its work)"]


def no_ray_with_one_worker() -> str:
    model, data = _digits()
    program = BUILD / "digits.loihi"
    if not (program / "manifest.json").exists():
        subprocess.run([*NEUROCOMP, "compile", str(model), "--target", "loihi", "-o", str(program), "--quiet"], check=True)
    code = ("import sys; from neurocomp.cli import main; "
            f"assert main(['eval', {str(program)!r}, '--data', {str(data)!r}, '--quiet']) == 0; "
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return f"neurocomp eval --workers 1: ray modules imported: {done.stdout.strip()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--program", help="a compiled SiamSNN program (default: build/scale_out/siamsnn_micro.truenorth)")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    start = time.perf_counter()
    BUILD.mkdir(parents=True, exist_ok=True)
    lines = tracking(_program(args.program), args.clips, args.frames)
    for net in SWEEPS:
        lines += ["", *digits_sweep(net, args.repeat if net == "mlp" else max(1, args.repeat // 2))]
    lines += ["", no_ray_with_one_worker()]
    text = "\n".join(lines)
    print(text)
    write_table("scale_out", "Scale-out on Ray: serial vs 2 local workers (tracking clips, digits sweep)", text, start)


if __name__ == "__main__":
    main()
