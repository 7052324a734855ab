"""The pipeline, as a table of stages: Graph -> layers -> legalise -> quantise -> partition -> mesh -> place -> route
-> Program, then its report.

`STAGES` lists each stage's name, its function (the values so far in, a copy with its result out) and the check that
follows it; `run_stages` runs any prefix of the table, timing each stage and telling `progress` as it starts. Compile
runs the whole table, bind (neurocomp.bind) its front end (`FRONT_END`: through partition) on a subgraph, and the
progress bar sizes itself on it (`compile_stages`). Compile-time traffic, energy and timing use an assumed firing rate
(stated in the report); `neurocomp run` measures them on real input. Given calibration input (`profile`), the profile
stage measures the traffic on the emulator and placement minimises that instead (neurocomp.profile).
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Mapping

import numpy as np
import scipy.sparse as sp

from neurocomp.encoding import SPIKING, payload_max
from neurocomp.errors import UserError
from neurocomp.ir.fold import fold_linear
from neurocomp.ir.footprint import require_compile
from neurocomp.ir.graph import Affine, Conv2d, Graph, Scale
from neurocomp.ir.layers import Network, lower
from neurocomp.ir.netlist import Netlist
from neurocomp.native import report as native_report, verdicts
from neurocomp.partition import LayerCount, count_cores, partition
from neurocomp.place import Mesh, Placement, place, sequential, verify_placement
from neurocomp.place.traffic import between_layers, traffic_from_rates
from neurocomp.frames import frame_figures
from neurocomp.profile import measure_fidelity, profiled_traffic
from neurocomp.program import Placed, Program, build
from neurocomp.quantize import QNetwork, quantize
from neurocomp.realtime import message_bits, output_latency
from neurocomp.report.compile_report import compile_report
from neurocomp.route import Routes, route, routing_tables, table_report, verify_routes
from neurocomp.target import Target

# Per window stage (there are two). 4000 -> 1000 cost nothing measurable and saved 40 % of the placer's time: the NIR
# CNN on TrueNorth (2,380 cores) placed at 0.260 / 0.251 of sequential (seeds 0, 1) in 11.0 / 7.8 s, and at 0.230 /
# 0.255 in 6.4 / 4.7 s; annealing gains more per second on large nets (paper-size SiamSNN on Loihi, 37,078 cores,
# with 2.5 M moves: 0.374 in 21.5 s -> 0.369 in 16.8 s).
MAX_PLACE_WINDOWS = 1000
MAX_ANNEAL_MOVES = 2_500_000  # ~10 s of annealing on one 2-core VM core
CONGESTION_MOVES_PER_CORE = 0.1
MIN_CONGESTION_MOVES = 50
MAX_CONGESTION_MOVES = 200      # each move scores ~30 candidate moves
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
    weights: str | None = None     # weight mode, one of the target's WEIGHT_MODES (truenorth: bits | levels |
                                   # trinary | whole); None: the target's first (its default)

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
    def routes(self) -> Routes | None:
        return self.program.routes


Progress = Callable[[str], None]


@dataclass(frozen=True)
class Values:
    """What the stages have computed so far; each stage returns a copy with its own result set."""

    graph: Graph
    target: Target
    opts: CompileOptions
    profile: Mapping[str, np.ndarray] | None = None   # calibration input: measure traffic and fidelity on it
    model_digest: str = ""
    net: Network | None = None
    lowered: Network | None = None   # before legalize: the report's native verdicts are of it (a census needs none)
    qnet: QNetwork | None = None
    netlist: Netlist | None = None
    mesh: Mesh | None = None
    traffic: sp.csr_matrix | None = None
    traffic_model: Mapping[str, Any] | None = None
    placement: Placement | None = None
    routes: Routes | None = None
    program: Program | None = None
    measured: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Stage:
    """One row of the pipeline: its name (progress, timings), what it computes, the check after it, and whether it
    runs only on a profiled compile."""

    name: str
    run: Callable[[Values], Values]
    verify: Callable[[Values], None] | None = None
    profiled_only: bool = False


def core_traffic(n: Netlist, rate: float) -> sp.csr_matrix:
    """Expected spikes per tick between cores, every neuron firing at `rate`."""
    return traffic_from_rates(n, rate)


def mesh_for(target: Target, n_cores: int) -> Mesh:
    """The smallest mesh of the target's chips that holds `n_cores`."""
    s = target.spec
    return Mesh.for_cores(n_cores, s["chip.mesh_cols"], s["chip.mesh_rows"], s["chip.cores_per_router"],
                          s["chip.max_chips"], s["chip.chips_x"], float(s["chip.interchip_hop_weight"]))


