"""Partition: quantised network + target -> Netlist (cores, tables, destinations).

The generic part splits each layer into core-sized chunks with a target-supplied
predicate and checks the result; the target hook builds its own core tables
(TrueNorth crossbars with axon types and in-core replication, Loihi sparse tables).
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Callable, NamedTuple

import numpy as np

from neurocomp.errors import ResourceError, UserError, VerifyError
from neurocomp.ir import sums
from neurocomp.ir.layers import Layer
from neurocomp.ir.netlist import Netlist
from neurocomp.target import Target

if TYPE_CHECKING:   # neurocomp.quantize imports neurocomp.partition.fanin
    from neurocomp.quantize import QNetwork

Fits = Callable[[int, int], tuple[bool, str, float, float]]
Hint = Callable[[str, float, float], str]  # (resource, used, allowed) -> how to make one neuron fit
Emit = Callable[[int, int], None]


def partition(qnet: QNetwork, target: Target) -> Netlist:
    netlist = target.hooks.build_netlist(qnet, target.spec)
    table = sums.decode(qnet.network.graph.metadata)
    if table:
        netlist = dataclasses.replace(netlist, notes={**netlist.notes, sums.KEY: {k: list(v) for k, v in table.items()}})
    verify_netlist(netlist, target)
    return netlist


class LayerCount(NamedTuple):
    layer: str
    neurons: int
    cores: int
    binding: str     # the resource closest to its limit over the layer's cores
    used: float
    allowed: float
    error: str = ""  # why no core holds one neuron of the layer (then cores is 0)


def count_cores(qnet: QNetwork, target: Target) -> list[LayerCount]:
    """Cores per layer without building the netlist (the target's `count_cores` hook), for sizing
    networks too large to compile here. A layer no core can hold counts 0 cores and carries its
    error, so one census names every such layer and sizes the rest."""
    if not hasattr(target.hooks, "count_cores"):
        raise UserError(f"{target.name} has no core census: its core sizes depend on tables built layer by layer "
                        f"(TrueNorth fan-out copies); compile the network instead")
    return target.hooks.count_cores(qnet, target.spec)


def ranks(counts: np.ndarray) -> np.ndarray:
    """0..c-1 for each count c, concatenated (the position of each item within its group)."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


def cat(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate into one int64 array (one copy, no intermediate)."""
    return np.concatenate(parts, dtype=np.int64) if parts else np.zeros(0, np.int64)


def neuron_order(layer: Layer) -> np.ndarray:
    """Position-major order for (C, H, W) layers, so a contiguous chunk is a spatial tile."""
    if len(layer.shape) == 3:
        c, h, w = layer.shape
        return np.arange(layer.size).reshape(c, h * w).T.ravel()
    return np.arange(layer.size)


def split(layer: Layer, fits: Fits, hint: Hint | None = None,
          emit: Emit | None = None) -> tuple[list[tuple[int, int]], tuple[str, float, float]]:
    """Greedy contiguous spans [lo, hi) of neuron_order(layer), each as long as `fits` allows
    (galloping + bisection; `fits` is monotone in hi). A neuron that fits no core is an error
    with the target's suggestion (`hint`). `emit(lo, hi)` gets each span as soon as it is final,
    while the rows `fits` read are still built (partition.rows.Windows). Also returns the binding
    resource: the one closest to its limit over the layer's cores."""
    spans: list[tuple[int, int]] = []
    best = ("neurons", 0.0, 1.0)
    start, n = 0, layer.size
    while start < n:
        seen: dict[int, tuple[bool, str, float, float]] = {}

        def ok(hi: int, start: int = start) -> bool:
            seen[hi] = fits(start, hi)
            return seen[hi][0]

        if not ok(start + 1):
            _, resource, used, allowed = seen[start + 1]
            raise ResourceError(f"layer {layer.name}, one neuron", resource, used, allowed,
                                hint=hint(resource, used, allowed) if hint else
                                "a single neuron needs more than one core offers: reduce its fan-in (smaller kernel, groups)")
        lo, hi = _bracket(start, n, spans[-1][1] - spans[-1][0] if spans else 1, ok)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ok(mid):
                lo = mid
            else:
                hi = mid
        _, resource, used, allowed = seen[lo]
        if used / allowed > best[1] / best[2]:
            best = (resource, used, allowed)
        if emit is not None:
            emit(start, lo)
        spans.append((start, lo))
        start = lo
    return spans, best


def _bracket(start: int, n: int, guess: int, ok: Callable[[int], bool]) -> tuple[int, int]:
    """lo < hi with ok(lo) true and hi = n + 1 or ok(hi) false, found by galloping from start + guess (the
    previous core's length: a layer's cores are mostly alike, so two probes usually settle it)."""
    at = min(start + max(guess, 1), n)
    if at > start + 1 and not ok(at):
        return start + 1, at
    lo, step = at, 1
    while lo + step <= n and ok(lo + step):
        lo, step = lo + step, step * 2
    return lo, min(lo + step, n + 1)


def verify_netlist(n: Netlist, target: Target) -> None:
    spec = target.spec
    neurons, axons = np.diff(n.neuron_ptr), np.diff(n.axon_ptr)
    for arr, lim, what in ((neurons, spec["core.neurons"], "neurons"), (axons, spec["core.axons"], "axons")):
        bad = np.flatnonzero(arr > lim)
        if bad.size:
            raise VerifyError(f"core {bad[0]}: {what} {arr[bad[0]]} exceeds {lim}")
    if n.n_cores > spec.max_cores:
        raise ResourceError("network", "cores", n.n_cores, spec.max_cores,
                            hint=f"{spec.name} allows {spec['chip.max_chips']} chips of {spec.cores_per_chip} cores; the report's "
                                 f"per-layer cores show which layers to shrink (fewer channels, larger stride), or raise "
                                 f"chip.max_chips in a copy of the spec.toml")
    for name, idx, top in (("synapse axon", n.syn_axon, n.n_axons), ("synapse neuron", n.syn_neuron, n.n_neurons),
                           ("edge source", n.edge_src, n.n_neurons), ("edge axon", n.edge_axon, n.n_axons),
                           ("input axon", n.in_axon, n.n_axons), ("input channel", n.in_channel, n.n_inputs)):
        if idx.size and (idx.min() < 0 or idx.max() >= top):
            raise VerifyError(f"{name} index out of range [0, {top})")
    dmin, dmax = spec.get("core.delay_min", 1), spec.get("core.delay_max", 63)
    for name, d in (("edge", n.edge_delay), ("input", n.in_delay)):
        if d.size and (d.min() < dmin or d.max() > dmax):
            raise VerifyError(f"{name} delay outside [{dmin}, {dmax}]")
    target.hooks.verify_netlist(n, spec)
