"""Digits accuracy: ANN vs float SNN vs emulated TrueNorth and Loihi, for several T.

    python benchmarks/accuracy_digits.py [--timesteps 8 16 32 64 128] [--samples 360]

Trains the digits ANN (models/digits.py), converts it once per T (calibrated for that T,
with the defaults the demo uses: reset to zero, rate code), compiles it for each target
and weight mode (one neurocomp.sweep per T, --workers on a local Ray) and runs the last 360 digits for T + the
program's latency ticks (the float SNN: T + depth). Goals: TrueNorth >= ANN - 1.0 pt at
some T <= 64, Loihi >= ANN - 0.5 pt at some T <= 32. TrueNorth runs in each weight mode: bits (the default:
a 4-bit integer x a scale per neuron on the axon types as bit planes), levels (4 clustered levels) and trinary
(EEDN-style {-1, 0, +1} x a scale per neuron). Two smaller tables follow: the
float SNN per input encoding and reset at T = 32, and a small CNN trained with max pooling
converted with max pooling replaced by average pooling and with the spiking max.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from results import write_table
from torch import nn

from neurocomp.convert import ConvertOptions, ann_forward
from neurocomp.frontend.ptfile import save_graph
from neurocomp.models import digits
from neurocomp.scale import Pool
from neurocomp.sweep import sweep


def _table(title: str, heads: tuple[str, ...], rows: list[tuple]) -> Table:
    t = Table(title=title, title_justify="left")
    for head in heads:
        t.add_column(head, justify="right")
    for row in rows:
        t.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    return t


GRID = (("truenorth", "bits"), ("truenorth", "levels"), ("truenorth", "trinary"), ("loihi", "levels"))


def chips(net: nn.Module, x, xt, yt, steps: list[int], ann: float, pool: Pool, folder: Path) -> Table:
    """Per T: the float SNN here, and the emulated chips as one neurocomp.sweep over the targets' weight modes."""
    np.savez(folder / "test.npz", input=xt, labels=yt)
    rows = []
    for t in steps:
        snn = digits.to_snn(net, x, t)
        save_graph(snn, folder / f"snn{t}.pt")
        acc = digits.accuracies(snn, xt, yt, t, ())
        chip = sweep(folder / f"snn{t}.pt", folder / "test.npz", [(name, t, mode) for name, mode in GRID], pool)
        rows.append((t, ann, acc["snn_float"], *(r.accuracy for r in chip)))
    return _table(f"digits MLP, {len(yt)} test digits: accuracy (chips run T + latency ticks)",
                  ("T", "ANN", "SNN float (reference)", *(f"{name} {mode}" for name, mode in GRID)), rows)


def encodings(net: nn.Module, x, xt, yt, t: int = 32) -> Table:
    rows = [(enc, reset, digits.accuracies(digits.to_snn(net, x, t, encoding=enc, reset=reset), xt, yt, t, ())["snn_float"])
            for enc in ("rate", "poisson", "current") for reset in ("zero", "subtract")]
    return _table(f"float SNN at T = {t} per input encoding and reset", ("encoding", "reset", "accuracy"), rows)


def maxpool_cost(x, y, xt, yt, t: int = 32) -> Table:
    cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10))
    net = digits.train(x, y, net=cnn, levels=False)
    avg = float((ann_forward(net, xt, ConvertOptions(maxpool="avg")).argmax(1) == yt).mean())
    rows = []
    for mode in ("avg", "spiking"):
        acc = digits.accuracies(digits.to_snn(net, x, t, maxpool=mode), xt, yt, t)
        rows.append((mode, digits.accuracy(net, xt.astype(np.float32), yt), avg, acc["snn_float"], acc["truenorth"], acc["loihi"]))
    return _table(f"max pooling: average-pool replacement vs spiking max (conv 1->8, max-pool 2, linear; T = {t})",
                  ("--maxpool", "ANN with max pool", "same weights, avg pool", "float SNN", "TrueNorth emulated",
                   "Loihi emulated"), rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timesteps", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    ap.add_argument("--samples", type=int, default=360)
    ap.add_argument("--workers", type=int, default=1, help="grid points in parallel on a local Ray (neurocomp.sweep)")
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = ap.parse_args()
    start = time.perf_counter()
    x, y, xt, yt = digits.dataset()
    xt, yt = xt[: args.samples].astype(np.float64), yt[: args.samples]
    net = digits.train(x, y)
    ann = digits.accuracy(net, xt.astype(np.float32), yt)
    console = Console(record=True)
    with Pool(args.workers) as pool, tempfile.TemporaryDirectory() as folder:
        console.print(chips(net, x, xt, yt, args.timesteps, ann, pool, Path(folder)))
    console.print(encodings(net, x, xt, yt))
    console.print(maxpool_cost(x, y, xt, yt))
    console.print(f"{time.perf_counter() - start:.0f} s; ticks per inference = T + depth (one tick per layer)")
    if not args.no_write:
        write_table("accuracy_digits", "accuracy_digits: digits accuracy per T, weight mode and target", console.export_text(), start)


if __name__ == "__main__":
    main()
