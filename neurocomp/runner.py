"""Run a compiled program on a backend and summarise spikes, counts, energy and timing (Program.run)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from neurocomp.encoding import input_spikes
from neurocomp.errors import UserError
from neurocomp.ir.graph import Graph
from neurocomp.memory import batch_of, require_run
from neurocomp.npz import marked_kind, write_npz
from neurocomp.realtime import message_bits
from neurocomp.report.energy import energy
from neurocomp.safewrite import write_file

if TYPE_CHECKING:
    from neurocomp.backends.emulator import RunResult
    from neurocomp.program import Program

BACKENDS = ("emulator", "reference", "lava")
DEVICES = ("cpu", "cuda")   # torch devices of the emulator; None (numpy) is the default


@dataclass(frozen=True)
class Result:
    """What a run gives: the summary (`neurocomp run --json` prints it) and the output arrays (`--out` writes
    them): spikes/<layer> (batch, ticks, *shape) uint8, potential/<read-out> in float units, and output."""

    summary: Mapping[str, Any]
    outputs: Mapping[str, np.ndarray]

    @property
    def output(self) -> np.ndarray:
        """The first output: spikes of a spiking layer, potentials of a read-out."""
        return self.outputs["output"]

    @property
    def spikes(self) -> dict[str, np.ndarray]:
        return {k.removeprefix("spikes/"): v for k, v in self.outputs.items() if k.startswith("spikes/")}

    @property
    def energy(self) -> Mapping[str, Any] | None:
        """Joules by term per inference (None for the reference backend, which has no chip)."""
        return self.summary.get("energy")

    @property
    def times_s(self) -> Mapping[str, float]:
        return self.summary["times_s"]


def default_ticks(program: Program, inputs: Mapping[str, np.ndarray]) -> int:
    """Spike input: its own length; analog input: the program's timesteps plus its input-to-output latency."""
    shapes = dict(program.netlist.inputs)
    first = next(iter(inputs))
    if np.ndim(inputs[first]) == len(shapes[first]) + 2:
        return int(np.shape(inputs[first])[1])
    return program.timesteps + program.latency_ticks


InputSpec = tuple[str, tuple[int, ...], str]   # name, shape, encoding


def specs_of(graph: Graph) -> list[InputSpec]:
    return [(i.name, i.shape, i.encoding) for i in graph.inputs]


def encode_inputs(specs: Sequence[InputSpec], inputs: Mapping[str, np.ndarray], ticks: int, seed: int,
                  message_bits: int = 0) -> dict[str, np.ndarray]:
    """Spikes per tick for every Input, by its encoding, so that every backend sees the same spikes; "current"
    input becomes integer payloads when the chip takes `message_bits`-bit graded messages."""
    return {name: input_spikes(inputs[name], shape, ticks, encoding, seed, message_bits) for name, shape, encoding in specs}


def check_device(device: str | None, backend: str = "emulator") -> None:
    """None is numpy; "cpu" / "cuda" run the emulator's torch path there (the same integers). Refused: a device for
    another backend, an unknown name, or CUDA where torch has none."""
    if device is None:
        return
    if device not in DEVICES:
        raise UserError(f"device {device!r} is not one of numpy, {', '.join(DEVICES)}")
    if backend != "emulator":
        raise UserError(f"--device applies to the emulator; the {backend} backend runs where it runs")
    if device == "cuda":
        import torch   # only here: numpy runs need no torch

        if not torch.cuda.is_available():
            raise UserError("device 'cuda': torch sees no CUDA device on this machine (torch.cuda.is_available() is "
                            "False); use --device cpu or numpy")


