"""`make demo`: compile the bundled digits SNN for TrueNorth and Loihi, run it on the emulator, print the reports.

    python examples/demo.py build/models/digits_snn.pt [--samples 200] [--timesteps 32]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from neurocomp.cli import main as cli
from neurocomp.models.digits import predict

TARGETS = ("truenorth", "loihi")


def _accuracy(out_npz: Path, labels: np.ndarray) -> float:
    with np.load(out_npz) as z:
        return float((predict(z["output"]) == labels).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--timesteps", type=int, default=32)
    args = ap.parse_args()
    console = Console(width=max(Console().width, 130))
    build = args.model.parent
    with np.load(build / "digits_test.npz") as z:
        x, labels = z["input"][: args.samples], z["labels"][: args.samples]
    np.savez(build / "demo_input.npz", input=x)
    rows = []
    for target in TARGETS:
        prog = build / f"digits_snn.{target}"
        console.rule(f"compile for {target}")
        assert cli(["compile", str(args.model), "--target", target, "-o", str(prog), "--timesteps", str(args.timesteps)]) == 0
        report = json.loads((prog / "report.json").read_text())
        results = {}
        for backend in ("emulator", "reference"):
            out = build / f"out.{target}.{backend}.npz"
            console.print(f"running {len(labels)} test digits on the {backend} ({target}) ...")
            assert cli(["run", str(prog), "--input", str(build / "demo_input.npz"), "--backend", backend, "--out", str(out)]) == 0
            results[backend] = _accuracy(out, labels)
        rows.append((target, report, results))
    _print_summary(console, rows, len(labels))


def _print_summary(console: Console, rows, n: int) -> None:
    t = Table(title=f"digits SNN, {n} test digits, emulated chips")
    for col in ("target", "cores", "chips", "spike-hops/tick (seq.)", "energy/inference (dynamic)", "inferences/s",
                "accuracy chip", "accuracy float SNN"):
        t.add_column(col, justify="right")
    for target, rep, acc in rows:
        tr = rep["traffic"]
        t.add_row(target, str(rep["cores_used"]), str(rep["chips_used"]),
                  f"{tr['spike_hops_per_tick']:.2f} ({tr['sequential_spike_hops_per_tick']:.2f})",
                  f"{rep['energy']['per_inference_j'] * 1e6:.1f} µJ ({rep['energy']['dynamic_per_inference_j'] * 1e6:.3f})",
                  f"{rep['realtime']['inferences_per_s']:.1f}",
                  f"{acc['emulator']:.3f}", f"{acc['reference']:.3f}")
    console.print(t)
    console.print("Compile-time energy and throughput use the assumed firing rate in each report; "
                  "the `run` tables above show the measured counts.")


if __name__ == "__main__":
    main()
