"""A compile-and-evaluate sweep: one model over a grid of targets x T x weight modes, each grid point a task
(serially or on Ray, neurocomp.scale), gathered into one table in grid order.

The model and the dataset travel once (the task's shared Work); each task compiles the model for its point and runs
the whole dataset on the emulator. The table depends only on the grid, never on which worker ran which point.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.encoding import read_npz
from neurocomp.errors import UserError
from neurocomp.evaluate import classes
from neurocomp.frontend import load_model
from neurocomp.scale import Arrays, Pool, Work, run_chunks
from neurocomp.target import load_target

Point = tuple[str, int, str | None]   # target, T, weight mode (None: the target's default)


@dataclass(frozen=True)
class SweepRow:
    target: str
    timesteps: int
    weights: str
    accuracy: float
    cores: int
    energy_uj: float   # per sample


def grid(targets: Sequence[str], timesteps: Sequence[int], weights: Sequence[str | None] = (None,)) -> list[Point]:
    """Every (target, T, mode); UserError, before any work, for a mode a target does not have."""
    for name, mode in itertools.product(targets, weights):
        modes = load_target(name).hooks.WEIGHT_MODES
        if mode is not None and mode not in modes:
            raise UserError(f"sweep: target {name} has no weight mode {mode!r} (it has {', '.join(modes)})")
    return list(itertools.product(targets, timesteps, weights))


def open_sweep(folder: Path) -> tuple[Any, np.ndarray, np.ndarray]:
    """A sweep's folder as a worker gets it: the model (model.pt or model.nir) and the dataset (data.npz)."""
    return _opened(next(p for p in sorted(folder.iterdir()) if p.stem == "model"), folder / "data.npz")


def _opened(model: Path, data: Path) -> tuple[Any, np.ndarray, np.ndarray]:
    arrays = read_npz(data)
    return load_model(model), arrays["input"], arrays["labels"]


def sweep_point(opened: tuple[Any, np.ndarray, np.ndarray], point: Point) -> Arrays:
    """Compile for one grid point and run the dataset: correct answers, cores, energy per sample."""
    graph, x, labels = opened
    name, t, mode = point
    program = compile_graph(graph, load_target(name), CompileOptions(timesteps=t, weights=mode)).program
    result = program.run(x)
    return {"correct": np.array([int((classes(result.output) == labels).sum())]),
            "cores": np.array([program.netlist.n_cores]),
            "energy_j": np.array([(result.energy or {}).get("per_inference_j", 0.0)])}


def sweep(model: Path, data: Path, points: Sequence[Point], pool: Pool,
          on_done: Callable[[int], None] = lambda _k: None) -> list[SweepRow]:
    """One row per grid point, in grid order."""
    work = Work({f"model{model.suffix}": model.read_bytes(), "data.npz": data.read_bytes()}, open_sweep)
    local = None if pool.uses_ray else _opened(model, data)
    chunks = run_chunks(pool, work, sweep_point, lambda skip: ((k, p) for k, p in enumerate(points) if k not in skip),
                        len(points), local, on_done=on_done)
    samples = len(read_npz(data)["labels"])
    return [SweepRow(name, t, mode or load_target(name).hooks.WEIGHT_MODES[0], int(c["correct"][0]) / samples,
                     int(c["cores"][0]), float(c["energy_j"][0]) * 1e6)
            for (name, t, mode), c in zip(points, chunks)]


def sweep_table(rows: Sequence[SweepRow]) -> str:
    """The rows as a Markdown table."""
    lines = ["| target | T | weights | accuracy | cores | energy / sample (uJ) |", "|---|---:|---|---:|---:|---:|"]
    lines += [f"| {r.target} | {r.timesteps} | {r.weights} | {r.accuracy:.4f} | {r.cores} | {r.energy_uj:.3f} |"
              for r in rows]
    return "\n".join(lines) + "\n"
