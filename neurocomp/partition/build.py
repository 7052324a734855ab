"""Partition a quantised network into cores with the target's `build_netlist` hook, and check the netlist against
the spec's core and chip limits."""
from __future__ import annotations

import dataclasses
import itertools
from typing import TYPE_CHECKING, Callable, NamedTuple

import numpy as np

from neurocomp.errors import ResourceError, VerifyError
from neurocomp.ir import sums
from neurocomp.ir.netlist import Netlist
from neurocomp.target import Target, TargetSpec

if TYPE_CHECKING:   # neurocomp.quantize imports neurocomp.partition.fanin
    from neurocomp.quantize import QNetwork


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


def count_cores(qnet: QNetwork, target: Target, progress: Callable[[str], None] | None = None) -> list[LayerCount]:
    """Cores per layer without building the netlist (the target's `count_cores` hook), for sizing
    networks too large to compile here. A layer no core can hold counts 0 cores and carries its
    error, so one census names every such layer and sizes the rest. `progress(label)` as each layer starts, the
    label saying how many layers are counted of how many (a paper-size census takes a minute)."""
    if progress is None:
        return target.hooks.count_cores(qnet, target.spec)
    total, started = len(qnet.network.layers), itertools.count(1)
    return target.hooks.count_cores(qnet, target.spec, lambda name: progress(f"{name} ({next(started)} of {total} layers)"))


def cores_hint(spec: TargetSpec) -> str:
    """What to do about a network that needs more cores than the spec's chips have."""
    return (f"{spec.name} allows {spec['chip.max_chips']} chips of {spec.cores_per_chip} cores; `neurocomp check MODEL "
            f"--target {spec.name} --census` counts every layer's cores, to show which to shrink (fewer channels, larger "
            "stride), or raise chip.max_chips in a copy of the spec.toml")


def outgrown(spec: TargetSpec, cores: int, built: int, layers: int, counted: tuple[str, str] | None) -> ResourceError:
    """The refusal of a network whose `built` of `layers` layers already outgrow the chips, `cores` in all with
    the rest (`counted`: its first and last layer) counted by the census: the network's exact total."""
    where = "network" if counted is None else f"network ({built} of {layers} layers built, {counted[0]} to " \
                                              f"{counted[1]} counted by census)"
    return ResourceError(where, "cores", cores, spec.max_cores, hint=cores_hint(spec))


def verify_netlist(n: Netlist, target: Target) -> None:
    spec = target.spec
    neurons, axons = n.core_neurons(), np.diff(n.axon_ptr)
    for arr, lim, what in ((neurons, spec["core.neurons"], "neurons"), (axons, spec["core.axons"], "axons")):
        bad = np.flatnonzero(arr > lim)
        if bad.size:
            raise VerifyError(f"core {bad[0]}: {what} {arr[bad[0]]} exceeds {lim}")
    if n.n_cores > spec.max_cores:
        raise outgrown(spec, n.n_cores, 0, 0, None)
    why = n.synapses.problem(n.axon_ptr, n.neuron_ptr)
    if why is not None:
        raise VerifyError(f"synapse lists: {why}")
    for name, idx, top in (("edge source", n.edge_src, n.n_neurons), ("edge axon", n.edge_axon, n.n_axons),
                           ("input axon", n.in_axon, n.n_axons), ("input channel", n.in_channel, n.n_inputs)):
        if idx.size and (idx.min() < 0 or idx.max() >= top):
            raise VerifyError(f"{name} index out of range [0, {top})")
    dmin, dmax = spec.get("core.delay_min", 1), spec.get("core.delay_max", 63)
    for name, d in (("edge", n.edge_delay), ("input", n.in_delay)):
        if d.size and (d.min() < dmin or d.max() > dmax):
            raise VerifyError(f"{name} delay outside [{dmin}, {dmax}]")
    target.hooks.verify_netlist(n, spec)
