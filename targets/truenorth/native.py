"""TrueNorth's native-shape rule: a neuron's whole fan-in enters one core's axons.

An input costs one axon per weight sign its core's neurons need: a layer with weights of
both signs takes paired axons (+ and - axon types, TRUENORTH.md §9), so a 3x3 conv over 16
channels reads 144 inputs on 288 axons and does not fit 256; with groups=2 it reads 72 on
144. A layer reading a run-time kernel (a Correlation) keeps every axon type per input, as
legalize plans it. And the neurons that read one input set (a conv's output channels per
group at one position) must fit one core, so an input is copied only to the cores of the
patches that overlap it. A layer that fails is split by legalize into spiking partial sums
(a read-out: host-summed parts) and its inputs fanned out to more cores -- unless it is compiled
in the "whole" weight mode and one neuron's inputs fit a core's axons (one axon each).
"""
from __future__ import annotations

from neurocomp.ir.layers import Layer
from neurocomp.ir.reach import Reach, reaches
from neurocomp.native import Usage, Verdict, suggest, verdict
from neurocomp.target import TargetSpec


def axons_per_input(r: Reach, spec: TargetSpec) -> int:
    """Axon copies of each input: every type for a run-time kernel, a pair for signed weights, else one."""
    return int(spec["core.axon_types"]) if r.bound else 2 if r.signed else 1


def native(layer: Layer, spec: TargetSpec) -> Verdict:
    rs = reaches(layer)
    axons, neurons = int(spec["core.axons"]), int(spec["core.neurons"])
    copies = [axons_per_input(r, spec) for r in rs]
    used = sum(r.fan_in * c for r, c in zip(rs, copies))
    sharing = min(r.sharing for r in rs)
    usage = (Usage("axons", used, axons), Usage("neurons per input set", sharing, neurons))
    widest = max(range(len(rs)), key=lambda i: rs[i].fan_in * copies[i])
    r, c = rs[widest], copies[widest]
    rest = used - r.fan_in * c
    per_channel = r.taps * c + rest
    impossible = "" if per_channel <= axons else (
        f"one input channel needs {r.taps} inputs x {c} axons{f' + {rest}' if rest else ''} = {per_channel} axons, "
        f"over the {axons} of a core at any grouping; use a smaller kernel or fewer positions per channel")
    spatial = max(1, r.sharing * (r.conv[2] if r.conv else 1) // (r.conv[1] if r.conv else 1))

    def fits(cin: int, cout: int, g: int) -> bool:
        return r.taps * (cin // g) * c + rest <= axons and (cout // g) * spatial <= neurons

    regroup = suggest(r, fits)
    if used > axons and not any(x.bound for x in rs) and sum(x.fan_in for x in rs) <= axons:   # a neuron alone fits
        regroup = "; ".join(filter(None, [regroup, "or weight mode whole (as it is, fewer neurons per core)"]))
    return verdict(layer, sum(r.fan_in for r in rs), usage, regroup, impossible)
