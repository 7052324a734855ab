"""Profiling a compile on calibration input: traffic measured on the emulator (placement then minimises it) and
each layer's error against the float source graph (the report's `measured`)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import scipy.sparse as sp

from neurocomp.ir.fold import fold_linear
from neurocomp.ir.graph import Graph
from neurocomp.ir.layers import lower
from neurocomp.ir.netlist import Netlist
from neurocomp.memory import batch_of, require_run
from neurocomp.place import Mesh, sequential
from neurocomp.place.traffic import measured_rates, traffic_from_rates
from neurocomp.program import Placed, Program, build
from neurocomp.realtime import message_bits
from neurocomp.target import Target

if TYPE_CHECKING:
    from neurocomp.compiler import CompileOptions

PROFILE_SAMPLES = 8           # calibration samples a profiling run emulates


def profiled_traffic(graph: Graph, netlist: Netlist, target: Target, mesh: Mesh, inputs: Mapping[str, np.ndarray],
                     opts: CompileOptions) -> tuple[sp.csr_matrix, dict[str, Any]]:
    """Traffic measured by emulating the first PROFILE_SAMPLES calibration samples (sequential placement:
    where cores sit does not change their spikes), and a description of the run for the report."""
    from neurocomp.backends import emulator
    from neurocomp.runner import encode_inputs, specs_of

    batch = {name: np.asarray(x)[:PROFILE_SAMPLES] for name, x in inputs.items()}
    ticks = opts.timesteps + len(netlist.layers)
    require_run(netlist.n_neurons, sum(math.prod(s) for _, s in netlist.inputs), batch_of(batch), ticks)
    spikes = encode_inputs(specs_of(graph), batch, ticks, opts.seed, message_bits(target))
    seq = sequential(netlist.n_cores, mesh)
    placed = Placed(seq.chip, seq.x, seq.y, seq.slot, mesh.chip_cols, mesh.chip_rows, mesh.cores_per_router,
                    mesh.chips_x, mesh.chips_y)
    result = emulator.run(build({}, netlist, placed, target), target, spikes, ticks, seed=opts.seed)
    rates = measured_rates(netlist, result.spikes, result.core_counts["spikes"], result.batch * result.ticks)
    return traffic_from_rates(netlist, rates), {"kind": "profile", "samples": result.batch, "ticks": ticks,
                                                "mean_rate": float(rates.mean()) if rates.size else 0.0}


def measure_fidelity(graph: Graph, program: Program, target: Target, inputs: Mapping[str, np.ndarray],
                     opts: CompileOptions) -> dict[str, dict[str, Any]]:
    """Each layer's error against the float source Graph (neurocomp.report.fidelity) over one inference of the
    first PROFILE_SAMPLES calibration samples: the size of what `exact` = False leaves unsaid."""
    from neurocomp.backends import emulator, reference
    from neurocomp.report.fidelity import layer_errors
    from neurocomp.runner import encode_inputs, specs_of

    batch = {name: np.asarray(x)[:PROFILE_SAMPLES] for name, x in inputs.items()}
    ticks = opts.timesteps + program.latency_ticks
    chip = emulator.run(program, target, encode_inputs(specs_of(graph), batch, ticks, opts.seed, message_bits(target)), ticks,
                        seed=opts.seed)
    source_net = lower(fold_linear(graph))
    source = reference.run(source_net, encode_inputs(specs_of(graph), batch, ticks, opts.seed), ticks, seed=opts.seed)
    return layer_errors(source_net, chip, source, program.netlist.notes.get("latency", {}))