def _lower(v: Values) -> Values:
    net = lower(fold_linear(v.graph))
    return replace(v, net=net, lowered=net)


def _legalize(v: Values) -> Values:
    net = v.target.hooks.legalize(v.net, v.target.spec, v.opts.weights)
    return replace(v, net=fold_payload_scale(net, payload_max(message_bits(v.target))))


def _quantize(v: Values) -> Values:
    return replace(v, qnet=quantize(v.net, v.target, v.opts.weights))


def _partition(v: Values) -> Values:
    return replace(v, netlist=partition(v.qnet, v.target))


def _mesh(v: Values) -> Values:
    """The mesh, and the uniform traffic estimate a profiled compile replaces with its measurement."""
    mesh = mesh_for(v.target, v.netlist.n_cores)
    return replace(v, mesh=mesh, traffic=core_traffic(v.netlist, v.opts.rate),
                   traffic_model={"kind": "uniform", "rate": v.opts.rate})


def _profile(v: Values) -> Values:
    traffic, model = profiled_traffic(v.graph, v.netlist, v.target, v.mesh, v.profile, v.opts)
    return replace(v, traffic=traffic, traffic_model=model)


def _place(v: Values) -> Values:
    n, opts = v.netlist.n_cores, v.opts
    placement = place(v.traffic, v.mesh, seed=opts.seed, time_budget_s=opts.place_budget_s,
                      effort=min(opts.place_effort * n, MAX_PLACE_WINDOWS),
                      anneal_moves=min(opts.place_anneal * n, MAX_ANNEAL_MOVES), congestion=opts.congestion,
                      congestion_moves=int(np.clip(CONGESTION_MOVES_PER_CORE * n, MIN_CONGESTION_MOVES,
                                                   MAX_CONGESTION_MOVES)))
    return replace(v, placement=placement)


def _route(v: Values) -> Values:
    return replace(v, routes=route(v.traffic, v.placement, v.mesh))


def _emit(v: Values) -> Values:
    p, mesh, opts = v.placement, v.mesh, v.opts
    placed = Placed(p.chip, p.x, p.y, p.slot, mesh.chip_cols, mesh.chip_rows, mesh.cores_per_router, mesh.chips_x,
                    mesh.chips_y)
    fields = {"options": opts.fingerprint(), "model_sha256": v.model_digest, "target_spec_sha256": v.target.spec.digest,
              "encodings": {i.name: i.encoding for i in v.graph.inputs}, "latency_ticks": output_latency(v.netlist),
              "placement": {"method": p.method, "objective": p.objective, "baselines": dict(p.baselines),
                            "bound": p.bound, "traffic_model": v.traffic_model, "congestion": opts.congestion}}
    return replace(v, program=build(fields, v.netlist, placed, v.target))


def _measure(v: Values) -> Values:
    return replace(v, measured=measure_fidelity(v.graph, v.program, v.target, v.profile, v.opts))


STAGES: tuple[Stage, ...] = (
    Stage("lower", _lower),
    Stage("legalize", _legalize),
    Stage("quantize", _quantize),
    Stage("partition", _partition),
    Stage("mesh", _mesh),
    Stage("profile", _profile, profiled_only=True),
    Stage("place", _place, lambda v: verify_placement(v.placement, v.mesh)),
    Stage("route", _route, lambda v: verify_routes(v.routes, v.target.spec["chip.route_dx_min"],
                                                   v.target.spec["chip.route_dx_max"])),
    Stage("emit", _emit),
    Stage("measure", _measure, profiled_only=True),
)
FRONT_END = STAGES[:4]   # through partition: the netlist of a graph, what bind rebuilds


def compile_stages(profiled: bool) -> tuple[str, ...]:
    """The stages compile_graph runs, in order (progress bars size themselves on it)."""
    return tuple(s.name for s in STAGES if profiled or not s.profiled_only)


def run_stages(stages: tuple[Stage, ...], values: Values, progress: Progress | None = None,
               times: dict[str, float] | None = None) -> Values:
    """Each stage in turn (skipping profiled-only ones without a profile), then its check; wall times into `times`."""
    for stage in stages:
        if stage.profiled_only and values.profile is None:
            continue
        if progress is not None:
            progress(stage.name)
        start = time.perf_counter()
        values = stage.run(values)
        if times is not None:
            times[stage.name] = round(time.perf_counter() - start, 4)
        if stage.verify is not None:
            stage.verify(values)
    return values


