"""`neurocomp sweep`: one model compiled and evaluated over a grid of targets x T x weight modes, the samples of each
grid point in chunks (serially or on Ray, neurocomp.scale), gathered into one table in grid order.

The model, its NIR reading options and the dataset travel once (the task's shared Work). Each point is compiled
once, by the task that runs its first chunk of samples; its other chunks (chunk k with encoding seed k, as
`neurocomp eval`) then run on any worker (neurocomp.scale.Pool.map_groups). So a TrueNorth point that places for a
second and a Loihi point done in milliseconds spread evenly over the workers. The table depends only on the grid
and the chunk size, never on which worker ran what.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.encoding import read_npz
from neurocomp.errors import UserError
from neurocomp.evaluate import classes, npz_header
from neurocomp.frontend import load_model
from neurocomp.ir.graph import Graph
from neurocomp.safewrite import json_kind, write_file
from neurocomp.program import Program
from neurocomp.scale import Arrays, ChunkStore, Group, Pool, Work, run_groups
from neurocomp.target import load_target

Point = tuple[str, int, str | None]   # target, T, weight mode (None: the target's default)
SWEEP_FORMAT = "neurocomp.sweep"
SWEEP_KIND = json_kind("neurocomp sweep table", SWEEP_FORMAT)
CHUNK = 256   # samples per task at most: enough to keep the emulator's batch wide, few enough to spread a point


@dataclass(frozen=True)
class SweepRow:
    target: str
    timesteps: int
    weights: str
    accuracy: float
    cores: int
    energy_uj: float   # per sample


@dataclass(frozen=True)
class Reading:
    """How the model file is read (NIR only: neurocomp.frontend.load_model's options) and which arrays of the
    dataset are the input and the labels."""

    dt: float = 1e-3
    if_gain: str = "auto"
    integrator: str = "auto"
    bias_timing: str = "held"
    input: str = "input"
    labels: str = "labels"

    def nir(self) -> dict[str, Any]:
        """load_model's keyword arguments."""
        return {"dt": self.dt, "if_gain": self.if_gain, "integrator": self.integrator, "bias_timing": self.bias_timing}


def grid(targets: Sequence[str], timesteps: Sequence[int], weights: Sequence[str | None] = (None,)) -> list[Point]:
    """Every (target, T, mode); UserError, before any work, for a mode a target does not have."""
    for name, mode in itertools.product(targets, weights):
        modes = load_target(name).hooks.WEIGHT_MODES
        if mode is not None and mode not in modes:
            raise UserError(f"sweep: target {name} has no weight mode {mode!r} (it has {', '.join(modes)})")
    return list(itertools.product(targets, timesteps, weights))


def check_data(graph: Graph, data: Path, reading: Reading) -> int:
    """Samples in the dataset, or UserError before any work: a model with other than one input, an input array whose
    shape is not the model's (samples, *shape) or (samples, ticks, *shape), labels that are not (samples,) integers."""
    if len(graph.inputs) != 1:
        raise UserError(f"sweep: the model has {len(graph.inputs)} inputs; a sweep evaluates single-input classifiers")
    shape = graph.inputs[0].shape
    got, _ = npz_header(data, reading.input)
    if tuple(got[1:]) != shape and tuple(got[2:]) != shape:
        dims = ", ".join(map(str, shape))
        raise UserError(f"{data}: {reading.input!r} has shape {got}; the model's input takes (samples, {dims}) "
                        f"or (samples, ticks, {dims})")
    labels, dtype = npz_header(data, reading.labels)
    if labels != got[:1] or dtype.kind not in "iu":
        raise UserError(f"{data}: labels {reading.labels!r} have shape {labels} ({dtype}); expected ({got[0]},) integers")
    if got[0] == 0:
        raise UserError(f"{data}: no samples")
    return int(got[0])


def open_sweep(folder: Path) -> tuple[Graph, np.ndarray, np.ndarray]:
    """A sweep's folder as a worker gets it: the model (model.pt or model.nir), reading.json and data.npz."""
    model = next(p for p in sorted(folder.iterdir()) if p.stem == "model")
    return _opened(model, folder / "data.npz", Reading(**json.loads((folder / "reading.json").read_text())))


def _opened(model: Path, data: Path, reading: Reading) -> tuple[Graph, np.ndarray, np.ndarray]:
    arrays = read_npz(data)
    graph = load_model(model, **reading.nir())
    return graph, arrays[reading.input], arrays[reading.labels]


def compile_point(opened: tuple[Graph, np.ndarray, np.ndarray], point: Point) -> Program:
    """The model compiled for one grid point. On one BLAS and OpenMP thread, here as on a worker: a sweep's
    parallelism is its tasks, and an idle second thread spins beside the task running on the other core."""
    name, t, mode = point
    with threadpool_limits(1):
        return compile_graph(opened[0], load_target(name), CompileOptions(timesteps=t, weights=mode)).program


def sweep_chunk(opened: tuple[Graph, np.ndarray, np.ndarray], program: Program, part: tuple[int, int, int]) -> Arrays:
    """Samples start..stop of the dataset on a point's program (encoding seed k, the chunk's number within the
    point): correct answers, cores, energy summed over the chunk."""
    _, x, labels = opened
    start, stop, k = part
    with threadpool_limits(1):
        result = program.run(x[start:stop], seed=k)
    return {"correct": np.array([int((classes(result.output) == labels[start:stop]).sum())]),
            "cores": np.array([program.netlist.n_cores]),
            "energy_j": np.array([(result.energy or {}).get("per_inference_j", 0.0) * (stop - start)])}


def sweep(model: Path, data: Path, points: Sequence[Point], pool: Pool, reading: Reading = Reading(),
          state: Path | None = None, on_done: Callable[[int], None] = lambda _k: None, chunk: int = CHUNK
          ) -> list[SweepRow]:
    """One row per grid point, in grid order; with `state`, finished chunks are kept there and a rerun reuses them
    (a point whose chunks are all kept is not compiled again). Each point's samples run in chunks_per_point(...)
    chunks of equal size (at most `chunk` samples; chunk i belongs to point i // chunks_per_point). Points go out
    largest T first, so on several workers no long point starts last."""
    work = Work({f"model{model.suffix}": model.read_bytes(), "data.npz": data.read_bytes(),
                 "reading.json": json.dumps(asdict(reading), sort_keys=True).encode()}, open_sweep)
    local = None if pool.uses_ray else _opened(model, data, reading)
    key = hashlib.sha256(json.dumps([work.key, [list(p) for p in points], chunk]).encode()).hexdigest()
    samples = npz_header(data, reading.labels)[0][0]
    per = chunks_per_point(samples, chunk)
    longest_first = sorted(range(len(points)), key=lambda i: -points[i][1])   # cost grows with T: the last is short

    def groups(skip: set[int]) -> Iterator[Group]:
        for i in longest_first:
            parts = [(i * per + k, (k * samples // per, (k + 1) * samples // per, k)) for k in range(per)]
            yield Group(points[i], [part for part in parts if part[0] not in skip])

    chunks = run_groups(pool, work, compile_point, sweep_chunk, groups, len(points) * per, local,
                        ChunkStore(state, key) if state is not None else None, on_done)
    default = {name: load_target(name).hooks.WEIGHT_MODES[0] for name in {p[0] for p in points}}
    rows = []
    for i, (name, t, mode) in enumerate(points):
        mine = chunks[i * per:(i + 1) * per]
        energy = sum(float(c["energy_j"][0]) for c in mine)   # chunk order: the same sum every run
        rows.append(SweepRow(name, t, mode or default[name], sum(int(c["correct"][0]) for c in mine) / samples,
                             int(mine[0]["cores"][0]), energy / samples * 1e6))
    return rows


def chunks_per_point(samples: int, chunk: int) -> int:
    """Chunks of at most `chunk` samples, made equal: uneven ones would leave a worker idle at the end."""
    return math.ceil(samples / chunk)


def sweep_table(rows: Sequence[SweepRow]) -> str:
    """The rows as a Markdown table."""
    lines = ["| target | T | weights | accuracy | cores | energy / sample (uJ) |", "|---|---:|---|---:|---:|---:|"]
    lines += [f"| {r.target} | {r.timesteps} | {r.weights} | {r.accuracy:.4f} | {r.cores} | {r.energy_uj:.3f} |"
              for r in rows]
    return "\n".join(lines) + "\n"


def sweep_record(rows: Sequence[SweepRow]) -> dict[str, Any]:
    """What `sweep --out` writes and `--json` prints (with the timings added): the rows, no host figures."""
    return {"format": SWEEP_FORMAT, "rows": [asdict(r) for r in rows]}


def write_sweep(path: Path, rows: Sequence[SweepRow], inputs: Sequence[Path]) -> None:
    """The record as JSON: the same bytes for the same model, data and grid."""
    text = json.dumps(sweep_record(rows), sort_keys=True) + "\n"
    write_file(path, SWEEP_KIND, lambda tmp: tmp.write_text(text), inputs)