def run_backend(program: Program, inputs: Mapping[str, np.ndarray], backend: str, ticks: int, seed: int,
                device: str | None = None) -> RunResult:
    if backend not in BACKENDS:
        raise UserError(f"backend {backend!r} is not available in this version; use {', '.join(BACKENDS)}")
    encodings = program.manifest.get("encodings") or {}
    graph = program.source_graph() if backend == "reference" or not encodings else None   # the float graph: real currents
    specs = specs_of(graph) if graph is not None else \
        [(name, shape, encodings[name]) for name, shape in program.netlist.inputs]
    spikes = encode_inputs(specs, inputs, ticks, seed, 0 if backend == "reference" else message_bits(program.target))
    if backend == "emulator":
        from neurocomp.backends import emulator

        return emulator.run(program, program.target, spikes, ticks, seed=seed, device=device)
    if backend == "lava":
        from neurocomp.backends import lava

        return lava.run(program, program.target, spikes, ticks, seed=seed)
    from neurocomp.backends import reference
    from neurocomp.ir.layers import lower

    return reference.run(lower(program.source_graph() if graph is None else graph), spikes, ticks)


def summarise(result: RunResult, program: Program, backend: str) -> dict[str, Any]:
    totals = {k: float(v.sum()) for k, v in result.core_counts.items()}
    per_tick = {k: v / (result.ticks * result.batch) for k, v in result.core_counts.items()}
    summary: dict[str, Any] = {"backend": backend, "batch": result.batch, "ticks": result.ticks,
                               "wall_s": result.wall_s, "ticks_per_s": result.ticks / max(result.wall_s, 1e-12)}
    if result.core_counts:
        rt = program.realtime(per_tick, result.ticks)
        if result.timing:  # the emulator's per-tick estimates: the worst tick and its slack
            rt |= {"tick_worst_s": result.timing["tick_worst_s"], "slack_worst": result.timing["slack"]}
        seconds = rt["tick_s"] * result.ticks * result.batch
        summary |= {"counts": totals, "merges": result.merges, "realtime": rt,
                    "energy": energy(totals, program.target.spec, seconds, program.placed.n_chips, result.batch)}
    summary["spike_counts"] = {k: int(v.sum()) for k, v in result.spikes.items()}
    return summary


def outputs_of(result: RunResult, program: Program) -> dict[str, np.ndarray]:
    out = {f"spikes/{k}": v for k, v in result.spikes.items()}
    out |= {f"potential/{k}": v for k, v in result.potentials.items()}
    first = program.netlist.outputs[0]
    out["output"] = result.spikes[first] if first in result.spikes else result.potentials[first]
    return out


def run_program(program: Program, inputs: Mapping[str, np.ndarray], backend: str, ticks: int | None, seed: int,
                load_s: float = 0.0, device: str | None = None) -> Result:
    """The run's summary and outputs. The summary's `times_s` are wall times per stage: load (the
    caller's, `load_s`), inputs (reading the model and encoding spikes), prepare (the backend's plan)
    and simulate (the tick loop; for Lava also building and compiling its processes)."""
    check_device(device, backend)
    ticks = ticks if ticks is not None else default_ticks(program, inputs)
    require_run(program.netlist.n_neurons, sum(math.prod(s) for _, s in program.netlist.inputs), batch_of(inputs), ticks,
                32 if backend == "reference" else 1)
    start = time.perf_counter()
    result = run_backend(program, inputs, backend, ticks, seed, device)
    total = time.perf_counter() - start
    summary = summarise(result, program, backend)
    summary["times_s"] = {"load": load_s, "inputs": max(total - result.setup_s - result.wall_s, 0.0),
                          "prepare": result.setup_s, "simulate": result.wall_s}
    return Result(summary, outputs_of(result, program))


OUTPUTS_FORMAT = "neurocomp.run_outputs"


OUTPUTS_KIND = marked_kind("neurocomp run output .npz", OUTPUTS_FORMAT)


def write_outputs(path: Path, outputs: Mapping[str, np.ndarray], inputs: Sequence[Path] = ()) -> None:
    """The outputs plus `format` = "neurocomp.run_outputs", under the neurocomp.safewrite policy."""
    write_file(path, OUTPUTS_KIND, lambda tmp: write_npz(tmp, {**outputs, "format": np.array([OUTPUTS_FORMAT])}), inputs)
