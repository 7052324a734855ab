"""The pipeline: Graph -> layers -> quantise -> partition -> place -> route -> Program + report.

Each stage is a pure function of the previous stage's value and ends with its own
verify. Compile-time traffic, energy and timing figures use an assumed firing rate
(stated in the report); `neurocomp run` measures them on real input. Given calibration
input (`profile`), placement minimises traffic measured on the emulator instead.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

import numpy as np
import scipy.sparse as sp

from neurocomp.encoding import SPIKING, payload_max
from neurocomp.errors import UserError
from neurocomp.ir import sums
from neurocomp.ir.fold import fold_linear
from neurocomp.ir.graph import Affine, Conv2d, Graph, Scale
from neurocomp.ir.layers import Network, lower
from neurocomp.ir.netlist import Netlist
from neurocomp.ir.footprint import require_compile
from neurocomp.memory import batch_of, require_run
from neurocomp.native import report as native_report, verdicts
from neurocomp.partition import partition
from neurocomp.place import Mesh, place, sequential, verify_placement
from neurocomp.place.traffic import between_layers, measured_rates, traffic_from_rates
from neurocomp.program import Placed, Program, build
from neurocomp.quantize import QNetwork, quantize
from neurocomp.frames import frame_figures
from neurocomp.realtime import message_bits, output_latency
from neurocomp.report.energy import energy
from neurocomp.route import Routes, route, routing_tables, table_report, verify_routes
from neurocomp.target import Target


MAX_PLACE_WINDOWS = 4000
MAX_ANNEAL_MOVES = 2_000_000  # ~30 s of annealing on one 2-core VM core
CONGESTION_MOVES_PER_CORE = 0.1
MIN_CONGESTION_MOVES = 50
MAX_CONGESTION_MOVES = 200      # each move scores ~30 candidate moves
PROFILE_SAMPLES = 8           # calibration samples a profiling run emulates
TRAINING_KEY = "training"     # Graph metadata (JSON) neurocomp.train writes: timesteps, target, weight mode
DEFAULT_TIMESTEPS = 32


@dataclass(frozen=True)
class CompileOptions:
    timesteps: int | None = None   # ticks per inference the program is meant to run; None: the T the graph was
                                   # trained for (neurocomp.train records it), else DEFAULT_TIMESTEPS
    seed: int = 0
    rate: float = 0.05             # assumed spikes per neuron per tick for compile-time estimates
    place_budget_s: float = 120.0  # safety cap; the effort limit normally stops the placer first
    place_effort: int = 40         # window re-assignments per core (capped), so results repeat exactly
    place_anneal: int = 300        # annealing moves per core after the windows (capped); 0 = windows only
    congestion: float = 0.5        # weight of the link-load spread next to spike-hops (place/congestion.py); 0 = off
    weights: str | None = None     # weight mode, one of the target's WEIGHT_MODES (truenorth: bits | levels | trinary);
                                   # None: the target's first (its default)

    def fingerprint(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Compiled:
    """The program and the quantised network it was built from (tests and benchmarks read its scales)."""

    program: Program
    qnet: QNetwork

    @property
    def report(self) -> dict[str, Any]:
        return self.program.full_report()

    @property
    def routes(self) -> Routes:
        return self.program.routes


Progress = Callable[[str], None]


def core_traffic(n: Netlist, rate: float) -> sp.csr_matrix:
    """Expected spikes per tick between cores, every neuron firing at `rate`."""
    return traffic_from_rates(n, rate)


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


def _mesh(target: Target, n_cores: int) -> Mesh:
    s = target.spec
    return Mesh.for_cores(n_cores, s["chip.mesh_cols"], s["chip.mesh_rows"], s["chip.cores_per_router"],
                          s["chip.max_chips"], s["chip.chips_x"], float(s["chip.interchip_hop_weight"]))


def compile_stages(profiled: bool) -> tuple[str, ...]:
    """The stages compile_graph runs, in order (progress bars size themselves on it)."""
    return ("lower", "legalize", "quantize", "partition", "mesh", *(("profile",) if profiled else ()), "place", "route",
            "emit", *(("measure",) if profiled else ()))


def compile_graph(graph: Graph, target: Target, opts: CompileOptions, model_digest: str = "",
                  progress: Progress | None = None, profile: Mapping[str, np.ndarray] | None = None) -> Compiled:
    """`profile`: calibration input per graph input (as `neurocomp run` takes it); placement then
    minimises measured traffic instead of the uniform `opts.rate` estimate. The target first adapts the graph to
    what its neurons run (`adapt` hook: Loihi's reset to zero); the program keeps the adapted graph and the report
    its notes (`adapted`)."""
    times: dict[str, float] = {}
    say = progress or (lambda _stage: None)

    def stage(name: str, fn, *args):
        say(name)
        t0 = time.perf_counter()
        out = fn(*args)
        times[name] = round(time.perf_counter() - t0, 4)
        return out

    require_compile(graph)
    graph, adapted = target.hooks.adapt(graph, target.spec)
    check_spiking_inputs(graph, target)
    opts = dataclasses.replace(opts, weights=opts.weights or trained_weight_mode(graph, target),
                               timesteps=opts.timesteps or trained_timesteps(graph))
    if opts.weights not in target.hooks.WEIGHT_MODES:
        raise UserError(f"weight mode {opts.weights!r} is not available on {target.name}; choose one of "
                        f"{', '.join(target.hooks.WEIGHT_MODES)}")
    net = stage("lower", lambda: lower(fold_linear(graph)))
    native = verdicts(net, target)
    net = stage("legalize", target.hooks.legalize, net, target.spec, opts.weights)
    net = fold_payload_scale(net, payload_max(message_bits(target)))
    qnet = stage("quantize", quantize, net, target, opts.weights)
    netlist = stage("partition", partition, qnet, target)
    mesh = stage("mesh", _mesh, target, netlist.n_cores)
    if profile is None:
        traffic, model = core_traffic(netlist, opts.rate), {"kind": "uniform", "rate": opts.rate}
    else:
        traffic, model = stage("profile", profiled_traffic, graph, netlist, target, mesh, profile, opts)
    effort = min(opts.place_effort * netlist.n_cores, MAX_PLACE_WINDOWS)
    moves = min(opts.place_anneal * netlist.n_cores, MAX_ANNEAL_MOVES)
    relief = int(np.clip(CONGESTION_MOVES_PER_CORE * netlist.n_cores, MIN_CONGESTION_MOVES, MAX_CONGESTION_MOVES))
    placement = stage("place", lambda: place(traffic, mesh, seed=opts.seed, time_budget_s=opts.place_budget_s,
                                             effort=effort, anneal_moves=moves, congestion=opts.congestion,
                                             congestion_moves=relief))
    verify_placement(placement, mesh)
    routes = stage("route", route, traffic, placement, mesh)
    verify_routes(routes, target.spec["chip.route_dx_min"], target.spec["chip.route_dx_max"])
    seq_routes = route(traffic, sequential(netlist.n_cores, mesh), mesh)
    placed = Placed(placement.chip, placement.x, placement.y, placement.slot, mesh.chip_cols, mesh.chip_rows,
                    mesh.cores_per_router, mesh.chips_x, mesh.chips_y)
    fields = {"options": opts.fingerprint(), "model_sha256": model_digest, "target_spec_sha256": target.spec.digest,
              "encodings": {i.name: i.encoding for i in graph.inputs},
              "latency_ticks": output_latency(netlist),
              "placement": {"method": placement.method, "objective": placement.objective,
                            "baselines": dict(placement.baselines), "bound": placement.bound, "traffic_model": model,
                            "congestion": opts.congestion}}
    program = stage("emit", build, fields, netlist, placed, target)
    report = compile_report(program, qnet, target, opts, routes, seq_routes)
    report["native"] = native_report(native)
    report["adapted"] = list(adapted)
    frame = frame_figures(graph, netlist, report["realtime"]["tick_s"], opts.timesteps)
    if frame is not None:
        report["realtime"]["frame"] = frame
    if profile is not None:
        measured = stage("measure", measure_fidelity, graph, program, target, profile, opts)
        for row in report["layers"]:
            row["measured"] = measured.get(row["name"])
    src_core, dst_core = netlist.core_traffic_edges()
    tables = routing_tables(src_core, netlist.edge_src, dst_core, netlist.n_cores)
    report["traffic"] |= {"between_layers": between_layers(netlist, traffic),
                          "routing_tables": table_report(tables, target.spec.get("core.output_axons"))}
    return Compiled(dataclasses.replace(program, report=report, times=times, graph=graph, routes=routes), qnet)


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


def check_spiking_inputs(graph: Graph, target: Target) -> None:
    """Cores receive binary spikes, or graded messages where the target has them; an analog-current input
    needs the latter to be compiled."""
    if message_bits(target):
        return
    for node in graph.inputs:
        if node.encoding not in SPIKING:
            raise UserError(f"input {node.name!r} has encoding {node.encoding!r} (real-valued current into the first "
                            f"layer), but {target.name} cores receive binary spikes only: convert with --encoding rate "
                            f"or poisson, or encode the input as spikes on the host")


def fold_payload_scale(net: Network, scale: int) -> Network:
    """Divide the weights reading each "current" input by the payload scale: the chip receives
    round(x * scale) as a graded message, so the layer then sees x again (quantised to 1/scale)."""
    graded = {i.name for i in net.inputs if i.encoding not in SPIKING}
    if not graded or scale == 1:
        return net
    replaced, others = {}, set()
    for layer in net.layers:
        for p in layer.projections:
            ops = [op for op in p.chain if isinstance(op, (Affine, Conv2d, Scale))]
            if p.source not in graded:
                others.update(op.name for op in ops)
            elif not ops:
                raise UserError(f"graded input {p.source!r} must feed {layer.name} through a weighted op")
            else:
                replaced[ops[0].name] = _divided(ops[0], scale)
    if others & set(replaced):
        raise UserError(f"op {sorted(others & set(replaced))[0]!r} reads both a graded input and another source")
    g = net.graph
    return lower(Graph(tuple(replaced.get(n.name, n) for n in g.nodes), g.edges, g.metadata))


def _divided(op: Affine | Conv2d | Scale, scale: int) -> Affine | Conv2d | Scale:
    """The op with its weights (not its bias: that does not multiply the input) divided by `scale`."""
    if isinstance(op, Scale):
        return dataclasses.replace(op, scale=np.asarray(op.scale) / scale)
    return dataclasses.replace(op, weight=np.asarray(op.weight) / scale)


def _estimate_core_counts(n: Netlist, rate: float) -> dict[str, np.ndarray]:
    """Per-core, per-tick event counts when every neuron and input fires at `rate`."""
    fed = np.zeros(n.n_axons)
    fed[n.edge_axon] = rate
    fed[n.in_axon] = rate
    per_axon = fed * np.bincount(n.syn_axon, weights=n.n_copies()[n.syn_neuron], minlength=n.n_axons)
    neurons = n.core_neurons().astype(float)
    return {"synaptic_events": np.bincount(n.axon_core(), weights=per_axon, minlength=n.n_cores),
            "neuron_active": np.zeros(n.n_cores), "neuron_idle": neurons, "spikes": rate * neurons}


def compile_report(program: Program, qnet: QNetwork, target: Target, opts: CompileOptions, routes: Routes,
                   seq_routes: Routes) -> dict[str, Any]:
    """report.json: the compile-time figures (wall times are Program.times, kept apart: they vary run to run)."""
    n = program.netlist
    depth = program.latency_ticks
    ticks = opts.timesteps + depth
    per_core = _estimate_core_counts(n, opts.rate)
    rt = program.realtime(per_core, ticks)
    per_tick = {k: float(v.sum()) for k, v in per_core.items()}
    per_tick |= {"hops_ew": routes.hops_ew_per_tick, "hops_ns": routes.hops_ns_per_tick,
                 "interchip": routes.interchip_spikes_per_tick}
    totals = {k: v * ticks for k, v in per_tick.items()}
    chips = program.placed.n_chips
    return {
        "target": target.name, "cores_used": n.n_cores, "chips_used": chips, "neurons": n.hw_neurons,
        "synapses": n.hw_synapses, "axons": n.n_axons,
        "layers": _upstream_exact([_layer_row(lm, qnet, n, ticks) for lm in n.layers], qnet.network),
        "latency_ticks": depth,
        "splitter_cores": int(n.notes.get("splitter_cores", 0)),
        "host_summed_readouts": {k: list(v) for k, v in n.notes.get(sums.KEY, {}).items()},
        "traffic": {"assumed_rate": opts.rate, "model": program.manifest["placement"]["traffic_model"],
                    "cut_spikes_per_tick": routes.cut_spikes_per_tick,
                    "spike_hops_per_tick": routes.spike_hops_per_tick, "max_link_load": routes.max_link_load,
                    "worst_link": routes.worst_link, "interchip_spikes_per_tick": routes.interchip_spikes_per_tick,
                    "sequential_spike_hops_per_tick": seq_routes.spike_hops_per_tick},
        "placement": dict(program.manifest["placement"]),
        "energy": {**energy(totals, target.spec, rt["tick_s"] * ticks, chips, 1.0), "basis": f"estimate at {opts.rate} spikes/neuron/tick"},
        "realtime": rt,
    }


def training_record(graph: Graph) -> dict[str, Any]:
    """What neurocomp.train recorded in the graph (timesteps, target, weight mode); {} for any other graph."""
    try:
        info = json.loads(graph.metadata.get(TRAINING_KEY, "{}"))
    except json.JSONDecodeError:
        return {}
    return info if isinstance(info, dict) else {}


def trained_timesteps(graph: Graph) -> int:
    """The T a graph was trained for, else DEFAULT_TIMESTEPS (a record that is not a positive int is ignored)."""
    t = training_record(graph).get("timesteps")
    return t if isinstance(t, int) and not isinstance(t, bool) and t >= 1 else DEFAULT_TIMESTEPS


def trained_weight_mode(graph: Graph, target: Target) -> str:
    """The weight mode a graph was trained for on this target, else the target's default."""
    info = training_record(graph)
    trained = info.get("weights") if info.get("target") == target.name else None
    return trained if trained in target.hooks.WEIGHT_MODES else target.hooks.WEIGHT_MODES[0]


def _upstream_exact(rows: list[dict[str, Any]], net: Network) -> list[dict[str, Any]]:
    """A layer is exact only when every layer feeding it is too: its own mapping may be exact while its input is
    not (layers in topological order, so the verdict flows downstream)."""
    by_name = {row["name"]: row for row in rows}
    for layer in net.layers:
        row = by_name.get(layer.name)
        bad = [p.source for p in layer.projections if p.source in by_name and not by_name[p.source]["exact"]]
        if row is not None and row["exact"] and bad:
            row["exact"], row["limit"] = False, f"fed by {bad[0]}, which is approximate"
    return rows


def _layer_row(lm, qnet: QNetwork, n: Netlist, ticks: int) -> dict[str, Any]:
    """`exact` holds for the `ticks` of one inference: a range limit (`exact_ticks`, `limit`) may end it sooner."""
    q = qnet.qlayer(lm.name)
    snr = q.weight_snr_db
    return {"name": lm.name, "shape": list(lm.shape), "neurons": int(lm.neurons.size), "cores": len(lm.cores),
            "binding": lm.binding, "used": lm.used, "allowed": lm.allowed, "scale": q.scale,
            "weight_snr_db": None if not np.isfinite(snr) else round(snr, 2), "exact": q.exact and q.exact_ticks >= ticks,
            "exact_ticks": None if np.isinf(q.exact_ticks) else int(q.exact_ticks),
            "limit": q.limit if q.exact_ticks < ticks else "",
            "latency_ticks": n.notes.get("latency", {}).get(lm.name)}
