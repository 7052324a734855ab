"""`neurocomp sweep MODEL --data D.npz --targets ... --timesteps ...`: compile and evaluate a grid, one table.

Kept apart from cli.py like `check` and `train`; heavy modules are imported inside `run`, so `neurocomp --help`
stays fast. Everything that can be refused (output path, targets, weight modes, model, the dataset's shapes) is
refused before Ray starts or any point compiles.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from neurocomp import cli_nir


def add_parser(sub, count, dt_type, scale_options) -> None:
    k = sub.add_parser("sweep", help="compile a .pt or .nir classifier for a grid of targets x T x weight modes and "
                                     "evaluate each on a dataset (accuracy, cores, energy)")
    k.add_argument("model")
    k.add_argument("--data", required=True, help=".npz with the input (samples, *shape) and the labels")
    k.add_argument("--targets", nargs="+", required=True, help="truenorth, loihi, loihi2 or spec.toml paths")
    k.add_argument("--timesteps", nargs="+", type=count(1), required=True, help="the values of T")
    k.add_argument("--weights", nargs="+", help="weight modes (each must exist on every target; default each target's)")
    k.add_argument("--input", default="input", help="the input's key in --data (default 'input')")
    k.add_argument("--labels", default="labels", help="the labels' key in --data (default 'labels')")
    cli_nir.add_options(k, dt_type)
    k.add_argument("--chunk", type=count(1, 1 << 20), default=256,
                   help="samples per task at most, the chunks made equal (default 256); chunk k of a point runs with "
                        "encoding seed k")
    k.add_argument("--out", metavar="OUT.json", help="write the table's rows as JSON")
    scale_options(k, "grid points")
    k.add_argument("--json", action="store_true", help="print the rows and timings as one JSON object")


def run(args: argparse.Namespace, console) -> int:
    from neurocomp.frontend import load_model
    from neurocomp.progress import steps
    from neurocomp.report.tables import emit
    from neurocomp.scale import Pool, check_outputs
    from neurocomp.sweep import SWEEP_KIND, Reading, check_data, chunks_per_point, grid, sweep, sweep_record, write_sweep

    start = time.perf_counter()
    model, data = Path(args.model), Path(args.data)
    check_outputs(args.out, SWEEP_KIND, args.state, [model, data])
    points = grid(args.targets, args.timesteps, args.weights or [None])
    reading = Reading(**cli_nir.reading(args), input=args.input, labels=args.labels)
    per = chunks_per_point(check_data(load_model(model, **reading.nir()), data, reading), args.chunk)
    with Pool(args.workers, args.address) as pool, steps(console, "sweeping", len(points) * per, on_start=False) as step:
        work_start = time.perf_counter()
        rows = sweep(model, data, points, pool, reading, Path(args.state) if args.state else None,
                     on_done=lambda i: step("{} T={} {}".format(*points[i // per])), chunk=args.chunk)
        work = pool.work_s(work_start)   # before Ray shuts down, which is not work
    if args.out:
        write_sweep(Path(args.out), rows, [model, data])
    record = sweep_record(rows) | pool.figures(work, start)
    emit(args.json, console, record, "grid_table")
    return 0

