"""`neurocomp run` on the TrueNorth tracker programs: time to the first tick and peak memory.

    python benchmarks/run_start.py [--configs micro micro3g mini] [--repeat 3]

Each committed SiamSNN tracker for TrueNorth is compiled into build/run_start once (not timed). Then
`neurocomp run PROGRAM --input X --ticks 1 --json` runs --repeat times, each in a fresh process, on one random
rate-coded frame: the whole command's wall time (Python start, imports, load with hash checks, inputs, emulator
plan, one tick, the JSON written) is the time to the first tick. Printed: the run summary's own stage times
(load, inputs, prepare, simulate) of the median run, the median and worst command time, and the peak RSS.
Goal (issue: compiler at paper scale): first tick within 5 s and at most 2 GB.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from results import write_table

from neurocomp.program import VERSION

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "run_start"
NEUROCOMP = [sys.executable, "-m", "neurocomp.cli"]
GOAL_S, GOAL_MB = 5.0, 2048.0
# Runs the command in a child and prints its peak RSS (kB): a fresh wrapper per run, so the maximum is that run's.
PEAK = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "sys.stderr.write(done.stderr); print(json.dumps({'rc': done.returncode, 'out': done.stdout, "
        "'peak_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")


def program(config: str) -> Path:
    """The committed tracker of this config compiled for TrueNorth (once per artifact version)."""
    out = BUILD / f"siamsnn_{config}.truenorth"
    manifest = out / "manifest.json"
    if not manifest.exists() or json.loads(manifest.read_text()).get("version") != VERSION:
        subprocess.run([*NEUROCOMP, "compile", str(ROOT / "models" / f"siamsnn_{config}_truenorth.pt"), "--target",
                        "truenorth", "-o", str(out), "--quiet"], check=True)
    return out


def frame(prog: Path) -> Path:
    """One random frame per program input, rate-coded values in [0, 1]."""
    path = BUILD / f"{prog.name}.input.npz"
    inputs = json.loads((prog / "manifest.json").read_text())["inputs"]
    rng = np.random.default_rng(0)
    np.savez(path, **{i["name"]: rng.random((1, *i["shape"])) for i in inputs})
    return path


def timed_run(prog: Path, x: Path) -> dict:
    """One `neurocomp run` in a fresh process: its summary, wall time and peak RSS."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "import json; " + PEAK, *NEUROCOMP, "run", str(prog), "--input",
                           str(x), "--ticks", "1", "--json", "--quiet"], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    got = json.loads(done.stdout)
    if got["rc"] != 0:
        raise SystemExit(f"neurocomp run {prog} failed:\n{done.stderr}")
    return {"summary": json.loads(got["out"]), "wall_s": wall, "peak_mb": got["peak_kb"] / 1024}


def row(config: str, repeat: int) -> str:
    prog = program(config)
    x = frame(prog)
    runs = sorted((timed_run(prog, x) for _ in range(repeat)), key=lambda r: r["wall_s"])
    mid, worst = runs[len(runs) // 2], runs[-1]
    cores = json.loads((prog / "report.json").read_text())["cores_used"]
    stages = " ".join(f"{k}={v:.2f}" for k, v in mid["summary"]["times_s"].items())
    peak = max(r["peak_mb"] for r in runs)
    met = "yes" if worst["wall_s"] <= GOAL_S and peak <= GOAL_MB else "no"
    return (f"{config:8} {cores:>6} {mid['wall_s']:9.2f} {worst['wall_s']:8.2f} {peak:8.0f} {met:>4}  {stages}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=["micro", "micro3g", "mini"])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    start = time.perf_counter()
    BUILD.mkdir(parents=True, exist_ok=True)
    lines = [f"{'tracker':8} {'cores':>6} {'median s':>9} {'worst s':>8} {'peak MB':>8} {'met':>4}  run summary stages (s)"]
    print(lines[0], flush=True)
    for config in args.configs:
        lines.append(row(config, args.repeat))
        print(lines[-1], flush=True)
    lines.append(f"time to the first tick: the whole `neurocomp run --ticks 1` command, {args.repeat} fresh processes "
                 f"each; goal <= {GOAL_S:g} s and <= {GOAL_MB:g} MB")
    print(lines[-1])
    write_table("run_start", "run_start: `neurocomp run` on the TrueNorth trackers, time to the first tick and memory",
                "\n".join(lines), start)


if __name__ == "__main__":
    main()