def resolved(opts: CompileOptions, graph: Graph, target: Target) -> CompileOptions:
    """The options with what the graph's training recorded filled in, and the weight mode checked."""
    opts = dataclasses.replace(opts, weights=opts.weights or trained_weight_mode(graph, target),
                               timesteps=opts.timesteps or trained_timesteps(graph))
    if opts.weights not in target.hooks.WEIGHT_MODES:
        raise UserError(f"weight mode {opts.weights!r} is not available on {target.name}; choose one of "
                        f"{', '.join(target.hooks.WEIGHT_MODES)}")
    return opts


def compile_graph(graph: Graph, target: Target, opts: CompileOptions, model_digest: str = "",
                  progress: Progress | None = None, profile: Mapping[str, np.ndarray] | None = None) -> Compiled:
    """`profile`: calibration input per graph input (as `neurocomp run` takes it); placement then
    minimises measured traffic instead of the uniform `opts.rate` estimate. The target first adapts the graph to
    what its neurons run (`adapt` hook: Loihi's reset to zero); the program keeps the adapted graph and the report
    its notes (`adapted`)."""
    require_compile(graph, target.hooks.SHARED_LISTS)
    graph, adapted = target.hooks.adapt(graph, target.spec)
    check_spiking_inputs(graph, target)
    times: dict[str, float] = {}
    v = run_stages(STAGES, Values(graph, target, resolved(opts, graph, target), profile, model_digest), progress, times)
    report = _report(v, adapted)
    return Compiled(dataclasses.replace(v.program, report=report, times=times, graph=graph, routes=v.routes), v.qnet)


@dataclass(frozen=True)
class Census:
    """Cores per layer counted without building core tables (the target's `count_cores` hook), and what the
    spec's chips hold: the exact size of a network too large to compile on this machine."""

    layers: tuple[LayerCount, ...]
    cores_per_chip: int
    max_chips: int

    @property
    def cores(self) -> int:
        return sum(c.cores for c in self.layers)

    @property
    def chips(self) -> int:
        return -(-self.cores // self.cores_per_chip)

    @property
    def unmapped(self) -> tuple[LayerCount, ...]:
        """Layers no core can hold a neuron of (their `error` says why)."""
        return tuple(c for c in self.layers if c.error)


def census(graph: Graph, target: Target, opts: CompileOptions, progress: Progress | None = None) -> Census:
    """The compile's front end (adapt, lower, legalize, quantize, as compile_graph runs them) and then a count of
    each layer's cores instead of the partition (the family's `count_cores`: the same spans, no core tables).
    `progress` is told each front-end stage and then each layer as it starts."""
    graph, _ = target.hooks.adapt(graph, target.spec)
    check_spiking_inputs(graph, target)
    v = run_stages(FRONT_END[:3], Values(graph, target, resolved(opts, graph, target), None, ""), progress)
    return Census(tuple(count_cores(v.qnet, target, progress)), target.spec.cores_per_chip,
                  int(target.spec["chip.max_chips"]))


def _report(v: Values, adapted: tuple[str, ...]) -> dict[str, Any]:
    """report.json: compile_report's figures plus what only the pipeline knows (native shapes, adaptations, frames,
    measured fidelity, traffic between layers, routing tables)."""
    netlist, target = v.netlist, v.target
    report = compile_report(v.program, v.qnet, target, v.opts, v.routes,
                            route(v.traffic, sequential(netlist.n_cores, v.mesh), v.mesh))
    report["native"] = native_report(verdicts(v.lowered, v.target))
    report["adapted"] = list(adapted)
    frame = frame_figures(v.graph, netlist, report["realtime"]["tick_s"], v.opts.timesteps)
    if frame is not None:
        report["realtime"]["frame"] = frame
    if v.measured is not None:
        for row in report["layers"]:
            row["measured"] = v.measured.get(row["name"])
    src_core, dst_core = netlist.core_traffic_edges()
    tables = routing_tables(src_core, netlist.edge_src, dst_core, netlist.n_cores)
    report["traffic"] |= {"between_layers": between_layers(netlist, v.traffic),
                          "routing_tables": table_report(tables, target.spec.get("core.output_axons"))}
    return report


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
    """The weight mode a graph was trained for on this target (its read-out's where that differs: the mode whose
    set holds every layer, train.Deploy.compile_mode), else the target's default."""
    info = training_record(graph)
    trained = info.get("readout_weights", info.get("weights")) if info.get("target") == target.name else None
    return trained if trained in target.hooks.WEIGHT_MODES else target.hooks.WEIGHT_MODES[0]
